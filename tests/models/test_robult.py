import keras
import numpy as np
import pytest

import keras_robult
from keras_robult import encoders, tasks
from tests.conftest import BACKEND, JIT_COMPILE, make_multimodal, to_numpy
from tests.testing import (
    assert_config_round_trip,
    assert_saved_model_predicts_the_same,
)


def build_model(num_modalities=3, task=None, latent_dim=16, **kwargs):
    return keras_robult.Robult(
        encoders={
            f"m{i}": encoders.MLPEncoder(latent_dim, hidden_units=(16,))
            for i in range(num_modalities)
        },
        task=task or tasks.Classification(3),
        latent_dim=latent_dim,
        redundant_dim=latent_dim // 2,
        unique_dim=latent_dim // 2,
        **kwargs,
    )


def snapshot(model):
    return {v.path: np.array(to_numpy(v)) for v in model.trainable_variables}


# ------------------------------------------------------------------ routing
def variable_groups(model):
    """The named parts of the gradient routing (docs/concepts.md), as
    lists of variables.

    Asserts that they partition the model's trainable variables: a new
    layer that belongs to no group (or to two) fails every routing test.
    """
    groups = {
        f"f^{name}": model.encoders[name].trainable_variables
        + model.projections[name].trainable_variables
        for name in model.modalities
    }
    groups.update(
        {
            "fusion": model.fusion.trainable_variables,
            "shared_head": model.shared_head.trainable_variables,
            "unique_heads": model.unique_heads.trainable_variables,
            "reconstruction_heads": (
                model.reconstruction_heads.trainable_variables
            ),
            "task_head": model.task_head.trainable_variables,
        }
    )
    owners = {}
    for group, variables in groups.items():
        assert variables, f"{group} has no trainable variable"
        for variable in variables:
            owners.setdefault(id(variable), []).append(group)
    shared = {k: v for k, v in owners.items() if len(v) > 1}
    assert not shared, f"variables in two groups: {shared}"
    everything = {id(v): v.path for v in model.trainable_variables}
    orphans = [path for key, path in everything.items() if key not in owners]
    assert not orphans, f"variables outside every group: {orphans}"
    assert set(owners) == set(everything)
    return groups


ENCODERS = {"f^m0", "f^m1", "f^m2"}


@pytest.mark.parametrize(
    "weights, must_move",
    [
        (
            {"lb": 0, "ulb": 0, "sup": 0, "rec": 1, "pseudo": 0},
            {"unique_heads", "reconstruction_heads"},
        ),
        (
            {"lb": 1, "ulb": 1, "sup": 0, "rec": 0, "pseudo": 0},
            ENCODERS | {"fusion", "shared_head"},
        ),
        (
            {"lb": 0, "ulb": 0, "sup": 1, "rec": 0, "pseudo": 0},
            ENCODERS | {"fusion", "shared_head", "unique_heads", "task_head"},
        ),
        (
            {"lb": 0, "ulb": 0, "sup": 0, "rec": 0, "pseudo": 1},
            ENCODERS | {"shared_head", "unique_heads", "task_head"},
        ),
        (
            {"lb": 0, "ulb": 0, "sup": 0, "rec": 0, "consistency": 1},
            ENCODERS | {"fusion", "task_head"},
        ),
    ],
    ids=["rec_only", "pu_only", "sup_only", "pseudo_only", "consistency"],
)
def test_gradient_routing(weights, must_move):
    """One SGD step with one loss alone moves exactly its groups, with
    modalities missing for some samples and two encoders whose width is
    not `latent_dim`, so their `LatentProjection` has weights (routed with
    `f^m`)."""
    # Threshold 0 so that an untrained model's pseudo-labels all count.
    widths = (24, 16, 9)
    model = keras_robult.Robult(
        encoders={
            f"m{i}": encoders.MLPEncoder(width, hidden_units=(16,))
            for i, width in enumerate(widths)
        },
        task=tasks.Classification(3),
        latent_dim=16,
        redundant_dim=8,
        unique_dim=8,
        loss_weights=weights,
        pseudo_threshold=0.0,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=32, labeled_fraction=0.3)
    rng = np.random.default_rng(1)
    mask = (rng.random((32, 3)) < 0.6).astype("float32")
    mask[np.arange(32), rng.integers(0, 3, 32)] = 1.0
    assert not mask.all(axis=0).any()  # every modality has gaps
    x["modality_mask"] = mask
    model(x)
    groups = variable_groups(model)
    assert model.projections["m0"].trainable_variables
    assert not model.projections["m1"].trainable_variables
    before = snapshot(model)
    model.train_on_batch(x, y)
    after = snapshot(model)
    for group, variables in groups.items():
        moved = [
            not np.array_equal(before[v.path], after[v.path]) for v in variables
        ]
        if group in must_move:
            assert all(moved), f"{group} should move: {moved}"
        else:
            assert not any(moved), f"{group} should not move: {moved}"


