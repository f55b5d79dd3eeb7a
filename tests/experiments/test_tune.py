import json

import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.data.splits import train_test_split
from keras_robult.experiments.comparison import ComparisonData
from keras_robult.experiments.metrics import higher_is_better
from keras_robult.experiments.tune import (
    SEARCH_SPACE,
    Search,
    TuneConfig,
    method_values,
    search_space,
    tune,
    tuning_splits,
)
from keras_robult.experiments.tune import search as search_module
from keras_robult.experiments.tune.search import score_results
from tests.conftest import once

# The search itself (KerasTuner's bookkeeping, resuming, Hyperband's budgets)
# does not depend on the backend: one search runs on every backend, the rest
# once (a trial compiles a new model: tens of seconds under XLA).
# Small ranges, so that a trial is seconds and every value can be checked.
SPACE = {
    "temperature": {"min": 0.2, "max": 0.8},
    "learning_rate": {"min": 1e-3, "max": 1e-2, "log": True},
    "latent_dim": [8, 16],
    "epochs": {"min": 1, "max": 2},
    "loss_weights.rec": {"min": 0.5, "max": 2.0},
    "rbf_bandwidth": None,  # the method's default
    "dropout": 0.1,  # fixed
}


def toy_data(test_nan=True, samples=72):
    """Two modalities coding three classes; a given test split whose
    features are NaN, so that a search reading one test row fails."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), samples // 3)
    x = {
        "a": (y[:, None] + rng.normal(size=(samples, 4))).astype("float32"),
        "b": (y[:, None] + rng.normal(size=(samples, 3))).astype("float32"),
    }
    test = np.zeros(samples, bool)
    test[::4] = True
    if test_nan:
        for m in x:
            x[m][test] = np.nan
    return ComparisonData(x, y, tasks.Classification(3), "toy", test_mask=test)


def config(out, **changes):
    options = dict(
        max_trials=2,
        epochs=1,
        batch_size=32,
        latent_dim=8,
        labeled_fraction=0.3,
        space=SPACE,
        out=str(out),
        verbose=0,
    )
    options.update(changes)
    return TuneConfig(**options)


class Counting:
    """`run_protocol` that counts its trainings (and can be interrupted
    in one, as a kill would)."""

    def __init__(self, monkeypatch, interrupt_at=None):
        self.calls = 0
        self.interrupt_at = interrupt_at
        real = search_module.run_protocol

        def counted(*args, **kwargs):
            self.calls += 1
            if self.calls == self.interrupt_at:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(search_module, "run_protocol", counted)


def inside(value, entry):
    if "fixed" in entry:
        return value == entry["fixed"]
    if "choices" in entry:
        return value in entry["choices"]
    return entry["min"] <= value <= entry["max"]


@once  # the tuner's bookkeeping; each trial is a protocol run
def test_a_search_writes_values_in_range_and_never_reads_test_rows(
    tmp_path, monkeypatch
):
    data = toy_data()  # NaN test features: a trial given one would fail
    counter = Counting(monkeypatch)
    best, out = tune(config(tmp_path / "s"), data)
    assert counter.calls == 3  # the defaults and two trials
    saved = json.loads((tmp_path / "s" / "best_hparams.json").read_text())
    assert saved == best and saved["method"] == "robult"
    values = saved["hparams"]
    space = search_space(config(tmp_path))
    flat = {k: v for k, v in values.items() if k != "loss_weights"}
    flat.update(
        {f"loss_weights.{t}": w for t, w in values["loss_weights"].items()}
    )
    if saved["source"] != "the defaults":
        for name, entry in space.items():
            assert inside(flat[name], entry), (name, flat[name])
        assert "rbf_bandwidth" not in values  # left out: the default
    trials = json.loads((tmp_path / "s" / "trials.json").read_text())
    completed = [t for t in trials["trials"] if t["status"] == "COMPLETED"]
    assert len(completed) == 2
    for trial in completed:
        assert trial["hparams"]["dropout"] == 0.1
        assert 0 <= trial["score"] <= 1
        assert trial["per_seed"] == [trial["score"]]
    scores = [t["score"] for t in completed] + [trials["defaults"]["score"]]
    assert saved["validation_score"] == max(scores)
    # The rows each seed showed its trials: fitting and validation only.
    splits = json.loads((tmp_path / "s" / "tuning_splits.json").read_text())
    test = np.flatnonzero(data.test_mask)
    assert splits["0"]["test"] == test.tolist()
    fit, validation = set(splits["0"]["fit"]), set(splits["0"]["validation"])
    assert not fit & validation
    assert fit | validation == set(range(len(data.y))) - set(test.tolist())


@once
def test_the_validation_rows_are_stratified_and_keep_the_label_budget():
    data = toy_data(test_nan=False, samples=300)
    data.test_mask = None  # the protocol's 70/30 split of each seed
    cfg = TuneConfig(seeds=(0, 1), labeled_fraction=0.1, space=SPACE)
    splits = tuning_splits(data, cfg)
    for seed, split in splits.items():
        _, test = train_test_split(data.y, 0.3, seed=seed, task=data.task)
        assert split["test"].tolist() == test.tolist()
        assert not set(split["fit"]) & set(test)
        assert not set(split["validation"]) & set(test)
        counts = np.bincount(data.y[split["validation"]], minlength=3)
        assert counts.max() - counts.min() <= 1  # stratified
        train = len(split["fit"]) + len(split["validation"])
        labels = split["labeled_fraction"] * len(split["fit"])
        assert labels == pytest.approx(0.1 * train)  # the comparison's
    assert splits[0]["test"].tolist() != splits[1]["test"].tolist()


@once
def test_a_killed_search_resumes_without_repeating_finished_trials(
    tmp_path, monkeypatch
):
    data = toy_data()
    # The defaults, trial 0, then killed inside trial 1.
    counter = Counting(monkeypatch, interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        tune(config(tmp_path / "s"), data)
    first = json.loads(
        (tmp_path / "s" / "tuner" / "trial_0" / "trial.json").read_text()
    )
    assert first["status"] == "COMPLETED"
    counter = Counting(monkeypatch)
    best, _ = tune(config(tmp_path / "s", max_trials=3), data)
    # Trial 1 again (it was killed) and trial 2: no defaults, no trial 0.
    assert counter.calls == 2
    trials = json.loads((tmp_path / "s" / "trials.json").read_text())
    assert [t["trial"] for t in trials["trials"]] == ["0", "1", "2"]
    assert trials["trials"][0]["hparams"] == (
        method_values(first["hyperparameters"]["values"])
    )
    assert best["trials"] == 3
    # Other settings in the same folder are refused, naming them.
    with pytest.raises(ValueError, match=r"other settings \(\['batch_size'\]"):
        tune(config(tmp_path / "s", batch_size=16), data)


@once
def test_hyperband_budgets_are_its_epochs(tmp_path, monkeypatch):
    space = {k: v for k, v in SPACE.items() if k != "epochs"}
    counter = Counting(monkeypatch)
    best, _ = tune(
        config(
            tmp_path / "h", tuner="hyperband", epochs=3, space=space,
            max_trials=3,
        ),
        toy_data(),
    )  # fmt: skip
    assert counter.calls == 4
    trials = json.loads((tmp_path / "h" / "trials.json").read_text())
    epochs = [t["hparams"]["epochs"] for t in trials["trials"]]
    assert set(epochs) <= {1, 3} and len(epochs) == 3
    assert 1 <= best["hparams"]["epochs"] <= 3


@once
@pytest.mark.parametrize(
    "space, message",
    [
        ({"temprature": {"min": 0.1, "max": 1}}, "unknown option"),
        ({"temperature": {"min": 0, "max": 1, "log": True}}, "must be a num"),
        ({"dropout": {"min": 0.5, "max": 0.2}}, "needs min < max"),
        ({"dropout": [0.1, 1.5]}, "dropout must be a number >= 0 and < 1"),
        ({"latent_dim": [8.5]}, "latent_dim takes integers"),
        ({"epochs": {"min": 1}}, "epochs must be"),
        ({"loss_weights.ulb": {"min": -1, "max": 1}}, r"\['ulb'\] must be"),
    ],
)
def test_a_bad_space_names_the_problem(space, message):
    with pytest.raises(ValueError, match=message):
        TuneConfig(space=space)


@once
def test_the_default_space_holds_the_defaults_and_skips_terms_switched_off():
    space = search_space(TuneConfig())
    assert set(space) == set(SEARCH_SPACE)
    assert space["temperature"]["default"] == 1.0
    assert space["rbf_bandwidth"]["default"] == 0.3
    assert space["latent_dim"]["default"] == 128
    assert space["epochs"]["default"] == 150
    ablation = search_space(TuneConfig(method="robult-no-sup"))
    assert "loss_weights.sup" not in ablation
    assert "epochs" not in search_space(TuneConfig(tuner="hyperband"))
    with pytest.raises(ValueError, match="not .*Robult variant|Robult var"):
        TuneConfig(method="gmc")


@once
def test_the_objectives_and_their_directions():
    results = {
        "dataset": "toy",
        "task": "regression",
        "labeled_fraction": 0.05,
        "seeds": [0],
        "modalities": ["a", "b"],
        "results": [
            {
                "method": "robult",
                "subset": subset,
                "metric": "mae",
                "mean": mean,
                "std": 0.0,
                "per_seed": [mean],
            }
            for subset, mean in ((["a"], 0.5), (["b"], 0.7), (["a", "b"], 0.3))
        ],
        "missing_rate_curves": [
            {
                "method": "robult",
                "metric": "mae",
                "rates": [0.0],
                "mean": [0.3],
                "auc": 0.42,
            }
        ],
    }
    score = score_results
    assert score(results, "single-mean", "mae") == pytest.approx(0.5)
    assert score(results, "all", "mae") == pytest.approx(0.3)
    assert score(results, "auc", "mae") == pytest.approx(0.42)
    assert not higher_is_better("mae")
    assert higher_is_better("corr")
    assert higher_is_better("auroc")
    failure = {"method": "robult", "seed": 0, "epoch": 1, "message": "NaN"}
    assert score({**results, "failures": [failure]}, "all", "mae") is None


@once
def test_a_search_uses_the_datas_own_validation_split(tmp_path):
    data = toy_data()
    validation = np.zeros(len(data.y), bool)
    validation[1::4] = True
    data.validation_mask = validation
    search = Search(config(tmp_path), data)
    split = search.splits[0]
    assert split["validation"].tolist() == np.flatnonzero(validation).tolist()
    score, per_seed = search.evaluate(
        {"temperature": 0.5, "latent_dim": 8, "epochs": 1}
    )
    assert 0 <= score <= 1 and per_seed == [score]
    assert search.rows_seen[0] == set(split["fit"]) | set(split["validation"])
