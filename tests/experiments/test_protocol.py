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


def test_validation_split_stops_early_and_restores_the_best_weights():
    x, y = make_multimodal(num_samples=120, num_classes=3, noise=2.0)
    rows = np.arange(120)
    train, valid = rows < 80, rows >= 80
    method = registry.method_factories(["robult"], latent_dim=16, patience=2)[
        "robult"
    ](
        tasks.Classification(3),
        {m: x[m].shape[1:] for m in ("m0", "m1", "m2")},
        None,
    )
    x_train = {k: v[train] for k, v in x.items()}
    y_train = {k: v[train] for k, v in y.items()}
    x_valid = {k: v[valid] for k, v in x.items()}
    method.fit(
        x_train,
        y_train,
        epochs=60,
        batch_size=16,
        validation=(x_valid, y["label"][valid]),
    )
    history = method.history.history
    assert len(history["val_accuracy"]) < 60  # stopped early
    best = max(history["val_accuracy"])
    restored = method.model.evaluate(
        x_valid, y["label"][valid], batch_size=40, return_dict=True, verbose=0
    )["accuracy"]
    assert restored == pytest.approx(best)


def test_run_protocol_keeps_the_validation_split_out_of_training():
    x, y = make_multimodal(num_samples=60, num_classes=3)
    marks = np.arange(60) % 6
    _, splits = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        registry.method_factories(["unimodal"], latent_dim=8),
        seeds=(0,),
        epochs=1,
        batch_size=16,
        test_mask=marks == 0,
        validation_mask=marks == 1,
        verbose=0,
    )
    split = splits[0]
    assert split["valid"] == np.flatnonzero(marks == 1).tolist()
    assert not set(split["train"]) & (set(split["valid"]) | set(split["test"]))
    with pytest.raises(ValueError, match="needs an explicit test split"):
        run_protocol(
            x,
            y["label"],
            tasks.Classification(3),
            {},
            validation_mask=marks == 1,
        )
