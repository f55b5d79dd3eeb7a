"""Confidence under every presence pattern: calibration metrics and the
per-pattern calibration a trained model applies to its outputs."""

from keras_robult.calibration.metrics import (
    ECE_BINS,
    brier_score,
    expected_calibration_error,
    interval_coverage,
)
from keras_robult.calibration.presence_calibration import (
    PresenceCalibration,
    pattern_ids,
)

__all__ = [
    "ECE_BINS",
    "PresenceCalibration",
    "brier_score",
    "expected_calibration_error",
    "interval_coverage",
    "pattern_ids",
]
