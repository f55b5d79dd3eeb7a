import keras
import numpy as np
import pytest

from keras_robult import tasks
from tests.conftest import to_numpy


def test_classification_loss_is_cross_entropy_per_branch():
    task = tasks.Classification(3)
    logits = np.random.default_rng(0).normal(size=(4, 2, 3)).astype("float32")
    labels = np.array([0, 2, 1, 1])
    loss = to_numpy(task.supervised_loss(labels, logits))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -log_p[np.arange(4), :, labels]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_pseudo_labels_per_task():
    probs = np.array([[0.1, 0.7, 0.2], [0.05, 0.05, 0.9]], "float32")
    labels, confidence = tasks.Classification(3).pseudo_labels(probs)
    np.testing.assert_array_equal(to_numpy(labels), [1, 2])
    np.testing.assert_allclose(to_numpy(confidence), [0.7, 0.9], rtol=1e-6)

    sigmoid = np.array([[0.9, 0.2, 0.6], [0.99, 0.01, 0.95]], "float32")
    labels, confidence = tasks.MultiLabel(3).pseudo_labels(sigmoid)
    np.testing.assert_array_equal(to_numpy(labels), [[1, 0, 1], [1, 0, 1]])
    np.testing.assert_allclose(to_numpy(confidence), [0.6, 0.95], rtol=1e-6)

    values = np.array([[1.25], [-2.5]], "float32")
    labels, confidence = tasks.Regression().pseudo_labels(values)
    np.testing.assert_allclose(to_numpy(labels), [1.25, -2.5])
    np.testing.assert_allclose(to_numpy(confidence), [1.0, 1.0])


def test_regression_bins_l1_and_gaussian_soft_targets():
    task = tasks.Regression()
    labels = np.array([-3.7, -0.4, 0.6, 2.5, 3.2], "float32")
    dist = to_numpy(task.label_distribution(labels))
    # round() is half-to-even, as in NumPy: 2.5 -> 2.
    np.testing.assert_array_equal(dist.argmax(-1), [0, 3, 4, 5, 6])
    logits = np.array([[0.0], [1.0], [0.0], [2.0], [3.0]], "float32")
    np.testing.assert_allclose(
        to_numpy(task.supervised_loss(labels, logits)),
        np.abs(labels - logits[:, 0]),
        rtol=1e-6,
    )
    soft = to_numpy(task.soft_targets(np.array([[0.25]], "float32")))[0]
    centres = np.arange(-3, 4)
    expected = np.exp(-((centres - 0.25) ** 2) / (2 * 0.5**2))
    np.testing.assert_allclose(soft, expected / expected.sum(), rtol=1e-5)


def test_regression_bins_and_loss_follow_the_targets_scale():
    """Targets in [1000, 1337]: `from_targets` spans the 7 bins over them;
    the head predicts standardised targets and the L1 loss is on them."""
    rng = np.random.default_rng(0)
    y = rng.uniform(1000.0, 1337.0, 200)
    task = tasks.Regression.from_targets(y)
    scale = (y.max() - y.min()) / 6
    assert task.scale == pytest.approx(scale)
    assert task.offset == pytest.approx(y.min() + 3 * scale)
    task.validate_labels(y)  # every target inside the bins
    bins = to_numpy(task.label_distribution(y.astype("float32"))).argmax(-1)
    expected = np.round((y - y.min()) / scale).astype(int)
    np.testing.assert_array_equal(bins, expected)
    assert set(bins) == set(range(7))
    logits = rng.normal(size=(200, 1)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(task.supervised_loss(y.astype("float32"), logits)),
        np.abs(logits[:, 0] - (y - task.offset) / task.scale),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        to_numpy(task.activation(logits)),
        task.offset + task.scale * logits,
        rtol=1e-6,
    )
    # Soft targets: a Gaussian of target_std bins around the prediction.
    soft = to_numpy(task.soft_targets(np.array([[task.offset]], "float32")))
    centres = np.arange(-3, 4)
    gauss = np.exp(-(centres**2) / (2 * 0.5**2))
    np.testing.assert_allclose(soft[0], gauss / gauss.sum(), rtol=1e-4)
    restored = tasks.Regression(**task.get_config())
    assert restored == task


def test_regression_targets_outside_explicit_bins():
    y = np.random.default_rng(0).uniform(1000.0, 1337.0, 50)
    with pytest.raises(ValueError, match="50 of 50 labeled regression targ"):
        tasks.Regression().validate_labels(y)
    with pytest.raises(ValueError, match=r"Regression.from_targets"):
        tasks.Regression(bins=(-3, 3)).validate_labels(y)
    # A few outside (here 1 of 40): clipped to the end bins, with a warning.
    y = np.append(np.linspace(-3, 3, 39), 4.2)
    with pytest.warns(UserWarning, match="1 of 40 .* join the end bins"):
        tasks.Regression().validate_labels(y)
    # Unlabeled rows are not checked.
    tasks.Regression().validate_labels(np.array([0.0, 900.0]), np.array([1, 0]))


