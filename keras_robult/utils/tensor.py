"""Tensor helpers shared by the losses and the layers (`keras.ops` only,
so they run on every backend)."""

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
