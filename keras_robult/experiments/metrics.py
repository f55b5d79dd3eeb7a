"""Task metrics as reported in results tables (docs/concepts.md), from
scikit-learn and SciPy."""

import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from keras_robult.calibration import brier_score, expected_calibration_error

# Primary metric of each task and whether higher is better.
PRIMARY = {
    "classification": ("accuracy", True),
    "regression": ("mae", False),
    "multilabel": ("f1_macro", True),
}
#: The reported metrics (and Keras metric names) that are errors: lower is
#: better. Every other metric is a score.
LOWER_IS_BETTER = frozenset(
    {
        "mae",
        "mse",
        "rmse",
        "ece",
        "brier",
        "calibrated_ece",
        "calibrated_brier",
        "interval_width",
    }
)


def higher_is_better(metric):
    """Whether a larger value of `metric` (a name of `compute_metrics` or
    of a Keras metric) is better."""
    return metric not in LOWER_IS_BETTER


def auroc(true, score):
    """Area under the ROC curve; NaN when only one class is present."""
    true = np.asarray(true).astype(bool)
    if true.all() or not true.any():
        return float("nan")
    return float(roc_auc_score(true, score))


def classification_metrics(labels, probabilities):
    """Accuracy, F1-macro over every class of the task (a class absent
    from both labels and predictions scores 0), AUROC for two classes,
    and the confidence measures: the expected calibration error (15
    equal-mass bins, top label) and the Brier score
    (`keras_robult.calibration`)."""
    labels = np.asarray(labels).reshape(-1).astype(int)
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=-1)
    classes = np.arange(probabilities.shape[-1])
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1_macro": float(
            f1_score(
                labels,
                predicted,
                labels=classes,
                average="macro",
                zero_division=0,
            )
        ),
    }
    if probabilities.shape[-1] == 2:
        metrics["auroc"] = auroc(labels == 1, probabilities[:, 1])
    metrics["ece"] = expected_calibration_error(probabilities, labels)
    metrics["brier"] = brier_score(probabilities, labels)
    return metrics


def regression_metrics(values, predictions):
    """MOSI/MOSEI metrics: MAE, Pearson correlation, binary accuracy and
    weighted F1 on non-zero labels (the paper's Acc and F1), and 7-class
    accuracy."""
    values = np.asarray(values, "float64").reshape(-1)
    predictions = np.asarray(predictions, "float64").reshape(-1)
    metrics = {"mae": float(np.mean(np.abs(values - predictions)))}
    if np.std(values) > 0 and np.std(predictions) > 0:
        metrics["corr"] = float(pearsonr(values, predictions).statistic)
    else:
        metrics["corr"] = 0.0
    nonzero = values != 0
    if nonzero.any():
        true, pred = values[nonzero] > 0, predictions[nonzero] > 0
        metrics["acc2"] = float(accuracy_score(true, pred))
        metrics["f1_weighted"] = float(
            f1_score(
                true,
                pred,
                labels=[False, True],
                average="weighted",
                zero_division=0,
            )
        )
    bins = lambda v: np.round(np.clip(v, -3, 3))  # noqa: E731
    metrics["acc7"] = float(accuracy_score(bins(values), bins(predictions)))
    return metrics


def multilabel_metrics(labels, probabilities, threshold=0.5):
    """F1-macro (the paper's MM-IMDb metric) and F1-micro at `threshold`."""
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    return {
        average_name: float(
            f1_score(labels, predicted, average=average, zero_division=0)
        )
        for average_name, average in (
            ("f1_macro", "macro"),
            ("f1_micro", "micro"),
        )
    }


def compute_metrics(task_name, labels, predictions):
    """All metrics of a task, as a dict name -> float."""
    if task_name == "classification":
        return classification_metrics(labels, predictions)
    if task_name == "regression":
        return regression_metrics(labels, predictions)
    if task_name == "multilabel":
        return multilabel_metrics(labels, predictions)
    raise ValueError(f"Unknown task {task_name!r}.")
