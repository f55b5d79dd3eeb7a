"""Built-in per-modality encoders."""

from keras_robult.encoders.mlp_encoder import MLPEncoder
from keras_robult.encoders.pooled_backbone import PooledBackbone
from keras_robult.encoders.sequence_encoder import SequenceEncoder

__all__ = ["MLPEncoder", "PooledBackbone", "SequenceEncoder"]
