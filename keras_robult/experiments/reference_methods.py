"""The simple references of every comparison: what a practitioner tries
first, trained on the labeled training samples alone.

- `linear` (`LinearMethod`): per modality subset, a scikit-learn model on
  the standardised concatenation of that subset's modalities: a
  `LogisticRegression` (classification, penalty chosen by stratified
  cross-validation where every class has enough labels), a `RidgeCV`
  (regression, penalty by generalised cross-validation), one logistic
  regression per label (multi-label). It is fitted, when a presence
  pattern is first predicted, on the labeled training samples that hold
  every modality of it: it knows the subset at training time, so it is a
  strong bar rather than a rival architecture.
- `mlp` (`MLPMethod`): one supervised early-fusion MLP
  (`keras_robult.baselines.EarlyFusionMLP`) on the labeled samples,
  missing modalities zero-filled with the mask as input, trained with
  modality dropout so that it predicts from any subset.
"""

import dataclasses

import keras
import numpy as np

from keras_robult.baselines.early_fusion_mlp import EarlyFusionMLP
from keras_robult.experiments.method import Method
from keras_robult.experiments.method_options import MethodOptions
from keras_robult.layers.feature_standardization import (
    FeatureStandardization,
)
from keras_robult.utils.logistic import logistic_regression
from keras_robult.utils.validation import MASK_KEY

#: The penalties the cross-validation of `linear` chooses from (the
#: inverse regularisation C of the logistic regression, the alpha of the
#: ridge).
PENALTIES = np.logspace(-3, 3, 7)


@dataclasses.dataclass(frozen=True)
class MLPOptions(MethodOptions):
    """`MLPMethod`'s options: `MethodOptions` (`modality_dropout` 0.5:
    each of two modalities is then alone a third of the time; `min_steps`
    1000: a few dozen labels are one batch an epoch) and these.

    Args:
        hidden_units: widths of the MLP's hidden layers.
        dropout: dropout after each hidden layer.
    """

    hidden_units: tuple = (256, 256)
    dropout: float = 0.1
    modality_dropout: float = 0.5
    min_steps: int | None = 1000


class MLPMethod(Method):
    """The `mlp` reference: `EarlyFusionMLP` on the labeled samples.

    Args:
        task: as in `Method`.
        input_shapes: as in `Method`.
        statistics: as in `Method`.
        **options: the fields of `MLPOptions`.
    """

    name = "mlp"
    labeled_only = True
    options_type = MLPOptions

    def __init__(self, task, input_shapes, statistics=None, **options):
        super().__init__(task, input_shapes, statistics, **options)
        self.hidden_units = tuple(self.hidden_units)

    def encoder(self, name):
        """The modality's features as they are, standardised with the
        training split's statistics (vectors) and flattened."""
        layers = []
        if name in self.statistics:
            mean, std = self.statistics[name]
            layers.append(
                FeatureStandardization(mean, std, name=f"{name}_standardize")
            )
        layers.append(keras.layers.Flatten())
        return keras.Sequential(layers, name=f"{name}_features")

    def build_model(self):
        return EarlyFusionMLP(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            hidden_units=self.hidden_units,
            dropout=self.dropout,
        )


