"""Stratified, seeded train/test and labeled/unlabeled splits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from keras_robult.tasks import Task


def strata(labels: ArrayLike, task: Task | None = None) -> np.ndarray:
    """Integer stratum of each sample.

    Classes for classification; the 7 rounded bins of `Regression` (or of
    `round(clip(y, -3, 3))` without a task) for float targets; the label
    combination for multi-label targets `(samples, labels)`.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2:
        _, index = np.unique(labels.astype(int), axis=0, return_inverse=True)
        return index.reshape(-1)
    if labels.ndim != 1:
        raise ValueError(
            f"Labels must have shape (samples,) or (samples, labels); "
            f"received {labels.shape}."
        )
    name = getattr(task, "name", None)
    is_integer = np.all(np.mod(labels, 1) == 0) if labels.size else True
    if name == "regression" or (name is None and not is_integer):
        low, high = getattr(task, "bins", (-3, 3))
        offset = getattr(task, "offset", 0.0)
        scale = getattr(task, "scale", 1.0)
        values = (labels.astype("float64") - offset) / scale
        return np.round(np.clip(values, low, high)).astype(int) - low
    _, index = np.unique(labels, return_inverse=True)
    return index.reshape(-1)


def _allocate(counts, total):
    """Per-stratum sizes summing to `total`, proportional to `counts`
    (largest remainder), with at least one per stratum when `total` allows."""
    counts = np.asarray(counts)
    exact = counts * total / counts.sum()
    sizes = np.floor(exact).astype(int)
    if total >= len(counts):
        sizes = np.maximum(sizes, 1)
    sizes = np.minimum(sizes, counts)
    while sizes.sum() > total:
        # Take back from the stratum furthest above its exact share.
        over = np.where(sizes > 1, sizes - exact, -np.inf)
        sizes[np.argmax(over)] -= 1
    while sizes.sum() < total:
        under = np.where(sizes < counts, exact - sizes, -np.inf)
        sizes[np.argmax(under)] += 1
    return sizes


def _check_fraction(fraction, name):
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ValueError(
            f"`{name}` must be a number in (0, 1]; received {fraction!r}."
        )


def labeled_mask(
    labels: ArrayLike,
    labeled_fraction: float,
    seed: int = 0,
    task: Task | None = None,
) -> np.ndarray:
    """Seeded boolean `is_labeled` mask keeping the class ratio.

    `round(labeled_fraction * samples)` samples (at least one) are labeled,
    allocated to the strata of `strata(labels, task)` in proportion to their
    size, with at least one per stratum when the count allows; which samples
    within a stratum is drawn with `seed`.

    Args:
        labels: array `(samples,)` or `(samples, labels)`.
        labeled_fraction: float in (0, 1].
        seed: int.
        task: optional `Task`, selects how labels are stratified.

    Returns:
        Boolean array `(samples,)`.
    """
    _check_fraction(labeled_fraction, "labeled_fraction")
    groups = strata(labels, task)
    if groups.size == 0:
        raise ValueError("Cannot split an empty label array.")
    rng = np.random.default_rng(seed)
    total = max(1, int(round(labeled_fraction * groups.size)))
    names, counts = np.unique(groups, return_counts=True)
    sizes = _allocate(counts, total)
    mask = np.zeros(groups.size, bool)
    for name, size in zip(names, sizes):
        rows = np.flatnonzero(groups == name)
        mask[rng.choice(rows, size, replace=False)] = True
    return mask


def train_test_split(
    labels: ArrayLike,
    test_fraction: float = 0.3,
    seed: int = 0,
    task: Task | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split; returns `(train_indices, test_indices)`,
    each sorted."""
    _check_fraction(test_fraction, "test_fraction")
    test = labeled_mask(labels, test_fraction, seed=seed, task=task)
    return np.flatnonzero(~test), np.flatnonzero(test)


#: The share of the samples the protocol tests on when the data names no
#: test split (stratified, drawn per seed).
TEST_FRACTION = 0.3


def protocol_split(
    labels: ArrayLike,
    seed: int = 0,
    task: Task | None = None,
    test_mask: ArrayLike | None = None,
    is_labeled: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation protocol's `(train_indices, test_indices)` of one
    seed, the one rule that the comparison and the tuner share (a search
    never reads a row the comparison tests on).

    The data's own `test_mask` when given. Otherwise a stratified
    `TEST_FRACTION` of the samples, drawn with `seed`; where `is_labeled`
    marks the labeled samples, the test rows are drawn from those alone
    (an unlabeled row's label is a placeholder that must never be scored)
    and every other row trains.
    """
    labels = np.asarray(labels)
    if test_mask is not None:
        test_mask = np.asarray(test_mask, bool)
        return np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    if is_labeled is None:
        return train_test_split(labels, TEST_FRACTION, seed=seed, task=task)
    labeled = np.flatnonzero(np.asarray(is_labeled, bool))
    _, held = train_test_split(
        labels[labeled], TEST_FRACTION, seed=seed, task=task
    )
    test = labeled[held]
    return np.setdiff1d(np.arange(len(labels)), test), test


def stratified_head(
    labels: ArrayLike, count: int, task: Task | None = None
) -> np.ndarray:
    """The indices of `count` samples (or all, if fewer) taken in turn
    from each stratum (`strata`), in file order within a stratum: a small
    subset that holds every class while there is room, even from a file
    listed class by class. Sorted."""
    groups = strata(labels, task)
    rank = np.zeros(len(groups), "int64")
    for value in np.unique(groups):
        members = np.flatnonzero(groups == value)
        rank[members] = np.arange(len(members))
    order = np.lexsort((groups, rank))  # by rank, then by stratum
    return np.sort(order[:count])


#: The classes a smoke run keeps of a single-label classification.
SMOKE_CLASSES = 3


def smoke_classes(
    labels: ArrayLike, task: Task | None = None, count: int = SMOKE_CLASSES
) -> np.ndarray | None:
    """The `count` most frequent classes of single-label `labels` (ties:
    the smaller class first), sorted: what a smoke run keeps, so that it
    has enough samples of each class, and a label for each, whatever the
    number of classes (Food-101 has 101). None where the labels are not
    single-label classes (`task`, or integer labels `(samples,)` without
    one): every target is kept."""
    labels = np.asarray(labels)
    name = getattr(task, "name", None)
    single = labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1)
    if name not in (None, "classification") or not single:
        return None
    labels = labels.reshape(-1)
    if name is None and labels.dtype.kind not in "iub":
        return None
    values, counts = np.unique(labels, return_counts=True)
    order = np.lexsort((values, -counts))
    return np.sort(values[order[:count]])


def smoke_rows(
    labels: ArrayLike,
    count: int,
    task: Task | None = None,
    classes: ArrayLike | None = None,
) -> np.ndarray:
    """The rows a smoke run keeps of one split: those of `classes` (all
    rows when None), at most `count`, taken in turn from each class or
    target bin (`stratified_head`). Sorted."""
    labels = np.asarray(labels)
    pool = np.arange(len(labels))
    if classes is not None:
        pool = np.flatnonzero(
            np.isin(labels.reshape(len(labels), -1)[:, 0], classes)
        )
    return pool[stratified_head(labels[pool], count, task)]
