"""SavedModel export: the served signatures agree with `predict`, in a
fresh TensorFlow process, whatever backend trained the model."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_robult
from keras_robult import encoders, tasks
from keras_robult.experiments import registry
from keras_robult.export import export_saved_model
from keras_robult.layers import FeatureStandardization
from keras_robult.models.multimodal_model import model_classes
from tests.cli.test_command import robult, run_cli
from tests.conftest import BACKEND, JIT_COMPILE, make_multimodal
from tests.testing import registry_model_methods

NATIVE_ROUTE = {"tensorflow": "tensorflow", "jax": "jax2tf"}.get(
    BACKEND, "reload"
)
BIN = os.path.dirname(sys.executable)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

# Runs in a fresh process: loads the SavedModel with TensorFlow alone and
# calls every signature on the saved request.
RUNNER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    path, request, out = sys.argv[1:]
    served = tf.saved_model.load(path)
    x = dict(np.load(request))
    garbage = {k[8:]: x.pop(k) for k in list(x) if k.startswith("garbage/")}
    results = {"signatures": sorted(served.signatures)}
    arrays = {}
    default = served.signatures["serving_default"]
    for key, value in default(**{k: tf.constant(v) for k, v in x.items()}
                             ).items():
        arrays["serving_default/" + key] = value.numpy()
    if garbage:
        for key, value in default(
            **{k: tf.constant(v) for k, v in garbage.items()}
        ).items():
            arrays["garbage/" + key] = value.numpy()
    for name in [k for k in x if k != "modality_mask"]:
        outputs = served.signatures["serve_" + name](**{name: x[name]})
        for key, value in outputs.items():
            arrays[f"serve_{name}/{key}"] = value.numpy()
    bad = dict(x, modality_mask=x["modality_mask"][:, :-1])
    try:
        default(**{k: tf.constant(v) for k, v in bad.items()})
        results["wrong_mask"] = "no error"
    except tf.errors.InvalidArgumentError as error:
        results["wrong_mask"] = str(error)
    arrays = {
        k: v.astype(bytes) if v.dtype == object else v
        for k, v in arrays.items()
    }
    np.savez(out + ".npz", **arrays)
    with open(out + ".json", "w") as f:
        json.dump(results, f)
    """
)


def serve_in_fresh_process(path, request, tmp_path):
    np.savez(tmp_path / "request.npz", **request)
    out = str(tmp_path / "served")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNNER,
            path,
            str(tmp_path / "request.npz"),
            out,
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out + ".json") as f:
        return dict(np.load(out + ".npz")), json.load(f)


def train_model():
    """Robult on raw features: standardisation is part of the graph."""
    x, y = make_multimodal(num_samples=64, dims=(6, 5, 4))
    x = {k: v * 10.0 + 3.0 if k != "modality_mask" else v for k, v in x.items()}
    model = keras_robult.Robult(
        {
            name: keras.Sequential(
                [
                    FeatureStandardization(
                        x[name].mean(0), x[name].std(0) + 1e-3
                    ),
                    encoders.MLPEncoder(16, hidden_units=(16,)),
                ]
            )
            for name in ("m0", "m1", "m2")
        },
        tasks.Classification(3),
        latent_dim=16,
        redundant_dim=8,
        unique_dim=8,
    )
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    return model, x


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    tmp_path = tmp_path_factory.mktemp("export")
    model, x = train_model()
    rng = np.random.default_rng(1)
    mask = (rng.random((64, 3)) < 0.5).astype("float32")
    mask[[2, 9]] = 0.0  # two rows with nothing present
    request = dict(x, modality_mask=mask)
    path = str(tmp_path / "saved_model")
    route = export_saved_model(model, path)
    garbage = garbage_request(request)
    served, info = serve_in_fresh_process(
        path,
        {**request, **{f"garbage/{k}": v for k, v in garbage.items()}},
        tmp_path,
    )
    return model, request, path, route, served, info


