"""The callbacks of a method's training: one progress bar over every
epoch, a stop at the first NaN or infinite loss, and the folders of a
backed-up fit's later stages."""

import os
import sys

import keras
import numpy as np


class EpochProgress(keras.callbacks.Callback):
    """One `keras.utils.Progbar` over all epochs of a training run."""

    def __init__(self, epochs, label):
        super().__init__()
        self.epochs = epochs
        self.label = label

    def on_train_begin(self, logs=None):
        print(self.label, flush=True)
        # A live bar on a terminal; one summary line when piped to a file.
        self.bar = keras.utils.Progbar(
            self.epochs,
            unit_name="epoch",
            verbose=1 if sys.stdout.isatty() else 2,
        )

    def on_epoch_end(self, epoch, logs=None):
        values = [(k, v) for k, v in (logs or {}).items() if "loss" in k]
        self.bar.update(epoch + 1, values=values, finalize=False)

    def on_train_end(self, logs=None):
        self.bar.update(self.epochs, finalize=True)


def stage_backup_dir(backup_dir, stage):
    """The backup folder of a later training stage of a fit backed up in
    `backup_dir` (None without one): removed with it."""
    return None if backup_dir is None else os.path.join(backup_dir, stage)


class TrainingDiverged(RuntimeError):
    """The training loss of a method turned NaN or infinite.

    Attributes:
        epoch: the (1-based) epoch in which it happened.
    """

    def __init__(self, message, epoch):
        super().__init__(message)
        self.epoch = epoch


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite
    (as `keras.callbacks.TerminateOnNaN`) and remembers the epoch."""

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.failed_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.failed_epoch = self.epoch + 1
            self.model.stop_training = True
