"""What every keras_robult model shares: the fallback for samples with no
modality present, the stored label prior and the recorded input dtypes."""

import functools
import os

import keras
import numpy as np
import pytest

import keras_robult
from keras_robult import baselines, encoders, tasks
from tests.conftest import JIT_COMPILE, make_multimodal, to_numpy
from tests.testing import assert_saved_model_predicts_the_same

MODELS = {
    "robult": lambda enc, task: keras_robult.Robult(
        enc, task, latent_dim=16, redundant_dim=8, unique_dim=8
    ),
    "gmc": lambda enc, task: baselines.GMC(
        enc, task, latent_dim=16, projection_dim=8
    ),
    "unimodal": lambda enc, task: baselines.UnimodalEnsemble(
        enc, task, latent_dim=16
    ),
}


def build(kind, task=None, num_modalities=3):
    enc = {
        f"m{i}": encoders.MLPEncoder(16, hidden_units=(16,))
        for i in range(num_modalities)
    }
    return MODELS[kind](enc, task or tasks.Classification(3))


@functools.cache
def fitted(kind):
    """One trained model per kind, shared by the tests (which only read
    it)."""
    model = build(kind)
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=48, labeled_fraction=0.3)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    return model, x, y


@pytest.mark.skipif(not JIT_COMPILE, reason="torch runs its steps eagerly")
def test_a_first_fit_and_predict_trace_their_step_once():
    """TensorFlow's trainer builds an unbuilt model and its optimizer
    inside the step's first trace, and a `tf.function` that creates
    variables is traced twice; the model builds both first. The initial
    weights are those of the deferred build."""
    x, y = make_multimodal(num_samples=32, labeled_fraction=0.5)
    traces = {"train": 0, "predict": 0}
    model = build("robult")
    train_step, predict_step = model.train_step, model.predict_step

    def counted_train(*args):
        traces["train"] += 1
        return train_step(*args)

    def counted_predict(*args):
        traces["predict"] += 1
        return predict_step(*args)

    model.train_step, model.predict_step = counted_train, counted_predict
    model.compile(optimizer="adam", jit_compile=True)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert traces["train"] == 1
    fresh = build("robult")
    fresh.predict_step = counted_predict
    fresh.predict(x, batch_size=16, verbose=0)
    assert traces["predict"] == 1
    if keras.backend.backend() != "tensorflow":
        return  # built before the first step by Keras itself
    # Built in the order of the deferred build: the same initial values
    # as a model built by calling it.
    keras.utils.set_random_seed(5)
    built_here = build("robult")
    built_here._build_before_tracing(x)
    keras.utils.set_random_seed(5)
    called = build("robult")
    called(x)
    assert len(built_here.weights) == len(called.weights) > 20
    for a, b in zip(built_here.weights, called.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


@pytest.mark.parametrize("kind", list(MODELS))
def test_fit_stores_the_labeled_class_frequencies(kind):
    model, _, y = fitted(kind)
    labeled = y["label"][y["is_labeled"] > 0]
    expected = np.bincount(labeled, minlength=3) / labeled.size
    np.testing.assert_allclose(to_numpy(model.label_prior), expected, 1e-6)
    assert not model.label_prior.trainable


@pytest.mark.parametrize("kind", list(MODELS))
def test_rows_with_no_modality_get_the_prior_and_others_are_untouched(kind):
    model, x, _ = fitted(kind)
    rng = np.random.default_rng(3)
    mask = (rng.random((48, 3)) < 0.6).astype("float32")
    mask[mask.sum(1) == 0, 1] = 1.0
    batch = dict(x, modality_mask=mask)
    reference = model.predict(batch, batch_size=48, verbose=0)
    emptied = dict(batch, modality_mask=mask.copy())
    emptied["modality_mask"][[4, 17]] = 0.0
    out = model.predict(emptied, batch_size=48, verbose=0)

    prior = to_numpy(model.label_prior)
    np.testing.assert_array_equal(out["prediction"][[4, 17]], [prior, prior])
    np.testing.assert_array_equal(out["num_modalities"][[4, 17]], [0, 0])
    keep = np.setdiff1d(np.arange(48), [4, 17])
    # Bit-equal on every other row: one empty row changes nothing else.
    np.testing.assert_array_equal(
        out["prediction"][keep], reference["prediction"][keep]
    )
    np.testing.assert_array_equal(
        out["num_modalities"], emptied["modality_mask"].sum(1).astype(int)
    )
    assert out["num_modalities"].dtype == np.int32
    assert out["modality_predictions"].shape == (48, 3, 3)


def test_training_and_evaluation_still_refuse_empty_rows():
    model, x, y = fitted("robult")
    empty = dict(x, modality_mask=x["modality_mask"].copy())
    empty["modality_mask"][7] = 0
    for run in (model.fit, model.evaluate):
        with pytest.raises(ValueError, match="Sample 7 has every modality"):
            run(empty, y, verbose=0)


@pytest.mark.parametrize(
    "task, labels, expected",
    [
        (tasks.Regression(), np.array([1.0, 2.0, -1.5, 0.5]), [0.5]),
        (
            tasks.MultiLabel(2),
            np.array([[1, 0], [1, 1], [0, 0], [1, 0]]),
            [0.75, 0.25],
        ),
    ],
    ids=["regression", "multilabel"],
)
def test_prior_of_other_tasks_is_served(task, labels, expected):
    model = build("robult", task=task, num_modalities=2)
    x, _ = make_multimodal(num_samples=4, dims=(3, 2))
    x["modality_mask"] = np.zeros((4, 2), "float32")
    before = model.predict(x, verbose=0)["prediction"]  # never saw a label
    np.testing.assert_allclose(before, [task.default_prior()] * 4)
    np.testing.assert_allclose(model.set_label_prior(labels), expected)
    after = model.predict(x, verbose=0)["prediction"]
    np.testing.assert_allclose(after, [expected] * 4, rtol=1e-6)


def test_prior_set_before_build_and_kept_by_save(tmp_path):
    model = build("robult")
    model.set_label_prior(np.array([2, 2, 2, 0]))  # not built yet
    x, _ = make_multimodal(num_samples=8)
    x["m1"] = x["m1"].astype("float64")
    model.predict(x, verbose=0)
    np.testing.assert_allclose(to_numpy(model.label_prior), [0.25, 0, 0.75])
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded.label_prior), [0.25, 0, 0.75])
    assert loaded.input_dtypes == {
        "m0": "float32",
        "m1": "float32",
        "m2": "float32",
        "modality_mask": "float32",
    }
    assert loaded.get_build_config()["input_shape"]["m0"][1:] == [6]


