import numpy as np
import pytest

from keras_robult import losses
from tests.conftest import to_numpy


def reference_gmc(joint, modalities, tau):
    """Transcription of GMC's `infonce` (Poklukar et al. 2022) in NumPy."""

    def norm(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    joint = norm(joint)
    batch = joint.shape[0]
    total = np.zeros(2 * batch)
    for mod in modalities:
        mod = norm(mod)
        out = np.concatenate([joint, mod], axis=0)
        sim = np.exp(out @ out.T / tau)
        sim = sim[~np.eye(2 * batch, dtype=bool)].reshape(2 * batch, -1)
        pos = np.exp(np.sum(joint * mod, axis=-1) / tau)
        pos = np.concatenate([pos, pos])
        total += -np.log(pos / sim.sum(axis=-1))
    return total.mean()


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_reference_implementation(seed):
    rng = np.random.default_rng(seed)
    joint = rng.normal(size=(6, 4)).astype("float32")
    mods = rng.normal(size=(3, 6, 4)).astype("float32")
    value = to_numpy(losses.gmc_contrastive_loss(joint, mods, 0.3))
    np.testing.assert_allclose(
        value, reference_gmc(joint, mods, 0.3), rtol=1e-5
    )


def test_masked_sample_equals_dropping_it_for_that_modality():
    rng = np.random.default_rng(2)
    joint = rng.normal(size=(5, 4)).astype("float32")
    mods = rng.normal(size=(2, 5, 4)).astype("float32")
    mask = np.ones((2, 5), "float32")
    mask[1, 3] = 0
    value = to_numpy(losses.gmc_contrastive_loss(joint, mods, 0.3, mask))
    keep = np.arange(5) != 3
    expected = reference_gmc(joint, mods[:1], 0.3) + reference_gmc(
        joint[keep], mods[1:, keep], 0.3
    )
    np.testing.assert_allclose(value, expected, rtol=1e-5)
