"""What the scripts in `recipes/` share: their command line and one run of
the protocol on a dataset's official train / validation / test splits.

A recipe script calls `keras_robult_cli.prepare` before it imports this
module, so Keras starts under the backend its command line names, with
TensorFlow's start-up lines silenced unless `--verbose`.
"""

import argparse
import os
import sys

from keras_robult_cli import (
    DISTRIBUTE_HELP,
    add_missing_modality_arguments,
    late_fusion_option,
    missing_modality_options,
)

SMOKE_SAMPLES = 64
# Options every recipe has (the run configuration names them one by one);
# a recipe's own options are saved under "extra".
RECIPE_OPTIONS = (
    "data_dir",
    "labeled_fraction",
    "seeds",
    "methods",
    "epochs",
    "batch_size",
    "patience",
    "latent_dim",
    "out",
    "smoke",
    "backend",
    "quiet",
    "restart",
    "verbose",
    "distribute",
    "train_missing_rate",
    "modality_dropout",
    "late_fusion",
)


def recipe_parser(description, epochs=100, batch_size=256):
    """The command line every recipe takes."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data-dir", required=True, help="folder (or file) of the dataset"
    )
    parser.add_argument("--labeled-fraction", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="default: all of them",
    )
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument(
        "--patience",
        type=int,
        default=10,
        help="early stopping: epochs without validation improvement",
    )
    parser.add_argument("--latent-dim", type=int, default=128)
    add_missing_modality_arguments(parser)
    parser.add_argument("--out", help="results folder")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"one epoch on {SMOKE_SAMPLES} samples of each split, taken in "
        "turn from each class (or target bin), first seed only (checks an "
        "install and a data folder)",
    )
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend (default: $KERAS_BACKEND, else jax)",
    )
    parser.add_argument(
        "--distribute", action="store_true", help=DISTRIBUTE_HELP
    )
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="forget the finished (method, seed) pairs in --out and start "
        "over (by default a rerun with the same --out resumes)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's native start-up logging",
    )
    return parser


def _concatenate(splits):
    import numpy as np

    keys = list(splits[0][0])
    x = {k: np.concatenate([s[0][k] for s in splits]) for k in keys}
    y = np.concatenate([s[1] for s in splits])
    sizes = [len(s[1]) for s in splits]
    marks = np.repeat(np.arange(len(splits)), sizes)
    return x, y, marks


def run_recipe(args, splits, task, dataset, metrics, extra=None, finetune=None):
    """Runs every method on `splits = (train, valid, test)` (each `(x, y)`)
    and writes the results folder; `extra` (a dict) goes into
    `results.json` as it is (e.g. skipped files, the chosen test split);
    `finetune` (a `FinetuneSource`, the splits then hold record rows)
    trains every method's backbones end to end.

    The labeled subset is drawn from the train split (stratified, per
    seed); the validation split drives early stopping; the test split gives
    the reported metrics (`metrics`: the tables of `results.md`; the
    first is also the missing-rate curve's).

    Returns:
        The results folder.
    """
    import keras

    from keras_robult.distribution import training_context
    from keras_robult.experiments.protocol import run_protocol
    from keras_robult.experiments.registry import (
        DEFAULT_METHODS,
        method_factories,
    )
    from keras_robult.experiments.report import markdown_table, write_results
    from keras_robult.experiments.run_store import RunStore

    if not 0 < args.labeled_fraction <= 1:
        raise ValueError("--labeled-fraction must be in (0, 1]")
    gaps = missing_modality_options(args)
    epochs, seeds = args.epochs, args.seeds
    if args.smoke:
        from keras_robult.data.splits import stratified_head

        rows = [stratified_head(y, SMOKE_SAMPLES, task) for _, y in splits]
        splits = [
            ({k: v[r] for k, v in x.items()}, y[r])
            for (x, y), r in zip(splits, rows)
        ]
        epochs, seeds = 1, seeds[:1]
    for (x, y), name in zip(splits, ("train", "valid", "test")):
        if len(y) == 0:
            raise ValueError(f"The {name} split of {dataset} is empty.")
    x, y, marks = _concatenate(splits)
    names = args.methods or list(DEFAULT_METHODS)
    out = args.out or os.path.join("results", dataset)
    models = os.path.join(out, "models")
    store = RunStore(
        out,
        {
            "recipe": dataset,
            "data_dir": os.path.abspath(args.data_dir),
            "samples": [len(y) for _, y in splits],
            "labeled_fraction": args.labeled_fraction,
            "seeds": list(seeds),
            "epochs": epochs,
            "batch_size": args.batch_size,
            "patience": args.patience,
            "latent_dim": args.latent_dim,
            "methods": names,
            "backend": keras.backend.backend(),
            "extra": {
                k: v for k, v in vars(args).items() if k not in RECIPE_OPTIONS
            },
            **gaps,
        },
        restart=args.restart,
    )

    def save_models(name, seed):
        os.makedirs(models, exist_ok=True)
        return os.path.join(models, f"{name}-seed{seed}.keras")

    with training_context(
        args.distribute, args.batch_size, finetune=finetune is not None
    ):
        results, split_indices = run_protocol(
            x,
            y,
            task,
            method_factories(
                names,
                latent_dim=args.latent_dim,
                patience=args.patience,
                finetune=finetune,
                modality_dropout=args.modality_dropout,
                robult_options=late_fusion_option(args),
            ),
            seeds=seeds,
            labeled_fraction=args.labeled_fraction,
            epochs=epochs,
            batch_size=args.batch_size,
            test_mask=marks == 2,
            validation_mask=marks == 1,
            dataset=dataset,
            verbose=0 if args.quiet else 1,
            save_models=save_models,
            store=store,
            curve_metric=metrics[0],
            train_missing_rate=args.train_missing_rate,
        )
    results.update(gaps)
    results.update(extra or {})
    write_results(results, split_indices, out, metrics=metrics)
    for metric in metrics:
        print()
        print(markdown_table(results, metric))
    print(f"Results written to {out}/")
    return out


def main(
    description,
    load,
    make_task,
    dataset,
    metrics,
    epochs=100,
    batch_size=256,
    add_arguments=None,
    argv=None,
):
    """The whole of a recipe script: parse, pick the backend, load the
    splits with `load(args)` (the three splits, or a dict with `splits`,
    optionally `task` (else `make_task()`), `extra`, the fields it adds
    to `results.json`, `finetune`, see `run_recipe`, and `after_run`, a
    function of the results folder called last), run, report.
    Returns the exit code (2 with one `recipe: error:` line for bad
    input)."""
    parser = recipe_parser(description, epochs, batch_size)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        from keras_robult.cli import _load_frameworks
        from keras_robult_cli import choose_backend, ensure_backend

        ensure_backend(choose_backend(args.backend), sys.argv)
        _load_frameworks(args.verbose)
        loaded = load(args)
        if not isinstance(loaded, dict):
            loaded = {"splits": loaded}
        task = loaded["task"] if "task" in loaded else make_task()
        out = run_recipe(
            args,
            loaded["splits"],
            task,
            dataset,
            metrics,
            loaded.get("extra"),
            loaded.get("finetune"),
        )
        if loaded.get("after_run"):
            loaded["after_run"](out)
    except (ValueError, FileNotFoundError, OSError, RuntimeError) as error:
        lines = str(error).strip().splitlines()
        print(
            f"{dataset} recipe: error: {lines[0] if lines else error}",
            file=sys.stderr,
        )
        return 2
    return 0


SENTIMENT_METRICS = ("mae", "corr", "f1_weighted", "acc2", "acc7")


def sentiment_recipe(description, dataset, argv=None):
    """The MOSI / MOSEI recipe: regression in [-3, 3] (7 PU bins), one
    `SequenceEncoder` per modality, the paper's Table 1 metrics."""
    import importlib

    def add_arguments(parser):
        parser.add_argument(
            "--unaligned", action="store_true", help="the unaligned file"
        )

    def load(args):
        module = importlib.import_module(f"keras_robult.datasets.{dataset}")
        return module.load_data(args.data_dir, aligned=not args.unaligned)

    def make_task():
        from keras_robult.tasks import Regression

        return Regression(bins=(-3, 3))

    return main(
        description,
        load,
        make_task,
        dataset,
        SENTIMENT_METRICS,
        add_arguments=add_arguments,
        argv=argv,
    )
