"""The public functions carry type hints that resolve."""

import typing

import pytest

import keras_robult
from keras_robult import data, export, tasks

TYPED = [
    data.make_dataset,
    data.load_npz,
    data.infer_task_name,
    data.subset_mask,
    data.random_mask,
    data.training_mask,
    data.evaluation_subsets,
    data.labeled_mask,
    data.train_test_split,
    data.strata,
    data.fit_standardization,
    data.apply_standardization,
    export.export_saved_model,
    export.rest_request,
    export.grpc_request,
    tasks.Classification.__init__,
    tasks.MultiLabel.__init__,
    tasks.Regression.__init__,
    tasks.Regression.from_targets,
    keras_robult.Robult.__init__,
]


@pytest.mark.parametrize("function", TYPED, ids=lambda f: f.__qualname__)
def test_public_functions_have_resolvable_type_hints(function):
    import tensorflow as tf  # noqa: F401 (names the pipeline's return type)

    namespace = dict(vars(keras_robult), tf=tf, Task=tasks.Task)
    hints = typing.get_type_hints(function, localns=namespace)
    parameters = [
        name
        for name in function.__code__.co_varnames[
            : function.__code__.co_argcount
        ]
        if name not in ("self", "cls")
    ]
    assert set(parameters) <= set(hints), function.__qualname__
