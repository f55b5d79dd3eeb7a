import keras
import numpy as np

from keras_robult import baselines, encoders, tasks
from tests.conftest import JIT_COMPILE, make_multimodal, to_numpy


def build():
    return baselines.UnimodalEnsemble(
        {f"m{i}": encoders.MLPEncoder(8, hidden_units=(8,)) for i in range(3)},
        tasks.Classification(3),
        latent_dim=8,
    )


def test_late_fusion_of_independent_models():
    model = build()
    x, _ = make_multimodal(num_samples=3)
    x["modality_mask"] = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 1]], "float32")
    out = to_numpy(model(x))
    branch = out["modality_predictions"]
    np.testing.assert_allclose(out["prediction"][0], branch[0, 0], rtol=1e-6)
    np.testing.assert_allclose(
        out["prediction"][1], branch[1, 1:].mean(0), rtol=1e-5
    )
    np.testing.assert_allclose(
        out["prediction"][2], branch[2].mean(0), rtol=1e-5
    )


def test_unlabeled_samples_and_absent_modalities_do_not_train():
    model = build()
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=8)
    x["modality_mask"][:, 2] = 0  # modality m2 never present
    y["is_labeled"][:] = 1
    model(x)
    before = {v.path: to_numpy(v).copy() for v in model.trainable_variables}
    model.train_on_batch(x, y)
    absent = {
        id(v)
        for layer in (model.encoders["m2"], model.heads["m2"])
        for v in layer.trainable_variables
    }
    for variable in model.trainable_variables:
        moved = not np.array_equal(before[variable.path], to_numpy(variable))
        assert moved != (id(variable) in absent), variable.path
    # No labeled sample: nothing moves at all.
    y["is_labeled"][:] = 0
    before = [to_numpy(v).copy() for v in model.trainable_variables]
    model.train_on_batch(x, y)
    for old, variable in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(old, to_numpy(variable))


def test_loss_is_the_sum_of_each_model_own_weighted_mean():
    """`loss_sup` = sum over modalities of modality m's mean cross-entropy
    over its labeled, present samples, weighted by `sample_weight`."""
    model = build()
    model.compile(optimizer="sgd", jit_compile=JIT_COMPILE)
    x, y = make_multimodal(num_samples=10, labeled_fraction=0.5)
    x["modality_mask"][:4] = [[1, 0, 0], [0, 1, 1], [1, 0, 1], [0, 1, 0]]
    weight = np.random.default_rng(0).uniform(0.5, 2.0, 10).astype("float32")
    logs = model.evaluate(
        x, y, sample_weight=weight, batch_size=10, verbose=0, return_dict=True
    )
    branch = to_numpy(model(x))["modality_predictions"].astype("float64")
    expected = 0.0
    for m in range(3):
        rows = np.flatnonzero(
            (y["is_labeled"] > 0) & (x["modality_mask"][:, m] > 0)
        )
        ce = -np.log(branch[rows, m, y["label"][rows]])
        expected += np.sum(weight[rows] * ce) / np.sum(weight[rows])
    np.testing.assert_allclose(logs["loss_sup"], expected, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)
