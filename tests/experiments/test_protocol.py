import json

import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.data import random_mask
from keras_robult.experiments import (
    MISSING_RATES,
    EvaluationOptions,
    ProtocolOptions,
    evaluate_predictor,
    missing_rate_auc,
    registry,
    run_protocol,
    validate_results,
    write_results,
)
from tests.conftest import make_multimodal, once


def test_missing_rate_auc_is_the_mean_level():
    assert missing_rate_auc([0, 0.5, 1.0], [1, 1, 1]) == 1.0
    assert missing_rate_auc([0, 1.0], [1.0, 0.0]) == 0.5


class ClassZero:
    """A protocol method that always predicts class 0 (no training)."""

    def __init__(self, task, input_shapes, statistics):
        self.width = task.output_dim

    def fit(self, x, y, epochs, batch_size, seed=0, **kwargs):
        return self

    def predict(self, x):
        rows = len(x["modality_mask"])
        return np.eye(self.width, dtype="float32")[np.zeros(rows, int)]


def test_run_protocol_schema_files_and_splits(tmp_path):
    x, y = make_multimodal(num_samples=60, num_classes=3)
    results, splits = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        {"zero": ClassZero},
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
    # Each seed's own test split: class 0 is right on its share of it.
    share = [np.mean(y["label"][splits[s]["test"]] == 0) for s in (0, 1)]
    for entry in results["results"]:
        if entry["metric"] == "accuracy":
            assert entry["per_seed"] == share
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


def test_an_options_object_and_keywords_run_the_same_protocol():
    """`run_protocol(..., options)` is `run_protocol(..., **its fields)`;
    keywords go over the object; a misspelt one is refused by name."""
    x, y = make_multimodal(num_samples=60, num_classes=3)
    args = (x, y["label"], tasks.Classification(3), {"zero": ClassZero})
    keywords = dict(seeds=(3,), labeled_fraction=0.2, dataset="toy", verbose=0)
    by_keywords = run_protocol(*args, **keywords)
    options = ProtocolOptions(**{**keywords, "seeds": (0,)})
    by_object = run_protocol(*args, options, seeds=(3,))
    for results, _ in (by_object, by_keywords):
        results.pop("cost")  # seconds and memory
    assert json.dumps(by_object) == json.dumps(by_keywords)
    assert by_object[0]["seeds"] == [3] and by_object[0]["dataset"] == "toy"
    assert by_object[0]["labeled_fraction"] == 0.2
    with pytest.raises(TypeError, match="labelled_fraction"):
        run_protocol(*args, labelled_fraction=0.2)


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


@once  # the protocol's use of Keras early stopping, the same everywhere
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
        labeled_fraction=0.1,
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


class RecordsTraining(ClassZero):
    """`ClassZero` that keeps the training data each (seed) fit got."""

    seen = []

    def fit(self, x, y, epochs, batch_size, seed=0, **kwargs):
        RecordsTraining.seen.append((seed, x["modality_mask"].copy()))
        return self


def test_train_missing_rate_gives_every_method_the_same_saved_gaps(tmp_path):
    x, y = make_multimodal(num_samples=300, num_classes=3)
    x["modality_mask"][:30, 1] = 0.0  # gaps of the data itself stay
    RecordsTraining.seen = []
    results, splits = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        {"a": RecordsTraining, "b": RecordsTraining},
        seeds=(0, 1),
        labeled_fraction=0.1,
        verbose=0,
        train_missing_rate=0.5,
    )
    validate_results(results)
    assert results["train_missing_rate"] == 0.5
    (s0, a0), (_, b0), (s1, a1), (_, b1) = RecordsTraining.seen
    assert (s0, s1) == (0, 1)
    np.testing.assert_array_equal(a0, b0)  # every method, the same gaps
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a0, a1)  # drawn per seed
    for seed, mask in ((0, a0), (1, a1)):
        train = splits[seed]["train"]
        saved = np.asarray(splits[seed]["train_modality_mask"])
        np.testing.assert_array_equal(saved, mask)
        assert np.all(mask <= x["modality_mask"][train])
        assert mask.sum(1).min() == 1
        assert 0.3 < 1 - mask.mean() < 0.5
    paths = write_results(results, splits, str(tmp_path))
    with open(paths["splits"]) as handle:
        saved = json.load(handle)["seed_1"]["train_modality_mask"]
    np.testing.assert_array_equal(saved, a1)
    # Without the option nothing changes: full masks, nothing saved.
    RecordsTraining.seen = []
    results, splits = run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        {"a": RecordsTraining},
        seeds=(0,),
        labeled_fraction=0.1,
        verbose=0,
    )
    assert "train_missing_rate" not in results
    assert "train_modality_mask" not in splits[0]
    np.testing.assert_array_equal(
        RecordsTraining.seen[0][1], x["modality_mask"][splits[0]["train"]]
    )
    with pytest.raises(ValueError, match="train_missing_rate"):
        run_protocol(
            x, y["label"], tasks.Classification(3), {}, train_missing_rate=1
        )


