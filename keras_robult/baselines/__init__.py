"""Baselines compared with Robult in the evaluation protocol."""

from keras_robult.baselines.action_mae import ActionMAE
from keras_robult.baselines.early_fusion_mlp import EarlyFusionMLP
from keras_robult.baselines.gmc import GMC
from keras_robult.baselines.prompt_transformer import PromptTransformer
from keras_robult.baselines.unimodal_ensemble import UnimodalEnsemble

__all__ = [
    "ActionMAE",
    "EarlyFusionMLP",
    "GMC",
    "PromptTransformer",
    "UnimodalEnsemble",
]
