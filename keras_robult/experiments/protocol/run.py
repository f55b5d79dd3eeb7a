"""The evaluation protocol (docs/concepts.md), as one function.

Methods side by side on the same split and seeds; every modality subset of
`evaluation_subsets`; a missing-rate curve; mean and standard deviation over
seeds; results in the `results.json` schema the `robult` command writes.
"""

import time

import numpy as np

from keras_robult.data.masking import check_rate
from keras_robult.data.missing_spec import MissingSpec, missing_specs
from keras_robult.data.standardization import fit_standardization
from keras_robult.experiments.confidence import CALIBRATED_TASKS
from keras_robult.experiments.metrics import PRIMARY
from keras_robult.experiments.protocol.results import (
    RunInfo,
    Tally,
    summarise_results,
)
from keras_robult.experiments.protocol.splits import (
    ProtocolData,
    SplitOptions,
    seed_split,
    validation_split,
)
from keras_robult.experiments.protocol.training import (
    TrainingOptions,
    train_and_evaluate,
)
from keras_robult.utils.validation import MASK_KEY, check_arrays


def run_protocol(
    x,
    y,
    task,
    methods,
    seeds=(0, 1, 2),
    labeled_fraction=0.05,
    epochs=150,
    batch_size=256,
    test_mask=None,
    is_labeled=None,
    dataset="data",
    verbose=1,
    save_models=None,
    validation_mask=None,
    store=None,
    curve_metric=None,
    train_missing_rate=0.0,
    callbacks=None,
    backup_interval=None,
    train_missing=None,
    test_missing=(),
    calibration_fraction=0.0,
    coverage=0.9,
):
    """Trains and evaluates every method on every seed.

    Args:
        x: dict modality -> array (optionally `modality_mask`).
        y: labels `(samples,)` or `(samples, labels)`.
        task: a `Task`.
        methods: dict name -> factory `(task, input_shapes, statistics) ->
            Method`.
        seeds: seeds of the split, the labeled subset and the training.
        labeled_fraction: fraction of the training split that is labeled
            (ignored when `is_labeled` is given).
        epochs: training budget, the same for every method.
        batch_size: batch size, the same for every method.
        test_mask: optional boolean `(samples,)` test split; default a
            stratified 70/30 split per seed.
        is_labeled: optional boolean `(samples,)` labeled flags.
        dataset: name recorded in the results.
        verbose: 0 silent, 1 progress bars and a line per evaluation.
        save_models: optional function `(method_name, seed) -> path`; where
            it returns a path, the trained model is saved there.
        validation_mask: optional boolean `(samples,)` validation split
            (every sample labeled), kept out of training and used for early
            stopping with the best weights restored; the test split is used
            only for the reported metrics.
        store: optional `RunStore`: each finished (method, seed) is
            recorded there as soon as it is done (after its model), and a
            pair it already holds is not trained again, so an interrupted
            run resumes where it stopped with the same final results.
        curve_metric: metric of the missing-rate curve and its AUC
            (default: the task's primary metric; e.g. `"auroc"` for a
            binary task reported by AUROC).
        train_missing_rate: float in [0, 1): training data with gaps. Per
            seed, each present modality of each training sample is dropped
            with this probability, at least one kept per sample
            (`keras_robult.data.training_mask`, seeded by the seed); every
            method trains on the same gaps, which are saved with the
            labeled indices (`"train_modality_mask"`, one 0/1 row per
            training sample). The validation and test splits keep their
            modalities.
        callbacks: optional function `(method_name, seed) -> list` of
            `keras.callbacks.Callback`s given to every training stage and
            every `predict` call of that pair (logging, timing).
        backup_interval: seconds between two backups of a fit in the
            `store` (`TrainingBackup`; 0: every epoch; None: the methods'
            default, `DEFAULT_INTERVAL`).
        train_missing: optional `MissingSpec` (or `"TYPE:RATE"`): training
            data with gaps under the missing-type protocol instead of
            `train_missing_rate`; drawn once per seed and saved like it.
        test_missing: `MissingSpec`s (or `"TYPE:RATE"` strings): each is
            applied to the test split once per seed (the same draw for
            every method, saved as `"test_modality_masks"`) and reported in
            `results["missing_type"]`, one entry per (test spec, metric).
        calibration_fraction: float in [0, 1); above 0, this fraction of
            each seed's labeled training samples (stratified) is held out
            of training as a calibration split (saved as
            `"calibration"`): every method is calibrated on it per
            presence pattern (`keras_robult.experiments.confidence`), its
            saved model keeps the calibration, and each subset reports the
            calibrated ECE and Brier score (classification) or the
            coverage and mean width of the prediction intervals
            (regression), beside the uncalibrated metrics; classification
            also gets `results["reliability"]`.
        coverage: float in (0, 1), the intervals' nominal coverage.

    Every (method, seed) also reports its cost (`results["cost"]`): its
    parameters, training seconds per epoch, the peak resident memory of
    the process while it trained (and the GPU's, on a GPU), and the
    seconds per 1,000 test samples of a warm `predict`.

    Methods of one seed whose `training_key` is equal (and not None) share
    one training: the first trains, the others take its weights
    (`Method.adopt`) and predict by their own rule (`robult` and
    `robult-paper` on complete training data).

    A (method, seed) whose training loss turns NaN or infinite is stopped
    and recorded in `results["failures"]` (method, seed, epoch, message);
    the other pairs still run.

    Returns:
        `(results, splits)`: the results dict (schema of `results.json`) and
        a dict seed -> {"train", "test", "labeled"} index lists.
    """
    modalities = [k for k in x if k != MASK_KEY]
    y = np.asarray(y)
    targets = {"label": y}
    if is_labeled is not None:
        targets["is_labeled"] = np.asarray(is_labeled, "float32")
    check_arrays(x, targets, modalities, task)
    train_missing, test_missing = _checked_gaps(
        modalities, train_missing_rate, train_missing, test_missing
    )
    _check_calibration(task, calibration_fraction, coverage)
    primary = curve_metric or PRIMARY[task.name][0]
    data = ProtocolData(
        x,
        y,
        np.asarray(
            x.get(MASK_KEY, np.ones((len(y), len(modalities)))), "float32"
        ),
        tuple(modalities),
        task,
    )
    valid, validation = validation_split(data, validation_mask, test_mask)
    split_options = SplitOptions(
        labeled_fraction=labeled_fraction,
        test_mask=test_mask,
        is_labeled=is_labeled,
        valid=valid,
        train_missing_rate=train_missing_rate,
        train_missing=train_missing,
        test_missing=test_missing,
        calibration_fraction=calibration_fraction,
    )
    training = TrainingOptions(
        task_name=task.name,
        curve_metric=primary,
        epochs=epochs,
        batch_size=batch_size,
        validation=validation,
        verbose=verbose,
        save_models=save_models,
        store=store,
        coverage=coverage,
        callbacks=callbacks,
        backup_interval=backup_interval,
    )
    tally = Tally(primary, verbose)
    splits, fractions = {}, []
    for seed in seeds:
        split = seed_split(data, split_options, seed)
        fractions.append(float(split.labeled.mean()))
        splits[seed] = split.indices
        if verbose:
            split.log(train_missing_rate or train_missing)
        _run_seed(methods, data, split, training, tally)
    info = RunInfo(
        dataset,
        task,
        primary,
        # What the training splits held (a file's own labels need not be
        # --labeled-fraction of them).
        labeled_fraction if is_labeled is None else np.mean(fractions),
        tuple(seeds),
        tuple(modalities),
        train_spec=str(train_missing) if train_missing else None,
    )
    results = summarise_results(info, tally)
    if calibration_fraction > 0:
        results["calibration"] = {
            "fraction": float(calibration_fraction),
            "coverage": float(coverage),
        }
    if train_missing_rate > 0:
        results["train_missing_rate"] = float(train_missing_rate)
    if train_missing is not None:
        results["train_missing"] = str(train_missing)
    if tally.failures:
        results["failures"] = tally.failures
    return results, splits


