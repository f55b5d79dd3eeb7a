"""Calibration metrics against hand-worked cases and plain loops."""

import re

import numpy as np
import pytest

from keras_robult.calibration import (
    brier_score,
    expected_calibration_error,
    interval_coverage,
)


def loop_ece(p, y, bins):
    """The definition, one bin at a time: sort by confidence, cut into
    `bins` groups whose sizes differ by at most one."""
    confidence = p.max(1)
    order = np.argsort(confidence, kind="stable")
    n, total, start = len(y), 0.0, 0
    for b in range(bins):
        size = n // bins + (1 if b < n % bins else 0)
        rows = order[start : start + size]
        start += size
        accuracy = np.mean(p[rows].argmax(1) == y[rows])
        total += size / n * abs(accuracy - confidence[rows].mean())
    return total


def test_ece_of_a_hand_worked_case():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 0, 0, 1])
    # Sorted confidences 0.6 (right), 0.7 (right) | 0.8 (wrong), 0.9
    # (right): |1 - 0.65| / 2 + |0.5 - 0.85| / 2.
    assert expected_calibration_error(p, y, bins=2) == pytest.approx(0.35)


def test_ece_equals_the_loop_on_random_predictions():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1003, 4)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 4, 1003)
    assert expected_calibration_error(p, y) == pytest.approx(
        loop_ece(p, y, 15), abs=1e-12
    )
    # More bins than samples: one sample a bin.
    assert expected_calibration_error(p[:5], y[:5]) == pytest.approx(
        loop_ece(p[:5], y[:5], 5), abs=1e-12
    )


def test_a_calibrated_predictor_scores_near_zero_and_an_overconfident_one_not():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(20000, 3)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    assert expected_calibration_error(p, y) < 0.015
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)
    assert expected_calibration_error(sharp, y) > 0.1


def test_brier_score_is_the_squared_distance_to_the_one_hot_label():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    y = np.array([0, 2, 2])
    expected = np.mean(np.sum((p - np.eye(3)[y]) ** 2, axis=1))
    assert brier_score(p, y) == pytest.approx(expected)
    assert brier_score(np.eye(3)[y], y) == 0.0


def test_interval_coverage_counts_the_ends_as_inside():
    intervals = np.array([[0.0, 1.0], [1.0, 3.0], [-1.0, 0.0], [2.0, 2.5]])
    coverage, width = interval_coverage(intervals, [1.0, 0.5, -1.0, 3.0])
    assert coverage == 0.5
    assert width == pytest.approx((1 + 2 + 1 + 0.5) / 4)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: expected_calibration_error(np.ones((3, 2)), [0, 1]), "row"),
        (
            lambda: expected_calibration_error(np.full((2, 2), np.nan), [0]),
            "one row",
        ),
        (lambda: brier_score(np.full((2, 2), np.inf), [0, 1]), "NaN"),
        (lambda: brier_score(np.zeros((0, 2)), []), "No samples"),
        (lambda: interval_coverage(np.zeros((2, 3)), [0, 1]), "(samples, 2)"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
