"""The evaluation protocol (docs/concepts.md), as one function.

Methods side by side on the same split and seeds; every modality subset of
`evaluation_subsets`; a missing-rate curve; mean and standard deviation over
seeds; results in the `results.json` schema the `robult` command writes.
"""

import dataclasses
import time

import keras
import numpy as np

from keras_robult.data.masking import (
    check_rate,
    evaluation_subsets,
    random_mask,
    subset_mask,
    subset_name,
    training_mask,
)
from keras_robult.data.missing_spec import MissingSpec, missing_specs
from keras_robult.data.splits import labeled_mask, protocol_split
from keras_robult.data.standardization import fit_standardization
from keras_robult.experiments.confidence import (
    CALIBRATED_TASKS,
    calibrated_subset_metrics,
    calibration_pairs,
    fit_calibration,
    reliability,
)
from keras_robult.experiments.method import TrainingDiverged
from keras_robult.experiments.metrics import (
    PRIMARY,
    compute_metrics,
    higher_is_better,
)
from keras_robult.experiments.robustness import (
    effective_robustness,
    relative_robustness,
)
from keras_robult.models.multimodal_model import MultimodalModel
from keras_robult.utils.peak_memory import PeakMemory
from keras_robult.utils.validation import MASK_KEY, check_arrays

MISSING_RATES = tuple(round(0.1 * i, 1) for i in range(10))


def missing_rate_auc(rates, values):
    """Trapezoidal area under the metric-vs-rate curve divided by the rate
    range: the curve's average level, on the metric's own scale
    (MultiBench's relative robustness, `relative_robustness`)."""
    return relative_robustness(rates, values)


#: What `evaluate_predictor` gives `predict` at once, at most: bytes of
#: input rows, and rows (a model's `predict` keeps every output of every
#: row of a call, latents included: several KiB a row), at least one
#: `pad_to` batch. The evaluation's memory does not grow with the test
#: split.
EVALUATION_CHUNK_BYTES = 64 * 2**20
EVALUATION_CHUNK_ROWS = 16 * 1024


def evaluate_predictor(
    predict,
    x,
    labels,
    task_name,
    modalities,
    seed=0,
    rates=MISSING_RATES,
    curve_metric=None,
    pad_to=1024,
    masks=None,
    keep=None,
):
    """Metrics of one trained predictor on every subset and missing rate
    (and on every mask of `masks`).

    Every evaluation (each subset, each missing rate) is a set of (test
    row, modality mask) pairs; the pairs they share (a random mask of the
    curve is always some subset's) are predicted once, all of them in a
    few large `predict` calls of stacked masked copies of the test rows,
    padded to a multiple of `pad_to` rows (the predictor's batch size), so
    that a compiled predictor sees one batch shape. A prediction depends
    on its own row and mask only, so the metrics are those of one
    `predict` call per evaluation.

    Args:
        predict: function of an input dict (with `modality_mask`) to
            predictions in the task output space, row by row.
        x: dict of test arrays; a `modality_mask` in it marks modalities
            that are missing in the data itself (kept missing). A subset is
            evaluated on the samples that hold every modality of it, and
            left out when there is none: a subset's name is always what
            the predictor was given.
        labels: test labels.
        task_name: "classification", "regression" or "multilabel".
        modalities: modality names in model order.
        seed: seed of the random masks of the missing-rate curve.
        rates: the missing rates of the curve.
        curve_metric: the metric of the curve (default: the task's
            primary metric, `PRIMARY`).
        pad_to: int, the row count of each `predict` call is a multiple
            of it (the padding repeats a row; its predictions are dropped).
        masks: optional dict name -> `(samples, M)` mask (e.g. a
            `MissingSpec` applied to the test rows), each evaluated on the
            samples it leaves a modality.
        keep: optional dict, filled with subset name -> `(rows, masks,
            predictions)` of each subset's evaluation (for measures of the
            predictions themselves: calibration, reliability).

    Returns:
        `(subset_metrics, curve)`: dict subset name -> metrics dict, and the
        list of the curve metric at each rate; given `masks`, a third item,
        dict name -> metrics dict.
    """
    labels = np.asarray(labels)
    num = len(labels)
    base = np.asarray(x.get(MASK_KEY, np.ones((num, len(modalities)))))
    primary = curve_metric or PRIMARY[task_name][0]
    # (name or rate, rows, their masks) of every evaluation.
    evaluations = []
    for subset in evaluation_subsets(modalities):
        mask = subset_mask(num, modalities, subset)
        rows = np.flatnonzero(np.all(base >= mask, axis=1))
        if rows.size:
            evaluations.append((subset_name(subset, modalities), rows, mask))
    for index, rate in enumerate(rates):
        mask = random_mask(num, len(modalities), rate, seed=seed * 100 + index)
        mask = mask * base
        rows = np.flatnonzero(mask.sum(axis=1) > 0)
        evaluations.append((rate, rows, mask))
    for name, mask in (masks or {}).items():
        mask = np.asarray(mask, "float32") * base
        rows = np.flatnonzero(mask.sum(axis=1) > 0)
        evaluations.append((("mask", name), rows, mask))
    pairs = np.concatenate(
        [
            np.column_stack([rows, mask[rows] > 0.5])
            for _, rows, mask in evaluations
        ]
    ).astype("int64")
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    predictions = _predict_pairs(
        predict, x, modalities, unique[:, 0], unique[:, 1:], pad_to
    )
    subset_metrics, curve, masked, offset = {}, [], {}, 0
    for key, rows, mask in evaluations:
        taken = inverse.reshape(-1)[offset : offset + rows.size]
        offset += rows.size
        metrics = compute_metrics(task_name, labels[rows], predictions[taken])
        if isinstance(key, str):
            subset_metrics[key] = metrics
            if keep is not None:
                keep[key] = (rows, mask[rows], predictions[taken])
        elif isinstance(key, tuple):
            masked[key[1]] = metrics
        else:
            curve.append(metrics[primary])
    if masks is not None:
        return subset_metrics, curve, masked
    return subset_metrics, curve


