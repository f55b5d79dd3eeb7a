"""Reads a user's dataset from one `.npz` file."""

import os

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

    Returns:
        dict with `x` (modality -> array, plus `modality_mask` if given),
        `y`, and `is_labeled` / `test` (bool arrays or None).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such data file: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError(f"{path} is not a readable .npz file ({error}).")
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
        x = {m: archive[f"x_{m}"] for m in modalities}
        if MASK_KEY in keys:
            x[MASK_KEY] = archive[MASK_KEY].astype("float32")
        data = {"x": x, "y": archive["y"]}
        for key in ("is_labeled", "test"):
            data[key] = archive[key].astype(bool) if key in keys else None
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
