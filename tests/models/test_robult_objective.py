"""The whole objective of `Robult` against the independent NumPy
implementation of `tests/models/numpy_reference.py`.

Every logged term and the total are compared, on batches with random
per-sample modality masks and partial labels, for the three tasks, with
non-default hyper-parameters and loss weights: a term that reads the wrong
tensor (fused instead of late-fused targets, `S` and `Z^m` swapped), drops
a mask or a hyper-parameter, or averages wrongly, changes a number.
"""

import numpy as np
import pytest

import keras_robult
from keras_robult import encoders, tasks
from tests.conftest import JIT_COMPILE, to_numpy
from tests.models import numpy_reference as ref

TERMS = ("loss_lb", "loss_ulb", "loss_rec", "loss_sup", "loss_pseudo")
DIMS = (7, 4, 5)
TASKS = {
    "classification": tasks.Classification(4),
    "regression": tasks.Regression(target_std=0.7),
    "multilabel": tasks.MultiLabel(3),
}


def make_batch(task_name, batch=10, seed=0):
    """Random inputs, masks with gaps (every row keeps one modality, a few
    keep all), partial labels of the task, positive sample weights."""
    rng = np.random.default_rng(seed)
    x = {
        f"m{i}": rng.normal(size=(batch, dim)).astype("float32")
        for i, dim in enumerate(DIMS)
    }
    mask = (rng.random((batch, 3)) < 0.6).astype("float32")
    mask[np.arange(batch), rng.integers(0, 3, batch)] = 1.0
    mask[:3] = 1.0  # every modality present
    mask[3] = [1, 0, 0]
    mask[4] = [0, 1, 1]
    x["modality_mask"] = mask
    if task_name == "classification":
        labels = rng.integers(0, 4, batch)
        labels[:4] = [0, 0, 1, 0]  # known positive pairs
    elif task_name == "regression":
        labels = rng.uniform(-3.4, 3.4, batch).astype("float32")
        labels[:2] = [1.2, 0.8]  # the same bin
    else:
        labels = rng.integers(0, 2, (batch, 3)).astype("float32")
        labels[1] = labels[0]
    is_labeled = np.zeros(batch, "float32")
    is_labeled[[i for i in (0, 1, 4, 7) if i < batch]] = 1.0
    sample_weight = rng.uniform(0.5, 2.0, batch).astype("float32")
    return x, {"label": labels, "is_labeled": is_labeled}, sample_weight


def build_robult(task, **kwargs):
    options = dict(
        latent_dim=8,
        redundant_dim=5,
        unique_dim=3,
        head_units=6,
        temperature=0.37,
        rbf_bandwidth=0.21,
        loss_weights={
            "lb": 0.7,
            "ulb": 1.3,
            "rec": 0.6,
            "sup": 0.9,
            "pseudo": 0.45,
        },
    )
    options.update(kwargs)
    # Widths 12 and 5 differ from latent_dim: LatentProjection has weights.
    model = keras_robult.Robult(
        {
            "m0": encoders.MLPEncoder(12, hidden_units=(9,)),
            "m1": encoders.MLPEncoder(8, hidden_units=(6,)),
            "m2": encoders.MLPEncoder(5, hidden_units=(6,)),
        },
        task,
        **options,
    )
    return perturb(model)


def perturb(model, seed=0):
    """Builds the model and moves every trainable weight off its
    initial value (biases included, so no latent is exactly zero)."""
    model(make_batch("classification")[0])
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        value = to_numpy(variable)
        variable.assign(value + 0.1 * rng.normal(size=value.shape))
    return model


def logged(model, x, y, sample_weight=None):
    """Every logged value of one `evaluate` step on the whole batch."""
    model.compile(optimizer="sgd", jit_compile=JIT_COMPILE)
    return model.evaluate(
        x,
        y,
        sample_weight=sample_weight,
        batch_size=len(x["m0"]),
        verbose=0,
        return_dict=True,
    )


def assert_terms(logs, expected, keys):
    for key in keys:
        np.testing.assert_allclose(
            logs[key], expected[key], rtol=1e-5, atol=1e-5, err_msg=key
        )


def select_between(values):
    """A threshold with values on both sides: the midpoint of the two
    middle *distinct* values (pair probabilities come in equal symmetric
    pairs; a midpoint of two equal values is one of them, and whether the
    model's float32 copy passes it is rounding)."""
    values = np.unique(np.asarray(values))
    middle = len(values) // 2
    low, high = values[middle - 1], values[middle]
    assert high - low > 1e-5 * high, (low, high)  # far from float32 noise
    return float(0.5 * (low + high))


