"""CMU-MOSI / CMU-MOSEI feature pickles (MulT and MMSA releases)."""

import os

import numpy as np

from keras_robult.datasets.restricted_unpickler import load_pickle

MODALITIES = ("text", "audio", "vision")
#: Split names of the files -> the names the loaders return.
SPLITS = ("train", "valid", "test")


def resolve(path, files, aligned):
    """The pickle to read: `path` itself if it is a file, else the first
    of `files[aligned]` that exists in the directory `path`."""
    if os.path.isfile(path):
        return path
    candidates = files[bool(aligned)]
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"No such file or directory: {path} (expected a pickle, or a "
            f"folder holding one of {list(candidates)})."
        )
    for name in candidates:
        if os.path.exists(os.path.join(path, name)):
            return os.path.join(path, name)
    raise FileNotFoundError(
        f"None of {list(candidates)} is in {path} (aligned={aligned})."
    )


def _array(split, key, path, split_name):
    if key not in split:
        raise ValueError(
            f"{path}: split '{split_name}' has no key '{key}' (it has "
            f"{sorted(split)})."
        )
    try:
        return np.asarray(split[key], "float32")
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{path}: '{split_name}/{key}' is not a numeric array: {error}"
        ) from error


def read_split(split, path, split_name, shapes, log):
    """`(x, y)` of one split of a MulT or MMSA pickle."""
    if not isinstance(split, dict):
        raise ValueError(
            f"{path}: split '{split_name}' is a {type(split).__name__}, "
            "expected a dict of arrays."
        )
    label_key = (
        "regression_labels" if "regression_labels" in split else ("labels")
    )
    y = _array(split, label_key, path, split_name).reshape(-1)
    x = {}
    for name in MODALITIES:
        values = _array(split, name, path, split_name)
        if values.ndim != 3 or values.shape[0] != len(y):
            raise ValueError(
                f"{path}: '{split_name}/{name}' has shape {values.shape}; "
                f"expected ({len(y)}, time, features) (one row per label)."
            )
        # The MulT files' documented shapes (MMSA's text is BERT, 768-d).
        expected = shapes.get(name) if label_key == "labels" else None
        if expected is not None and values.shape[1:] != expected:
            raise ValueError(
                f"{path}: '{split_name}/{name}' has shape {values.shape}; "
                f"expected (samples,) + {expected}."
            )
        bad = ~np.isfinite(values)
        if bad.any():
            log(
                f"{os.path.basename(path)}: {split_name}/{name}: "
                f"{int(bad.sum())} non-finite values (-inf / NaN) set to 0"
            )
            values = np.where(bad, 0.0, values).astype("float32")
        length_key = f"{name}_lengths"
        if length_key in split:  # MMSA: zero the padding steps
            lengths = np.asarray(split[length_key]).reshape(-1)
            steps = np.arange(values.shape[1])[None, :]
            values = values * (steps < lengths[:, None])[..., None]
        x[name] = values.astype("float32")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{path}: '{split_name}/{label_key}' has NaN or inf.")
    return x, y


def load_sentiment(path, files, aligned, shapes, verbose):
    """Train, valid and test `(x, y)` of a MOSI / MOSEI pickle."""
    file = resolve(path, files, aligned)
    data = load_pickle(file)
    if not isinstance(data, dict):
        raise ValueError(
            f"{file}: expected a dict with keys {list(SPLITS)}; found a "
            f"{type(data).__name__}."
        )
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise ValueError(
            f"{file}: missing split(s) {missing}; a MulT / MMSA pickle has "
            f"top-level keys {list(SPLITS)} (found {sorted(data)})."
        )

    def log(message):
        if verbose:
            print(message, flush=True)

    return tuple(
        read_split(data[s], file, s, shapes if aligned else {}, log)
        for s in SPLITS
    )


LOAD_DOC = """Loads {name}'s official splits from a MulT or MMSA pickle.

    The pickle is read with `RestrictedUnpickler` (it cannot run code).
    Non-finite feature values (`-inf` in some audio rows of the MulT files)
    become 0, counted in a log line. MMSA's `audio_lengths` /
    `vision_lengths` zero the padding steps, which `SequenceEncoder` then
    leaves out of attention and pooling.

    Args:
        path: the pickle, or a directory holding one of {files}.
        aligned: bool, the word-aligned file (MulT shapes checked:
            {shapes}) or the unaligned one.
        verbose: bool, print the non-finite counts.

    Returns:
        `((x_train, y_train), (x_valid, y_valid), (x_test, y_test))`, each
        `x` a dict `text` / `audio` / `vision` -> float32 `(N, T, F)` and
        `y` float32 `(N,)` in [-3, 3].
    """


def make_loader(name, files, shapes):
    """The `load_data` function of one dataset."""

    def load_data(path, aligned=True, verbose=True):
        return load_sentiment(path, files, aligned, shapes, verbose)

    load_data.__doc__ = LOAD_DOC.format(
        name=name,
        files=[f for pair in files.values() for f in pair],
        shapes=shapes,
    )
    return load_data