# ------------------------------------------- a predictor with known outputs
MODALITIES = ["m0", "m1", "m2"]


def known_data(num=40):
    """Labels 0..3 in turn; the label is also written into `m2[:, 0]`, so
    a predictor can read it whatever the mask says."""
    rng = np.random.default_rng(0)
    labels = np.arange(num) % 4
    x = {m: rng.normal(size=(num, 3)).astype("float32") for m in MODALITIES}
    x["m2"][:, 0] = labels
    return x, labels


def oracle_if_present(key):
    """Right wherever modality `key` is present, class 0 elsewhere."""

    def predict(inputs):
        labels = inputs["m2"][:, 0].astype(int)
        present = inputs["modality_mask"][:, key] > 0
        guess = np.where(present, labels, 0)
        return np.eye(4, dtype="float32")[guess]

    return predict


def expected_accuracy(mask, labels, key):
    return float(np.mean(np.where(mask[:, key] > 0, True, labels == 0)))


def test_evaluate_predictor_gives_the_known_metrics_and_curve():
    x, labels = known_data()
    x["modality_mask"] = np.ones((40, 3), "float32")
    x["modality_mask"][:10, 0] = 0  # m0 missing in the data for 10 rows
    x["modality_mask"][:2, 1:] = 0  # rows 0, 1: nothing left for m1, m2
    subsets, curve = evaluate_predictor(
        oracle_if_present(0), x, labels, "classification", MODALITIES, seed=3
    )
    assert list(subsets) == [
        "m0",
        "m1",
        "m2",
        "m0+m1",
        "m0+m2",
        "m1+m2",
        "all",
    ]
    # m0 alone: the 30 rows that have it, all right.
    assert subsets["m0"]["accuracy"] == 1.0
    # m1 alone: rows 2..39 (rows 0, 1 have no modality left), m0 absent:
    # right only where the label is 0.
    assert subsets["m1"]["accuracy"] == np.mean(labels[2:] == 0)
    # m0+m1: only the 30 rows that hold both (rows 2..9 lack m0: they
    # would be m1 alone under another name), all right.
    assert subsets["m0+m1"]["accuracy"] == 1.0
    assert subsets["m0+m1"]["f1_macro"] == pytest.approx(
        f1_score_of(oracle_if_present(0), x, labels, [1, 1, 0])
    )
    assert subsets["all"]["accuracy"] == 1.0
    expected_curve = []
    for index, rate in enumerate(MISSING_RATES):
        mask = random_mask(40, 3, rate, seed=300 + index) * x["modality_mask"]
        keep = mask.sum(1) > 0
        expected_curve.append(
            expected_accuracy(mask[keep], labels[keep], key=0)
        )
    np.testing.assert_allclose(curve, expected_curve, rtol=1e-12)
    assert curve[0] == (30 + 2) / 38 and min(curve) < curve[0]


