"""Eager input checks: clear errors before any computation starts.

These run on NumPy-convertible data before `fit` / `evaluate` / `predict`
(and in `keras_robult.data`), so a bad input fails at once with a message
that names the problem, not deep inside a compiled step.
"""

import warnings

import numpy as np

MASK_KEY = "modality_mask"


def check_keys(keys, modalities):
    """Raises if `keys` are not exactly the modalities plus the mask."""
    keys = list(keys)
    missing = [m for m in modalities if m not in keys]
    unknown = [k for k in keys if k not in modalities and k != MASK_KEY]
    if missing or unknown:
        raise ValueError(
            f"Input keys {sorted(keys)} do not match the model's modalities "
            f"{list(modalities)} (plus '{MASK_KEY}'): missing {missing}, "
            f"unknown {unknown}."
        )


def is_string_array(array):
    """True for NumPy arrays of text (`str`, `bytes`, or objects that are
    all `str` / `bytes`), the raw input of a modality whose tokenizer is
    part of the model."""
    if array.dtype.kind in "US":
        return True
    return array.dtype == object and all(
        isinstance(v, (str, bytes)) for v in array.reshape(-1)
    )


def _as_array(value, what, allow_strings=False):
    try:
        array = np.asarray(value)
    except Exception as error:  # e.g. ragged lists
        raise ValueError(f"{what} cannot be read as an array: {error}")
    if allow_strings and array.size and is_string_array(array):
        return array
    # Booleans, integers, floats: not complex numbers (casting drops the
    # imaginary part), dates or durations (NumPy counts timedelta64 as an
    # integer), records or objects.
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{what} must be real numbers"
            + (" (or text)" if allow_strings else "")
            + f"; received dtype {array.dtype}."
        )
    return array


#: How a model reads its inputs (`MultimodalModel._modality_mask`), in the
#: words of the warnings `predict` gives.
PRESENCE_RULE = (
    "a modality is present where its mask value is above 0.5 and its "
    "input holds finite values only"
)


def check_modality_mask(
    mask, num_samples, modalities, allow_empty=False, lenient=False
):
    """Validates a `(samples, M)` 0/1 mask; returns it as float32.

    A row with no modality present is an error unless `allow_empty` (at
    prediction time such a row gets the model's fallback output). With
    `lenient` (prediction), values other than 0 and 1 get a warning and
    are read as the model reads them (`PRESENCE_RULE`) instead of an
    error."""
    mask = _as_array(mask, f"'{MASK_KEY}'")
    if mask.shape != (num_samples, len(modalities)):
        raise ValueError(
            f"'{MASK_KEY}' must have shape ({num_samples}, "
            f"{len(modalities)}), one column per modality "
            f"{list(modalities)}; received shape {mask.shape}."
        )
    if not np.all((mask == 0) | (mask == 1)):
        odd = (mask != 0) & (mask != 1)
        bad = mask[odd][0].item()
        if not lenient:
            raise ValueError(f"'{MASK_KEY}' must hold 0 or 1; found {bad:g}.")
        warnings.warn(
            f"'{MASK_KEY}' holds {_count(int(odd.sum()), 'value')} other "
            f"than 0 and 1 (e.g. {bad:g}); the model reads them by its "
            f"rule: {PRESENCE_RULE}.",
            stacklevel=4,
        )
        mask = (mask > 0.5).astype(mask.dtype)
    empty = np.flatnonzero(mask.sum(axis=1) == 0)
    if empty.size and not allow_empty:
        raise ValueError(
            f"Sample {empty[0]} has every modality missing ("
            f"{_count(empty.size, 'such sample')}); every sample needs at "
            "least one present modality."
        )
    return mask.astype("float32")


