"""The methods the `robult` command can compare, each registered once."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from keras_robult.experiments.baseline_methods import (
    ActionMAEMethod,
    GMCMethod,
    PromptTransMethod,
    UnimodalMethod,
)
from keras_robult.experiments.finetune import finetuned_class
from keras_robult.experiments.reference_methods import LinearMethod, MLPMethod
from keras_robult.experiments.robult_method import RobultMethod
from keras_robult.models.robult import PAPER_OPTIONS


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """One method of the comparison, registered once in `METHODS`: the
    command's `--methods` choices, `robult evaluate`'s names of saved
    models, the tuner, the `--hparams` loader, the fine-tuning check and
    the tests' lists of methods all read it.

    A spec is the method's factory: `spec(task, input_shapes, statistics,
    **options)` builds its `Method` with `defaults` under `options` (a
    `loss_weights` dict is merged over the spec's own).

    Args:
        name: the method's name in `--methods` and in the results.
        method_class: its `Method` class (or a class with the same
            interface, e.g. `LinearMethod`).
        defaults: the method's own option values, over its class's.
        model_class: the name of the Keras model class whose saved files
            are this method's (`robult evaluate` names such a file's
            results after the first spec with it); by default the
            `model_type` of a `ModelMethod` (`model_method(Model)`), else
            None (a method that saves no model).
        reference: a reference on fixed features, refused with
            fine-tuning (`finetune=`).
        description: one line for the documentation's method table.
    """

    name: str
    method_class: type
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model_class: str | None = None
    reference: bool = False
    description: str = ""

    def __post_init__(self):
        model_type = getattr(self.method_class, "model_type", None)
        if self.model_class is None and model_type is not None:
            object.__setattr__(self, "model_class", model_type.__name__)

    @property
    def is_robult(self):
        """True for Robult and its variants (what `--hparams` and the
        tuner take)."""
        return issubclass(self.method_class, RobultMethod)

    def __call__(
        self, task, input_shapes, statistics, finetune=None, **options
    ):
        """The method's `Method`, with `options` over `defaults`. With
        `finetune` (a `FinetuneSource`), its backbones are trained end to
        end and its fine-tuning learning rate replaces a default one
        (chosen for training on frozen features)."""
        defaults = dict(self.defaults)
        klass = self.method_class
        if finetune is not None and self.reference:
            raise ValueError(
                f"{self.name} is a reference on fixed features; with "
                "fine-tuning (backbones trained end to end) leave it out "
                "of the methods."
            )
        if finetune is not None:  # backbones trained end to end
            klass = finetuned_class(klass)
            defaults.pop("learning_rate", None)
            options["source"] = finetune
        if "loss_weights" in defaults and "loss_weights" in options:
            options["loss_weights"] = {
                **defaults["loss_weights"],
                **options["loss_weights"],
            }
        method = klass(
            task, input_shapes, statistics, **{**defaults, **options}
        )
        method.name = self.name
        return method


#: The paper's method in the protocol: its model options, and the
#: soft-PU alignment on whatever the data (`RobultMethod`'s
#: `view_alignment`).
PAPER_METHOD = {**PAPER_OPTIONS, "view_alignment": True}


def _paper_less(term):
    """The paper's options with one loss term switched off."""
    weights = {**PAPER_OPTIONS["loss_weights"], term: 0.0}
    return {**PAPER_METHOD, "loss_weights": weights}


def _register(*specs):
    """dict name -> spec, in registration order (a name once)."""
    table = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"Method {spec.name!r} is registered twice.")
        table[spec.name] = spec
    return table


#: Every method, by name: the one place a method is registered.
METHODS = _register(
    MethodSpec(
        "robult",
        RobultMethod,
        model_class="Robult",
        description="Robult with this package's defaults",
    ),
    MethodSpec(
        "unimodal",
        UnimodalMethod,
        description="one supervised model per modality, late fusion",
    ),
    # Chosen on a validation split (benchmarks/RESULTS.md): at temperature
    # 0.3 and Adam 1e-3 (before the search) GMC's contrastive term
    # over-trains within the shared 150-epoch budget.
    MethodSpec(
        "gmc",
        GMCMethod,
        {"learning_rate": 1e-4},
        model_class="GMC",
        description="Geometric Multimodal Contrastive learning",
    ),
    MethodSpec(
        "actionmae",
        ActionMAEMethod,
        description="ActionMAE: missing modality tokens reconstructed",
    ),
    MethodSpec(
        "prompt-trans",
        PromptTransMethod,
        description="missing-aware prompts on a multimodal transformer",
    ),
    # The paper's exact method (our default predicts subsets by the
    # product of experts of their branches, not their mean).
    MethodSpec(
        "robult-paper",
        RobultMethod,
        PAPER_METHOD,
        model_class="Robult",
        description="Robult exactly as the paper specifies it",
    ),
    # Robult with the self-training term (our addition, not the paper's).
    MethodSpec(
        "robult-pseudo",
        RobultMethod,
        {"loss_weights": {"pseudo": 1.0}},
        model_class="Robult",
        description="Robult with the self-training term",
    ),
    # The ablations of the paper's Table 3: the paper's method less a term.
    MethodSpec(
        "robult-no-sup",
        RobultMethod,
        {**_paper_less("sup"), "probe": True},
        model_class="Robult",
        description="the paper's Robult without L_sup, a probe on top",
    ),
    MethodSpec(
        "robult-no-rec",
        RobultMethod,
        _paper_less("rec"),
        model_class="Robult",
        description="the paper's Robult without L_rec",
    ),
    MethodSpec(
        "robult-no-lb",
        RobultMethod,
        _paper_less("lb"),
        model_class="Robult",
        description="the paper's Robult without L_lb",
    ),
    MethodSpec(
        "robult-no-ulb",
        RobultMethod,
        _paper_less("ulb"),
        model_class="Robult",
        description="the paper's Robult without L_ulb",
    ),
    # The simple references, on the labeled samples alone.
    MethodSpec(
        "linear",
        LinearMethod,
        reference=True,
        description="scikit-learn per presence pattern, labeled samples",
    ),
    MethodSpec(
        "mlp",
        MLPMethod,
        model_class="EarlyFusionMLP",
        reference=True,
        description="an early-fusion MLP on the labeled samples",
    ),
)


#: What `robult train` and the recipes compare without `--methods`:
#: Robult, the paper's exact Robult, the paper's four baselines and the
#: two simple references (the ablations have a table of their own:
#: `--methods ablations`).
DEFAULT_METHODS = [
    "robult",
    "robult-paper",
    "gmc",
    "unimodal",
    "actionmae",
    "prompt-trans",
    "linear",
    "mlp",
]
#: Names that stand for several methods in `--methods`.
METHOD_GROUPS = {
    # The paper's Table 3: the paper's method less one term.
    "ablations": [
        "robult-no-sup",
        "robult-no-rec",
        "robult-no-lb",
        "robult-no-ulb",
    ],
    "references": ["linear", "mlp"],
}


def expand_methods(names):
    """`names` with each group of `METHOD_GROUPS` replaced by its methods,
    each method once, in order."""
    expanded = []
    for name in names:
        for method in METHOD_GROUPS.get(name, [name]):
            if method not in expanded:
                expanded.append(method)
    return expanded


def method_factories(
    names, robult_options=None, method_options=None, **options
):
    """dict name -> factory `(task, input_shapes, statistics) -> Method`.

    `options` go to every method's constructor (e.g. `latent_dim`),
    `robult_options` (a dict, e.g. `{"late_fusion": "product"}`) to the
    Robult variants' only, `method_options` (dict name -> dict, e.g. the
    values of `--hparams`) to the named methods' only, last (a
    `loss_weights` dict is merged over the method's own);
    `finetune=` a `FinetuneSource` makes each method train its keras-hub
    backbones end to end (`keras_robult.experiments.finetune`)."""
    names = expand_methods(names)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(
            f"Unknown method(s) {unknown}; choose from "
            f"{list(METHODS) + list(METHOD_GROUPS)}."
        )
    factories = {}
    for name in names:
        own = dict(options)
        if METHODS[name].is_robult:
            own.update(robult_options or {})
        own.update((method_options or {}).get(name, {}))
        factories[name] = functools.partial(METHODS[name], **own)
    return factories


def method_of_model(model):
    """The method name of a saved model (its class's first spec: a
    `Robult` file's results are `robult`'s), or the class's name."""
    kind = type(model).__name__
    return next(
        (s.name for s in METHODS.values() if s.model_class == kind), kind
    )


def robult_variants():
    """The names of Robult and its variants, in registration order."""
    return [name for name, spec in METHODS.items() if spec.is_robult]