def test_a_modality_absent_from_the_data_names_no_subset():
    """`m1` missing in every sample: no subset with it (nor "all") is
    reported, and the others are evaluated as named."""
    x, labels = known_data()
    x["modality_mask"] = np.ones((40, 3), "float32")
    x["modality_mask"][:, 1] = 0
    given = []

    def predict(inputs):
        given.append(inputs["modality_mask"].copy())
        return oracle_if_present(0)(inputs)

    subsets, _ = evaluate_predictor(
        predict, x, labels, "classification", MODALITIES
    )
    assert list(subsets) == ["m0", "m2", "m0+m2"]
    assert subsets["m0"]["accuracy"] == 1.0
    assert subsets["m2"]["accuracy"] == np.mean(labels == 0)
    # The predictor is never given the absent m1: only the three subsets
    # without it (the curve's masks are among them).
    given = np.concatenate(given)
    assert {tuple(row) for row in given} == {(1, 0, 0), (0, 0, 1), (1, 0, 1)}


def f1_score_of(predict, x, labels, subset):
    from sklearn.metrics import f1_score

    mask = np.array(subset, "float32")[None] * x["modality_mask"]
    keep = np.all(mask >= np.array(subset)[None], axis=1)
    inputs = {m: x[m][keep] for m in MODALITIES}
    inputs["modality_mask"] = mask[keep]
    predicted = predict(inputs).argmax(-1)
    return f1_score(labels[keep], predicted, labels=range(4), average="macro")


class KnownMethod:
    """A protocol method whose predictions are known: right wherever
    modality `seed` is present, class 0 elsewhere."""

    name = "known"

    def __init__(self, task, input_shapes, statistics):
        self.input_shapes = input_shapes

    def fit(self, x, y, epochs, batch_size, seed=0, verbose=0, **kwargs):
        self.predict = oracle_if_present(seed)
        return self


def test_run_protocol_aggregates_seeds_into_known_means_stds_and_auc():
    x, labels = known_data()
    test = np.arange(40) % 2 == 0  # test labels 0, 2, 0, 2, ...
    results, _ = run_protocol(
        x,
        labels,
        tasks.Classification(4),
        {"known": KnownMethod},
        seeds=(0, 1),
        labeled_fraction=0.5,
        test_mask=test,
        verbose=0,
    )
    accuracy = {
        "+".join(r["subset"]): r
        for r in results["results"]
        if r["metric"] == "accuracy"
    }
    # Seed 0 is right where m0 is present, seed 1 where m1 is; class 0
    # elsewhere, which is right on half of the test rows.
    for subset, per_seed in {
        "m0": [1.0, 0.5],
        "m1": [0.5, 1.0],
        "m2": [0.5, 0.5],
        "m0+m1": [1.0, 1.0],
        "m1+m2": [0.5, 1.0],
        "m0+m1+m2": [1.0, 1.0],
    }.items():
        entry = accuracy[subset]
        assert entry["per_seed"] == per_seed, subset
        assert entry["mean"] == np.mean(per_seed)
        assert entry["std"] == np.std(per_seed)  # population std
    assert accuracy["m0"]["std"] == 0.25
    test_labels = labels[test]
    seed_curves = [
        [
            expected_accuracy(
                random_mask(20, 3, rate, seed=seed * 100 + index),
                test_labels,
                key=seed,
            )
            for index, rate in enumerate(MISSING_RATES)
        ]
        for seed in (0, 1)
    ]
    curve = results["missing_rate_curves"][0]
    mean = np.mean(seed_curves, axis=0)
    np.testing.assert_allclose(curve["mean"], mean, rtol=1e-12)
    area = np.sum((mean[1:] + mean[:-1]) * 0.1 / 2) / 0.9
    assert curve["auc"] == pytest.approx(area, rel=1e-12)


def reference_evaluation(predict, x, labels, modalities, seed):
    """The evaluation written plainly: one `predict` call per subset and
    per missing rate."""
    from keras_robult.data.masking import evaluation_subsets, subset_mask
    from keras_robult.experiments.metrics import compute_metrics

    num = len(labels)
    base = x["modality_mask"]
    subsets, curve = {}, []
    for subset in evaluation_subsets(modalities):
        mask = subset_mask(num, modalities, subset)
        keep = np.all(base >= mask, axis=1)
        if keep.any():
            inputs = {m: x[m][keep] for m in modalities}
            inputs["modality_mask"] = mask[keep]
            name = "all" if len(subset) == len(modalities) else "+".join(subset)
            subsets[name] = compute_metrics(
                "classification", labels[keep], predict(inputs)
            )
    for index, rate in enumerate(MISSING_RATES):
        mask = random_mask(num, len(modalities), rate, seed * 100 + index)
        mask = mask * base
        keep = mask.sum(1) > 0
        inputs = {m: x[m][keep] for m in modalities}
        inputs["modality_mask"] = mask[keep]
        metrics = compute_metrics(
            "classification", labels[keep], predict(inputs)
        )
        curve.append(metrics["accuracy"])
    return subsets, curve


