import numpy as np
import pytest

from keras_robult import layers
from tests.conftest import to_numpy
from tests.testing import assert_config_round_trip


@pytest.mark.parametrize("pooling", ["attention", "concat"])
def test_absent_modalities_have_no_influence(pooling):
    layer = layers.FusionEncoder(8, hidden_units=(16,), pooling=pooling)
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(4, 3, 6)).astype("float32")
    mask = np.array([[1, 0, 1], [1, 1, 1], [0, 1, 0], [1, 1, 0]], "float32")
    out = to_numpy(layer(latents, mask))
    assert out.shape == (4, 8)
    changed = latents.copy()
    changed[mask == 0] = rng.normal(size=changed[mask == 0].shape) * 100
    np.testing.assert_allclose(to_numpy(layer(changed, mask)), out, rtol=1e-6)
    # A present modality does influence the output.
    changed = latents.copy()
    changed[1, 2] += 1.0
    assert not np.allclose(to_numpy(layer(changed, mask))[1], out[1])


def test_order_of_modalities_matters_and_config():
    layer = layers.FusionEncoder(4, hidden_units=(), attention_units=3)
    latents = np.random.default_rng(1).normal(size=(2, 2, 5)).astype("float32")
    mask = np.ones((2, 2), "float32")
    out = to_numpy(layer(latents, mask))
    swapped = to_numpy(layer(latents[:, ::-1], mask))
    assert not np.allclose(out, swapped)  # per-modality token weights
    assert_config_round_trip(layer, (latents, mask))


def test_unknown_pooling():
    with pytest.raises(ValueError) as error:
        layers.FusionEncoder(4, pooling="max")
    assert str(error.value) == (
        "`pooling` must be 'attention' or 'concat'; received 'max'."
    )