def check_arrays(
    x, y, modalities, task=None, allow_empty_rows=False, lenient=False
):
    """Checks a dict of arrays (and targets) for structure and values.

    Args:
        x: dict, modality name -> array, optionally `"modality_mask"`.
            A modality may hold text (its tokenizer is then part of the
            model's encoder).
        y: None, labels, or dict with `"label"` and optional `"is_labeled"`.
        modalities: sequence of modality names.
        task: optional `Task` whose label checks are applied.
        allow_empty_rows: bool, accept samples with every modality missing
            (prediction only: they get the model's fallback output).
        lenient: bool (prediction): a mask value other than 0 and 1, and
            NaN or infinite values in a present modality, get a warning
            and are read by the model's rule (`PRESENCE_RULE`: the
            modality is missing) instead of an error.

    Raises:
        ValueError naming the modality, row or label at fault.
    """
    check_keys(x.keys(), modalities)
    arrays = {
        m: _as_array(x[m], f"Modality '{m}'", allow_strings=True)
        for m in modalities
    }
    lengths = {m: a.shape[0] if a.ndim else None for m, a in arrays.items()}
    if len(set(lengths.values())) != 1 or None in lengths.values():
        raise ValueError(
            "Every modality must have the same number of samples on its "
            f"first axis; received {lengths}."
        )
    num_samples = next(iter(lengths.values()))
    if num_samples == 0:
        raise ValueError("The dataset is empty (0 samples).")
    if MASK_KEY in x:
        mask = check_modality_mask(
            x[MASK_KEY], num_samples, modalities, allow_empty_rows, lenient
        )
    else:
        mask = np.ones((num_samples, len(modalities)), "float32")
    for index, name in enumerate(modalities):
        array = arrays[name]
        if not np.issubdtype(array.dtype, np.floating):
            continue
        finite = np.isfinite(array.reshape(num_samples, -1)).all(axis=1)
        bad = np.flatnonzero(~finite & (mask[:, index] > 0))
        if bad.size and lenient:
            warnings.warn(
                f"Modality '{name}' has NaN or infinite values in "
                f"{_count(bad.size, 'row')} where it is marked present (row "
                f"{bad[0]} first); those rows are predicted without it "
                f"({PRESENCE_RULE}; `dropped_modalities` marks them).",
                stacklevel=3,
            )
        elif bad.size:
            raise ValueError(
                f"Modality '{name}' has NaN or infinite values in row "
                f"{bad[0]} ({_count(bad.size, 'row')} in all). Fix them, or "
                f"mark the modality missing for those rows in '{MASK_KEY}'."
            )
    if y is None:
        return
    if isinstance(y, dict):
        unknown = set(y) - {"label", "is_labeled"}
        if "label" not in y or unknown:
            raise ValueError(
                "Targets must be a dict with 'label' and optionally "
                f"'is_labeled'; received keys {sorted(y)}."
            )
        labels = y["label"]
        is_labeled = y.get("is_labeled")
    else:
        labels, is_labeled = y, None
    labels = np.asarray(labels)
    if labels.shape[:1] != (num_samples,):
        raise ValueError(
            f"Labels have {labels.shape[0] if labels.ndim else 0} rows but "
            f"the inputs have {num_samples} samples."
        )
    if is_labeled is not None:
        is_labeled = _as_array(is_labeled, "'is_labeled'").reshape(-1)
        if is_labeled.shape != (num_samples,):
            raise ValueError(
                f"'is_labeled' must have shape ({num_samples},); received "
                f"{np.shape(y['is_labeled'])}."
            )
        if not np.all((is_labeled == 0) | (is_labeled == 1)):
            raise ValueError("'is_labeled' must hold 0 or 1 (or booleans).")
    if task is not None:
        task.validate_labels(labels, is_labeled)


def check_dataset_spec(dataset, modalities):
    """Checks the structure of a `tf.data.Dataset` without iterating it."""
    spec = getattr(dataset, "element_spec", None)
    if spec is None:
        return
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(x_spec, dict):
        raise ValueError(
            "The dataset must yield (inputs, targets) with inputs a dict of "
            f"modality tensors plus '{MASK_KEY}'; its element_spec is {spec}."
        )
    check_keys(x_spec.keys(), modalities)
    if MASK_KEY in x_spec:
        width = x_spec[MASK_KEY].shape[-1]
        if width is not None and width != len(modalities):
            raise ValueError(
                f"'{MASK_KEY}' must have {len(modalities)} columns, one per "
                f"modality {list(modalities)}; the dataset gives {width}."
            )
    cardinality = getattr(dataset, "cardinality", None)
    if cardinality is not None and int(cardinality()) == 0:
        raise ValueError("The dataset is empty (0 batches).")


def _count(number, noun):
    """`1 row`, `3 rows`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
