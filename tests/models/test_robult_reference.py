"""The whole forward pass against the independent NumPy implementation of
`tests/models/numpy_reference.py`.

Run under each backend, this pins every backend to the same numbers: the
prediction rule, the branch wiring of docs/concepts.md and the layers.
"""

import numpy as np
import pytest

import keras_robult
from keras_robult import encoders, tasks
from tests.conftest import make_multimodal, to_numpy
from tests.models import numpy_reference as ref


@pytest.mark.parametrize("full_set", ["fused", "mean"])
@pytest.mark.parametrize("pooling", ["attention", "concat"])
def test_forward_pass_matches_numpy(pooling, full_set):
    model = keras_robult.Robult(
        {
            "m0": encoders.MLPEncoder(8, hidden_units=(8,)),
            "m1": encoders.MLPEncoder(11, hidden_units=(8,)),
            "m2": encoders.MLPEncoder(8, hidden_units=(8,)),
        },
        tasks.Classification(4),
        latent_dim=8,
        redundant_dim=5,
        unique_dim=3,
        head_units=6,
        fusion_pooling=pooling,
        full_set=full_set,
    )
    x, _ = make_multimodal(num_samples=7, num_classes=4)
    x["modality_mask"] = np.array(
        [
            [1, 1, 1],
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
            [1, 1, 0],
            [0, 1, 1],
            [1, 1, 1],
        ],
        "float32",
    )
    out = to_numpy(model(x))
    expected = ref.robult_forward(model, x)
    for key in (
        "modality_latents",
        "fused_latent",
        "shared",
        "redundant",
        "unique",
        "fused_prediction",
        "modality_predictions",
        "prediction",
        "reconstruction",
    ):
        np.testing.assert_allclose(
            out[key], expected[key], rtol=2e-4, atol=2e-5, err_msg=key
        )
