"""Exact resume of a `fit` that was killed in the middle."""

import json
import os
import re
import shutil
import time
import warnings

import keras
import numpy as np

from keras_robult.utils.atomic import atomic_path

#: The one file a backup folder holds (besides the folders of later
#: training stages).
STATE_FILE = "state.npz"
#: What `keras.callbacks.BackupAndRestore` wrote there (older versions).
LEGACY_FILES = ("latest.weights.h5", "training_metadata.json")
_EARLY_STOPPING = ("wait", "best", "best_epoch", "stopped_epoch")
#: Seconds between two backups of the protocol's fits (`robult train
#: --backup-interval`).
DEFAULT_INTERVAL = 30.0


class BackupDiscarded(UserWarning):
    """A training backup could not be used and was removed; the fit it
    belonged to starts again from its first epoch."""


class TrainingBackup(keras.callbacks.Callback):
    """Backs up the whole training state at the end of an epoch (at most
    every `interval` seconds), so that a `fit` killed at any moment resumes
    to exactly the weights an uninterrupted `fit` reaches.

    `keras.callbacks.BackupAndRestore` keeps the weights, the optimizer and
    the epoch. An exact resume needs more: the state of every
    `keras.random.SeedGenerator` of the model (dropout, Robult's subset
    draws) and PyTorch's global generator, the early-stopping bookkeeping
    with its best weights, and the position of the data pipeline (the
    caller starts an epoch-keyed pipeline, `make_dataset(initial_epoch=e)`,
    at the saved epoch). All of it is one `.npz` file, written under a
    temporary name and renamed into place, so a kill leaves the previous
    epoch's state or the new one, never half a file. A file that cannot be
    read, that does not fit the model, or that an older version wrote is
    removed with a `BackupDiscarded` warning naming it, and the fit starts
    from its first epoch: a backup never stops a run.

    When training ends (not diverged), the final state is kept, marked
    finished, so that a later stage of the same run can resume without
    training this one again; `RunStore.save` removes the folder once the
    (method, seed) pair is recorded.

    Args:
        backup_dir: the folder of this fit's backup.
        early_stopping: optional `keras.callbacks.EarlyStopping` of the
            fit, placed before this callback in the callback list.
        nan_guard: optional callback with a `failed_epoch` attribute; a
            diverged epoch is not backed up.
        interval: seconds between backups: an epoch is backed up when at
            least this long has passed since the previous backup (or the
            start), and the final state always is; `0` backs up every
            epoch. A state is several megabytes: on a small model whose
            epochs take milliseconds, writing it every epoch costs more
            than the epoch. A kill loses at most `interval` seconds of
            training, never exactness.

    Example:

    ```python
    backup = TrainingBackup("backups/robult-seed0")
    state = backup.read()  # None, or the saved state
    ```
    """

    def __init__(
        self, backup_dir, early_stopping=None, nan_guard=None, interval=0.0
    ):
        super().__init__()
        if interval < 0:
            raise ValueError(
                f"The backup interval must be >= 0 seconds; got {interval}."
            )
        self.backup_dir = os.fspath(backup_dir)
        self.early_stopping = early_stopping
        self.nan_guard = nan_guard
        self.interval = float(interval)
        self._last_backup = None
        self.path = os.path.join(self.backup_dir, STATE_FILE)
        self.restored = None
        self.build = None
        self._arrays = None
        self._rng = None
        self.history = {}

    # Reading and restoring.

    def read(self):
        """The saved state as `(meta, arrays)`, or None when there is none
        (a damaged or outdated backup is discarded with a warning)."""
        if not os.path.exists(self.path):
            legacy = [
                name
                for name in LEGACY_FILES
                if os.path.exists(os.path.join(self.backup_dir, name))
            ]
            if legacy:
                self.discard(
                    f"{legacy[0]} was written by an older keras_robult, "
                    "whose backups do not resume exactly"
                )
            return None
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                arrays = {
                    key: archive[key] for key in archive.files if key != "meta"
                }
            meta["epoch"] = int(meta["epoch"])
            meta["paths"] = list(meta["paths"])
        except Exception as error:  # any damage: the file is unusable
            self.discard(f"it cannot be read ({_first_line(error)})")
            return None
        return meta, arrays

    def discard(self, reason):
        """Removes the backup folder, warning with its path and `reason`."""
        warnings.warn(
            f"Discarded the training backup {self.path}: {reason}. This "
            "fit starts again from its first epoch.",
            BackupDiscarded,
            stacklevel=2,
        )
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    @staticmethod
    def _variables(model):
        """Every variable of the training state, model and optimizer, each
        once (seed-generator states included: `model.variables`)."""
        seen, variables = set(), []
        for variable in list(model.variables) + list(model.optimizer.variables):
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
        return variables

    def fits(self, model, state):
        """Whether `state` (from `read`) is the training state of `model`
        (built and compiled; its optimizer gets built): the same variables
        with the same shapes. When not, the backup is discarded."""
        meta, arrays = state
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        variables = self._variables(model)
        fits = _paths(variables) == meta["paths"] and all(
            f"v{index}" in arrays
            and tuple(arrays[f"v{index}"].shape) == tuple(variable.shape)
            for index, variable in enumerate(variables)
        )
        if not fits:
            self.discard("it holds the state of another model")
        return fits

    def resume(self, state, build=None):
        """Restores `state` (which `fits` the model) when the `fit` this
        callback is given to begins, after Keras has built what it builds
        from the first batch (so that the data pipeline is iterated as in
        the uninterrupted `fit`). `build` builds a model that is still
        unbuilt then (TensorFlow builds it in the first step)."""
        meta, arrays = state
        count = meta.get("best_weights", 0)
        best = [arrays[f"b{index}"] for index in range(count)]
        self.restored = dict(meta, best_weights=best if count else None)
        self._arrays = arrays
        self._rng = {k: v for k, v in arrays.items() if k.startswith("rng_")}
        self.build = build
        self.history = {k: list(v) for k, v in meta.get("history", {}).items()}

    def on_train_begin(self, logs=None):
        self._last_backup = time.monotonic()
        if self.restored is not None:
            self.apply(self.model)

    def apply(self, model, finished=False):
        """Loads the state given to `resume` into `model` (building it
        first if need be); `on_train_begin` does, or the caller, with
        `finished`, when the backed-up training had ended (the global
        random state is then restored at once)."""
        if not model.built and self.build is not None:
            self.build()
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        for index, variable in enumerate(self._variables(model)):
            variable.assign(self._arrays[f"v{index}"])
        self._arrays = None
        # After `EarlyStopping.on_train_begin`, which resets its state.
        stopping = self.early_stopping
        if stopping is not None:
            for name in _EARLY_STOPPING:
                if name in self.restored.get("early_stopping", {}):
                    setattr(
                        stopping, name, self.restored["early_stopping"][name]
                    )
            stopping.best_weights = self.restored["best_weights"]
        if finished:
            self.on_train_batch_begin(0)

    def on_train_batch_begin(self, batch, logs=None):
        # Once the first batch is read: PyTorch's data loader draws from
        # the global generator when the pipeline is first iterated, which
        # the uninterrupted fit did before the epoch it resumes at.
        if self._rng:
            _set_global_rng(self._rng)
            self._rng = None

    # Saving.

    def _failed(self):
        return getattr(self.nan_guard, "failed_epoch", None) is not None

    def on_epoch_end(self, epoch, logs=None):
        if self._failed():
            return
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        now = time.monotonic()
        if self._last_backup is None or now - self._last_backup >= (
            self.interval
        ):
            self._save(epoch + 1)
            self._last_backup = time.monotonic()

    def on_train_end(self, logs=None):
        if not self._failed():
            epochs = max(map(len, self.history.values()), default=0)
            self._save(epochs, finished=True)

    def _save(self, epoch, finished=False):
        variables = self._variables(self.model)
        arrays = {
            f"v{index}": keras.ops.convert_to_numpy(variable.value)
            for index, variable in enumerate(variables)
        }
        meta = {
            "epoch": int(epoch),
            "finished": bool(finished),
            "paths": _paths(variables),
            "history": self.history,
            "best_weights": 0,
        }
        arrays.update(_global_rng())
        stopping = self.early_stopping
        if stopping is not None:
            meta["early_stopping"] = {
                name: _json_number(getattr(stopping, name, None))
                for name in _EARLY_STOPPING
            }
            best = getattr(stopping, "best_weights", None) or []
            meta["best_weights"] = len(best)
            arrays.update(
                {f"b{index}": np.asarray(w) for index, w in enumerate(best)}
            )
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_path(self.path) as temporary:
            np.savez(temporary, meta=np.array(json.dumps(meta)), **arrays)


