"""What every layer and model test repeats, in one place (after
keras-hub's `TestCase.run_layer_test` / `run_model_saving_test`)."""

import os

import keras
import numpy as np

from tests.conftest import to_numpy


def assert_config_round_trip(layer, inputs=None):
    """`from_config(get_config())` gives the same configuration, and, on
    `inputs` (a tuple: the call's positional arguments) with the
    original's weights, the same outputs. Returns the clone."""
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    if inputs is not None:
        args = inputs if isinstance(inputs, tuple) else (inputs,)
        expected = to_numpy(layer(*args))
        clone(*args)  # builds it
        clone.set_weights(layer.get_weights())
        keras.tree.map_structure(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
            to_numpy(clone(*args)),
            expected,
        )
    return clone


def assert_saved_model_predicts_the_same(model, x, tmp_path, atol=0.0):
    """A `.keras` round trip: the reloaded model has the class, the
    modalities and the task of `model` and predicts every output on `x`
    the same (to `atol`; exactly by default). Returns the reloaded model
    and its predictions."""
    expected = model.predict(x, verbose=0)
    path = os.path.join(str(tmp_path), f"{model.name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model)
    assert restored.modalities == model.modalities
    assert restored.task == model.task
    out = restored.predict(x, verbose=0)
    assert set(out) == set(expected)
    for key in expected:
        np.testing.assert_allclose(out[key], expected[key], rtol=0, atol=atol)
    return restored, out
