"""The baselines of the comparison as protocol methods."""

from keras_robult.baselines.action_mae import ActionMAE
from keras_robult.baselines.gmc import GMC
from keras_robult.baselines.prompt_transformer import PromptTransformer
from keras_robult.baselines.unimodal_ensemble import UnimodalEnsemble
from keras_robult.experiments.method import Method


class UnimodalMethod(Method):
    """One supervised model per modality, trained on the labeled samples
    only; subsets predict by late fusion (`UnimodalEnsemble`)."""

    name = "unimodal"
    labeled_only = True

    def build_model(self):
        return UnimodalEnsemble(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            latent_dim=self.latent_dim,
        )


class GMCMethod(Method):
    """GMC (Poklukar et al. 2022) with the supervised loss (`GMC`)."""

    name = "gmc"

    def __init__(self, *args, temperature=0.3, **kwargs):
        super().__init__(*args, **kwargs)
        self.temperature = temperature

    def build_model(self):
        return GMC(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            latent_dim=self.latent_dim,
            projection_dim=self.latent_dim // 2,
            temperature=self.temperature,
        )


class ActionMAEMethod(Method):
    """ActionMAE (Woo et al. 2023): the task loss on the labeled samples,
    the token reconstruction on every sample (`ActionMAE`)."""

    name = "actionmae"

    def __init__(self, *args, num_heads=8, rec_weight=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_heads = num_heads
        self.rec_weight = rec_weight

    def build_model(self):
        return ActionMAE(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            latent_dim=self.latent_dim,
            num_heads=self.num_heads,
            rec_weight=self.rec_weight,
            seed=getattr(self, "seed", None),
        )


class PromptTransMethod(Method):
    """Prompt-Trans (Lee et al. 2023): missing-aware prompts, supervised
    on the labeled samples only (`PromptTransformer`)."""

    name = "prompt-trans"
    labeled_only = True

    def __init__(self, *args, num_heads=8, missing_rate=0.7, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_heads = num_heads
        self.missing_rate = missing_rate

    def build_model(self):
        return PromptTransformer(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            latent_dim=self.latent_dim,
            num_heads=self.num_heads,
            missing_rate=self.missing_rate,
            seed=getattr(self, "seed", None),
        )
