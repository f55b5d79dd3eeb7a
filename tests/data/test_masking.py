import numpy as np
import pytest

from keras_robult.data import (
    evaluation_subsets,
    random_mask,
    subset_mask,
    training_mask,
)
from keras_robult.data.masking import drop_modalities


def test_subset_mask_and_errors():
    mask = subset_mask(3, ["a", "b", "c"], ["c", "a"])
    np.testing.assert_array_equal(mask, [[1, 0, 1]] * 3)
    with pytest.raises(ValueError, match="unknown: \\['d'\\]"):
        subset_mask(3, ["a", "b", "c"], ["d"])
    with pytest.raises(ValueError, match="non-empty"):
        subset_mask(3, ["a"], [])


def test_random_mask_rate_keeps_one_and_is_seeded():
    mask = random_mask(20000, 4, 0.3, seed=5)
    assert mask.sum(axis=1).min() >= 1
    # Drop rate close to p (slightly lower: emptied rows get one back).
    assert abs((1 - mask.mean()) - 0.3) < 0.01
    np.testing.assert_array_equal(mask, random_mask(20000, 4, 0.3, seed=5))
    assert not np.array_equal(mask, random_mask(20000, 4, 0.3, seed=6))
    assert random_mask(10, 3, 0.0).min() == 1.0
    with pytest.raises(ValueError, match="rate"):
        random_mask(10, 3, 1.0)


def test_evaluation_subsets():
    three = evaluation_subsets(["a", "b", "c"])
    assert (
        len(three) == 7 and three[0] == ["a"] and three[-1] == ["a", "b", "c"]
    )
    six = evaluation_subsets(list("abcdef"))
    # Six singles, six leave-one-out sets, the full set.
    assert len(six) == 13
    assert sum(len(s) == 5 for s in six) == 6 and six[-1] == list("abcdef")


def test_training_mask_keeps_a_present_modality_of_each_sample():
    base = np.ones((20000, 4), "float32")
    base[:5000, 0] = 0.0  # the data itself misses modality 0 there
    base[5000:6000] = [0, 0, 1, 0]  # one modality only: always kept
    mask = training_mask(base, 0.5, seed=3)
    assert mask.dtype == np.float32 and mask.shape == base.shape
    assert np.all(mask <= base)  # never brings back a missing modality
    assert mask.sum(axis=1).min() == 1
    np.testing.assert_array_equal(mask[5000:6000], base[5000:6000])
    # Each present modality dropped at about the rate (a little less:
    # samples that lost all get one back).
    rest = base[6000:] > 0
    dropped = 1.0 - mask[6000:][rest].mean()
    assert 0.45 < dropped < 0.5
    # The modality given back is uniform among the sample's own.
    full = mask[6000:][(base[6000:] > 0).all(1) & (mask[6000:].sum(1) == 1)]
    assert np.all(np.abs(full.mean(0) - 0.25) < 0.05)
    np.testing.assert_array_equal(mask, training_mask(base, 0.5, seed=3))
    assert not np.array_equal(mask, training_mask(base, 0.5, seed=4))
    np.testing.assert_array_equal(training_mask(base, 0.0), base)


def test_training_mask_errors():
    with pytest.raises(ValueError, match="train_missing_rate"):
        training_mask(np.ones((3, 2)), 1.0)
    base = np.ones((4, 2))
    base[2] = 0
    with pytest.raises(ValueError, match=r"1 training sample\(s\) have no"):
        training_mask(base, 0.3)


def test_drop_modalities_graph_op():
    import tensorflow as tf

    base = tf.constant([1.0, 0.0, 1.0, 1.0])
    uniform = np.random.default_rng(0).uniform(size=(3000, 2, 4))
    masks = np.stack(
        [drop_modalities(base, tf.constant(u), 0.6).numpy() for u in uniform]
    )
    assert np.all(masks[:, 1] == 0) and masks.sum(1).min() >= 1
    assert np.all(masks <= base.numpy())
    present = masks[:, [0, 2, 3]]
    # Dropped at 0.6, less the samples given one back (0.6^3 = 0.216 of
    # them, each getting one of three): 0.6 - 0.216 / 3 = 0.528.
    assert abs((1 - present.mean()) - 0.528) < 0.03
    # The rule, against NumPy: kept where the first draw is >= rate; all
    # dropped -> the present modality with the largest second draw.
    kept = base.numpy() * (uniform[:, 0] >= 0.6)
    back = np.eye(4)[np.argmax(np.where(base > 0, uniform[:, 1], -1), 1)]
    reference = np.where(kept.sum(1, keepdims=True) > 0, kept, back)
    np.testing.assert_array_equal(masks, reference)
    # Batched: the same masks, row by row.
    batched = drop_modalities(
        tf.tile(base[None], [3000, 1]), tf.constant(uniform), 0.6
    ).numpy()
    np.testing.assert_array_equal(batched, masks)


def test_leave_one_out_rows_of_many_modalities_read_all_but():
    from keras_robult.data.masking import subset_label

    many = [f"sensor_{i:02d}" for i in range(12)]
    assert subset_label(many[:5] + many[6:], many) == "all but sensor_05"
    assert subset_label(many, many) == "all"
    assert subset_label(["sensor_03"], many) == "sensor_03"
    few = ["a", "b", "c"]  # every subset is reported: names as they are
    assert subset_label(["a", "c"], few) == "a+c"
