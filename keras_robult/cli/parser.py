"""The `robult` command's parser: `train`, `tune`, `evaluate`, `export`."""

import argparse

from keras_robult.cli.options import (
    DefaultsHelp,
    add_backbone_arguments,
    add_comparison_arguments,
    add_run_arguments,
    add_training_arguments,
    add_verbose_argument,
)
from keras_robult.experiments.protocol.options import DEFAULTS
from keras_robult.experiments.tune import OBJECTIVES, TUNERS
from keras_robult.version import __version__
from keras_robult_cli import BACKENDS, EXPORT_BACKEND


def robult_parser():
    """The parser of the `robult` command."""
    parser = argparse.ArgumentParser(
        prog="robult",
        description=(
            "Robult (IJCAI 2025) for Keras 3: train multimodal models that "
            "are robust to missing modalities with few labels, and compare "
            "methods on every modality subset."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"robult {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_tune, _add_evaluate, _add_export):
        add_verbose_argument(add(sub))
    return parser


def _add_records_arguments(parser, training=True):
    """The options of image+text records files (train, tune, and without
    the training-only ones, evaluate)."""
    records = parser.add_argument_group(
        "image+text records (--data FILE.csv / .jsonl)",
        "Images (paths relative to the file) and texts go through frozen "
        "keras-hub backbones once; their features are cached and every "
        "method trains on them. An empty cell is a missing modality, an "
        "empty label an unlabeled sample.",
    )
    records.add_argument(
        "--image-column", default="image", help="column of the image paths"
    )
    records.add_argument(
        "--text-column", default="text", help="column of the texts"
    )
    records.add_argument(
        "--label-column",
        default="label",
        help="column of the labels (class names, indices, numbers, or "
        "|-separated names with --task multilabel)",
    )
    add_backbone_arguments(records, training)


def _add_train(sub):
    train = sub.add_parser(
        "train",
        formatter_class=DefaultsHelp,
        help="train and evaluate (default: Robult on the embedded mfeat data)",
        description=(
            "Trains each method on a stratified semi-supervised split for "
            "every seed and reports the test metric on every modality "
            "subset and along a missing-rate curve."
        ),
    )
    _add_data_arguments(train)
    add_comparison_arguments(
        train,
        epochs=DEFAULTS.epochs,
        batch_size=DEFAULTS.batch_size,
        epochs_help="at most this many epochs (early stopping on a "
        "validation split where there is one)",
    )
    _add_records_arguments(train)
    add_run_arguments(train)
    return train


def _add_data_arguments(parser):
    """`--data`, `--task`, `--bins` (train and tune)."""
    parser.add_argument(
        "--data",
        help="an .npz file with x_<modality> arrays and y (optionally "
        "is_labeled, test, modality_mask), or image+text records (.csv "
        "with a header row, or .jsonl); default: embedded mfeat",
    )
    parser.add_argument(
        "--task",
        choices=("classification", "regression", "multilabel"),
        help="inferred from y when omitted (.npz; records files: "
        "classification)",
    )
    parser.add_argument(
        "--bins",
        type=int,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="regression: the integer target bins LOW, LOW+1, ..., HIGH of "
        "the PU loss (e.g. -3 3 for sentiment scores); default: 7 bins "
        "spanning the file's targets (Regression.from_targets)",
    )


def _add_tune(sub):
    tune = sub.add_parser(
        "tune",
        formatter_class=DefaultsHelp,
        help="search a Robult variant's hyper-parameters (KerasTuner) on a "
        "validation split carved from the training split",
        description=(
            "Sets each seed's test split aside as robult train draws it, "
            "carves a stratified validation split from the training split "
            "(the data's own validation split where it has one), and "
            "searches the hyper-parameters with KerasTuner, each trial "
            "trained once per seed and scored on the validation split. "
            "Writes best_hparams.json for robult train --hparams (needs "
            "the tune extra: pip install 'keras-robult[tune]')."
        ),
    )
    _add_data_arguments(tune)
    tune.add_argument(
        "--method", default="robult", help="the Robult variant searched"
    )
    tune.add_argument(
        "--tuner",
        choices=TUNERS,
        default="bayesian",
        help="KerasTuner's Bayesian optimisation, or Hyperband (its epochs "
        "are Hyperband's budget, at most --epochs)",
    )
    tune.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="single-mean",
        help="validation score: the mean of the primary metric over the "
        "single-modality subsets and the full set, the full set's, or the "
        "missing-rate AUC",
    )
    tune.add_argument(
        "--max-trials", type=int, default=20, help="trials of the search"
    )
    add_training_arguments(
        tune,
        seeds=[0],
        seeds_help="each trial trains once per seed (each its own splits); "
        "its score is their mean",
        labeled_fraction_help="as in robult train: the trials train with as "
        "many labels as its training split holds",
        epochs=DEFAULTS.epochs,
        epochs_help="the defaults' epochs and, with --tuner hyperband, the "
        "largest budget (the Bayesian search draws epochs from its space)",
        batch_size=DEFAULTS.batch_size,
        latent_dim_help="the defaults' latent width (the search draws it)",
    )
    tune.add_argument(
        "--validation-fraction",
        type=float,
        default=0.2,
        help="share of the training split carved off as validation "
        "(stratified)",
    )
    tune.add_argument(
        "--space",
        metavar="FILE",
        help="a JSON or YAML object narrowing the search space: option -> "
        '{"min": A, "max": B}, a list of choices, a value, or null (see '
        'docs/own-data.md, "Searching them")',
    )
    tune.add_argument(
        "--out",
        help="search folder (default: results/<data>-tune-<time>/); a rerun "
        "with the same --out resumes after the finished trials",
    )
    tune.add_argument("--backend", choices=BACKENDS)
    tune.add_argument("--quiet", action="store_true", help="no progress")
    tune.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="TensorBoard logs of every trial's loss terms per epoch, in "
        "DIR/trial-ID/METHOD-seedN",
    )
    tune.add_argument(
        "--restart",
        action="store_true",
        help="forget the trials in --out and start over",
    )
    _add_records_arguments(tune)
    return tune


