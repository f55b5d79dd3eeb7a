import keras
import numpy as np

from keras_robult import baselines, tasks
from tests.conftest import JIT_COMPILE, make_multimodal, to_numpy
from tests.testing import (
    assert_config_round_trip,
    assert_saved_model_predicts_the_same,
)


def build(task=None):
    return baselines.EarlyFusionMLP(
        {f"m{i}": keras.layers.Flatten() for i in range(3)},
        task or tasks.Classification(3),
        hidden_units=(16, 16),
        dropout=0.0,
    )


def test_it_is_one_mlp_on_the_zero_filled_features_and_the_mask():
    """The logits are the network on [x_m * present_m ..., mask], a
    missing modality's values (even NaN) never read: checked against a
    NumPy forward pass of the same weights."""
    model = build()
    x, _ = make_multimodal(num_samples=5)
    x["modality_mask"][:3] = [[1, 0, 0], [0, 1, 1], [1, 1, 0]]
    x["m1"][0] = np.nan  # missing there: never read
    out = to_numpy(model(x))
    weights = [to_numpy(w) for w in model.network.weights]
    mask = x["modality_mask"]
    features = np.concatenate(
        [np.nan_to_num(x[f"m{i}"]) * mask[:, i : i + 1] for i in range(3)]
        + [mask],
        axis=1,
    )
    h = features
    for kernel, bias in zip(weights[0:-2:2], weights[1:-2:2]):
        h = np.maximum(h @ kernel + bias, 0.0)
    logits = h @ weights[-2] + weights[-1]
    np.testing.assert_allclose(out["logits"], logits, rtol=1e-5, atol=1e-6)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(out["prediction"], probabilities, rtol=1e-5)


def test_it_trains_on_the_labeled_samples_only(tmp_path):
    model = build(tasks.Regression())
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=64)
    y = {"label": x["m0"][:, 0], "is_labeled": y["is_labeled"]}
    history = model.fit(x, y, batch_size=16, epochs=20, verbose=0)
    losses = history.history["loss_sup"]
    assert losses[-1] < 0.7 * losses[0]
    # No labeled sample in a batch: nothing moves (plain SGD: Adam's
    # momentum would move weights on a zero gradient).
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=JIT_COMPILE)
    before = [to_numpy(v).copy() for v in model.trainable_variables]
    model.train_on_batch(x, dict(y, is_labeled=np.zeros(64, "float32")))
    for old, variable in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(old, to_numpy(variable))
    assert_config_round_trip(model)
    assert_saved_model_predicts_the_same(model, x, tmp_path)
