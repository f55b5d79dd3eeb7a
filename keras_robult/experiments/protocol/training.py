"""Training one method on one seed's split and evaluating it, with its
cost (time, peak memory) and, optionally, its calibration."""

import dataclasses
import time

import keras
import numpy as np

from keras_robult.experiments.callbacks import TrainingDiverged
from keras_robult.experiments.confidence import (
    add_confidence,
    calibration_pairs,
    fit_calibration,
)
from keras_robult.experiments.protocol.evaluation import (
    evaluate_predictor,
    predict_pairs,
)
from keras_robult.experiments.protocol.options import DEFAULTS
from keras_robult.models.multimodal_model import MultimodalModel
from keras_robult.utils.peak_memory import PeakMemory
from keras_robult.utils.validation import MASK_KEY


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """What every (method, seed) pair of one protocol run shares
    (`run_protocol`'s arguments of the same names).

    Args:
        task_name: `"classification"`, `"regression"` or `"multilabel"`.
        curve_metric: the metric of the missing-rate curve.
        epochs: the training budget (a method's own tuned `epochs` wins).
        batch_size: the batch size.
        validation: `(x, y)` of the validation split, or None.
        verbose: 0 silent, 1 progress and a line per evaluation.
        save_models: None, or `(method_name, seed) -> path or None`.
        store: None, or the `RunStore` each record is saved in.
        coverage: the nominal coverage of calibrated intervals.
        callbacks: None, or `(method_name, seed) -> list` of callbacks
            given to that pair's method.
        backup_interval: None, or the seconds between two backups of a
            fit in the `store`.
    """

    task_name: str
    curve_metric: str
    epochs: int = DEFAULTS.epochs
    batch_size: int = DEFAULTS.batch_size
    validation: tuple | None = None
    verbose: int = 1
    save_models: object = None
    store: object = None
    coverage: float = DEFAULTS.coverage
    callbacks: object = None
    backup_interval: float | None = None


def train_and_evaluate(method, name, split, options, trained=None):
    """Trains one method on one seed's split (or, given `trained`, a
    method of this seed with the same `training_key`, takes its weights),
    evaluates it, saves its model; returns the record a `RunStore` keeps
    (metrics, or the failure). `options`: the run's `TrainingOptions`."""
    seed = split.seed
    try:
        if trained is not None:
            _adopt(method, name, trained, split, options.verbose)
        else:
            _train(method, name, split, options)
    except TrainingDiverged as error:
        record = {
            "failure": {
                "method": name,
                "seed": int(seed),
                "epoch": error.epoch,
                "message": str(error),
            }
        }
    else:
        record = _evaluate(method, name, split, options)
    if options.store is not None:
        options.store.save(name, seed, record)
    return record


def _adopt(method, name, trained, split, verbose):
    """`method` takes the weights of `trained` (the same training)."""
    method.adopt(trained, split.x_train, split.y_train)
    method.training_cost = dict(trained.training_cost, shared_with=trained.name)
    if verbose:
        print(
            f"  {name} (seed {split.seed}): the model {trained.name} "
            "trained (the same training), predicting by its own rule",
            flush=True,
        )


def _train(method, name, split, options):
    """`method.fit` on the split, its cost kept in `method.training_cost`."""
    store = options.store
    epochs_run = EpochCounter()
    given = list(getattr(method, "callbacks", []))
    method.callbacks = [*given, epochs_run]
    start = time.perf_counter()
    with PeakMemory() as memory:
        method.fit(
            split.x_train,
            split.y_train,
            getattr(method, "epochs", None) or options.epochs,  # a tuned one
            options.batch_size,
            seed=split.seed,
            verbose=options.verbose,
            validation=options.validation,
            backup_dir=store.backup_dir(name, split.seed) if store else None,
        )
    method.callbacks = given
    method.training_cost = _training_cost(
        time.perf_counter() - start, epochs_run.epochs, memory
    )


def _evaluate(method, name, split, options):
    """The record of a trained method: metrics per subset, curve, cost,
    calibration and reliability; its model saved where asked."""
    task_name = options.task_name
    kept = {}
    with PeakMemory() as memory:
        subset_metrics, curve, masked = evaluate_predictor(
            method.predict,
            split.x_test,
            split.y_test,
            task_name,
            split.modalities,
            split.seed,
            curve_metric=options.curve_metric,
            masks=split.test_masks,
            keep=kept,
        )
    calibration = None
    if split.x_calibration is not None:
        calibration = _calibrate(method, split, task_name, options.coverage)
    record = add_confidence(
        {"subsets": subset_metrics, "curve": curve},
        kept,
        split.y_test,
        task_name,
        split.modalities,
        calibration,
    )
    if masked:
        record["missing_type"] = masked
    record["cost"] = _with_evaluation_peak(
        dict(
            method.training_cost,
            predict_seconds_per_1000=_predict_seconds(method, split),
        ),
        memory,
    )
    model = getattr(method, "model", None)
    if model is not None:
        record["cost"]["parameters"] = int(model.count_params())
    if calibration is not None and isinstance(model, MultimodalModel):
        model.set_calibration(calibration)  # kept in its saved file
    if options.save_models is not None:
        path = options.save_models(name, split.seed)
        if path:
            method.save(path)
    return record


def _calibrate(method, split, task_name, coverage):
    """The method's `PresenceCalibration` from its predictions on the
    seed's calibration split, each row under every non-empty subset of its
    modalities."""
    rows, masks = calibration_pairs(split.x_calibration[MASK_KEY])
    predictions = predict_pairs(
        method.predict,
        split.x_calibration,
        split.modalities,
        rows,
        masks,
        1024,
    )
    return fit_calibration(
        predictions,
        np.asarray(split.y_calibration)[rows],
        masks,
        task_name,
        split.modalities,
        coverage,
        rows=rows,
    )


class EpochCounter(keras.callbacks.Callback):
    """Counts the epochs of every `fit` it is given to (all stages)."""

    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


def _training_cost(seconds, epochs, memory):
    """The training half of a cost record (`run_protocol`). A resumed fit
    counts the epochs it ran in this process only."""
    cost = {
        "train_seconds": float(seconds),
        "epochs": int(epochs),
        "train_seconds_per_epoch": float(seconds / max(epochs, 1)),
        "peak_host_mib": memory.host_bytes / 2**20,
    }
    if memory.device_bytes is not None:
        cost["peak_device_mib"] = memory.device_bytes / 2**20
    return cost


def _with_evaluation_peak(cost, memory):
    """`cost` whose peak memory figures cover the evaluation (`memory`)
    as well as the training."""
    peaks = {"peak_host_mib": memory.host_bytes / 2**20}
    if memory.device_bytes is not None:
        peaks["peak_device_mib"] = memory.device_bytes / 2**20
    for field, value in peaks.items():
        cost[field] = max(cost.get(field, 0.0), value)
    return cost


def _predict_seconds(method, split):
    """Seconds per 1,000 test samples of `method.predict` on the test
    split with every modality it holds, in the padded calls of
    `evaluate_predictor`, whose calls compiled it already."""
    mask = split.x_test[MASK_KEY]
    rows = np.arange(len(mask))
    start = time.perf_counter()
    predict_pairs(
        method.predict, split.x_test, split.modalities, rows, mask > 0.5, 1024
    )
    return float((time.perf_counter() - start) / len(rows) * 1000)
