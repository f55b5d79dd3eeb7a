"""Reads a user's dataset from one `.npz` file."""

import os
import zipfile

import numpy as np

from keras_robult.validation import MASK_KEY, check_arrays

OPTIONAL_KEYS = ("is_labeled", "test", MASK_KEY)


def infer_task_name(y):
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


def load_npz(path):
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
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError(
            f"{path} is not a readable .npz archive "
            f"({type(error).__name__}: {error})."
        ) from None
    with archive:
        keys = list(archive.keys())
        modalities = [k[2:] for k in keys if k.startswith("x_") and len(k) > 2]
        unknown = [
            k
            for k in keys
            if not k.startswith("x_") and k != "y" and k not in OPTIONAL_KEYS
        ]
        if not modalities or "y" not in keys or unknown:
            raise ValueError(
                f"{path} must hold one array 'x_<modality>' per modality and "
                f"the labels 'y' (optionally {', '.join(OPTIONAL_KEYS)}); it "
                f"holds {sorted(keys)}"
                + (f" (unknown: {unknown})" if unknown else "")
                + "."
            )
        try:
            x = {m: archive[f"x_{m}"] for m in modalities}
            if MASK_KEY in keys:
                x[MASK_KEY] = archive[MASK_KEY].astype("float32")
            data = {"x": x, "y": archive["y"], "classes": None}
            for key in ("is_labeled", "test"):
                data[key] = archive[key].astype(bool) if key in keys else None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            # Object (pickled) arrays, truncated or corrupted members.
            raise ValueError(
                f"{path} holds an array that cannot be read safely "
                f"({type(error).__name__}: {str(error).splitlines()[0]}); "
                "save plain numeric arrays (and text labels as strings)."
            ) from None
    if data["y"].dtype.kind in "US":
        # Class names: classes are their sorted order.
        names, data["y"] = np.unique(data["y"], return_inverse=True)
        data["classes"] = [str(n) for n in names]
    num = len(data["y"])
    for key in ("is_labeled", "test"):
        if data[key] is not None and data[key].shape != (num,):
            raise ValueError(
                f"'{key}' must be a boolean array of shape ({num},); "
                f"received {data[key].shape}."
            )
    check_arrays(x, {"label": data["y"]}, modalities)
    if data["test"] is not None and (
        data["test"].all() or not data["test"].any()
    ):
        raise ValueError("'test' must mark some, but not all, samples.")
    return data
