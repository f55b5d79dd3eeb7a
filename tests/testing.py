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


def registry_model_methods():
    """The first registered method of each saved-model class (its
    variants train the same model), in registration order: the methods
    whose models the contract and export tests cover, so that a new
    registered model is tested with no line added."""
    from keras_robult.experiments.registry import METHODS

    first = {}
    for name, spec in METHODS.items():
        if spec.model_class is not None:
            first.setdefault(spec.model_class, name)
    return list(first.values())


def presence_patterns(num_samples, num_modalities):
    """`(num_samples, M)` float mask cycling through every non-empty
    presence pattern (bit m of the pattern = modality m)."""
    patterns = np.array(
        [
            [(p >> m) & 1 for m in range(num_modalities)]
            for p in range(1, 2**num_modalities)
        ],
        "float32",
    )
    return patterns[np.arange(num_samples) % len(patterns)]


def run_multimodal_model_test(model, x, y, tmp_path, atol=1e-6, epochs=2):
    """The contract every multimodal model of the package keeps (after
    keras-hub's `run_task_test`), on a small problem `(x, y)` with every
    modality present:

    - it compiles (XLA on TensorFlow and JAX) and `fit` trains it: the
      loss is finite and trainable weights move;
    - `predict` under every presence pattern gives a finite
      `"prediction"` of `(samples, task.output_dim)` (probabilities that
      sum to 1 for classification);
    - the values of an absent modality never matter (NaN or 1e30 there
      change no prediction);
    - `from_config(get_config())` rebuilds it, and with its weights
      predicts the same;
    - a `.keras` round trip predicts every output the same.

    Returns the predictions under the presence patterns.
    """
    from tests.conftest import JIT_COMPILE

    if y is not None:
        model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
        model(x)  # built, so that the weights before training exist
        before = [np.array(to_numpy(v)) for v in model.trainable_variables]
        history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
        assert np.all(np.isfinite(history.history["loss"])), history.history
        after = [np.array(to_numpy(v)) for v in model.trainable_variables]
        assert any(not np.array_equal(a, b) for a, b in zip(before, after))

    count = len(np.asarray(x[model.modalities[0]]))
    mask = presence_patterns(count, len(model.modalities))
    masked = dict(x, modality_mask=mask)
    out = model.predict(masked, verbose=0)
    prediction = out["prediction"]
    assert prediction.shape == (count, model.task.output_dim)
    assert np.all(np.isfinite(prediction))
    if model.task.name == "classification":
        np.testing.assert_allclose(prediction.sum(-1), 1.0, rtol=1e-5)

    garbage = dict(masked)
    for index, name in enumerate(model.modalities):
        values = np.array(x[name], "float32", copy=True)
        absent = mask[:, index] < 0.5
        values[absent] = 1e30
        values[np.flatnonzero(absent)[:1]] = np.nan
        garbage[name] = values
    np.testing.assert_allclose(
        model.predict(garbage, verbose=0)["prediction"],
        prediction,
        rtol=0,
        atol=atol,
    )

    assert_config_round_trip(model, masked)
    assert_saved_model_predicts_the_same(model, masked, tmp_path, atol=atol)
    return out