def test_integer_inputs_are_recorded_as_such():
    vocab = 20
    model = keras_robult.Robult(
        {
            "tokens": keras.Sequential(
                [
                    keras.layers.Embedding(vocab, 8),
                    keras.layers.GlobalAveragePooling1D(),
                ]
            ),
            "m1": encoders.MLPEncoder(16),
        },
        tasks.Classification(3),
        latent_dim=16,
        redundant_dim=8,
        unique_dim=8,
    )
    x = {
        "tokens": np.random.default_rng(0).integers(0, vocab, (6, 5)),
        "m1": np.ones((6, 4), "float32"),
    }
    model.predict(x, verbose=0)
    assert model.input_dtypes["tokens"] == "int64"
    assert model.input_dtypes["modality_mask"] == "float32"


def test_no_mask_and_a_partial_last_batch_train_under_xla():
    """`modality_mask` left out (all present) with 20 samples at batch 8:
    the last batch of 4 has a batch size known only at run time."""
    model = build("robult")
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=20, labeled_fraction=0.5)
    full_mask = x.pop("modality_mask")
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    without = model.predict(x, batch_size=8, verbose=0)["prediction"]
    given = dict(x, modality_mask=full_mask)
    with_mask = model.predict(given, batch_size=8, verbose=0)["prediction"]
    np.testing.assert_allclose(without, with_mask, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", list(MODELS))
def test_a_wrong_width_names_the_modality_and_leaves_the_model_usable(kind):
    model, x, _ = fitted(kind)
    expected = model.predict(x, verbose=0)["prediction"]
    narrow = dict(x, m1=x["m1"][:, :-1])
    width = x["m1"].shape[1]
    with pytest.raises(
        ValueError,
        match=rf"'m1' has per-sample shape \({width - 1},\); the model was "
        rf"built for \({width},\)",
    ):
        model.predict(narrow, verbose=0)
    with pytest.raises(ValueError, match="'m1' has per-sample shape"):
        model.evaluate(narrow, verbose=0)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0)["prediction"], expected
    )


