"""Scoring a predictor on the test split: every modality subset, the
missing-rate curve and its area, in chunks of bounded memory."""

import dataclasses

import numpy as np

from keras_robult.data.masking import (
    evaluation_subsets,
    random_mask,
    subset_mask,
    subset_name,
)
from keras_robult.experiments.confidence import add_confidence
from keras_robult.experiments.metrics import PRIMARY, compute_metrics
from keras_robult.experiments.robustness import relative_robustness
from keras_robult.utils.validation import MASK_KEY

MISSING_RATES = tuple(round(0.1 * i, 1) for i in range(10))


def missing_rate_auc(rates, values):
    """Trapezoidal area under the metric-vs-rate curve divided by the rate
    range: the curve's average level, on the metric's own scale
    (MultiBench's relative robustness, `relative_robustness`)."""
    return relative_robustness(rates, values)


#: What `evaluate_predictor` gives `predict` at once, at most: bytes of
#: input rows, and rows (a model's `predict` keeps every output of every
#: row of a call, latents included: several KiB a row), at least one
#: `pad_to` batch. The evaluation's memory does not grow with the test
#: split.
EVALUATION_CHUNK_BYTES = 64 * 2**20
EVALUATION_CHUNK_ROWS = 16 * 1024


@dataclasses.dataclass(frozen=True, eq=False)
class EvaluationOptions:
    """How `evaluate_predictor` evaluates, beyond the data and the seed.

    Args:
        rates: the missing rates of the curve.
        curve_metric: the metric of the curve (default: the task's
            primary metric, `PRIMARY`).
        pad_to: int, the row count of each `predict` call is a multiple
            of it (the padding repeats a row; its predictions are dropped).
        masks: optional dict name -> `(samples, M)` mask (e.g. a
            `MissingSpec` applied to the test rows), each evaluated on the
            samples it leaves a modality.
        keep: optional dict, filled with subset name -> `(rows, masks,
            predictions)` of each subset's evaluation (for measures of the
            predictions themselves: calibration, reliability).
    """

    rates: tuple = MISSING_RATES
    curve_metric: str | None = None
    pad_to: int = 1024
    masks: dict | None = None
    keep: dict | None = None


def evaluate_predictor(
    predict,
    x,
    labels,
    task_name,
    modalities,
    seed=0,
    *,
    options=None,
    **keywords,
):
    """Metrics of one trained predictor on every subset and missing rate
    (and on every mask of `masks`).

    Every evaluation (each subset, each missing rate) is a set of (test
    row, modality mask) pairs; the pairs they share (a random mask of the
    curve is always some subset's) are predicted once, all of them in a
    few large `predict` calls of stacked masked copies of the test rows,
    padded to a multiple of `pad_to` rows (the predictor's batch size), so
    that a compiled predictor sees one batch shape. A prediction depends
    on its own row and mask only, so the metrics are those of one
    `predict` call per evaluation.

    Args:
        predict: function of an input dict (with `modality_mask`) to
            predictions in the task output space, row by row.
        x: dict of test arrays; a `modality_mask` in it marks modalities
            that are missing in the data itself (kept missing). A subset is
            evaluated on the samples that hold every modality of it, and
            left out when there is none: a subset's name is always what
            the predictor was given.
        labels: test labels.
        task_name: "classification", "regression" or "multilabel".
        modalities: modality names in model order.
        seed: seed of the random masks of the missing-rate curve.
        options: an `EvaluationOptions` (default: its defaults).
        **keywords: `EvaluationOptions` fields (`rates=`, `curve_metric=`,
            `pad_to=`, `masks=`, `keep=`), over `options`.

    Returns:
        `(subset_metrics, curve)`: dict subset name -> metrics dict, and the
        list of the curve metric at each rate; given `masks`, a third item,
        dict name -> metrics dict.
    """
    options = dataclasses.replace(options or EvaluationOptions(), **keywords)
    rates, masks, keep = options.rates, options.masks, options.keep
    labels = np.asarray(labels)
    num = len(labels)
    base = np.asarray(x.get(MASK_KEY, np.ones((num, len(modalities)))))
    primary = options.curve_metric or PRIMARY[task_name][0]
    evaluations = _evaluations(base, modalities, rates, seed, masks)
    predictions, inverse = _predict_once(
        predict, x, modalities, evaluations, options.pad_to
    )
    subset_metrics, curve, masked, offset = {}, [], {}, 0
    for key, rows, mask in evaluations:
        taken = inverse[offset : offset + rows.size]
        offset += rows.size
        metrics = compute_metrics(task_name, labels[rows], predictions[taken])
        if isinstance(key, str):
            subset_metrics[key] = metrics
            if keep is not None:
                keep[key] = (rows, mask[rows], predictions[taken])
        elif isinstance(key, tuple):
            masked[key[1]] = metrics
        else:
            curve.append(metrics[primary])
    if masks is not None:
        return subset_metrics, curve, masked
    return subset_metrics, curve


