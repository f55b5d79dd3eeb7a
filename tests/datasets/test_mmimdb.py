import numpy as np
import pytest

from keras_robult.datasets import mmimdb
from tests.datasets.writers import write_mmimdb


def test_splits_shapes_and_labels_without_reading_images(tmp_path):
    path = tmp_path / "multimodal_imdb.hdf5"
    genres = write_mmimdb(path, num=60)
    splits = mmimdb.load_data(str(tmp_path))  # `images` is unreadable
    sizes = [len(y) for _, y in splits]
    assert sum(sizes) == 60 and sizes == [35, 6, 19]  # release proportions
    start = 0
    for x, y in splits:
        assert x["text"].shape == (len(y), 300)
        assert x["image"].shape == (len(y), 4096)
        assert x["text"].dtype == np.float32 and y.dtype == np.int32
        np.testing.assert_array_equal(y, genres[start : start + len(y)])
        start += len(y)
    with pytest.raises(ValueError, match="reading split 'train' failed"):
        mmimdb.load_data(str(path), with_images=True)


def test_official_index_splits_on_a_full_size_file(tmp_path):
    path = tmp_path / "multimodal_imdb.hdf5"
    write_mmimdb(path, num=25959, external_images=False)
    ((x, y),) = mmimdb.load_data(str(path), splits=("valid",))
    assert len(y) == 18160 - 15552


def test_errors_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "no_genres.hdf5"
    write_mmimdb(path, missing=("genres",))
    with pytest.raises(
        ValueError, match=r"no_genres.hdf5: missing dataset\(s\) \['genres'\]"
    ):
        mmimdb.load_data(str(path))
    with pytest.raises(FileNotFoundError, match="multimodal_imdb.hdf5"):
        mmimdb.load_data(str(tmp_path))
    good = tmp_path / "good.hdf5"
    write_mmimdb(good, external_images=False)
    payload = good.read_bytes()
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError, match="cut.hdf5"):
        mmimdb.load_data(str(cut))
