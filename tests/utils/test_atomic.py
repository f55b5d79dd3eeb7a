import json
import os

import pytest

from keras_robult.experiments import report
from keras_robult.utils import atomic


def test_an_interrupted_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    atomic.write_json(path, {"value": 1})
    real_open = open

    class HalfWriter:
        """Writes half of what it is given, then fails (a kill mid-file)."""

        def __init__(self, handle):
            self.handle = handle

        def write(self, text):
            self.handle.write(text[: len(text) // 2])
            self.handle.flush()
            raise KeyboardInterrupt

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *args):
            self.handle.close()

    def half_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return HalfWriter(handle) if "w" in mode else handle

    monkeypatch.setattr("builtins.open", half_open)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_json(path, {"value": 2, "more": list(range(100))})
    monkeypatch.undo()
    with open(path) as handle:
        assert json.load(handle) == {"value": 1}
    assert os.listdir(tmp_path) == ["results.json"]  # no partial file left


def test_write_results_is_atomic_file_by_file(tmp_path, monkeypatch):
    results = {
        "dataset": "d",
        "task": "classification",
        "labeled_fraction": 0.1,
        "seeds": [0],
        "modalities": ["a"],
        "results": [
            {
                "method": "m",
                "subset": ["a"],
                "metric": "accuracy",
                "mean": 0.5,
                "std": 0.0,
                "per_seed": [0.5],
            }
        ],
        "missing_rate_curves": [],
    }
    report.write_results(results, {0: {}}, str(tmp_path))
    before = (tmp_path / "results.md").read_text()
    changed = json.loads(json.dumps(results))
    changed["results"][0]["mean"] = 0.75

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report, "markdown_table", broken)
    with pytest.raises(OSError, match="disk full"):
        report.write_results(changed, {0: {}}, str(tmp_path))
    # results.json was replaced whole, results.md is the previous one.
    with open(tmp_path / "results.json") as handle:
        assert json.load(handle)["results"][0]["mean"] == 0.75
    assert (tmp_path / "results.md").read_text() == before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
