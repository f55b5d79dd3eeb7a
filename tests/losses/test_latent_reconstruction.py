import numpy as np

from keras_robult import losses
from tests.conftest import to_numpy


def test_matches_numpy_reference_with_mask():
    rng = np.random.default_rng(0)
    rec = rng.normal(size=(5, 3, 8)).astype("float32")
    target = rng.normal(size=(5, 3, 8)).astype("float32")
    mask = (rng.uniform(size=(5, 3)) < 0.6).astype("float32")
    cos = np.sum(rec * target, -1) / (
        np.linalg.norm(rec, axis=-1) * np.linalg.norm(target, axis=-1)
    )
    expected = np.sum(mask * (1 - cos**2)) / np.sum(mask)
    value = to_numpy(losses.latent_reconstruction_loss(rec, target, mask))
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_scale_and_sign_invariant_and_zero_at_perfect_reconstruction():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(4, 8)).astype("float32")
    assert (
        float(
            to_numpy(losses.latent_reconstruction_loss(-3.0 * target, target))
        )
        < 1e-6
    )


def test_empty_mask_is_zero_and_zero_vectors_are_finite():
    x = np.zeros((2, 2, 4), "float32")
    value = losses.latent_reconstruction_loss(x, x, np.zeros((2, 2)))
    assert float(to_numpy(value)) == 0.0
    value = losses.latent_reconstruction_loss(x, x)
    assert np.isfinite(float(to_numpy(value)))
