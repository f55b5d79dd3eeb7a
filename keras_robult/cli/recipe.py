"""The command line of the scripts in `recipes/`: their options, and one
comparison on a dataset's official train / validation / test splits.

A recipe script calls `keras_robult_cli.prepare` before it imports this
module, so Keras starts under the backend its command line names, with
TensorFlow's start-up lines silenced unless `--verbose`.
"""

import argparse
import dataclasses
import functools
import importlib
import os
import sys

from keras_robult.cli.options import (
    RecipeHelp,
    add_comparison_arguments,
    add_run_arguments,
    add_verbose_argument,
    backbone_config,
    comparison_config,
    load_frameworks,
    reporting_errors,
)
from keras_robult.data.splits import (
    SMOKE_CLASSES,
    smoke_classes,
    smoke_rows,
)
from keras_robult.experiments.comparison import run_comparison
from keras_robult.experiments.comparison_data import ComparisonData
from keras_robult.experiments.compilation_cache import enable_compilation_cache
from keras_robult.experiments.hparams import load_hparams
from keras_robult.experiments.image_text import (
    feature_splits,
    write_raw_models,
)
from keras_robult.experiments.tune import TuneConfig, tune
from keras_robult.tasks import Regression
from keras_robult_cli import choose_backend, ensure_backend

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
    "backup_interval",
    "verbose",
    "distribute",
    "tensorboard",
    "hparams",
    "train_missing_rate",
    "train_missing",
    "test_missing",
    "both_ratio",
    "grid",
    "modality_dropout",
    "late_fusion",
    "tune",
    "calibrate",
    "calibration_fraction",
    "coverage",
)
SENTIMENT_METRICS = ("mae", "corr", "f1_weighted", "acc2", "acc7")


def recipe_parser(description, epochs=100, batch_size=256):
    """The command line every recipe takes."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=RecipeHelp
    )
    parser.add_argument(
        "--data-dir", required=True, help="folder (or file) of the dataset"
    )
    add_comparison_arguments(
        parser,
        epochs=epochs,
        batch_size=batch_size,
        epochs_help="at most this many epochs (early stopping on the "
        "validation split)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=10,
        help="early stopping: epochs without validation improvement",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"one epoch on at most {SMOKE_SAMPLES} samples of each split "
        f"(of the {SMOKE_CLASSES} most frequent classes of a "
        "classification, each labeled), taken in turn from each class or "
        "target bin, first seed only: checks an install and a data folder",
    )
    parser.add_argument(
        "--tune",
        type=int,
        metavar="TRIALS",
        help="first search Robult's hyper-parameters (robult tune: TRIALS "
        "Bayesian trials, the first seed, scored on the validation split; "
        "kept in OUT/tune, resumable), then train robult with the best (as "
        "--hparams would)",
    )
    add_run_arguments(parser)
    add_verbose_argument(parser)
    return parser


def image_text_splits(args, records, dataset):
    """`load`'s answer for image+text records (`feature_splits`, under
    the backbone options of `args`), their raw-input models written after
    the run with `--raw-models`."""
    config = backbone_config(args)
    loaded = feature_splits(
        config,
        records,
        dataset,
        smoke_samples=SMOKE_SAMPLES if args.smoke else None,
        verbose=0 if args.quiet else 1,
    )
    loaded["backbone_features"] = True  # see ComparisonData
    if config.raw_models:
        loaded["after_run"] = functools.partial(
            write_raw_models,
            config,
            loaded["backbones"],
            verbose=0 if args.quiet else 1,
        )
    return loaded


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
    to `results.json`, `finetune`, a `FinetuneSource`, `backbone_features`
    (see `ComparisonData`), and `after_run`, a function of the results
    folder called last), run, report.
    Returns the exit code (2 with one `<dataset> recipe: error:` line for
    bad input)."""
    parser = recipe_parser(description, epochs, batch_size)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    return reporting_errors(
        f"{dataset} recipe",
        _run,
        args,
        load,
        make_task,
        dataset,
        metrics,
        parser=parser,
    )


