"""Soft positive-unlabeled contrastive loss (paper section 2.1)."""

from keras import ops

from keras_robult.utils.tensor import (
    EXCLUDED_LOGIT,
    l2_normalize,
    safe_divide,
)


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
        similarity: float tensor `(..., B, B)`, cosine similarities, or a
            list of `(B, B)` tensors (one leading axis; avoids stacking
            slices computed apart).
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
    if isinstance(similarity, (list, tuple)):
        slices = [ops.cast(slice_, "float32") for slice_ in similarity]
        leading = (len(slices),)
    else:
        similarity = ops.cast(similarity, "float32")
        leading = tuple(similarity.shape[:-2])
        batch_size = ops.shape(similarity)[-1]
        flat = ops.reshape(similarity, (-1, batch_size, batch_size))
        # `split`, not indexing: the gradient of a split is one concatenation,
        # that of each index a zero-padded copy of the whole tensor.
        slices = [
            ops.squeeze(slice_, 0)
            for slice_ in ops.split(flat, flat.shape[0], axis=0)
        ]
    num_slices = len(slices)
    ones = ops.ones_like(slices[0][0])  # (B,), the batch size may be dynamic
    broadcast = ops.zeros(leading + (1,), "float32")

    def per_slice(mask):
        mask = ones if mask is None else ops.cast(mask, "float32")
        return ops.reshape(mask + broadcast, (num_slices, -1))

    anchor_mask = per_slice(anchor_mask)
    key_mask = per_slice(key_mask)

    # The (B, B) pair weights shared by every slice, without the diagonal
    # (added back from (B,) vectors: building `[j == k]` as a (B, B) array
    # costs XLA:CPU an iota and a comparison per element in every fusion
    # that reads it). Known positives `[j == k] + [j != k] l_j l_k same_jk`
    # are `both_same + diag(1 - both_same_jj)`; candidates
    # `[j != k] (1 - l_j l_k) q_jk` are `unlabeled_q - diag(unlabeled_q_jj)`.
    labeled = ops.cast(is_labeled, "float32")
    both_labeled = labeled[:, None] * labeled[None, :]
    same_class = ops.cast(same_class, "float32")
    both_same = both_labeled * same_class
    positive_diagonal = 1.0 - labeled * ops.diagonal(same_class)
    q = ops.stop_gradient(ops.cast(pair_probability, "float32"))
    q = ops.where(q >= min_pair_probability, q, 0.0)
    unlabeled_q = (1.0 - both_labeled) * q
    candidate_diagonal = (1.0 - labeled) * ops.diagonal(q)
    # Available positive / candidate mass of every (slice, anchor):
    # sum_k P_jk key_k, as one (B, B) x (B, slices) product.
    key_columns = ops.transpose(key_mask)
    positive_mass = ops.transpose(ops.matmul(both_same, key_columns))
    positive_mass += positive_diagonal * key_mask
    candidate_mass = ops.transpose(ops.matmul(unlabeled_q, key_columns))
    candidate_mass -= candidate_diagonal * key_mask

    loss_lb, loss_ulb = [], []
    for i in range(num_slices):
        lb, ulb = _soft_pu_slice(
            slices[i],
            anchor_mask[i],
            key_mask[i],
            (both_same, positive_diagonal),
            (unlabeled_q, candidate_diagonal),
            positive_mass[i],
            candidate_mass[i],
            temperature,
            rbf_bandwidth,
        )
        loss_lb.append(lb)
        loss_ulb.append(ulb)
    return (
        ops.reshape(ops.stack(loss_lb), leading),
        ops.reshape(ops.stack(loss_ulb), leading),
    )


def _soft_pu_slice(
    similarity,
    anchor,
    key,
    positives,
    candidates,
    positive_mass,
    candidate_mass,
    temperature,
    rbf_bandwidth,
):
    """`(L_lb, L_ulb)` of one `(B, B)` similarity slice.

    `positives` and `candidates` are `(off-diagonal part (B, B), diagonal
    (B,))` pairs. Every `(B, B)` operand here is a plain 2-D array (no
    broadcast of a `(B, B)` matrix over a leading axis, which XLA:CPU emits
    as a slow gather-like loop), and the sums over keys are written with
    `sum_k W_jk (-log v_jk) = log_norm_j sum_k W_jk - sum_k W_jk logit_jk`,
    so `-log v` is never materialised.
    """
    key_row = key[None, :]
    logits = similarity / temperature
    log_norm = ops.logsumexp(
        ops.where(key_row > 0, logits, EXCLUDED_LOGIT), axis=-1
    )
    diagonal = ops.diagonal(similarity)
    positive_similarity = (
        ops.sum(positives[0] * key_row * similarity, axis=-1)
        + positives[1] * key * diagonal
    )
    has_positive = ops.cast(anchor * positive_mass > 0, "float32")
    loss_lb_anchor = safe_divide(
        log_norm * positive_mass - positive_similarity / temperature,
        positive_mass,
    )
    loss_lb = safe_divide(
        ops.sum(has_positive * loss_lb_anchor), ops.sum(has_positive)
    )

    reference = ops.stop_gradient(
        safe_divide(positive_similarity, positive_mass)
    )

    def rbf(values, centre):
        return ops.exp(
            -ops.square(ops.stop_gradient(values) - centre)
            / (2.0 * rbf_bandwidth**2)
        )

    weighted = ops.stop_gradient(
        candidates[0] * key_row * rbf(similarity, reference[:, None])
    )
    weighted_diagonal = ops.stop_gradient(
        candidates[1] * key * rbf(diagonal, reference)
    )
    loss_ulb_anchor = safe_divide(
        log_norm * (ops.sum(weighted, axis=-1) - weighted_diagonal)
        - (
            ops.sum(weighted * similarity, axis=-1)
            - weighted_diagonal * diagonal
        )
        / temperature,
        candidate_mass,
    )
    valid = ops.cast(anchor * candidate_mass > 0, "float32") * has_positive
    loss_ulb = safe_divide(ops.sum(valid * loss_ulb_anchor), ops.sum(valid))
    return loss_lb, loss_ulb
