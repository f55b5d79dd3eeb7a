"""The search-space format of `robult tune`: the searchable options of
each method, their defaults, and the checks of a user's space."""

from keras_robult.experiments.hparams import check_value
from keras_robult.experiments.registry import METHODS
from keras_robult.experiments.robult_method import robult_defaults
from keras_robult.models.robult import DEFAULT_LOSS_WEIGHTS

TUNERS = ("bayesian", "hyperband")
OBJECTIVES = ("single-mean", "all", "auc")
#: The searched loss terms (`pseudo` and `consistency` are off by default
#: and stay so).
TUNED_TERMS = ("lb", "ulb", "rec", "sup")
#: The default search space: option -> its range. `min`/`max` (with `log`
#: for a log-uniform draw, `step` for integers) or a list of choices.
#: Every range holds the method's default. Left out: a temperature under
#: 0.2 and a learning rate over 3e-3, which scored below the defaults in
#: each of the 21 and 10 trials that drew them, on four datasets
#: (benchmarks/RESULTS.md, "`robult tune` against the defaults").
SEARCH_SPACE = {
    "temperature": {"min": 0.2, "max": 3.0, "log": True},
    "rbf_bandwidth": {"min": 0.05, "max": 3.0, "log": True},
    "learning_rate": {"min": 1e-4, "max": 3e-3, "log": True},
    **{
        f"loss_weights.{term}": {"min": 0.1, "max": 10.0, "log": True}
        for term in TUNED_TERMS
    },
    "dropout": {"min": 0.0, "max": 0.5},
    "latent_dim": [64, 128, 256],
    "epochs": {"min": 50, "max": 300, "step": 50},
}
#: Options whose values are integers.
INTEGERS = ("latent_dim", "epochs")
OBJECTIVE_NAME = "validation_score"


def method_defaults(method):
    """The searched options' values in `method` as the registry makes
    it: where a search starts from, and what it is compared with."""
    fixed = METHODS[method].defaults
    robult = robult_defaults()
    weights = {**DEFAULT_LOSS_WEIGHTS, **fixed.get("loss_weights", {})}
    defaults = {
        "temperature": fixed.get("temperature", robult["temperature"]),
        "rbf_bandwidth": fixed.get("rbf_bandwidth", robult["rbf_bandwidth"]),
        "learning_rate": fixed.get(
            "learning_rate",
            METHODS[method].method_class.options_type().learning_rate,
        ),
        "dropout": fixed.get("dropout", robult["dropout"]),
        **{f"loss_weights.{t}": weights[t] for t in TUNED_TERMS},
    }
    return defaults


def trial_hparams(trial):
    """The method's values a KerasTuner trial trained with: its searched
    values, and Hyperband's epochs (`tuner/epochs`) where it set them."""
    values = method_values(trial.hyperparameters.values)
    if "tuner/epochs" in trial.hyperparameters.values:
        values["epochs"] = int(trial.hyperparameters.values["tuner/epochs"])
    return values


def search_space(config):
    """The searched options of `config`: dict option -> `{"min", "max",
    "log", "step"}`, `{"choices"}` or `{"fixed"}`, with `"default"` (the
    method's own value).

    `config.space` narrows `SEARCH_SPACE`: each of its keys is an option
    of it, mapped to `{"min": A, "max": B}` (optionally `"log"`,
    `"step"`), a list of choices, a single value (fixed), or `null`
    (left out: the method's default, or `config.epochs` /
    `config.latent_dim`). A loss term the method switches off (weight 0,
    as in the ablations) is not searched. With Hyperband, `epochs` is its
    budget and not an option."""
    where = "the search space"
    given = dict(config.space or {})
    unknown = sorted(set(given) - set(SEARCH_SPACE))
    if unknown:
        raise ValueError(
            f"{where}: unknown option(s) {unknown}; it may set "
            f"{list(SEARCH_SPACE)}."
        )
    defaults = {
        **method_defaults(config.method),
        "latent_dim": config.latent_dim,
        "epochs": config.epochs,
    }
    space = {}
    for name, default_range in SEARCH_SPACE.items():
        if name.startswith("loss_weights.") and defaults[name] == 0:
            continue  # a term this variant leaves out
        if name == "epochs" and config.tuner == "hyperband":
            if given.get("epochs") is not None:
                raise ValueError(
                    f"{where}: with `tuner` hyperband the epochs are "
                    "Hyperband's budget (`epochs`); leave them out."
                )
            continue
        value = given.get(name, default_range)
        if value is None:
            continue
        entry = _entry(where, name, value)
        entry["default"] = _default_in(entry, defaults[name])
        space[name] = entry
    return space


def _entry(where, name, value):
    integer = name in INTEGERS
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"min", "max", "log", "step"})
        if unknown or "min" not in value or "max" not in value:
            raise ValueError(
                f"{where}: {name} must be {{'min': A, 'max': B}} (with "
                f"optional 'log', 'step'), a list or a value; got {value!r}"
            )
        low, high = value["min"], value["max"]
        for bound in (low, high):
            _check(where, name, bound, integer)
        if not low < high:
            raise ValueError(f"{where}: {name} needs min < max; got {value}")
        log = bool(value.get("log", False))
        if log and low <= 0:
            raise ValueError(f"{where}: {name} is log-scaled: min must be > 0")
        entry = {"min": low, "max": high, "log": log}
        if integer:
            entry["step"] = int(value.get("step", 1))
        return entry
    if isinstance(value, list):
        if not value or len(set(value)) != len(value):
            raise ValueError(
                f"{where}: {name} choices must be distinct and not empty"
            )
        for choice in value:
            _check(where, name, choice, integer)
        return {"choices": list(value)}
    _check(where, name, value, integer)
    return {"fixed": value}


def _check(where, name, value, integer):
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{where}: {name} takes integers; got {value!r}")
    if name.startswith("loss_weights."):
        check_value(where, "loss_weights", {name.split(".", 1)[1]: value})
    else:
        check_value(where, name, value)


def _default_in(entry, default):
    """The method's default where the range holds it, else the nearest
    value the range allows (KerasTuner needs a default inside it)."""
    if "fixed" in entry:
        return entry["fixed"]
    if "choices" in entry:
        return default if default in entry["choices"] else entry["choices"][0]
    low, high = entry["min"], entry["max"]
    value = min(max(default, low), high)
    if "step" in entry:
        value = low + (value - low) // entry["step"] * entry["step"]
    return value


def method_values(values):
    """A trial's flat values (`loss_weights.lb`, ...) as the method's
    options (`{"loss_weights": {"lb": ...}}`), the `hparams` of a
    `best_hparams.json`."""
    options, weights = {}, {}
    for name, value in values.items():
        if name.startswith("tuner/"):
            continue
        if name.startswith("loss_weights."):
            weights[name.split(".", 1)[1]] = float(value)
        elif name in INTEGERS:
            options[name] = int(value)
        else:
            options[name] = float(value)
    if weights:
        options["loss_weights"] = weights
    return options
