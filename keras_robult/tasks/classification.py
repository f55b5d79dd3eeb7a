from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from keras_robult.tasks.task import Task, labeled_rows


@keras.saving.register_keras_serializable(package="keras_robult")
class Classification(Task):
    """Single-label classification over `num_classes` classes.

    Labels are integer class indices of shape `(batch,)` (or `(batch, 1)`).
    The supervised loss is the cross-entropy on the logits; branch outputs
    are softmax probabilities and late fusion averages them. Two labeled
    samples are a known positive pair when their classes are equal; the soft
    same-class probability of a pair is the inner product of their class
    distributions.

    Args:
        num_classes: int, number of classes (at least 2).
        class_names: optional list of `num_classes` names, class `i` being
            `class_names[i]` (kept in the model's config).

    Example:

    ```python
    task = keras_robult.tasks.Classification(num_classes=10)
    ```
    """

    name = "classification"

    def __init__(
        self, num_classes: int, class_names: Sequence[str] | None = None
    ):
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(
                "`num_classes` must be an integer >= 2; received "
                f"num_classes={num_classes!r}."
            )
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"`class_names` must name the {num_classes} classes; "
                f"received {len(class_names)} names."
            )
        self.num_classes = int(num_classes)
        self.class_names = (
            None if class_names is None else [str(n) for n in class_names]
        )

    @property
    def output_dim(self):
        return self.num_classes

    def activation(self, logits):
        return ops.softmax(logits, axis=-1)

    def log_scores(self, logits):
        return ops.log_softmax(logits, axis=-1)

    def _one_hot(self, labels):
        labels = ops.reshape(labels, (ops.shape(labels)[0],))
        labels = ops.cast(labels, "int32")
        return ops.one_hot(labels, self.num_classes, dtype="float32")

    def supervised_loss(self, labels, logits):
        targets = self._one_hot(labels)
        extra = len(logits.shape) - 2
        targets = ops.reshape(
            targets, (-1,) + (1,) * extra + (self.num_classes,)
        )
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        return -ops.sum(targets * log_probs, axis=-1)

    def label_distribution(self, labels):
        return self._one_hot(labels)

    def soft_targets(self, predictions):
        return ops.cast(predictions, "float32")

    def pseudo_labels(self, predictions):
        """The most probable class; confidence is its probability."""
        predictions = ops.cast(predictions, "float32")
        return ops.argmax(predictions, axis=-1), ops.max(predictions, -1)

    def _label_prior(self, labels):
        counts = np.bincount(
            labels.astype("int64").reshape(-1), minlength=self.num_classes
        )
        return counts / counts.sum()

    def make_metric(self):
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def validate_labels(self, labels, is_labeled=None):
        labels = super().validate_labels(labels, is_labeled)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise ValueError(
                "Classification labels must be integer class indices of "
                f"shape (samples,); received shape {labels.shape}."
            )
        rows = labeled_rows(labels, is_labeled)
        if rows.size == 0:
            return labels
        if not np.all(np.isfinite(rows.astype("float64"))):
            raise ValueError("Classification labels contain NaN or inf.")
        if np.any(rows != np.round(rows)):
            bad = rows[rows != np.round(rows)][0]
            raise ValueError(
                f"Classification labels must be integers; found {bad.item()!r}."
            )
        out = (rows < 0) | (rows >= self.num_classes)
        if np.any(out):
            raise ValueError(
                f"Label {rows[out][0].item()!r} is outside the range of "
                f"Classification(num_classes={self.num_classes}): labels "
                f"must lie in [0, {self.num_classes - 1}]."
            )
        return labels

    def get_config(self):
        config = {"num_classes": self.num_classes}
        if self.class_names is not None:
            config["class_names"] = list(self.class_names)
        return config