def test_the_stacked_evaluation_equals_one_call_per_evaluation():
    """Every subset and rate of 40 rows in one padded `predict` call (of a
    predictor whose output depends on each row's values and mask), with
    the metrics of one call per evaluation; the padding is dropped."""
    x, labels = known_data()
    x["modality_mask"] = np.ones((40, 3), "float32")
    x["modality_mask"][:6, 1] = 0
    weights = np.random.default_rng(1).normal(size=(3, 3, 4))
    calls = []

    def predict(inputs):
        calls.append(len(inputs["modality_mask"]))
        scores = sum(
            (inputs[m] * inputs["modality_mask"][:, i : i + 1]) @ weights[i]
            for i, m in enumerate(MODALITIES)
        )
        return np.exp(scores) / np.exp(scores).sum(1, keepdims=True)

    got = evaluate_predictor(
        predict, x, labels, "classification", MODALITIES, seed=2, pad_to=64
    )
    stacked = calls
    calls = []
    expected = reference_evaluation(predict, x, labels, MODALITIES, seed=2)
    assert got == expected
    # 7 subsets and 10 rates share 34 x 7 + 6 x 3 distinct (row, mask)
    # pairs (rows 0..5 lack m1): one call of 4 x 64 rows.
    assert stacked == [256]
    assert len(calls) == 17
    # The same evaluation with its options in one object; a keyword
    # overrides the object's field.
    calls = []
    options = EvaluationOptions(pad_to=64, curve_metric="accuracy")
    assert (
        evaluate_predictor(
            predict, x, labels, "classification", MODALITIES, 2, options=options
        )
        == expected
    )
    assert calls == [256]
    calls = []
    evaluate_predictor(
        predict,
        x,
        labels,
        "classification",
        MODALITIES,
        seed=2,
        options=options,
        pad_to=100,
    )
    assert calls == [300]


def test_evaluation_memory_does_not_grow_with_the_test_split():
    """A large test split of small rows is predicted in bounded chunks: a
    model's `predict` keeps every output of a call (KiB a row), so the
    peak would otherwise grow with the split."""
    from keras_robult.experiments.protocol import EVALUATION_CHUNK_ROWS

    rng = np.random.default_rng(0)
    rows = 12_000  # 17 evaluations: over 80,000 distinct pairs
    x = {m: rng.normal(size=(rows, 2)).astype("float32") for m in MODALITIES}
    labels = rng.integers(0, 3, rows)
    calls = []

    def predict(inputs):
        calls.append(len(inputs["modality_mask"]))
        return np.full((len(inputs["modality_mask"]), 3), 1 / 3)

    evaluate_predictor(predict, x, labels, "classification", MODALITIES)
    assert max(calls) <= EVALUATION_CHUNK_ROWS
    assert sum(calls) >= 80_000


def test_the_cost_s_peak_covers_the_evaluation():
    from keras_robult.experiments.protocol.training import (
        _with_evaluation_peak,
    )

    class Measured:
        host_bytes = 3 * 2**30
        device_bytes = None

    cost = {"peak_host_mib": 1024.0, "train_seconds": 1.0}
    assert _with_evaluation_peak(dict(cost), Measured()) == {
        "peak_host_mib": 3072.0,
        "train_seconds": 1.0,
    }
    Measured.host_bytes = 2**29
    assert _with_evaluation_peak(dict(cost), Measured()) == cost


