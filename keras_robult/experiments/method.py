"""Base class of the methods compared by the evaluation protocol."""

import abc
import functools
import math
import shutil

import keras
import numpy as np

from keras_robult import distribution
from keras_robult.data.pipeline import make_dataset
from keras_robult.experiments.callbacks import (
    EpochProgress,
    StopOnNaN,
    TrainingDiverged,
    stage_backup_dir,
)
from keras_robult.experiments.default_encoders import (
    default_encoder,
)
from keras_robult.experiments.method_options import MethodOptions
from keras_robult.experiments.metrics import higher_is_better
from keras_robult.experiments.training_backup import (
    DEFAULT_INTERVAL,
    TrainingBackup,
)
from keras_robult.utils.atomic import save_model


def epochs_for(min_steps, steps_per_epoch, epochs):
    """`epochs`, raised where needed so that the training takes at least
    `min_steps` optimizer steps (None or 0: `epochs` as they are)."""
    if not min_steps or not steps_per_epoch:
        return epochs
    return max(epochs, math.ceil(min_steps / steps_per_epoch))


class Method(abc.ABC):
    """A method of the comparison: trains on a semi-supervised split and
    predicts from any modality subset given by a mask.

    Args:
        task: a `keras_robult.tasks.Task`.
        input_shapes: dict, modality -> per-sample shape; its order is the
            modality order.
        statistics: optional dict, modality -> `(mean, std)` of the
            training split (vector modalities).
        **options: the method's hyper-parameters, the fields of its
            `options_type` (`MethodOptions`: `latent_dim`,
            `learning_rate`, ...), each kept as an attribute of the
            same name. Other names are refused, or, in a method with
            `takes_model_options`, kept in `model_kwargs` for its model.
    """

    name = "method"

    #: The dataclass of the method's keyword options.
    options_type = MethodOptions
    #: Whether keyword arguments that are not options go to the model
    #: (`model_kwargs`) instead of being refused.
    takes_model_options = False

    def __init__(self, task, input_shapes, statistics=None, **options):
        self.task = task
        self.input_shapes = dict(input_shapes)
        self.modalities = tuple(input_shapes)
        self.statistics = statistics or {}
        given, others = self.options_type.split(options)
        if others and not self.takes_model_options:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword "
                f"argument(s): {', '.join(sorted(others))} (its options: "
                f"{', '.join(self.options_type.names())})."
            )
        for name in self.options_type.names():
            setattr(self, name, getattr(given, name))
        #: The keyword arguments for the model (`takes_model_options`).
        self.model_kwargs = others
        if self.jit_compile == "auto":
            self.jit_compile = keras.backend.backend() != "torch"
        self.modality_dropout = float(self.modality_dropout)
        #: Keras callbacks added to every training stage and to `predict`
        #: (`run_protocol(callbacks=...)`: logging, timing).
        self.callbacks = []
        #: Seconds between two backups of a fit with a `backup_dir`
        #: (`TrainingBackup(interval=...)`; 0: every epoch).
        self.backup_interval = DEFAULT_INTERVAL

    def encoder(self, name):
        return default_encoder(
            name,
            self.input_shapes[name],
            self.latent_dim,
            self.statistics.get(name),
            dropout=self.encoder_dropout,
            normalize=self.task.name != "regression",
        )

    @property
    def step_jit_compile(self):
        """`jit_compile` for `model.compile`: off under a multi-replica
        `tf.distribute` strategy, where Keras cannot compile the step with
        XLA (`robult train --distribute` on TensorFlow)."""
        return self.jit_compile and distribution.strategy_replicas() == 1

    def optimizer(self):
        ema = {}
        if self.ema_momentum is not None:
            ema = {"use_ema": True, "ema_momentum": self.ema_momentum}
        if self.weight_decay > 0:
            return keras.optimizers.AdamW(
                self.learning_rate, weight_decay=self.weight_decay, **ema
            )
        return keras.optimizers.Adam(self.learning_rate, **ema)

    def dataset(
        self, x, y, batch_size, seed, labeled_only=False, initial_epoch=0
    ):
        """The training batches (static batch size when possible) as
        `(dataset, steps_per_epoch)`: an endless `make_dataset` whose
        epochs, from `initial_epoch` on, are each shuffled and dropped out
        from `(seed, epoch)` alone (a resumed `fit` sees the batches of an
        uninterrupted one); `steps_per_epoch` None for a finite dataset of
        one epoch."""
        labels, is_labeled = y["label"], np.asarray(y["is_labeled"])
        if labeled_only:
            keep = is_labeled > 0
            x = {k: np.asarray(v)[keep] for k, v in x.items()}
            labels, is_labeled = np.asarray(labels)[keep], is_labeled[keep]
        count = len(is_labeled)
        # Every batch (static: drop_remainder) divides by the devices; fewer
        # samples than devices are repeated, each as often (same means).
        shards = distribution.batch_shards()
        if count < shards:
            repeats = -(-shards // count)
            x = {
                k: np.concatenate([np.asarray(v)] * repeats)
                for k, v in x.items()
            }
            labels = np.concatenate([np.asarray(labels)] * repeats)
            is_labeled = np.concatenate([is_labeled] * repeats)
            count *= repeats
        batch_size = min(batch_size, count) // shards * shards
        dataset = make_dataset(
            x,
            labels,
            is_labeled,
            task=self.task,
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
            drop_remainder=True,
            modality_dropout=self.modality_dropout,
            initial_epoch=initial_epoch,
        )
        return dataset, count // batch_size

    def validation_dataset(self, x, labels, batch_size):
        """Batches of the validation split (every sample labeled). Data
        parallel, the arrays themselves: the model's `fit` pads them with
        inert rows so that the last batch divides by the devices."""
        if distribution.batch_shards() > 1:
            return x, {"label": labels}
        return make_dataset(x, labels, task=self.task, batch_size=batch_size)

    def sample_inputs(self, x):
        """One sample of `x` as the model takes it (to build it)."""
        return {k: np.asarray(v)[:1] for k, v in x.items()}

    #: Train on the labeled samples only (supervised baselines).
    labeled_only = False

    @abc.abstractmethod
    def build_model(self):
        """A fresh, uncompiled Keras model whose `call` returns a dict with
        `"prediction"`."""

    #: Early stopping watches the task metric on the validation split
    #: (`val_<metric>`); a method without a trained task head during the
    #: main fit (the no-L_sup probe) watches `val_loss` instead.
    monitor_task_metric = True

    def fit(
        self,
        x,
        y,
        epochs,
        batch_size,
        seed=0,
        verbose=0,
        validation=None,
        backup_dir=None,
    ):
        """Trains on `x` (dict with `modality_mask`) and `y` (dict with
        `label` and `is_labeled`) for at most `epochs` epochs.

        With `validation = (x_val, labels_val)` (every sample labeled),
        `keras.callbacks.EarlyStopping` stops when the validation metric
        has not improved for `patience` epochs and restores the best
        weights. With `backup_dir`, a `TrainingBackup` keeps the whole
        training state of the last finished epoch there (each training
        stage in a folder of its own), and a `fit` that was killed resumes
        from it to the weights of an uninterrupted `fit`. Raises
        `TrainingDiverged` when the loss turns NaN or infinite."""
        self.seed = seed
        backup = state = None
        if backup_dir is not None:
            backup = TrainingBackup(
                stage_backup_dir(backup_dir, "fit"),
                interval=self.backup_interval,
            )
            state = backup.read()
            if state is None:  # later stages' backups depend on this one
                shutil.rmtree(backup_dir, ignore_errors=True)
        if state is not None:
            # Checked on a model of its own: building the trained one here
            # would draw its initial weights in another order than `fit`
            # does, and the dataset would be iterated once less than in the
            # uninterrupted `fit` (Keras builds an unbuilt model on a batch).
            self._new_model(y, seed)
            self._build_on(x)
            if not backup.fits(self.model, state):
                state = None
        self._new_model(y, seed)
        if state is not None:
            backup.resume(state, build=lambda: self._build_on(x))
        self.train(
            functools.partial(
                self.dataset, x, y, batch_size, seed, self.labeled_only
            ),
            epochs,
            f"  {self.name} (seed {seed})" if verbose else None,
            validation=validation,
            batch_size=batch_size,
            backup=backup,
        )
        self.after_fit(x, y, batch_size, seed, verbose, backup_dir)
        return self

    def training_key(self, x, validation=None):
        """What determines the weights `fit(x, ..., validation=...)`
        reaches, as a hashable value: two methods of one seed with equal
        keys train to the same model (they differ in how they predict
        only), so the protocol trains the first and gives its weights to
        the others (`adopt`). None (the default): never shared."""
        return None

    def adopt(self, trained, x, y):
        """Takes the trained weights of `trained` (a method of the same
        seed with an equal `training_key`) into a model of its own
        (built from its own options, so it predicts by its own rule), with
        its training history, instead of training."""
        seed = trained.seed
        self._new_model(y, seed)
        self._build_on(x)
        self.model.set_weights(trained.model.get_weights())
        self.seed = seed
        self.history = trained.history
        return self

    def _build_on(self, x):
        """Builds the model on a sample of `x`."""
        sample = self.sample_inputs(x)
        self.model.record_input_dtypes(sample)
        self.model(sample)

    def _new_model(self, y, seed):
        """A fresh, compiled model whose initial weights depend on `seed`
        only."""
        keras.utils.set_random_seed(seed)
        self.model = self.build_model()
        # The fallback for samples with no modality (the dataset path of
        # `fit` cannot see the labels without consuming a shuffle epoch).
        self.model.set_label_prior(y["label"], y["is_labeled"])
        self.model.compile(
            optimizer=self.optimizer(),
            jit_compile=self.step_jit_compile,
        )

    def after_fit(self, x, y, batch_size, seed, verbose, backup_dir):
        """A second stage after the main training (default: none); gets
        `fit`'s data and options (`RobultMethod`'s linear probe). A stage
        that calls `train` with `backup_dir=stage_backup_dir(backup_dir,
        "<stage>")` resumes exactly, as the main training does."""

    def fit_head_alone(self, head, data, epochs, title, backup_dir):
        """A second stage: every layer frozen but `head`, the supervised
        loss alone, on the labeled samples. The head is a linear
        classifier on frozen inputs (a convex problem): Adam 1e-2.

        Args:
            head: the layer of `self.model` that trains.
            data: `(x, y, batch_size, seed)` of `fit`.
            epochs: epochs of the stage.
            title: its progress line (`None`: silent).
            backup_dir: where the stage backs up its epochs.
        """
        x, y, batch_size, seed = data
        model = self.model
        for layer in model.layers:
            layer.trainable = layer is head
        model.loss_weights = {key: 0.0 for key in model.loss_weights}
        model.loss_weights["sup"] = 1.0
        model.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            jit_compile=self.step_jit_compile,
        )
        self.train(
            functools.partial(
                self.dataset, x, y, batch_size, seed, labeled_only=True
            ),
            epochs,
            title,
            backup_dir=backup_dir,
        )

    def early_stopping_monitor(self):
        """`(monitor, mode)` of early stopping: the quantity in the
        training history it watches, `"min"` or `"max"`."""
        if not self.monitor_task_metric:
            return "val_loss", "min"
        metric = self.model.task_metric
        mode = "max" if higher_is_better(metric.name) else "min"
        return f"val_{metric.name}", mode

    def early_stopping(self):
        """The `EarlyStopping` callback of a run with a validation split."""
        monitor, mode = self.early_stopping_monitor()
        return keras.callbacks.EarlyStopping(
            monitor=monitor,
            mode=mode,
            patience=self.patience,
            restore_best_weights=True,
        )

    def best_epochs(self):
        """The epochs of the last `fit` up to the best one by the
        validation metric (the weights early stopping restored)."""
        monitor, mode = self.early_stopping_monitor()
        values = np.asarray(self.history.history[monitor], "float64")
        best = np.argmax(values) if mode == "max" else np.argmin(values)
        return int(best) + 1

    def train(
        self,
        data,
        epochs,
        label=None,
        validation=None,
        batch_size=256,
        backup_dir=None,
        backup=None,
    ):
        """`model.fit` on `data(initial_epoch)`, a `(dataset,
        steps_per_epoch)` as `dataset` gives, with one progress bar over
        the epochs (if `label`),
        early stopping on `validation` (if given), a stop at the first NaN
        or infinite loss (`TrainingDiverged`), and, with `backup_dir`, a
        `TrainingBackup` of every finished epoch there: a `train` that was
        killed resumes from it to the same weights (`backup`, a
        `TrainingBackup` the caller has read and resumed, replaces
        `backup_dir`)."""
        backup, initial_epoch, finished = self._resumed(
            backup, backup_dir, label
        )
        if finished:
            return
        dataset, steps_per_epoch = data(initial_epoch=initial_epoch)
        epochs = epochs_for(self.min_steps, steps_per_epoch, epochs)
        nan_guard = StopOnNaN()
        callbacks = [nan_guard]
        if label:
            callbacks.append(EpochProgress(epochs, label))
        validation_data = None
        stopping = None
        if validation is not None:
            x_val, labels_val = validation
            validation_data = self.validation_dataset(
                x_val, labels_val, batch_size
            )
            stopping = self.early_stopping()
            callbacks.append(stopping)
        callbacks.extend(self.callbacks)
        if backup is not None:
            backup.early_stopping = stopping
            backup.nan_guard = nan_guard
            callbacks.append(backup)  # after early stopping
        self.history = self.model.fit(
            dataset,
            validation_batch_size=(
                batch_size if isinstance(validation_data, tuple) else None
            ),
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            verbose=0,
            shuffle=False,  # the dataset reshuffles itself
            callbacks=callbacks,
            validation_data=validation_data,
        )
        if backup is not None:  # the epochs before the resume too
            self.history.history = backup.history
        if nan_guard.failed_epoch is not None:
            raise TrainingDiverged(
                f"{self.name} (seed {getattr(self, 'seed', 0)}): the "
                "training loss became NaN or infinite in epoch "
                f"{nan_guard.failed_epoch}; this run is recorded as failed "
                "(try a lower learning rate, or check the inputs).",
                nan_guard.failed_epoch,
            )

    def _resumed(self, backup, backup_dir, label):
        """`(backup, initial_epoch, finished)` of a `train`: the backup in
        `backup_dir` (unless the caller gives one), resumed into the model
        where it fits; a finished one is applied, with its history."""
        if backup is None and backup_dir is not None:
            backup = TrainingBackup(backup_dir, interval=self.backup_interval)
            state = backup.read()
            if state is not None:
                if not self.model.built:
                    raise ValueError(
                        "Method.train resumes a backup into a built model; "
                        "Method.fit resumes an unbuilt one."
                    )
                if backup.fits(self.model, state):
                    backup.resume(state)
        meta = getattr(backup, "restored", None)  # what `resume` was given
        if meta is None:
            return backup, 0, False
        if label:
            resume = f"resuming after epoch {meta['epoch']}"
            if meta["finished"]:
                resume = f"trained earlier ({meta['epoch']} epochs)"
            print(f"{label}: {resume}, from {backup.path}", flush=True)
        if meta["finished"]:
            backup.apply(self.model, finished=True)
            self.history = keras.callbacks.History()
            self.history.history = backup.history
        return backup, meta["epoch"], meta["finished"]

    def predict(self, x, batch_size=1024):
        """Predictions in the task output space for `x` (dict with
        `modality_mask`), shape `(samples, output_dim)`."""
        return self.model.predict(
            x, batch_size=batch_size, verbose=0, callbacks=self.callbacks
        )["prediction"]

    def save(self, path):
        """Saves the trained model to a `.keras` file (atomically: a kill
        leaves the previous file or the new one); returns the path."""
        return save_model(self.model, path)
