import numpy as np

from keras_robult import layers
from tests.conftest import to_numpy
from tests.testing import assert_config_round_trip


def test_each_modality_uses_its_own_weights():
    layer = layers.ModalityMLP(3, units=4, hidden_units=(5,))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 6)).astype("float32")
    out = to_numpy(layer(x))
    assert out.shape == (2, 3, 4)
    k0, b0, k1, b1 = [to_numpy(w) for w in layer.weights]
    for m in range(3):
        hidden = np.maximum(x[:, m] @ k0[m] + b0[m], 0)
        np.testing.assert_allclose(
            out[:, m], hidden @ k1[m] + b1[m], rtol=1e-5, atol=1e-6
        )
    assert_config_round_trip(layer, x)
