"""A `fit` killed in the middle resumes to the uninterrupted weights."""

import os
import warnings

import numpy as np
import pytest

from keras_robult import tasks
from keras_robult.experiments import registry
from keras_robult.experiments.callbacks import StopOnNaN
from keras_robult.experiments.training_backup import (
    STATE_FILE,
    BackupDiscarded,
    TrainingBackup,
)
from tests.conftest import BACKEND, make_multimodal, once, to_numpy

MODALITIES = ("m0", "m1", "m2")


class Killed(Exception):
    """Stands for SIGKILL: nothing after it runs."""


def data():
    x, y = make_multimodal(num_samples=48)
    x_val, y_val = make_multimodal(num_samples=24, seed=1)
    return x, y, (x_val, y_val["label"])


def new_method(name, jit_compile=None):
    """`jit_compile=None`: the backend's default (XLA but on torch)."""
    shapes = {m: (6 - i,) for i, m in enumerate(MODALITIES)}
    options = {"latent_dim": 8, "modality_dropout": 0.3}
    if jit_compile is not None:
        options["jit_compile"] = jit_compile
    if name.startswith("robult"):
        options["encoder_dropout"] = 0.2  # a seed generator per layer
    method = registry.method_factories([name], **options)[name](
        tasks.Classification(3), shapes, None
    )
    method.patience = 2  # early stopping, with its best weights, can act
    method.backup_interval = 0  # every epoch
    if name == "robult-no-sup":
        method.probe_epochs = 4
    return method


def fit(method, backup_dir, epochs=7, verbose=0):
    x, y, validation = data()
    method.fit(
        x,
        y,
        epochs=epochs,
        batch_size=16,
        seed=3,
        verbose=verbose,
        validation=validation,
        backup_dir=str(backup_dir),
    )
    return [to_numpy(v) for v in method.model.weights]


def kill_at(monkeypatch, epoch, calls=1):
    """The `calls`-th training (stage) of the process dies at the end of
    `epoch` (0-based), before that epoch is backed up."""
    seen = {"trainings": 0}

    def on_train_begin(self, logs=None):
        seen["trainings"] += 1

    def on_epoch_end(self, index, logs=None):
        if seen["trainings"] == calls and index == epoch:
            raise Killed()

    monkeypatch.setattr(StopOnNaN, "on_train_begin", on_train_begin, False)
    monkeypatch.setattr(StopOnNaN, "on_epoch_end", on_epoch_end, False)


def assert_same(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["robult-no-sup", "gmc"])
def test_a_fit_killed_mid_training_resumes_exactly(
    tmp_path, monkeypatch, capsys, name
):
    """Dropout and modality-dropout draws, the shuffle, Adam's moments
    and early stopping all continue as if nothing had happened. The
    two-stage `robult-no-sup` (Robult, then a probe on its frozen latents)
    is killed in each stage in turn (the second under torch only): the
    kill in the probe stage resumes it without training the first stage
    again."""
    reference = new_method(name)
    expected = fit(reference, tmp_path / "whole")
    # Early stopping (patience 2) lets the first stage run 3 epochs or
    # more; the last stage's history is the reference's.
    kills = [(1, 1)]  # (stage, epoch): the first stage, after epoch 1
    if name == "robult-no-sup" and BACKEND == "torch":
        # The resume of a later stage is the pipeline's glue (the fit it
        # resumes is the first stage's, on all three): once.
        kills.append((2, len(reference.history.history["loss"]) // 2))
    for stage, epoch in kills:
        with monkeypatch.context() as patch:
            kill_at(patch, epoch, stage)
            with pytest.raises(Killed):
                fit(new_method(name), tmp_path / "killed", verbose=1)
        stage_dir = "fit" if stage == 1 else "probe"
        assert (tmp_path / "killed" / stage_dir / STATE_FILE).exists()
    capsys.readouterr()
    resumed = new_method(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackupDiscarded)
        got = fit(resumed, tmp_path / "killed", verbose=1)
    log = capsys.readouterr().out
    assert f"resuming after epoch {kills[-1][1]}, from" in log
    if len(kills) == 2:  # the first stage is not trained again
        assert "(seed 3): trained earlier (" in log
    assert_same(got, expected)
    # The history covers every epoch, before and after the kill.
    assert resumed.history.history.keys() == reference.history.history.keys()
    for key, values in reference.history.history.items():
        np.testing.assert_allclose(resumed.history.history[key], values)


@once  # backup files' handling; the exact resume runs on all three
def test_a_damaged_backup_is_discarded_and_the_fit_starts_over(
    tmp_path, monkeypatch
):
    expected = fit(new_method("robult", False), tmp_path / "whole", epochs=4)
    with monkeypatch.context() as patch:
        kill_at(patch, 2)
        with pytest.raises(Killed):
            fit(new_method("robult", False), tmp_path / "killed", epochs=4)
    state = tmp_path / "killed" / "fit" / STATE_FILE
    with open(state, "r+b") as handle:  # a kill in the middle of a write
        handle.truncate(os.path.getsize(state) // 2)
    with pytest.warns(BackupDiscarded, match=str(state)):
        got = fit(new_method("robult", False), tmp_path / "killed", epochs=4)
    assert_same(got, expected)


@once  # backup files' handling; the exact resume runs on all three
def test_a_backup_of_an_older_version_or_another_model_is_discarded(
    tmp_path, monkeypatch
):
    expected = fit(new_method("robult", False), tmp_path / "whole", epochs=3)
    legacy = tmp_path / "legacy" / "fit"
    legacy.mkdir(parents=True)
    (legacy / "latest.weights.h5").write_bytes(b"\x89HDF\r\n half a file")
    with pytest.warns(BackupDiscarded, match="older keras_robult"):
        got = fit(new_method("robult", False), tmp_path / "legacy", epochs=3)
    assert_same(got, expected)
    # A gmc backup where robult trains: other variables, discarded.
    with monkeypatch.context() as patch:
        kill_at(patch, 1)
        with pytest.raises(Killed):
            fit(new_method("gmc", False), tmp_path / "other", epochs=3)
    with pytest.warns(BackupDiscarded, match="another model"):
        got = fit(new_method("robult", False), tmp_path / "other", epochs=3)
    assert_same(got, expected)


@once  # backup files' handling; the exact resume runs on all three
def test_backups_wait_for_the_interval_and_the_final_state_is_kept(
    tmp_path, monkeypatch
):
    """Within the interval no epoch is written (a kill then starts the fit
    over, to the same weights); the finished state always is."""
    expected = fit(new_method("robult", False), tmp_path / "whole", epochs=4)
    state = tmp_path / "whole" / "fit" / STATE_FILE
    assert state.exists()  # the final state, although within the interval
    slow = new_method("robult", False)
    slow.backup_interval = 3600.0
    with monkeypatch.context() as patch:
        kill_at(patch, 2)
        with pytest.raises(Killed):
            fit(slow, tmp_path / "killed", epochs=4)
    assert not (tmp_path / "killed" / "fit" / STATE_FILE).exists()
    again = new_method("robult", False)
    again.backup_interval = 3600.0
    assert_same(fit(again, tmp_path / "killed", epochs=4), expected)
    assert (tmp_path / "killed" / "fit" / STATE_FILE).exists()
    with pytest.raises(ValueError, match="interval must be >= 0"):
        TrainingBackup(tmp_path / "x", interval=-1)
