"""Modality masks: explicit subsets, random dropping for evaluation, gaps
in the training data and modality dropout in a `tf.data` pipeline."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike


def subset_mask(
    num_samples: int, modalities: Sequence[str], subset: Iterable[str]
) -> np.ndarray:
    """`(samples, M)` float mask with the modalities in `subset` present."""
    modalities = list(modalities)
    unknown = [name for name in subset if name not in modalities]
    if unknown or not subset:
        raise ValueError(
            f"A subset must be a non-empty list of modalities from "
            f"{modalities}; received {list(subset)} (unknown: {unknown})."
        )
    row = np.array([name in subset for name in modalities], "float32")
    return np.tile(row, (num_samples, 1))


def random_mask(
    num_samples: int, num_modalities: int, rate: float, seed: int = 0
) -> np.ndarray:
    """Drops each modality independently with probability `rate`, keeping
    at least one per sample (a sample that lost all gets one back, chosen
    uniformly). Seeded and reproducible."""
    check_rate(rate, "rate")
    rng = np.random.default_rng(seed)
    mask = (rng.uniform(size=(num_samples, num_modalities)) >= rate).astype(
        "float32"
    )
    empty = np.flatnonzero(mask.sum(axis=1) == 0)
    mask[empty, rng.integers(0, num_modalities, empty.size)] = 1.0
    return mask


def check_rate(rate, name):
    """Raises unless `rate` is a probability in [0, 1)."""
    if not 0 <= rate < 1:
        raise ValueError(f"`{name}` must be in [0, 1); received {rate!r}.")


def training_mask(
    base_mask: ArrayLike, rate: float, seed: int = 0
) -> np.ndarray:
    """Training data with gaps: each present modality of each sample
    dropped with probability `rate`, at least one present modality kept
    per sample (a sample that would lose them all keeps one of its own,
    chosen uniformly). Drawn once (seeded); the protocol's
    `train_missing_rate`.

    Args:
        base_mask: `(samples, M)` mask of the modalities the data holds;
            every row must have one.
        rate: float in [0, 1).
        seed: int or sequence of ints (`numpy.random.default_rng`).

    Returns:
        A float32 `(samples, M)` mask, a subset of `base_mask`.
    """
    check_rate(rate, "train_missing_rate")
    base = np.asarray(base_mask, "float32") > 0.5
    empty = np.flatnonzero(~base.any(axis=1))
    if empty.size:
        raise ValueError(
            f"{empty.size} training sample(s) have no modality present "
            f"(first rows {empty[:5].tolist()}); every sample needs one."
        )
    rng = np.random.default_rng(seed)
    draws = rng.uniform(size=(2,) + base.shape)
    kept = base & (draws[0] >= rate)
    lost = np.flatnonzero(~kept.any(axis=1))
    # One of the sample's own modalities back: its largest second draw.
    back = np.argmax(np.where(base[lost], draws[1][lost], -1.0), axis=1)
    kept[lost, back] = True
    return kept.astype("float32")


def drop_modalities(mask, uniform, rate):
    """Graph op for `tf.data` (modality dropout as augmentation): `mask`
    `(..., M)` with each present modality dropped with probability `rate`,
    from `uniform`, `(..., 2, M)` uniform draws in [0, 1) (see
    `epochs_of_draws`); a sample that would lose them all keeps one present
    modality, chosen uniformly, as `training_mask` does."""
    import tensorflow as tf  # only where a TF pipeline or export runs

    uniform = tf.cast(uniform, mask.dtype)
    kept = mask * tf.cast(uniform[..., 0, :] >= rate, mask.dtype)
    back = tf.one_hot(
        tf.argmax(tf.where(mask > 0, uniform[..., 1, :], -1.0), axis=-1),
        mask.shape[-1],
        dtype=mask.dtype,
    )
    return tf.where(
        tf.reduce_sum(kept, axis=-1, keepdims=True) > 0, kept, back * mask
    )


def evaluation_subsets(
    modalities: Sequence[str], max_exhaustive: int = 4
) -> list[list[str]]:
    """The modality subsets a results table reports.

    Every non-empty subset when there are at most `max_exhaustive`
    modalities; otherwise every single modality, every leave-one-out set and
    the full set. Ordered by size, then modality order.
    """
    modalities = list(modalities)
    count = len(modalities)
    if count <= max_exhaustive:
        sizes = range(1, count + 1)
    else:
        sizes = [1, count - 1, count]
    subsets = []
    for size in sizes:
        subsets.extend(
            list(c) for c in itertools.combinations(modalities, size)
        )
    return subsets


def subset_name(subset: Sequence[str], modalities: Sequence[str]) -> str:
    """The name of a modality subset in the results: `"all"` for every
    modality, else the names joined by `+` (e.g. `"text+image"`)."""
    return "all" if len(subset) == len(modalities) else "+".join(subset)


def subset_label(subset: Sequence[str], modalities: Sequence[str]) -> str:
    """How a results table shows a subset: its `subset_name`, except that
    every modality but one, of more than four (the leave-one-out rows),
    reads `all but <modality>` rather than a dozen names joined by `+`."""
    if len(modalities) > 4 and len(subset) == len(modalities) - 1:
        (left_out,) = set(modalities) - set(subset)
        return f"all but {left_out}"
    return subset_name(subset, modalities)
