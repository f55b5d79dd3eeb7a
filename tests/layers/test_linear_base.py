import numpy as np
import pytest
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import StratifiedKFold

from keras_robult.layers import LinearBase
from keras_robult.layers.linear_base import RIDGE_ALPHAS
from keras_robult.utils.logistic import supported_options
from tests.conftest import to_numpy
from tests.testing import assert_config_round_trip


def _data(samples=40, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(samples, 3))
    b = rng.normal(size=(samples, 2, 2))  # a sequence: flattened
    y = 2 * a[:, :1] - b[:, 1, :1] + 0.1 * rng.normal(size=(samples, 1))
    return a, b, y


def _sklearn_prediction(features, y, queries):
    """RidgeCV on standardised features, as an independent reference."""
    mean, std = features.mean(0), features.std(0)
    model = RidgeCV(alphas=RIDGE_ALPHAS).fit((features - mean) / std, y)
    return model.predict((queries - mean) / std).reshape(len(queries), -1)


def test_every_pattern_is_sklearn_ridge_on_its_modalities():
    a, b, y = _data()
    mask = np.ones((40, 2))
    base = LinearBase(2, 1)
    base.adapt([a, b], y, mask)
    values = to_numpy(base([a, b], mask))
    assert values.shape == (40, 4, 1)
    flat_b = b.reshape(40, -1)
    np.testing.assert_allclose(
        values[:, 1], _sklearn_prediction(a, y, a), atol=1e-4
    )
    np.testing.assert_allclose(
        values[:, 2], _sklearn_prediction(flat_b, y, flat_b), atol=1e-4
    )
    both = np.concatenate([a, flat_b], 1)
    np.testing.assert_allclose(
        values[:, 3], _sklearn_prediction(both, y, both), atol=1e-4
    )
    # Pattern 0 (nothing present) predicts the mean target.
    np.testing.assert_allclose(values[:, 0], np.full((40, 1), y.mean()), 1e-5)


def test_select_picks_each_samples_pattern():
    a, b, y = _data()
    mask = np.ones((40, 2))
    base = LinearBase(2, 1)
    base.adapt([a, b], y, mask)
    values = base([a, b], mask)
    rows = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], "float32")
    picked = to_numpy(base.select(values[:4], rows))
    expected = to_numpy(values)[np.arange(4), [1, 2, 3, 0]]
    np.testing.assert_allclose(picked, expected)


def test_absent_modality_values_never_reach_the_output():
    a, b, y = _data()
    base = LinearBase(2, 1)
    base.adapt([a, b], y, np.ones((40, 2)))
    mask = np.tile([[1.0, 0.0]], (40, 1))
    clean = to_numpy(base([a, b], mask))
    poisoned = to_numpy(base([a, np.full_like(b, np.nan)], mask))
    np.testing.assert_allclose(poisoned[:, :2], clean[:, :2])
    assert np.isfinite(poisoned[:, 1]).all()


def test_a_pattern_with_too_few_samples_keeps_the_mean():
    a, b, y = _data()
    mask = np.ones((40, 2))
    mask[2:, 1] = 0  # only two samples hold b
    base = LinearBase(2, 1, min_samples=3)
    base.adapt([a, b], y, mask)
    values = to_numpy(base([a, b], np.ones((40, 2))))
    np.testing.assert_allclose(values[:, 2], np.full((40, 1), y.mean()), 1e-5)
    np.testing.assert_allclose(values[:, 3], np.full((40, 1), y.mean()), 1e-5)
    # a alone is fitted on every sample that holds it.
    np.testing.assert_allclose(
        values[:, 1], _sklearn_prediction(a, y, a), atol=1e-4
    )


def test_before_adapt_it_predicts_zero_and_round_trips():
    a, b, _ = _data()
    mask = np.ones((40, 2))
    base = LinearBase(2, 3)
    np.testing.assert_array_equal(to_numpy(base([a, b], mask)), 0.0)
    base.adapt([a, b], np.random.default_rng(1).normal(size=(40, 3)), mask)
    clone = assert_config_round_trip(base, ([a, b], mask))
    assert clone.output_dim == 3
    assert not base.trainable_weights


