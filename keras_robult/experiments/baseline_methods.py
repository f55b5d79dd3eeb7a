"""The baselines of the comparison as protocol methods."""

import dataclasses
import inspect

from keras_robult.baselines.action_mae import ActionMAE
from keras_robult.baselines.gmc import GMC
from keras_robult.baselines.prompt_transformer import PromptTransformer
from keras_robult.baselines.unimodal_ensemble import UnimodalEnsemble
from keras_robult.experiments.callbacks import stage_backup_dir
from keras_robult.experiments.method import Method
from keras_robult.experiments.method_options import MethodOptions


class ModelOptionsMethod(Method):
    """A `Method` whose options beyond its `options_type`'s (`latent_dim`,
    `learning_rate`, ...) are keyword arguments of its model
    (`model_kwargs`)."""

    takes_model_options = True


class ModelMethod(ModelOptionsMethod):
    """A `Method` that trains one model class, `model_type`, built as
    `model_type(encoders, task, latent_dim=..., **options)` with the
    default encoder of each modality (and `seed=`, when the model takes
    one). A model with that constructor needs no method class of its own:
    `model_method(model_type)` makes one for its `MethodSpec`.

    Class attributes:
        model_type: the Keras model class.
        labeled_only: True for a model trained on the labeled samples
            only (its unlabeled ones never enter the pipeline).
    """

    model_type = None

    def build_model(self):
        options = {"latent_dim": self.latent_dim, **self.model_kwargs}
        accepted = inspect.signature(self.model_type.__init__).parameters
        if "seed" in accepted:
            options.setdefault("seed", getattr(self, "seed", None))
        return self.model_type(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            **options,
        )


def model_method(model_type, labeled_only=False):
    """The `ModelMethod` subclass that trains `model_type` (on the labeled
    samples only with `labeled_only`)."""
    return type(
        f"{model_type.__name__}Method",
        (ModelMethod,),
        {
            "__module__": __name__,
            "__doc__": f"Trains `{model_type.__name__}` (`ModelMethod`).",
            "model_type": model_type,
            "labeled_only": labeled_only,
        },
    )


class UnimodalMethod(ModelMethod):
    """One supervised model per modality, trained on the labeled samples
    only; subsets predict by late fusion (`UnimodalEnsemble`)."""

    name = "unimodal"
    model_type = UnimodalEnsemble
    labeled_only = True


@dataclasses.dataclass(frozen=True)
class GMCOptions(MethodOptions):
    """`GMCMethod`'s options: `MethodOptions` and these.

    Args:
        two_stage: bool; GMC's original protocol instead of the joint
            objective: the contrastive loss alone on every sample, then the
            classifier alone (representations frozen) on the labeled ones.
        classifier_epochs: int, epochs of that second stage.
    """

    two_stage: bool = False
    classifier_epochs: int = 200


class GMCMethod(ModelOptionsMethod):
    """GMC (Poklukar et al. 2022) with the supervised loss (`GMC`).

    Args:
        task: as in `Method`.
        input_shapes: as in `Method`.
        statistics: as in `Method`.
        **options: the fields of `GMCOptions`, then `GMC` arguments
            (`temperature`, `loss_weights`, `supervised_branches`,
            `full_set`).
    """

    name = "gmc"
    options_type = GMCOptions

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


class ActionMAEMethod(ModelMethod):
    """ActionMAE (Woo et al. 2023): the task loss on the labeled samples,
    the token reconstruction on every sample (`ActionMAE`)."""

    name = "actionmae"
    model_type = ActionMAE


class PromptTransMethod(ModelMethod):
    """Prompt-Trans (Lee et al. 2023): missing-aware prompts, supervised
    on the labeled samples only (`PromptTransformer`)."""

    name = "prompt-trans"
    model_type = PromptTransformer
    labeled_only = True
