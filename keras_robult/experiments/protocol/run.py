"""The evaluation protocol (docs/concepts.md), as one function.

Methods side by side on the same split and seeds; every modality subset of
`evaluation_subsets`; a missing-rate curve; mean and standard deviation over
seeds; results in the `results.json` schema the `robult` command writes.
"""

import dataclasses
import time

import numpy as np

from keras_robult.data.masking import check_rate
from keras_robult.data.missing_spec import MissingSpec, missing_specs
from keras_robult.data.standardization import fit_standardization
from keras_robult.experiments.confidence import CALIBRATED_TASKS
from keras_robult.experiments.metrics import PRIMARY
from keras_robult.experiments.protocol.options import DEFAULTS
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


def run_protocol(x, y, task, methods, options=None, **keywords):
    """Trains and evaluates every method on every seed.

    Args:
        x: dict modality -> array (optionally `modality_mask`).
        y: labels `(samples,)` or `(samples, labels)`.
        task: a `Task`.
        methods: dict name -> factory `(task, input_shapes, statistics) ->
            Method`.
        options: a `ProtocolOptions` (default: its defaults).
        **keywords: `ProtocolOptions` fields (`seeds=`, `epochs=`, ...),
            over `options`.

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
    options = dataclasses.replace(options or DEFAULTS, **keywords)
    modalities = [k for k in x if k != MASK_KEY]
    y = np.asarray(y)
    targets = {"label": y}
    if options.is_labeled is not None:
        targets["is_labeled"] = np.asarray(options.is_labeled, "float32")
    check_arrays(x, targets, modalities, task)
    train_missing, test_missing = _checked_gaps(modalities, options)
    _check_calibration(task, options)
    primary = options.curve_metric or PRIMARY[task.name][0]
    data = ProtocolData(
        x,
        y,
        np.asarray(
            x.get(MASK_KEY, np.ones((len(y), len(modalities)))), "float32"
        ),
        tuple(modalities),
        task,
    )
    split_options, training = _shared_options(
        data, options, primary, train_missing, test_missing
    )
    tally = Tally(primary, options.verbose)
    splits, fractions = {}, []
    for seed in options.seeds:
        split = seed_split(data, split_options, seed)
        fractions.append(float(split.labeled.mean()))
        splits[seed] = split.indices
        if options.verbose:
            split.log(options.train_missing_rate or train_missing)
        _run_seed(methods, data, split, training, tally)
    # What the training splits held (a file's own labels need not be
    # --labeled-fraction of them).
    fraction = options.labeled_fraction
    if options.is_labeled is not None:
        fraction = np.mean(fractions)
    spec = str(train_missing) if train_missing else None
    seeds, names = tuple(options.seeds), tuple(modalities)
    info = RunInfo(options.dataset, task, primary, fraction, seeds, names, spec)
    results = summarise_results(info, tally)
    _record_options(results, options, train_missing)
    if tally.failures:
        results["failures"] = tally.failures
    return results, splits


def _shared_options(data, options, primary, train_missing, test_missing):
    """`(SplitOptions, TrainingOptions)`: what every seed's split and
    every (method, seed) pair of the run share."""
    valid, validation = validation_split(
        data, options.validation_mask, options.test_mask
    )
    split_options = SplitOptions(
        labeled_fraction=options.labeled_fraction,
        test_mask=options.test_mask,
        is_labeled=options.is_labeled,
        valid=valid,
        train_missing_rate=options.train_missing_rate,
        train_missing=train_missing,
        test_missing=test_missing,
        calibration_fraction=options.calibration_fraction,
    )
    training = TrainingOptions(
        task_name=data.task.name,
        curve_metric=primary,
        epochs=options.epochs,
        batch_size=options.batch_size,
        validation=validation,
        verbose=options.verbose,
        save_models=options.save_models,
        store=options.store,
        coverage=options.coverage,
        callbacks=options.callbacks,
        backup_interval=options.backup_interval,
    )
    return split_options, training


def _record_options(results, options, train_missing):
    """The calibration and training-gap options of a run, in `results`."""
    if options.calibration_fraction > 0:
        results["calibration"] = {
            "fraction": float(options.calibration_fraction),
            "coverage": float(options.coverage),
        }
    if options.train_missing_rate > 0:
        results["train_missing_rate"] = float(options.train_missing_rate)
    if train_missing is not None:
        results["train_missing"] = str(train_missing)


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


def _checked_gaps(modalities, options):
    """`(train_missing, test_missing)` of `options` parsed to
    `MissingSpec`s, after the checks of the training gaps' arguments."""
    train_missing_rate = options.train_missing_rate
    train_missing = options.train_missing
    check_rate(train_missing_rate, "train_missing_rate")
    if train_missing is not None and train_missing_rate > 0:
        raise ValueError(
            "Training gaps come from train_missing_rate or train_missing, "
            "not both."
        )
    train_missing = (
        None if train_missing is None else MissingSpec.parse(train_missing)
    )
    test_missing = missing_specs(options.test_missing)
    for spec in [train_missing, *test_missing]:
        if spec is not None:
            spec.missing_modalities(modalities)  # unknown names fail here
    return train_missing, test_missing


def _check_calibration(task, options):
    calibration_fraction = options.calibration_fraction
    coverage = options.coverage
    check_rate(calibration_fraction, "calibration_fraction")
    if calibration_fraction > 0 and task.name not in CALIBRATED_TASKS:
        raise ValueError(
            "`calibration_fraction` calibrates "
            f"{' and '.join(CALIBRATED_TASKS)} models; this task is "
            f"{task.name}."
        )
    if not 0 < coverage < 1:
        raise ValueError(f"`coverage` must be in (0, 1); got {coverage}")
