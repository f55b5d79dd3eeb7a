"""Names of the methods the `robult` command can compare."""

import functools

from keras_robult.experiments.robult_method import RobultMethod

# Defaults of the protocol's Robult (DESIGN.md section 8).
ROBULT_DEFAULTS = {"temperature": 0.5, "rbf_bandwidth": 0.3}


def _robult(loss_weights=None, probe=False, name="robult"):
    def factory(task, input_shapes, statistics, **options):
        method = RobultMethod(
            task,
            input_shapes,
            statistics,
            loss_weights=loss_weights,
            probe=probe,
            **{**ROBULT_DEFAULTS, **options},
        )
        method.name = name
        return method

    return factory


METHODS = {
    "robult": _robult(),
}


def method_factories(names, **options):
    """dict name -> factory `(task, input_shapes, statistics) -> Method`."""
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(
            f"Unknown method(s) {unknown}; choose from {list(METHODS)}."
        )
    return {name: functools.partial(METHODS[name], **options) for name in names}