# ---------------------------------------------------------------- inference
def test_prediction_uses_present_modalities_only():
    """The paper's rule: late fusion (mean) of the present branches, the
    fused branch when all are present."""
    model = build_model(
        late_fusion="mean", full_set="fused", min_fused_modalities=None
    )
    x, _ = make_multimodal(num_samples=8)
    mask = np.array(
        [
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
            [1, 1, 0],
            [0, 1, 1],
            [1, 0, 1],
            [1, 1, 1],
            [1, 1, 1],
        ],
        "float32",
    )
    x["modality_mask"] = mask
    out = to_numpy(model(x))
    pred, fused, branch = (
        out["prediction"],
        out["fused_prediction"],
        out["modality_predictions"],
    )
    for i in range(3):
        np.testing.assert_allclose(pred[i], branch[i, i], rtol=1e-6)
    for i in (3, 4, 5):
        keep = mask[i] > 0
        np.testing.assert_allclose(
            pred[i], branch[i, keep].mean(0), rtol=1e-5, atol=1e-7
        )
    np.testing.assert_allclose(pred[6:], fused[6:], rtol=1e-6)
    np.testing.assert_allclose(pred.sum(-1), 1.0, rtol=1e-5)


def test_product_late_fusion_is_the_normalised_geometric_mean():
    model = build_model(
        late_fusion="product", full_set="fused", min_fused_modalities=None
    )
    x, _ = make_multimodal(num_samples=4)
    x["modality_mask"] = np.array(
        [[1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]], "float32"
    )
    out = to_numpy(model(x))
    branch = out["modality_predictions"].astype("float64")
    np.testing.assert_allclose(out["prediction"][0], branch[0, 0], rtol=1e-5)
    for i in (1, 2):
        keep = x["modality_mask"][i] > 0
        geometric = np.exp(np.log(branch[i, keep]).mean(0))
        np.testing.assert_allclose(
            out["prediction"][i], geometric / geometric.sum(), rtol=1e-4
        )
        # Not the mean of probabilities.
        assert not np.allclose(out["prediction"][i], branch[i, keep].mean(0))
    np.testing.assert_allclose(
        out["prediction"][3], out["fused_prediction"][3], rtol=1e-6
    )


@pytest.mark.parametrize("fewest", [2, 3, 1])
def test_the_fused_branch_joins_samples_with_enough_modalities(fewest):
    """Default rule (`fewest` = 2): a sample with at least
    `min_fused_modalities` present gets the mean of the fused branch and
    the product of experts of its branches, any other the product alone;
    the default model is `fewest` = 2."""
    options = {} if fewest == 2 else {"min_fused_modalities": fewest}
    model = build_model(**options)
    assert model.min_fused_modalities == fewest
    x, _ = make_multimodal(num_samples=5)
    x["modality_mask"] = np.array(
        [[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 1, 1]], "float32"
    )
    out = to_numpy(model(x))
    branch = out["modality_predictions"].astype("float64")
    for i, keep in enumerate(x["modality_mask"] > 0):
        geometric = np.exp(np.log(branch[i, keep]).mean(0))
        late = geometric / geometric.sum()
        expected = (
            0.5 * (late + out["fused_prediction"][i])
            if keep.sum() >= fewest
            else late
        )
        np.testing.assert_allclose(
            out["prediction"][i], expected, rtol=1e-4, err_msg=str(i)
        )


