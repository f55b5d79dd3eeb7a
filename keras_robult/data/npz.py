"""Reads a user's dataset from one `.npz` file."""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np
from numpy.typing import ArrayLike

from keras_robult.utils.validation import MASK_KEY, check_arrays

OPTIONAL_KEYS = ("is_labeled", "test", MASK_KEY)


def infer_task_name(y: ArrayLike) -> str:
    """ "multilabel" for a 0/1 matrix, "classification" for integer labels,
    "regression" otherwise."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        if np.all((y == 0) | (y == 1)):
            return "multilabel"
        raise ValueError(
            f"`y` has shape {y.shape} but is not a 0/1 multi-label matrix."
        )
    values = y.reshape(-1)
    if np.issubdtype(values.dtype, np.integer) or np.issubdtype(
        values.dtype, np.bool_
    ):
        return "classification"
    if np.all(np.isfinite(values)) and np.all(np.mod(values, 1) == 0):
        return "classification"
    return "regression"


def load_npz(path: str | os.PathLike) -> dict:
    """Loads `x_<modality>` arrays, `y`, and optional `is_labeled`, `test`
    and `modality_mask` from an `.npz` file and checks them.

    Labels given as text (class names) become class indices in sorted
    name order; the names are returned in `classes`.

    Returns:
        dict with `x` (modality -> array, plus `modality_mask` if given),
        `y`, `is_labeled` / `test` (bool arrays or None) and `classes`
        (list of class names, or None).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such data file: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not an .npz archive (the zip of named arrays that "
            "numpy.savez writes); it cannot be read as data."
        )
    _check_members(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError(
            f"{path} is not a readable .npz archive "
            f"({type(error).__name__}: {_first_line(error)})."
        ) from None
    with archive:
        keys = list(archive.keys())
        modalities = [k[2:] for k in keys if k.startswith("x_") and len(k) > 2]
        unknown = [
            k
            for k in keys
            if not k.startswith("x_") and k != "y" and k not in OPTIONAL_KEYS
        ]
        if MASK_KEY in modalities:
            raise ValueError(
                f"{path}: the array 'x_{MASK_KEY}' would be a modality named "
                f"'{MASK_KEY}'; save the mask as '{MASK_KEY}' (no x_)."
            )
        if not modalities or "y" not in keys or unknown:
            raise ValueError(
                f"{path} must hold one array 'x_<modality>' per modality and "
                f"the labels 'y' (optionally {', '.join(OPTIONAL_KEYS)}); it "
                f"holds {sorted(keys)}"
                + (f" (unknown: {unknown})" if unknown else "")
                + "."
            )
        try:
            arrays = {key: archive[key] for key in keys}
        except Exception as error:
            # Object (pickled) arrays, truncated or corrupted members, an
            # unsupported compression: never a half-read array.
            raise ValueError(
                f"{path} holds an array that cannot be read safely "
                f"({type(error).__name__}: {_first_line(error)}); "
                "save plain numeric arrays (and text labels as strings)."
            ) from None
    x = {m: arrays[f"x_{m}"] for m in modalities}
    if MASK_KEY in arrays:
        x[MASK_KEY] = _zeros_and_ones(arrays[MASK_KEY], MASK_KEY)
    data = {"x": x, "y": arrays["y"], "classes": None}
    for key in ("is_labeled", "test"):
        data[key] = (
            _zeros_and_ones(arrays[key], key).astype(bool)
            if key in arrays
            else None
        )
    _check_labels(data["y"])
    num = len(data["y"])
    for key in ("is_labeled", "test"):
        if data[key] is not None and data[key].shape != (num,):
            raise ValueError(
                f"'{key}' must be a boolean array of shape ({num},); "
                f"received {data[key].shape}."
            )
    data["y"], data["classes"] = _labels_and_classes(
        data["y"], data["is_labeled"]
    )
    check_arrays(x, {"label": data["y"]}, modalities)
    if data["test"] is not None and (
        data["test"].all() or not data["test"].any()
    ):
        raise ValueError("'test' must mark some, but not all, samples.")
    return data


def _labels_and_classes(y, is_labeled):
    """`(labels, class names or None)`. Only the labeled rows' labels
    mean anything: an unlabeled row may carry any placeholder (NaN, -1,
    an empty name), which becomes a copy of the first labeled row's
    label, so that nothing (task inference, label checks, class names)
    reads it. Class names become class indices in sorted name order."""
    rows = np.ones(len(y), bool) if is_labeled is None else is_labeled
    if not rows.any():
        raise ValueError(
            "'is_labeled' marks no sample as labeled; at least one labeled "
            "sample is needed."
        )
    if not rows.all():
        y = y.copy()
        y[~rows] = y[np.flatnonzero(rows)[0]]
    if y.dtype.kind not in "US":
        return y, None
    names, indices = np.unique(y, return_inverse=True)
    return indices.reshape(y.shape), [str(n) for n in names]


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "no message"


def _check_members(path):
    """Refuses an archive whose members are not `.npy` arrays or whose
    `.npy` headers claim more data than the member holds (a truncated or
    corrupted file, or a header crafted to make the reader allocate
    terabytes), before anything is read or allocated."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise ValueError(
                        f"member '{info.filename}' is not a NumPy array (.npy)"
                    )
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        header = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        header = np.lib.format.read_array_header_2_0(member)
                    else:  # format 3.0: read by np.load, after this check
                        continue
                    offset = member.tell()
                shape, _, dtype = header
                if dtype.hasobject:
                    raise _ObjectArray(info.filename[:-4], dtype)
                claimed = math.prod(shape) * dtype.itemsize
                if offset + claimed > info.file_size:
                    raise ValueError(
                        f"array '{info.filename[:-4]}' claims shape {shape} "
                        f"of {dtype} ({claimed:,} bytes) but its member "
                        f"holds {max(info.file_size - offset, 0):,}"
                    )
    except _ObjectArray as error:
        raise ValueError(
            f"{path}: array '{error.name}' is an object array ({error.dtype}), "
            "which only pickle can read, and pickles are not loaded (they "
            "can run code). Save plain numeric arrays (and text labels as "
            "strings: np.asarray(labels, dtype=str))."
        ) from None
    except Exception as error:
        raise ValueError(
            f"{path} is not a readable .npz archive "
            f"({type(error).__name__}: {_first_line(error)})."
        ) from None


class _ObjectArray(Exception):
    def __init__(self, name, dtype):
        super().__init__(name)
        self.name, self.dtype = name, dtype


def _zeros_and_ones(array, key):
    """A mask or flag array as float32, refused unless it holds booleans
    or the numbers 0 and 1."""
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"'{key}' must hold booleans or 0 / 1; received dtype "
            f"{array.dtype}."
        )
    array = array.astype("float32")
    if not np.all((array == 0) | (array == 1)):
        bad = array[(array != 0) & (array != 1)][0].item()
        raise ValueError(f"'{key}' must hold 0 or 1; found {bad!r}.")
    return array


def _check_labels(y):
    """Labels are numbers (class indices, values, a 0/1 matrix) or class
    names, one row per sample."""
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(
            "The labels 'y' must have one row per sample (shape (samples,) "
            f"or (samples, labels)); received shape {y.shape}."
        )
    if y.dtype.kind not in "biufUS":
        raise ValueError(
            "The labels 'y' must be numbers or class names (text); "
            f"received dtype {y.dtype}."
        )
