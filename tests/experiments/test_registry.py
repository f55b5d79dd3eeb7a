import pytest

from keras_robult import tasks
from keras_robult.data import fit_standardization
from keras_robult.experiments import evaluate_predictor, registry
from tests.conftest import make_multimodal


@pytest.mark.parametrize("name", list(registry.METHODS))
def test_every_method_trains_and_predicts_on_every_subset(name):
    x, y = make_multimodal(num_samples=48)
    shapes = {m: x[m].shape[1:] for m in ("m0", "m1", "m2")}
    factory = registry.method_factories([name], latent_dim=8)[name]
    method = factory(tasks.Classification(3), shapes, fit_standardization(x))
    if name == "robult-no-sup":
        method.probe_epochs = 2
    method.fit(x, y, epochs=2, batch_size=16, seed=0)
    subsets, curve = evaluate_predictor(
        method.predict, x, y["label"], "classification", ["m0", "m1", "m2"]
    )
    assert len(subsets) == 7 and len(curve) == 10
    assert all(0 <= m["accuracy"] <= 1 for m in subsets.values())
    assert method.predict(x).shape == (48, 3)


def test_probe_trains_only_the_task_head():
    x, y = make_multimodal(num_samples=32)
    shapes = {m: x[m].shape[1:] for m in ("m0", "m1", "m2")}
    method = registry.METHODS["robult-no-sup"](
        tasks.Classification(3), shapes, None, latent_dim=8, probe_epochs=3
    )
    method.fit(x, y, epochs=1, batch_size=16)
    trainable = {v.path.split("/")[1] for v in method.model.trainable_variables}
    assert trainable == {"task_head"}
    weights = method.model.loss_weights
    assert weights["sup"] == 1.0
    assert all(v == 0.0 for k, v in weights.items() if k != "sup")


@pytest.mark.parametrize(
    "name, term, value",
    [
        ("robult", "pseudo", 0.0),
        ("robult-pseudo", "pseudo", 1.0),
        ("robult-no-rec", "rec", 0.0),
        ("robult-no-lb", "lb", 0.0),
        ("robult-no-ulb", "ulb", 0.0),
    ],
)
def test_variants_change_one_loss_weight(name, term, value):
    method = registry.METHODS[name](
        tasks.Classification(3), {"a": (2,)}, None, latent_dim=8
    )
    weights = method.build_model().loss_weights
    assert weights[term] == value
    defaults = (
        registry.METHODS["robult"](
            tasks.Classification(3), {"a": (2,)}, None, latent_dim=8
        )
        .build_model()
        .loss_weights
    )
    assert {k: v for k, v in weights.items() if k != term} == {
        k: v for k, v in defaults.items() if k != term
    }


def test_unknown_method():
    with pytest.raises(ValueError, match="Unknown method"):
        registry.method_factories(["robult", "mae"])


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
