import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.data import fit_standardization
from keras_robult.experiments import evaluate_predictor, registry
from tests.conftest import make_multimodal, once, to_numpy
from tests.testing import registry_model_methods, run_multimodal_model_test


def snapshot(model):
    """Every weight of the model, trainable or frozen, by path."""
    return {v.path: to_numpy(v) for v in model.weights}


KERAS_METHODS = [n for n in registry.METHODS if n != "linear"]
# The first method of each saved-model class: its trained model is held
# to the contract of every model.
CONTRACT_METHODS = registry_model_methods()


def test_every_model_class_of_the_package_keeps_the_contract():
    """Every model class the package defines is the model of a registered
    method, and so held to the contract below: a model class nobody
    registered fails here."""
    from keras_robult.models.multimodal_model import model_classes

    classes = {registry.METHODS[n].model_class for n in CONTRACT_METHODS}
    assert classes == set(model_classes())
    assert len(classes) >= 6 and set(CONTRACT_METHODS) <= set(KERAS_METHODS)


@pytest.mark.parametrize(
    "name",
    [
        # A variant of a model class the contract covers differs by its
        # options (loss weights, fusion rule), the same on every backend.
        pytest.param(n, marks=() if n in CONTRACT_METHODS else once)
        for n in KERAS_METHODS
    ],
)
def test_every_method_trains_and_predicts_on_every_subset(name, tmp_path):
    x, y = make_multimodal(num_samples=48)
    shapes = {m: x[m].shape[1:] for m in ("m0", "m1", "m2")}
    factory = registry.method_factories([name], latent_dim=8)[name]
    method = factory(tasks.Classification(3), shapes, fit_standardization(x))
    method.min_steps = None  # the epochs asked
    if name == "robult-no-sup":
        method.probe_epochs = 2
    method.fit(x, y, epochs=2, batch_size=16, seed=0)
    subsets, curve = evaluate_predictor(
        method.predict, x, y["label"], "classification", ["m0", "m1", "m2"]
    )
    assert len(subsets) == 7 and len(curve) == 10
    # Trained for the epochs asked (the probe's, for robult-no-sup).
    assert len(method.history.history["loss"]) == (
        method.probe_epochs if name == "robult-no-sup" else 2
    )
    # Each single-modality subset is predicted from its own modality.
    single = []
    for index in range(3):
        mask = np.zeros((48, 3), "float32")
        mask[:, index] = 1
        prediction = method.predict(dict(x, modality_mask=mask))
        np.testing.assert_allclose(prediction.sum(-1), 1.0, rtol=1e-5)
        accuracy = np.mean(prediction.argmax(-1) == y["label"])
        assert subsets[f"m{index}"]["accuracy"] == accuracy
        single.append(prediction)
    assert not np.allclose(single[0], single[1])
    assert not np.allclose(single[1], single[2])
    if name in CONTRACT_METHODS:  # the model's own contract
        run_multimodal_model_test(method.model, x, None, tmp_path)


def test_no_sup_trains_without_l_sup_then_probes_the_latents():
    """`robult-no-sup` (Table 3): the main fit has `L_sup` off, so the task
    head never moves and the loss is `L_lb + L_ulb + L_rec`; then a probe
    fits the task head alone on the labeled samples, every other weight
    frozen."""
    x, y = make_multimodal(num_samples=32)
    shapes = {m: x[m].shape[1:] for m in ("m0", "m1", "m2")}
    method = registry.METHODS["robult-no-sup"](
        tasks.Classification(3), shapes, None, latent_dim=8, probe_epochs=3
    )
    seen = {}
    build_model, fit_probe = method.build_model, method.fit_head_alone

    def build_and_snapshot():
        model = build_model()
        model(x)
        seen["initial"] = snapshot(model)
        seen["trainable"] = {v.path for v in model.trainable_variables}
        return model

    def probe(*args):
        seen["weights"] = dict(method.model.loss_weights)
        seen["history"] = method.history.history
        seen["trained"] = snapshot(method.model)
        fit_probe(*args)

    method.build_model, method.fit_head_alone = build_and_snapshot, probe
    method.fit(x, y, epochs=2, batch_size=16)

    assert seen["weights"] == {
        "lb": 1.0,
        "ulb": 1.0,
        "rec": 1.0,
        "sup": 0.0,
        "pseudo": 0.0,
        "consistency": 0.0,
    }
    history = seen["history"]
    np.testing.assert_allclose(
        history["loss"],
        np.add(history["loss_lb"], history["loss_ulb"])
        + np.asarray(history["loss_rec"]),
        rtol=1e-5,
    )
    assert "loss_sup" not in history  # off: not logged
    initial, trained = seen["initial"], seen["trained"]
    final = snapshot(method.model)
    for path in seen["trainable"]:
        in_head = "task_head" in path
        # Main fit: everything but the task head moved.
        assert np.array_equal(initial[path], trained[path]) == in_head, path
        # Probe: only the task head moved.
        assert np.array_equal(trained[path], final[path]) != in_head, path
    trainable = {v.path for v in method.model.trainable_variables}
    assert trainable == {p for p in seen["trainable"] if "task_head" in p}
    assert method.model.loss_weights == {
        "lb": 0.0,
        "ulb": 0.0,
        "rec": 0.0,
        "sup": 1.0,
        "pseudo": 0.0,
        "consistency": 0.0,
    }