def test_training_gaps_leave_an_absent_modality_untouched():
    """A modality missing from every training sample: one SGD epoch moves
    the other encoders and not its own (its zero-filled input and masked
    latent reach no loss term); every loss stays finite."""
    x, y = make_multimodal(num_samples=32)
    rng = np.random.default_rng(0)
    mask = (rng.random((32, 3)) < 0.6).astype("float32")
    mask[:, 2] = 0.0
    mask[mask.sum(1) == 0, 0] = 1.0
    x["modality_mask"] = mask
    model = build_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=JIT_COMPILE)
    model(x)
    before = snapshot(model)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    after = snapshot(model)
    for name, moves in (("m0", True), ("m1", True), ("m2", False)):
        variables = (
            model.encoders[name].trainable_variables
            + model.projections[name].trainable_variables
        )
        moved = [
            not np.array_equal(before[v.path], after[v.path]) for v in variables
        ]
        assert all(moved) if moves else not any(moved), name


@pytest.mark.parametrize("full_set", ["late", "mean"])
def test_full_set_modes(full_set):
    model = build_model(full_set=full_set, late_fusion="mean")
    x, _ = make_multimodal(num_samples=4)
    out = to_numpy(model(x))
    late = out["modality_predictions"].mean(1)
    expected = (
        late if full_set == "late" else 0.5 * (late + out["fused_prediction"])
    )
    np.testing.assert_allclose(out["prediction"], expected, rtol=1e-5)


def test_masked_out_modality_values_never_matter():
    model = build_model()
    x, _ = make_multimodal(num_samples=6)
    x["modality_mask"][:, 1] = 0
    x["modality_mask"][:2, 2] = 0
    reference = to_numpy(model.predict(x, verbose=0))
    garbage = dict(x)
    garbage["m1"] = np.full_like(x["m1"], 1e30)
    garbage["m1"][0] = np.nan
    garbage["m2"] = x["m2"].copy()
    garbage["m2"][:2] = -7e20
    out = model.predict(garbage, verbose=0)
    for key in ("prediction", "fused_prediction", "fused_latent"):
        np.testing.assert_array_equal(out[key], reference[key])


# ---------------------------------------------------------------- finiteness
def odd_batch(case):
    """A batch of 8 (1 for `one_sample`) with the oddity `case` names."""
    n = 1 if case == "one_sample" else 8
    x, y = make_multimodal(num_samples=n, labeled_fraction=0.5)
    if case == "no_labels":
        y["is_labeled"][:] = 0
        y["label"][:] = -1  # placeholder labels are ignored
    if case == "one_class":
        y["label"][:] = 1
        y["is_labeled"][:] = 1
    if case == "modality_missing":
        x["modality_mask"][:, 0] = 0
    if case == "equal":
        for name in ("m0", "m1", "m2"):
            x[name][:] = 0.0
    return x, y


def test_finite_loss_and_gradients():
    """One SGD step on each odd batch, from the same weights, with every
    term on (self-training and consistency with every pseudo-label
    counted): finite losses and weights. One model, so that the batches
    of 8 share its compiled step."""
    model = build_model(
        loss_weights={"pseudo": 1.0, "consistency": 1.0},
        pseudo_threshold=0.0,
    )
    model.compile(optimizer=keras.optimizers.SGD(1.0), jit_compile=JIT_COMPILE)
    model(odd_batch("equal")[0])
    initial = model.get_weights()
    for case in (
        "no_labels",
        "one_class",
        "modality_missing",
        "equal",
        "one_sample",
    ):
        model.set_weights(initial)
        logs = model.train_on_batch(*odd_batch(case), return_dict=True)
        assert all(np.isfinite(v) for v in logs.values()), (case, logs)
        for variable in model.trainable_variables:
            assert np.all(np.isfinite(to_numpy(variable))), (
                case,
                variable.path,
            )


