import copy
import glob
import json
import os

import pytest

from keras_robult import tasks
from keras_robult.experiments import Results, run_protocol
from keras_robult.experiments.results_schema import (
    Failure,
    MissingRateCurve,
    SubsetSummary,
)
from keras_robult.utils.atomic import write_json
from tests.conftest import make_multimodal, once
from tests.experiments.test_protocol import ClassZero

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
PUBLISHED = sorted(glob.glob(os.path.join(ROOT, "docs/results/*/results.json")))


def small_results():
    """A hand-written results dict of two methods on two modalities."""
    return {
        "dataset": "toy",
        "task": "classification",
        "labeled_fraction": 0.1,
        "seeds": [0, 1],
        "modalities": ["a", "b"],
        "results": [
            {
                "method": method,
                "subset": subset,
                "metric": "accuracy",
                "mean": mean,
                "std": 0.0,
                "per_seed": [mean, mean],
            }
            for method, offset in (("one", 0.0), ("two", 0.1))
            for subset, mean in (
                (["a"], 0.5 + offset),
                (["b"], 0.6 + offset),
                (["a", "b"], 0.7 + offset),
            )
        ],
        "missing_rate_curves": [
            {
                "method": "one",
                "metric": "accuracy",
                "rates": [0.0, 0.5],
                "mean": [0.7, 0.6],
                "auc": 0.65,
            }
        ],
        "robustness": [],
        "calibration": {"fraction": 0.2, "coverage": 0.9},
    }


@once
@pytest.mark.parametrize("path", PUBLISHED, ids=os.path.dirname)
def test_a_published_file_reads_and_writes_back_byte_for_byte(path, tmp_path):
    with open(path, "rb") as handle:
        original = handle.read()
    results = Results.load(path)
    assert results.dataset == "mfeat" and results.results
    assert isinstance(results.results[0], SubsetSummary)
    write_json(str(tmp_path / "again.json"), results.to_dict())
    assert (tmp_path / "again.json").read_bytes() == original


@once
def test_a_run_s_results_are_what_the_schema_writes():
    """`run_protocol`'s dict (failures and run records added after the
    summary) reads and writes back unchanged, keys in their order."""
    x, y = make_multimodal(num_samples=60, num_classes=3)
    results, _ = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        {"zero": ClassZero},
        seeds=(0,),
        labeled_fraction=0.2,
        verbose=0,
        train_missing_rate=0.2,
    )
    results["failures"] = [
        {"method": "other", "seed": 0, "epoch": 3, "message": "NaN"}
    ]
    typed = Results.from_dict(results)
    assert typed.failures == [Failure("other", 0, 3, "NaN")]
    assert typed.extra == {"train_missing_rate": 0.2}
    assert json.dumps(typed.to_dict()) == json.dumps(results)
    assert list(results)[:8] == [
        "dataset",
        "task",
        "labeled_fraction",
        "seeds",
        "modalities",
        "results",
        "missing_rate_curves",
        "robustness",
    ]


@once
def test_typed_reads_of_a_known_file():
    results = Results.from_dict(small_results())
    assert results.methods() == ["one", "two"]
    table = results.summaries("accuracy")
    assert list(table) == [
        ("one", "a"),
        ("one", "b"),
        ("one", "all"),
        ("two", "a"),
        ("two", "b"),
        ("two", "all"),
    ]
    assert table[("two", "all")].mean == pytest.approx(0.8)
    assert results.summaries("f1_macro") == {}
    assert results.curves() == {
        "one": MissingRateCurve("one", "accuracy", [0.0, 0.5], [0.7, 0.6], 0.65)
    }
    assert results.curves("mae") == {}
    assert results.extra == {"calibration": {"fraction": 0.2, "coverage": 0.9}}
    assert json.dumps(results.to_dict()) == json.dumps(small_results())


def broken(change):
    results = copy.deepcopy(small_results())
    change(results)
    return results


@once
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.pop("seeds"), r"results\['seeds'\] must be a list"),
        (
            lambda r: r.update(dataset=3),
            r"results\['dataset'\] must be a str",
        ),
        (
            lambda r: r.update(labeled_fraction=None),
            r"results\['labeled_fraction'\] must be a float",
        ),
        (
            lambda r: r["results"][2].pop("std"),
            r"Malformed results entry: \['mean', 'method', 'metric', "
            r"'per_seed', 'subset'\]",
        ),
        (
            lambda r: r["missing_rate_curves"][0]["mean"].pop(),
            "A curve needs one value per rate",
        ),
        (
            lambda r: r.update(failures=[{"method": "one", "seed": 0}]),
            r"Malformed failure entry: \['method', 'seed'\]",
        ),
        (
            lambda r: r.update(robustness=[{"method": "one"}]),
            r"Malformed robustness entry",
        ),
        (lambda r: r.update(cost=[{"seeds": 3}]), "Malformed cost entry"),
    ],
)
def test_a_malformed_file_is_refused_naming_what(change, message):
    with pytest.raises(ValueError, match=message):
        Results.from_dict(broken(change))


@once
def test_an_evaluation_of_a_saved_model_has_no_labeled_fraction():
    results = broken(lambda r: r.update(labeled_fraction=None, model="m.keras"))
    typed = Results.from_dict(results)
    assert typed.labeled_fraction is None and typed.extra["model"] == "m.keras"
    assert json.dumps(typed.to_dict()) == json.dumps(results)


@once
def test_a_grid_merges_the_missing_type_cells_of_its_runs():
    def trained_at(train, mean):
        results = small_results()
        results["missing_type"] = [
            {
                "method": "one",
                "train": train,
                "test": "a:0.5",
                "metric": "accuracy",
                "mean": mean,
                "std": 0.0,
                "per_seed": [mean, mean],
            }
        ]
        results["cost"] = [{"method": "one", "seeds": 2, "epochs": 3.0}]
        results["train_missing"] = train
        return Results.from_dict(results)

    runs = {
        "a:0.3": trained_at("a:0.3", 0.4),
        "b:0.3": trained_at("b:0.3", 0.6),
    }
    merged = Results.merge_grid(runs, grid="literature", grid_runs={})
    as_dict = merged.to_dict()
    assert [e["train"] for e in as_dict["missing_type"]] == ["a:0.3", "b:0.3"]
    assert [c["train"] for c in as_dict["cost"]] == ["a:0.3", "b:0.3"]
    # Each training's subset table and curves stay in its own folder.
    assert as_dict["results"] == as_dict["missing_rate_curves"] == []
    assert "train_missing" not in as_dict
    assert list(as_dict)[-4:] == ["cost", "missing_type", "grid", "grid_runs"]
    assert as_dict["calibration"] == small_results()["calibration"]
    assert Results.from_dict(as_dict).to_dict() == as_dict
