import json

import pytest

from keras_robult import tasks
from keras_robult.experiments import registry
from keras_robult.experiments.hparams import load_hparams


def write(tmp_path, content):
    path = tmp_path / "hparams.json"
    path.write_text(json.dumps(content))
    return str(path)


def test_a_file_gives_its_method_values_and_source(tmp_path):
    path = write(
        tmp_path, {"method": "robult-pseudo", "hparams": {"patience": 5}}
    )
    assert load_hparams(path) == {
        "method": "robult-pseudo",
        "values": {"patience": 5},
        "source": path,
    }
    flat = write(tmp_path, {"temperature": 0.5})
    assert load_hparams(flat)["method"] == "robult"


@pytest.mark.parametrize(
    "content, message",
    [
        ({"hparams": {"temprature": 1}}, "unknown option 'temprature'"),
        ({"temperature": 0}, r"temperature must be a number > 0"),
        ({"dropout": 1.0}, r"dropout must be a number >= 0 and < 1"),
        ({"patience": 2.5}, "patience must be a positive integer"),
        ({"learning_rate": "fast"}, "learning_rate must be a number"),
        ({"loss_weights": {"lbl": 1}}, r"unknown loss_weights \['lbl'\]"),
        ({"loss_weights": {"ulb": -1}}, r"loss_weights\['ulb'\] must be"),
        ({"method": "gmc", "hparams": {"patience": 3}}, "not a Robult variant"),
        ({"hparams": {}}, "no hyper-parameter"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, content, message):
    with pytest.raises(ValueError, match=message):
        load_hparams(write(tmp_path, content))


def test_loss_weights_merge_over_the_methods_own():
    factories = registry.method_factories(
        ["robult-pseudo", "robult"],
        method_options={"robult-pseudo": {"loss_weights": {"ulb": 0.5}}},
        latent_dim=8,
    )
    task = tasks.Classification(3)
    pseudo = factories["robult-pseudo"](task, {"a": (4,)}, None)
    assert pseudo.loss_weights == {"pseudo": 1.0, "ulb": 0.5}
    plain = factories["robult"](task, {"a": (4,)}, None)
    assert plain.loss_weights is None  # the other method keeps its own
