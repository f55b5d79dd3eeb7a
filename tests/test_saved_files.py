"""Model files saved by an earlier version load and predict the same.

`tests/fixtures/*.keras` were written by `tests/fixtures/make_fixtures.py`
before the package was reorganised into sub-packages (the module paths
of its classes changed; their registered names did not).
"""

import os

import keras
import numpy as np
import pytest

import keras_robult  # noqa: F401  (registers the serialisable classes)
from keras_robult.models.multimodal_model import MultimodalModel

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.mark.parametrize(
    "name, cls",
    [("robult", "Robult"), ("gmc", "GMC"), ("actionmae", "ActionMAE")],
)
def test_a_model_file_of_an_earlier_version_predicts_the_same(name, cls):
    # Not compiled: the files were saved with `jit_compile="auto"`, which
    # on torch means torch.compile (minutes on CPU) for the same numbers.
    path = os.path.join(FIXTURES, f"{name}.keras")
    model = keras.saving.load_model(path, compile=False)
    assert isinstance(model, MultimodalModel)
    assert type(model).__name__ == cls
    inputs = dict(np.load(os.path.join(FIXTURES, "inputs.npz")))
    expected = np.load(os.path.join(FIXTURES, f"{name}_predictions.npz"))
    outputs = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(
        np.asarray(outputs["prediction"]),
        expected["prediction"],
        rtol=1e-4,
        atol=1e-5,
    )
    # The fixture's inputs miss modalities: the predictions differ per row.
    assert np.ptp(expected["prediction"], axis=0).max() > 1e-3
