"""The simple references: `linear` is scikit-learn's model fitted per
presence pattern on the labeled rows that hold it; `mlp` is the
early-fusion MLP with its own training defaults."""

import numpy as np
import pytest
from sklearn.linear_model import (
    LogisticRegression,
    LogisticRegressionCV,
    RidgeCV,
)
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from keras_robult import tasks
from keras_robult.experiments import registry
from keras_robult.experiments.reference_methods import PENALTIES
from keras_robult.utils.logistic import supported_options
from tests.conftest import make_multimodal, once

MODALITIES = ("m0", "m1", "m2")


def linear(task, x):
    factory = registry.method_factories(["linear"], latent_dim=8)["linear"]
    return factory(task, {m: x[m].shape[1:] for m in MODALITIES}, None)


@once
def test_linear_regression_is_ridge_per_pattern_on_the_rows_that_hold_it():
    x, y = make_multimodal(num_samples=80, labeled_fraction=0.5)
    rng = np.random.default_rng(1)
    target = (x["m0"][:, 0] - 2 * x["m2"][:, 1] + rng.normal(size=80)).astype(
        "float32"
    )
    x["modality_mask"][:10, 2] = 0  # gaps in training
    method = linear(tasks.Regression.from_targets(target), x)
    method.fit(x, {"label": target, "is_labeled": y["is_labeled"]})
    test = {m: x[m] for m in MODALITIES}
    test["modality_mask"] = np.tile([1.0, 0.0, 1.0], (80, 1)).astype("float32")
    test["modality_mask"][:5] = [1.0, 0.0, 0.0]
    test["modality_mask"][5:8] = 0.0
    got = method.predict(test)
    labeled = y["is_labeled"] > 0
    for pattern, rows in (
        ([0, 2], slice(8, None)),
        ([0], slice(0, 5)),
    ):
        holds = labeled & (x["modality_mask"][:, pattern] > 0).all(1)
        features = np.concatenate([x[f"m{i}"] for i in pattern], axis=1)
        reference = make_pipeline(StandardScaler(), RidgeCV(PENALTIES))
        reference.fit(features[holds].astype("float64"), target[holds])
        np.testing.assert_allclose(
            got[rows, 0],
            reference.predict(features[rows].astype("float64")),
            rtol=1e-5,
            atol=1e-5,
        )
    # No modality: the labeled mean (the regression prior).
    np.testing.assert_allclose(got[5:8, 0], target[labeled].mean(), rtol=1e-5)


@once
@pytest.mark.parametrize("fraction, folds", [(0.05, None), (0.15, 3)])
def test_linear_classification_is_a_logistic_regression_per_pattern(
    fraction, folds
):
    """Its penalty by stratified cross-validation where every class has
    at least two labels (folds: the fewest labels of a class, at most 5),
    scikit-learn's default where a class has one."""
    x, y = make_multimodal(num_samples=60, labeled_fraction=fraction)
    method = linear(tasks.Classification(3), x)
    method.fit(x, y)
    mask = np.zeros((60, 3), "float32")
    mask[:, 1] = 1
    got = method.predict(dict(x, modality_mask=mask))
    labeled = y["is_labeled"] > 0
    counts = np.bincount(y["label"][labeled])
    assert counts.min() == (folds or 1)
    if folds is None:
        estimator = LogisticRegression(max_iter=2000)
    else:
        estimator = LogisticRegressionCV(
            Cs=PENALTIES,
            cv=StratifiedKFold(folds, shuffle=True, random_state=0),
            max_iter=2000,
            scoring="neg_log_loss",
            **supported_options(
                LogisticRegressionCV,
                l1_ratios=(0.0,),
                use_legacy_attributes=False,
            ),
        )
    reference = make_pipeline(StandardScaler(), estimator)
    reference.fit(x["m1"][labeled].astype("float64"), y["label"][labeled])
    np.testing.assert_allclose(
        got, reference.predict_proba(x["m1"].astype("float64")), atol=1e-6
    )


def test_mlp_trains_on_labeled_samples_for_its_minimum_steps():
    x, y = make_multimodal(num_samples=48)
    factory = registry.method_factories(["mlp"], latent_dim=8)["mlp"]
    method = factory(
        tasks.Classification(3), {m: x[m].shape[1:] for m in MODALITIES}, None
    )
    assert method.labeled_only and method.min_steps == 1000
    method.min_steps = 30
    method.fit(x, y, epochs=2, batch_size=16, seed=0)
    # 12 labeled samples: one batch an epoch, so 30 epochs.
    assert int(y["is_labeled"].sum()) == 12
    assert len(method.history.history["loss"]) == 30
    prediction = method.predict(x)
    np.testing.assert_allclose(prediction.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_the_references_refuse_fine_tuning(name):
    factory = registry.METHODS[name]
    with pytest.raises(ValueError, match="reference on fixed features"):
        factory(tasks.Classification(3), {"m0": (4,)}, None, finetune=object())
