import keras
import keras_hub
import numpy as np
import pytest

from keras_robult.encoders import PooledBackbone


def tiny_bert():
    return keras_hub.models.BertBackbone(
        vocabulary_size=30,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=6,
    )


def tiny_resnet():
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64],
        stackwise_num_blocks=[1],
        stackwise_num_strides=[1],
        block_type="basic_block",
        image_shape=(None, None, 3),
    )


def test_text_is_the_mean_of_the_non_padding_token_states():
    backbone = tiny_bert()
    layer = PooledBackbone(backbone, "text")
    ids = np.array([[5, 7, 9, 0, 0, 0], [3, 0, 0, 0, 0, 0], [0] * 6])
    pooled = keras.ops.convert_to_numpy(layer(ids))
    states = keras.ops.convert_to_numpy(
        backbone(
            {
                "token_ids": ids,
                "segment_ids": np.zeros_like(ids),
                "padding_mask": ids != 0,
            }
        )["sequence_output"]
    )
    np.testing.assert_allclose(pooled[0], states[0, :3].mean(0), atol=1e-5)
    np.testing.assert_allclose(pooled[1], states[1, 0], atol=1e-5)
    np.testing.assert_array_equal(pooled[2], 0.0)  # no text: zeros
    assert pooled.shape == (3, 8)


def test_image_is_the_spatial_mean_of_the_scaled_feature_map(tmp_path):
    backbone = tiny_resnet()
    layer = PooledBackbone(backbone, "image")
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3))
    pooled = keras.ops.convert_to_numpy(layer(images.astype("float32")))
    features = keras.ops.convert_to_numpy(backbone(images / 255.0))
    np.testing.assert_allclose(pooled, features.mean((1, 2)), atol=1e-4)
    # Saved and loaded: the same numbers.
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "pooled.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(images.astype("float32"))),
        pooled,
        atol=1e-5,
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="'text' or 'image'"):
        PooledBackbone(tiny_bert(), "audio")
    with pytest.raises(ValueError, match="must take 'token_ids'"):
        PooledBackbone(tiny_resnet(), "text")


def test_the_unused_bert_pooler_stays_frozen_through_saving():
    """Mean pooling never reads BERT's [CLS] pooler: a trainable text
    backbone trains everything else, before and after a config round trip
    (keras-hub rebuilds backbones from their arguments), so no variable
    lacks a gradient and the optimizer state reloads."""
    layer = PooledBackbone(tiny_bert(), "text", trainable=False)
    layer.trainable = True
    pooler = {id(v) for v in layer.backbone.get_layer("pooled_dense").weights}
    for copy in (layer, PooledBackbone.from_config(layer.get_config())):
        trainable = copy.trainable_weights
        assert len(trainable) == len(copy.weights) - 2
        if copy is layer:
            assert not pooler & {id(v) for v in trainable}
        names = {v.path for v in trainable}
        assert not [n for n in names if "pooled_dense" in n]
    image = PooledBackbone(tiny_resnet(), "image", trainable=False)
    image.trainable = True
    assert len(image.trainable_weights) == len(image.backbone.trainable_weights)
    assert image.trainable_weights
