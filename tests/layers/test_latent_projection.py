import numpy as np
import pytest

from keras_robult import layers
from tests.conftest import to_numpy
from tests.testing import assert_config_round_trip


def test_identity_when_widths_match_dense_otherwise():
    same = layers.LatentProjection(4)
    x = np.arange(8, dtype="float32").reshape(2, 4)
    np.testing.assert_array_equal(to_numpy(same(x)), x)
    assert not same.weights
    other = layers.LatentProjection(3)
    assert to_numpy(other(x)).shape == (2, 3)
    assert len(other.weights) == 2
    assert_config_round_trip(other, x)


def test_rejects_non_vector_encoder_output():
    with pytest.raises(ValueError, match="one vector per sample"):
        layers.LatentProjection(3)(np.zeros((2, 4, 5), "float32"))
