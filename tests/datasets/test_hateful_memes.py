import json

import numpy as np
import pytest

from keras_robult.datasets import hateful_memes
from tests.datasets.writers import write_hateful_memes


def test_records_and_the_choice_of_test_split(tmp_path):
    written = write_hateful_memes(tmp_path)
    records = hateful_memes.load_records(str(tmp_path))
    # test_seen is the test, dev_seen validates.
    assert list(records["test"].ids) == [
        str(r["id"]) for r in written["test_seen"]
    ]
    assert list(records["valid"].ids) == [
        str(r["id"]) for r in written["dev_seen"]
    ]
    train = records["train"]
    assert len(train) == 16 and train.classes == ("not hateful", "hateful")
    np.testing.assert_array_equal(
        train.labels, [r["label"] for r in written["train"]]
    )
    assert train.image_paths[0] == str(tmp_path / written["train"][0]["img"])
    assert train.texts[0] == written["train"][0]["text"]
    # dev_seen as test: validation is carved from train, stratified.
    records = hateful_memes.load_records(str(tmp_path), "dev_seen", 0.25)
    assert len(records["valid"]) == 4 and len(records["train"]) == 12
    assert np.bincount(records["valid"].labels).tolist() == [2, 2]


def test_phase_one_test_file_is_for_prediction_only(tmp_path):
    write_hateful_memes(tmp_path)
    with pytest.raises(
        ValueError, match="has no labels.*'dev_seen' or 'test_seen'"
    ):
        hateful_memes.load_records(str(tmp_path), test_split="test")
    unlabeled = hateful_memes.read_jsonl(
        str(tmp_path / "test.jsonl"), require_label=False
    )
    assert len(unlabeled) == 4 and not unlabeled.is_labeled.any()
    with pytest.raises(ValueError, match=r"test.jsonl, line 1: no label"):
        hateful_memes.read_jsonl(str(tmp_path / "test.jsonl"))


def test_bad_lines_name_file_and_line(tmp_path):
    write_hateful_memes(tmp_path, phase1_test=False)
    path = tmp_path / "train.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    del row["text"]
    lines[2] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"train.jsonl, line 3: no text"):
        hateful_memes.load_records(str(tmp_path))
    lines[2] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"train.jsonl, line 3: not JSON"):
        hateful_memes.load_records(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"test_unseen.jsonl .*holds"):
        hateful_memes.load_records(str(tmp_path), "test_unseen")
    with pytest.raises(ValueError, match="Unknown test split 'val'"):
        hateful_memes.load_records(str(tmp_path), "val")
