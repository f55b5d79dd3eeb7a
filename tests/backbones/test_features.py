import os

import keras
import keras_hub
import numpy as np

from keras_robult.backbones.features import (
    FeatureCache,
    compute_features,
)
from keras_robult.datasets import food101
from keras_robult.encoders import PooledBackbone
from tests.datasets.writers import write_food101
from tests.encoders.test_pooled_backbone import tiny_bert, tiny_resnet


class Counting:
    """An encoder that counts its calls."""

    def __init__(self, encoder):
        self.encoder, self.calls = encoder, 0

    def __call__(self, inputs):
        self.calls += 1
        return self.encoder(inputs)


def setup(tmp_path):
    write_food101(tmp_path, {"train": 3, "test": 1})
    records = food101.load_records(str(tmp_path), validation_fraction=0)
    train = records["train"]
    with open(train.image_paths[4], "wb") as handle:
        handle.write(b"not an image")
    words = ["[PAD]", "[UNK]", "best", "recipe", ",", "no"]
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=words)
    image = Counting(PooledBackbone(tiny_resnet(), "image"))
    text = Counting(PooledBackbone(tiny_bert(), "text"))
    return train, tokenizer, image, text


def test_a_bad_image_is_a_missing_image_and_the_cache_is_reused(tmp_path):
    train, tokenizer, image, text = setup(tmp_path / "data")

    def compute(size=(16, 16)):
        return compute_features(train, image, text, tokenizer, size, 6, 4)

    cache = FeatureCache(str(tmp_path / "cache"))
    settings = {"image": "tiny-resnet", "text": "tiny-bert", "size": 16}
    features, cached = cache.get_or_compute(train, settings, compute)
    # 8 readable records in batches of 4, then record 4 without its image.
    assert not cached and image.calls == 3
    np.testing.assert_array_equal(features["unreadable"], [4])
    np.testing.assert_array_equal(features["kept"], np.arange(9))
    assert features["image"].shape == (9, 64)
    assert features["text"].shape == (9, 8)
    # Record 4 keeps its text; its image is missing (mask 0, zeros).
    np.testing.assert_array_equal(features["modality_mask"][4], [0, 1])
    assert not features["image"][4].any() and features["text"][4].any()
    np.testing.assert_array_equal(
        features["labels"], train.labels[features["kept"]]
    )
    # The image features are the backbone's on the decoded, resized file.
    from keras_robult.data.image_text_pipeline import decode_image

    pixels = decode_image(train.image_paths[0], (16, 16)).numpy()[None]
    expected = keras.ops.convert_to_numpy(image.encoder(pixels))[0]
    np.testing.assert_allclose(features["image"][0], expected, atol=1e-4)
    # Second run: from disk, the backbones are not called again.
    again, cached = cache.get_or_compute(train, settings, compute)
    assert cached and image.calls == 3 and text.calls == 3
    for key in features:
        np.testing.assert_array_equal(again[key], features[key])
    # Another image size (or preset): another entry, computed anew.
    other = dict(settings, size=8)
    _, cached = cache.get_or_compute(train, other, lambda: compute((8, 8)))
    assert not cached and image.calls == 6
    assert len(os.listdir(tmp_path / "cache")) == 2
    # Another record list too.
    _, cached = cache.get_or_compute(train.subset([0, 1]), settings, compute)
    assert not cached


def test_more_than_half_the_images_unreadable_is_an_error(tmp_path):
    """A records file moved without its images: stopped before decoding,
    naming the first files; corrupt files: after the pass, named too."""
    import pytest

    train, tokenizer, image, text = setup(tmp_path / "data")
    for path in train.image_paths[:6]:
        os.remove(path)
    with pytest.raises(ValueError) as error:
        compute_features(train, image, text, tokenizer, (16, 16), 6, 4)
    message = str(error.value)
    assert message.startswith("6 of 9 image files do not exist (first: ")
    assert f"{train.image_paths[0]}: no such file" in message
    assert "and 3 more" in message and image.calls == 0
    train, tokenizer, image, text = setup(tmp_path / "data2")
    for path in train.image_paths[:5]:
        with open(path, "wb") as handle:
            handle.write(b"not an image")
    with pytest.raises(ValueError, match=r"^5 of 9 images cannot be read"):
        compute_features(train, image, text, tokenizer, (16, 16), 6, 4)
