"""Robult in the protocol: its regression defaults (the linear base, the
fused rule, early stopping on held-out labels) and the regression test of
the linear base against the plain MLP."""

import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.datasets import suite
from keras_robult.experiments import registry, run_protocol
from keras_robult.layers import LinearBase
from tests.conftest import make_multimodal, once, to_numpy


def _method(name, task, x, **options):
    factory = registry.method_factories([name], latent_dim=8, **options)[name]
    shapes = {m: x[m].shape[1:] for m in x if m != "modality_mask"}
    return factory(task, shapes, None)


def _regression(samples=60):
    x, y = make_multimodal(num_samples=samples, labeled_fraction=0.5)
    target = (3 * x["m0"][:, 0] - x["m2"][:, 1]).astype("float32")
    return x, {"label": target, "is_labeled": y["is_labeled"]}


def test_regression_defaults_to_the_linear_base_and_the_fused_rule():
    x, y = _regression()
    task = tasks.Regression.from_targets(y["label"])
    robult = _method("robult", task, x)
    assert robult.resolved_model_kwargs["linear_base"]
    assert robult.resolved_model_kwargs["full_set"] == "fused"
    assert robult.build_model().linear_base
    # The paper's method, and any classification, have none.
    assert not _method("robult-paper", task, x).build_model().linear_base
    classifier = _method("robult", tasks.Classification(3), x)
    assert not classifier.linear_base
    assert classifier.model_kwargs.get("full_set") is None
    # An explicit choice wins.
    assert not _method("robult", task, x, linear_base=False).linear_base
    with pytest.raises(ValueError, match="validation_fraction"):
        _method("robult", task, x, validation_fraction=1.0)


def _complementary(samples=120):
    """Two views that share nothing: each holds one bit of a 4-class
    label (`keras_robult.datasets.suite.complementary_classification`)."""
    x, y = suite.complementary_classification(samples, seed=0)
    x["modality_mask"] = np.ones((samples, 2), "float32")
    labeled = np.zeros(samples, "float32")
    labeled[::4] = 1.0
    return x, {"label": y, "is_labeled": labeled}


def test_alignment_is_off_where_the_views_share_nothing():
    """`view_alignment="auto"` (the default of `robult`): views that
    share nothing lose `L_lb` and `L_ulb` and get the logistic linear
    base with the fused rule (without the base, the product of experts);
    redundant views, regression and the paper's method keep the
    alignment; an explicit choice wins."""
    task = tasks.Classification(4)
    x, y = _complementary()
    robult = _method("robult", task, x)
    assert robult.view_alignment == "auto"
    assert not robult.resolve_alignment(x)
    assert robult.redundancy < 0.2
    model = robult.build_model()
    assert (model.loss_weights["lb"], model.loss_weights["ulb"]) == (0, 0)
    assert model.loss_weights["sup"] == 1.0 and model.full_set == "fused"
    assert model.linear_base and model.base.loss == "logistic"
    unbased = _method("robult", task, x, linear_base=False)
    unbased.resolve_alignment(x)
    assert unbased.build_model().full_set == "late"
    # The paper's method, the ablations and a forced choice keep it.
    for name in ("robult-paper", "robult-no-rec"):
        paper = _method(name, task, x)
        assert paper.resolve_alignment(x)
        assert paper.build_model().loss_weights["ulb"] == 1.0
    assert _method("robult", task, x, view_alignment=True).resolve_alignment(x)
    # Weights and a rule the user names are kept.
    named = _method(
        "robult", task, x, loss_weights={"ulb": 0.5}, full_set="mean"
    )
    named.resolve_alignment(x)
    model = named.build_model()
    assert (model.loss_weights["lb"], model.loss_weights["ulb"]) == (0, 0.5)
    assert model.full_set == "mean"
    # Redundant views (each a noisy code of the label), and regression
    # on the complementary views, keep it.
    redundant, _ = make_multimodal(num_samples=120, noise=0.5)
    kept = _method("robult", tasks.Classification(3), redundant)
    assert kept.resolve_alignment(redundant) and kept.redundancy > 0.2
    assert kept.build_model().loss_weights["lb"] == 1.0
    assert not kept.build_model().linear_base
    regression = _method("robult", tasks.Regression(), x)
    assert regression.resolve_alignment(x) and regression.redundancy is None
    with pytest.raises(ValueError, match="view_alignment"):
        _method("robult", task, x, view_alignment="yes")


