"""Tensor helpers shared by the losses and the layers (`keras.ops` only,
so they run on every backend)."""

import math

from keras import ops

# Logit given to excluded entries before a softmax or log-sum-exp. Finite,
# so that rows without any available entry still give finite values (then
# weighted by 0).
EXCLUDED_LOGIT = -1e9


def safe_divide(numerator, denominator):
    """`numerator / denominator`, with 1 in place of a zero denominator."""
    return numerator / ops.where(denominator > 0, denominator, 1.0)


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """L2 normalisation with a finite gradient at the zero vector."""
    squared = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared, epsilon))


def gelu(x):
    """The exact GELU, `x * Phi(x)` with `Phi` the standard normal CDF,
    written `0.5 * x * (1 + erf(x / sqrt(2)))`: the function of
    `keras.activations.gelu(x, approximate=False)` (to float rounding).
    JAX writes it through `erfc`, whose range reduction XLA:CPU runs about
    three times slower than `erf`'s polynomial (benchmarks/RESULTS.md)."""
    x = ops.convert_to_tensor(x)
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))
