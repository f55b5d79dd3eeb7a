import numpy as np
import pytest

from keras_robult.data import MissingSpec, literature_grid

TWO = ["image", "text"]


def patterns(mask):
    """Count of each row pattern, as tuples of 0/1."""
    rows, counts = np.unique(mask.astype(int), axis=0, return_counts=True)
    return {tuple(r): int(c) for r, c in zip(rows, counts)}


def test_both_on_200_samples_gives_the_literatures_counts():
    mask = MissingSpec.parse("both:0.7").apply(np.ones((200, 2)), TWO, 0)
    assert mask.dtype == np.float32
    assert patterns(mask) == {(0, 1): 70, (1, 0): 70, (1, 1): 60}


def test_both_ratio_shares_the_incomplete_samples():
    spec = MissingSpec.parse("both:0.7", both_ratio=0.3)
    mask = spec.apply(np.ones((200, 2)), TWO, 0)
    # int(140 x 0.3) = 42 lose the first modality (the image).
    assert patterns(mask) == {(0, 1): 42, (1, 0): 98, (1, 1): 60}


def test_one_modality_type_loses_that_modality_in_rate_of_the_samples():
    mask = MissingSpec.parse("text:0.7").apply(np.ones((200, 2)), TWO, 3)
    assert patterns(mask) == {(1, 0): 140, (1, 1): 60}
    mask = MissingSpec.parse("image:0.25").apply(np.ones((10, 2)), TWO, 3)
    assert patterns(mask) == {(0, 1): 2, (1, 1): 8}  # floor(2.5)


def test_all_splits_evenly_over_many_modalities():
    names = ["a", "b", "c", "d"]
    mask = MissingSpec.parse("all:0.5").apply(np.ones((102, 4)), names, 1)
    # 51 incomplete samples, each losing exactly one modality: 13, 13,
    # 13, 12 (the first 51 mod 4 = 3 modalities one more).
    assert (mask.sum(1) >= 3).all()
    assert (1.0 - mask).sum(0).tolist() == [13, 13, 13, 12]
    assert int((mask.sum(1) == 3).sum()) == 51


def test_a_list_of_modalities_spreads_over_those_only():
    names = ["audio", "video", "text"]
    mask = MissingSpec.parse("audio,text:0.6").apply(np.ones((50, 3)), names, 2)
    assert (1.0 - mask).sum(0).tolist() == [15, 0, 15]
    same = MissingSpec.parse("audio+text:0.6").apply(np.ones((50, 3)), names, 2)
    np.testing.assert_array_equal(mask, same)


def test_the_draw_is_seeded_and_depends_on_the_seed_and_the_spec():
    spec = MissingSpec.parse("both:0.5")
    base = np.ones((100, 2))
    first = spec.apply(base, TWO, seed=[4, 3])
    np.testing.assert_array_equal(first, spec.apply(base, TWO, seed=[4, 3]))
    assert not np.array_equal(first, spec.apply(base, TWO, seed=[5, 3]))
    other = MissingSpec.parse("text:0.5").apply(base, TWO, seed=[4, 3])
    assert not np.array_equal(first[:, 1], other[:, 1])


def test_the_datas_own_gaps_stay_and_an_emptied_sample_is_refused():
    base = np.ones((20, 2), "float32")
    base[:3, 0] = 0  # three samples hold only text
    mask = MissingSpec.parse("image:0.5").apply(base, TWO, 0)
    assert (mask <= base).all()
    with pytest.raises(ValueError, match=r"text:1 leaves 3 sample\(s\)"):
        MissingSpec.parse("text:1").apply(base, TWO, 0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("sound:0.7", "unknown modality 'sound'"),
        ("text:1.5", r"rate must be in \[0, 1\]"),
        ("text:-0.1", r"rate must be in \[0, 1\]"),
        ("text", "expected TYPE:RATE"),
        ("text:high", "expected TYPE:RATE"),
        (":0.7", "name a modality"),
        ("text,:0.7", "name a modality"),
    ],
)
def test_bad_specs_get_one_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        MissingSpec.parse(text).apply(np.ones((10, 2)), TWO, 0)


def test_a_single_modality_dataset_cannot_lose_its_modality():
    with pytest.raises(ValueError, match="no modality"):
        MissingSpec.parse("all:0.2").apply(np.ones((10, 1)), ["x"], 0)


def test_the_literature_grid():
    grid = [
        (str(train), [str(t) for t in tests])
        for train, tests in literature_grid(TWO)
    ]
    assert grid == [
        ("image:0.7", ["image:0.7"]),
        ("text:0.7", ["text:0.7"]),
        ("both:0.7", ["image:0.7", "text:0.7", "both:0.7"]),
    ]
    assert str(literature_grid(["a", "b", "c"])[-1][0]) == "all:0.7"