@once  # the method's keys and base; the base layer is tested on all three
def test_robult_and_its_paper_twin_share_a_training_only_when_aligned():
    task = tasks.Classification(4)
    x, y = _complementary()
    keys = {
        name: _method(name, task, x).training_key(x)
        for name in ("robult", "robult-paper")
    }
    assert keys["robult"] != keys["robult-paper"]
    method = _method("robult", task, x)
    method.fit(x, y, epochs=1, batch_size=32)
    assert method.model.loss_weights["lb"] == 0.0
    assert method.model.full_set == "fused"
    # The logistic base, fitted again on every label after training.
    reference = LinearBase(2, 4, loss="logistic")
    labeled = y["is_labeled"] > 0
    reference.adapt(
        [x["left"][labeled], x["right"][labeled]],
        y["label"][labeled],
        np.ones((int(labeled.sum()), 2)),
    )
    for fitted, expected in zip(
        method.model.base.get_weights(), reference.get_weights()
    ):
        np.testing.assert_allclose(fitted, expected, atol=1e-6)
    redundant, _ = make_multimodal(num_samples=120, noise=0.5)
    keys = {
        name: _method(name, tasks.Classification(3), redundant).training_key(
            redundant
        )
        for name in ("robult", "robult-paper")
    }
    assert keys["robult"] == keys["robult-paper"]


def test_hold_out_takes_a_seeded_share_of_the_labeled_samples():
    x, y = _regression()
    method = _method("robult", tasks.Regression(), x, validation_fraction=0.2)
    kept, (x_val, labels) = method.hold_out(x, y, seed=3)
    labeled = np.flatnonzero(y["is_labeled"] > 0)
    held = np.flatnonzero((y["is_labeled"] > 0) & (kept["is_labeled"] == 0))
    assert len(held) == round(0.2 * len(labeled))
    assert set(held) <= set(labeled)
    np.testing.assert_array_equal(kept["label"], y["label"])  # no copy lost
    np.testing.assert_array_equal(labels, y["label"][held])
    np.testing.assert_array_equal(x_val["m1"], x["m1"][held])
    again, _ = method.hold_out(x, y, seed=3)
    np.testing.assert_array_equal(again["is_labeled"], kept["is_labeled"])
    few = {**y, "is_labeled": np.zeros_like(y["is_labeled"])}
    few["is_labeled"][:4] = 1  # 0.2 of 4 rounds to 1: no early stopping
    assert method.hold_out(x, few, seed=3) == (few, None)


@once
@pytest.mark.parametrize("retrain", [True, False])
def test_the_base_is_fitted_again_on_every_label_after_training(retrain):
    x, y = _regression()
    task = tasks.Regression.from_targets(y["label"])
    method = _method("robult", task, x, retrain=retrain)
    method.fit(x, y, epochs=3, batch_size=32, seed=0)
    assert method.history is not None
    reference = LinearBase(3, 1)
    labeled = y["is_labeled"] > 0
    reference.adapt(
        [x[m][labeled] for m in ("m0", "m1", "m2")],
        to_numpy(task.standardize(y["label"][labeled])),
        x["modality_mask"][labeled],
    )
    for got, expected in zip(
        method.model.base.get_weights(), reference.get_weights()
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@once
def test_early_stopping_chooses_the_epochs_of_a_training_on_every_label(
    monkeypatch,
):
    """`retrain`: the first training holds labels out and stops early; the
    second starts again on every label for the epochs up to the best one
    (by the validation MAE), with no validation split."""
    x, y = _regression()
    task = tasks.Regression.from_targets(y["label"])
    method = _method("robult", task, x, patience=2)
    calls = []
    fit_on_base = method._fit_on_base

    def spy(x, y, epochs, batch_size, seed, validation, kw):
        fit_on_base(x, y, epochs, batch_size, seed, validation, kw)
        calls.append(
            (epochs, float(np.sum(y["is_labeled"])), validation is not None)
        )
        calls[-1] += (
            list(method.history.history["val_mae"])
            if validation is not None
            else [],
        )

    monkeypatch.setattr(method, "_fit_on_base", spy)
    method.fit(x, y, epochs=12, batch_size=32, seed=0)
    (first, held, validated, curve), (second, every, again, _) = calls
    labels = float(np.sum(y["is_labeled"]))
    assert (first, validated, every, again) == (12, True, labels, False)
    assert held == labels - round(0.2 * labels)
    assert second == int(np.argmin(curve)) + 1
    assert len(method.history.history["loss"]) == second
    # The rule of `best_epochs`, on a known curve.
    method.history.history = {"val_mae": [3.0, 2.0, 2.0, 2.5]}
    assert method.best_epochs() == 2


@once
def test_robult_beats_the_plain_mlp_on_an_additive_target():
    """The regression test of issue 49: on a target additive across two
    views (`suite.additive_regression`, 70 labels, seed 0) the early-fusion
    MLP on the labeled samples reached an MAE of 63.6 with every modality
    and Robult before the linear base 68.7 (ridge regression: 11.6)."""
    x, y = suite.additive_regression()
    task = tasks.Regression.from_targets(y)
    results, _ = run_protocol(
        x,
        y,
        task,
        registry.method_factories(["robult", "mlp"], latent_dim=32),
        seeds=(0,),
        labeled_fraction=0.2,
        epochs=30,
        verbose=0,
    )
    mae = {
        r["method"]: r["mean"]
        for r in results["results"]
        if r["metric"] == "mae" and len(r["subset"]) == 2
    }
    assert mae["robult"] < 0.5 * mae["mlp"], mae
