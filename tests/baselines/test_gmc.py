import numpy as np
import pytest

from keras_robult import baselines, encoders, tasks
from tests.conftest import JIT_COMPILE, make_multimodal, to_numpy
from tests.models import numpy_reference as ref
from tests.models.test_robult_objective import (
    TASKS,
    assert_terms,
    logged,
    make_batch,
    perturb,
)


def build():
    return baselines.GMC(
        {
            f"m{i}": encoders.MLPEncoder(16, hidden_units=(16,))
            for i in range(3)
        },
        tasks.Classification(3),
        latent_dim=16,
        projection_dim=8,
    )


@pytest.mark.parametrize(
    "task_name, branches",
    [(name, "all") for name in TASKS] + [("classification", "joint")],
)
def test_gmc_objective_matches_the_reference(task_name, branches):
    x, y, sample_weight = make_batch(task_name, seed=6)
    model = perturb(
        baselines.GMC(
            {
                "m0": encoders.MLPEncoder(12, hidden_units=(9,)),
                "m1": encoders.MLPEncoder(8, hidden_units=(6,)),
                "m2": encoders.MLPEncoder(5, hidden_units=(6,)),
            },
            TASKS[task_name],
            latent_dim=8,
            projection_dim=5,
            temperature=0.45,
            loss_weights={"contrastive": 0.8, "sup": 1.7},
            supervised_branches=branches,
        )
    )
    logs = logged(model, x, y, sample_weight)
    expected = ref.gmc_loss(
        model, x, y["label"], y["is_labeled"], sample_weight
    )
    assert_terms(logs, expected, ("loss_contrastive", "loss_sup", "loss"))


@pytest.mark.parametrize("full_set", ["joint", "mean"])
def test_gmc_prediction_rule_on_every_subset(full_set):
    """All present: `c(g(joint))` (or the mean rule with `full_set="mean"`);
    otherwise `c(g(mean of the present latents))`, not a late fusion of the
    branch outputs."""
    x, _, _ = make_batch("classification", seed=7)
    x = {k: v[:7] for k, v in x.items()}
    subsets = [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 0],
        [1, 0, 1],
        [0, 1, 1],
        [1, 1, 1],
    ]
    x["modality_mask"] = np.array(subsets, "float32")
    model = perturb(
        baselines.GMC(
            {
                f"m{i}": encoders.MLPEncoder(8, hidden_units=(6,))
                for i in range(3)
            },
            TASKS["classification"],
            latent_dim=8,
            projection_dim=5,
            full_set=full_set,
        )
    )
    out = to_numpy(model(x))
    expected = ref.gmc_forward(model, x)
    np.testing.assert_allclose(
        out["prediction"], expected["prediction"], rtol=1e-4, atol=1e-6
    )
    late = np.stack(
        [
            out["modality_predictions"][j, np.array(s) > 0].mean(0)
            for j, s in enumerate(subsets)
        ]
    )
    for j in (3, 4, 5):  # two present: not the late fusion
        assert not np.allclose(out["prediction"][j], late[j], atol=1e-4)


def test_unknown_loss_weight_is_named():
    with pytest.raises(ValueError) as error:
        baselines.GMC(
            {"a": encoders.MLPEncoder(8)},
            tasks.Classification(2),
            loss_weights={"pu": 1.0},
        )
    assert str(error.value) == (
        "Unknown `loss_weights` keys ['pu']; valid keys are ['contrastive', "
        "'sup']."
    )


def test_two_stage_trains_only_the_classifier_in_its_second_stage():
    """GMC's original protocol: stage 1 has no supervised term, stage 2
    moves the classifier and nothing else."""
    from keras_robult.experiments.baseline_methods import GMCMethod

    x, y = make_multimodal(num_samples=48)
    seen = {}

    class Recording(GMCMethod):
        def after_fit(self, *args):
            seen["sup_weight"] = self.model.loss_weights["sup"]
            seen["before"] = {
                v.path: np.array(v.numpy()) for v in self.model.weights
            }
            super().after_fit(*args)

    method = Recording(
        tasks.Classification(3),
        {k: v.shape[1:] for k, v in x.items() if k != "modality_mask"},
        latent_dim=16,
        two_stage=True,
        classifier_epochs=3,
        jit_compile=JIT_COMPILE,
    )
    method.fit(x, {"label": y["label"], "is_labeled": y["is_labeled"]}, 2, 16)
    assert seen["sup_weight"] == 0.0
    moved = {
        v.path
        for v in method.model.weights
        if not np.array_equal(v.numpy(), seen["before"][v.path])
    }
    classifier = {v.path for v in method.model.classifier.weights}
    assert moved == classifier


def test_bad_option_values_are_named():
    for kwargs, message in [
        ({"supervised_branches": "some"}, "`supervised_branches` must be"),
        ({"full_set": "late"}, "`full_set` must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            baselines.GMC(
                {"a": encoders.MLPEncoder(8)},
                tasks.Classification(2),
                **kwargs,
            )
