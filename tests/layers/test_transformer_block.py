import keras
import numpy as np
import pytest

from keras_robult import layers
from tests.conftest import to_numpy
from tests.testing import assert_config_round_trip


def reference_block(block, tokens, mask):
    """The block in NumPy from its weights: pre-LayerNorm attention
    (heads of `width / num_heads`, masked softmax) and GELU MLP."""
    from scipy.special import erf

    def norm(x, layer):
        mean = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True)
        gamma, beta = (to_numpy(w) for w in layer.weights)
        return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta

    attention = block.attention
    batch, count, width = tokens.shape
    heads = block.num_heads
    x = norm(tokens, block.attention_norm)

    def project(dense):
        kernel, bias = (to_numpy(w) for w in dense.weights)
        return np.einsum("btd,dhk->bthk", x, kernel) + bias

    q, k, v = (
        project(attention.query_dense),
        project(attention.key_dense),
        project(attention.value_dense),
    )
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(width // heads)
    if mask is not None:
        scores = np.where(mask[:, None], scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = np.einsum("bhts,bshk->bthk", weights, v)
    kernel, bias = (to_numpy(w) for w in attention.output_dense.weights)
    tokens = tokens + np.einsum("bthk,hkd->btd", out, kernel) + bias
    x = norm(tokens, block.mlp_norm)
    w1, b1 = (to_numpy(w) for w in block.mlp_hidden.weights)
    w2, b2 = (to_numpy(w) for w in block.mlp_output.weights)
    hidden = x @ w1 + b1
    hidden = 0.5 * hidden * (1 + erf(hidden / np.sqrt(2)))
    return tokens + hidden @ w2 + b2


@pytest.mark.parametrize("masked", [False, True])
def test_the_block_is_the_transformer_formula(masked):
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(3, 5, 8)).astype("float32")
    mask = None
    if masked:
        mask = rng.uniform(size=(3, 5, 5)) > 0.4
        mask[:, :, 0] = True  # every query sees at least one key
    block = layers.TransformerBlock(num_heads=2, mlp_ratio=2.0)
    block.build(tokens.shape)
    for weight in block.weights:  # non-trivial norms and biases
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.5)
    got = to_numpy(block(tokens, attention_mask=mask))
    expected = reference_block(block, tokens.astype("float64"), mask)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # The Keras layer's own attention gives the same values.
    x = block.attention_norm(tokens)
    np.testing.assert_allclose(
        to_numpy(block.self_attention(x, mask)),
        to_numpy(block.attention(x, x, attention_mask=mask)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_attention_dropout_and_config():
    tokens = np.random.default_rng(1).normal(size=(2, 4, 8)).astype("float32")
    block = layers.TransformerBlock(num_heads=4, dropout=0.5)
    out = to_numpy(block(tokens))  # inference: no dropout
    np.testing.assert_allclose(
        out, reference_block(block, tokens, None), rtol=1e-4, atol=1e-4
    )
    trained = to_numpy(block(tokens, training=True))
    assert not np.allclose(trained, out)
    assert_config_round_trip(block, tokens)
    with pytest.raises(ValueError, match="multiple of num_heads=3"):
        layers.TransformerBlock(num_heads=3).build((None, 4, 8))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_query_range_gives_those_outputs_of_the_whole_block(dropout):
    """`query_range=(start, stop)` computes `block(tokens)[:, start:stop]`
    (every token still a key and a value), against the NumPy block."""
    rng = np.random.default_rng(2)
    tokens = rng.normal(size=(3, 7, 8)).astype("float32")
    mask = rng.uniform(size=(3, 7, 7)) > 0.4
    mask[:, :, 0] = True
    block = layers.TransformerBlock(num_heads=2, mlp_ratio=2.0, dropout=dropout)
    block.build(tokens.shape)
    for weight in block.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.5)
    expected = reference_block(block, tokens.astype("float64"), mask)
    for start, stop in ((2, 5), (0, 1), (6, 7)):
        got = to_numpy(
            block(tokens, attention_mask=mask, query_range=(start, stop))
        )
        assert got.shape == (3, stop - start, 8)
        symbolic = block(keras.Input((7, 8)), query_range=(start, stop))
        assert symbolic.shape == (None, stop - start, 8)
        np.testing.assert_allclose(
            got, expected[:, start:stop], rtol=1e-4, atol=1e-4
        )
