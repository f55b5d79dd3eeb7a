"""The recipes end to end (`--smoke`) on files written in the distributed
formats: a valid results folder with the paper's metric names."""

import json
import os
import runpy
import subprocess
import sys

import keras
import pytest

from tests.cli.test_command import tensorflow_startup_lines
from tests.conftest import once
from tests.datasets.writers import write_mmimdb, write_mult

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def recipe(name):
    return runpy.run_path(os.path.join(ROOT, "recipes", f"{name}.py"))


def smoke(name, data_dir, out, *extra):
    return recipe(name)["run"](
        [
            "--data-dir",
            str(data_dir),
            "--smoke",
            "--seeds",
            "0",
            "--batch-size",
            "16",
            "--quiet",
            "--out",
            str(out),
            *extra,
        ]
    )


def check_results(out, subsets, metrics, methods):
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    found = {
        (r["method"], "+".join(r["subset"]), r["metric"])
        for r in results["results"]
    }
    for method in methods:
        for subset in subsets:
            for metric in metrics:
                assert (method, subset, metric) in found
    with open(os.path.join(out, "labeled_indices.json")) as f:
        split = json.load(f)["seed_0"]
    assert split["valid"] and split["test"] and split["labeled"]
    assert not set(split["valid"]) & set(split["train"])
    assert set(split["labeled"]) <= set(split["train"])
    with open(os.path.join(out, "results.md")) as f:
        assert f.read().count("| subset |") == len(metrics)
    for method in methods:
        assert os.path.exists(
            os.path.join(out, "models", f"{method}-seed0.keras")
        )
    return results


@once
def test_mosei_recipe(tmp_path):
    write_mult(tmp_path / "mosei_senti_data.pkl", "mosei")
    out = tmp_path / "out"
    assert smoke("mosei", tmp_path, out, "--methods", "robult") == 0
    check_results(
        out,
        ["text", "audio"],
        ["mae", "corr", "f1_weighted", "acc2", "acc7"],
        ["robult"],
    )


@once
def test_a_recipe_tunes_robult_on_its_validation_split_first(tmp_path):
    write_mult(tmp_path / "mosei_senti_data.pkl", "mosei")
    out = tmp_path / "out"
    argv = ("--methods", "robult", "--tune", "2")
    assert smoke("mosei", tmp_path, out, *argv) == 0
    search = out / "tune"
    best = json.loads((search / "best_hparams.json").read_text())
    trials = json.loads((search / "trials.json").read_text())
    assert [t["status"] for t in trials["trials"]] == ["COMPLETED"] * 2
    # The search saw the official train and validation splits, no test row.
    rows = json.loads((out / "labeled_indices.json").read_text())["seed_0"]
    seen = json.loads((search / "tuning_splits.json").read_text())["0"]
    assert sorted(seen["validation"]) == sorted(rows["valid"])
    assert sorted(seen["fit"]) == sorted(rows["train"])
    assert sorted(seen["test"]) == sorted(rows["test"])
    # robult trained with the search's best values, recorded with their file.
    results = check_results(
        out,
        ["text", "audio"],
        ["mae", "corr", "f1_weighted", "acc2", "acc7"],
        ["robult"],
    )
    assert results["hparams"]["method"] == "robult"
    assert results["hparams"]["source"] == str(search / "best_hparams.json")
    config = keras.saving.load_model(
        out / "models" / "robult-seed0.keras", compile=False
    ).get_config()
    for name in ("temperature", "rbf_bandwidth", "dropout"):
        if name in best["hparams"]:
            assert config[name] == pytest.approx(best["hparams"][name])
    # A second run resumes the search: nothing trains again.
    assert smoke("mosei", tmp_path, out, *argv) == 0
    assert json.loads((search / "trials.json").read_text()) == trials
    # --tune and --hparams together: one error line before any work.
    assert (
        smoke("mosei", tmp_path, tmp_path / "o2", *argv, "--hparams", "x.json")
        == 2
    )
    assert not (tmp_path / "o2").exists()


@once
def test_mmimdb_recipe(tmp_path):
    write_mmimdb(tmp_path / "multimodal_imdb.hdf5", num=80)
    out = tmp_path / "out"
    assert smoke("mmimdb", tmp_path, out, "--methods", "robult", "gmc") == 0
    results = check_results(
        out,
        ["text", "image", "text+image"],
        ["f1_macro", "f1_micro"],
        ["robult", "gmc"],
    )
    assert results["task"] == "multilabel"


def test_recipe_errors_name_the_problem(tmp_path, capsys):
    assert smoke("mosi", tmp_path / "nowhere", tmp_path / "o") == 2
    assert "mosi recipe: error: No such file or directory" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        recipe("mmimdb")["run"](["--smoke"])  # --data-dir is required


@once  # the script's glue; the recipe's training runs on all three
def test_mosi_recipe_as_a_script(tmp_path):
    write_mult(tmp_path / "mosi_data.pkl", "mosi")
    out = tmp_path / "out"
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "recipes", "mosi.py"),
            "--data-dir",
            str(tmp_path),
            "--smoke",
            "--methods",
            "unimodal",
            "--batch-size",
            "16",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| subset | unimodal |" in result.stdout
    assert "train/audio: 6 non-finite values" in result.stdout
    # TensorFlow's C++ start-up lines stay out (it loads on every backend,
    # as the data pipeline's engine).
    assert not [
        line for line in tensorflow_startup_lines() if line in result.stderr
    ], result.stderr
    results = check_results(
        out,
        ["text", "audio", "vision", "text+audio+vision"],
        ["mae", "corr", "f1_weighted", "acc2", "acc7"],
        ["unimodal"],
    )
    assert results["task"] == "regression"


@once
def test_a_smoke_run_of_a_101_class_dataset_runs_end_to_end(tmp_path, capsys):
    """Food-101's shape: 101 classes, 5 % labels. A smoke run keeps the
    three most frequent classes, labels each, and says so."""
    import numpy as np

    from keras_robult import tasks
    from keras_robult.cli import recipe as recipe_module

    rng = np.random.default_rng(0)

    def split(count):
        y = np.arange(count) % 101
        x = {
            "image": (y[:, None] + rng.normal(size=(count, 8))).astype(
                "float32"
            ),
            "text": (y[:, None] + rng.normal(size=(count, 4))).astype(
                "float32"
            ),
        }
        return x, y

    sizes = (2020, 303, 505)
    # Classes 7, 8 and 9 have one extra sample in the training split.
    train_x, train_y = split(sizes[0] + 3)
    train_y[-3:] = [7, 8, 9]
    names = [f"dish_{i}" for i in range(101)]
    code = recipe_module.main(
        "toy food",
        lambda args: [(train_x, train_y), split(sizes[1]), split(sizes[2])],
        lambda: tasks.Classification(101, class_names=names),
        "food",
        ("accuracy",),
        argv=["--data-dir", str(tmp_path), "--smoke", "--methods", "robult"]
        + ["--batch-size", "16", "--out", str(tmp_path / "out")],
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        "smoke run: 3 of 101 classes (dish_7, dish_8, dish_9), 63/9/15 "
        "train/valid/test samples, labeled fraction 0.05, 1 epoch, seed 0"
    ) in out
    with open(tmp_path / "out" / "labeled_indices.json") as handle:
        split0 = json.load(handle)["seed_0"]
    # The smoke run's training rows come first in its data.
    kept = train_y[np.isin(train_y, [7, 8, 9])]
    assert len(kept) == 63
    assert sorted(kept[split0["labeled"]].tolist()) == [7, 8, 9]
