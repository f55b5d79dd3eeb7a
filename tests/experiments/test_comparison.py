import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.experiments import registry
from keras_robult.experiments.comparison import (
    ComparisonConfig,
    ComparisonData,
)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"labeled_fraction": 0.0}, "`labeled_fraction` must be in (0, 1]"),
        ({"epochs": 0}, "`epochs` and `batch_size` must be positive"),
        ({"seeds": (0, -1)}, "`seeds` must be non-negative integers; got 0 -1"),
        ({"latent_dim": 1}, "`latent_dim` must be at least 2"),
        ({"modality_dropout": 1.0}, "`modality_dropout` must be in [0, 1)"),
        ({"late_fusion": "max"}, "`late_fusion` must be one of"),
        ({"methods": ("robult", "mae")}, "Unknown method(s) ['mae']"),
    ],
)
def test_a_configuration_is_checked_when_made(options, message):
    """The library names its Python parameters; the command writes them
    as its flags through one table (`as_flags`)."""
    with pytest.raises(ValueError) as error:
        ComparisonConfig(**options)
    assert str(error.value).startswith(message), str(error.value)
    from keras_robult.cli.options import as_flags, flag_table
    from keras_robult.cli.parser import robult_parser

    flags = as_flags(str(error.value), flag_table(robult_parser()))
    for name in options:
        assert f"`{name}`" not in flags
        if f"`{name}`" in message:
            assert "--" + name.replace("_", "-") in flags


def test_only_what_differs_from_the_defaults_is_recorded():
    assert ComparisonConfig().missing_modality_options() == {}
    config = ComparisonConfig(train_missing_rate=0.3, late_fusion="mean")
    assert config.missing_modality_options() == {
        "late_fusion": "mean",
        "train_missing_rate": 0.3,
    }
    assert ComparisonConfig(methods=("gmc",)).method_names == ["gmc"]
    assert ComparisonConfig().method_names == registry.DEFAULT_METHODS


def test_official_splits_become_validation_and_test_masks():
    def split(count, offset):
        x = {"a": np.arange(offset, offset + count, dtype="float32")[:, None]}
        return x, np.arange(count) % 2

    task = tasks.Classification(2)
    data = ComparisonData.from_splits(
        [split(5, 0), split(2, 5), split(3, 7)], task, "toy"
    )
    np.testing.assert_array_equal(data.x["a"][:, 0], np.arange(10))
    np.testing.assert_array_equal(np.flatnonzero(data.validation_mask), [5, 6])
    np.testing.assert_array_equal(np.flatnonzero(data.test_mask), [7, 8, 9])
    assert data.modalities == ["a"]
    with pytest.raises(ValueError, match="The valid split of toy is empty"):
        ComparisonData.from_splits(
            [split(5, 0), split(0, 5), split(3, 5)], task, "toy"
        )


def test_tensorboard_without_its_extra_is_one_clear_error(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else find_spec(name),
    )
    with pytest.raises(RuntimeError, match=r"pip install 'keras-robult\[tune"):
        ComparisonConfig(tensorboard="logs")
    ComparisonConfig()  # without the option, nothing is needed


def test_robult_has_no_linear_base_on_backbone_features():
    """Models trained on backbone features are assembled with their
    backbones to take raw images and strings, where a linear model of the
    features cannot follow: no base there, whatever the data."""
    from keras_robult.experiments.comparison import robult_options

    x = {"image": np.zeros((4, 3)), "text": np.zeros((4, 2))}
    task = tasks.Classification(2)
    plain = ComparisonData(x, np.zeros(4), task, "d")
    features = ComparisonData(x, np.zeros(4), task, "d", backbone_features=True)
    config = ComparisonConfig(late_fusion="mean")
    assert robult_options(config, plain) == {"late_fusion": "mean"}
    options = robult_options(config, features)
    assert options == {"late_fusion": "mean", "linear_base": False}
    factory = registry.method_factories(  # views that share nothing
        ["robult"], latent_dim=8, robult_options=options, view_alignment=False
    )["robult"]
    method = factory(task, {"image": (3,), "text": (2,)}, None)
    assert not method.linear_base
    assert method.build_model().full_set == "late"
