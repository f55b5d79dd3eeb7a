import numpy as np
import pytest

from keras_robult.data import infer_task_name, load_npz


def write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_good_file(tmp_path):
    rng = np.random.default_rng(0)
    path = write(
        tmp_path / "d.npz",
        x_audio=rng.normal(size=(10, 3)),
        x_text=rng.normal(size=(10, 4, 2)),
        y=np.arange(10) % 2,
        test=np.arange(10) >= 7,
    )
    data = load_npz(path)
    assert list(data["x"]) == ["audio", "text"]
    assert data["test"].sum() == 3 and data["is_labeled"] is None


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"y": np.arange(4)}, "one array 'x_<modality>'"),
        ({"x_a": np.zeros((4, 2))}, "the labels 'y'"),
        ({"x_a": np.zeros((4, 2)), "y": np.arange(4), "w": 1}, "unknown"),
        (
            {
                "x_a": np.zeros((4, 2)),
                "x_b": np.zeros((3, 2)),
                "y": np.arange(4),
            },
            "same number of samples",
        ),
        (
            {"x_a": np.array([[0.0], [np.nan], [1], [2]]), "y": np.arange(4)},
            "'a' has NaN .* row 1",
        ),
        (
            {"x_a": np.zeros((4, 2)), "y": np.arange(4), "test": np.ones(3)},
            "'test' must be",
        ),
        (
            {"x_a": np.zeros((4, 2)), "y": np.arange(4), "is_labeled": [2] * 4},
            "'is_labeled' must hold 0 or 1; found 2.0",
        ),
        (
            {"x_a": np.zeros((4, 2)), "y": np.arange(4) + 0.5j},
            "'y' must be numbers or class names .* complex128",
        ),
        (
            {"x_a": np.zeros((4, 2)) + 1j, "y": np.arange(4)},
            "'a' must be real numbers .* complex128",
        ),
        (
            {
                "x_a": np.zeros((4, 2)),
                "x_modality_mask": np.ones((4, 1)),
                "y": np.arange(4),
            },
            "'x_modality_mask' would be a modality named 'modality_mask'; "
            "save the mask as 'modality_mask' \\(no x_\\)",
        ),
    ],
)
def test_bad_files(tmp_path, arrays, message):
    path = write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_npz(path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_npz(str(tmp_path / "none.npz"))
    broken = tmp_path / "broken.npz"
    broken.write_text("not a zip")
    with pytest.raises(ValueError) as error:
        load_npz(str(broken))
    assert str(error.value) == (
        f"{broken} is not an .npz archive (the zip of named arrays that "
        "numpy.savez writes); it cannot be read as data."
    )


def test_truncated_and_pickled_archives_are_refused(tmp_path):
    good = write(tmp_path / "good.npz", x_a=np.zeros((40, 3)), y=np.arange(40))
    raw = open(good, "rb").read()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="is not an .npz archive"):
        load_npz(str(truncated))
    # Object arrays, short or long (a long one's pickle is smaller than
    # the bytes its header claims): the same sentence.
    for count in (3, 600):
        pickled = write(
            tmp_path / f"pickled{count}.npz",
            x_a=np.zeros((count, 2)),
            y=np.array(([{"a": 1}, None, 3] * count)[:count], dtype=object),
        )
        with pytest.raises(ValueError) as error:
            load_npz(pickled)
        assert str(error.value) == (
            f"{pickled}: array 'y' is an object array (object), which only "
            "pickle can read, and pickles are not loaded (they can run "
            "code). Save plain numeric arrays (and text labels as strings: "
            "np.asarray(labels, dtype=str))."
        )


def test_text_labels_become_classes_in_name_order(tmp_path):
    path = write(
        tmp_path / "named.npz",
        x_a=np.zeros((5, 2)),
        y=np.array(["dog", "cat", "eel", "cat", "dog"]),
    )
    data = load_npz(path)
    assert data["classes"] == ["cat", "dog", "eel"]
    np.testing.assert_array_equal(data["y"], [1, 0, 2, 0, 1])
    assert infer_task_name(data["y"]) == "classification"


def test_infer_task_name():
    assert infer_task_name(np.array([0, 1, 2])) == "classification"
    assert infer_task_name(np.array([0.0, 2.0])) == "classification"
    assert infer_task_name(np.array([0.5, -1.2])) == "regression"
    assert infer_task_name(np.array([[0, 1], [1, 1]])) == "multilabel"


def test_a_header_claiming_more_than_the_file_holds(tmp_path):
    """Refused from the header, before NumPy allocates the claimed
    16 TB."""
    import zipfile

    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (10**12, 4)}"
    header = header.replace(b"10**12", b"1000000000000")
    header += b" " * (117 - len(header)) + b"\n"
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_a.npy", member + header + bytes(64))
        archive.writestr("y.npy", b"")
    with pytest.raises(
        ValueError,
        match=r"array 'x_a' claims shape \(1000000000000, 4\) of float32 "
        r"\(16,000,000,000,000 bytes\) but its member holds 64\)",
    ):
        load_npz(str(path))
