"""One seed's split of the protocol: training, test, labeled, validation
and calibration rows, with the checks that a split can be trained on."""

import dataclasses

import numpy as np

from keras_robult.data.masking import training_mask
from keras_robult.data.splits import labeled_mask, protocol_split
from keras_robult.utils.validation import MASK_KEY


@dataclasses.dataclass(frozen=True)
class ProtocolData:
    """The arrays a protocol run splits: `x` (dict modality -> array),
    labels `y`, the presence mask of every sample `full_mask` `(samples,
    M)`, the `modalities` in order and the `task`."""

    x: dict
    y: np.ndarray
    full_mask: np.ndarray
    modalities: tuple
    task: object

    def rows(self, rows):
        """The inputs of `rows`, with their presence mask."""
        out = {m: np.asarray(self.x[m])[rows] for m in self.modalities}
        out[MASK_KEY] = self.full_mask[rows]
        return out


@dataclasses.dataclass(frozen=True)
class SplitOptions:
    """How every seed's rows are drawn (`run_protocol`'s arguments of the
    same names); `valid`: the rows of the validation split, kept out of
    training."""

    labeled_fraction: float = 0.05
    test_mask: np.ndarray | None = None
    is_labeled: np.ndarray | None = None
    valid: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(0, "int64")
    )
    train_missing_rate: float = 0.0
    train_missing: object = None
    test_missing: tuple = ()
    calibration_fraction: float = 0.0


def validation_split(data, validation_mask, test_mask):
    """`(rows, (x, y))` of the validation split of `data`, or `(empty,
    None)`."""
    in_validation = np.zeros(len(data.y), bool)
    if validation_mask is not None and test_mask is None:
        raise ValueError("A validation split needs an explicit test split.")
    if validation_mask is not None:
        in_validation = np.asarray(validation_mask, bool)
        if test_mask is not None and np.any(in_validation & test_mask):
            raise ValueError("The validation and test splits overlap.")
    valid = np.flatnonzero(in_validation)
    if not valid.size:
        return valid, None
    return valid, (data.rows(valid), data.y[valid])


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


def seed_split(data, options, seed):
    """The `SeedSplit` of `seed` for `data` (`ProtocolData`) under
    `options` (`SplitOptions`): the given test split, or a stratified
    70/30 one (`protocol_split`); the file's labeled flags, or a
    stratified labeled subset; the training gaps of `train_missing_rate`
    or `train_missing`; the test masks of `test_missing`; the calibration
    rows of `calibration_fraction` (labeled training rows held out)."""
    train, test, labeled, calibration = _rows(data, options, seed)
    indices = {
        "train": train.tolist(),
        "test": test.tolist(),
        "labeled": train[labeled].tolist(),
    }
    if options.valid.size:
        indices["valid"] = options.valid.tolist()
    if calibration.size:
        indices["calibration"] = calibration.tolist()
    x_train = data.rows(train)
    gaps = _training_gaps(data, options, train, seed)
    if gaps is not None:
        x_train[MASK_KEY] = gaps
        check_modalities_trained(gaps, data.modalities, seed)
        indices["train_modality_mask"] = gaps.astype(int).tolist()
    # The same test draw for every method and every training spec.
    test_masks = {
        str(spec): spec.apply(
            data.full_mask[test], data.modalities, seed=[seed, 3]
        )
        for spec in options.test_missing
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
        {"label": data.y[train], "is_labeled": labeled.astype("float32")},
        data.rows(test),
        data.y[test],
        indices,
        test_masks,
        *(
            (data.rows(calibration), data.y[calibration])
            if calibration.size
            else (None, None)
        ),
    )


def _rows(data, options, seed):
    """`(train, test, labeled, calibration)`: the rows of the seed's
    training and test splits, the labeled flags over `train`, and the
    labeled training rows held out for calibration (already out of
    `train`), after the checks that the split can be trained on."""
    task, y = data.task, data.y
    train, test = protocol_split(
        y, seed, task, options.test_mask, options.is_labeled
    )
    train = np.setdiff1d(train, options.valid)
    if options.is_labeled is not None:
        labeled = np.asarray(options.is_labeled, bool)[train]
    else:
        labeled = labeled_mask(y[train], options.labeled_fraction, seed, task)
    calibration = np.zeros(0, "int64")
    if options.calibration_fraction > 0:
        check_split(task, y, train, test, labeled, seed)  # the budget
        rows = train[labeled]
        chosen = labeled_mask(
            y[rows], options.calibration_fraction, [seed, 4], task
        )
        calibration = np.sort(rows[chosen])
        keep = ~np.isin(train, calibration)
        train, labeled = train[keep], labeled[keep]
    check_modalities_trained(data.full_mask[train], data.modalities, seed)
    try:
        check_split(task, y, train, test, labeled, seed)
    except ValueError as error:
        if not calibration.size:
            raise
        raise ValueError(
            f"Seed {seed}: holding out {calibration.size} of the "
            f"{calibration.size + int(labeled.sum())} labeled training "
            "samples for calibration (`calibration_fraction` "
            f"{options.calibration_fraction:g}) leaves too few to train on: "
            f"{str(error).removeprefix(f'Seed {seed}: ')} Or lower "
            "`calibration_fraction`."
        ) from None
    return train, test, labeled, calibration


def _training_gaps(data, options, train, seed):
    """The training presence mask with the gaps of `train_missing_rate`
    or `train_missing`, or None for complete training data."""
    full = data.full_mask[train]
    if options.train_missing_rate > 0:
        # A stream of its own ([seed, 1]), not that of the split's
        # draws (seed).
        return training_mask(full, options.train_missing_rate, seed=[seed, 1])
    if options.train_missing is not None:
        return options.train_missing.apply(
            full, data.modalities, seed=[seed, 2]
        )
    return None


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
