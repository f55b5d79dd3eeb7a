"""The `robult` command: train and evaluate on any modality subset."""

import argparse
import datetime
import hashlib
import os
import sys

from keras_robult_cli import (
    BACKENDS,
    DISTRIBUTE_HELP,
    EXPORT_BACKEND,
    QUIET_TF_LOG_LEVEL,
    add_missing_modality_arguments,
    choose_backend,
    ensure_backend,
    late_fusion_option,
    missing_modality_options,
    native_stderr_silenced,
)

# The results' method name of each model class (`robult evaluate`).
METHOD_NAMES = {
    "Robult": "robult",
    "GMC": "gmc",
    "UnimodalEnsemble": "unimodal",
    "ActionMAE": "actionmae",
    "PromptTransformer": "prompt-trans",
}


class _DefaultsHelp(argparse.HelpFormatter):
    """Help that shows each option's default, where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            default in (None, False, argparse.SUPPRESS)
            or "default" in text
            or not action.option_strings
        ):
            return text
        if isinstance(default, list):
            default = " ".join(map(str, default))
        return f"{text} (default: {default})".strip()


def _add_records_arguments(parser):
    """The options of image+text records files (train and evaluate)."""
    from keras_robult.experiments.image_text_recipe import (
        add_image_text_arguments,
    )

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
    add_image_text_arguments(records)


def _parser():
    from keras_robult.version import __version__

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

    train = sub.add_parser(
        "train",
        formatter_class=_DefaultsHelp,
        help="train and evaluate (default: Robult on the embedded mfeat data)",
        description=(
            "Trains each method on a stratified semi-supervised split for "
            "every seed and reports the test metric on every modality "
            "subset and along a missing-rate curve."
        ),
    )
    train.add_argument(
        "--data",
        help="an .npz file with x_<modality> arrays and y (optionally "
        "is_labeled, test, modality_mask), or image+text records (.csv "
        "with a header row, or .jsonl); default: embedded mfeat",
    )
    train.add_argument(
        "--task",
        choices=("classification", "regression", "multilabel"),
        help="inferred from y when omitted (.npz; records files: "
        "classification)",
    )
    train.add_argument(
        "--bins",
        type=int,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="regression: the integer target bins LOW, LOW+1, ..., HIGH of "
        "the PU loss (e.g. -3 3 for sentiment scores); default: 7 bins "
        "spanning the file's targets (Regression.from_targets)",
    )
    train.add_argument(
        "--labeled-fraction",
        type=float,
        default=0.05,
        help="fraction of the training split that keeps its label "
        "(stratified); a file with is_labeled uses its own labels",
    )
    train.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="one split, initialisation and training per seed; tables "
        "report the mean and standard deviation over them",
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=150,
        help="at most this many epochs (early stopping on a validation "
        "split where there is one)",
    )
    train.add_argument(
        "--batch-size", type=int, default=256, help="training batch size"
    )
    train.add_argument(
        "--latent-dim",
        type=int,
        default=128,
        help="width of the shared latent space (split evenly between the "
        "redundant and unique parts); the same for every method",
    )
    train.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="methods to compare (default: all of them)",
    )
    add_missing_modality_arguments(train)
    train.add_argument("--out", help="results folder")
    _add_records_arguments(train)
    train.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else jax when "
        "installed, else tensorflow)",
    )
    train.add_argument(
        "--distribute", action="store_true", help=DISTRIBUTE_HELP
    )
    train.add_argument("--quiet", action="store_true", help="no progress")
    train.add_argument(
        "--restart",
        action="store_true",
        help="forget the finished (method, seed) pairs in --out and start "
        "over (by default a rerun with the same --out resumes)",
    )

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
    _add_records_arguments(evaluate)

    export = sub.add_parser(
        "export",
        help="export a saved .keras model as a SavedModel for TF Serving",
        description=(
            "Writes a SavedModel whose serving_default signature takes one "
            "named input per modality plus modality_mask (any subset per "
            "sample) and returns prediction, modality_predictions and "
            "num_modalities; plus one serve_<modality> endpoint each."
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
    for command in (train, evaluate, export):
        command.add_argument(
            "--verbose",
            action="store_true",
            help="show TensorFlow's native start-up logging",
        )
    return parser


def _load_frameworks(verbose):
    """Imports Keras and TensorFlow (the data pipeline's engine) and
    initialises TensorFlow's devices, quietly unless `verbose`."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_LOG_LEVEL)
    with native_stderr_silenced(not verbose):
        import keras  # noqa: F401
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _make_task(name, y, classes=None, bins=None):
    from keras_robult import tasks

    if bins is not None and name != "regression":
        raise ValueError(f"--bins is for regression; the task is {name}.")

    if classes is not None and name == "multilabel":
        return tasks.MultiLabel(len(classes))  # label names (records files)
    if classes is not None:
        if name != "classification":
            raise ValueError(
                f"The labels are class names ({', '.join(classes[:3])}, "
                f"...); --task {name} needs numeric labels."
            )
        return tasks.Classification(len(classes), class_names=classes)
    if name == "classification":
        return tasks.Classification(int(max(2, y.max() + 1)))
    if name == "multilabel":
        if y.ndim != 2:
            raise ValueError(
                "--task multilabel needs y of shape (samples, labels), one "
                f"0/1 column per label; y has shape {y.shape}."
            )
        return tasks.MultiLabel(y.shape[1])
    if bins is not None:
        return tasks.Regression(bins=tuple(bins))
    return tasks.Regression.from_targets(y)


def _load_data(path, task_name=None, bins=None):
    """`(data, task)` from a user's `.npz` file, checked as far as it can
    be before training: arrays, labels against the task, and per-sample
    shapes the built-in encoders take (vectors or sequences)."""
    from keras_robult.data.npz import infer_task_name, load_npz
    from keras_robult.experiments.method import check_encoder_shape
    from keras_robult.validation import MASK_KEY, check_arrays

    data = load_npz(path)
    y = data["y"]
    task = _make_task(task_name or infer_task_name(y), y, data["classes"], bins)
    modalities = [m for m in data["x"] if m != MASK_KEY]
    for name in modalities:
        if data["x"][name].dtype.kind in "US":
            raise ValueError(
                f"Modality '{name}' holds text; the command's encoders take "
                "numbers. Embed or tokenize the text first, or use the "
                "Python API with a text encoder."
            )
        check_encoder_shape(name, data["x"][name].shape[1:])
    check_arrays(data["x"], {"label": y}, modalities, task)
    return data, task


def _load_records(args):
    """`(data, task, skipped image count)` from a user's image+text
    records file: its images and texts as cached backbone features."""
    from keras_robult.data.image_text_records import ImageTextRecords
    from keras_robult.experiments.backbone_features import without_images
    from keras_robult.experiments.image_text_recipe import (
        backbone_settings,
        finetune_source,
        records_features,
    )
    from keras_robult.validation import MASK_KEY

    task_name = args.task or "classification"
    records = ImageTextRecords.from_file(
        args.data,
        image_column=args.image_column,
        text_column=args.text_column,
        label_column=args.label_column,
        task=task_name,
    )
    if not records.is_labeled.any():
        raise ValueError(
            f"{args.data}: no sample has a label (column "
            f"'{args.label_column}')."
        )
    backbones = backbone_settings(args)
    x, features = records_features(
        args, records, backbones, os.path.basename(args.data)
    )
    source = None
    if args.finetune:  # record rows (keras_robult.experiments.finetune)
        from keras_robult.experiments.finetune import index_arrays

        # Standardisation statistics of the frozen features of every
        # readable sample (no labels are read: as for a feature file).
        readable = without_images(records, features["unreadable"])
        source = finetune_source(args, readable.subset(features["kept"]), x)
        x = index_arrays(len(features["kept"]), x[MASK_KEY])
    labels = features["labels"]
    is_labeled = features["is_labeled"]
    classes = None if records.classes is None else list(records.classes)
    task = _make_task(
        task_name, labels[is_labeled], classes, getattr(args, "bins", None)
    )
    data = {
        "x": x,
        "y": labels,
        # All labeled: the protocol draws --labeled-fraction of them;
        # otherwise the file's own labeled samples are the labeled set.
        "is_labeled": None if is_labeled.all() else is_labeled,
        "test": None,
        "classes": classes,
        "finetune": source,
        "backbones": backbones,
    }
    return data, task, len(features["unreadable"])


def _out_dir(out, dataset):
    if out:
        return out
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("results", f"{dataset}-{stamp}")


def _train(args):
    import keras
    import numpy as np

    from keras_robult.data.npz import infer_task_name
    from keras_robult.datasets import mfeat
    from keras_robult.distribution import training_context
    from keras_robult.experiments.image_text_recipe import backbone_summary
    from keras_robult.experiments.protocol import run_protocol
    from keras_robult.experiments.registry import (
        DEFAULT_METHODS,
        method_factories,
    )
    from keras_robult.experiments.report import markdown_table, write_results
    from keras_robult.experiments.run_store import RunStore

    if not 0 < args.labeled_fraction <= 1:
        raise ValueError(
            f"--labeled-fraction must be in (0, 1]; got {args.labeled_fraction}"
        )
    if args.epochs < 1 or args.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be positive")
    if min(args.seeds) < 0:
        raise ValueError(
            "--seeds must be non-negative integers; got "
            + " ".join(map(str, args.seeds))
        )
    gaps = missing_modality_options(args)
    skipped = None
    if args.data and args.data.endswith((".csv", ".jsonl")):
        data, task, skipped = _load_records(args)
        dataset = os.path.splitext(os.path.basename(args.data))[0]
        source = {"data": os.path.abspath(args.data)}
        source["data_sha256"] = _file_digest(args.data)
        source["backbones"] = backbone_summary(args)
    elif args.data:
        data, task = _load_data(args.data, args.task, args.bins)
        dataset = os.path.splitext(os.path.basename(args.data))[0]
        source = {"data": os.path.abspath(args.data)}
        source["data_sha256"] = _file_digest(args.data)
    else:
        x, y = mfeat.load_data()
        data = {"x": x, "y": y, "is_labeled": None, "test": None}
        task = _make_task(args.task or infer_task_name(y), y, bins=args.bins)
        dataset = "mfeat"
        source = {"data": "mfeat (embedded)"}
    y = np.asarray(data["y"])
    classes = data.get("classes")
    names = args.methods or list(DEFAULT_METHODS)
    if args.latent_dim < 2:
        raise ValueError("--latent-dim must be at least 2")
    methods = method_factories(
        names,
        latent_dim=args.latent_dim,
        finetune=data.get("finetune"),
        modality_dropout=args.modality_dropout,
        robult_options=late_fusion_option(args),
    )
    out = _out_dir(args.out, dataset)
    models_dir = os.path.join(out, "models")
    store = RunStore(
        out,
        dict(
            source,
            task=keras.saving.serialize_keras_object(task),
            labeled_fraction=args.labeled_fraction,
            seeds=list(args.seeds),
            epochs=args.epochs,
            batch_size=args.batch_size,
            latent_dim=args.latent_dim,
            methods=names,
            backend=keras.backend.backend(),
            **gaps,
        ),
        restart=args.restart,
    )

    def save_models(name, seed):
        os.makedirs(models_dir, exist_ok=True)
        return os.path.join(models_dir, f"{name}-seed{seed}.keras")

    verbose = 0 if args.quiet else 1
    if verbose:
        print(
            f"robult train: {dataset}, {task}, {len(y)} samples, modalities "
            f"{[m for m in data['x'] if m != 'modality_mask']}, methods "
            f"{names}, seeds {args.seeds}, backend {keras.backend.backend()}",
            flush=True,
        )
    with training_context(
        args.distribute,
        args.batch_size,
        finetune=data.get("finetune") is not None,
    ) as devices:
        if verbose and args.distribute:
            print(f"data parallel over {devices} devices", flush=True)
        results, splits = run_protocol(
            data["x"],
            y,
            task,
            methods,
            seeds=args.seeds,
            labeled_fraction=args.labeled_fraction,
            epochs=args.epochs,
            batch_size=args.batch_size,
            test_mask=data["test"],
            is_labeled=data["is_labeled"],
            dataset=dataset,
            verbose=verbose,
            save_models=save_models,
            store=store,
            train_missing_rate=args.train_missing_rate,
        )
    results.update(gaps)
    if classes is not None:
        results["classes"] = list(classes)
    if skipped is not None:
        results["skipped_images"] = skipped
        results["backbones"] = backbone_summary(args)
    paths = write_results(results, splits, out)
    if skipped is not None and args.raw_models:
        from keras_robult.experiments.image_text_recipe import (
            write_raw_models,
        )

        write_raw_models(args, data["backbones"], out)
    print()
    print(markdown_table(results))
    names = ", ".join(os.path.basename(p) for p in paths.values())
    print(f"Results written to {out}/ ({names})")
    return 0


def _load_model(path):
    """A keras_robult model from a .keras file, or a clear error."""
    import keras

    import keras_robult  # noqa: F401  (registers the serialisable classes)
    from keras_robult.models.multimodal_model import MultimodalModel

    if not os.path.exists(path):
        raise FileNotFoundError(f"No such model file: {path}")
    try:
        model = keras.models.load_model(path)
    except Exception as error:
        raise ValueError(
            f"{path} could not be loaded as a Keras model: "
            f"{type(error).__name__}: {str(error).splitlines()[0]}"
        ) from error
    if not isinstance(model, MultimodalModel):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a keras_robult "
            "model (Robult, GMC, UnimodalEnsemble, ActionMAE, "
            "PromptTransformer)."
        )
    return model


