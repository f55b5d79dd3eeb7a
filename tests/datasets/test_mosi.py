"""MOSI and MOSEI loaders on files written in the MulT and MMSA formats."""

import pickle

import numpy as np
import pytest

from keras_robult.datasets import mosei, mosi
from tests.datasets.writers import MULT_SHAPES, SIZES, write_mmsa, write_mult


@pytest.mark.parametrize(
    "module, dataset, file",
    [(mosi, "mosi", "mosi_data.pkl"), (mosei, "mosei", "mosei_senti_data.pkl")],
)
def test_mult_pickle_splits_shapes_and_labels(
    tmp_path, capsys, module, dataset, file
):
    written = write_mult(tmp_path / file, dataset)
    splits = module.load_data(str(tmp_path))
    assert len(splits) == 3
    for (x, y), name in zip(splits, ("train", "valid", "test")):
        assert sorted(x) == ["audio", "text", "vision"]
        for modality, shape in MULT_SHAPES[dataset].items():
            assert x[modality].shape == (SIZES[name],) + shape
            assert x[modality].dtype == np.float32
            assert np.all(np.isfinite(x[modality]))
        assert y.shape == (SIZES[name],) and y.dtype == np.float32
        assert np.all((y >= -3) & (y <= 3))
        np.testing.assert_array_equal(y, written[name]["labels"].reshape(-1))
    audio = splits[0][0]["audio"]
    assert audio[3, 7, 2] == 0.0 and np.all(audio[5, 0] == 0.0)
    np.testing.assert_array_equal(
        audio[0], written["train"]["audio"][0]
    )  # finite values untouched
    width = MULT_SHAPES[dataset]["audio"][1]
    message = f"train/audio: {1 + width} non-finite values"
    assert message in capsys.readouterr().out


def test_mmsa_pickle_lengths_zero_the_padding(tmp_path):
    written = write_mmsa(tmp_path / "aligned_50.pkl")
    (x, y), _, _ = mosi.load_data(str(tmp_path))
    assert x["text"].shape == (24, 50, 768)
    lengths = written["train"]["audio_lengths"]
    for row in range(24):
        assert np.all(x["audio"][row, lengths[row] :] == 0)
        np.testing.assert_array_equal(
            x["audio"][row, : lengths[row]],
            written["train"]["audio"][row, : lengths[row]],
        )
    np.testing.assert_array_equal(y, written["train"]["regression_labels"])


def test_unaligned_picks_the_other_file(tmp_path):
    write_mult(tmp_path / "mosi_data.pkl", seed=1)
    write_mult(tmp_path / "mosi_data_noalign.pkl", seed=2)
    aligned = mosi.load_data(str(tmp_path), verbose=False)
    other = mosi.load_data(str(tmp_path), aligned=False, verbose=False)
    assert not np.array_equal(aligned[0][1], other[0][1])


def test_errors_name_the_file_and_the_problem(tmp_path):
    data = write_mult(tmp_path / "mosi_data.pkl")
    del data["valid"]
    bad = tmp_path / "no_valid.pkl"
    bad.write_bytes(pickle.dumps(data))
    with pytest.raises(
        ValueError, match=r"no_valid.pkl: missing split\(s\) \['valid'\]"
    ):
        mosi.load_data(str(bad))
    payload = (tmp_path / "mosi_data.pkl").read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(payload[: len(payload) // 3])
    with pytest.raises(ValueError, match="cut.pkl is not a complete pickle"):
        mosi.load_data(str(cut))
    data = write_mult(tmp_path / "x.pkl")
    data["test"]["vision"] = data["test"]["vision"][:, :, :7]
    wrong = tmp_path / "wrong.pkl"
    wrong.write_bytes(pickle.dumps(data))
    with pytest.raises(
        ValueError, match=r"'test/vision' has shape \(10, 50, 7\)"
    ):
        mosi.load_data(str(wrong))
    with pytest.raises(FileNotFoundError, match="mosi_data.pkl"):
        mosi.load_data(str(tmp_path / "empty_dir_missing"))
    (tmp_path / "d").mkdir()
    with pytest.raises(FileNotFoundError, match=r"\['mosi_data.pkl'"):
        mosi.load_data(str(tmp_path / "d"))