@pytest.mark.parametrize("selecting", [False, True], ids=["zero", "selecting"])
def test_pseudo_label_loss_matches_numpy(selecting):
    """`L_pseudo` against a loop-by-loop NumPy reference: hard labels from
    the ensemble teacher (fused and late averaged where every modality is
    present, late fusion otherwise), unlabeled samples above the threshold,
    unimodal branches only, per-branch means over samples where the
    modality is present, then the mean over branches that have any. The
    selecting threshold lies between the teachers' confidences, so it
    keeps some unlabeled samples and drops others."""
    model = build_model(pseudo_threshold=0.0, late_fusion="mean")
    x, y = make_multimodal(num_samples=12, labeled_fraction=0.25)
    x["modality_mask"][:4] = [[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]]
    y_pred = model(x)
    out = to_numpy(y_pred)
    mask = x["modality_mask"] > 0
    fused, branch = out["fused_prediction"], out["modality_predictions"]
    teachers = {}
    for j in np.flatnonzero(y["is_labeled"] == 0):
        late = branch[j, mask[j]].mean(0)
        teachers[j] = 0.5 * (fused[j] + late) if mask[j].all() else late
    confidence = np.sort([t.max() for t in teachers.values()])
    threshold = 0.0
    if selecting:
        middle = len(confidence) // 2
        threshold = float(confidence[middle - 1 : middle + 1].mean())
    model.pseudo_threshold = threshold
    loss = to_numpy(
        model.pseudo_label_loss(y["is_labeled"], x["modality_mask"], y_pred)
    )
    per_branch = {b: [] for b in range(3)}
    kept = 0
    for j, teacher in teachers.items():
        if teacher.max() < threshold:
            continue
        kept += 1
        for m in range(3):
            if mask[j, m]:
                per_branch[m].append(-np.log(branch[j, m, teacher.argmax()]))
    dropped = len(teachers) - kept
    assert kept > 0 and (dropped > 0) == selecting, (kept, dropped)
    expected = np.mean([np.mean(v) for v in per_branch.values() if v])
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)


def test_pseudo_threshold_one_keeps_no_unlabeled_sample():
    model = build_model(pseudo_threshold=1.0)
    x, y = make_multimodal(num_samples=8, labeled_fraction=0.5)
    loss = model.pseudo_label_loss(
        y["is_labeled"], x["modality_mask"], model(x)
    )
    assert float(to_numpy(loss)) == 0.0


