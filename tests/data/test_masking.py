import numpy as np
import pytest

from keras_robult.data import evaluation_subsets, random_mask, subset_mask


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