class LinearMethod:
    """The `linear` reference: a scikit-learn model per presence pattern
    (see the module's docstring). Not a Keras model: it has no epochs,
    is refitted in seconds, and is not saved.

    Args:
        task: a `keras_robult.tasks.Task`.
        input_shapes: dict, modality -> per-sample shape (modality order).
        statistics: unused (each model standardises its own features).
        **unused: the options every method is given (`latent_dim`, ...).
    """

    name = "linear"
    epochs = None
    model = None

    def __init__(self, task, input_shapes, statistics=None, **unused):
        self.task = task
        self.modalities = tuple(input_shapes)
        self.callbacks = []
        self.backup_interval = None

    def fit(self, x, y, epochs=None, batch_size=None, seed=0, **unused):
        labels = np.asarray(y["label"])
        labeled = np.asarray(y["is_labeled"]) > 0.5
        self.seed = seed
        self.features = {
            m: np.asarray(x[m], "float64")[labeled].reshape(labeled.sum(), -1)
            for m in self.modalities
        }
        mask = np.asarray(
            x.get(MASK_KEY, np.ones((len(labels), len(self.modalities))))
        )
        self.present = mask[labeled] > 0.5
        self.labels = labels[labeled]
        self.prior = self.task.label_prior(self.labels)
        self.models = {}
        return self

    def predict(self, x, batch_size=None):
        mask = np.asarray(x[MASK_KEY]) > 0.5
        out = np.tile(self.prior, (len(mask), 1)).astype("float32")
        patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for index, pattern in enumerate(patterns):
            model = self._model(tuple(bool(p) for p in pattern))
            if model is None:
                continue
            rows = inverse == index
            features = _concatenate(x, self.modalities, pattern, rows)
            out[rows] = self._predict(model, features)
        return out

    def save(self, path):
        return None

    def _model(self, pattern):
        """The fitted model of a presence pattern (None for no modality,
        or where no labeled training sample holds the pattern: the
        training-label prior then predicts)."""
        if pattern not in self.models:
            self.models[pattern] = None
            rows = np.all(self.present[:, pattern], axis=1) & any(pattern)
            if rows.any():
                features = np.concatenate(
                    [
                        self.features[m][rows]
                        for m, keep in zip(self.modalities, pattern)
                        if keep
                    ],
                    axis=1,
                )
                self.models[pattern] = self._fit(features, self.labels[rows])
        return self.models[pattern]

    def _fit(self, features, labels):
        from sklearn import linear_model  # the evaluation's own library
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        task = self.task.name
        if task == "regression":
            estimator = linear_model.RidgeCV(alphas=PENALTIES)
            return make_pipeline(StandardScaler(), estimator).fit(
                features, labels.reshape(-1)
            )
        if task == "multilabel":
            return [
                _PerLabel(features, column, self.seed)
                for column in np.asarray(labels, "int64").T
            ]
        labels = np.asarray(labels, "int64").reshape(-1)
        if len(np.unique(labels)) < 2:
            return _Constant(labels[0], self.task.output_dim)
        estimator = logistic_regression(labels, self.seed)
        return make_pipeline(StandardScaler(), estimator).fit(features, labels)

    def _predict(self, model, features):
        task = self.task.name
        if task == "regression":
            return model.predict(features).reshape(-1, 1)
        if task == "multilabel":
            return np.stack([m.predict(features) for m in model], axis=1)
        if isinstance(model, _Constant):
            return model.predict(features)
        probabilities = np.zeros((len(features), self.task.output_dim))
        probabilities[:, model.classes_] = model.predict_proba(features)
        return probabilities


def _concatenate(x, modalities, pattern, rows):
    """The pattern's modalities of `rows`, flattened and concatenated."""
    return np.concatenate(
        [
            np.asarray(x[m], "float64")[rows].reshape(int(rows.sum()), -1)
            for m, keep in zip(modalities, pattern)
            if keep
        ],
        axis=1,
    )


class _Constant:
    """A classifier that saw one class: probability 1 for it."""

    def __init__(self, label, num_classes):
        self.row = np.eye(num_classes)[int(label)]

    def predict(self, features):
        return np.tile(self.row, (len(features), 1))


class _PerLabel:
    """One label of a multi-label task: a logistic regression on the
    standardised features, or its positive rate where the labels hold
    one value only. `predict` gives the positive probability."""

    def __init__(self, features, labels, seed):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.rate = float(np.mean(labels))
        self.model = None
        if 0 < self.rate < 1:
            self.model = make_pipeline(
                StandardScaler(),
                LogisticRegression(max_iter=2000, random_state=seed),
            ).fit(features, labels)

    def predict(self, features):
        if self.model is None:
            return np.full(len(features), self.rate)
        return self.model.predict_proba(features)[:, 1]
