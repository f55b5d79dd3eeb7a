import keras
import numpy as np
import pytest
from keras import ops

from keras_robult import losses, tasks
from tests.conftest import to_numpy


def reference_soft_pu(
    sim, labeled, same, q, anchor, key, tau, sigma, min_q=0.0, w_sim=None
):
    """Loop-by-loop NumPy soft-PU loss of docs/concepts.md. With
    `w_sim`, the reference similarity and the RBF weights are computed from
    it (held constant, as the package's stop-gradient does)."""
    batch = sim.shape[0]
    w_sim = sim if w_sim is None else w_sim
    lb_terms, ulb_terms = [], []
    for j in range(batch):
        if not anchor[j]:
            continue
        avail = [k for k in range(batch) if key[k]]
        denom = np.log(np.sum([np.exp(sim[j, k] / tau) for k in avail]))
        neg_log_v = {k: denom - sim[j, k] / tau for k in avail}
        positives = [
            k
            for k in avail
            if k == j or (labeled[j] and labeled[k] and same[j, k])
        ]
        if not positives:
            continue
        lb_terms.append(np.mean([neg_log_v[k] for k in positives]))
        ref = np.mean([w_sim[j, k] for k in positives])
        num, den = 0.0, 0.0
        for k in avail:
            if k == j or (labeled[j] and labeled[k]):
                continue
            qjk = q[j, k] if q[j, k] >= min_q else 0.0
            w = np.exp(-((w_sim[j, k] - ref) ** 2) / (2 * sigma**2))
            num += qjk * w * neg_log_v[k]
            den += qjk
        if den > 0:
            ulb_terms.append(num / den)
    lb = np.mean(lb_terms) if lb_terms else 0.0
    ulb = np.mean(ulb_terms) if ulb_terms else 0.0
    return lb, ulb


def _case(task, seed, batch=7):
    rng = np.random.default_rng(seed)
    if isinstance(task, tasks.Classification):
        labels = rng.integers(0, task.num_classes, batch)
        soft = rng.dirichlet(np.ones(task.num_classes), batch)
        label_dist = np.eye(task.num_classes)[labels]
    elif isinstance(task, tasks.Regression):
        labels = rng.uniform(-3.5, 3.5, batch).astype("float32")
        soft = to_numpy(
            task.soft_targets(rng.uniform(-3, 3, (batch, 1)).astype("float32"))
        )
        bins = np.round(np.clip(labels, -3, 3)).astype(int) + 3
        label_dist = np.eye(7)[bins]
    else:
        labels = rng.integers(0, 2, (batch, task.num_labels))
        labels[1] = labels[0]  # at least one identical pair
        soft = rng.uniform(0.05, 0.95, (batch, task.num_labels))
        label_dist = labels.astype("float64")
    labeled = (rng.uniform(size=batch) < 0.5).astype("float32")
    labeled[:2] = 1.0
    return labels, label_dist, soft, labeled


def _numpy_pair_probability(task, p, r):
    if isinstance(task, tasks.MultiLabel):
        agree = p[:, None] * r[None] + (1 - p[:, None]) * (1 - r[None])
        return np.prod(agree, axis=-1)
    return p @ r.T


