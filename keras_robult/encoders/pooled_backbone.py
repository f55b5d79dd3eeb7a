"""A keras-hub backbone pooled to one vector per sample."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_robult")
class PooledBackbone(keras.layers.Layer):
    """A keras-hub backbone pooled to one vector per sample: the input of
    a modality's encoder in the image+text recipes.

    Text backbones (BERT family: inputs `token_ids`, `padding_mask` and
    optionally `segment_ids`) are pooled by the mean of the token states
    over the non-padding tokens (id 0 is padding), the sentence embedding
    of sentence-transformers models such as MiniLM. Image backbones
    (ResNet, EfficientNet, ...: a feature map `(batch, h, w, channels)`)
    are pooled by the spatial mean; pixel values in [0, 255] are scaled by
    `image_scale` first (1 / 255 by default: the [0, 1] inputs of
    keras-hub's image backbones with their own normalisation inside).

    Args:
        backbone: a `keras_hub.models.Backbone` (or any Keras model with
            the same inputs and outputs).
        kind: `"text"` or `"image"`.
        image_scale: float, multiplies the pixels of an image backbone.
        **kwargs: base `Layer` arguments (`trainable=False` freezes it).

    Call arguments:
        inputs: token ids `(batch, length)` (text) or images `(batch,
            height, width, 3)` in [0, 255] (image).

    Returns:
        float `(batch, backbone width)`.

    Example:

    ```python
    backbone = keras_hub.models.BertBackbone.from_preset(preset_dir)
    text = keras_robult.encoders.PooledBackbone(backbone, "text")
    text(token_ids)  # (batch, 384) for MiniLM
    ```
    """

    def __init__(self, backbone, kind, image_scale=1.0 / 255.0, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("text", "image"):
            raise ValueError(
                f"`kind` must be 'text' or 'image'; received {kind!r}."
            )
        self.backbone = backbone
        self.kind = kind
        self.image_scale = image_scale
        names = [i.name for i in getattr(backbone, "inputs", None) or []]
        if kind == "text" and "token_ids" not in names:
            raise ValueError(
                "A text backbone must take 'token_ids' (a keras-hub text "
                f"backbone); this one takes {names}."
            )
        self._freeze_unused()

    #: Layers of a text backbone the mean pooling never reads (BERT's
    #: [CLS] pooler): kept frozen, so that training the backbone gives
    #: every trainable variable a gradient, and a saved model reloads with
    #: the optimizer variables it was saved with.
    UNUSED_TEXT_LAYERS = ("pooled_dense",)

    def _freeze_unused(self):
        backbone = getattr(self, "backbone", None)
        if getattr(self, "kind", None) != "text" or backbone is None:
            return
        for layer in getattr(backbone, "layers", ()):
            if layer.name in self.UNUSED_TEXT_LAYERS:
                layer.trainable = False

    @property
    def trainable(self):
        return keras.layers.Layer.trainable.fget(self)

    @trainable.setter
    def trainable(self, value):
        keras.layers.Layer.trainable.fset(self, value)
        self._freeze_unused()

    def build(self, input_shape):
        if not self.backbone.built:
            self.backbone.build(self._backbone_shape(input_shape))
        self.built = True

    def _backbone_shape(self, input_shape):
        if self.kind == "image":
            return input_shape
        names = [i.name for i in self.backbone.inputs]
        return {name: input_shape for name in names}

    def call(self, inputs):
        if self.kind == "image":
            features = self.backbone(
                ops.cast(inputs, self.compute_dtype) * self.image_scale
            )
            return ops.mean(features, axis=(1, 2))
        token_ids = ops.cast(inputs, "int32")
        padding_mask = ops.not_equal(token_ids, 0)
        feed = {"token_ids": token_ids, "padding_mask": padding_mask}
        names = [i.name for i in self.backbone.inputs]
        if "segment_ids" in names:
            feed["segment_ids"] = ops.zeros_like(token_ids)
        outputs = self.backbone({k: v for k, v in feed.items() if k in names})
        states = (
            outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        )
        weights = ops.cast(padding_mask, states.dtype)[..., None]
        total = ops.sum(states * weights, axis=1)
        # A text with no token (a missing modality) pools to zeros.
        return total / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def compute_output_shape(self, input_shape):
        if self.kind == "image":
            return (input_shape[0], self.backbone.output.shape[-1])
        output = self.backbone.output
        if isinstance(output, dict):
            output = output["sequence_output"]
        return (input_shape[0], output.shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "kind": self.kind,
                "image_scale": self.image_scale,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
