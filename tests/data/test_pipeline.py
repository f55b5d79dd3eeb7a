import keras
import numpy as np
import pytest

import keras_robult
from keras_robult import data, tasks
from tests.conftest import JIT_COMPILE, make_multimodal


def test_dataset_structure_and_training_on_every_backend():
    x, y = make_multimodal(num_samples=40)
    dataset = data.make_dataset(
        x,
        y["label"],
        y["is_labeled"],
        batch_size=16,
        shuffle=True,
        seed=0,
        drop_remainder=True,
        task=tasks.Classification(3),
    )
    inputs, targets = next(iter(dataset))
    assert set(inputs) == {"m0", "m1", "m2", "modality_mask"}
    assert tuple(inputs["m0"].shape) == (16, 6)
    assert set(targets) == {"label", "is_labeled"}
    assert len(list(dataset)) == 2  # static batches only
    model = keras_robult.Robult(
        {f"m{i}": keras_robult.encoders.MLPEncoder(16) for i in range(3)},
        tasks.Classification(3),
        latent_dim=16,
        redundant_dim=8,
        unique_dim=8,
    )
    model.compile(optimizer="adam", jit_compile=JIT_COMPILE)
    history = model.fit(dataset, epochs=2, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][-1])
    predictions = model.predict(dataset, verbose=0)["prediction"]
    assert predictions.shape == (32, 3)


def test_shuffle_is_seeded():
    x, y = make_multimodal(num_samples=30)

    def order(seed):
        dataset = data.make_dataset(
            x, y["label"], batch_size=30, shuffle=True, seed=seed
        )
        return next(iter(dataset))[0]["m0"].numpy()

    np.testing.assert_array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))


def test_epochs_depend_on_the_seed_and_the_epoch_number_only():
    """`initial_epoch`: an endless dataset whose epoch e is the same in any
    dataset started at or before e (what an exact resume needs), and a new
    shuffle and modality dropout every epoch."""
    x, y = make_multimodal(num_samples=30)

    def epochs(initial_epoch, count):
        dataset = data.make_dataset(
            x,
            y["label"],
            batch_size=10,
            shuffle=True,
            seed=4,
            drop_remainder=True,
            modality_dropout=0.4,
            initial_epoch=initial_epoch,
        )
        batches = list(dataset.take(3 * count).as_numpy_iterator())
        return [
            {
                k: np.concatenate([b[0][k] for b in batches[3 * e : 3 * e + 3]])
                for k in ("m0", "modality_mask")
            }
            for e in range(count)
        ]

    from_zero, from_two = epochs(0, 4), epochs(2, 2)
    for a, b in zip(from_zero[2:], from_two):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(from_zero[0]["m0"], from_zero[1]["m0"])
    masks = [e["modality_mask"] for e in from_zero]
    assert not np.array_equal(masks[0], masks[1])
    # Each epoch holds every sample once; dropped values are zeros.
    for epoch in from_zero:
        kept = epoch["modality_mask"][:, 0] > 0
        rows = {tuple(r) for r in epoch["m0"][kept]}
        assert rows <= {tuple(r) for r in x["m0"]}
        assert np.all(epoch["m0"][~kept] == 0)
        assert epoch["modality_mask"].sum(1).min() >= 1


def test_missing_modalities_are_zero_filled_and_nan_allowed_there():
    x, y = make_multimodal(num_samples=4)
    x["modality_mask"][1, 2] = 0
    x["m2"][1] = np.nan
    inputs, _ = next(iter(data.make_dataset(x, y["label"], batch_size=4)))
    np.testing.assert_array_equal(inputs["m2"].numpy()[1], 0.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, y: x["m1"].__setitem__((3, 0), np.inf), "'m1' .* row 3"),
        (lambda x, y: x.__setitem__("m0", x["m0"][:-1]), "same number"),
        (lambda x, y: y.__setitem__("label", y["label"] + 5), "outside"),
        (lambda x, y: x["modality_mask"].__setitem__(2, 0), "Sample 2"),
    ],
    ids=["inf", "length", "label", "empty_sample"],
)
def test_clear_errors(change, message):
    x, y = make_multimodal(num_samples=8)
    change(x, y)
    with pytest.raises(ValueError, match=message):
        data.make_dataset(
            x, y["label"], y["is_labeled"], task=tasks.Classification(3)
        )


def test_standardization_uses_training_rows_only():
    rng = np.random.default_rng(0)
    x = {
        "a": rng.normal(5, 2, (100, 3)).astype("float32"),
        "s": np.zeros((100, 4, 2), "float32"),
    }
    x["a"][80:] += 100  # test rows far away
    stats = data.fit_standardization(x, rows=np.arange(80))
    assert set(stats) == {"a"}  # sequences are left alone
    out = data.apply_standardization(x, stats)
    np.testing.assert_allclose(out["a"][:80].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out["a"][:80].std(0), 1, atol=1e-4)
    assert out["a"][80:].mean() > 10
    layer = keras_robult.layers.FeatureStandardization(*stats["a"])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x["a"])), out["a"], atol=1e-4
    )


def test_a_constant_feature_up_to_rounding_noise_is_not_scaled():
    """Dividing by float32 rounding noise would amplify it a millionfold;
    a feature that really varies, however little, is still scaled."""
    rng = np.random.default_rng(0)
    base = np.float32(0.7)
    noise = rng.integers(-2, 3, 50) * np.spacing(base)  # last bits only
    small = rng.normal(0, 1e-3, 50)
    x = {"a": np.stack([base + noise, 0.7 + small], 1).astype("float32")}
    mean, std = data.fit_standardization(x)["a"]
    assert std[0] == 1.0
    np.testing.assert_allclose(std[1], small.std() + 1e-6, rtol=1e-4)
    np.testing.assert_allclose(mean, x["a"].mean(0), rtol=1e-6)


def test_modality_dropout_redraws_masks_every_epoch():
    x, y = make_multimodal(num_samples=400)
    x["modality_mask"][:100, 2] = 0.0  # missing in the data itself

    def epochs(seed, count=2):
        dataset = data.make_dataset(
            x,
            y["label"],
            y["is_labeled"],
            batch_size=400,
            shuffle=False,
            seed=seed,
            modality_dropout=0.5,
        )
        return [next(iter(dataset))[0] for _ in range(count)]

    first, second = epochs(seed=1)
    for batch in (first, second):
        mask = np.asarray(batch["modality_mask"])
        assert np.all(mask <= x["modality_mask"]) and mask.sum(1).min() >= 1
        assert 0.3 < 1 - mask[100:].mean() < 0.5
        for index in range(3):  # dropped values are zeros
            values = np.asarray(batch[f"m{index}"])
            np.testing.assert_array_equal(values[mask[:, index] == 0], 0.0)
            kept = mask[:, index] > 0
            np.testing.assert_array_equal(values[kept], x[f"m{index}"][kept])
    assert not np.array_equal(first["modality_mask"], second["modality_mask"])
    again = epochs(seed=1)
    for ours, theirs in zip((first, second), again):
        np.testing.assert_array_equal(
            ours["modality_mask"], theirs["modality_mask"]
        )
    other = epochs(seed=2, count=1)[0]
    assert not np.array_equal(first["modality_mask"], other["modality_mask"])
    with pytest.raises(ValueError, match="modality_dropout"):
        data.make_dataset(x, modality_dropout=1.0)