def _paths(variables):
    """The variables' paths without Keras' uniquifying name counters
    (`dense_3` -> `dense`; optimizer slots spell paths with `_`), which
    depend on what the process built before."""
    return [re.sub(r"_\d+(?=[/_]|$)", "", v.path) for v in variables]


def _global_rng():
    """The backend's global random state, where training draws from it:
    PyTorch's (an unseeded `keras.layers.Dropout` draws from it on the
    torch backend; on JAX and TensorFlow every draw in a step comes from a
    `SeedGenerator` variable)."""
    if keras.backend.backend() != "torch":
        return {}
    import torch  # the torch backend only

    state = {"rng_torch": torch.get_rng_state().numpy()}
    if torch.cuda.is_available():
        for index, cuda in enumerate(torch.cuda.get_rng_state_all()):
            state[f"rng_cuda{index}"] = cuda.numpy()
    return state


def _set_global_rng(arrays):
    if "rng_torch" not in arrays:
        return
    import torch  # the torch backend only

    torch.set_rng_state(torch.from_numpy(arrays["rng_torch"]))
    cuda = sorted(k for k in arrays if k.startswith("rng_cuda"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(
            [torch.from_numpy(arrays[k]) for k in cuda]
        )


def _json_number(value):
    if value is None:
        return None
    if isinstance(value, (bool, int, np.integer)):
        return int(value)
    return float(keras.ops.convert_to_numpy(value))


def _first_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
