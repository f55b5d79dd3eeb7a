from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from keras_robult.tasks.task import Task, labeled_rows


@keras.saving.register_keras_serializable(package="keras_robult")
class Regression(Task):
    """Scalar regression (e.g. CMU-MOSI / MOSEI sentiment in [-3, 3]).

    Targets are standardised, `z = (y - offset) / scale`: the model's head
    predicts `z` (predictions are `offset + scale * z`) and the supervised
    loss is L1 on `z`. For the PU loss, `z` is discretised into integer bins
    `round(clip(z, low, high))` (7 bins for the default range): two labeled
    samples are a known positive pair when their bins agree. An unlabeled
    sample's soft bin distribution is a Gaussian of standard deviation
    `target_std` (in bins) around its prediction, evaluated at the bin
    centres and normalised. The defaults (`offset = 0`, `scale = 1`, bins
    `(-3, 3)`) are the sentiment scale of CMU-MOSI and MOSEI; for targets on
    any other scale, `Regression.from_targets(y)` fits `offset` and `scale`
    so that the labeled targets span the bins.

    Labeled targets outside the bins join the end bins (clipped), with a
    `UserWarning` that counts them; when more than 5% of them are outside,
    the bins do not describe the targets and `validate_labels` raises.

    Args:
        bins: tuple `(low, high)` of integers; the bin centres are
            `low, low + 1, ..., high` in standardised units. Defaults to
            `(-3, 3)`.
        target_std: float, standard deviation of the Gaussian soft target,
            in bins. Defaults to `0.5`.
        offset: float, the target value at bin 0. Defaults to `0.0`.
        scale: float > 0, the target width of one bin. Defaults to `1.0`.

    Example:

    ```python
    task = keras_robult.tasks.Regression(bins=(-3, 3))
    prices = keras_robult.tasks.Regression.from_targets([1000.0, 1337.0])
    ```
    """

    name = "regression"

    #: Above this fraction of labeled targets outside the bins, an error.
    MAX_OUTSIDE = 0.05

    def __init__(
        self,
        bins: tuple[int, int] = (-3, 3),
        target_std: float = 0.5,
        offset: float = 0.0,
        scale: float = 1.0,
    ):
        low, high = bins
        if int(low) != low or int(high) != high or high <= low:
            raise ValueError(
                "`bins` must be two integers (low, high) with low < high; "
                f"received bins={bins!r}."
            )
        if not target_std > 0:
            raise ValueError(
                f"`target_std` must be positive; received {target_std!r}."
            )
        if not (np.isfinite(offset) and np.isfinite(scale) and scale > 0):
            raise ValueError(
                "`offset` must be finite and `scale` finite and positive; "
                f"received offset={offset!r}, scale={scale!r}."
            )
        self.bins = (int(low), int(high))
        self.target_std = float(target_std)
        self.offset = float(offset)
        self.scale = float(scale)

    @classmethod
    def from_targets(
        cls,
        labels: ArrayLike,
        is_labeled: ArrayLike | None = None,
        bins: tuple[int, int] = (-3, 3),
        **kwargs,
    ) -> Regression:
        """The task whose bins span the labeled targets: their minimum
        maps to bin `low` and their maximum to bin `high` (`offset` and
        `scale` from the data; constant targets get `scale = 1`)."""
        rows = np.asarray(labeled_rows(np.asarray(labels), is_labeled))
        rows = rows.astype("float64").reshape(-1)
        rows = rows[np.isfinite(rows)]
        if not len(rows):
            raise ValueError(
                "Regression.from_targets needs at least one finite labeled "
                "target."
            )
        low, high = bins
        spread = float(rows.max() - rows.min())
        scale = spread / (high - low) if spread > 0 else 1.0
        offset = float(rows.min()) - low * scale
        return cls(bins=bins, offset=offset, scale=scale, **kwargs)

    @property
    def num_bins(self):
        return self.bins[1] - self.bins[0] + 1

    @property
    def output_dim(self):
        return 1

    def activation(self, logits):
        return self.offset + self.scale * logits

    def standardize(self, values):
        """Targets in bin units: `(values - offset) / scale`."""
        return (values - self.offset) / self.scale

    def _values(self, labels):
        labels = ops.cast(labels, "float32")
        return ops.reshape(labels, (ops.shape(labels)[0],))

    def supervised_loss(self, labels, logits):
        values = self.standardize(self._values(labels))
        extra = len(logits.shape) - 2
        values = ops.reshape(values, (-1,) + (1,) * extra)
        return ops.abs(ops.cast(logits[..., 0], "float32") - values)

    def _centres(self):
        return ops.cast(ops.arange(self.bins[0], self.bins[1] + 1), "float32")

    def label_distribution(self, labels):
        values = ops.clip(self.standardize(self._values(labels)), *self.bins)
        index = ops.cast(ops.round(values), "int32") - self.bins[0]
        return ops.one_hot(index, self.num_bins, dtype="float32")

    def soft_targets(self, predictions):
        values = self.standardize(ops.cast(predictions, "float32"))
        values = ops.clip(ops.reshape(values, (-1, 1)), *self.bins)
        logits = -ops.square(self._centres()[None, :] - values) / (
            2.0 * self.target_std**2
        )
        return ops.softmax(logits, axis=-1)

    def pseudo_labels(self, predictions):
        """The predicted value itself, with confidence 1 (a regression head
        gives no uncertainty, so no threshold applies)."""
        values = self._values(predictions)
        return values, ops.ones_like(values)

    def metric_labels(self, labels):
        return ops.reshape(ops.cast(labels, "float32"), (-1, 1))

    def default_prior(self):
        return np.zeros((1,), "float32")

    def _label_prior(self, labels):
        return np.array([labels.astype("float64").mean()])

    def make_metric(self):
        return keras.metrics.MeanAbsoluteError(name="mae")

    def validate_labels(self, labels, is_labeled=None):
        labels = super().validate_labels(labels, is_labeled)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise ValueError(
                "Regression labels must have shape (samples,); received "
                f"shape {labels.shape}."
            )
        rows = labeled_rows(labels, is_labeled).astype("float64")
        if not np.all(np.isfinite(rows)):
            raise ValueError("Regression labels contain NaN or inf.")
        self._check_range(rows)
        return labels

    def _check_range(self, rows):
        if not len(rows):
            return
        low, high = self.bins
        lowest = self.offset + self.scale * (low - 0.5)
        highest = self.offset + self.scale * (high + 0.5)
        outside = (rows < lowest) | (rows > highest)
        if not outside.any():
            return
        span = (
            f"{int(outside.sum())} of {len(rows)} labeled regression "
            f"targets (from {rows.min():.4g} to {rows.max():.4g}) lie "
            f"outside the bins' range [{lowest:.4g}, {highest:.4g}]"
        )
        if outside.mean() > self.MAX_OUTSIDE:
            raise ValueError(
                f"{span}: the bins do not describe these targets. Use "
                "Regression.from_targets(labels) (robult train: leave out "
                "--bins), or give bins, offset and scale that cover them."
            )
        warnings.warn(f"{span}; they join the end bins.", stacklevel=3)

    def get_config(self):
        return {
            "bins": list(self.bins),
            "target_std": self.target_std,
            "offset": self.offset,
            "scale": self.scale,
        }
