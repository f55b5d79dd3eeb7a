import os

import numpy as np
import pytest

from keras_robult.datasets import food101
from tests.datasets.writers import FOOD_CLASSES, write_food101


def test_records_follow_the_release_layout(tmp_path):
    written = write_food101(tmp_path, {"train": 10, "test": 2})
    records = food101.load_records(str(tmp_path), validation_fraction=0.2)
    assert set(records) == {"train", "valid", "test"}
    assert [len(records[s]) for s in ("train", "valid", "test")] == [24, 6, 6]
    classes = sorted(FOOD_CLASSES)
    for split in records.values():
        assert split.classes == tuple(classes)
        # Paths of files that exist; texts and classes of the same row.
        for path, text, label in zip(
            split.image_paths, split.texts, split.labels
        ):
            assert os.path.isfile(path)
            folder = os.path.basename(os.path.dirname(path))
            assert folder == classes[label] and folder in text
        np.testing.assert_array_equal(split.modality_mask(), 1.0)
        assert split.is_labeled.all()
    test = records["test"]
    assert list(test.ids) == [row[0] for row in written["test"]]
    # Validation: stratified (2 per class), disjoint from train, seeded.
    valid, train = records["valid"], records["train"]
    assert np.bincount(valid.labels).tolist() == [2, 2, 2]
    assert not set(valid.ids) & set(train.ids)
    again = food101.load_records(str(tmp_path), validation_fraction=0.2)
    assert list(again["valid"].ids) == list(valid.ids)
    other = food101.load_records(str(tmp_path), validation_fraction=0.2, seed=1)
    assert list(other["valid"].ids) != list(valid.ids)
    whole = food101.load_records(str(tmp_path), validation_fraction=0)
    assert set(whole) == {"train", "test"} and len(whole["train"]) == 30


def test_errors_name_the_file_and_line(tmp_path):
    write_food101(tmp_path)
    titles = tmp_path / "texts" / "train_titles.csv"
    lines = titles.read_text().splitlines()
    lines[3] = "apple_pie_9.jpg,a title with no class"
    titles.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError, match=r"train_titles.csv, line 4: 2 cells; a row is"
    ):
        food101.load_records(str(tmp_path))
    titles.unlink()
    with pytest.raises(FileNotFoundError, match="train_titles.csv"):
        food101.load_records(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="No such directory"):
        food101.load_records(str(tmp_path / "nowhere"))
