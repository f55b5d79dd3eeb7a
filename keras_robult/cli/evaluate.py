"""`robult evaluate` and `robult export`: a saved model on every modality
subset of a data file, or as a SavedModel for TF Serving."""

import os

import keras
import numpy as np

from keras_robult.cli.options import backbone_config
from keras_robult.data.npz import load_npz
from keras_robult.experiments.comparison import default_out
from keras_robult.experiments.confidence import calibration_record
from keras_robult.experiments.metrics import PRIMARY
from keras_robult.experiments.protocol import (
    RunInfo,
    Tally,
    evaluate_model,
    summarise_results,
)
from keras_robult.experiments.registry import method_of_model
from keras_robult.experiments.report import (
    markdown_table,
    report_metrics,
    write_results,
)
from keras_robult.experiments.user_data import (
    as_model_classes,
    is_records_file,
    records_data,
)
from keras_robult.export import export_saved_model
from keras_robult.models.multimodal_model import (
    MultimodalModel,
    model_classes,
)
from keras_robult.utils.validation import MASK_KEY


def load_model(path):
    """A keras_robult model from a .keras file, or a clear error."""
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
            f"model ({', '.join(model_classes())})."
        )
    return model


def _evaluation_data(args, model):
    """`(x, y, test rows)` of the data file for `model`."""
    if is_records_file(args.data):
        data, _ = records_data(
            args.data,
            backbone_config(args, finetune=False),
            model.task.name,
            image_column=args.image_column,
            text_column=args.text_column,
            label_column=args.label_column,
            verbose=0 if args.quiet else 1,
        )
        y = as_model_classes(data.y, data.extra.get("classes"), model.task)
        labeled = data.is_labeled
        test = None if labeled is None else np.asarray(labeled, bool)
        x = data.x
    else:
        data = load_npz(args.data)
        # Class names map through the model's own names, never through
        # the sorted names of this file (which may hold fewer classes).
        y = as_model_classes(data["y"], data["classes"], model.task)
        x, test = data["x"], data["test"]
    given = [m for m in x if m != MASK_KEY]
    if sorted(given) != sorted(model.modalities):
        raise ValueError(
            f"The data's modalities {given} do not match the model's "
            f"{list(model.modalities)}."
        )
    y = np.asarray(y)
    rows = np.flatnonzero(test) if test is not None else np.arange(len(y))
    return x, y, rows


def evaluate(args):
    model = load_model(args.model)
    modalities = list(model.modalities)
    x, y, rows = _evaluation_data(args, model)
    model.task.validate_labels(y[rows])
    x_eval = {k: np.asarray(v)[rows] for k, v in x.items()}
    record = evaluate_model(model, x_eval, y[rows])
    method = method_of_model(model)
    primary = PRIMARY[model.task.name][0]
    tally = Tally(primary, verbose=0)
    tally.add(method, record, 0)
    dataset = os.path.splitext(os.path.basename(args.data))[0]
    info = RunInfo(dataset, model.task, primary, None, (0,), modalities)
    results = summarise_results(info, tally)  # not a training run
    results["model"] = os.path.basename(args.model)
    if model.calibration is not None:  # its measures: report_metrics
        results["calibration"] = calibration_record(model.calibration)
    metrics = report_metrics(results)
    out = args.out or default_out(dataset)
    write_results(results, {0: {"test": rows.tolist()}}, out, metrics=metrics)
    for metric in metrics or [None]:
        print(markdown_table(results, metric))
    print(f"Results written to {out}/")
    return 0


def export(args):
    if os.path.exists(args.out) and not args.overwrite:  # before the load
        raise ValueError(
            f"The output directory {args.out} exists; pass --overwrite to "
            "replace it."
        )
    model = load_model(args.model)
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