@pytest.mark.parametrize("late_fusion", ["mean", "product"])
@pytest.mark.parametrize("task_name", list(TASKS))
def test_every_term_and_the_total_match_the_reference(task_name, late_fusion):
    """Under both late fusion rules: they set the soft targets of the rows
    with gaps, the pseudo-label teacher and the subsets' predictions."""
    task = TASKS[task_name]
    x, y, sample_weight = make_batch(task_name)
    model = build_robult(task, late_fusion=late_fusion)
    model(x)
    forward = ref.robult_forward(model, x)
    mask = x["modality_mask"]
    labeled = y["is_labeled"] > 0
    # min_pair_probability cuts half of the candidate pairs, the pseudo
    # threshold keeps some unlabeled samples and drops others.
    model.min_pair_probability = select_between(
        ref.candidate_pair_probabilities(
            model, forward, mask, y["label"], labeled
        )
    )
    if task_name != "regression":  # regression confidences are all 1
        confidences = []
        for j in np.flatnonzero(~labeled):
            late = forward["late"][j]
            teacher = (
                0.5 * (forward["fused_prediction"][j] + late)
                if mask[j].all()
                else late
            )
            confidences.append(ref.NumpyTask(task).pseudo_label(teacher)[1])
        model.pseudo_threshold = select_between(confidences)
    _, kept, dropped = ref.pseudo_term(model, forward, mask, labeled)
    assert kept > 0 and (dropped > 0 or task_name == "regression")

    expected = ref.robult_loss(
        model, x, y["label"], y["is_labeled"], sample_weight
    )
    assert all(expected[term] > 0 for term in TERMS), expected
    logs = logged(model, x, y, sample_weight)
    assert_terms(logs, expected, TERMS + ("loss",))
    # The forward pass too (the losses read these tensors).
    out = to_numpy(model(x))
    for key in ("shared", "redundant", "reconstruction", "prediction"):
        np.testing.assert_allclose(
            out[key], forward[key], rtol=1e-4, atol=1e-5, err_msg=key
        )


@pytest.mark.parametrize("task_name", list(TASKS))
def test_consistency_term_in_training_matches_the_reference(task_name):
    """`L_cons` (training only): the fused branch on the drawn subsets
    against labels and confident fused pseudo-labels, and the total with
    it; the subsets are proper, non-empty subsets of each row's own."""
    task = TASKS[task_name]
    x, y, sample_weight = make_batch(task_name)
    weights = {"lb": 0.7, "ulb": 1.3, "rec": 0.6, "sup": 0.9}
    model = build_robult(
        task, loss_weights={**weights, "pseudo": 0.45, "consistency": 0.8}
    )
    forward = ref.robult_forward(model, x)
    mask = x["modality_mask"]
    labeled = y["is_labeled"] > 0
    if task_name != "regression":  # regression confidences are all 1
        model.pseudo_threshold = select_between(
            [
                ref.NumpyTask(task).pseudo_label(
                    forward["fused_prediction"][j]
                )[1]
                for j in np.flatnonzero(~labeled)
            ]
        )
    y_pred = model(x, training=True)
    subset = to_numpy(y_pred["subset_mask"])
    assert np.all(subset <= mask) and np.all(subset.sum(1) >= 1)
    count = mask.sum(1)
    assert np.all(subset.sum(1)[count > 1] < count[count > 1])

    expected = ref.consistency_term(model, forward, subset, y["label"], labeled)
    assert expected > 0
    labels, is_labeled = model.unpack_targets(x, y)
    np.testing.assert_allclose(
        to_numpy(model.consistency_loss(labels, is_labeled, y_pred)),
        expected,
        rtol=1e-5,
        atol=1e-5,
    )
    total = model.compute_loss(x, y, y_pred, sample_weight, training=True)
    others = ref.robult_loss(
        model, x, y["label"], y["is_labeled"], sample_weight
    )["loss"]
    np.testing.assert_allclose(
        to_numpy(total), others + 0.8 * expected, rtol=1e-5, atol=1e-5
    )
    # Outside training nothing is drawn and the term is 0.
    assert "subset_mask" not in model(x)
    assert logged(model, x, y, sample_weight)["loss_consistency"] == 0.0


def test_the_drawn_subsets_cover_every_size_and_modality():
    """Over many draws: every size `1..n-1` and every present modality
    both kept and dropped; a missing one never kept."""
    model = build_robult(
        TASKS["classification"], loss_weights={"consistency": 1.0}, seed=7
    )
    mask = np.array(
        [[1, 1, 1], [1, 1, 1], [0, 1, 1], [1, 0, 0], [1, 0, 1]], "float32"
    )
    draws = np.stack(
        [to_numpy(model.random_subset_mask(mask)) for _ in range(200)]
    )
    assert np.all(draws <= mask)
    sizes = draws.sum(-1)
    for row, n in enumerate(mask.sum(1).astype(int)):
        assert set(sizes[:, row].astype(int)) == set(range(1, max(n, 2)))
        for m in np.flatnonzero(mask[row]):
            kept = draws[:, row, m]
            assert kept.min() == 0 or n == 1, (row, m)
            assert kept.max() == 1, (row, m)


