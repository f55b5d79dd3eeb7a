"""A method's keyword options: one dataclass per method (`options_type`),
kept as attributes; the rest go to the model or are refused."""

import dataclasses

import pytest

from keras_robult import tasks
from keras_robult.experiments import (
    MethodOptions,
    RobultMethod,
    RobultOptions,
    registry,
)
from keras_robult.experiments.reference_methods import MLPMethod
from tests.conftest import once

SHAPES = {"a": (3,), "b": (2,)}


@once
def test_options_are_attributes_and_the_rest_goes_to_the_model():
    method = RobultMethod(
        tasks.Classification(2),
        SHAPES,
        latent_dim=8,
        probe=True,
        temperature=0.3,
        jit_compile=True,
    )
    assert (method.latent_dim, method.probe, method.jit_compile) == (
        8,
        True,
        True,
    )
    assert method.learning_rate == MethodOptions.learning_rate == 1e-3
    assert method.validation_fraction == RobultOptions.validation_fraction
    assert method.model_kwargs == {"temperature": 0.3}
    options, others = RobultOptions.split({"probe": True, "dropout": 0.1})
    assert options == RobultOptions(probe=True)
    assert others == {"dropout": 0.1}


@once
def test_a_method_without_model_options_names_an_unknown_one():
    with pytest.raises(TypeError) as error:
        MLPMethod(tasks.Classification(2), SHAPES, latnet_dim=8)
    message = str(error.value)
    assert message.startswith(
        "MLPMethod got unexpected keyword argument(s): latnet_dim"
    )
    assert "latent_dim" in message and "hidden_units" in message
    # Its own defaults over `MethodOptions`'.
    mlp = MLPMethod(tasks.Classification(2), SHAPES)
    assert (mlp.modality_dropout, mlp.min_steps) == (0.5, 1000)
    assert MethodOptions().modality_dropout == 0.0


@once
@pytest.mark.parametrize("name", list(registry.METHODS))
def test_every_registered_method_takes_its_defaults(name):
    """A spec's defaults are options of its method (or, where the method
    passes the rest on, its model's): a misspelt one fails here."""
    spec = registry.METHODS[name]
    options_type = getattr(spec.method_class, "options_type", None)
    if options_type is None:  # `linear`: no Keras training
        return
    assert issubclass(options_type, MethodOptions)
    assert dataclasses.is_dataclass(options_type)
    method = spec(tasks.Classification(2), SHAPES, None)
    for option, value in spec.defaults.items():
        if option in options_type.names():
            if option != "loss_weights":  # merged with the caller's
                assert getattr(method, option) == value, option
        else:
            assert spec.method_class.takes_model_options, option
            assert option in method.model_kwargs, option
