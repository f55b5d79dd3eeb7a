import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def robult(*args, cwd=None):
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run(
        [sys.executable, "-m", "keras_robult.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=600,
    )


def toy_npz(path, **changes):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    arrays = {
        "x_a": (y[:, None] + rng.normal(size=(60, 4))).astype("float32"),
        "x_b": (y[:, None] + rng.normal(size=(60, 3))).astype("float32"),
        "y": y,
    }
    arrays.update(changes)
    np.savez(path, **arrays)
    return str(path)


def test_version_and_help():
    result = robult("--version")
    assert result.returncode == 0 and "robult 0." in result.stdout
    result = robult("train", "--help")
    assert result.returncode == 0 and "--labeled-fraction" in result.stdout


def test_train_then_evaluate_on_a_user_file(tmp_path):
    data = toy_npz(tmp_path / "toy.npz")
    out = str(tmp_path / "out")
    result = robult(
        "train",
        "--data",
        data,
        "--epochs",
        "2",
        "--seeds",
        "0",
        "--batch-size",
        "16",
        "--labeled-fraction",
        "0.2",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| all |" in result.stdout and "| a+b |" not in result.stdout
    with open(os.path.join(out, "results.json")) as handle:
        results = json.load(handle)
    assert results["dataset"] == "toy" and results["task"] == "classification"
    assert results["modalities"] == ["a", "b"]
    assert {tuple(r["subset"]) for r in results["results"]} == {
        ("a",),
        ("b",),
        ("a", "b"),
    }
    for name in ("results.md", "missing_rate.png", "labeled_indices.json"):
        assert os.path.exists(os.path.join(out, name))
    model = os.path.join(out, "models", "robult-seed0.keras")
    result = robult(
        "evaluate", "--model", model, "--data", data, "--out", out + "2"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.exists(os.path.join(out + "2", "results.json"))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"x_b": np.zeros((50, 3), "float32")}, "same number of samples"),
        ({"x_a": np.full((60, 4), np.nan, "float32")}, "'a' has NaN"),
        ({"labels": np.arange(60)}, "unknown"),
    ],
    ids=["length", "nan", "keys"],
)
def test_bad_data_is_a_one_line_error(tmp_path, changes, message):
    data = toy_npz(tmp_path / "bad.npz", **changes)
    result = robult("train", "--data", data, "--epochs", "1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("robult: error:") and message.split(" ")[0] in last


def test_missing_file_is_a_one_line_error(tmp_path):
    result = robult("train", "--data", str(tmp_path / "none.npz"))
    assert result.returncode == 2
    assert "No such data file" in result.stderr.strip().splitlines()[-1]