def test_a_file_saved_with_xla_loads_without_torch_compile(tmp_path):
    """`jit_compile=True` means XLA on TensorFlow and JAX, and
    `torch.compile` (minutes for a first prediction) on torch: a model
    trained elsewhere loads on torch compiled without it."""
    model = build("unimodal")
    model.compile(optimizer="adam", jit_compile=True)
    x, _ = make_multimodal(num_samples=8)
    model(x)
    path = str(tmp_path / "xla.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.compiled
    assert loaded.jit_compile is (keras.backend.backend() != "torch")


@pytest.mark.parametrize("kind", list(MODELS))
def test_non_finite_inputs_and_odd_masks_are_read_by_the_presence_rule(kind):
    """NaN / inf in a present modality is that modality missing, and a
    mask value is read as present above 0.5: in `model(x)` and `predict`
    alike, with `dropped_modalities` reporting what was dropped."""
    model, x, _ = fitted(kind)
    garbage = {k: v.copy() for k, v in x.items()}
    garbage["m0"][0, 0] = np.nan
    garbage["m1"][1] = np.inf
    garbage["modality_mask"][2] = [0.7, 0.2, np.nan]
    garbage["modality_mask"][3] = [2.0, -1.0, 0.5]
    rule = {k: v.copy() for k, v in x.items()}
    rule["modality_mask"][0, 0] = rule["modality_mask"][1, 1] = 0.0
    rule["modality_mask"][2] = [1.0, 0.0, 0.0]
    rule["modality_mask"][3] = [1.0, 0.0, 0.0]
    expected = model.predict(rule, verbose=0)
    with pytest.warns(UserWarning) as caught:
        got = model.predict(garbage, verbose=0)
    messages = " ".join(str(w.message) for w in caught)
    assert "Modality 'm0' has NaN or infinite values in 1 row" in messages
    assert "'modality_mask' holds 6 values other than 0 and 1" in messages
    np.testing.assert_allclose(
        got["prediction"], expected["prediction"], atol=1e-6
    )
    dropped = np.zeros((48, 3), "int32")
    dropped[0, 0] = dropped[1, 1] = 1
    np.testing.assert_array_equal(got["dropped_modalities"], dropped)
    np.testing.assert_array_equal(
        got["num_modalities"], rule["modality_mask"].sum(1)
    )
    called = model(
        {k: keras.ops.convert_to_tensor(v) for k, v in garbage.items()}
    )
    np.testing.assert_allclose(
        to_numpy(called["prediction"]), expected["prediction"], atol=1e-5
    )
    # Training data is refused, not read by the rule.
    y = {"label": np.zeros(48, "int64"), "is_labeled": np.ones(48)}
    with pytest.raises(ValueError, match="must hold 0 or 1; found 0.7"):
        model.fit(garbage, y, epochs=1, verbose=0)
    garbage["modality_mask"] = x["modality_mask"]
    with pytest.raises(ValueError, match="NaN or infinite values in row 0"):
        model.evaluate(garbage, y, verbose=0)


def test_an_encoder_that_returns_a_sequence_is_named():
    model = keras_robult.Robult(
        {
            "audio": encoders.MLPEncoder(8),
            "video": keras.layers.Dense(8),  # (batch, time, 8): no pooling
        },
        tasks.Classification(3),
        latent_dim=8,
    )
    x = {
        "audio": np.zeros((32, 4), "float32"),
        "video": np.zeros((32, 7, 5), "float32"),
    }
    with pytest.raises(ValueError) as error:
        model(x)
    assert str(error.value) == (
        "The encoder of modality 'video' must output one vector per sample, "
        "shape (batch, features); it outputs shape (32, 7, 8). Pool or "
        "flatten inside the encoder (e.g. keras.layers.GlobalAveragePooling1D "
        "after a sequence layer)."
    )


def test_the_package_s_model_classes_are_listed_sorted_and_only_those():
    """Error messages list the model classes a file or an export may hold:
    every `MultimodalModel` subclass of the package, none defined
    elsewhere."""
    from keras_robult.models.multimodal_model import (
        MultimodalModel,
        model_classes,
    )

    class Elsewhere(keras_robult.Robult):
        pass

    assert issubclass(Elsewhere, MultimodalModel)
    found = model_classes()
    assert found == sorted(found) and "Elsewhere" not in found
    assert {
        "ActionMAE",
        "EarlyFusionMLP",
        "GMC",
        "PromptTransformer",
        "Robult",
        "UnimodalEnsemble",
    } <= set(found)


# ------------------------------------------------------------- calibration
def held_out(num_samples=120, seed=5):
    """Held-out rows of the `fitted` models' problem, some modalities
    missing."""
    x, y = make_multimodal(num_samples=num_samples, seed=0)
    rng = np.random.default_rng(seed)
    x["modality_mask"] = (rng.random((num_samples, 3)) < 0.7).astype("float32")
    x["modality_mask"][x["modality_mask"].sum(1) == 0, 0] = 1.0
    return x, y["label"]


@pytest.mark.parametrize("kind", list(MODELS))
def test_calibration_is_applied_per_pattern_kept_and_saved(kind, tmp_path):
    model, _, _ = fitted(kind)
    model = keras.models.clone_model(model)  # the shared one stays as is
    model.set_weights(fitted(kind)[0].get_weights())
    x, labels = held_out()
    before = model.predict(x, verbose=0)
    calibration = model.calibrate(x, labels)
    assert model.calibration is calibration
    after = model.predict(x, verbose=0)

    # The NumPy rule on the uncalibrated outputs, pattern by pattern.
    expected = calibration.apply_numpy(before["prediction"], x["modality_mask"])
    np.testing.assert_allclose(
        after["prediction"], expected["prediction"], atol=2e-5
    )
    np.testing.assert_allclose(
        after["confidence"], after["prediction"].max(1), atol=1e-6
    )
    np.testing.assert_allclose(
        after["uncalibrated_prediction"], before["prediction"], atol=1e-6
    )
    np.testing.assert_array_equal(  # the arg-max, so the accuracy, kept
        after["prediction"].argmax(1), before["prediction"].argmax(1)
    )
    # Every one of the 7 patterns was seen (patterns="all"): each row
    # under each subset of its modalities.
    assert all(n > 0 for n in calibration.counts[1:])
    # `model(x)` reads the same table as `predict`.
    np.testing.assert_allclose(
        to_numpy(model(x)["prediction"]), after["prediction"], atol=2e-5
    )
    restored, _ = assert_saved_model_predicts_the_same(model, x, tmp_path)
    assert restored.calibration == calibration
    model.set_calibration(None)
    np.testing.assert_allclose(
        model.predict(x, verbose=0)["prediction"],
        before["prediction"],
        atol=1e-6,
    )


def test_a_pattern_without_held_out_samples_uses_the_fallback():
    model = keras.models.clone_model(fitted("robult")[0])
    model.set_weights(fitted("robult")[0].get_weights())
    x, labels = held_out()
    x["modality_mask"][:] = 1.0
    x["modality_mask"][:40, 2] = 0.0  # patterns {m0, m1, m2} and {m0, m1}
    calibration = model.calibrate(x, labels, patterns="observed")
    assert calibration.counts == [0, 0, 0, 40, 0, 0, 0, 80]
    # No one-modality sample, no sample of m0+m2 or m1+m2: each takes
    # the trend over the number of present modalities (fitted on the
    # pairs and the full set), which a+b's own samples move away from.
    log = {q: np.log(calibration.table[q]) for q in range(1, 8)}
    assert log[1] == log[2] == log[4]  # bit 0: m0, bit 1: m1, bit 2: m2
    assert log[5] == log[6] != log[3]
    assert calibration.sources == [
        "none", "trend", "trend", "shrunk", "trend", "trend", "trend",
        "shrunk",
    ]  # fmt: skip


def test_regression_gets_intervals_per_pattern(tmp_path):
    model = build("robult", tasks.Regression.from_targets([0.0, 2.0]))
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=64, labeled_fraction=0.5)
    targets = y["label"] + np.random.default_rng(1).normal(size=64) * 0.1
    model.fit(
        x,
        {"label": targets.astype("float32"), "is_labeled": y["is_labeled"]},
        batch_size=32,
        epochs=2,
        verbose=0,
    )
    x_val, labels = held_out(num_samples=150)
    before = model.predict(x_val, verbose=0)
    calibration = model.calibrate(x_val, labels.astype("float32"))
    assert calibration.kind == "conformal" and calibration.coverage == 0.9
    after = model.predict(x_val, verbose=0)
    np.testing.assert_array_equal(after["prediction"], before["prediction"])
    expected = calibration.apply_numpy(
        before["prediction"], x_val["modality_mask"]
    )["prediction_interval"]
    np.testing.assert_allclose(
        after["prediction_interval"], expected, atol=1e-5
    )
    assert after["prediction_interval"].shape == (150, 2)
    assert "confidence" not in after
    assert_saved_model_predicts_the_same(model, x_val, tmp_path)


def test_calibrate_refuses_bad_input_and_keeps_what_it_had():
    model = keras.models.clone_model(fitted("robult")[0])
    model.set_weights(fitted("robult")[0].get_weights())
    x, labels = held_out()
    kept = model.calibrate(x, labels)
    cases = [
        ((x, None), "needs the held-out samples' labels"),
        ((x, np.zeros_like(labels)), "single class"),
        ((x, {"label": labels, "is_labeled": np.zeros(120)}), "no labeled"),
        ((x, np.where(np.arange(120) == 3, np.nan, labels)), "NaN"),
        ((x, labels), "'all' or 'observed'"),
    ]
    for index, ((data, target), message) in enumerate(cases):
        options = {"patterns": "some"} if index == len(cases) - 1 else {}
        with pytest.raises(ValueError, match=message):
            model.calibrate(data, target, **options)
        assert model.calibration is kept
    multi = build("robult", tasks.MultiLabel(3))
    with pytest.raises(ValueError, match="classification"):
        multi.calibrate(x, np.zeros((120, 3)))