def test_multilabel_pair_probability_in_log_space_and_bce():
    task = tasks.MultiLabel(40)
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, (3, 40)).astype("float32")
    q = to_numpy(task.pair_probability(p, p))
    expected = np.prod(
        p[:, None] * p[None] + (1 - p[:, None]) * (1 - p[None]), -1
    )
    np.testing.assert_allclose(q, expected, rtol=1e-4)
    labels = (rng.uniform(size=(3, 40)) < 0.5).astype("float32")
    logits = rng.normal(size=(3, 40)).astype("float32")
    probs = 1 / (1 + np.exp(-logits))
    bce = -(labels * np.log(probs) + (1 - labels) * np.log(1 - probs))
    np.testing.assert_allclose(
        to_numpy(task.supervised_loss(labels, logits)), bce.mean(-1), rtol=1e-5
    )


@pytest.mark.parametrize(
    "task, labels, message",
    [
        (
            tasks.Classification(3),
            [0, 1, 3],
            "Label 3 is outside the range of Classification(num_classes=3): "
            "labels must lie in [0, 2].",
        ),
        (
            tasks.Classification(3),
            [0, -1, 2],
            "Label -1 is outside the range of Classification(num_classes=3)"
            ": labels must lie in [0, 2].",
        ),
        (
            tasks.Classification(3),
            [0, 1.5, 2],
            "Classification labels must be integers; found 1.5.",
        ),
        (
            tasks.Regression(),
            [0.0, np.nan],
            "Regression labels contain NaN or inf.",
        ),
        (
            tasks.MultiLabel(2),
            [[0, 1], [2, 0]],
            "MultiLabel labels must be 0 or 1; found 2.",
        ),
        (
            tasks.MultiLabel(2),
            [0, 1],
            "MultiLabel labels must have shape (samples, 2); received shape "
            "(2,).",
        ),
        (
            tasks.Classification(2),
            ["spam", "ham"],
            "Labels must be numeric; received dtype <U4 (text). Map class "
            "names to indices first, e.g. `names, labels = np.unique(text, "
            "return_inverse=True)`, and keep the names in the task: "
            "`Classification(len(names), class_names=list(names))`.",
        ),
    ],
)
def test_validate_labels_names_the_problem(task, labels, message):
    with pytest.raises(ValueError) as error:
        task.validate_labels(np.array(labels))
    assert str(error.value) == message


def test_unlabeled_rows_are_not_range_checked():
    task = tasks.Classification(3)
    task.validate_labels(np.array([0, -1, 2]), np.array([1, 0, 1]))


@pytest.mark.parametrize(
    "task",
    [
        tasks.Classification(5),
        tasks.Regression((-2, 2), 0.7),
        tasks.MultiLabel(4),
    ],
)
def test_serialization_round_trip(task):
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(task)
    )
    assert restored == task


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: tasks.Classification(1),
            "`num_classes` must be an integer >= 2; received num_classes=1.",
        ),
        (
            lambda: tasks.Classification(2.5),
            "`num_classes` must be an integer >= 2; received num_classes=2.5.",
        ),
        (
            lambda: tasks.Regression(bins=(3, -3)),
            "`bins` must be two integers (low, high) with low < high; "
            "received bins=(3, -3).",
        ),
        (
            lambda: tasks.Regression(target_std=0),
            "`target_std` must be positive; received 0.",
        ),
        (
            lambda: tasks.MultiLabel(0),
            "`num_labels` must be a positive integer; received num_labels=0.",
        ),
    ],
)
def test_constructor_errors(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert str(error.value) == message


@pytest.mark.parametrize(
    "task, labels, is_labeled, expected",
    [
        (
            tasks.Classification(4),
            np.array([0, 1, 1, 3, 2, 2]),
            np.array([1, 1, 1, 1, 0, 0]),
            [0.25, 0.5, 0.0, 0.25],  # class 2 only on unlabeled rows
        ),
        (
            tasks.MultiLabel(3),
            np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1]]),
            np.array([1, 1, 0, 1]),
            [1.0, 2 / 3, 1 / 3],
        ),
        (
            tasks.Regression(),
            np.array([-3.0, 1.0, np.nan, 2.5]),
            np.array([1, 1, 0, 1]),
            [0.5 / 3],
        ),
    ],
    ids=["classification", "multilabel", "regression"],
)
def test_label_prior_over_labeled_rows(task, labels, is_labeled, expected):
    prior = task.label_prior(labels, is_labeled)
    assert prior.shape == (task.output_dim,) and prior.dtype == np.float32
    np.testing.assert_allclose(prior, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "task, expected",
    [
        (tasks.Classification(4), [0.25] * 4),
        (tasks.MultiLabel(2), [0.5, 0.5]),
        (tasks.Regression(), [0.0]),
    ],
)
def test_default_prior_without_labels(task, expected):
    np.testing.assert_allclose(task.default_prior(), expected)
    labels = task.placeholder_labels(3)
    no_label = task.label_prior(np.asarray(labels), np.zeros(3))
    np.testing.assert_allclose(no_label, expected)
