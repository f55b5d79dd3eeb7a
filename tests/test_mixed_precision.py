"""Robult under Keras' mixed-precision policies: the layers compute in
16 bits, the variables and the losses stay float32 (cosine normalisation,
log-sum-exp and the cross-entropy are computed in float32)."""

import keras
import numpy as np
import pytest

import keras_robult
from keras_robult import encoders, tasks
from tests.conftest import JIT_COMPILE, make_multimodal, to_numpy

POLICIES = ["mixed_bfloat16", "mixed_float16"]


@pytest.fixture
def policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
def test_a_few_steps_under_a_mixed_policy(policy):
    x, y = make_multimodal(num_samples=64)
    model = keras_robult.Robult(
        {
            f"m{i}": encoders.MLPEncoder(16, hidden_units=(16,))
            for i in range(3)
        },
        tasks.Classification(3),
        latent_dim=16,
        redundant_dim=8,
        unique_dim=8,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), jit_compile=JIT_COMPILE
    )
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    compute = policy.split("_")[1]
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    outputs = model(x, training=False)
    assert (
        keras.backend.standardize_dtype(outputs["fused_logits"].dtype)
        == compute
    )
    # The loss is float32 even though the representations are not.
    loss = model.compute_loss(x, y, outputs)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    for name in ("loss", "loss_lb", "loss_ulb", "loss_rec", "loss_sup"):
        values = np.asarray(history.history[name])
        assert np.all(np.isfinite(values)), (name, values)
    # It learned: the supervised loss went down over the three epochs.
    assert history.history["loss_sup"][-1] < history.history["loss_sup"][0]
    prediction = to_numpy(model.predict(x, verbose=0)["prediction"])
    assert np.all(np.isfinite(prediction))
    np.testing.assert_allclose(
        prediction.astype("float64").sum(-1), 1.0, atol=1e-2
    )
    # A calibration computes in float32: finite, the arg-max kept.
    model.calibrate(x, y["label"])
    calibrated = model.predict(x, verbose=0)
    assert calibrated["prediction"].dtype == np.float32
    assert np.all(np.isfinite(calibrated["prediction"]))
    np.testing.assert_array_equal(
        calibrated["prediction"].argmax(-1), prediction.argmax(-1)
    )
