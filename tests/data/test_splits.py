import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.data import labeled_mask, strata, train_test_split


def test_keeps_class_ratio_and_is_deterministic():
    labels = np.repeat(np.arange(4), [400, 300, 200, 100])
    mask = labeled_mask(labels, 0.1, seed=3)
    assert mask.sum() == 100
    np.testing.assert_array_equal(np.bincount(labels[mask]), [40, 30, 20, 10])
    np.testing.assert_array_equal(mask, labeled_mask(labels, 0.1, seed=3))
    assert not np.array_equal(mask, labeled_mask(labels, 0.1, seed=4))


def test_at_least_one_per_class_when_fraction_allows():
    labels = np.repeat(np.arange(5), [200, 200, 200, 200, 3])
    mask = labeled_mask(labels, 0.01, seed=0)  # 8 labeled, 5 classes
    assert mask.sum() == 8
    assert np.all(np.bincount(labels[mask], minlength=5) >= 1)
    # Fewer labeled samples than classes: cannot cover them all.
    assert labeled_mask(labels, 0.004, seed=0).sum() == 3


def test_regression_is_stratified_on_seven_bins():
    rng = np.random.default_rng(0)
    values = rng.uniform(-3.4, 3.4, 1000)
    groups = strata(values, tasks.Regression())
    assert set(groups) == set(range(7))
    mask = labeled_mask(values, 0.07, seed=0, task=tasks.Regression())
    assert np.all(np.bincount(groups[mask], minlength=7) >= 1)


def test_multilabel_is_stratified_on_label_combinations():
    rng = np.random.default_rng(0)
    labels = (rng.uniform(size=(300, 3)) < 0.5).astype(int)
    mask = labeled_mask(labels, 0.2, seed=1, task=tasks.MultiLabel(3))
    groups = strata(labels)
    full = np.bincount(groups) / len(groups)
    part = np.bincount(groups[mask], minlength=len(full)) / mask.sum()
    assert np.abs(full - part).max() < 0.03


def test_train_test_split_is_a_stratified_partition():
    labels = np.repeat(np.arange(10), 200)
    train, test = train_test_split(labels, 0.3, seed=0)
    assert len(train) == 1400 and len(test) == 600
    assert not set(train) & set(test)
    np.testing.assert_array_equal(np.bincount(labels[test]), [60] * 10)


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, "half"])
def test_fraction_outside_range_is_an_error(fraction):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        labeled_mask(np.arange(10) % 2, fraction)


def test_stratified_head_holds_every_class_of_a_file_listed_by_class():
    """A release listed class by class (0 x 100, then 1 x 100, 2 x 100):
    64 samples hold 22, 21 and 21 of each class, in file order."""
    from keras_robult.data.splits import stratified_head

    labels = np.repeat(np.arange(3), 100)
    rows = stratified_head(labels, 64)
    assert len(rows) == 64 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(np.bincount(labels[rows]), [22, 21, 21])
    np.testing.assert_array_equal(rows[:22], np.arange(22))  # file order
    assert len(stratified_head(labels[:10], 64)) == 10  # fewer: all


def test_regression_strata_follow_the_tasks_scale():
    y = np.linspace(1000.0, 1337.0, 70)
    groups = strata(y, tasks.Regression.from_targets(y))
    expected = np.round((y - 1000.0) / (337.0 / 6)).astype(int)
    np.testing.assert_array_equal(groups, expected)
    assert set(groups) == set(range(7))  # not all in the top bin