def _run(args, load, make_task, dataset, metrics):
    ensure_backend(choose_backend(args.backend), sys.argv)
    load_frameworks(args.verbose)
    config = comparison_config(
        args, out=args.out or os.path.join("results", dataset)
    )
    # The search's settings are checked before any data is read.
    search = _tune_config(args, config) if args.tune is not None else None
    loaded = load(args)
    if not isinstance(loaded, dict):
        loaded = {"splits": loaded}
    task = loaded["task"] if "task" in loaded else make_task()
    splits = loaded["splits"]
    if args.smoke:
        splits, config = _smoke_run(splits, task, config)
    record = {
        "recipe": dataset,
        "data_dir": os.path.abspath(args.data_dir),
        "samples": [len(y) for _, y in splits],
        "extra": {
            k: v for k, v in vars(args).items() if k not in RECIPE_OPTIONS
        },
    }
    data = ComparisonData.from_splits(
        splits,
        task,
        dataset,
        metrics=tuple(metrics),
        record=record,
        extra=dict(loaded.get("extra") or {}),
        finetune=loaded.get("finetune"),
        backbone_features=bool(loaded.get("backbone_features")),
    )
    enable_compilation_cache()
    if search is not None:
        _, tuned = tune(search, data)
        hparams = load_hparams(os.path.join(tuned, "best_hparams.json"))
        config = dataclasses.replace(config, hparams=hparams)
    _, out = run_comparison(config, data)
    if loaded.get("after_run"):
        loaded["after_run"](out)
    return 0


def _tune_config(args, config):
    """The `TuneConfig` of `--tune TRIALS`: Robult on the recipe's
    validation split, the first seed, the comparison's budget (with
    `--smoke`, the smoke epochs), in `OUT/tune`."""
    if args.hparams:
        raise ValueError("--tune searches what --hparams would give.")
    return TuneConfig(
        method="robult",
        max_trials=args.tune,
        seeds=config.seeds[:1],
        labeled_fraction=config.labeled_fraction,
        epochs=1 if args.smoke else config.epochs,
        batch_size=config.batch_size,
        latent_dim=config.latent_dim,
        space={"epochs": 1} if args.smoke else None,
        out=os.path.join(config.out, "tune"),
        restart=config.restart,
        tensorboard=(
            os.path.join(config.tensorboard, "tune")
            if config.tensorboard
            else None
        ),
        verbose=config.verbose,
    )


def _smoke_run(splits, task, config):
    """A smoke run's `(splits, config)`: one epoch, the first seed, and of
    each split at most `SMOKE_SAMPLES` samples of the training split's
    `SMOKE_CLASSES` most frequent classes (single-label classification;
    every target otherwise), taken in turn from each class or target
    bin; the labeled fraction raised where needed to label every class
    it keeps. It says what it took."""
    classes = smoke_classes(splits[0][1], task)
    rows = [smoke_rows(y, SMOKE_SAMPLES, task, classes) for _, y in splits]
    splits = [
        ({k: v[r] for k, v in x.items()}, y[r])
        for (x, y), r in zip(splits, rows)
    ]
    fraction = config.labeled_fraction
    if classes is not None:
        fraction = max(fraction, len(classes) / max(len(rows[0]), 1))
    config = dataclasses.replace(
        config, epochs=1, seeds=config.seeds[:1], labeled_fraction=fraction
    )
    if config.verbose:
        kept = ""
        if classes is not None:
            names = getattr(task, "class_names", None)
            shown = [names[c] if names else str(c) for c in classes]
            kept = (
                f"{len(classes)} of {task.output_dim} classes "
                f"({', '.join(shown)}), "
            )
        print(
            f"smoke run: {kept}{'/'.join(str(len(r)) for r in rows)} "
            f"train/valid/test samples, labeled fraction {fraction:.3g}, "
            f"1 epoch, seed {config.seeds[0]}",
            flush=True,
        )
    return splits, config


def sentiment_recipe(description, dataset, argv=None):
    """The MOSI / MOSEI recipe: regression in [-3, 3] (7 PU bins), one
    `SequenceEncoder` per modality, the paper's Table 1 metrics."""

    def add_arguments(parser):
        parser.add_argument(
            "--unaligned", action="store_true", help="the unaligned file"
        )

    def load(args):
        module = importlib.import_module(f"keras_robult.datasets.{dataset}")
        return module.load_data(args.data_dir, aligned=not args.unaligned)

    return main(
        description,
        load,
        lambda: Regression(bins=(-3, 3)),
        dataset,
        SENTIMENT_METRICS,
        add_arguments=add_arguments,
        argv=argv,
    )
