import keras
import numpy as np
from keras import ops

from keras_robult.tasks.task import Task, labeled_rows


@keras.saving.register_keras_serializable(package="keras_robult")
class Regression(Task):
    """Scalar regression (e.g. CMU-MOSI / MOSEI sentiment in [-3, 3]).

    The supervised loss is L1. For the PU loss, targets are discretised into
    integer bins `round(clip(y, low, high))` (7 bins for the default range):
    two labeled samples are a known positive pair when their bins agree. An
    unlabeled sample's soft bin distribution is a Gaussian of standard
    deviation `target_std` around its prediction, evaluated at the bin centres
    and normalised.

    Args:
        bins: tuple `(low, high)` of integers; the bin centres are
            `low, low + 1, ..., high`. Defaults to `(-3, 3)`.
        target_std: float, standard deviation of the Gaussian soft target.
            Defaults to `0.5`.

    Example:

    ```python
    task = keras_robult.tasks.Regression(bins=(-3, 3))
    ```
    """

    name = "regression"

    def __init__(self, bins=(-3, 3), target_std=0.5):
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
        self.bins = (int(low), int(high))
        self.target_std = float(target_std)

    @property
    def num_bins(self):
        return self.bins[1] - self.bins[0] + 1

    @property
    def output_dim(self):
        return 1

    def activation(self, logits):
        return logits

    def _values(self, labels):
        labels = ops.cast(labels, "float32")
        return ops.reshape(labels, (ops.shape(labels)[0],))

    def supervised_loss(self, labels, logits):
        values = self._values(labels)
        extra = len(logits.shape) - 2
        values = ops.reshape(values, (-1,) + (1,) * extra)
        return ops.abs(ops.cast(logits[..., 0], "float32") - values)

    def _centres(self):
        return ops.cast(ops.arange(self.bins[0], self.bins[1] + 1), "float32")

    def label_distribution(self, labels):
        values = ops.clip(self._values(labels), *self.bins)
        index = ops.cast(ops.round(values), "int32") - self.bins[0]
        return ops.one_hot(index, self.num_bins, dtype="float32")

    def soft_targets(self, predictions):
        values = ops.cast(predictions, "float32")
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
        return labels

    def get_config(self):
        return {"bins": list(self.bins), "target_std": self.target_std}