def test_a_trained_model_evaluates_as_with_one_call_per_evaluation():
    """A Keras model, batch by batch: the same metrics either way (every
    prediction depends on its own row only)."""
    x, labels = known_data(60)
    x["modality_mask"] = np.ones((60, 3), "float32")
    method = registry.method_factories(["robult"], latent_dim=8)["robult"](
        tasks.Classification(4), {m: (3,) for m in MODALITIES}, None
    )
    y = {"label": labels, "is_labeled": np.ones(60, "float32")}
    method.fit(x, y, epochs=2, batch_size=16)
    got_subsets, got_curve = evaluate_predictor(
        method.predict, x, labels, "classification", MODALITIES, seed=1
    )

    def one_shape(inputs):
        """`method.predict`, each call padded to 64 rows (the curve's
        calls have 10 row counts: one compiled program, not ten)."""
        count = len(inputs["modality_mask"])
        index = np.minimum(np.arange(64), count - 1)
        padded = {k: np.asarray(v)[index] for k, v in inputs.items()}
        return method.predict(padded)[:count]

    subsets, curve = reference_evaluation(
        one_shape, x, labels, MODALITIES, seed=1
    )
    assert got_subsets.keys() == subsets.keys()
    for name, metrics in subsets.items():
        for metric, value in metrics.items():
            # Counts (accuracy) exactly; the ECE and Brier score to the
            # float32 rounding of probabilities batched otherwise.
            assert got_subsets[name][metric] == pytest.approx(value, abs=1e-6)
    np.testing.assert_allclose(got_curve, curve, atol=1e-9)


# ------------------------------- one training, several prediction rules
def trained_models(tmp_path, names, **options):
    """`run_protocol` on a small problem (seed 0, 3 epochs); the saved
    models and the printed log."""
    import keras

    x, y = make_multimodal(num_samples=60, num_classes=3)
    folder = tmp_path / "-".join(names)
    folder.mkdir()
    run_protocol(
        x,
        y["label"],
        tasks.Classification(3),
        registry.method_factories(names, latent_dim=8),
        seeds=(0,),
        labeled_fraction=0.3,
        epochs=3,
        batch_size=16,
        verbose=1,
        save_models=lambda name, seed: str(folder / f"{name}.keras"),
        **options,
    )
    return {
        name: keras.saving.load_model(folder / f"{name}.keras", compile=False)
        for name in names
    }


@once  # the protocol's sharing; seeded training is pinned on all three
def test_robult_and_robult_paper_share_one_training(tmp_path, capsys):
    """The paper's prediction rule on Robult's trained weights: the
    weights of a robult-paper trained on its own, its own rule."""
    shared = trained_models(tmp_path, ["robult", "robult-paper"])
    log = capsys.readouterr().out
    assert "robult-paper (seed 0): the model robult trained" in log
    assert "robult-paper (seed 0)\n" not in log  # no training of its own
    alone = trained_models(tmp_path, ["robult-paper"])["robult-paper"]
    assert "robult-paper (seed 0)\n" in capsys.readouterr().out
    paper = shared["robult-paper"]
    assert paper.late_fusion == "mean" and paper.full_set == "fused"
    assert shared["robult"].late_fusion == "product"
    for got, own, robult in zip(
        paper.get_weights(), alone.get_weights(), shared["robult"].get_weights()
    ):
        np.testing.assert_array_equal(got, robult)
        np.testing.assert_allclose(got, own, rtol=1e-4, atol=1e-6)


def test_training_is_not_shared_where_the_prediction_rule_trains():
    """Gaps in the training data (the late fusion enters the objective), a
    validation split (early stopping watches predictions), or another
    loss: each method trains itself."""
    factories = registry.method_factories(
        ["robult", "robult-paper", "robult-pseudo"]
    )
    shapes = {m: (3,) for m in MODALITIES}
    robult, paper, pseudo = (
        f(tasks.Classification(3), shapes, None) for f in factories.values()
    )
    complete = {"modality_mask": np.ones((8, 3), "float32")}
    gaps = {"modality_mask": np.eye(3, dtype="float32")[np.arange(8) % 3]}
    validation = ({}, np.zeros(2))
    assert robult.training_key(complete) == paper.training_key(complete)
    assert robult.training_key(complete) is not None
    assert robult.training_key(gaps) != paper.training_key(gaps)
    assert robult.training_key(complete, validation) is None
    assert robult.training_key(complete) != pseudo.training_key(complete)
    paper.modality_dropout = 0.2
    robult.modality_dropout = 0.2
    assert robult.training_key(complete) != paper.training_key(complete)