def _add_evaluate(sub):
    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a saved .keras model on every modality subset",
    )
    evaluate.add_argument("--model", required=True, help="a .keras file")
    evaluate.add_argument(
        "--data",
        required=True,
        help="an .npz file (its test split if it marks one, else every "
        "sample), or image+text records (.csv / .jsonl: every labeled "
        "record, through the backbones the model was trained on)",
    )
    evaluate.add_argument(
        "--out", help="results folder (default: results/<data>-<time>/)"
    )
    evaluate.add_argument("--backend", choices=BACKENDS)
    evaluate.add_argument("--quiet", action="store_true", help="no log")
    _add_records_arguments(evaluate, training=False)
    return evaluate


def _add_export(sub):
    export = sub.add_parser(
        "export",
        help="export a saved .keras model as a SavedModel for TF Serving",
        description=(
            "Writes a SavedModel whose serving_default signature takes one "
            "named input per modality plus modality_mask (any subset per "
            "sample) and returns prediction, modality_predictions, "
            "num_modalities and the modalities it dropped (NaN or inf "
            "inputs: missing), and a classification's predicted_class; "
            "plus one serve_<modality> endpoint each."
        ),
    )
    export.add_argument("--model", required=True, help="a .keras file")
    export.add_argument("--out", required=True, help="output directory")
    export.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out"
    )
    export.add_argument(
        "--no-modality-endpoints",
        action="store_true",
        help="only the serving_default signature",
    )
    export.add_argument(
        "--backend",
        choices=BACKENDS,
        default=EXPORT_BACKEND,
        help="backend that loads the model (default tensorflow: a .keras "
        "file is backend-neutral, and TensorFlow exports it directly)",
    )
    export.add_argument("--quiet", action="store_true", help="no log")
    return export
