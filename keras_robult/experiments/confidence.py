"""Confidence in the protocol: a calibration per presence pattern fitted on
each seed's calibration split, its measures on the test split, and the
reliability curves of the report (`run_protocol(calibration_fraction=)`).

Every method is calibrated the same way, from its predictions alone (a
temperature per pattern for classification, a split-conformal interval
per pattern for regression: `keras_robult.calibration`), so the simple
references are calibrated as the deep models are.
"""

import numpy as np

from keras_robult.calibration import (
    ECE_BINS,
    PresenceCalibration,
    brier_score,
    expected_calibration_error,
    interval_coverage,
    pattern_ids,
)

#: The tasks a protocol run can calibrate.
CALIBRATED_TASKS = ("classification", "regression")
#: The per-subset metrics a calibrated run adds, per task.
CALIBRATION_METRICS = {
    "classification": ("calibrated_ece", "calibrated_brier"),
    "regression": ("coverage", "interval_width"),
}


def calibration_record(calibration):
    """What `results.json` says of a saved model's calibration
    (`robult evaluate`): its kind and, for intervals, their coverage."""
    record = {"kind": calibration.kind}
    if calibration.kind == "conformal":
        record["coverage"] = float(calibration.coverage)
    return record


def calibration_pairs(mask):
    """`(rows, masks)` of every (row, non-empty subset of the row's
    present modalities) pair: what `fit_calibration` predicts."""
    present = np.asarray(mask) > 0.5
    count = present.shape[1]
    rows, masks = [], []
    for pattern in range(1, 1 << count):
        subset = np.array([(pattern >> m) & 1 for m in range(count)], bool)
        shown = present & subset[None, :]
        keep = np.flatnonzero(shown.any(axis=1))
        rows.append(keep)
        masks.append(shown[keep])
    return np.concatenate(rows), np.concatenate(masks)


def fit_calibration(
    predictions, labels, masks, task_name, modalities, coverage, rows=None
):
    """The `PresenceCalibration` of a method from its predictions on the
    calibration split's pairs (`calibration_pairs`): `predictions[i]` of
    the row of `labels[i]` (the held-out row `rows[i]`) under
    `masks[i]`."""
    patterns = pattern_ids(masks)
    if task_name == "classification":
        return PresenceCalibration.fit_temperatures(
            predictions, labels, patterns, modalities, rows=rows
        )
    return PresenceCalibration.fit_conformal(
        predictions,
        np.asarray(labels, "float64").reshape(-1),
        patterns,
        modalities,
        coverage=coverage,
        # Every pattern sees every calibration row: its own samples.
        min_samples=1,
    )


def calibrated_subset_metrics(calibration, subset_predictions, labels):
    """Per subset name, the calibrated measures of the test predictions
    kept by `evaluate_predictor(keep=)`: the ECE and Brier score of the
    calibrated probabilities, or the coverage and mean width of the
    intervals."""
    labels = np.asarray(labels)
    metrics = {}
    for name, (rows, mask, predictions) in subset_predictions.items():
        out = calibration.apply_numpy(predictions, mask)
        if calibration.kind == "temperature":
            calibrated = out["prediction"]
            metrics[name] = {
                "calibrated_ece": expected_calibration_error(
                    calibrated, labels[rows]
                ),
                "calibrated_brier": brier_score(calibrated, labels[rows]),
            }
        else:
            coverage, width = interval_coverage(
                out["prediction_interval"], labels[rows]
            )
            metrics[name] = {"coverage": coverage, "interval_width": width}
    return metrics


def add_confidence(record, kept, labels, task_name, modalities, calibration):
    """Adds to an evaluation record (`{"subsets", "curve"}`) what the test
    predictions kept by `evaluate_predictor(keep=)` say of confidence:
    each subset's calibrated measures (`calibrated_subset_metrics`) given
    a calibration, and a classifier's reliability curves under
    `"reliability"`. Returns the record."""
    if calibration is not None:
        measures = calibrated_subset_metrics(calibration, kept, labels)
        for subset, values in measures.items():
            record["subsets"][subset].update(values)
    if task_name == "classification" and kept:
        record["reliability"] = reliability(
            kept, labels, modalities, calibration
        )
    return record


def reliability(subset_predictions, labels, modalities, calibration=None):
    """Reliability curves of a classifier's test predictions, pooled over
    the subsets with the same number of present modalities: per count,
    the mean confidence and the accuracy of each of `ECE_BINS` equal-mass
    bins: `{"raw": {"count": ...}}` (keys as text, as JSON keeps them),
    and `"calibrated"` given a calibration."""
    labels = np.asarray(labels).reshape(-1)
    pooled = {}
    for rows, mask, predictions in subset_predictions.values():
        count = int((np.asarray(mask)[0] > 0.5).sum())
        pooled.setdefault(count, []).append((rows, mask, predictions))
    curves = {"raw": {}}
    if calibration is not None:
        curves["calibrated"] = {}
    for count, parts in sorted(pooled.items()):
        y = np.concatenate([labels[rows] for rows, _, _ in parts])
        raw = np.concatenate([p for _, _, p in parts])
        curves["raw"][str(count)] = _bins(raw, y)
        if calibration is not None:
            calibrated = np.concatenate(
                [
                    calibration.apply_numpy(p, mask)["prediction"]
                    for _, mask, p in parts
                ]
            )
            curves["calibrated"][str(count)] = _bins(calibrated, y)
    return curves


def _bins(probabilities, labels):
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    order = np.argsort(confidence, kind="stable")
    groups = np.array_split(order, min(ECE_BINS, len(order)))
    return {
        "confidence": [float(confidence[g].mean()) for g in groups],
        "accuracy": [float(correct[g].mean()) for g in groups],
    }
