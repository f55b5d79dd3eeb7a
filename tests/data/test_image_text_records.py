import numpy as np
import pytest

from keras_robult.data import ImageTextRecords


def test_a_user_csv_with_gaps_and_class_names(tmp_path):
    path = tmp_path / "records.csv"
    path.write_text(
        "image,text,label\n"
        "a.jpg,a red apple,fruit\n"
        ",only words,veg\n"
        "c.jpg,,fruit\n"
        "d.jpg,unlabeled,\n"
    )
    records = ImageTextRecords.from_file(str(path))
    assert len(records) == 4 and records.classes == ("fruit", "veg")
    np.testing.assert_array_equal(
        records.modality_mask(), [[1, 1], [0, 1], [1, 0], [1, 1]]
    )
    np.testing.assert_array_equal(records.labels, [0, 1, 0, 0])
    np.testing.assert_array_equal(records.is_labeled, [1, 1, 1, 0])
    assert records.image_paths[0] == str(tmp_path / "a.jpg")
    assert records.image_paths[1] == ""
    part = records.subset([3, 0])
    assert list(part.texts) == ["unlabeled", "a red apple"]
    assert "4 samples, 3 images, 3 texts, 3 labeled" in repr(records)


def test_a_user_jsonl_with_other_columns_and_integer_labels(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(
        '{"photo": "x/1.png", "caption": "one", "y": 2}\n'
        '{"photo": null, "caption": "two", "y": 0}\n'
    )
    records = ImageTextRecords.from_file(
        str(path),
        image_column="photo",
        text_column="caption",
        label_column="y",
    )
    assert records.classes is None
    np.testing.assert_array_equal(records.labels, [2, 0])
    assert records.image_paths[0] == str(tmp_path / "x" / "1.png")
    np.testing.assert_array_equal(records.modality_mask()[:, 0], [1, 0])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("r.csv", "image,text,label\n,,cat\n", r"r.csv, line 2: .*neither"),
        ("r.csv", "img,txt,label\na.jpg,b,c\n", r"no column 'image', 'text'"),
        ("r.csv", "image,text,label\na.jpg,t,c,extra\n", "line 2: more cells"),
        ("r.jsonl", '{"image": "a.jpg"}\n[1]\n', r"r.jsonl, line 2: not a"),
        ("r.jsonl", "{bad\n", r"r.jsonl, line 1: not a JSON object"),
        ("r.csv", "", "no records"),
        ("r.txt", "image\n", "from a .csv"),
    ],
)
def test_bad_records_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        ImageTextRecords.from_file(str(path))


def test_the_header_is_checked_before_any_row(tmp_path):
    """Columns image, caption, kind: the missing text and label columns
    and the columns not read are named (not a row's missing modality)."""
    path = tmp_path / "r.csv"
    path.write_text("image,caption,kind\na.jpg,a cat,pet\n,,\n")
    with pytest.raises(ValueError) as error:
        ImageTextRecords.from_file(str(path))
    assert str(error.value).startswith(
        f"{path}: no column 'text', 'label' (its columns: caption, image, "
        "kind; 'caption', 'kind' not read). Every records file has an image, "
        "a text and a label column"
    )
    # Without a text column: refused, not a text modality never present.
    path.write_text("image,label\na.jpg,pet\nb.jpg,pet\n")
    with pytest.raises(ValueError, match="no column 'text' "):
        ImageTextRecords.from_file(str(path))


def test_multi_label_records_from_csv_and_jsonl(tmp_path):
    csv_path = tmp_path / "r.csv"
    csv_path.write_text(
        "image,text,label\n"
        "a.jpg,a,drama|comedy\n"
        ",b,comedy\n"
        "c.jpg,c,\n"
        "d.jpg,d, war | drama \n"
    )
    jsonl_path = tmp_path / "r.jsonl"
    jsonl_path.write_text(
        '{"image": "a.jpg", "text": "a", "label": ["drama", "comedy"]}\n'
        '{"image": null, "text": "b", "label": ["comedy"]}\n'
        '{"image": "c.jpg", "text": "c"}\n'
        '{"image": "d.jpg", "text": "d", "label": ["war", "drama"]}\n'
        '{"image": "e.jpg", "text": "e", "label": []}\n'
    )
    for path, count in ((csv_path, 4), (jsonl_path, 5)):
        records = ImageTextRecords.from_file(str(path), task="multilabel")
        assert records.classes == ("comedy", "drama", "war")
        expected = [[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 1, 1], [0, 0, 0]]
        np.testing.assert_array_equal(records.labels, expected[:count])
        # An absent label: unlabeled; an empty list: labeled, no label.
        np.testing.assert_array_equal(
            records.is_labeled, [1, 1, 0, 1, 1][:count]
        )


def test_regression_records(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("image,text,label\na.jpg,a,-1.25\nb.jpg,b,\nc.jpg,c,3\n")
    records = ImageTextRecords.from_file(str(path), task="regression")
    assert records.labels.dtype == np.float32
    np.testing.assert_allclose(records.labels, [-1.25, 0.0, 3.0])
    np.testing.assert_array_equal(records.is_labeled, [1, 0, 1])
    path.write_text("image,text,label\na.jpg,a,1\nb.jpg,b,high\n")
    with pytest.raises(ValueError) as error:
        ImageTextRecords.from_file(str(path), task="regression")
    assert str(error.value) == (
        f"{path}, line 3: label 'high' is not a number (a regression target)."
    )
    path.write_text("image,text,label\na.jpg,a,nan\n")
    with pytest.raises(ValueError, match="line 2: label nan is not a finite"):
        ImageTextRecords.from_file(str(path), task="regression")
    with pytest.raises(ValueError, match="`task` must be"):
        ImageTextRecords.from_file(str(path), task="ranking")
