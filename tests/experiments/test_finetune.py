"""End-to-end training (`--finetune`): the backbones move, and the
protocol's cheap prediction path (fine-tuned features once, then the rest
of the model per mask) equals the whole model on streamed raw inputs."""

import keras
import numpy as np
import pytest

from keras_robult.data import ImageTextRecords
from keras_robult.experiments.finetune import FinetuneSource, index_arrays
from keras_robult.experiments.registry import method_factories
from keras_robult.tasks import Classification
from tests.cli.test_image_text_recipes import WORDS, save_tiny_presets
from tests.datasets.writers import write_image

SIZE, LENGTH = (16, 16), 6


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finetune")
    text, image = save_tiny_presets(folder)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(12):
        paths.append(str(folder / f"{index}.png"))
        write_image(paths[-1], rng, (20, 24))
    paths[3] = ""  # no image
    words = WORDS[5:]
    texts = [" ".join(rng.choice(words, 4)) for _ in range(12)]
    texts[5] = ""  # no text
    records = ImageTextRecords(
        [str(i) for i in range(12)], paths, texts, np.arange(12) % 3
    )
    widths = {"image": 64, "text": 8}
    return FinetuneSource(
        records,
        text,
        image,
        SIZE,
        LENGTH,
        statistics={},
        widths=widths,
        learning_rate=1e-2,
        batch_size=5,
    )


def weights(layer):
    return [np.array(w) for w in layer.get_weights()]


def test_backbones_train_and_prediction_equals_the_whole_model(
    source, tmp_path
):
    task = Classification(3)
    factory = method_factories(["robult"], latent_dim=8, finetune=source)
    method = factory["robult"](task, {}, {})
    x = index_arrays(12)
    x["modality_mask"] = source.records.modality_mask()
    y = {
        "label": source.records.labels,
        "is_labeled": (np.arange(12) < 6).astype("float32"),
    }
    method.fit(x, y, epochs=1, batch_size=4, seed=0)
    model = method.model
    # Fresh copies of the presets: what the backbones started from.
    for name in ("image", "text"):
        trained = model.encoders[name].layers[0]
        start = source.backbone(name)
        assert trained.trainable and trained is not start
        before = weights(start.backbone)
        after = weights(trained.backbone)
        assert len(before) == len(after)
        moved = [not np.allclose(b, a) for b, a in zip(before, after)]
        assert sum(moved) > len(moved) // 2, name
    # Every mask the protocol uses, with gaps: the feature path (each
    # record through the fine-tuned backbones once) against the whole
    # model on the streamed images and token ids.
    rng = np.random.default_rng(1)
    mask = (rng.uniform(size=(12, 2)) > 0.3).astype("float32")
    mask[mask.sum(axis=1) == 0, 1] = 1.0
    mask *= x["modality_mask"]
    keep = mask.sum(axis=1) > 0
    rows = {k: v[keep] for k, v in x.items() if k != "modality_mask"}
    rows["modality_mask"] = mask[keep]
    fast = method.predict(rows)
    streamed = source.dataset(source.select(rows), batch_size=4)
    whole = model.predict(streamed.map(lambda a, b: a), verbose=0)
    np.testing.assert_allclose(fast, whole["prediction"], atol=1e-5)
    assert len(method._features) == int(keep.sum())
    # A second mask reuses the features: no record runs again.
    everything = method.predict(x)
    assert len(method._features) == 12
    # The saved model is the whole one: images and token ids in.
    reloaded = keras.saving.load_model(method.save(str(tmp_path / "m.keras")))
    batch, _ = next(iter(source.dataset(source.select(x), batch_size=12)))
    batch = {k: np.asarray(v) for k, v in batch.items()}
    np.testing.assert_allclose(
        reloaded.predict(batch, verbose=0)["prediction"], everything, atol=1e-5
    )