@pytest.mark.parametrize(
    "task, labels",
    [
        (tasks.Regression(), lambda n, rng: rng.uniform(-3, 3, n)),
        (tasks.MultiLabel(4), lambda n, rng: rng.integers(0, 2, (n, 4))),
    ],
    ids=["regression", "multilabel"],
)
@pytest.mark.parametrize("late_fusion", ["mean", "product"])
def test_other_tasks_fit_and_predict_by_the_rule(task, labels, late_fusion):
    """Late fusion of the present branches: values averaged (regression,
    both rules); for multi-label the mean of sigmoid probabilities, or
    under the product of experts the sigmoid of the mean logit (per label,
    p and 1 - p each a geometric mean, normalised). All present: the fused
    branch (the paper's rule for the full set)."""
    model = build_model(
        task=task,
        late_fusion=late_fusion,
        full_set="fused",
        min_fused_modalities=None,
    )
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=32)
    y["label"] = labels(32, np.random.default_rng(0)).astype("float32")
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    x["modality_mask"][:6] = [[1, 0, 0], [0, 1, 1], [1, 0, 1]] * 2
    out = model.predict(x, verbose=0)
    branch = out["modality_predictions"]
    if task.name == "multilabel":
        np.testing.assert_allclose(
            branch, 1 / (1 + np.exp(-out["modality_logits"])), rtol=1e-5
        )
    else:
        np.testing.assert_array_equal(branch, out["modality_logits"])
    mask = x["modality_mask"]
    late = (branch * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    if task.name == "multilabel" and late_fusion == "product":
        logits = out["modality_logits"]
        mean_logit = (logits * mask[..., None]).sum(1) / mask.sum(
            1, keepdims=True
        )
        late = 1 / (1 + np.exp(-mean_logit))
    np.testing.assert_allclose(out["prediction"][:6], late[:6], rtol=1e-5)
    np.testing.assert_allclose(
        out["prediction"][6:], out["fused_prediction"][6:], rtol=1e-6
    )


# ----------------------------------------------------------------- training
@pytest.mark.large
def test_trains_to_well_above_chance_from_each_modality():
    """5 % labels, 4 classes, each modality a noisy code of the label.

    The reference is a nearest-centroid classifier that knows every
    training label (class means of the full training set): the best a
    per-modality classifier of this kind can do. The model, from 5 % of the
    labels, must recover at least 60 % of that oracle's margin over chance
    (0.25) on every single modality. Measured (torch, seed 0): model 0.98 /
    0.85 / 0.75 against oracle 0.99 / 0.91 / 0.82 (floors 0.84 / 0.69 / 0.59).
    """
    x, y = make_multimodal(
        num_samples=800, num_classes=4, noise=1.5, labeled_fraction=0.05
    )
    test_x, test_y = make_multimodal(
        num_samples=400, num_classes=4, noise=1.5, seed=0
    )
    # Same class centres (seed 0), fresh noise for the test set.
    rng = np.random.default_rng(123)
    oracle = {}
    for name in ("m0", "m1", "m2"):
        centres = np.stack([x[name][y["label"] == c].mean(0) for c in range(4)])
        test_x[name] = (
            centres[test_y["label"]] + 1.5 * rng.normal(size=test_x[name].shape)
        ).astype("float32")
        distance = np.linalg.norm(
            test_x[name][:, None] - centres[None], axis=-1
        )
        oracle[name] = np.mean(distance.argmin(-1) == test_y["label"])
    model = build_model(task=tasks.Classification(4), latent_dim=32)
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    model.fit(x, y, batch_size=128, epochs=40, verbose=0)
    for index, name in enumerate(("m0", "m1", "m2")):
        masked = dict(test_x)
        masked["modality_mask"] = np.zeros((400, 3), "float32")
        masked["modality_mask"][:, index] = 1
        pred = model.predict(masked, verbose=0)["prediction"]
        accuracy = np.mean(pred.argmax(-1) == test_y["label"])
        floor = 0.25 + 0.6 * (oracle[name] - 0.25)
        assert accuracy > floor, (name, accuracy, oracle[name])


# -------------------------------------------------------------- save / load
def test_get_config_from_config():
    model = build_model(
        temperature=0.7, loss_weights={"rec": 0.5}, late_fusion="product"
    )
    x, _ = make_multimodal(num_samples=4)
    clone = assert_config_round_trip(model, x)
    assert clone.loss_weights["rec"] == 0.5
    assert clone.late_fusion == "product"
    assert to_numpy(clone(x))["prediction"].shape == (4, 3)


def test_custom_fusion_layer_is_used_and_serialised():
    fusion = keras_robult.layers.FusionEncoder(
        16, hidden_units=(7,), pooling="concat", name="my_fusion"
    )
    model = build_model(fusion=fusion)
    x, _ = make_multimodal(num_samples=6)
    x["modality_mask"][:3] = [[1, 0, 0], [0, 1, 1], [1, 0, 1]]
    out = to_numpy(model(x))
    assert model.fusion is fusion
    np.testing.assert_allclose(
        out["fused_latent"],
        to_numpy(fusion(out["modality_latents"], x["modality_mask"])),
        rtol=1e-6,
    )
    clone = keras_robult.Robult.from_config(model.get_config())
    assert clone.fusion is not fusion
    assert clone.fusion.get_config() == fusion.get_config()


def test_dropout_acts_in_training_only():
    model = build_model(dropout=0.5)
    assert model.fusion.dropout == 0.5
    assert model.unique_heads.dropout == 0.5
    assert model.shared_head.dropout == 0.5
    x, _ = make_multimodal(num_samples=16)
    first = to_numpy(model(x, training=False))
    again = to_numpy(model(x, training=False))
    noisy = to_numpy(model(x, training=True))
    for key in ("fused_latent", "shared", "unique", "prediction"):
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.allclose(first[key], noisy[key]), key
    # Modality encoders are the user's: the model's dropout leaves them.
    np.testing.assert_array_equal(
        first["modality_latents"], noisy["modality_latents"]
    )


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"encoders": {}},
            "`encoders` must be a non-empty dict mapping modality names to "
            "Keras layers; received {}.",
        ),
        (
            {"encoders": {"modality_mask": encoders.MLPEncoder(8)}},
            "'modality_mask' is reserved for the modality mask and cannot be "
            "a modality name.",
        ),
        (
            {"encoders": {"a": 3}},
            "The encoder of modality 'a' must be a Keras layer or model; "
            "received int.",
        ),
        (
            {"encoders": {1: encoders.MLPEncoder(8)}},
            "Modality names must be non-empty strings; got 1.",
        ),
        (
            {"unique_dim": 10},
            "The task head is shared by the fused branch (input H^0 of width "
            "latent_dim) and the unimodal branches (input [U^m, Z^m] of "
            "width unique_dim + redundant_dim), so unique_dim + "
            "redundant_dim must equal latent_dim; received unique_dim=10, "
            "redundant_dim=8, latent_dim=16.",
        ),
        (
            {"loss_weights": {"pu": 1.0}},
            "Unknown `loss_weights` keys ['pu']; valid keys are ['lb', "
            "'ulb', 'rec', 'sup', 'pseudo', 'consistency'].",
        ),
        (
            {"min_fused_modalities": 0},
            "`min_fused_modalities` must be None or an int >= 1; received 0.",
        ),
        (
            {"full_set": "both"},
            "`full_set` must be one of ('fused', 'late', 'mean'); received "
            "'both'.",
        ),
        (
            {"temperature": 0.0},
            "`temperature` must be positive; received 0.0.",
        ),
        (
            {"rbf_bandwidth": -1.0},
            "`rbf_bandwidth` must be positive; received -1.0.",
        ),
        (
            {"pseudo_threshold": 1.5},
            "`pseudo_threshold` must be in [0, 1]; received 1.5.",
        ),
        (
            {"min_pair_probability": -0.1},
            "`min_pair_probability` must be in [0, 1]; received -0.1.",
        ),
        ({"dropout": 1.0}, "`dropout` must be in [0, 1); received 1.0."),
        (
            {"late_fusion": "max"},
            "`late_fusion` must be one of ('mean', 'product'); received 'max'.",
        ),
        (
            {"fusion_pooling": "max"},
            "`fusion_pooling` must be one of ('attention', 'concat'); "
            "received 'max'.",
        ),
        (
            {"task": "classification"},
            "`task` must be a keras_robult.tasks.Task (Classification, "
            "Regression or MultiLabel); received 'classification'.",
        ),
    ],
)
def test_constructor_errors(kwargs, message):
    base = dict(
        encoders={"a": encoders.MLPEncoder(16)},
        task=tasks.Classification(3),
        latent_dim=16,
        redundant_dim=8,
        unique_dim=8,
    )
    base.update(kwargs)
    with pytest.raises(ValueError) as error:
        keras_robult.Robult(**base)
    assert str(error.value) == message


