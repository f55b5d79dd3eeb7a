"""The missing-type protocol, robustness and cost reports of
`run_protocol`."""

import json

import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.data import MissingSpec, random_mask
from keras_robult.experiments import (
    MISSING_RATES,
    cost_table,
    effective_robustness,
    missing_type_table,
    registry,
    relative_robustness,
    run_protocol,
    validate_results,
    write_results,
)
from tests.conftest import make_multimodal
from tests.experiments.test_protocol import (
    MODALITIES,
    RecordsTraining,
    expected_accuracy,
    known_data,
    oracle_if_present,
)


class Oracle:
    """Right wherever modality `key` is present, class 0 elsewhere, whatever
    the seed; `key` is the class attribute of a subclass."""

    key = 0

    def __init__(self, task, input_shapes, statistics):
        self.predict = oracle_if_present(self.key)

    def fit(self, x, y, epochs, batch_size, seed=0, **kwargs):
        return self


class OracleOfM1(Oracle):
    key = 1


def test_relative_and_effective_robustness_by_hand():
    rates, curve = [0, 0.5, 1.0], [1.0, 0.8, 0.4]
    # (0.5 (1 + 0.8) / 2 + 0.5 (0.8 + 0.4) / 2) / 1
    assert relative_robustness(rates, curve) == pytest.approx(0.75)
    # Reference aligned on the clean point: [1.0, 0.9, 0.6]; the
    # difference [0, -0.1, -0.2] has area (0.5 (-0.1) + 0.5 (-0.3)) / 2.
    assert effective_robustness(rates, curve, [0.9, 0.8, 0.5]) == (
        pytest.approx(-0.1)
    )
    assert effective_robustness(rates, curve, curve) == 0.0
    # An error metric (MAE): a method whose error grows less than the
    # reference's as modalities go missing is positive, as a score's is.
    errors, reference = [0.5, 0.6, 0.8], [0.7, 0.9, 1.3]
    # Aligned reference [0.5, 0.7, 1.1]; difference [0, -0.1, -0.3].
    assert effective_robustness(
        rates, errors, reference, higher_is_better=False
    ) == pytest.approx(0.125)
    assert effective_robustness(
        rates, reference, errors, higher_is_better=False
    ) == pytest.approx(-0.125)
    with pytest.raises(ValueError, match="reference curve"):
        effective_robustness(rates, curve, [1.0, 0.5])
    with pytest.raises(ValueError, match="one value per rate"):
        relative_robustness([0.0], [1.0])


def test_effective_robustness_of_a_regression_is_positive_when_better():
    from keras_robult.experiments.protocol import (
        RunInfo,
        Tally,
        summarise_results,
    )

    rates = np.asarray(MISSING_RATES)
    # robult's MAE grows by 0.1 per unit of missing rate, the reference's
    # by 0.8: robult keeps more of its clean performance.
    curves = {"robult": [0.5 + 0.1 * rates], "unimodal": [0.7 + 0.8 * rates]}
    tally = Tally("mae", verbose=0)
    tally.curves = curves
    info = RunInfo("toy", tasks.Regression(), "mae", 0.05, (0,), ("a", "b"))
    results = summarise_results(info, tally)
    entry = {r["method"]: r for r in results["robustness"]}
    # robult - aligned reference = -0.7 r, whose mean over [0, 0.9] is
    # -0.7 x 0.45; an error metric flips the sign.
    assert entry["robult"]["effective"] == pytest.approx(0.315)
    assert entry["unimodal"]["effective"] == pytest.approx(0.0)


def test_train_missing_gives_every_method_the_spec_s_exact_saved_gaps():
    x, y = make_multimodal(num_samples=300, num_classes=3)
    RecordsTraining.seen = []
    results, splits = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        {"a": RecordsTraining, "b": RecordsTraining},
        seeds=(0, 1),
        labeled_fraction=0.1,
        verbose=0,
        train_missing="m1:0.4",
    )
    validate_results(results)
    assert results["train_missing"] == "m1:0.4"
    (s0, a0), (_, b0), (s1, a1), (_, b1) = RecordsTraining.seen
    np.testing.assert_array_equal(a0, b0)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a0, a1)  # drawn per seed
    for seed, mask in ((0, a0), (1, a1)):
        saved = np.asarray(splits[seed]["train_modality_mask"])
        np.testing.assert_array_equal(saved, mask)
        train = len(splits[seed]["train"])  # 210
        assert (1 - mask).sum(0).tolist() == [0, int(train * 0.4), 0]
    with pytest.raises(ValueError, match="not both"):
        run_protocol(
            x,
            y["label"],
            tasks.Classification(3),
            {"a": RecordsTraining},
            train_missing="m1:0.4",
            train_missing_rate=0.2,
            verbose=0,
        )


