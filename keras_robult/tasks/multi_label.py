from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_robult.tasks.task import EPSILON, Task, labeled_rows


@keras.saving.register_keras_serializable(package="keras_robult")
class MultiLabel(Task):
    """Multi-label classification over `num_labels` binary labels
    (e.g. MM-IMDb genres).

    Labels are 0/1 vectors of shape `(batch, num_labels)`. The supervised
    loss is the binary cross-entropy averaged over labels; branch outputs are
    sigmoid probabilities and late fusion averages them. Two labeled samples
    are a known positive pair when their label vectors are identical; the
    soft same-class probability of a pair is
    `prod_g (p_jg p_kg + (1 - p_jg)(1 - p_kg))`, computed in log space.

    Args:
        num_labels: int, number of binary labels.

    Example:

    ```python
    task = keras_robult.tasks.MultiLabel(num_labels=23)
    ```
    """

    name = "multilabel"

    def __init__(self, num_labels: int):
        if int(num_labels) != num_labels or num_labels < 1:
            raise ValueError(
                "`num_labels` must be a positive integer; received "
                f"num_labels={num_labels!r}."
            )
        self.num_labels = int(num_labels)

    @property
    def output_dim(self):
        return self.num_labels

    @property
    def label_shape(self):
        return (self.num_labels,)

    def activation(self, logits):
        return ops.sigmoid(logits)

    def supervised_loss(self, labels, logits):
        targets = ops.cast(labels, "float32")
        extra = len(logits.shape) - 2
        targets = ops.reshape(
            targets, (-1,) + (1,) * extra + (self.num_labels,)
        )
        logits = ops.cast(logits, "float32")
        # Numerically stable binary cross-entropy on logits.
        per_label = (
            ops.maximum(logits, 0.0)
            - logits * targets
            + ops.log1p(ops.exp(-ops.abs(logits)))
        )
        return ops.mean(per_label, axis=-1)

    def label_distribution(self, labels):
        return ops.cast(labels, "float32")

    def soft_targets(self, predictions):
        return ops.cast(predictions, "float32")

    def pseudo_labels(self, predictions):
        """Each label thresholded at 0.5; the confidence of a sample is that
        of its least certain label, `min_g max(p_g, 1 - p_g)`."""
        predictions = ops.cast(predictions, "float32")
        labels = ops.cast(predictions > 0.5, "float32")
        certainty = ops.maximum(predictions, 1.0 - predictions)
        return labels, ops.min(certainty, axis=-1)

    def pair_probability(self, p, q):
        p = p[:, None, :]
        q = q[None, :, :]
        agree = p * q + (1.0 - p) * (1.0 - q)
        return ops.exp(ops.sum(ops.log(ops.maximum(agree, EPSILON)), -1))

    def default_prior(self):
        return np.full((self.num_labels,), 0.5, "float32")

    def _label_prior(self, labels):
        return labels.astype("float64").mean(axis=0)

    def make_metric(self):
        # The paper's MM-IMDb metric; early stopping watches it.
        return keras.metrics.F1Score(
            average="macro", threshold=0.5, name="f1_macro"
        )

    def validate_labels(self, labels, is_labeled=None):
        labels = super().validate_labels(labels, is_labeled)
        if labels.ndim != 2 or labels.shape[1] != self.num_labels:
            raise ValueError(
                "MultiLabel labels must have shape (samples, "
                f"{self.num_labels}); received shape {labels.shape}."
            )
        rows = labeled_rows(labels, is_labeled)
        bad = (rows != 0) & (rows != 1)
        if np.any(bad):
            found = rows[bad][0].item()
            raise ValueError(
                f"MultiLabel labels must be 0 or 1; found {found!r}."
            )
        return labels

    def get_config(self):
        return {"num_labels": self.num_labels}
