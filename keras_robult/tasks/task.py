"""Base class of the task objects."""

import abc

import numpy as np
from keras import ops

EPSILON = 1e-7


class Task(abc.ABC):
    """Everything task-specific that `Robult` needs, behind one interface.

    A task turns the task head's raw outputs (logits) into the task output
    space, gives the supervised loss, and defines the "same class" relation
    used by the soft positive-unlabeled (PU) contrastive loss: a labeled
    sample is mapped to a 0/1 class distribution (`label_distribution`), an
    unlabeled one to a soft distribution derived from a prediction
    (`soft_targets`), and two distributions give the probability that the two
    samples share a class (`pair_probability`). For two labeled samples that
    probability is exactly 1 or 0.

    Subclasses: `Classification`, `Regression`, `MultiLabel`.
    """

    #: Name used in results files and on the command line.
    name = "task"

    @property
    @abc.abstractmethod
    def output_dim(self):
        """Width of the task head's output."""

    @abc.abstractmethod
    def activation(self, logits):
        """Maps raw head outputs to the task output space."""

    def log_scores(self, logits):
        """Raw head outputs on the scale where experts multiply: the
        product-of-experts late fusion averages them over the present
        branches and applies `activation` (log-probabilities for
        classification, log-odds for multi-label, which these logits
        already are, and the values themselves for regression, whose
        product of equal-variance Gaussian experts is their mean)."""
        return logits

    @abc.abstractmethod
    def supervised_loss(self, labels, logits):
        """Per-sample supervised loss.

        Args:
            labels: the `label` target, shape `(batch,) + label_shape`.
            logits: raw head outputs, shape `(batch, ..., output_dim)`; any
                axes between the batch axis and the last one are branches.

        Returns:
            A float tensor of shape `logits.shape[:-1]`.
        """

    @abc.abstractmethod
    def label_distribution(self, labels):
        """0/1 class distribution of labeled samples, `(batch, classes)`."""

    @abc.abstractmethod
    def soft_targets(self, predictions):
        """Soft class distribution from predictions in output space."""

    @abc.abstractmethod
    def pseudo_labels(self, predictions):
        """Hard pseudo-labels from predictions in output space, for
        self-training on unlabeled samples.

        Returns:
            `(labels, confidence)`: labels in the layout of the `label`
            target (what `supervised_loss` takes), and a `(batch,)`
            confidence in `[0, 1]` compared with a threshold.
        """

    def default_prior(self):
        """Fallback output for a sample with no modality present when the
        model never saw a label: uniform class probabilities (0.5 per label
        for multi-label, 0 for regression). A NumPy `(output_dim,)` array.
        """
        return np.full((self.output_dim,), 1.0 / self.output_dim, "float32")

    def label_prior(self, labels, is_labeled=None):
        """The training-label prior in the task output space, `(output_dim,)`
        (NumPy): what a model that sees no modality should predict. Computed
        over the labeled rows; `default_prior()` when there is none.

        Classification: class frequencies; multi-label: per-label positive
        rate; regression: the mean target.
        """
        labels = self.validate_labels(labels, is_labeled)
        rows = labeled_rows(labels, is_labeled)
        if len(rows) == 0:
            return self.default_prior()
        return self._label_prior(rows).astype("float32")

    @abc.abstractmethod
    def _label_prior(self, labels):
        """`label_prior` on a non-empty NumPy array of labeled rows."""

    def pair_probability(self, p, q):
        """Probability that sample j of `p` and sample k of `q` share a
        class, shape `(batch_p, batch_q)`. Default: inner product of the
        class distributions."""
        return ops.matmul(p, ops.transpose(q))

    def placeholder_labels(self, batch_size):
        """Labels to use when a batch carries no target at all."""
        return ops.zeros((batch_size,) + self.label_shape, "float32")

    def metric_labels(self, labels):
        """Labels in the layout the task metric expects."""
        return labels

    @property
    def label_shape(self):
        """Shape of one sample's label (without the batch axis)."""
        return ()

    @abc.abstractmethod
    def make_metric(self):
        """A fresh Keras metric reported on the labeled samples."""

    def validate_labels(self, labels, is_labeled=None):
        """Checks NumPy labels eagerly; raises `ValueError` naming the
        problem. Only labeled samples are checked for range."""
        labels = np.asarray(labels)
        if labels.size and not np.issubdtype(labels.dtype, np.number):
            if labels.dtype.kind in "USO":
                raise ValueError(
                    f"Labels must be numeric; received dtype {labels.dtype} "
                    "(text). Map class names to indices first, e.g. "
                    "`names, labels = np.unique(text, return_inverse=True)`, "
                    "and keep the names in the task: "
                    "`Classification(len(names), class_names=list(names))`."
                )
            if labels.dtype != bool:
                raise ValueError(
                    f"Labels must be numeric; received dtype {labels.dtype}."
                )
        return labels

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return (
            type(self) is type(other)
            and self.get_config() == other.get_config()
        )

    def __hash__(self):
        return hash((type(self).__name__, repr(self.get_config())))


def labeled_rows(labels, is_labeled):
    """Rows of `labels` whose `is_labeled` flag is set (all when None)."""
    labels = np.asarray(labels)
    if is_labeled is None:
        return labels
    is_labeled = np.asarray(is_labeled).reshape(-1).astype(bool)
    return labels[is_labeled]