def test_test_specs_are_reported_with_the_metrics_of_their_saved_draw(
    tmp_path,
):
    x, labels = known_data(80)
    test = np.arange(80) % 2 == 0
    specs = ["m0:0.5", "all:0.9"]
    results, splits = run_protocol(
        x,
        labels,
        tasks.Classification(4),
        {"unimodal": OracleOfM1, "known": Oracle},
        seeds=(0, 1),
        labeled_fraction=0.5,
        test_mask=test,
        verbose=0,
        test_missing=specs,
    )
    validate_results(results)
    cells = {
        (e["method"], e["test"]): e
        for e in results["missing_type"]
        if e["metric"] == "accuracy"
    }
    assert {e["train"] for e in results["missing_type"]} == {"none"}
    for seed in (0, 1):
        saved = splits[seed]["test_modality_masks"]
        assert list(saved) == specs
        for spec in specs:
            mask = np.asarray(saved[spec])
            np.testing.assert_array_equal(
                mask,
                MissingSpec.parse(spec).apply(
                    np.ones((40, 3)), MODALITIES, seed=[seed, 3]
                ),
            )
            for method, key in (("known", 0), ("unimodal", 1)):
                assert cells[(method, spec)]["per_seed"][seed] == (
                    expected_accuracy(mask, labels[test], key)
                )
    # m0:0.5: 20 of the 40 test rows lose m0; the m0 oracle is right on
    # the others and, among those 20, on label 0.
    lost = 1 - np.asarray(splits[0]["test_modality_masks"]["m0:0.5"])[:, 0]
    assert lost.sum() == 20
    right = (40 - 20 + np.sum((labels[test] == 0) & (lost > 0))) / 40
    assert cells[("known", "m0:0.5")]["per_seed"][0] == right
    # Robustness of the known curves, by hand.
    curves = {}
    for method, key in (("known", 0), ("unimodal", 1)):
        per_seed = [
            [
                expected_accuracy(
                    random_mask(40, 3, rate, seed=seed * 100 + index),
                    labels[test],
                    key,
                )
                for index, rate in enumerate(MISSING_RATES)
            ]
            for seed in (0, 1)
        ]
        curves[method] = np.mean(per_seed, axis=0)
    steps = np.diff(MISSING_RATES)
    robustness = {r["method"]: r for r in results["robustness"]}
    for method, curve in curves.items():
        area = np.sum((curve[1:] + curve[:-1]) * steps / 2) / 0.9
        assert robustness[method]["relative"] == pytest.approx(area)
    gap = curves["known"] - (
        curves["unimodal"] + curves["known"][0] - curves["unimodal"][0]
    )
    expected = np.sum((gap[1:] + gap[:-1]) * steps / 2) / 0.9
    assert robustness["known"]["effective"] == pytest.approx(expected)
    assert robustness["unimodal"]["effective"] == 0.0
    assert robustness["known"]["reference"] == "unimodal"
    table = missing_type_table(results, "accuracy")
    entry = cells[("unimodal", "m0:0.5")]
    assert (
        f"| none | m0:0.5 | {entry['mean']:.3f} ± {entry['std']:.3f} |" in table
    )
    paths = write_results(results, splits, str(tmp_path))
    assert table in open(paths["markdown"]).read()
    with open(paths["splits"]) as handle:
        saved = json.load(handle)["seed_1"]["test_modality_masks"]
    assert saved == splits[1]["test_modality_masks"]


def test_a_bad_spec_fails_before_any_training():
    x, y = make_multimodal(num_samples=60)
    RecordsTraining.seen = []
    for spec, message in (
        ("m9:0.5", "unknown modality 'm9'"),
        ("m0:1.2", r"rate must be in \[0, 1\]"),
    ):
        with pytest.raises(ValueError, match=message):
            run_protocol(
                x,
                y["label"],
                tasks.Classification(3),
                {"a": RecordsTraining},
                verbose=0,
                test_missing=[spec],
            )
    assert RecordsTraining.seen == []


def test_the_cost_report_is_measured():
    x, y = make_multimodal(num_samples=120, num_classes=3)
    factories = registry.method_factories(["unimodal"], latent_dim=8)
    results, _ = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        factories,
        seeds=(0,),
        labeled_fraction=0.2,
        epochs=2,
        batch_size=32,
        verbose=0,
    )
    (cost,) = results["cost"]
    assert cost["method"] == "unimodal" and cost["seeds"] == 1
    assert cost["epochs"] >= 2
    for field in (
        "parameters",
        "train_seconds",
        "train_seconds_per_epoch",
        "peak_host_mib",
        "predict_seconds_per_1000",
    ):
        assert cost[field] > 0, field
    # The process's resident memory: beyond Python's own, well below the
    # machine's.
    assert 50 < cost["peak_host_mib"] < 64 * 1024
    assert cost.get("peak_device_mib", 1) > 0  # on a GPU only
    assert "| unimodal |" in cost_table(results)
