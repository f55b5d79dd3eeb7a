"""GMC's joint-modality NT-Xent loss (Poklukar et al., ICML 2022)."""

from keras import ops

from keras_robult.utils.tensor import (
    EXCLUDED_LOGIT,
    l2_normalize,
    safe_divide,
)


def gmc_contrastive_loss(joint, modalities, temperature=0.3, mask=None):
    """NT-Xent between the joint latent and each modality's latent.

    For modality `m`, the `2B` representations `[z^0_1..z^0_B, z^m_1..z^m_B]`
    (L2-normalised) form the candidates; the positive of `z^0_j` is `z^m_j`
    and vice versa, every other representation but itself is a negative:
    `l_i = -sim(i, pos(i)) / tau + log sum_{k != i} exp(sim(i, k) / tau)`.
    The loss is `sum_m mean_i l_i`, as in the reference implementation.
    With a mask, a sample whose modality `m` is missing leaves the
    modality-`m` term (as anchor, positive and negative).

    Args:
        joint: `(B, D)` joint latents (normalised here).
        modalities: `(M, B, D)` modality latents (normalised here).
        temperature: float.
        mask: optional `(M, B)` availability of each modality.

    Returns:
        A scalar tensor.
    """
    joint = l2_normalize(ops.cast(joint, "float32"))
    modalities = l2_normalize(ops.cast(modalities, "float32"))
    num_modalities = ops.shape(modalities)[0]
    batch_size = ops.shape(joint)[0]
    if mask is None:
        mask = ops.ones((num_modalities, batch_size), "float32")
    mask = ops.cast(mask, "float32")
    joint = ops.broadcast_to(joint[None], ops.shape(modalities))
    both = ops.concatenate([joint, modalities], axis=1)  # (M, 2B, D)
    valid = ops.concatenate([mask, mask], axis=1)  # (M, 2B)
    logits = ops.matmul(both, ops.swapaxes(both, -1, -2)) / temperature
    eye = ops.eye(2 * batch_size, dtype="float32")
    keep = (1.0 - eye)[None] * valid[:, None, :]
    log_norm = ops.logsumexp(
        ops.where(keep > 0, logits, EXCLUDED_LOGIT), axis=-1
    )
    positive = ops.sum(joint * modalities, axis=-1) / temperature  # (M, B)
    positive = ops.concatenate([positive, positive], axis=1)
    per_row = (log_norm - positive) * valid
    per_modality = safe_divide(
        ops.sum(per_row, axis=-1), ops.sum(valid, axis=-1)
    )
    return ops.sum(per_modality)