def test_input_errors():
    model = build_model()
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=8)

    def message(run):
        with pytest.raises(ValueError) as error:
            run()
        return str(error.value)

    keys = (
        "Input keys {} do not match the model's modalities ['m0', 'm1', "
        "'m2'] (plus 'modality_mask'): missing ['m1'], unknown {}."
    )
    missing = {k: v for k, v in x.items() if k != "m1"}
    expected = keys.format("['m0', 'm2', 'modality_mask']", "[]")
    assert message(lambda: model.predict(missing, verbose=0)) == expected
    assert message(lambda: model(missing)) == expected
    typo = dict(missing, m_1=x["m1"])
    assert message(lambda: model.fit(typo, y, verbose=0)) == keys.format(
        "['m0', 'm2', 'm_1', 'modality_mask']", "['m_1']"
    )
    wide = dict(x, modality_mask=np.ones((8, 4), "float32"))
    columns = "one column per modality ['m0', 'm1', 'm2']; received shape"
    assert message(lambda: model.fit(wide, y, verbose=0)) == (
        f"'modality_mask' must have shape (8, 3), {columns} (8, 4)."
    )
    assert message(lambda: model(wide)) == (
        f"'modality_mask' must have shape (batch, 3), {columns} (8, 4)."
    )
    half = dict(x, modality_mask=x["modality_mask"] * 0.5)
    assert message(lambda: model.evaluate(half, y, verbose=0)) == (
        "'modality_mask' must hold 0 or 1; found 0.5."
    )
    bad_labels = dict(y, label=np.full(8, 3))
    assert message(lambda: model.fit(x, bad_labels, verbose=0)) == (
        "Label 3 is outside the range of Classification(num_classes=3): "
        "labels must lie in [0, 2]."
    )
    nan = dict(x, m2=x["m2"].copy())
    nan["m2"][5, 1] = np.nan
    assert message(lambda: model.fit(nan, y, verbose=0)) == (
        "Modality 'm2' has NaN or infinite values in row 5 (1 row in all). "
        "Fix them, or mark the modality missing for those rows in "
        "'modality_mask'."
    )
    nan["modality_mask"] = x["modality_mask"].copy()
    nan["modality_mask"][5, 2] = 0  # missing, so its values do not matter
    model.fit(nan, y, verbose=0, epochs=1)
    empty = dict(x, modality_mask=x["modality_mask"].copy())
    empty["modality_mask"][[3, 6]] = 0
    assert message(lambda: model.evaluate(empty, y, verbose=0)) == (
        "Sample 3 has every modality missing (2 such samples); every sample "
        "needs at least one present modality."
    )
    short = dict(x, m0=x["m0"][:5])
    assert message(lambda: model.predict(short, verbose=0)) == (
        "Every modality must have the same number of samples on its first "
        "axis; received {'m0': 5, 'm1': 8, 'm2': 8}."
    )
    strings = dict(x, m0=np.array([["a"] * 6] * 8))
    if BACKEND == "tensorflow":
        expected = (
            "Modality 'm0' was built for numeric (float32) input; received "
            "text."
        )
    else:
        expected = (
            "Modality 'm0' holds text; text inputs (a tokenizer inside the "
            "encoder) need the TensorFlow backend, this is "
            f"{BACKEND}. Tokenize in the data pipeline and feed numeric "
            "token ids instead."
        )
    assert message(lambda: model.predict(strings, verbose=0)) == expected


