"""Per-feature standardisation with training-split statistics."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from keras_robult.utils.validation import MASK_KEY


def fit_standardization(
    x: Mapping[str, ArrayLike],
    rows: ArrayLike | None = None,
    epsilon: float = 1e-6,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean and standard deviation of each vector modality.

    Only 2-D (vector) modalities are standardised; statistics use the given
    `rows` (the training split) and, when `x` has a modality mask, only the
    rows where the modality is present.

    A feature whose spread is within float32 rounding of its mean (a
    constant, up to noise) is centred but not scaled.

    Returns:
        dict, modality name -> `(mean, std)` arrays.
    """
    names = [k for k in x if k != MASK_KEY]
    rows = np.arange(len(x[names[0]])) if rows is None else np.asarray(rows)
    stats = {}
    for index, name in enumerate(names):
        values = np.asarray(x[name])
        if values.ndim != 2:
            continue
        keep = rows
        if MASK_KEY in x:
            keep = rows[np.asarray(x[MASK_KEY])[rows, index] > 0]
        values = values[keep].astype("float64")
        mean, std = values.mean(axis=0), values.std(axis=0)
        # A feature indistinguishable from a constant at float32 precision
        # keeps scale 1: dividing by its rounding noise would turn that
        # noise into signal (a backbone output that varies only in its last
        # bits between a cached and a served computation, say).
        constant = std <= 16 * np.finfo(np.float32).eps * np.abs(mean)
        stats[name] = (
            mean.astype("float32"),
            np.where(constant, 1.0, std + epsilon).astype("float32"),
        )
    return stats


def apply_standardization(
    x: Mapping[str, ArrayLike], stats: Mapping[str, tuple]
) -> dict[str, np.ndarray]:
    """Returns a copy of `x` with the vector modalities standardised."""
    out = dict(x)
    for name, (mean, std) in stats.items():
        out[name] = ((np.asarray(x[name]) - mean) / std).astype("float32")
    return out
