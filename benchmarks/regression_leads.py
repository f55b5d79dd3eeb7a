"""One method with given options on one dataset of the suite, test split.

The driver of the regression leads in `benchmarks/RESULTS.md`: the
suite's protocol (`keras_robult.datasets.suite`: its labeled fraction and
training gaps, the stratified 70/30 split, 150 epochs, batch 256, latent
128) for one method of the registry with the options given as JSON (any
option of the method and its model, e.g. `full_set`, `fusion_pooling`,
`loss_weights`, `encoder_dropout`). Prints one line: the primary metric's
mean ± standard deviation over the seeds on the single-modality mean and
on every modality, then the mean per subset.

    python benchmarks/regression_leads.py diabetes --seeds 0 1 2 \\
        --options '{"loss_weights": {"pseudo": 1.0}}'
"""

import argparse
import json
import sys
import time

import keras_robult_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--method", default="robult")
    parser.add_argument("--options", default="{}", help="JSON object")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--backend")
    parser.add_argument(
        "--validation",
        action="store_true",
        help="score on a validation split carved from each seed's "
        "training split (the rows `robult tune` searches on); the test "
        "split is never read",
    )
    args = parser.parse_args(argv)
    keras_robult_cli.prepare(
        ["--backend", args.backend] if args.backend else []
    )
    import numpy as np

    from keras_robult.datasets.suite import DATASETS
    from keras_robult.experiments import registry, run_protocol
    from keras_robult.experiments.comparison import ComparisonData
    from keras_robult.experiments.metrics import PRIMARY
    from keras_robult.experiments.tune import TuneConfig, tuning_splits
    from keras_robult.experiments.user_data import make_task

    spec = DATASETS[args.dataset]
    x, y = spec.load()
    task = make_task(spec.task, y)
    options = json.loads(args.options)
    factories = registry.method_factories(
        [args.method], **{"latent_dim": 128, **options}
    )
    common = dict(
        epochs=args.epochs,
        train_missing_rate=spec.train_missing_rate,
        verbose=0,
    )
    start = time.perf_counter()
    if args.validation:
        data = ComparisonData(x, y, task, args.dataset)
        splits = tuning_splits(
            data,
            TuneConfig(
                seeds=tuple(args.seeds),
                labeled_fraction=spec.labeled_fraction,
            ),
        )
        per_seed = []
        for seed in args.seeds:
            split = splits[seed]
            train = np.union1d(split["fit"], split["validation"])
            per_seed.append(
                run_protocol(
                    {k: v[train] for k, v in x.items()},
                    y[train],
                    task,
                    factories,
                    seeds=(seed,),
                    labeled_fraction=split["labeled_fraction"],
                    test_mask=np.isin(train, split["validation"]),
                    **common,
                )[0]
            )
        results = merge_seeds(per_seed)
    else:
        results, _ = run_protocol(
            x,
            y,
            task,
            factories,
            seeds=tuple(args.seeds),
            labeled_fraction=spec.labeled_fraction,
            **common,
        )
    primary = PRIMARY[task.name][0]
    modalities = results["modalities"]
    cells = {
        "+".join(r["subset"])
        if len(r["subset"]) < len(modalities)
        else "all": np.asarray(r["per_seed"])
        for r in results["results"]
        if r["metric"] == primary and r["method"] == args.method
    }
    single = np.mean([cells[m] for m in modalities if m in cells], axis=0)
    full = cells.get("all", np.full(len(args.seeds), np.nan))
    print(
        f"{args.dataset} {args.method} {args.options}: {primary} single "
        f"{single.mean():.4f} ± {single.std():.4f} all {full.mean():.4f} "
        f"± {full.std():.4f} | "
        + " ".join(f"{k}={v.mean():.3f}" for k, v in cells.items())
        + f" ({time.perf_counter() - start:.0f} s)"
    )
    return 0


def merge_seeds(per_seed):
    """One results dict from single-seed ones: each (method, subset,
    metric) with its values over the seeds in `per_seed`."""
    import numpy as np

    merged = dict(per_seed[0])
    rows = {}
    for results in per_seed:
        for r in results["results"]:
            key = (r["method"], tuple(r["subset"]), r["metric"])
            rows.setdefault(key, dict(r, per_seed=[]))
            rows[key]["per_seed"] += r["per_seed"]
    merged["results"] = [
        dict(r, mean=float(np.mean(r["per_seed"]))) for r in rows.values()
    ]
    return merged


if __name__ == "__main__":
    sys.exit(main())