@pytest.mark.parametrize(
    "targets, mask, message",
    [
        (np.full((40, 1), np.nan), np.ones((40, 2)), "NaN"),
        (np.zeros((40, 2)), np.ones((40, 2)), "width"),
        (np.zeros((40, 1)), np.ones((40, 3)), "mask"),
    ],
)
def test_bad_input_is_named(targets, mask, message):
    a, b, _ = _data()
    with pytest.raises(ValueError, match=message):
        LinearBase(2, 1).adapt([a, b], targets, mask)


def _classes(samples=60, num_classes=3, seed=0):
    a, b, _ = _data(samples, seed)
    score = np.stack([a[:, 0], b[:, 1, 0], a[:, 1] - b[:, 0, 1]], 1)
    noise = np.random.default_rng(seed + 1).gumbel(size=score.shape)
    return a, b, np.argmax((score + noise)[:, :num_classes], axis=1)


def _sklearn_probabilities(features, labels, queries):
    """An independent multinomial logistic regression, the penalty by the
    same stratified cross-validation, on standardised features."""
    mean, std = features.mean(0), features.std(0)
    folds = min(5, np.bincount(labels).min())
    model = LogisticRegressionCV(
        Cs=np.logspace(-3, 3, 7),
        cv=StratifiedKFold(folds, shuffle=True, random_state=0),
        scoring="neg_log_loss",
        max_iter=2000,
        **supported_options(
            LogisticRegressionCV, l1_ratios=(0.0,), use_legacy_attributes=False
        ),
    ).fit((features - mean) / std, labels)
    return model.predict_proba((queries - mean) / std)


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_logistic_patterns_are_sklearn_logistic_regressions(num_classes):
    a, b, labels = _classes(num_classes=num_classes)
    mask = np.ones((60, 2))
    base = LinearBase(2, num_classes, loss="logistic")
    base.adapt([a, b], labels, mask)
    values = to_numpy(base([a, b], mask))
    assert values.shape == (60, 4, num_classes)
    both = np.concatenate([a, b.reshape(60, -1)], 1)
    for pattern, features in [(1, a), (3, both)]:
        np.testing.assert_allclose(
            _softmax(values[:, pattern]),
            _sklearn_probabilities(features, labels, features),
            atol=1e-4,
        )
    # Pattern 0 predicts the add-one smoothed label frequencies.
    counts = np.bincount(labels, minlength=num_classes)
    np.testing.assert_allclose(
        _softmax(values[:, 0]),
        np.tile((counts + 1) / (60 + num_classes), (60, 1)),
        atol=1e-6,
    )


def test_a_logistic_pattern_with_a_rare_class_keeps_the_prior():
    a, b, labels = _classes()
    mask = np.ones((60, 2))
    rare = np.flatnonzero(labels == 2)
    mask[rare[1:], 1] = 0  # one sample of class 2 holds b
    base = LinearBase(2, 3, loss="logistic")
    base.adapt([a, b], labels, mask)
    values = to_numpy(base([a, b], np.ones((60, 2))))
    prior = np.log((np.bincount(labels) + 1) / 63)
    for pattern in (2, 3):  # b alone, both: the prior
        np.testing.assert_allclose(values[:, pattern], np.tile(prior, (60, 1)))
    assert np.ptp(values[:, 1], axis=0).min() > 0.1  # a alone: fitted
    clone = assert_config_round_trip(base, ([a, b], mask))
    assert clone.loss == "logistic"


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.full(60, 3), r"integer classes in \[0, 3\)"),
        (np.full(60, 0.5), "integer classes"),
        (np.zeros((60, 2)), "width"),
    ],
)
def test_bad_logistic_labels_are_named(labels, message):
    a, b, _ = _classes()
    with pytest.raises(ValueError, match=message):
        LinearBase(2, 3, loss="logistic").adapt(
            [a, b], labels, np.ones((60, 2))
        )


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="loss"):
        LinearBase(2, 3, loss="hinge")
    with pytest.raises(ValueError, match="at least 2"):
        LinearBase(2, 1, loss="logistic")
    with pytest.raises(ValueError, match="min_samples"):
        LinearBase(2, 1, min_samples=1)
    with pytest.raises(ValueError, match="num_modalities"):
        LinearBase(0, 1)