@pytest.mark.parametrize(
    "task",
    [tasks.Classification(3), tasks.Regression(), tasks.MultiLabel(4)],
    ids=["classification", "regression", "multilabel"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_pu_matches_numpy_reference(task, seed):
    rng = np.random.default_rng(100 + seed)
    labels, label_dist, soft, labeled = _case(task, seed)
    batch = labeled.shape[0]
    p = np.where(labeled[:, None] > 0, label_dist, soft)
    same = _numpy_pair_probability(task, label_dist, label_dist) > 0.5
    q = _numpy_pair_probability(task, p, p)
    # The task's own label distribution and pair probability agree.
    np.testing.assert_allclose(
        to_numpy(task.label_distribution(labels)), label_dist, atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(
            task.pair_probability(p.astype("float32"), p.astype("float32"))
        ),
        q,
        rtol=1e-4,
        atol=1e-6,
    )
    sim = np.clip(rng.normal(scale=0.5, size=(batch, batch)), -1, 1)
    anchor = np.ones(batch, "float32")
    key = (rng.uniform(size=batch) < 0.8).astype("float32")
    key[0] = 1.0
    anchor[3] = 0.0
    # seed > 0 also exercises the min_pair_probability cut-off.
    tau, sigma = 0.5, 0.3
    min_q = float(np.quantile(q, 0.3)) if seed else 0.0
    lb, ulb = losses.soft_pu_loss(
        sim.astype("float32"),
        labeled,
        same.astype("float32"),
        q.astype("float32"),
        anchor_mask=anchor,
        key_mask=key,
        temperature=tau,
        rbf_bandwidth=sigma,
        min_pair_probability=min_q,
    )
    ref_lb, ref_ulb = reference_soft_pu(
        sim, labeled, same, q, anchor, key, tau, sigma, min_q
    )
    assert ref_lb > 0 and ref_ulb > 0
    np.testing.assert_allclose(float(to_numpy(lb)), ref_lb, atol=1e-5)
    np.testing.assert_allclose(float(to_numpy(ulb)), ref_ulb, atol=1e-5)


def test_soft_pu_leading_axis_is_per_slice():
    rng = np.random.default_rng(0)
    sim = rng.uniform(-1, 1, (3, 5, 5)).astype("float32")
    labeled = np.array([1, 1, 0, 0, 1], "float32")
    same = (rng.uniform(size=(5, 5)) < 0.5).astype("float32")
    same = np.maximum(same, same.T)
    q = rng.uniform(size=(5, 5)).astype("float32")
    keys = (rng.uniform(size=(3, 5)) < 0.7).astype("float32")
    keys[:, 0] = 1
    lb, ulb = losses.soft_pu_loss(sim, labeled, same, q, key_mask=keys)
    for m in range(3):
        lb_m, ulb_m = losses.soft_pu_loss(
            sim[m], labeled, same, q, key_mask=keys[m]
        )
        np.testing.assert_allclose(to_numpy(lb)[m], to_numpy(lb_m), atol=1e-6)
        np.testing.assert_allclose(to_numpy(ulb)[m], to_numpy(ulb_m), atol=1e-6)


def _masked_case(seed=4, slices=3, batch=6):
    rng = np.random.default_rng(seed)
    sim = rng.uniform(-1, 1, (slices, batch, batch)).astype("float32")
    labeled = np.array([1, 1, 0, 1, 0, 0], "float32")[:batch]
    labels = rng.integers(0, 2, batch)
    same = (labels[:, None] == labels[None, :]).astype("float32")
    q = rng.uniform(size=(batch, batch)).astype("float32")
    q = 0.5 * (q + q.T)
    keys = (rng.uniform(size=(slices, batch)) < 0.7).astype("float32")
    keys[:, 0] = 1
    anchors = np.ones(batch, "float32")
    anchors[-1] = 0
    return sim, labeled, same, q, anchors, keys


def test_soft_pu_gradient_matches_reference_differences():
    # Both terms, with masked keys and anchors, partial labels, a leading
    # axis and a probability threshold: the gradient of mean(L_lb + L_ulb)
    # equals central differences of the NumPy reference with the RBF
    # weights frozen at the current similarities (they carry no gradient).
    sim, labeled, same, q, anchors, keys = _masked_case()
    tau, sigma, min_q = 0.4, 0.3, 0.3
    options = dict(temperature=tau, rbf_bandwidth=sigma)

    def reference(s):
        return np.mean(
            [
                sum(
                    reference_soft_pu(
                        s[m].astype("float64"),
                        labeled,
                        same,
                        q,
                        anchors,
                        keys[m],
                        tau,
                        sigma,
                        min_q,
                        w_sim=sim[m],
                    )
                )
                for m in range(len(s))
            ]
        )

    eps = 1e-4
    numeric = np.zeros(sim.shape)
    for index in np.ndindex(*sim.shape):
        step = np.zeros(sim.shape)
        step[index] = eps
        numeric[index] = (reference(sim + step) - reference(sim - step)) / (
            2 * eps
        )

    def total(s):
        lb, ulb = losses.soft_pu_loss(
            s,
            labeled,
            same,
            q,
            anchor_mask=anchors,
            key_mask=keys,
            min_pair_probability=min_q,
            **options,
        )
        return ops.mean(lb + ulb)

    np.testing.assert_allclose(_gradient(total, sim), numeric, atol=2e-4)
    assert np.abs(numeric).max() > 0.05  # the test reads real gradients


def test_soft_pu_list_of_slices_equals_the_stacked_tensor():
    # Robult passes one (B, B) similarity per modality as a list.
    sim, labeled, same, q, anchors, keys = _masked_case(seed=5)

    def stacked(s):
        lb, ulb = losses.soft_pu_loss(
            s, labeled, same, q, anchor_mask=anchors, key_mask=keys
        )
        return lb, ulb

    def listed(s):
        slices = [s[m] for m in range(s.shape[0])]
        lb, ulb = losses.soft_pu_loss(
            slices, labeled, same, q, anchor_mask=anchors, key_mask=keys
        )
        return lb, ulb

    tensor = ops.convert_to_tensor(sim)
    for a, b in zip(stacked(tensor), listed(tensor)):
        assert tuple(ops.shape(b)) == (3,)
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=1e-6)
    np.testing.assert_allclose(
        _gradient(lambda s: ops.sum(sum(stacked(s))), sim),
        _gradient(lambda s: ops.sum(sum(listed(s))), sim),
        atol=1e-6,
    )


def test_known_positive_pairs_only_between_labeled_samples():
    # Two labeled samples of the same class: the pair is a positive, so
    # making them similar lowers L_lb; an unlabeled sample never is.
    labeled = np.array([1, 1, 0], "float32")
    same = np.ones((3, 3), "float32")
    q = np.zeros((3, 3), "float32")
    far = np.array([[1, -1, 0.9], [-1, 1, 0.9], [0.9, 0.9, 1]], "float32")
    near = np.array([[1, 1, -1], [1, 1, -1], [-1, -1, 1]], "float32")
    lb_far, ulb_far = losses.soft_pu_loss(far, labeled, same, q)
    lb_near, _ = losses.soft_pu_loss(near, labeled, same, q)
    assert float(to_numpy(lb_near)) < float(to_numpy(lb_far))
    assert float(to_numpy(ulb_far)) == 0.0  # q = 0: no candidate mass


def test_rbf_weight_carries_no_gradient():
    # d L_ulb / d sim must equal the gradient with w treated as a constant:
    # checked by comparing against the analytic gradient of the NumPy
    # reference with w frozen, through finite differences of a frozen-w
    # surrogate.
    rng = np.random.default_rng(3)
    sim = rng.uniform(-0.5, 0.5, (4, 4))
    labeled = np.array([1, 0, 0, 0], "float32")
    same = np.ones((4, 4), "float32")
    q = rng.uniform(0.2, 1, (4, 4)).astype("float32")
    tau, sigma = 0.5, 0.3

    def frozen(s, w_sim):
        # L_ulb with w computed from w_sim (constant) and log v from s.
        total, count = 0.0, 0
        for j in range(4):
            ref = w_sim[j, j]
            lse = np.log(np.sum(np.exp(s[j] / tau)))
            num = sum(
                q[j, k]
                * np.exp(-((w_sim[j, k] - ref) ** 2) / (2 * sigma**2))
                * (lse - s[j, k] / tau)
                for k in range(4)
                if k != j and not (labeled[j] and labeled[k])
            )
            den = sum(
                q[j, k]
                for k in range(4)
                if k != j and not (labeled[j] and labeled[k])
            )
            total += num / den
            count += 1
        return total / count

    eps = 1e-4
    numeric = np.zeros_like(sim)
    for a in range(4):
        for b in range(4):
            d = np.zeros_like(sim)
            d[a, b] = eps
            numeric[a, b] = (frozen(sim + d, sim) - frozen(sim - d, sim)) / (
                2 * eps
            )
    grad = _gradient(
        lambda s: losses.soft_pu_loss(
            s, labeled, same, q, temperature=tau, rbf_bandwidth=sigma
        )[1],
        sim.astype("float32"),
    )
    np.testing.assert_allclose(grad, numeric, atol=2e-3)


def _gradient(fn, value):
    """Gradient of a scalar function of one tensor, on any backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: fn(v))(value))
    if backend == "torch":
        import torch

        tensor = torch.tensor(value, requires_grad=True)
        fn(tensor).backward()
        return tensor.grad.numpy()
    import tensorflow as tf

    tensor = tf.Variable(value)
    with tf.GradientTape() as tape:
        out = fn(tensor)
    return tape.gradient(out, tensor).numpy()


@pytest.mark.parametrize(
    "case", ["no_labels", "one_class", "one_sample", "key_missing", "equal"]
)
def test_soft_pu_finite_loss_and_gradient(case):
    batch = 1 if case == "one_sample" else 6
    rng = np.random.default_rng(0)
    sim = rng.uniform(-1, 1, (batch, batch)).astype("float32")
    labeled = np.ones(batch, "float32")
    same = np.zeros((batch, batch), "float32")
    key = np.ones(batch, "float32")
    if case == "no_labels":
        labeled[:] = 0
    if case == "one_class":
        same[:] = 1
    if case == "key_missing":
        key[:] = 0
    if case == "equal":
        sim[:] = 1.0
    q = np.full((batch, batch), 0.5, "float32")

    def total(s):
        lb, ulb = losses.soft_pu_loss(s, labeled, same, q, key_mask=key)
        return lb + ulb

    value = float(to_numpy(total(ops.convert_to_tensor(sim))))
    grad = _gradient(total, sim)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad))
    if case == "key_missing":
        assert value == 0.0