def robult_model(name):
    return registry.METHODS[name](
        tasks.Classification(3), {"a": (2,)}, None, latent_dim=8
    ).build_model()


def test_robult_is_the_default_and_robult_paper_the_paper():
    model = robult_model("robult")
    assert model.loss_weights == dict(
        {k: 1.0 for k in model.loss_weights}, pseudo=0.0, consistency=0.0
    )
    assert model.late_fusion == "product"
    assert (model.full_set, model.min_fused_modalities) == ("mean", 2)
    paper = robult_model("robult-paper")
    assert paper.loss_weights == model.loss_weights
    assert paper.late_fusion == "mean"
    assert (paper.full_set, paper.min_fused_modalities) == ("fused", None)
    pseudo = robult_model("robult-pseudo")
    assert pseudo.loss_weights == dict(model.loss_weights, pseudo=1.0)
    assert pseudo.late_fusion == "product"
    assert (pseudo.full_set, pseudo.min_fused_modalities) == ("mean", 2)


@pytest.mark.parametrize(
    "name, term",
    [
        ("robult-no-rec", "rec"),
        ("robult-no-lb", "lb"),
        ("robult-no-ulb", "ulb"),
    ],
)
def test_ablations_are_the_paper_less_one_term(name, term):
    model = robult_model(name)
    paper = robult_model("robult-paper")
    assert model.loss_weights == dict(paper.loss_weights, **{term: 0.0})
    assert model.late_fusion == "mean"


def test_unknown_method():
    with pytest.raises(ValueError, match="Unknown method"):
        registry.method_factories(["robult", "mae"])


@pytest.mark.parametrize(
    "name, options, attribute, value",
    [
        ("gmc", {"temperature": 0.7, "full_set": "mean"}, "full_set", "mean"),
        ("actionmae", {"rec_weight": 0.5, "depth": 1}, "depth", 1),
        ("prompt-trans", {"prompt_length": 4}, "prompt_length", 4),
    ],
)
def test_baseline_options_reach_their_models(name, options, attribute, value):
    method = registry.METHODS[name](
        tasks.Classification(3),
        {"a": (2,), "b": (3,)},
        None,
        latent_dim=16,
        learning_rate=3e-4,
        **options,
    )
    assert method.learning_rate == 3e-4 and method.latent_dim == 16
    model = method.build_model()
    assert getattr(model, attribute) == value
    assert model.latent_dim == 16


def test_fixed_defaults_yield_to_options_and_to_finetuning():
    """The registry's validated GMC learning rate is a default: an explicit
    one wins, and a fine-tuning run uses the fine-tuning rate."""
    from types import SimpleNamespace

    shapes = {"a": (2,)}
    gmc = registry.METHODS["gmc"]
    assert gmc(tasks.Classification(3), shapes, None).learning_rate == 1e-4
    assert (
        gmc(tasks.Classification(3), shapes, None, learning_rate=0.01)
    ).learning_rate == 0.01
    source = SimpleNamespace(
        learning_rate=3e-5, widths={"image": 4, "text": 3}, statistics=None
    )
    tuned = gmc(tasks.Classification(3), shapes, None, finetune=source)
    assert tuned.learning_rate == 3e-5


def test_optimizer_options():
    method = registry.METHODS["robult"](
        tasks.Classification(3),
        {"a": (2,)},
        None,
        weight_decay=1e-3,
        ema_momentum=0.9,
    )
    optimizer = method.optimizer()
    assert type(optimizer).__name__ == "AdamW"
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9


