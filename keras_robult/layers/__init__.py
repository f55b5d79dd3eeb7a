"""Building blocks of the Robult model."""

from keras_robult.layers.feature_standardization import (
    FeatureStandardization,
)
from keras_robult.layers.fusion_encoder import FusionEncoder
from keras_robult.layers.latent_projection import LatentProjection
from keras_robult.layers.linear_base import LinearBase
from keras_robult.layers.modality_mlp import ModalityMLP
from keras_robult.layers.transformer_block import TransformerBlock

__all__ = [
    "FeatureStandardization",
    "FusionEncoder",
    "LatentProjection",
    "LinearBase",
    "ModalityMLP",
    "TransformerBlock",
]
