"""The losses of Robult as plain functions of tensors."""

from keras_robult.losses.gmc_contrastive import gmc_contrastive_loss
from keras_robult.losses.latent_reconstruction import (
    latent_reconstruction_loss,
)
from keras_robult.losses.soft_pu import (
    cosine_similarity_matrix,
    soft_pu_loss,
)
from keras_robult.utils.tensor import l2_normalize, safe_divide

__all__ = [
    "soft_pu_loss",
    "latent_reconstruction_loss",
    "gmc_contrastive_loss",
    "cosine_similarity_matrix",
    "l2_normalize",
    "safe_divide",
]
