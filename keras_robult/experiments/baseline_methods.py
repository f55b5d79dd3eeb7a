"""The baselines of the comparison as protocol methods."""

import inspect

from keras_robult.baselines.action_mae import ActionMAE
from keras_robult.baselines.gmc import GMC
from keras_robult.baselines.prompt_transformer import PromptTransformer
from keras_robult.baselines.unimodal_ensemble import UnimodalEnsemble
from keras_robult.experiments.callbacks import stage_backup_dir
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


class ModelOptionsMethod(Method):
    """A `Method` whose options beyond `Method`'s own (`latent_dim`,
    `learning_rate`, ...) are keyword arguments of its model."""

    def __init__(self, task, input_shapes, statistics=None, **options):
        own = set(inspect.signature(Method.__init__).parameters)
        super().__init__(
            task,
            input_shapes,
            statistics,
            **{k: v for k, v in options.items() if k in own},
        )
        self.model_kwargs = {k: v for k, v in options.items() if k not in own}


class GMCMethod(ModelOptionsMethod):
    """GMC (Poklukar et al. 2022) with the supervised loss (`GMC`).

    Args:
        two_stage: bool; GMC's original protocol instead of the joint
            objective: the contrastive loss alone on every sample, then the
            classifier alone (representations frozen) on the labeled ones.
        classifier_epochs: int, epochs of that second stage.
        **options: `Method` options, then `GMC` arguments (`temperature`,
            `loss_weights`, `supervised_branches`, `full_set`).
    """

    name = "gmc"

    def __init__(self, *args, two_stage=False, classifier_epochs=200, **kw):
        super().__init__(*args, **kw)
        self.two_stage = two_stage
        self.classifier_epochs = classifier_epochs

    def build_model(self):
        kwargs = dict(self.model_kwargs)
        if self.two_stage:
            kwargs["loss_weights"] = {
                **kwargs.get("loss_weights", {}),
                "sup": 0.0,
            }
        return GMC(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            latent_dim=self.latent_dim,
            projection_dim=self.latent_dim // 2,
            **kwargs,
        )

    @property
    def monitor_task_metric(self):
        return not self.two_stage

    def after_fit(self, x, y, batch_size, seed, verbose, backup_dir):
        if self.two_stage:
            self.fit_head_alone(
                self.model.classifier,
                (x, y, batch_size, seed),
                self.classifier_epochs,
                "    classifier on the frozen representations"
                if verbose
                else None,
                stage_backup_dir(backup_dir, "stage2"),
            )


class ActionMAEMethod(ModelOptionsMethod):
    """ActionMAE (Woo et al. 2023): the task loss on the labeled samples,
    the token reconstruction on every sample (`ActionMAE`)."""

    name = "actionmae"

    def build_model(self):
        return ActionMAE(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            latent_dim=self.latent_dim,
            seed=getattr(self, "seed", None),
            **self.model_kwargs,
        )


class PromptTransMethod(ModelOptionsMethod):
    """Prompt-Trans (Lee et al. 2023): missing-aware prompts, supervised
    on the labeled samples only (`PromptTransformer`)."""

    name = "prompt-trans"
    labeled_only = True

    def build_model(self):
        return PromptTransformer(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            latent_dim=self.latent_dim,
            seed=getattr(self, "seed", None),
            **self.model_kwargs,
        )