def _export(args):
    import keras

    from keras_robult.export import export_saved_model

    if os.path.exists(args.out) and not args.overwrite:  # before the load
        raise ValueError(
            f"The output directory {args.out} exists; pass --overwrite to "
            "replace it."
        )
    model = _load_model(args.model)
    if not args.quiet:
        print(
            f"robult export: {args.model} ({type(model).__name__}, "
            f"modalities {list(model.modalities)}) loaded under the "
            f"{keras.backend.backend()} backend",
            flush=True,
        )
    export_saved_model(
        model,
        args.out,
        overwrite=args.overwrite,
        modality_endpoints=not args.no_modality_endpoints,
        verbose=not args.quiet,
    )
    return 0


def _to_model_classes(data, task):
    """Class-name labels of an evaluation file as the model's class
    indices (the file may hold fewer classes, in another order)."""
    import numpy as np

    names = getattr(task, "class_names", None)
    if not data.get("classes") or not names:
        return data["y"]
    unknown = sorted(set(data["classes"]) - set(names))
    if unknown:
        raise ValueError(
            f"The data's classes {unknown} are not among the model's "
            f"{list(names)}."
        )
    lookup = np.asarray([list(names).index(c) for c in data["classes"]])
    return lookup[np.asarray(data["y"])]


def _evaluate(args):
    import numpy as np

    from keras_robult.data.npz import load_npz
    from keras_robult.experiments.metrics import PRIMARY
    from keras_robult.experiments.protocol import (
        _summarise,
        evaluate_predictor,
    )
    from keras_robult.experiments.report import markdown_table, write_results

    model = _load_model(args.model)
    modalities = list(model.modalities)
    if args.data.endswith((".csv", ".jsonl")):
        args.task, args.bins, args.finetune = model.task.name, None, False
        data, _, _ = _load_records(args)
        data["y"] = _to_model_classes(data, model.task)
        labeled = data["is_labeled"]
        data["test"] = None if labeled is None else np.asarray(labeled, bool)
    else:
        data = load_npz(args.data)
    x = data["x"]
    given = [m for m in x if m != "modality_mask"]
    if sorted(given) != sorted(modalities):
        raise ValueError(
            f"The data's modalities {given} do not match the model's "
            f"{modalities}."
        )
    y = np.asarray(data["y"])
    rows = (
        np.flatnonzero(data["test"])
        if data["test"] is not None
        else np.arange(len(y))
    )
    model.task.validate_labels(y[rows])
    x_eval = {k: np.asarray(v)[rows] for k, v in x.items()}

    def predict(inputs):
        return model.predict(inputs, batch_size=1024, verbose=0)["prediction"]

    subset_metrics, curve = evaluate_predictor(
        predict, x_eval, y[rows], model.task.name, modalities
    )
    method = METHOD_NAMES.get(type(model).__name__, type(model).__name__)
    per_subset = {
        (method, subset, metric): [value]
        for subset, metrics in subset_metrics.items()
        for metric, value in metrics.items()
    }
    dataset = os.path.splitext(os.path.basename(args.data))[0]
    results = _summarise(
        dataset,
        (model.task, PRIMARY[model.task.name][0]),
        float("nan"),
        [0],
        modalities,
        per_subset,
        {method: [curve]},
    )
    results["labeled_fraction"] = None  # not a training run
    results["model"] = os.path.basename(args.model)
    out = _out_dir(args.out, dataset)
    write_results(results, {0: {"test": rows.tolist()}}, out)
    print(markdown_table(results))
    print(f"Results written to {out}/")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        ensure_backend(
            choose_backend(getattr(args, "backend", None)),
            ["-m", "keras_robult_cli", *argv],
        )
        _load_frameworks(args.verbose)
        if args.command == "train":
            return _train(args)
        if args.command == "export":
            return _export(args)
        return _evaluate(args)
    except (
        ValueError,
        FileNotFoundError,
        KeyError,
        OSError,
        RuntimeError,
    ) as error:
        message = str(error).strip().splitlines()
        print(
            f"robult: error: {message[0] if message else error}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("robult: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
