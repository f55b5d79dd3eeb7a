import os
import pickle

import numpy as np
import pytest

from keras_robult.datasets import load_pickle


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_calls_os_system_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "was-run"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"train": RunsACommand(marker)}, f)
    with pytest.raises(
        ValueError, match=r"Refused to load the global '(posix|os)\.system'"
    ):
        load_pickle(path)
    assert not marker.exists()


def test_arrays_dicts_and_strings_load(tmp_path):
    data = {
        "a": np.arange(6, dtype="float32").reshape(2, 3),
        "b": [np.array(["x", "yz"]), 3, 2.5, "s", (1, 2)],
        "c": np.float64(1.5),
    }
    path = tmp_path / "ok.pkl"
    for protocol in (2, 4, 5):
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=protocol)
        loaded = load_pickle(path)
        np.testing.assert_array_equal(loaded["a"], data["a"])
        np.testing.assert_array_equal(loaded["b"][0], data["b"][0])
        assert loaded["b"][1:] == data["b"][1:] and loaded["c"] == 1.5


def test_truncated_and_missing_files_name_the_problem(tmp_path):
    path = tmp_path / "cut.pkl"
    payload = pickle.dumps({"a": np.zeros((100, 10))})
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError, match="cut.pkl is not a complete pickle"):
        load_pickle(path)
    with pytest.raises(FileNotFoundError, match="no.pkl"):
        load_pickle(tmp_path / "no.pkl")
