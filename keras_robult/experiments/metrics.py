"""Task metrics in NumPy, as reported in results tables (DESIGN.md s. 7)."""

import numpy as np

# Primary metric of each task and whether higher is better.
PRIMARY = {
    "classification": ("accuracy", True),
    "regression": ("mae", False),
    "multilabel": ("f1_macro", True),
}


def _f1_per_class(true, pred, classes):
    scores, supports = [], []
    for c in classes:
        tp = np.sum((pred == c) & (true == c))
        fp = np.sum((pred == c) & (true != c))
        fn = np.sum((pred != c) & (true == c))
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
        supports.append(np.sum(true == c))
    return np.array(scores), np.array(supports)


def auroc(true, score):
    """Area under the ROC curve (Mann-Whitney statistic, ties averaged)."""
    true = np.asarray(true).astype(bool)
    positives, negatives = true.sum(), (~true).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = np.asarray(score)[order]
    i = 0
    while i < len(score):
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float(
        (ranks[true].sum() - positives * (positives + 1) / 2)
        / (positives * negatives)
    )


def classification_metrics(labels, probabilities):
    labels = np.asarray(labels).reshape(-1).astype(int)
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=-1)
    f1, _ = _f1_per_class(labels, predicted, range(probabilities.shape[-1]))
    metrics = {
        "accuracy": float(np.mean(predicted == labels)),
        "f1_macro": float(np.mean(f1)),
    }
    if probabilities.shape[-1] == 2:
        metrics["auroc"] = auroc(labels == 1, probabilities[:, 1])
    return metrics


def regression_metrics(values, predictions):
    """MOSI/MOSEI metrics: MAE, Pearson correlation, binary accuracy and
    weighted F1 on non-zero labels, and 7-class accuracy."""
    values = np.asarray(values, "float64").reshape(-1)
    predictions = np.asarray(predictions, "float64").reshape(-1)
    metrics = {"mae": float(np.mean(np.abs(values - predictions)))}
    if np.std(values) > 0 and np.std(predictions) > 0:
        metrics["corr"] = float(np.corrcoef(values, predictions)[0, 1])
    else:
        metrics["corr"] = 0.0
    nonzero = values != 0
    true, pred = values[nonzero] > 0, predictions[nonzero] > 0
    if nonzero.any():
        metrics["acc2"] = float(np.mean(true == pred))
        f1, support = _f1_per_class(true, pred, (False, True))
        metrics["f1_weighted"] = float(np.sum(f1 * support) / support.sum())
    bins = lambda v: np.round(np.clip(v, -3, 3))  # noqa: E731
    metrics["acc7"] = float(np.mean(bins(values) == bins(predictions)))
    return metrics


def multilabel_metrics(labels, probabilities, threshold=0.5):
    labels = np.asarray(labels).astype(bool)
    predicted = np.asarray(probabilities) >= threshold
    tp = np.sum(predicted & labels, axis=0)
    fp = np.sum(predicted & ~labels, axis=0)
    fn = np.sum(~predicted & labels, axis=0)
    denominator = 2 * tp + fp + fn
    per_label = np.where(
        denominator > 0, 2 * tp / np.maximum(denominator, 1), 0
    )
    micro_denominator = 2 * tp.sum() + fp.sum() + fn.sum()
    return {
        "f1_macro": float(np.mean(per_label)),
        "f1_micro": float(
            2 * tp.sum() / micro_denominator if micro_denominator else 0.0
        ),
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
