import os

import keras
import numpy as np

from keras_robult import baselines, encoders, tasks
from tests.conftest import JIT_COMPILE, make_multimodal, to_numpy


def build():
    return baselines.GMC(
        {
            f"m{i}": encoders.MLPEncoder(16, hidden_units=(16,))
            for i in range(3)
        },
        tasks.Classification(3),
        latent_dim=16,
        projection_dim=8,
    )


def test_trains_and_predicts_from_every_subset(tmp_path):
    model = build()
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=32)
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert {"loss_contrastive", "loss_sup", "accuracy"} <= set(history.history)
    x["modality_mask"] = np.array(
        [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 1, 1]] * 6
        + [[0, 1, 1]] * 2,
        "float32",
    )
    out = model.predict(x, verbose=0)
    assert out["prediction"].shape == (32, 3)
    np.testing.assert_allclose(out["prediction"].sum(-1), 1, rtol=1e-5)
    path = os.path.join(tmp_path, "gmc.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(
        restored.predict(x, verbose=0)["prediction"], out["prediction"]
    )


def test_prediction_rule():
    model = build()
    x, _ = make_multimodal(num_samples=4)
    x["modality_mask"] = np.array(
        [[1, 1, 1], [0, 1, 0], [1, 0, 1], [1, 1, 1]], "float32"
    )
    out = to_numpy(model(x))
    logits = out["branch_logits"]  # joint, then each modality
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(out["prediction"][0], softmax[0, 0], rtol=1e-5)
    np.testing.assert_allclose(out["prediction"][1], softmax[1, 2], rtol=1e-5)
    # Two present: the classifier reads the mean of their latents, which a
    # late fusion of their outputs would not give.
    garbage = dict(x, m1=x["m1"].copy())
    garbage["m1"][2] = 1e6
    np.testing.assert_array_equal(
        to_numpy(model(garbage))["prediction"][2], out["prediction"][2]
    )