def _predict_pairs(predict, x, modalities, rows, masks, pad_to):
    """`predict` on test row `rows[i]` under mask `masks[i]`, for every i,
    in chunks of at most `EVALUATION_CHUNK_BYTES` of input and
    `EVALUATION_CHUNK_ROWS` rows, each a multiple of `pad_to` rows."""
    arrays = {m: np.asarray(x[m]) for m in modalities}
    row_bytes = sum(a[:1].nbytes for a in arrays.values()) or 1
    most = min(EVALUATION_CHUNK_BYTES // row_bytes, EVALUATION_CHUNK_ROWS)
    chunk = max(1, most // pad_to) * pad_to
    outputs = []
    for start in range(0, len(rows), chunk):
        index = rows[start : start + chunk]
        mask = masks[start : start + chunk].astype("float32")
        padding = -len(index) % pad_to
        if padding:
            index = np.concatenate([index, np.repeat(index[-1:], padding)])
            mask = np.concatenate([mask, np.repeat(mask[-1:], padding, 0)])
        inputs = {m: a[index] for m, a in arrays.items()}
        inputs[MASK_KEY] = mask
        output = np.asarray(predict(inputs))
        outputs.append(output[: len(output) - padding])
    return np.concatenate(outputs)


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
    check_rate(train_missing_rate, "train_missing_rate")
    check_rate(calibration_fraction, "calibration_fraction")
    if calibration_fraction > 0 and task.name not in CALIBRATED_TASKS:
        raise ValueError(
            "`calibration_fraction` calibrates "
            f"{' and '.join(CALIBRATED_TASKS)} models; this task is "
            f"{task.name}."
        )
    if not 0 < coverage < 1:
        raise ValueError(f"`coverage` must be in (0, 1); got {coverage}")
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
    primary = curve_metric or PRIMARY[task.name][0]
    full_mask = np.asarray(
        x.get(MASK_KEY, np.ones((len(y), len(modalities)))), "float32"
    )
    valid, validation = _validation_split(
        x, y, full_mask, modalities, validation_mask, test_mask
    )
    input_shapes = {m: tuple(np.shape(x[m])[1:]) for m in modalities}
    tally = _Tally(primary, verbose)
    splits, fractions = {}, []
    for seed in seeds:
        split = _seed_split(
            x, y, full_mask, modalities, task, seed, valid,
            test_mask, is_labeled, labeled_fraction, train_missing_rate,
            train_missing, test_missing, calibration_fraction,
        )  # fmt: skip
        fractions.append(float(split.labeled.mean()))
        splits[seed] = split.indices
        if verbose:
            split.log(train_missing_rate or train_missing)
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
                method = factory(task, input_shapes, statistics)
                if callbacks is not None:
                    method.callbacks = list(callbacks(name, seed))
                if backup_interval is not None:
                    method.backup_interval = backup_interval
                key = None
                if hasattr(method, "training_key"):
                    key = method.training_key(split.x_train, validation)
                record = _train_and_evaluate(
                    method, name, split, task.name, primary,
                    epochs, batch_size, validation, verbose,
                    save_models, store, trained.get(key), coverage,
                )  # fmt: skip
                if key is not None and "failure" not in record:
                    trained[key] = method
            tally.add(name, record, time.perf_counter() - start)
    results = summarise_results(
        dataset,
        task,
        primary,
        # What the training splits held (a file's own labels need not be
        # --labeled-fraction of them).
        labeled_fraction if is_labeled is None else np.mean(fractions),
        seeds,
        modalities,
        tally.per_subset,
        tally.curves,
        per_missing=tally.per_missing,
        train_spec=str(train_missing) if train_missing else None,
        costs=tally.costs,
        reliability=tally.reliability,
    )
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


def _validation_split(x, y, full_mask, modalities, validation_mask, test_mask):
    """`(rows, (x, y))` of the validation split, or `(empty, None)`."""
    num = len(y)
    in_validation = np.zeros(num, bool)
    if validation_mask is not None and test_mask is None:
        raise ValueError("A validation split needs an explicit test split.")
    if validation_mask is not None:
        in_validation = np.asarray(validation_mask, bool)
        if test_mask is not None and np.any(in_validation & test_mask):
            raise ValueError("The validation and test splits overlap.")
    valid = np.flatnonzero(in_validation)
    if not valid.size:
        return valid, None
    x_valid = {m: np.asarray(x[m])[valid] for m in modalities}
    x_valid[MASK_KEY] = full_mask[valid]
    return valid, (x_valid, y[valid])


@dataclasses.dataclass
class SeedSplit:
    """One seed's split: the rows of each part and the arrays the methods
    train and are tested on."""

    seed: int
    train: np.ndarray
    test: np.ndarray
    labeled: np.ndarray  # boolean, over `train`
    x_train: dict
    y_train: dict
    x_test: dict
    y_test: np.ndarray
    indices: dict  # what labeled_indices.json records
    test_masks: dict = dataclasses.field(default_factory=dict)
    x_calibration: dict | None = None  # held out of training
    y_calibration: np.ndarray | None = None

    @property
    def modalities(self):
        return [m for m in self.x_test if m != MASK_KEY]

    def log(self, train_gaps):
        gaps = ""
        if train_gaps:
            mask = self.x_train[MASK_KEY]
            absent = 1.0 - mask.mean()
            incomplete = np.mean(mask.min(axis=1) < 0.5)
            gaps = (
                f", {absent:.0%} of training modalities missing "
                f"({incomplete:.0%} of the samples incomplete)"
            )
        print(
            f"seed {self.seed}: {len(self.train)} train "
            f"({int(self.labeled.sum())} labeled), {len(self.test)} "
            f"test{gaps}",
            flush=True,
        )


def _seed_split(
    x,
    y,
    full_mask,
    modalities,
    task,
    seed,
    valid,
    test_mask,
    is_labeled,
    labeled_fraction,
    train_missing_rate,
    train_missing=None,
    test_missing=(),
    calibration_fraction=0.0,
):
    """The `SeedSplit` of `seed`: the given test split, or a stratified
    70/30 one (`protocol_split`); the file's labeled flags, or a
    stratified labeled subset; the training gaps of `train_missing_rate`
    or `train_missing`; the test masks of `test_missing`; the calibration
    rows of `calibration_fraction` (labeled training rows held out)."""
    train, test = protocol_split(y, seed, task, test_mask, is_labeled)
    train = np.setdiff1d(train, valid)
    if is_labeled is not None:
        labeled = np.asarray(is_labeled, bool)[train]
    else:
        labeled = labeled_mask(y[train], labeled_fraction, seed, task)
    calibration = np.zeros(0, "int64")
    if calibration_fraction > 0:
        check_split(task, y, train, test, labeled, seed)  # the budget
        rows = train[labeled]
        chosen = labeled_mask(y[rows], calibration_fraction, [seed, 4], task)
        calibration = np.sort(rows[chosen])
        keep = ~np.isin(train, calibration)
        train, labeled = train[keep], labeled[keep]
    check_modalities_trained(full_mask[train], modalities, seed)
    try:
        check_split(task, y, train, test, labeled, seed)
    except ValueError as error:
        if not calibration.size:
            raise
        raise ValueError(
            f"Seed {seed}: holding out {calibration.size} of the "
            f"{calibration.size + int(labeled.sum())} labeled training "
            "samples for calibration (`calibration_fraction` "
            f"{calibration_fraction:g}) leaves too few to train on: "
            f"{str(error).removeprefix(f'Seed {seed}: ')} Or lower "
            "`calibration_fraction`."
        ) from None
    indices = {
        "train": train.tolist(),
        "test": test.tolist(),
        "labeled": train[labeled].tolist(),
    }
    if valid.size:
        indices["valid"] = valid.tolist()
    if calibration.size:
        indices["calibration"] = calibration.tolist()
    x_train = {m: np.asarray(x[m])[train] for m in modalities}
    x_train[MASK_KEY] = full_mask[train]
    if train_missing_rate > 0:
        # A stream of its own ([seed, 1]), not that of the split's
        # draws (seed).
        x_train[MASK_KEY] = training_mask(
            full_mask[train], train_missing_rate, seed=[seed, 1]
        )
    if train_missing is not None:
        x_train[MASK_KEY] = train_missing.apply(
            full_mask[train], modalities, seed=[seed, 2]
        )
    if train_missing_rate > 0 or train_missing is not None:
        check_modalities_trained(x_train[MASK_KEY], modalities, seed)
    if train_missing_rate > 0 or train_missing is not None:
        indices["train_modality_mask"] = x_train[MASK_KEY].astype(int).tolist()
    x_test = {m: np.asarray(x[m])[test] for m in modalities}
    x_test[MASK_KEY] = full_mask[test]
    # The same test draw for every method and every training spec.
    test_masks = {
        str(spec): spec.apply(full_mask[test], modalities, seed=[seed, 3])
        for spec in test_missing
    }
    if test_masks:
        indices["test_modality_masks"] = {
            name: mask.astype(int).tolist() for name, mask in test_masks.items()
        }
    return SeedSplit(
        seed,
        train,
        test,
        labeled,
        x_train,
        {"label": y[train], "is_labeled": labeled.astype("float32")},
        x_test,
        y[test],
        indices,
        test_masks,
        *(
            ({m: np.asarray(x[m])[calibration] for m in modalities}
             | {MASK_KEY: full_mask[calibration]}, y[calibration])
            if calibration.size
            else (None, None)
        ),
    )  # fmt: skip


class _Tally:
    """The per-seed metrics of every method, as the pairs finish."""

    def __init__(self, primary, verbose):
        self.primary = primary
        self.verbose = verbose
        self.per_subset = {}  # (method, subset, metric) -> [per seed]
        self.curves = {}  # method -> [per seed curve]
        self.per_missing = {}  # (method, test spec, metric) -> [per seed]
        self.costs = {}  # method -> [per seed cost dict]
        self.reliability = {}  # method -> [per seed reliability curves]
        self.failures = []

    def add(self, name, record, seconds):
        if "failure" in record:
            self.failures.append(record["failure"])
            if self.verbose:
                print(f"  {record['failure']['message']}", flush=True)
            return
        subset_metrics = record["subsets"]
        for subset, metrics in subset_metrics.items():
            for metric, value in metrics.items():
                key = (name, subset, metric)
                self.per_subset.setdefault(key, []).append(value)
        self.curves.setdefault(name, []).append(record["curve"])
        for spec, metrics in record.get("missing_type", {}).items():
            for metric, value in metrics.items():
                key = (name, spec, metric)
                self.per_missing.setdefault(key, []).append(value)
        if "cost" in record:
            self.costs.setdefault(name, []).append(record["cost"])
        if "reliability" in record:
            self.reliability.setdefault(name, []).append(record["reliability"])
        if not self.verbose:
            return
        primary = self.primary
        single = [
            metrics[primary]
            for subset, metrics in subset_metrics.items()
            if "+" not in subset and subset != "all"
        ]
        whole = subset_metrics.get("all")
        if single:
            summary = f"single-modality mean {primary} {np.mean(single):.4f}"
            if whole:
                summary += f", all {whole[primary]:.4f}"
        elif whole:  # one modality: its subset is the full set
            summary = f"{primary} {whole[primary]:.4f}"
        else:
            summary = "no subset with test samples"
        print(f"  {name}: {summary} ({seconds:.0f} s)", flush=True)


def _train_and_evaluate(
    method,
    name,
    split,
    task_name,
    curve_metric,
    epochs,
    batch_size,
    validation,
    verbose,
    save_models,
    store,
    trained=None,
    coverage=0.9,
):
    """Trains one method on one seed's split (or, given `trained`, a
    method of this seed with the same `training_key`, takes its weights),
    evaluates it, saves its model; returns the record a `RunStore` keeps
    (metrics, or the failure)."""
    seed = split.seed
    try:
        if trained is not None:
            method.adopt(trained, split.x_train, split.y_train)
            method.training_cost = dict(
                trained.training_cost, shared_with=trained.name
            )
            if verbose:
                print(
                    f"  {name} (seed {seed}): the model {trained.name} "
                    "trained (the same training), predicting by its own rule",
                    flush=True,
                )
        else:
            epochs_run = EpochCounter()
            given = list(getattr(method, "callbacks", []))
            method.callbacks = [*given, epochs_run]
            start = time.perf_counter()
            with PeakMemory() as memory:
                method.fit(
                    split.x_train,
                    split.y_train,
                    getattr(method, "epochs", None) or epochs,  # a tuned one
                    batch_size,
                    seed=seed,
                    verbose=verbose,
                    validation=validation,
                    backup_dir=store.backup_dir(name, seed) if store else None,
                )
            method.callbacks = given
            method.training_cost = _training_cost(
                time.perf_counter() - start, epochs_run.epochs, memory
            )
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
        kept = {}
        with PeakMemory() as memory:
            subset_metrics, curve, masked = evaluate_predictor(
                method.predict,
                split.x_test,
                split.y_test,
                task_name,
                split.modalities,
                seed,
                curve_metric=curve_metric,
                masks=split.test_masks,
                keep=kept,
            )
        calibration = None
        if split.x_calibration is not None:
            calibration = _calibrate(method, split, task_name, coverage)
            measures = calibrated_subset_metrics(
                calibration, kept, split.y_test
            )
            for subset, values in measures.items():
                subset_metrics[subset].update(values)
        record = {"subsets": subset_metrics, "curve": curve}
        if task_name == "classification" and kept:
            record["reliability"] = reliability(
                kept, split.y_test, split.modalities, calibration
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
        if save_models is not None:
            path = save_models(name, seed)
            if path:
                method.save(path)
    if store is not None:
        store.save(name, seed, record)
    return record


def _calibrate(method, split, task_name, coverage):
    """The method's `PresenceCalibration` from its predictions on the
    seed's calibration split, each row under every non-empty subset of its
    modalities."""
    rows, masks = calibration_pairs(split.x_calibration[MASK_KEY])
    predictions = _predict_pairs(
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
    _predict_pairs(
        method.predict, split.x_test, split.modalities, rows, mask > 0.5, 1024
    )
    return float((time.perf_counter() - start) / len(rows) * 1000)


def check_modalities_trained(mask, modalities, seed):
    """Refuses a training split in which a modality is missing from every
    sample: no method can learn it (its statistics, its encoder), and the
    numbers of its subsets would mean nothing."""
    absent = [m for m, column in zip(modalities, mask.T) if not column.any()]
    if absent:
        raise ValueError(
            f"Seed {seed}: modality '{absent[0]}' is missing in every "
            "training sample (its modality_mask column is all 0"
            + (f"; so are {absent[1:]}" if len(absent) > 1 else "")
            + "): nothing can learn it. Leave it out of the data, or give "
            "it training samples where it is present."
        )


def check_split(task, y, train, test, labeled, seed):
    """Refuses, before any training, a split on which the numbers would
    mean nothing: one class only, fewer labeled samples than classes, a
    test split with fewer samples than classes (or than 2)."""
    if not labeled.any():
        raise ValueError(
            f"Seed {seed}: the training split has no labeled sample; raise "
            "the labeled fraction or add labels."
        )
    if task.name != "classification":
        if len(test) < 2:
            raise ValueError(
                f"Seed {seed}: the test split holds {len(test)} sample(s); "
                "at least 2 are needed for a metric to mean anything."
            )
        return
    classes = np.unique(np.asarray(y)[train])
    if len(classes) < 2:
        raise ValueError(
            f"The training labels hold one class only ({classes[0]}): there "
            "is nothing to classify. Classification needs samples of at "
            "least two classes."
        )
    if len(test) < len(classes):
        raise ValueError(
            f"Seed {seed}: the test split holds {len(test)} sample(s) for "
            f"{len(classes)} classes; it needs at least one per class to "
            "mean anything. Use more data or a larger test split."
        )
    count = int(labeled.sum())
    if count < len(classes):
        raise ValueError(
            f"Seed {seed}: {count} labeled training sample(s) for "
            f"{len(classes)} classes; a semi-supervised split needs at "
            "least one labeled sample per class. Raise the labeled "
            "fraction or add labels."
        )


def summarise_results(
    dataset,
    task,
    primary,
    labeled_fraction,
    seeds,
    modalities,
    per_subset,
    curves,
    per_missing=None,
    train_spec=None,
    costs=None,
    reference="unimodal",
    reliability=None,
):
    """The `results.json` dict of per-seed metrics: `per_subset` maps
    `(method, subset name, metric)` to the per-seed values, `curves` a
    method to its per-seed missing-rate curves of `primary`; each gets its
    mean and standard deviation over the seeds.

    `per_missing` maps `(method, test spec, metric)` to per-seed values
    (`"missing_type"` entries, with `train_spec`, `"none"` without one);
    `costs` a method to its per-seed cost records (`"cost"`, their means).
    Every curve gets a `"robustness"` entry: relative robustness, and
    effective robustness against the `reference` method's curve when the
    run has it."""
    results = []
    for (method, subset, metric), values in per_subset.items():
        results.append(
            {
                "method": method,
                "subset": modalities if subset == "all" else subset.split("+"),
                "metric": metric,
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "per_seed": [float(v) for v in values],
            }
        )
    missing = []
    for method, per_seed in curves.items():
        mean = np.mean(np.asarray(per_seed, "float64"), axis=0)
        missing.append(
            {
                "method": method,
                "metric": primary,
                "rates": list(MISSING_RATES),
                "mean": [float(v) for v in mean],
                "auc": missing_rate_auc(MISSING_RATES, mean),
            }
        )
    summary = {
        "dataset": dataset,
        "task": task.name,
        "labeled_fraction": float(labeled_fraction),
        "seeds": [int(s) for s in seeds],
        "modalities": list(modalities),
        "results": results,
        "missing_rate_curves": missing,
        "robustness": _robustness(missing, reference),
    }
    if per_missing:
        summary["missing_type"] = [
            {
                "method": method,
                "train": train_spec or "none",
                "test": spec,
                "metric": metric,
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "per_seed": [float(v) for v in values],
            }
            for (method, spec, metric), values in per_missing.items()
        ]
    if costs:
        summary["cost"] = [
            _mean_cost(method, records) for method, records in costs.items()
        ]
    if reliability:
        summary["reliability"] = [
            entry
            for method, records in reliability.items()
            for entry in _mean_reliability(method, records)
        ]
    return summary


def _mean_reliability(method, records):
    """A method's reliability curves (`"raw"`, and `"calibrated"` when
    calibrated), per number of present modalities, each bin's mean
    confidence and accuracy averaged over the seeds."""
    entries = []
    for kind in ("raw", "calibrated"):
        for count in sorted(records[0].get(kind, {}), key=int):
            curves = [r[kind][count] for r in records if kind in r]
            size = min(len(c["confidence"]) for c in curves)
            entries.append(
                {
                    "method": method,
                    "calibrated": kind == "calibrated",
                    "present": int(count),
                    **{
                        field: [
                            float(np.mean([c[field][i] for c in curves]))
                            for i in range(size)
                        ]
                        for field in ("confidence", "accuracy")
                    },
                }
            )
    return entries


def _robustness(curves, reference):
    """One `"robustness"` entry per missing-rate curve."""
    base = next((c for c in curves if c["method"] == reference), None)
    entries = []
    for curve in curves:
        entry = {
            "method": curve["method"],
            "metric": curve["metric"],
            "relative": curve["auc"],  # relative_robustness of the curve
            "effective": None,
            "reference": reference if base else None,
        }
        if base is not None:
            entry["effective"] = effective_robustness(
                curve["rates"],
                curve["mean"],
                base["mean"],
                higher_is_better(curve["metric"]),
            )
        entries.append(entry)
    return entries


def _mean_cost(method, records):
    """A method's cost: each measured field's mean over its seeds."""
    entry = {"method": method, "seeds": len(records)}
    for field in COST_FIELDS:
        values = [r[field] for r in records if r.get(field) is not None]
        if values:
            entry[field] = float(np.mean(values))
    shared = {r["shared_with"] for r in records if r.get("shared_with")}
    if shared:
        entry["shared_with"] = sorted(shared)[0]
    return entry


#: The measured fields of a cost record, in table order.
COST_FIELDS = (
    "parameters",
    "train_seconds_per_epoch",
    "epochs",
    "train_seconds",
    "peak_host_mib",
    "peak_device_mib",
    "predict_seconds_per_1000",
)
