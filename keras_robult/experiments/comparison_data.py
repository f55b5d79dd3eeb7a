"""What a comparison trains and tests on (`run_comparison`'s data)."""

import dataclasses

import numpy as np

from keras_robult.utils.validation import MASK_KEY


@dataclasses.dataclass
class ComparisonData:
    """What a comparison trains and tests on.

    Args:
        x: dict modality -> array `(samples, ...)`, optionally
            `modality_mask`.
        y: labels `(samples,)` or `(samples, labels)`.
        task: a `keras_robult.tasks.Task`.
        dataset: the name in the results and the default folder.
        test_mask: optional boolean `(samples,)` test split (see
            `run_protocol`); without it each seed draws a stratified 70/30
            split.
        validation_mask: optional boolean `(samples,)` validation split.
        is_labeled: optional boolean `(samples,)` labeled flags.
        metrics: the metrics of `results.md`, one table each; the first is
            also the missing-rate curve's (default: the task's primary).
        record: what identifies the data in the run configuration (e.g.
            the file and its digest), so that a rerun on other data in the
            same folder is refused.
        extra: fields added to `results.json` as they are.
        finetune: a `FinetuneSource` (`x` then holds record rows): every
            method trains its backbones end to end.
        backbone_features: `x` holds what keras-hub backbones made of the
            raw inputs (features, or record rows with `finetune`): the
            trained models may be assembled with those backbones to take
            raw images and strings (`raw_input_model`), where a linear
            model of the features cannot follow, so Robult gets no
            `linear_base` (unless the method options name one).
    """

    x: dict
    y: np.ndarray
    task: object
    dataset: str
    test_mask: np.ndarray | None = None
    validation_mask: np.ndarray | None = None
    is_labeled: np.ndarray | None = None
    metrics: tuple | None = None
    record: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict)
    finetune: object = None
    backbone_features: bool = False

    @property
    def modalities(self):
        return [m for m in self.x if m != MASK_KEY]

    @classmethod
    def from_splits(cls, splits, task, dataset, **kwargs):
        """The data of official `(train, valid, test)` splits, each
        `(x, y)`: concatenated, the validation split driving early
        stopping and the test split giving the metrics."""
        for (_, y), name in zip(splits, ("train", "valid", "test")):
            if len(y) == 0:
                raise ValueError(f"The {name} split of {dataset} is empty.")
        keys = list(splits[0][0])
        x = {k: np.concatenate([s[0][k] for s in splits]) for k in keys}
        y = np.concatenate([s[1] for s in splits])
        marks = np.repeat(np.arange(len(splits)), [len(s[1]) for s in splits])
        return cls(
            x,
            y,
            task,
            dataset,
            test_mask=marks == 2,
            validation_mask=marks == 1,
            **kwargs,
        )
