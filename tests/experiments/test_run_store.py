import json
import os

import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.experiments import run_protocol
from keras_robult.experiments.run_store import RunStore
from tests.conftest import make_multimodal

CONFIG = {"data": "toy", "epochs": 3, "seeds": [0, 1]}


def test_a_different_configuration_is_refused_by_name(tmp_path):
    # Opening a folder claims nothing: a run refused before its first
    # pair leaves it free for other options.
    RunStore(tmp_path, CONFIG)
    RunStore(tmp_path, dict(CONFIG, epochs=5))
    RunStore(tmp_path, CONFIG).backup_dir("robult", 0)  # a pair started
    with pytest.raises(ValueError) as error:
        RunStore(tmp_path, dict(CONFIG, epochs=5, seeds=[0]))
    assert str(error.value) == (
        f"{tmp_path} holds a run with other options (epochs: 3 there, 5 now"
        "; seeds: [0, 1] there, [0] now). Resume with the same options, "
        "choose another `out`, or pass `restart` to start over."
    )
    store = RunStore(tmp_path, CONFIG)
    store.save("robult", 0, {"subsets": {}, "curve": [0.5]})
    assert RunStore(tmp_path, CONFIG).finished("robult", 0)["curve"] == [0.5]
    assert RunStore(tmp_path, CONFIG).finished("robult", 1) is None
    fresh = RunStore(tmp_path, dict(CONFIG, epochs=5), restart=True)
    assert fresh.finished("robult", 0) is None


class Counting:
    """Predicts class 0 from a seed-dependent rule; counts its fits."""

    fits = []

    def __init__(self, task, input_shapes, statistics):
        self.width = task.output_dim

    def fit(self, x, y, epochs, batch_size, seed=0, **kwargs):
        Counting.fits.append(seed)
        self.seed = seed
        return self

    def predict(self, x):
        guess = (x["m0"][:, 0] > self.seed - 0.5).astype(int) % self.width
        return np.eye(self.width, dtype="float32")[guess]


def test_a_resumed_run_skips_finished_pairs_and_gives_the_same_results(
    tmp_path, capsys
):
    x, y = make_multimodal(num_samples=60)

    def run(out, store_config=CONFIG, seeds=(0, 1)):
        return run_protocol(
            x,
            y["label"],
            tasks.Classification(3),
            {"counting": Counting},
            seeds=seeds,
            labeled_fraction=0.2,
            store=RunStore(out, store_config),
            verbose=1,
        )[0]

    Counting.fits = []
    uninterrupted = run(tmp_path / "a")
    assert Counting.fits == [0, 1]
    # An interrupted run: only seed 0 finished.
    Counting.fits = []
    run(tmp_path / "b", seeds=(0,))
    os.remove(tmp_path / "b" / "run_config.json")  # seeds differ on purpose
    Counting.fits = []
    capsys.readouterr()
    resumed = run(tmp_path / "b")
    assert Counting.fits == [1]  # seed 0 was not trained again
    assert "counting: seed 0 finished earlier, skipped" in (
        capsys.readouterr().out
    )
    # Every number but the measured cost (times and memory of this
    # machine); the skipped pair's cost is the one it recorded.
    assert resumed.pop("cost")[0]["seeds"] == 2
    uninterrupted.pop("cost")
    assert json.dumps(resumed) == json.dumps(uninterrupted)


def test_other_methods_add_to_the_folder_and_keep_finished_pairs(tmp_path):
    x, y = make_multimodal(num_samples=60)

    def run(names):
        config = dict(CONFIG, methods=names)
        return run_protocol(
            x,
            y["label"],
            tasks.Classification(3),
            {name: Counting for name in names},
            seeds=(0, 1),
            labeled_fraction=0.2,
            store=RunStore(tmp_path, config),
        )[0]

    Counting.fits = []
    first = run(["a"])
    assert Counting.fits == [0, 1]
    Counting.fits = []
    both = run(["a", "b"])
    assert Counting.fits == [0, 1]  # only "b" trained, on both seeds
    assert {e["method"] for e in both["results"]} == {"a", "b"}
    assert [e for e in both["results"] if e["method"] == "a"] == (
        first["results"]
    )
    Counting.fits = []
    run(["b"])
    assert Counting.fits == []
    with open(tmp_path / "run_config.json") as handle:
        assert json.load(handle)["methods"] == ["a", "b"]
    # The methods never excuse another option.
    with pytest.raises(ValueError, match="epochs: 3 there, 4 now"):
        RunStore(tmp_path, dict(CONFIG, epochs=4, methods=["c"]))
