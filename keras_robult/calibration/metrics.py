"""Calibration metrics: how far a model's confidence is from its accuracy
(classification) and how often its intervals hold the target (regression).

NumPy on predictions already computed; the Brier score is scikit-learn's.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import brier_score_loss

#: Equal-mass bins of the expected calibration error.
ECE_BINS = 15


def _probabilities(probabilities, labels):
    p = np.asarray(probabilities, dtype="float64")
    y = np.asarray(labels).reshape(-1)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(
            "`probabilities` must be (samples, classes) with one row per "
            f"label; received shape {p.shape} for {y.shape[0]} labels."
        )
    if not len(y):
        raise ValueError("No samples: a calibration metric needs at least one.")
    if not np.all(np.isfinite(p)):
        raise ValueError("`probabilities` hold NaN or infinite values.")
    return p, y.astype("int64")


def expected_calibration_error(
    probabilities: ArrayLike, labels: ArrayLike, bins: int = ECE_BINS
) -> float:
    """Top-label expected calibration error with equal-mass bins.

    The samples are sorted by confidence (the largest probability) and cut
    into `bins` groups of sizes differing by at most one (fewer groups when
    there are fewer samples); the error is the sample-weighted mean over
    groups of `|accuracy - mean confidence|`. 0 is perfect; a model that
    says 0.9 and is right half the time scores 0.4.

    Args:
        probabilities: `(samples, classes)` predicted class probabilities.
        labels: `(samples,)` integer class indices.
        bins: int, the number of equal-mass bins. Defaults to 15.

    Returns:
        The error, a float in `[0, 1]`.
    """
    p, y = _probabilities(probabilities, labels)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype("float64")
    order = np.argsort(confidence, kind="stable")
    groups = np.array_split(order, min(int(bins), len(order)))
    return float(
        sum(
            len(g) * abs(correct[g].mean() - confidence[g].mean())
            for g in groups
        )
        / len(order)
    )


def brier_score(probabilities: ArrayLike, labels: ArrayLike) -> float:
    """Mean over samples of the squared distance between the probability
    vector and the one-hot label, summed over classes (0 is perfect, 2 the
    worst); `sklearn.metrics.brier_score_loss`."""
    p, y = _probabilities(probabilities, labels)
    # float32 outputs sum to 1 within 1e-7, past scikit-learn's check.
    p = p / p.sum(axis=1, keepdims=True)
    return float(brier_score_loss(y, p, labels=np.arange(p.shape[1])))


def interval_coverage(
    intervals: ArrayLike, targets: ArrayLike
) -> tuple[float, float]:
    """`(coverage, mean width)` of prediction intervals: the fraction of
    targets inside `[low, high]` (ends included) and the mean of
    `high - low`.

    Args:
        intervals: `(samples, 2)` lower and upper ends.
        targets: `(samples,)` or `(samples, 1)` true values.
    """
    bounds = np.asarray(intervals, dtype="float64")
    y = np.asarray(targets, dtype="float64").reshape(-1)
    if bounds.shape != (len(y), 2):
        raise ValueError(
            "`intervals` must be (samples, 2) with one row per target; "
            f"received shape {bounds.shape} for {len(y)} targets."
        )
    if not len(y):
        raise ValueError("No samples: coverage needs at least one.")
    inside = (y >= bounds[:, 0]) & (y <= bounds[:, 1])
    return float(inside.mean()), float((bounds[:, 1] - bounds[:, 0]).mean())
