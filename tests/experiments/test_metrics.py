import numpy as np
import pytest

from keras_robult.experiments import metrics


def test_classification_accuracy_f1_macro_and_auroc():
    labels = np.array([0, 0, 1, 1, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 0]]
    out = metrics.classification_metrics(labels, probs)
    assert out["accuracy"] == pytest.approx(0.6)
    # Per-class F1 = 2tp / (2tp + fp + fn): class 0 = 2/4 (tp 1, fp 1,
    # fn 1), class 1 = 4/5 (tp 2, fp 1), class 2 = 0.
    assert out["f1_macro"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    binary = metrics.classification_metrics(
        np.array([0, 1, 0, 1]),
        np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]),
    )
    # Positive scores 0.8, 0.3; negatives 0.1, 0.4: 3 of 4 pairs ordered.
    assert binary["auroc"] == pytest.approx(0.75)


def test_auroc_ties_count_half():
    assert metrics.auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


def test_regression_metrics():
    values = np.array([-2.0, 0.0, 1.4, 2.6])
    preds = np.array([-1.0, 0.3, 1.6, -0.2])
    out = metrics.regression_metrics(values, preds)
    assert out["mae"] == pytest.approx(np.mean([1.0, 0.3, 0.2, 2.8]))
    assert out["corr"] == pytest.approx(np.corrcoef(values, preds)[0, 1])
    # Non-zero labels: -2 (pred -) ok, 1.4 (pred +) ok, 2.6 (pred -) wrong.
    assert out["acc2"] == pytest.approx(2 / 3)
    # Bins: -2/-1, 0/0, 1/2, 3/0 -> one of four agrees.
    assert out["acc7"] == pytest.approx(0.25)


def test_multilabel_f1():
    labels = np.array([[1, 0], [1, 1], [0, 0]])
    probs = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.1]])
    out = metrics.multilabel_metrics(labels, probs)
    # Label 0: tp 1, fp 1, fn 1 -> 0.5; label 1: tp 1 -> 1.0.
    assert out["f1_macro"] == pytest.approx(0.75)
    assert out["f1_micro"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