def test_a_loss_term_that_is_off_is_not_logged():
    """By default L_pseudo and L_cons are off (weight 0): no `loss_pseudo`
    or `loss_consistency` in the logs; turned on, they are logged."""
    x, y = make_multimodal(num_samples=32, labeled_fraction=0.5)
    default = build_model()
    default.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    logs = default.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert {"loss_lb", "loss_ulb", "loss_rec", "loss_sup"} <= set(logs)
    assert not {"loss_pseudo", "loss_consistency"} & set(logs)
    on = build_model(loss_weights={"pseudo": 0.5, "consistency": 0.5})
    on.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    logs = on.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert {"loss_pseudo", "loss_consistency"} <= set(logs)


def test_compile_with_a_loss_is_refused():
    model = build_model()
    model.compile(optimizer="adam", loss="mse")
    x, y = make_multimodal(num_samples=8)
    with pytest.raises(ValueError, match=r"compile\(loss='mse'\) would be"):
        model.fit(x, y, epochs=1, verbose=0)


def test_one_modality_trains_without_a_keras_warning():
    """The fusion's softmax over one modality is 1 as meant: no warning;
    the branch widths default to halves of latent_dim."""
    import warnings

    model = keras_robult.Robult(
        {"a": encoders.MLPEncoder(8)}, tasks.Classification(2), latent_dim=9
    )
    assert (model.redundant_dim, model.unique_dim) == (5, 4)
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    x = {"a": np.random.default_rng(0).random((16, 5)).astype("float32")}
    y = {"label": np.arange(16) % 2, "is_labeled": np.ones(16, "float32")}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        model.predict(x, verbose=0)


# -------------------------------------------------------------- linear base
def _additive_regression(samples=48, seed=0):
    rng = np.random.default_rng(seed)
    x = {
        f"m{i}": rng.normal(size=(samples, 4)).astype("float32") for i in (0, 1)
    }
    y = (3 * x["m0"][:, 0] + 2 * x["m1"][:, 1] + 10).astype("float32")
    x["modality_mask"] = np.ones((samples, 2), "float32")
    is_labeled = (np.arange(samples) % 2 == 0).astype("float32")
    return x, y, is_labeled