def garbage_request(request):
    """What a broken client sends: NaN and inf in modalities the mask
    calls present, and mask values other than 0 and 1."""
    garbage = {k: v.copy() for k, v in request.items()}
    garbage["modality_mask"][:8] = 1.0
    garbage["m0"][0, 1] = np.nan
    garbage["m1"][1] = np.inf
    garbage["m2"][2, 0] = -np.inf
    garbage["m0"][3] = np.nan  # with m1 and m2 gone too: nothing left
    garbage["m1"][3, 0] = np.nan
    garbage["m2"][3, 2] = np.inf
    garbage["modality_mask"][4] = [0.5, 2.0, -1.0]  # 0.5 is not above
    garbage["modality_mask"][5] = [0.51, 0.49, np.nan]
    return garbage


def test_route_follows_the_backend(exported):
    assert exported[3] == NATIVE_ROUTE


def test_serving_default_matches_predict(exported):
    model, request, _, _, served, info = exported
    expected = model.predict(request, verbose=0)
    assert info["signatures"] == ["serve_m0", "serve_m1", "serve_m2"] + [
        "serving_default"
    ]
    for key in ("prediction", "modality_predictions"):
        np.testing.assert_allclose(
            served[f"serving_default/{key}"], expected[key], atol=1e-5
        )
    np.testing.assert_array_equal(
        served["serving_default/num_modalities"],
        request["modality_mask"].sum(1),
    )


def test_all_missing_rows_get_the_prior_through_the_signature(exported):
    model, request, _, _, served, _ = exported
    prior = keras.ops.convert_to_numpy(model.label_prior)
    prediction = served["serving_default/prediction"]
    np.testing.assert_allclose(prediction[[2, 9]], [prior, prior], atol=1e-6)
    assert np.all(np.isfinite(prediction))
    np.testing.assert_array_equal(
        served["serving_default/num_modalities"][[2, 9]], [0, 0]
    )


def test_garbage_is_served_by_the_model_s_rule_and_reported(exported):
    model, request, _, _, served, _ = exported
    garbage = garbage_request(request)
    # The rule: present where mask > 0.5 and the input is finite.
    rule = dict(garbage, modality_mask=(garbage["modality_mask"] > 0.5))
    rule["modality_mask"] = rule["modality_mask"].astype("float32")
    dropped = np.zeros((64, 3), "int32")
    dropped[0, 0] = dropped[1, 1] = dropped[2, 2] = 1
    dropped[3] = 1
    rule["modality_mask"][dropped > 0] = 0.0
    clean = {
        k: np.where(rule["modality_mask"][:, i : i + 1] > 0, v, 0.0)
        for i, (k, v) in enumerate((m, rule[m]) for m in ("m0", "m1", "m2"))
    }
    expected = model.predict(
        dict(clean, modality_mask=rule["modality_mask"]), verbose=0
    )
    np.testing.assert_allclose(
        served["garbage/prediction"], expected["prediction"], atol=1e-5
    )
    assert np.all(np.isfinite(served["garbage/prediction"]))
    np.testing.assert_array_equal(served["garbage/dropped_modalities"], dropped)
    np.testing.assert_array_equal(
        served["garbage/num_modalities"][:6], [2, 2, 2, 0, 1, 1]
    )
    names = [n.decode() for n in served["garbage/dropped_modality_names"][:5]]
    assert names == ["m0", "m1", "m2", "m0,m1,m2", ""]
    # `predict` and `model(x)` read the garbage by the same rule.
    with pytest.warns(UserWarning, match="above 0.5"):
        predicted = model.predict(garbage, verbose=0)
    np.testing.assert_allclose(
        predicted["prediction"], expected["prediction"], atol=1e-5
    )
    np.testing.assert_array_equal(predicted["dropped_modalities"], dropped)
    called = model(
        {k: keras.ops.convert_to_tensor(v) for k, v in garbage.items()}
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(called["prediction"]),
        expected["prediction"],
        atol=1e-5,
    )
    # The arg-max class, by name.
    np.testing.assert_array_equal(
        served["serving_default/predicted_class"].astype(str),
        served["serving_default/prediction"].argmax(-1).astype(str),
    )


