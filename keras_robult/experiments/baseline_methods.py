"""The baselines of the comparison as protocol methods."""

from keras_robult.baselines.gmc import GMC
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
