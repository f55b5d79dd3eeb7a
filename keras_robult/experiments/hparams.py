"""A method's hyper-parameters from a file: what `robult train --hparams`
and the recipes read (and what a search writes as `best_hparams.json`)."""

import json
import numbers
import os

from keras_robult.experiments.registry import METHODS, robult_variants
from keras_robult.models.robult import LOSS_TERMS

#: The options a file may set, with the check each value must pass.
TUNABLE = {
    "temperature": "positive",
    "rbf_bandwidth": "positive",
    "learning_rate": "positive",
    "weight_decay": "non-negative",
    "dropout": "probability",
    "encoder_dropout": "probability",
    "patience": "positive integer",
    "epochs": "positive integer",
    "latent_dim": "integer >= 2",
    "loss_weights": "weights",
}


def load_hparams(path):
    """The hyper-parameters in the JSON file `path`, checked.

    The file holds `{"method": NAME, "hparams": {OPTION: VALUE, ...}}`
    (`method` defaults to `"robult"`; any Robult variant of the registry),
    or the `{OPTION: VALUE}` object alone. The options are those of
    `TUNABLE`: `temperature`, `rbf_bandwidth`, `learning_rate`,
    `weight_decay`, `dropout` (Robult's), `encoder_dropout`, `patience`,
    `epochs` (this method's budget, replacing `--epochs`), `latent_dim`
    (replacing `--latent-dim`) and `loss_weights` (a dict over `lb`,
    `ulb`, `rec`, `sup`, `pseudo`, merged over the method's own). They
    override that method's defaults only: the other methods of a
    comparison keep theirs.

    Args:
        path: the JSON file.

    Returns:
        dict with `method`, `values` (the options) and `source` (the file's
        absolute path).
    """
    try:
        with open(path) as handle:
            content = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"`hparams` {path}: not JSON ({error}).") from None
    if not isinstance(content, dict):
        raise ValueError(f"`hparams` {path}: expected a JSON object.")
    method = content.get("method", "robult")
    values = content.get("hparams", content if "method" not in content else {})
    if method not in METHODS or not METHODS[method].is_robult:
        raise ValueError(
            f"`hparams` {path}: method {method!r} is not a Robult variant; "
            f"choose from {robult_variants()}."
        )
    if not isinstance(values, dict) or not values:
        raise ValueError(f"`hparams` {path}: no hyper-parameter in it.")
    for name, value in values.items():
        check_value(f"`hparams` {path}", name, value)
    return {
        "method": method,
        "values": values,
        "source": os.path.abspath(path),
    }


def check_value(where, name, value):
    """Refuses a value of option `name` that `TUNABLE` does not allow, in
    a message that starts with `where` (e.g. the file)."""
    rule = TUNABLE.get(name)
    if rule is None:
        raise ValueError(
            f"{where}: unknown option {name!r}; the file may set "
            f"{sorted(TUNABLE)}."
        )
    if rule == "weights":
        if not isinstance(value, dict):
            raise ValueError(f"{where}: loss_weights must be a dict.")
        unknown = sorted(set(value) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(
                f"{where}: unknown loss_weights {unknown}; the "
                f"terms are {list(LOSS_TERMS)}."
            )
        for term, weight in value.items():
            _check_number(where, f"loss_weights[{term!r}]", weight, 0, None)
        return
    if rule in ("positive integer", "integer >= 2"):
        least = 1 if rule == "positive integer" else 2
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < least
        ):
            raise ValueError(
                f"{where}: {name} must be "
                f"{'an' if rule[0] == 'i' else 'a'} {rule}; received "
                f"{value!r}."
            )
        return
    low, high = {
        "positive": (0, None),
        "non-negative": (0, None),
        "probability": (0, 1),
    }[rule]
    _check_number(where, name, value, low, high, strict=rule == "positive")


def _check_number(where, name, value, low, high, strict=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = (value > low if strict else value >= low) and (
            high is None or value < high
        )
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        if high is not None:
            bound += f" and < {high}"
        raise ValueError(
            f"{where}: {name} must be a number {bound}; received {value!r}."
        )