def _run_seed(methods, data, split, training, tally):
    """Every method on one seed's split, in order; each record goes to
    `tally`. A pair the run store holds is not run again; methods with
    the same `training_key` share one training."""
    seed, store, verbose = split.seed, training.store, training.verbose
    input_shapes = {m: tuple(np.shape(data.x[m])[1:]) for m in data.modalities}
    statistics = fit_standardization(split.x_train)
    trained = {}  # training key -> the method of this seed trained so
    for name, factory in methods.items():
        start = time.perf_counter()
        record = store.finished(name, seed) if store else None
        if record is not None:
            if verbose:
                print(
                    f"  {name}: seed {seed} finished earlier, skipped "
                    f"(recorded in {store.out_dir})",
                    flush=True,
                )
        else:
            method = factory(data.task, input_shapes, statistics)
            if training.callbacks is not None:
                method.callbacks = list(training.callbacks(name, seed))
            if training.backup_interval is not None:
                method.backup_interval = training.backup_interval
            key = None
            if hasattr(method, "training_key"):
                key = method.training_key(split.x_train, training.validation)
            record = train_and_evaluate(
                method, name, split, training, trained.get(key)
            )
            if key is not None and "failure" not in record:
                trained[key] = method
        tally.add(name, record, time.perf_counter() - start)


def _checked_gaps(modalities, train_missing_rate, train_missing, test_missing):
    """`(train_missing, test_missing)` parsed to `MissingSpec`s, after the
    checks of the training gaps' arguments."""
    check_rate(train_missing_rate, "train_missing_rate")
    if train_missing is not None and train_missing_rate > 0:
        raise ValueError(
            "Training gaps come from train_missing_rate or train_missing, "
            "not both."
        )
    train_missing = (
        None if train_missing is None else MissingSpec.parse(train_missing)
    )
    test_missing = missing_specs(test_missing)
    for spec in [train_missing, *test_missing]:
        if spec is not None:
            spec.missing_modalities(modalities)  # unknown names fail here
    return train_missing, test_missing


def _check_calibration(task, calibration_fraction, coverage):
    check_rate(calibration_fraction, "calibration_fraction")
    if calibration_fraction > 0 and task.name not in CALIBRATED_TASKS:
        raise ValueError(
            "`calibration_fraction` calibrates "
            f"{' and '.join(CALIBRATED_TASKS)} models; this task is "
            f"{task.name}."
        )
    if not 0 < coverage < 1:
        raise ValueError(f"`coverage` must be in (0, 1); got {coverage}")