def test_a_backup_directory_does_not_change_the_trained_weights(tmp_path):
    """The epoch backup must not change what a seed trains to (building
    the model before `fit` would draw the initial weights differently)."""
    x, y = make_multimodal(num_samples=32)
    shapes = {m: x[m].shape[1:] for m in ("m0", "m1", "m2")}
    weights = []
    for backup in (None, str(tmp_path / "backup")):
        method = registry.METHODS["robult"](
            tasks.Classification(3), shapes, None, latent_dim=8
        )
        method.fit(x, y, epochs=1, batch_size=16, seed=3, backup_dir=backup)
        weights.append([to_numpy(v) for v in method.model.weights])
    assert len(weights[0]) == len(weights[1])
    for plain, backed_up in zip(*weights):
        np.testing.assert_array_equal(plain, backed_up)


def test_the_default_comparison_and_the_groups():
    """`robult train` and the recipes compare Robult, the paper's Robult,
    the paper's four baselines and the two references unless `--methods`
    says otherwise; the Table 3 ablations are a group of their own."""
    assert registry.DEFAULT_METHODS == [
        "robult",
        "robult-paper",
        "gmc",
        "unimodal",
        "actionmae",
        "prompt-trans",
        "linear",
        "mlp",
    ]
    assert registry.expand_methods(["robult", "ablations", "robult"]) == [
        "robult",
        "robult-no-sup",
        "robult-no-rec",
        "robult-no-lb",
        "robult-no-ulb",
    ]
    assert set(registry.method_factories(["references"])) == {"linear", "mlp"}
    # A registered method joins the default comparison only by name.
    assert set(registry.METHOD_GROUPS["ablations"]).isdisjoint(
        registry.DEFAULT_METHODS
    )
    assert "robult-pseudo" not in registry.DEFAULT_METHODS


def test_modality_dropout_reaches_every_method_and_fusion_robult_only():
    x, y = make_multimodal(num_samples=64)
    shapes = {m: x[m].shape[1:] for m in ("m0", "m1", "m2")}
    factories = registry.method_factories(
        KERAS_METHODS,
        latent_dim=8,
        modality_dropout=0.4,
        robult_options={"late_fusion": "product"},
    )
    for name, factory in factories.items():
        method = factory(tasks.Classification(3), shapes, None)
        assert method.modality_dropout == 0.4, name
        model = method.build_model()
        robult = name.startswith("robult")
        assert getattr(model, "late_fusion", None) == (
            "product" if robult else None
        ), name
        batch, _ = next(iter(method.dataset(x, y, 64, seed=0)[0]))
        mask = np.asarray(batch["modality_mask"])
        if not method.labeled_only:
            assert 0.2 < 1.0 - mask.mean() < 0.4, name
        assert mask.sum(1).min() >= 1, name


@pytest.mark.parametrize("name", KERAS_METHODS)
def test_a_spec_names_the_model_class_its_method_builds(name):
    """`robult evaluate` names a saved file's results through the specs:
    each spec's `model_class` is the class its method trains."""
    x, _ = make_multimodal(num_samples=8)
    shapes = {m: x[m].shape[1:] for m in ("m0", "m1", "m2")}
    spec = registry.METHODS[name]
    method = spec(tasks.Classification(3), shapes, None, latent_dim=8)
    model = method.build_model()
    assert type(model).__name__ == spec.model_class
    # The first spec of a class names its files: a Robult file is robult's.
    assert registry.method_of_model(model) == (
        "robult" if spec.model_class == "Robult" else name
    )


def test_the_specs_say_what_each_method_is():
    """The tuner, `--hparams` and fine-tuning read the specs, not the
    classes: Robult variants, references, one registration a name."""
    variants = registry.robult_variants()
    assert variants[:2] == ["robult", "robult-paper"]
    assert {"gmc", "linear", "mlp"}.isdisjoint(variants)
    assert [n for n, s in registry.METHODS.items() if s.reference] == [
        "linear",
        "mlp",
    ]
    assert all(s.description for s in registry.METHODS.values())
    assert registry.METHODS["linear"].model_class is None
    spec = registry.METHODS["robult"]
    with pytest.raises(ValueError, match="'robult' is registered twice"):
        registry._register(spec, spec)
    with pytest.raises(ValueError, match="reference on fixed features"):
        registry.METHODS["mlp"](
            tasks.Classification(3), {"m0": (4,)}, None, finetune=object()
        )
