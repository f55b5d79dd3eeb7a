"""Modality masks for evaluation: explicit subsets or random dropping."""

import itertools

import numpy as np


def subset_mask(num_samples, modalities, subset):
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


def random_mask(num_samples, num_modalities, rate, seed=0):
    """Drops each modality independently with probability `rate`, keeping
    at least one per sample (a sample that lost all gets one back, chosen
    uniformly). Seeded and reproducible."""
    if not 0 <= rate < 1:
        raise ValueError(f"`rate` must be in [0, 1); received {rate!r}.")
    rng = np.random.default_rng(seed)
    mask = (rng.uniform(size=(num_samples, num_modalities)) >= rate).astype(
        "float32"
    )
    empty = np.flatnonzero(mask.sum(axis=1) == 0)
    mask[empty, rng.integers(0, num_modalities, empty.size)] = 1.0
    return mask


def evaluation_subsets(modalities, max_exhaustive=4):
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