def test_modality_endpoints_match_a_one_modality_mask(exported):
    model, request, _, _, served, _ = exported
    for index, name in enumerate(model.modalities):
        one = dict(request, modality_mask=np.zeros((64, 3), "float32"))
        one["modality_mask"][:, index] = 1.0
        expected = model.predict(one, verbose=0)["prediction"]
        np.testing.assert_allclose(
            served[f"serve_{name}/prediction"], expected, atol=1e-5
        )
        np.testing.assert_array_equal(served[f"serve_{name}/num_modalities"], 1)


def test_wrong_width_mask_is_refused_with_a_clear_message(exported):
    message = exported[5]["wrong_mask"]
    assert "Input modality_mask must have shape (batch, 3)" in message


def test_saved_model_cli_show_and_run(exported):
    path = exported[2]
    show = subprocess.run(
        [os.path.join(BIN, "saved_model_cli"), "show", "--dir", path, "--all"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert show.returncode == 0, show.stderr[-2000:]
    for line in (
        "signature_def['serving_default']",
        "signature_def['serve_m1']",
        "inputs['m0'] tensor_info",
        "inputs['modality_mask'] tensor_info",
        "outputs['num_modalities'] tensor_info",
        "outputs['modality_predictions'] tensor_info",
        "shape: (-1, 3)",
    ):
        assert line in show.stdout, line
    run = subprocess.run(
        [
            os.path.join(BIN, "saved_model_cli"),
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            "m0=[[1.0,2,3,4,5,6]];m1=[[0.0,0,0,0,0]];m2=[[1.0,1,1,1]];"
            "modality_mask=[[1.0,0,1]]",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Result for output key num_modalities:\n[2]" in run.stdout


def test_export_refuses_what_it_cannot_do(tmp_path, exported):
    model, path = exported[0], exported[2]
    unbuilt = keras_robult.Robult(
        {"a": encoders.MLPEncoder(8), "b": encoders.MLPEncoder(8)},
        tasks.Classification(2),
        latent_dim=8,
        redundant_dim=4,
        unique_dim=4,
    )
    with pytest.raises(ValueError, match="is not built"):
        export_saved_model(unbuilt, str(tmp_path / "x"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_saved_model(model, path)
    with pytest.raises(ValueError, match="not a keras_robult|takes a keras"):
        export_saved_model(keras.Sequential([keras.layers.Dense(1)]), "y")
    other = "jax2tf" if BACKEND != "jax" else "tensorflow"
    with pytest.raises(ValueError, match=f"Route '{other}' needs"):
        export_saved_model(model, str(tmp_path / "z"), route=other)
    assert not os.path.exists(tmp_path / "z")


def test_cli_exports_a_keras_file_and_names_its_errors(
    tmp_path, exported, capsys, monkeypatch
):
    model, request = exported[0], exported[1]
    source = str(tmp_path / "model.keras")
    model.save(source)
    out = str(tmp_path / "served")
    result = robult("export", "--model", source, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "route tensorflow" in result.stdout
    served, _ = serve_in_fresh_process(out, request, tmp_path)
    np.testing.assert_allclose(
        served["serving_default/prediction"],
        model.predict(request, verbose=0)["prediction"],
        atol=1e-5,
    )
    replaced = robult(
        "export",
        "--model",
        source,
        "--out",
        out,
        "--overwrite",
        "--no-modality-endpoints",
    )
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert os.listdir(tmp_path / "served") and not any(
        name.startswith(".") for name in os.listdir(tmp_path)
    )
    # Errors, in this process under this backend (no re-execution).
    plain = str(tmp_path / "plain.keras")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]).save(plain)
    for args, message in [
        (
            ["--model", source, "--out", out],
            f"robult: error: The output directory {out} exists; pass "
            "--overwrite to replace it.",
        ),
        (
            ["--model", str(tmp_path / "no.keras"), "--out", "o"],
            f"robult: error: No such model file: {tmp_path / 'no.keras'}",
        ),
        (
            ["--model", plain, "--out", "o"],
            f"robult: error: {plain} holds a Sequential, not a keras_robult "
            f"model ({', '.join(model_classes())}).",
        ),
    ]:
        code, _, err = run_cli(
            ["export", *args, "--backend", BACKEND], capsys, monkeypatch
        )
        assert code == 2
        assert err.strip().splitlines()[-1] == message


# Every registered model class but Robult (whose export has the tests
# above): a new registered baseline is exported here with no line added.
@pytest.mark.parametrize(
    "method",
    [
        name
        for name in registry_model_methods()
        if registry.METHODS[name].model_class != "Robult"
    ],
)
def test_baseline_exports_and_serves(tmp_path, method):
    import tensorflow as tf

    x, y = make_multimodal(num_samples=32, dims=(4, 3))
    model = registry.METHODS[method](
        tasks.Classification(3), {"a": (4,), "b": (3,)}, None, latent_dim=8
    ).build_model()
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    x = {"a": x["m0"], "b": x["m1"], "modality_mask": x["modality_mask"][:, :2]}
    x["modality_mask"][:10, 0] = 0
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    x["modality_mask"][5] = 0  # served: the prior
    path = str(tmp_path / "unimodal")
    export_saved_model(model, path, modality_endpoints=False, verbose=False)
    served = tf.saved_model.load(path).signatures["serving_default"]
    assert sorted(tf.saved_model.load(path).signatures) == ["serving_default"]
    out = served(**{k: tf.constant(v) for k, v in x.items()})
    np.testing.assert_allclose(
        out["prediction"].numpy(),
        model.predict(x, verbose=0)["prediction"],
        atol=1e-5,
    )
    own = model.predict(x, verbose=0).get("modality_predictions")
    if own is not None:  # the model's own per-modality outputs
        np.testing.assert_allclose(
            out["modality_predictions"].numpy(), own, atol=1e-5
        )
    else:  # computed by the export: each modality alone, where present
        for index in range(2):
            alone = x["modality_mask"] * np.eye(2, dtype="float32")[index]
            rows = alone[:, index] > 0
            np.testing.assert_allclose(
                out["modality_predictions"].numpy()[rows, index],
                model.predict({**x, "modality_mask": alone}, verbose=0)[
                    "prediction"
                ][rows],
                atol=1e-5,
            )


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_calibrated_model_serves_its_calibrated_outputs(tmp_path, task):
    import tensorflow as tf

    x, y = make_multimodal(num_samples=96, dims=(4, 3))
    x = {"a": x["m0"], "b": x["m1"], "modality_mask": x["modality_mask"][:, :2]}
    labels = y["label"].astype("float32")
    model = keras_robult.baselines.UnimodalEnsemble(
        {"a": encoders.MLPEncoder(8), "b": encoders.MLPEncoder(8)},
        tasks.Classification(3)
        if task == "classification"
        else tasks.Regression.from_targets(labels),
        latent_dim=8,
    )
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    model.fit(
        x,
        {"label": labels if task == "regression" else y["label"]},
        batch_size=32,
        epochs=1,
        verbose=0,
    )
    model.calibrate(x, labels if task == "regression" else y["label"])
    x["modality_mask"][:30, 0] = 0.0
    x["modality_mask"][5] = 0.0
    path = str(tmp_path / "calibrated")
    export_saved_model(model, path, modality_endpoints=False, verbose=False)
    served = tf.saved_model.load(path).signatures["serving_default"]
    out = served(**{k: tf.constant(v) for k, v in x.items()})
    expected = model.predict(x, verbose=0)
    keys = (
        ["prediction", "confidence", "uncalibrated_prediction"]
        if task == "classification"
        else ["prediction", "prediction_interval"]
    )
    for key in keys:
        np.testing.assert_allclose(out[key].numpy(), expected[key], atol=1e-5)
    assert ("prediction_interval" in out) == (task == "regression")


def test_a_regression_model_with_its_linear_base_serves_it(tmp_path):
    import tensorflow as tf

    x, y = make_multimodal(num_samples=64, dims=(4, 3))
    x = {"a": x["m0"], "b": x["m1"], "modality_mask": x["modality_mask"][:, :2]}
    target = (x["a"][:, 0] - 2 * x["b"][:, 1]).astype("float32")
    model = keras_robult.Robult(
        {"a": encoders.MLPEncoder(8), "b": encoders.MLPEncoder(8)},
        tasks.Regression.from_targets(target),
        latent_dim=8,
        linear_base=True,
        full_set="fused",
    )
    model.fit_linear_base(x, target)
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    model.fit(x, target, batch_size=32, epochs=1, verbose=0)
    x["modality_mask"][:20, 1] = 0.0
    x["modality_mask"][20:30, 0] = 0.0
    path = str(tmp_path / "linear_base")
    export_saved_model(model, path, modality_endpoints=False, verbose=False)
    served = tf.saved_model.load(path).signatures["serving_default"]
    out = served(**{k: tf.constant(v) for k, v in x.items()})
    expected = model.predict(x, verbose=0)["prediction"]
    np.testing.assert_allclose(out["prediction"].numpy(), expected, atol=1e-4)
    # The base is what predicts a linear target: served, it is close.
    assert np.abs(expected[30:, 0] - target[30:]).mean() < 0.1 * target.std()


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="string tensors exist on TensorFlow only"
)
def test_text_modality_with_its_tokenizer_serves_raw_strings(tmp_path):
    import tensorflow as tf

    words = ["red", "green", "blue", "cyan"]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 48)
    text = np.array(
        [f"{words[c]} {words[(c + 1) % 4]} {rng.choice(words)}" for c in labels]
    )
    vector = (labels[:, None] + rng.normal(size=(48, 4))).astype("float32")
    model = keras_robult.Robult(
        {
            "text": keras.Sequential(
                [
                    keras.layers.TextVectorization(
                        vocabulary=words, output_sequence_length=4
                    ),
                    keras.layers.Embedding(len(words) + 2, 8),
                    keras.layers.GlobalAveragePooling1D(),
                ]
            ),
            "vector": encoders.MLPEncoder(16),
        },
        tasks.Classification(3),
        latent_dim=16,
        redundant_dim=8,
        unique_dim=8,
    )
    x = {"text": text, "vector": vector}
    model.compile(optimizer="adam")
    model.fit(x, labels, batch_size=16, epochs=1, verbose=0)
    assert model.input_dtypes["text"] == "string"
    path = str(tmp_path / "text_model")
    export_saved_model(model, path, verbose=False)
    served = tf.saved_model.load(path)
    mask = np.ones((48, 2), "float32")
    mask[:8, 0] = 0  # no text: the client sends ""
    request = {"text": np.where(mask[:, 0] > 0, text, ""), "vector": vector}
    out = served.signatures["serving_default"](
        text=tf.constant(request["text"]),
        vector=tf.constant(vector),
        modality_mask=tf.constant(mask),
    )
    expected = model.predict(dict(request, modality_mask=mask), verbose=0)
    np.testing.assert_allclose(
        out["prediction"].numpy(), expected["prediction"], atol=1e-5
    )
    only_text = served.signatures["serve_text"](text=tf.constant(text[:4]))
    assert only_text["prediction"].shape == (4, 3)


def test_request_bodies_carry_the_request(exported):
    import tensorflow as tf

    from keras_robult.export import grpc_request, rest_request

    request = {k: v[:2] for k, v in exported[1].items()}
    body = rest_request(request)
    assert body["signature_name"] == "serving_default"
    assert len(body["instances"]) == 2
    for name, value in request.items():
        np.testing.assert_allclose(
            [row[name] for row in body["instances"]], value
        )
    json.dumps(body)  # what the client posts
    grpc = grpc_request(request, "robult", "serve_m0")
    assert grpc.model_spec.signature_name == "serve_m0"
    for name, value in request.items():
        np.testing.assert_array_equal(tf.make_ndarray(grpc.inputs[name]), value)
    with pytest.raises(ValueError, match="same number of samples"):
        rest_request({"m0": request["m0"], "m1": request["m1"][:1]})