def test_linear_base_starts_at_ridge_and_learns_only_the_residual(tmp_path):
    x, y, is_labeled = _additive_regression()
    task = tasks.Regression.from_targets(y)
    model = build_model(2, task, linear_base=True, full_set="fused")
    model.fit_linear_base(x, y, is_labeled)
    base = to_numpy(
        model.base([x["m0"], x["m1"]], x["modality_mask"])
    )  # (B, 4, 1), standardised units
    out = model.predict(x, verbose=0)
    # The task head starts at zero: the model predicts the base's ridge,
    # each branch its own pattern's (the target is additive: only the
    # joint ridge of both modalities is close to it).
    np.testing.assert_allclose(
        out["prediction"], task.activation(base[:, 3]), rtol=1e-5, atol=1e-4
    )
    for m, pattern in ((0, 1), (1, 2)):
        np.testing.assert_allclose(
            out["modality_predictions"][:, m],
            task.activation(base[:, pattern]),
            rtol=1e-5,
            atol=1e-4,
        )
    assert np.abs(out["prediction"][:, 0] - y).mean() < 0.05 * y.std()
    fixed = [np.array(w) for w in model.base.get_weights()]
    head = np.array(to_numpy(model.task_head.kernel))
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    model.fit(x, {"label": y, "is_labeled": is_labeled}, epochs=2, verbose=0)
    for before, after in zip(fixed, model.base.get_weights()):
        np.testing.assert_array_equal(before, after)  # not trained
    assert np.any(to_numpy(model.task_head.kernel) != head)
    x["modality_mask"][:5, 1] = 0
    restored, _ = assert_saved_model_predicts_the_same(model, x, tmp_path)
    assert restored.linear_base


def test_a_classifier_base_starts_at_logistic_regression(tmp_path):
    x, _, is_labeled = _additive_regression(60)
    labels = (x["m0"][:, 0] > 0) + 2 * (x["m1"][:, 1] > 0)  # one bit each
    model = build_model(2, tasks.Classification(4), linear_base=True)
    model.fit_linear_base(x, labels, is_labeled)
    assert model.base.loss == "logistic"
    base = to_numpy(model.base([x["m0"], x["m1"]], x["modality_mask"]))
    out = model.predict(x, verbose=0)
    for m, pattern in ((0, 1), (1, 2)):  # each branch: its modality's model
        np.testing.assert_allclose(
            out["modality_predictions"][:, m],
            to_numpy(keras.ops.softmax(base[:, pattern])),
            atol=1e-5,
        )
    # The joint logistic regression already reads both bits.
    joint = np.argmax(base[:, 3], axis=-1)
    assert np.mean(joint == labels) > 0.8
    # (Training the residual is the regression base's test above.)
    restored, _ = assert_saved_model_predicts_the_same(model, x, tmp_path)
    assert restored.base.loss == "logistic"


def test_linear_base_errors():
    x, y, is_labeled = _additive_regression()
    with pytest.raises(ValueError, match="regression and classification"):
        build_model(2, tasks.MultiLabel(3), linear_base=True)
    with pytest.raises(ValueError, match="no linear base"):
        build_model(2, tasks.Regression()).fit_linear_base(x, y)
    model = build_model(2, tasks.Regression(), linear_base=True)
    with pytest.raises(ValueError, match="labeled samples"):
        model.fit_linear_base(x, y, np.zeros_like(is_labeled))
    with pytest.raises(ValueError, match="NaN"):
        model.fit_linear_base(x, np.where(is_labeled > 0, np.nan, y))
    with pytest.raises(ValueError, match="no modality"):
        model.fit_linear_base({"m0": x["m0"]}, y)
    with pytest.raises(ValueError, match="7 labels"):
        model.fit_linear_base(x, y[:7])
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit_linear_base(dict(x, m1=x["m1"][:7]), y)
    gap = dict(x, modality_mask=x["modality_mask"].copy())
    gap["modality_mask"][0] = 0
    with pytest.raises(ValueError, match="has no modality"):
        model.fit_linear_base(gap, y)
