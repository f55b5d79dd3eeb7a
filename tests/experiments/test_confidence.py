"""The protocol's calibration: the held-out calibration split, the
calibrated measures per subset, the reliability curves, the saved models'
calibration and the command's options."""

import json
import os

import keras
import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.calibration import (
    PresenceCalibration,
    expected_calibration_error,
    interval_coverage,
    pattern_ids,
)
from keras_robult.data import evaluation_subsets, subset_mask
from keras_robult.experiments import (
    evaluate_model,
    registry,
    run_protocol,
    validate_results,
    write_results,
)
from tests.cli.test_command import run_cli, toy_npz
from tests.conftest import make_multimodal, once


class Overconfident:
    """A protocol method without training whose confidence does not
    depend on how many modalities it sees: `softmax(4 * mean of the
    present modalities' first three features)`."""

    def __init__(self, task, input_shapes, statistics):
        pass

    def fit(self, x, y, epochs, batch_size, seed=0, **kwargs):
        return self

    def predict(self, x):
        mask = x["modality_mask"]
        parts = [x[f"m{i}"][:, :3] * mask[:, i : i + 1] for i in range(3)]
        mean = sum(parts) / np.maximum(mask.sum(1, keepdims=True), 1)
        z = 4.0 * mean
        z = np.exp(z - z.max(1, keepdims=True))
        return (z / z.sum(1, keepdims=True)).astype("float32")


def subset_rows(x, subset, modalities):
    mask = subset_mask(len(x["modality_mask"]), modalities, subset)
    return {**x, "modality_mask": mask}


def test_calibration_rows_are_labeled_rows_kept_out_of_training(tmp_path):
    x, y = make_multimodal(num_samples=300, noise=2.0)
    fitted = []

    class Recording(Overconfident):
        def fit(self, x, y, epochs, batch_size, seed=0, **kwargs):
            fitted.append(len(y["label"]))
            return self

    results, splits = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        {"sharp": Recording},
        seeds=(0,),
        labeled_fraction=0.5,
        verbose=0,
        calibration_fraction=0.2,
    )
    validate_results(results)
    split = splits[0]
    calibration = np.asarray(split["calibration"])
    # 20% of the 105 labeled training rows (of 210), stratified.
    assert len(calibration) == 21
    assert np.bincount(y["label"][calibration], minlength=3).min() >= 6
    for part in ("train", "test", "labeled"):
        assert not set(calibration) & set(split[part])
    assert fitted == [len(split["train"])] == [210 - 21]
    assert len(split["labeled"]) == 105 - 21
    assert results["calibration"] == {"fraction": 0.2, "coverage": 0.9}

    # The calibrated ECE of each subset: the method's predictions on the
    # calibration rows under every subset give the temperatures, applied
    # to its test predictions (computed here again, step by step).
    modalities = ["m0", "m1", "m2"]
    method = Overconfident(None, None, None)
    xs = {k: v[calibration] for k, v in x.items()}
    predictions, labels, masks, rows = [], [], [], []
    for subset in evaluation_subsets(modalities):
        shown = subset_rows(xs, subset, modalities)
        predictions.append(method.predict(shown))
        labels.append(y["label"][calibration])
        masks.append(shown["modality_mask"])
        rows.append(calibration)  # each row under each subset
    table = PresenceCalibration.fit_temperatures(
        np.concatenate(predictions),
        np.concatenate(labels),
        pattern_ids(np.concatenate(masks)),
        modalities,
        rows=np.concatenate(rows),
    )
    test = np.asarray(split["test"])
    xt = {k: v[test] for k, v in x.items()}
    reported = {
        "+".join(r["subset"]): r["mean"]
        for r in results["results"]
        if r["metric"] in ("calibrated_ece",)
    }
    raw = {
        "+".join(r["subset"]): r["mean"]
        for r in results["results"]
        if r["metric"] == "ece"
    }
    for subset in evaluation_subsets(modalities):
        shown = subset_rows(xt, subset, modalities)
        p = method.predict(shown)
        calibrated = table.apply_numpy(p, shown["modality_mask"])["prediction"]
        key = "+".join(subset)
        assert reported[key] == pytest.approx(
            expected_calibration_error(calibrated, y["label"][test]), abs=1e-9
        )
        assert raw[key] == pytest.approx(
            expected_calibration_error(p, y["label"][test]), abs=1e-9
        )
    # A confidence that ignores the modalities lost: the calibration
    # lowers the ECE of the single modalities, where it is worst.
    singles = [raw[m] for m in modalities]
    assert np.mean([reported[m] for m in modalities]) < 0.6 * np.mean(singles)

    # One reliability curve per number of present modalities, both kinds.
    entries = results["reliability"]
    assert sorted((e["calibrated"], e["present"]) for e in entries) == [
        (c, n) for c in (False, True) for n in (1, 2, 3)
    ]
    assert all(len(e["confidence"]) == 15 for e in entries)
    paths = write_results(results, splits, str(tmp_path))
    assert os.path.getsize(paths["reliability"]) > 0


