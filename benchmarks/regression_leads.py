"""One method with given options on one dataset of the suite, test split.

The driver of the regression leads in `benchmarks/RESULTS.md`: the
suite's protocol (`keras_robult.datasets.suite`: its labeled fraction and
training gaps, the stratified 70/30 split, 150 epochs, batch 256, latent
128) for one method of the registry with the options given as JSON (any
option of the method and its model, e.g. `full_set`, `fusion_pooling`,
`loss_weights`, `encoder_dropout`). Prints one line: the primary metric's
mean over the seeds on the single modalities, on every modality, and per
subset.

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
    args = parser.parse_args(argv)
    keras_robult_cli.prepare(
        ["--backend", args.backend] if args.backend else []
    )
    import numpy as np

    from keras_robult.datasets.suite import DATASETS
    from keras_robult.experiments import registry, run_protocol
    from keras_robult.experiments.metrics import PRIMARY
    from keras_robult.experiments.user_data import make_task

    spec = DATASETS[args.dataset]
    x, y = spec.load()
    task = make_task(spec.task, y)
    options = json.loads(args.options)
    start = time.perf_counter()
    results, _ = run_protocol(
        x,
        y,
        task,
        registry.method_factories(
            [args.method], **{"latent_dim": 128, **options}
        ),
        seeds=tuple(args.seeds),
        labeled_fraction=spec.labeled_fraction,
        epochs=args.epochs,
        train_missing_rate=spec.train_missing_rate,
        verbose=0,
    )
    primary = PRIMARY[task.name][0]
    modalities = results["modalities"]
    cells = {
        "+".join(r["subset"])
        if len(r["subset"]) < len(modalities)
        else "all": (r["mean"])
        for r in results["results"]
        if r["metric"] == primary and r["method"] == args.method
    }
    single = np.mean([cells[m] for m in modalities if m in cells])
    print(
        f"{args.dataset} {args.method} {args.options}: {primary} single "
        f"{single:.4f} all {cells.get('all', float('nan')):.4f} | "
        + " ".join(f"{k}={v:.3f}" for k, v in cells.items())
        + f" ({time.perf_counter() - start:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