def _evaluations(base, modalities, rates, seed, masks):
    """`(key, rows, masks)` of every evaluation of `evaluate_predictor` on
    test rows whose own modality mask is `base`: each subset (key its
    name), each missing rate of the curve (key the rate) and each mask of
    `masks` (key `("mask", name)`), on the rows that keep a modality."""
    num = len(base)
    evaluations = []
    for subset in evaluation_subsets(modalities):
        mask = subset_mask(num, modalities, subset)
        rows = np.flatnonzero(np.all(base >= mask, axis=1))
        if rows.size:
            evaluations.append((subset_name(subset, modalities), rows, mask))
    for index, rate in enumerate(rates):
        mask = random_mask(num, len(modalities), rate, seed=seed * 100 + index)
        mask = mask * base
        rows = np.flatnonzero(mask.sum(axis=1) > 0)
        evaluations.append((rate, rows, mask))
    for name, mask in (masks or {}).items():
        mask = np.asarray(mask, "float32") * base
        rows = np.flatnonzero(mask.sum(axis=1) > 0)
        evaluations.append((("mask", name), rows, mask))
    return evaluations


def _predict_once(predict, x, modalities, evaluations, pad_to):
    """`(predictions, inverse)`: one prediction per distinct (row, mask)
    pair of `evaluations`, and the index of each pair's prediction, in
    the order of the evaluations' rows."""
    pairs = np.concatenate(
        [
            np.column_stack([rows, mask[rows] > 0.5])
            for _, rows, mask in evaluations
        ]
    ).astype("int64")
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    predictions = predict_pairs(
        predict, x, modalities, unique[:, 0], unique[:, 1:], pad_to
    )
    return predictions, inverse.reshape(-1)


def predict_pairs(predict, x, modalities, rows, masks, pad_to):
    """`predict` on test row `rows[i]` under mask `masks[i]`, for every i,
    in chunks of at most `EVALUATION_CHUNK_BYTES` of input and
    `EVALUATION_CHUNK_ROWS` rows, each a multiple of `pad_to` rows."""
    arrays = {m: np.asarray(x[m]) for m in modalities}
    row_bytes = sum(a[:1].nbytes for a in arrays.values()) or 1
    most = min(EVALUATION_CHUNK_BYTES // row_bytes, EVALUATION_CHUNK_ROWS)
    chunk = max(1, most // pad_to) * pad_to
    outputs = []
    for start in range(0, len(rows), chunk):
        index = rows[start : start + chunk]
        mask = masks[start : start + chunk].astype("float32")
        padding = -len(index) % pad_to
        if padding:
            index = np.concatenate([index, np.repeat(index[-1:], padding)])
            mask = np.concatenate([mask, np.repeat(mask[-1:], padding, 0)])
        inputs = {m: a[index] for m, a in arrays.items()}
        inputs[MASK_KEY] = mask
        output = np.asarray(predict(inputs))
        outputs.append(output[: len(output) - padding])
    return np.concatenate(outputs)


def evaluate_model(model, x, labels, **keywords):
    """The protocol's record of one trained keras_robult model on test
    data (`robult evaluate`): `evaluate_predictor`'s metrics of its
    uncalibrated predictions and, where the model holds a calibration
    (`model.calibrate`), each subset's calibrated measures
    (`calibrated_ece` and `calibrated_brier`, or the intervals'
    `coverage` and `interval_width`) as a calibrated protocol run reports
    them, so that evaluating a saved model reproduces the run that
    trained it; a classifier's reliability curves.

    Args:
        model: a `MultimodalModel`.
        x: dict of test arrays (a `modality_mask` marks missing data).
        labels: test labels.
        **keywords: `EvaluationOptions` fields.

    Returns:
        A `Tally` record: `{"subsets", "curve"}` and, for classification,
        `"reliability"`.
    """
    calibration = model.calibration
    key = "prediction"
    if calibration is not None and calibration.kind == "temperature":
        key = "uncalibrated_prediction"

    def predict(inputs):
        return model.predict(inputs, batch_size=1024, verbose=0)[key]

    kept = {}
    task_name = model.task.name
    subset_metrics, curve = evaluate_predictor(
        predict,
        x,
        labels,
        task_name,
        list(model.modalities),
        keep=kept,
        **keywords,
    )
    record = {"subsets": subset_metrics, "curve": curve}
    return add_confidence(
        record, kept, labels, task_name, model.modalities, calibration
    )
