"""Soft positive-unlabeled contrastive loss (paper section 2.1)."""

from keras import ops

# Logit given to excluded keys before the log-sum-exp. Finite, so that rows
# without any available key still give finite values (then weighted by 0).
_EXCLUDED_LOGIT = -1e9


def safe_divide(numerator, denominator):
    """`numerator / denominator`, with 1 in place of a zero denominator."""
    return numerator / ops.where(denominator > 0, denominator, 1.0)


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """L2 normalisation with a finite gradient at the zero vector."""
    squared = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared, epsilon))


def cosine_similarity_matrix(anchors, keys):
    """Cosine similarities between anchors `(..., B, D)` and keys
    `(..., B', D)`, shape `(..., B, B')`."""
    anchors = l2_normalize(ops.cast(anchors, "float32"))
    keys = l2_normalize(ops.cast(keys, "float32"))
    return ops.matmul(anchors, ops.swapaxes(keys, -1, -2))


def soft_pu_loss(
    similarity,
    is_labeled,
    same_class,
    pair_probability,
    anchor_mask=None,
    key_mask=None,
    temperature=1.0,
    rbf_bandwidth=0.3,
    min_pair_probability=0.0,
):
    """Labeled and unlabeled terms of the soft PU contrastive loss.

    Rows of `similarity` are anchors `j` (fused representations `s_j`),
    columns are keys `k` (unimodal representations `z_k`). With
    `log v_jk = sim_jk / tau - logsumexp_{available k'} sim_jk' / tau`:

    - known positives `K_jk = [j == k] + [j != k] l_j l_k same_jk` over
      available pairs; `L_lb` is the mean over anchors with a known positive
      of `sum_k K_jk (-log v_jk) / sum_k K_jk`;
    - the reference similarity `r_j` is the mean similarity to the known
      positives and `w_jk = exp(-(sim_jk - r_j)^2 / (2 sigma^2))` (no
      gradient);
    - candidate pairs `U_jk = [j != k] (1 - l_j l_k)` over available pairs,
      weighted by the soft same-class probability `q_jk` (zeroed below
      `min_pair_probability`); `L_ulb` is the mean over anchors that have a
      known positive and a candidate of
      `sum_k U_jk q_jk w_jk (-log v_jk) / sum_k U_jk q_jk`.

    Leading axes of `similarity` (e.g. one per modality) are kept: the losses
    are computed independently for each `(B, B)` slice.

    Args:
        similarity: float tensor `(..., B, B)`, cosine similarities.
        is_labeled: `(B,)`, 1 for labeled samples.
        same_class: `(B, B)`, 1 where two samples have the same label (only
            read where both are labeled).
        pair_probability: `(B, B)`, soft probability `q_jk` that `j` and `k`
            share a class. Treated as a constant.
        anchor_mask: `(..., B)`, 1 where the anchor is available. Defaults to
            all ones.
        key_mask: `(..., B)`, 1 where the key is available; unavailable keys
            are also excluded from the softmax denominator. Defaults to all
            ones.
        temperature: float, `tau`.
        rbf_bandwidth: float, `sigma` of the RBF weight on the cosine scale.
        min_pair_probability: float, `q_jk` below it is set to 0.

    Returns:
        Tuple `(loss_lb, loss_ulb)` of tensors of shape `similarity.shape[:-2]`.
    """
    similarity = ops.cast(similarity, "float32")
    batch_size = ops.shape(similarity)[-1]
    ones = ops.ones(ops.shape(similarity)[:-1], "float32")
    anchor_mask = ones if anchor_mask is None else anchor_mask
    key_mask = ones if key_mask is None else key_mask
    anchor = ops.cast(anchor_mask, "float32")[..., :, None]
    key = ops.cast(key_mask, "float32")[..., None, :]
    pair = anchor * key

    eye = ops.eye(batch_size, dtype="float32")
    labeled = ops.cast(is_labeled, "float32")
    both_labeled = labeled[:, None] * labeled[None, :]

    logits = similarity / temperature
    masked_logits = ops.where(key > 0, logits, _EXCLUDED_LOGIT)
    log_norm = ops.logsumexp(masked_logits, axis=-1, keepdims=True)
    neg_log_v = log_norm - logits

    same_class = ops.cast(same_class, "float32")
    positives = (eye + (1.0 - eye) * both_labeled * same_class) * pair
    num_positives = ops.sum(positives, axis=-1)
    has_positive = ops.cast(num_positives > 0, "float32")
    loss_lb_anchor = safe_divide(
        ops.sum(positives * neg_log_v, axis=-1), num_positives
    )
    loss_lb = safe_divide(
        ops.sum(has_positive * loss_lb_anchor, axis=-1),
        ops.sum(has_positive, axis=-1),
    )

    reference = safe_divide(
        ops.sum(positives * similarity, axis=-1), num_positives
    )
    weights = ops.exp(
        -ops.square(similarity - reference[..., None])
        / (2.0 * rbf_bandwidth**2)
    )
    weights = ops.stop_gradient(weights)

    q = ops.stop_gradient(ops.cast(pair_probability, "float32"))
    q = ops.where(q >= min_pair_probability, q, 0.0)
    candidates = (1.0 - eye) * (1.0 - both_labeled) * pair * q
    candidate_mass = ops.sum(candidates, axis=-1)
    loss_ulb_anchor = safe_divide(
        ops.sum(candidates * weights * neg_log_v, axis=-1), candidate_mass
    )
    valid = ops.cast(candidate_mass > 0, "float32") * has_positive
    loss_ulb = safe_divide(
        ops.sum(valid * loss_ulb_anchor, axis=-1), ops.sum(valid, axis=-1)
    )
    return loss_lb, loss_ulb
