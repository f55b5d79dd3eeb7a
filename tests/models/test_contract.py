"""Every registered model keeps the package's contract
(`tests.testing.run_multimodal_model_test`): a new model that is
registered in `keras_robult.experiments.registry.METHODS` is tested here
with no line added."""

import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.data.standardization import fit_standardization
from keras_robult.experiments.registry import METHODS
from tests.conftest import make_multimodal
from tests.testing import run_multimodal_model_test

# One method per saved-model class: its variants train the same model.
MODEL_METHODS = list(
    {
        spec.model_class: name
        for name, spec in reversed(METHODS.items())
        if spec.model_class is not None
    }.values()
)[::-1]


def test_every_model_class_of_the_registry_is_covered():
    classes = {METHODS[name].model_class for name in MODEL_METHODS}
    registered = {s.model_class for s in METHODS.values() if s.model_class}
    assert classes == registered and len(classes) >= 6


@pytest.mark.parametrize("name", MODEL_METHODS)
def test_registered_model_keeps_the_contract(name, tmp_path):
    x, y = make_multimodal(num_samples=32, dims=(6, 5, 4))
    shapes = {m: x[m].shape[1:] for m in ("m0", "m1", "m2")}
    method = METHODS[name](
        tasks.Classification(3), shapes, fit_standardization(x), latent_dim=16
    )
    model = method.build_model()
    model.set_label_prior(y["label"], y["is_labeled"])
    out = run_multimodal_model_test(model, x, y, tmp_path)
    assert np.all(np.isfinite(out["prediction"]))
