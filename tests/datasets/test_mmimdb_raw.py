import os

import numpy as np
import pytest

from keras_robult.datasets import mmimdb
from tests.datasets.writers import write_mmimdb_raw


def test_raw_release_records(tmp_path):
    written = write_mmimdb_raw(tmp_path)
    records = mmimdb.load_records(str(tmp_path))
    assert [len(records[s]) for s in ("train", "valid", "test")] == [10, 4, 4]
    assert mmimdb.GENRES[0] == "Drama" and mmimdb.GENRES[-1] == "Film-Noir"
    assert len(mmimdb.GENRES) == mmimdb.NUM_GENRES == 23
    for split, name in (("train", "train"), ("valid", "dev"), ("test", "test")):
        part = records[split]
        assert part.labels.shape == (len(part), 23)
        for index, (movie, plot, genres) in enumerate(written[name]):
            assert part.ids[index] == movie
            # One sample per movie, the plot's strings joined.
            assert part.texts[index] == " ".join(plot)
            assert os.path.isfile(part.image_paths[index])
            expected = np.zeros(23, int)
            for genre in genres:
                if genre in mmimdb.GENRES:  # "News" is dropped
                    expected[mmimdb.GENRES.index(genre)] = 1
            np.testing.assert_array_equal(part.labels[index], expected)


def test_raw_release_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="split.json"):
        mmimdb.load_records(str(tmp_path))
    write_mmimdb_raw(tmp_path)
    movie = tmp_path / "dataset" / "0000003.json"
    movie.write_text('{"plot": ["no genres"]}')
    with pytest.raises(ValueError, match="0000003.json: no 'genres' list"):
        mmimdb.load_records(str(tmp_path))
    movie.unlink()
    with pytest.raises(FileNotFoundError, match="movie 0000003 of split"):
        mmimdb.load_records(str(tmp_path))