@pytest.mark.parametrize("pooling", ["attention", "concat"])
def test_plain_labels_and_no_mask_mean_all_labeled_all_present(pooling):
    """Targets as plain labels are all labeled; inputs without
    `modality_mask` have every modality present."""
    x, y, _ = make_batch("classification", seed=1)
    del x["modality_mask"]
    model = build_robult(TASKS["classification"], fusion_pooling=pooling)
    logs = logged(model, x, {"label": y["label"]})
    full = dict(x, modality_mask=np.ones((10, 3), "float32"))
    expected = ref.robult_loss(model, full, y["label"], np.ones(10))
    assert_terms(logs, expected, TERMS + ("loss",))
    plain = model.evaluate(
        x, y["label"], batch_size=10, verbose=0, return_dict=True
    )
    assert_terms(plain, expected, TERMS + ("loss",))


def test_no_targets_means_nothing_is_labeled():
    x, y, _ = make_batch("classification", seed=2)
    model = build_robult(TASKS["classification"])
    model(x)
    model.compile(optimizer="sgd", jit_compile=JIT_COMPILE)
    logs = model.evaluate(x, batch_size=10, verbose=0, return_dict=True)
    expected = ref.robult_loss(model, x, y["label"], np.zeros(10))
    assert logs["loss_sup"] == 0.0
    assert_terms(logs, expected, TERMS + ("loss",))


# ---------------------------------------------------------- degenerate
def test_one_sample_has_no_pu_term():
    x, y, _ = make_batch("classification", batch=10, seed=3)
    x = {k: v[:1] for k, v in x.items()}
    y = {k: v[:1] for k, v in y.items()}
    model = build_robult(TASKS["classification"])
    logs = logged(model, x, y)
    # The instance pair is the only key: -log v = 0, no candidate pair.
    assert logs["loss_lb"] == 0.0 and logs["loss_ulb"] == 0.0
    expected = ref.robult_loss(model, x, y["label"], y["is_labeled"])
    assert expected["loss_rec"] > 0 and expected["loss_sup"] > 0
    assert_terms(logs, expected, TERMS + ("loss",))


def test_no_labeled_sample_uses_instance_pairs_only():
    x, y, _ = make_batch("classification", seed=4)
    y["is_labeled"][:] = 0
    y["label"][:] = -1  # placeholders are never read
    model = build_robult(TASKS["classification"], min_pair_probability=0.0)
    logs = logged(model, x, y)
    assert logs["loss_sup"] == 0.0
    forward = ref.robult_forward(model, x)
    present = x["modality_mask"] > 0.5
    # L_lb^m: mean over samples with modality m of -log v_jj.
    per_modality = []
    for m in range(3):
        keys = np.flatnonzero(present[:, m])
        terms = []
        for j in keys:
            sims = np.array(
                [
                    ref.cosine(forward["shared"][j], forward["redundant"][k, m])
                    for k in keys
                ]
            )
            own = sims[list(keys).index(j)] / model.temperature
            terms.append(np.log(np.exp(sims / model.temperature).sum()) - own)
        per_modality.append(np.mean(terms))
    np.testing.assert_allclose(logs["loss_lb"], np.mean(per_modality), 1e-5)
    expected = ref.robult_loss(model, x, np.zeros(10), y["is_labeled"])
    assert_terms(logs, expected, TERMS + ("loss",))


def test_one_class_all_labeled_has_no_candidate_pair():
    x, y, _ = make_batch("classification", seed=5)
    y["label"][:] = 2
    y["is_labeled"][:] = 1
    model = build_robult(TASKS["classification"])
    logs = logged(model, x, y)
    assert logs["loss_ulb"] == 0.0 and logs["loss_pseudo"] == 0.0
    expected = ref.robult_loss(model, x, y["label"], y["is_labeled"])
    # Every available pair is a known positive.
    assert expected["loss_lb"] > 0
    assert_terms(logs, expected, TERMS + ("loss",))


def test_a_row_with_no_modality_enters_no_term():
    """`fit` refuses such rows in arrays, but a `tf.data` pipeline can
    still carry one: it is no anchor, no key, no branch sample, so every
    term equals the value on the batch without it."""
    import tensorflow as tf

    x, y, _ = make_batch("classification", seed=8)
    model = build_robult(TASKS["classification"], min_pair_probability=0.0)
    keep = np.arange(10) != 6
    x["modality_mask"][6] = 0.0
    # Labeled, of the class of samples 0 and 1: as an anchor it would
    # have known positives.
    y["is_labeled"][6] = 1.0
    y["label"][6] = y["label"][0]
    model.compile(optimizer="sgd", jit_compile=JIT_COMPILE)
    with_empty = model.evaluate(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(10),
        verbose=0,
        return_dict=True,
    )
    without = logged(
        model,
        {k: v[keep] for k, v in x.items()},
        {k: v[keep] for k, v in y.items()},
    )
    assert_terms(with_empty, without, TERMS + ("loss",))
    expected = ref.robult_loss(model, x, y["label"], y["is_labeled"])
    assert_terms(with_empty, expected, TERMS + ("loss",))
