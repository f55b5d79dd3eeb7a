import numpy as np
import pytest

from keras_robult import encoders
from tests.conftest import to_numpy
from tests.testing import assert_config_round_trip


def test_shape_padding_invariance_and_config():
    layer = encoders.SequenceEncoder(8, hidden_dim=16, num_heads=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    out = to_numpy(layer(x))
    assert out.shape == (2, 8)
    # Zero padding at the end of a sequence does not change its encoding.
    padded = np.concatenate([x, np.zeros((2, 2, 3), "float32")], axis=1)
    np.testing.assert_allclose(to_numpy(layer(padded)), out, atol=1e-5)
    assert_config_round_trip(layer, x)


def test_all_zero_sequence_is_finite_and_heads_must_divide():
    layer = encoders.SequenceEncoder(4, hidden_dim=8, num_heads=2)
    assert np.all(np.isfinite(to_numpy(layer(np.zeros((2, 3, 5), "float32")))))
    with pytest.raises(ValueError) as error:
        encoders.SequenceEncoder(4, hidden_dim=10, num_heads=4)
    assert str(error.value) == (
        "`hidden_dim` (10) must be divisible by `num_heads` (4)."
    )
