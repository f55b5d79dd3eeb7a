import numpy as np
import pytest

from keras_robult.experiments.redundancy import (
    REDUNDANCY_THRESHOLD,
    _top_correlation,
    view_redundancy,
)


def shared_views(samples=400, seed=0):
    """Two noisy linear views of one 3-d latent, and a third independent
    of both."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(samples, 3))
    return {
        "a": latent @ rng.normal(size=(3, 10))
        + 0.5 * rng.normal(size=(samples, 10)),
        "b": latent @ rng.normal(size=(3, 6))
        + 0.5 * rng.normal(size=(samples, 6)),
        "c": rng.normal(size=(samples, 8)),
    }


def test_top_correlation_is_the_first_canonical_correlation():
    # Reference: the cosines of the principal angles between the column
    # spaces (orthonormal bases by QR), with no ridge.
    x = shared_views()
    a = x["a"] - x["a"].mean(0)
    b = x["b"] - x["b"].mean(0)
    a, b = a / a.std(0), b / b.std(0)
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    expected = np.linalg.svd(qa.T @ qb, compute_uv=False)[0]
    assert _top_correlation(a, b, 1e-9) == pytest.approx(expected, rel=1e-6)
    # The ridge only lowers it.
    assert _top_correlation(a, b, 0.1) < expected


def test_shared_views_are_redundant_independent_ones_are_not():
    x = shared_views()
    assert view_redundancy(x, ["a", "b"]) > 0.5
    independent = view_redundancy(x, ["a", "c"])
    assert abs(independent) < REDUNDANCY_THRESHOLD
    # The mean over the pairs.
    every = view_redundancy(x, ["a", "b", "c"])
    pairs = [view_redundancy(x, pair) for pair in (["a", "b"], ["a", "c"])]
    assert min(pairs) < every < max(pairs)
    # Deterministic.
    assert view_redundancy(x, ["a", "b"]) == view_redundancy(x, ["a", "b"])


def test_only_rows_holding_both_views_count():
    x = shared_views()
    mask = np.ones((400, 2), "float32")
    mask[:200, 1] = 0.0
    garbage = dict(x)
    garbage["b"] = x["b"].copy()
    garbage["b"][:200] = np.random.default_rng(1).normal(size=(200, 6)) * 9
    kept = {"a": x["a"][200:], "b": x["b"][200:]}
    masked = dict(garbage, modality_mask=mask)
    assert view_redundancy(masked, ["a", "b"]) == view_redundancy(
        dict(kept, modality_mask=mask[200:]), ["a", "b"]
    )


def test_wide_views_are_reduced_and_what_cannot_be_measured_is_none():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(300, 2))
    wide = {
        "a": latent @ rng.normal(size=(2, 500)) + rng.normal(size=(300, 500)),
        "b": latent @ rng.normal(size=(2, 300)) + rng.normal(size=(300, 300)),
    }
    assert view_redundancy(wide, ["a", "b"]) > 0.5
    x = shared_views()
    assert view_redundancy(x, ["a"]) is None  # one modality
    images = {"a": x["a"], "b": np.zeros((400, 4, 4, 3), "float32")}
    assert view_redundancy(images, ["a", "b"]) is None
    few = {"a": x["a"][:10], "b": x["b"][:10]}
    assert view_redundancy(few, ["a", "b"]) is None
    constant = {"a": x["a"], "b": np.ones((400, 3))}
    assert view_redundancy(constant, ["a", "b"]) is None
