import json

import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.experiments import (
    missing_rate_auc,
    registry,
    run_protocol,
    validate_results,
    write_results,
)
from tests.conftest import make_multimodal


def test_missing_rate_auc_is_the_mean_level():
    assert missing_rate_auc([0, 0.5, 1.0], [1, 1, 1]) == 1.0
    assert missing_rate_auc([0, 1.0], [1.0, 0.0]) == 0.5


def test_run_protocol_schema_files_and_splits(tmp_path):
    x, y = make_multimodal(num_samples=60, num_classes=3)
    methods = registry.method_factories(["robult"], latent_dim=16)
    results, splits = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        methods,
        seeds=(0, 1),
        labeled_fraction=0.1,
        epochs=2,
        batch_size=16,
        dataset="toy",
        verbose=0,
    )
    validate_results(results)
    assert results["seeds"] == [0, 1] and results["modalities"] == [
        "m0",
        "m1",
        "m2",
    ]
    subsets = {tuple(r["subset"]) for r in results["results"]}
    assert len(subsets) == 7  # every non-empty subset of 3 modalities
    entry = next(r for r in results["results"] if r["metric"] == "accuracy")
    assert len(entry["per_seed"]) == 2
    assert np.isclose(entry["mean"], np.mean(entry["per_seed"]))
    curve = results["missing_rate_curves"][0]
    assert curve["rates"][0] == 0.0 and len(curve["mean"]) == 10
    for seed in (0, 1):
        split = splits[seed]
        assert not set(split["train"]) & set(split["test"])
        assert set(split["labeled"]) <= set(split["train"])
        assert len(split["labeled"]) == 4  # 10 % of 42, stratified
    paths = write_results(results, splits, str(tmp_path))
    with open(paths["json"]) as handle:
        assert json.load(handle) == json.loads(json.dumps(results))
    with open(paths["splits"]) as handle:
        assert set(json.load(handle)) == {"seed_0", "seed_1"}
    with open(paths["plot"], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    table = open(paths["markdown"]).read()
    assert "| m0+m1+m2 |" not in table and "| all |" in table


def test_results_survive_a_failing_plot(tmp_path, monkeypatch):
    from keras_robult.experiments import report

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

    def broken(*args):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(report, "plot_missing_rate", broken)
    with pytest.warns(UserWarning, match="matplotlib"):
        paths = report.write_results(results, {0: {}}, str(tmp_path))
    assert "plot" not in paths
    with open(paths["json"]) as handle:
        assert json.load(handle)["results"][0]["mean"] == 0.5
