"""Names of the methods the `robult` command can compare."""

import functools

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


def _make(cls, name, **fixed):
    """A factory of `cls` whose defaults are `fixed` (options given to the
    factory win). With `finetune`, the fine-tuning learning rate replaces a
    fixed one (which was chosen for training on frozen features)."""

    def factory(task, input_shapes, statistics, finetune=None, **options):
        defaults = dict(fixed)
        klass = cls
        if finetune is not None and cls in REFERENCES:
            raise ValueError(
                f"{name} is a reference on fixed features; with "
                "--finetune (backbones trained end to end) leave it out "
                "of --methods."
            )
        if finetune is not None:  # backbones trained end to end
            klass = finetuned_class(cls)
            defaults.pop("learning_rate", None)
            options["source"] = finetune
        if "loss_weights" in defaults and "loss_weights" in options:
            options["loss_weights"] = {
                **defaults["loss_weights"],
                **options["loss_weights"],
            }
        options = {**defaults, **options}
        method = klass(task, input_shapes, statistics, **options)
        method.name = name
        return method

    factory.method_class = cls
    factory.fixed = dict(fixed)  # the method's own defaults
    return factory


#: The methods on fixed features only (no `--finetune`).
REFERENCES = (LinearMethod, MLPMethod)


def _paper_less(term):
    """The paper's options with one loss term switched off."""
    weights = {**PAPER_OPTIONS["loss_weights"], term: 0.0}
    return {**PAPER_OPTIONS, "loss_weights": weights}


METHODS = {
    "robult": _make(RobultMethod, "robult"),
    "unimodal": _make(UnimodalMethod, "unimodal"),
    # Chosen on a validation split (benchmarks/RESULTS.md): at temperature
    # 0.3 and Adam 1e-3 (before the search) GMC's contrastive term
    # over-trains within the shared 150-epoch budget.
    "gmc": _make(GMCMethod, "gmc", learning_rate=1e-4),
    "actionmae": _make(ActionMAEMethod, "actionmae"),
    "prompt-trans": _make(PromptTransMethod, "prompt-trans"),
    # The paper's exact method (our default predicts subsets by the
    # product of experts of their branches, not their mean).
    "robult-paper": _make(RobultMethod, "robult-paper", **PAPER_OPTIONS),
    # Robult with the self-training term (our addition, not the paper's).
    "robult-pseudo": _make(
        RobultMethod, "robult-pseudo", loss_weights={"pseudo": 1.0}
    ),
    # The ablations of the paper's Table 3: the paper's method less a term.
    "robult-no-sup": _make(
        RobultMethod,
        "robult-no-sup",
        **_paper_less("sup"),
        probe=True,
    ),
    "robult-no-rec": _make(RobultMethod, "robult-no-rec", **_paper_less("rec")),
    "robult-no-lb": _make(RobultMethod, "robult-no-lb", **_paper_less("lb")),
    "robult-no-ulb": _make(RobultMethod, "robult-no-ulb", **_paper_less("ulb")),
    # The simple references, on the labeled samples alone.
    "linear": _make(LinearMethod, "linear"),
    "mlp": _make(MLPMethod, "mlp"),
}


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
        if issubclass(METHODS[name].method_class, RobultMethod):
            own.update(robult_options or {})
        own.update((method_options or {}).get(name, {}))
        factories[name] = functools.partial(METHODS[name], **own)
    return factories
