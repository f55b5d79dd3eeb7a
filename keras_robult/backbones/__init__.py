"""keras-hub backbones for image+text data: presets, their cached
features, and the assembly of a trained model with its backbones."""

from keras_robult.backbones.backbone_config import BackboneConfig
from keras_robult.backbones.features import (
    FeatureCache,
    compute_features,
    records_features,
)
from keras_robult.backbones.presets import (
    Backbones,
    load_backbone,
    load_backbones,
    resolve_preset,
)
from keras_robult.backbones.surgery import raw_input_model, replace_encoders

__all__ = [
    "BackboneConfig",
    "Backbones",
    "FeatureCache",
    "compute_features",
    "load_backbone",
    "load_backbones",
    "raw_input_model",
    "records_features",
    "replace_encoders",
    "resolve_preset",
]
