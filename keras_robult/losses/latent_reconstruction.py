"""Latent reconstruction loss (paper section 2.2, equation 10)."""

from keras import ops

from keras_robult.utils.tensor import l2_normalize, safe_divide


def latent_reconstruction_loss(reconstruction, target, mask=None):
    """Masked mean of `1 - cos(reconstruction, target)^2`.

    The loss is insensitive to the scale and sign of the reconstruction: it
    asks `r^m(U^m, Z^m)` to recover the direction of `H^m`. The caller
    decides which inputs carry gradients (`Robult` stops the gradient into
    `H^m` and `Z^m`).

    Args:
        reconstruction: float tensor `(..., D)`.
        target: float tensor `(..., D)`.
        mask: optional `(...)` tensor, 1 where the pair counts.

    Returns:
        A scalar tensor.
    """
    reconstruction = l2_normalize(ops.cast(reconstruction, "float32"))
    target = l2_normalize(ops.cast(target, "float32"))
    cosine = ops.sum(reconstruction * target, axis=-1)
    per_item = 1.0 - ops.square(cosine)
    if mask is None:
        mask = ops.ones_like(per_item)
    mask = ops.cast(mask, "float32")
    return safe_divide(ops.sum(mask * per_item), ops.sum(mask))
