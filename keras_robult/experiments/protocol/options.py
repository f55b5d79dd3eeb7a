"""The options of a protocol run: every default of the comparison written
once (`ComparisonConfig`, `TuneConfig` and the command take theirs from
here)."""

import dataclasses


@dataclasses.dataclass(frozen=True, eq=False)
class ProtocolOptions:
    """How `run_protocol` splits, trains, evaluates and records its
    methods: each of its arguments after the data and the methods.

    Args:
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

    Example:

    ```python
    options = keras_robult.experiments.ProtocolOptions(seeds=(0,), epochs=20)
    results, splits = keras_robult.experiments.run_protocol(
        x, y, task, methods, options)
    ```
    """

    seeds: tuple = (0, 1, 2)
    labeled_fraction: float = 0.05
    epochs: int = 150
    batch_size: int = 256
    test_mask: object = None
    is_labeled: object = None
    dataset: str = "data"
    verbose: int = 1
    save_models: object = None
    validation_mask: object = None
    store: object = None
    curve_metric: str | None = None
    train_missing_rate: float = 0.0
    callbacks: object = None
    backup_interval: float | None = None
    train_missing: object = None
    test_missing: tuple = ()
    calibration_fraction: float = 0.0
    coverage: float = 0.9


#: The defaults of every protocol option.
DEFAULTS = ProtocolOptions()
