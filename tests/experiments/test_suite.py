"""The dataset suite: its datasets, its verdicts against the references,
and `benchmarks/suite.py --quick` end to end."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_robult.datasets import suite as datasets
from keras_robult.experiments.suite import (
    dataset_summary,
    robult_against_references,
)
from tests.conftest import once

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.mark.parametrize("name", list(datasets.DATASETS))
def test_every_dataset_loads_as_the_protocol_takes_it(name):
    spec = datasets.DATASETS[name]
    x, y = spec.load()
    assert len(x) >= 2 and len({len(v) for v in x.values()}) == 1
    assert len(y) == len(next(iter(x.values())))
    assert all(np.isfinite(v).all() for v in x.values())
    if spec.task == "classification":
        assert np.array_equal(np.unique(y), np.arange(y.max() + 1))
    else:
        assert y.dtype.kind == "f" and np.isfinite(y).all()


def test_the_additive_target_is_what_its_docstring_says():
    x, y = datasets.additive_regression()
    residual = y - (40 * (3 * x["a"][:, 0] + 2 * x["b"][:, 1]) + 700)
    assert abs(residual.std() - 40 * 0.3) < 1.5


def test_no_linear_model_fits_the_nonlinear_target():
    from sklearn.linear_model import RidgeCV

    x, y = datasets.nonlinear_regression()
    features = np.concatenate([x["left"], x["right"]], axis=1)
    assert RidgeCV().fit(features, y).score(features, y) < 1 / 3


def test_the_verdict_is_within_one_standard_deviation_of_the_better_one():
    def cell(mean, std):
        return {"mean": mean, "std": std, "per_seed": [mean]}

    cells = {
        "robult": {"a": cell(0.80, 0.02), "all": cell(0.90, 0.01)},
        "linear": {"a": cell(0.81, 0.01), "all": cell(0.95, 0.01)},
        "mlp": {"a": cell(0.70, 0.05), "all": cell(0.92, 0.03)},
    }
    verdicts = robult_against_references(cells, higher=True)
    assert verdicts["a"]["at_least_as_good"] and not verdicts["a"]["ahead"]
    assert not verdicts["all"]["at_least_as_good"]
    # An error metric: lower is better, and mlp the better reference.
    errors = robult_against_references(cells, higher=False)
    assert errors["a"]["reference"] == 0.70
    assert not errors["a"]["at_least_as_good"]
    assert errors["all"]["ahead"] and errors["all"]["reference"] == 0.92


def test_a_summary_has_the_single_modality_mean_per_seed():
    rows = (
        ("robult", ["a"], [1.0, 2.0]),
        ("robult", ["b"], [3.0, 6.0]),
        ("robult", ["a", "b"], [0.5, 0.5]),
        ("linear", ["a"], [1.0, 1.0]),
        ("linear", ["b"], [1.0, 1.0]),
    )
    results = {
        "dataset": "toy",
        "task": "regression",
        "labeled_fraction": 0.05,
        "seeds": [0, 1],
        "modalities": ["a", "b"],
        "missing_rate_curves": [],
        "results": [
            {
                "method": method,
                "subset": subset,
                "metric": "mae",
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "per_seed": values,
            }
            for method, subset, values in rows
        ],
    }
    summary = dataset_summary(results)
    single = summary["cells"]["robult"]["single"]
    assert single["per_seed"] == [2.0, 4.0] and single["std"] == 1.0
    assert summary["robult_vs_references"]["single"]["reference"] == 1.0


@once
def test_the_quick_suite_runs_end_to_end(tmp_path):
    out = tmp_path / "suite"
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    result = subprocess.run(
        [sys.executable, "benchmarks/suite.py", "--quick", "--epochs", "1"]
        + ["--datasets", "additive-regression", "complementary-classification"]
        + ["--methods", "robult", "linear", "mlp", "--quiet"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "suite.json") as handle:
        summary = json.load(handle)["datasets"]
    assert set(summary) == {
        "additive-regression",
        "complementary-classification",
    }
    regression = summary["additive-regression"]
    assert set(regression["cells"]) == {"robult", "linear", "mlp"}
    assert regression["median_mae"]["mean"] > 0
    assert set(regression["robult_vs_references"]) == {
        "a",
        "b",
        "all",
        "single",
    }
    text = (out / "suite.md").read_text()
    assert "## additive-regression: mae (regression)" in text
    assert "| predicting the labeled median |" in text
    assert "**All datasets**" in result.stdout
