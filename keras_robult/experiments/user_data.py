"""A user's own data as a `ComparisonData`: an `.npz` file, image+text
records (CSV / JSONL) through frozen backbones, or the embedded mfeat.
Each is checked as far as it can be before anything trains."""

import hashlib
import os

import keras
import numpy as np

from keras_robult import tasks
from keras_robult.backbones.features import records_features
from keras_robult.backbones.presets import load_backbones
from keras_robult.data.image_text_records import ImageTextRecords
from keras_robult.data.npz import infer_task_name, load_npz
from keras_robult.datasets import mfeat
from keras_robult.experiments.comparison_data import ComparisonData
from keras_robult.experiments.default_encoders import check_encoder_shape
from keras_robult.experiments.image_text import record_rows
from keras_robult.utils.validation import MASK_KEY, check_arrays

RECORDS_SUFFIXES = (".csv", ".jsonl")


def is_records_file(path):
    """True for image+text records (`.csv`, `.jsonl`)."""
    return str(path).endswith(RECORDS_SUFFIXES)


def make_task(name, y, classes=None, bins=None):
    """The `Task` called `name` for labels `y`: its classes counted from
    `y` or named by `classes`; for regression the PU bins `bins`
    `(low, high)`, default 7 bins spanning the targets
    (`Regression.from_targets`)."""
    if bins is not None and name != "regression":
        raise ValueError(f"`bins` is for regression; the task is {name}.")
    if classes is not None and name == "multilabel":
        return tasks.MultiLabel(len(classes))  # label names (records files)
    if classes is not None:
        if name != "classification":
            raise ValueError(
                f"The labels are class names ({', '.join(classes[:3])}, "
                f"...); `task` {name} needs numeric labels."
            )
        return tasks.Classification(len(classes), class_names=classes)
    if name == "classification":
        return tasks.Classification(class_count(y))
    if name == "multilabel":
        if y.ndim != 2:
            raise ValueError(
                "`task` multilabel needs y of shape (samples, labels), one "
                f"0/1 column per label; y has shape {y.shape}."
            )
        return tasks.MultiLabel(y.shape[1])
    if bins is not None:
        return tasks.Regression(bins=tuple(bins))
    return tasks.Regression.from_targets(y)


def class_count(y):
    """The number of classes of integer labels `y`, which must be the
    class indices `0..K-1` with every class present: a stray value (a
    typo such as 1000 among 0, 1, 2) would otherwise add empty classes
    without a word."""
    values = np.unique(np.asarray(y).reshape(-1)).astype("int64")
    if values.size and values[0] < 0:
        raise ValueError(
            f"Class labels must be indices 0..K-1; found {values[0]}."
        )
    count = int(values[-1]) + 1 if values.size else 0
    if values.size == count:
        return max(2, count)
    gaps = np.setdiff1d(np.arange(count), values)
    shown = ", ".join(str(v) for v in values[:8])
    raise ValueError(
        f"Class labels must be the indices 0..K-1 with every class present; "
        f"the labels hold {values.size} values ({shown}"
        + (", ..." if values.size > 8 else "")
        + f"), so {gaps.size} of the classes 0..{count - 1} would have no "
        f"sample (e.g. {gaps[0]}). Map the labels to 0..{values.size - 1} "
        "first, or save them as class names (text)."
    )