def test_a_calibrated_regression_model_is_saved_with_its_intervals(tmp_path):
    x, y = make_multimodal(num_samples=160, labeled_fraction=0.6)
    values = y["label"].astype("float32") + np.random.default_rng(1).normal(
        size=160
    ).astype("float32")
    task = tasks.Regression.from_targets(values)
    results, splits = run_protocol(
        x,
        values,
        task,
        registry.method_factories(["unimodal"], latent_dim=8),
        seeds=(0,),
        labeled_fraction=0.6,
        epochs=1,
        batch_size=32,
        verbose=0,
        calibration_fraction=0.25,
        coverage=0.8,
        save_models=lambda name, seed: str(tmp_path / f"{name}.keras"),
    )
    import keras_robult  # noqa: F401 (registers the model classes)

    model = keras.saving.load_model(str(tmp_path / "unimodal.keras"))
    assert model.calibration.kind == "conformal"
    assert model.calibration.coverage == 0.8
    assert "reliability" not in results
    test = np.asarray(splits[0]["test"])
    reported = {
        ("+".join(r["subset"]), r["metric"]): r["mean"]
        for r in results["results"]
    }
    modalities = ["m0", "m1", "m2"]
    for subset in evaluation_subsets(modalities):
        shown = subset_rows(
            {k: v[test] for k, v in x.items()}, subset, modalities
        )
        out = model.predict(shown, verbose=0)
        coverage, width = interval_coverage(
            out["prediction_interval"], values[test]
        )
        key = "+".join(subset)
        assert reported[(key, "coverage")] == pytest.approx(coverage, abs=1e-6)
        assert reported[(key, "interval_width")] == pytest.approx(
            width, rel=1e-5
        )
        assert (key, "calibrated_ece") not in reported
    # The saved model evaluated alone (`robult evaluate`) reports the
    # run's intervals.
    record = evaluate_model(
        model, {k: v[test] for k, v in x.items()}, values[test]
    )
    assert "reliability" not in record
    for subset in evaluation_subsets(modalities):
        name = "all" if len(subset) == 3 else "+".join(subset)
        for metric in ("coverage", "interval_width", "mae"):
            assert record["subsets"][name][metric] == pytest.approx(
                reported[("+".join(subset), metric)], rel=1e-5
            )


def test_a_calibration_split_that_takes_every_label_is_named():
    x, y = make_multimodal(num_samples=60)
    with pytest.raises(ValueError) as raised:
        run_protocol(
            x,
            y["label"],
            tasks.Classification(3),
            {"sharp": Overconfident},
            seeds=(0,),
            labeled_fraction=0.08,  # 3 labeled training samples, 1 a class
            verbose=0,
            calibration_fraction=0.2,
        )
    message = str(raised.value)
    # One of the three is held out: a class is left without a label.
    assert "holding out 1 of the 3 labeled training samples" in message
    assert "Or lower `calibration_fraction`" in message


def test_multilabel_runs_are_not_calibrated():
    x, _ = make_multimodal(num_samples=40)
    labels = np.random.default_rng(0).integers(0, 2, (40, 2))
    with pytest.raises(ValueError, match="`calibration_fraction` calibrates"):
        run_protocol(
            x,
            labels,
            tasks.MultiLabel(2),
            {"sharp": Overconfident},
            seeds=(0,),
            verbose=0,
            calibration_fraction=0.2,
        )


@once
def test_the_command_s_calibration_options(tmp_path, capsys, monkeypatch):
    data = toy_npz(tmp_path / "toy.npz", test=np.arange(60) % 3 == 0)
    out = str(tmp_path / "out")
    args = ["train", "--data", data, "--methods", "linear", "unimodal"]
    args += ["--seeds", "0", "--epochs", "2", "--batch-size", "16"]
    args += ["--labeled-fraction", "0.5", "--quiet"]
    code, stdout, err = run_cli(
        [*args, "--calibrate", "--calibration-fraction", "0.3", "--out", out],
        capsys,
        monkeypatch,
    )
    assert code == 0, err[-2000:]
    assert "calibrated_ece on toy" in stdout and "ece on toy" in stdout
    with open(os.path.join(out, "results.json")) as handle:
        results = json.load(handle)
    assert results["calibration"] == {"fraction": 0.3, "coverage": 0.9}
    # `robult evaluate` of a saved calibrated model, on the run's test
    # rows, reports the run's raw and calibrated measures.
    model = os.path.join(out, "models", "unimodal-seed0.keras")
    code, stdout, err = run_cli(
        ["evaluate", "--model", model, "--data", data, "--out", out + "3"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err[-2000:]
    assert "calibrated_ece on toy" in stdout
    with open(os.path.join(out + "3", "results.json")) as handle:
        evaluated = json.load(handle)
    assert evaluated["calibration"] == {"kind": "temperature"}
    assert os.path.exists(os.path.join(out + "3", "reliability.png"))

    def unimodal(entries):
        return {
            ("+".join(r["subset"]), r["metric"]): r["mean"]
            for r in entries["results"]
            if r["method"] == "unimodal"
        }

    trained, again = unimodal(results), unimodal(evaluated)
    assert {m for _, m in trained} >= {"accuracy", "ece", "calibrated_ece"}
    assert again.keys() == trained.keys()
    for key, value in trained.items():
        assert again[key] == pytest.approx(value, abs=1e-5), key
    with open(os.path.join(out, "run_config.json")) as handle:
        assert json.load(handle)["calibration"]["fraction"] == 0.3
    assert os.path.exists(os.path.join(out, "reliability.png"))
    code, _, err = run_cli(
        [*args, "--calibrate", "--coverage", "1.5", "--out", out + "2"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "--coverage must be in (0, 1)" in err
