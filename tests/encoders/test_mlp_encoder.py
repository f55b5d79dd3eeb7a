import keras
import numpy as np

from keras_robult import encoders
from tests.conftest import to_numpy
from tests.testing import assert_config_round_trip


def test_output_shape_any_rank_and_config_round_trip():
    layer = encoders.MLPEncoder(12, hidden_units=(8, 6), dropout=0.1)
    assert to_numpy(layer(np.zeros((4, 5), "float32"))).shape == (4, 12)
    assert to_numpy(layer(np.zeros((4, 3, 5), "float32"))).shape == (4, 3, 12)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    assert_config_round_trip(layer, x)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert restored.built  # rebuilt from the serialised build config
    restored.set_weights(layer.get_weights())
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(restored(x)), to_numpy(layer(x)), rtol=1e-6
    )


def test_dropout_only_in_training():
    layer = encoders.MLPEncoder(4, hidden_units=(64,), dropout=0.5)
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(to_numpy(layer(x)), to_numpy(layer(x)))
    assert not np.array_equal(
        to_numpy(layer(x, training=True)), to_numpy(layer(x))
    )