def file_record(path):
    """The data file and its sha256, as the run configuration records
    them."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"data": os.path.abspath(path), "data_sha256": digest.hexdigest()}


def _dataset_name(path):
    return os.path.splitext(os.path.basename(path))[0]


def _with_task(data):
    data.record["task"] = keras.saving.serialize_keras_object(data.task)
    return data


def mfeat_data(task_name=None, bins=None):
    """The embedded mfeat data (six views of handwritten digits)."""
    x, y = mfeat.load_data()
    task = make_task(task_name or infer_task_name(y), y, bins=bins)
    record = {"data": "mfeat (embedded)"}
    return _with_task(ComparisonData(x, y, task, "mfeat", record=record))


def npz_data(path, task_name=None, bins=None):
    """A user's `.npz` file, checked as far as it can be before training:
    arrays, labels against the task, and per-sample shapes the built-in
    encoders take (vectors or sequences)."""
    data = load_npz(path)
    y, is_labeled = data["y"], data["is_labeled"]
    known = y if is_labeled is None else y[is_labeled]
    task = make_task(
        task_name or infer_task_name(known), known, data["classes"], bins
    )
    modalities = [m for m in data["x"] if m != MASK_KEY]
    for name in modalities:
        if data["x"][name].dtype.kind in "US":
            raise ValueError(
                f"Modality '{name}' holds text; the command's encoders take "
                "numbers. Embed or tokenize the text first, or use the "
                "Python API with a text encoder."
            )
        check_encoder_shape(name, data["x"][name].shape[1:])
    targets = {"label": y}
    if is_labeled is not None:
        targets["is_labeled"] = is_labeled.astype("float32")
    check_arrays(data["x"], targets, modalities, task)
    extra = {}
    if data["classes"] is not None:
        extra["classes"] = list(data["classes"])
    comparison = ComparisonData(
        data["x"],
        y,
        task,
        _dataset_name(path),
        test_mask=data["test"],
        is_labeled=data["is_labeled"],
        record=file_record(path),
        extra=extra,
    )
    return _with_task(comparison)


def records_data(
    path,
    backbone_config,
    task_name=None,
    bins=None,
    image_column="image",
    text_column="text",
    label_column="label",
    verbose=1,
):
    """A user's image+text records file (`.csv` with a header row, or
    `.jsonl`) as cached backbone features (or record rows, with
    `backbone_config.finetune`).

    An empty cell is a missing modality, an empty label an unlabeled
    sample; images that cannot be read count as missing. When every
    sample is labeled the protocol draws the labeled fraction; otherwise
    the file's own labeled samples are the labeled set.

    Returns:
        `(data, backbones)`: a `ComparisonData` (its `extra` holds the
        classes, the skipped image count and the backbone settings) and
        the loaded `Backbones`.
    """
    task_name = task_name or "classification"
    records = ImageTextRecords.from_file(
        path,
        image_column=image_column,
        text_column=text_column,
        label_column=label_column,
        task=task_name,
    )
    if not records.is_labeled.any():
        raise ValueError(
            f"{path}: no sample has a label (column '{label_column}')."
        )
    backbones = load_backbones(backbone_config)
    x, features = records_features(
        backbone_config, records, backbones, os.path.basename(path), verbose
    )
    source = None
    if backbone_config.finetune:
        x, source = record_rows(features, records, x, backbone_config)
    labels = features["labels"]
    is_labeled = features["is_labeled"]
    classes = None if records.classes is None else list(records.classes)
    task = make_task(task_name, labels[is_labeled], classes, bins)
    extra = {
        "skipped_images": len(features["unreadable"]),
        "backbones": backbone_config.summary(),
    }
    if classes is not None:
        extra = {"classes": classes, **extra}
    record = dict(file_record(path), backbones=backbone_config.summary())
    data = ComparisonData(
        x,
        labels,
        task,
        _dataset_name(path),
        is_labeled=None if is_labeled.all() else is_labeled,
        record=record,
        extra=extra,
        finetune=source,
        backbone_features=True,
    )
    return _with_task(data), backbones


def as_model_classes(labels, classes, task):
    """Labels of an evaluation file as the model's class indices: class
    names (`classes`, the file's names; `labels` index them) map through
    the model's own `class_names`, whatever subset or order of the
    classes the file holds. Names the model does not know, and names for
    a model trained on class indices, are refused."""
    names = getattr(task, "class_names", None)
    if not classes or task.name != "classification":
        return labels  # indices, or multi-label columns
    if not names:
        raise ValueError(
            f"The data's labels are class names ({', '.join(classes[:3])}"
            + (", ..." if len(classes) > 3 else "")
            + "), but the model was trained on class indices and knows no "
            "names; give the labels as the same indices."
        )
    unknown = sorted(set(classes) - set(names))
    if unknown:
        raise ValueError(
            f"The data's classes {unknown} are not among the model's "
            f"{list(names)}."
        )
    lookup = np.asarray([list(names).index(c) for c in classes])
    return lookup[np.asarray(labels)]
