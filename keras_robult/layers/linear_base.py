import keras
import numpy as np
from keras import ops

from keras_robult.utils.logistic import logistic_regression

#: The ridge penalties `LinearBase.adapt` chooses from by generalised
#: cross-validation (on standardised features).
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 4, 15))


@keras.saving.register_keras_serializable(package="keras_robult")
class LinearBase(keras.layers.Layer):
    """A linear model per presence pattern, fitted outside training.

    For each of the `2**M` presence patterns (bit `m` set when modality `m`
    is present), a linear map from the flattened inputs of the pattern's
    modalities to the target (`loss="squared"`) or to the class logits
    (`loss="logistic"`). `adapt` fits every map on labeled samples that
    hold all of the pattern's modalities, on the standardised features
    (the standardisation folded into the kernel):

    - `"squared"`: scikit-learn's `RidgeCV`, its penalty chosen by
      generalised cross-validation among `RIDGE_ALPHAS`. A pattern with
      fewer than `min_samples` such samples keeps a zero kernel and the
      mean target as its bias.
    - `"logistic"`: a multinomial logistic regression, its penalty chosen
      by stratified cross-validation on the log loss
      (`keras_robult.utils.logistic.logistic_regression`, the `linear`
      reference's model). A pattern where some class has fewer than 2
      such samples keeps a zero kernel and the log of the labeled class
      frequencies (add-one smoothed) as its bias: the label prior.

    The weights are not trainable (they travel with a saved model); before
    `adapt` every pattern predicts 0.

    `Robult(linear_base=True)` adds it to every branch's logits (the
    network learns the residual): with a few dozen labels a deep branch
    is rarely better than a linear model of its inputs where the target
    is (nearly) linear in them, and then the base keeps it from being
    worse.

    Args:
        num_modalities: int, `M`.
        output_dim: int, the width of the target (the number of classes
            for `"logistic"`).
        min_samples: int, the fewest labeled samples a pattern's model is
            fitted on. Defaults to `3`.
        loss: `"squared"` (ridge regression, default) or `"logistic"`
            (classification; `output_dim` at least 2).
        **kwargs: base layer arguments.

    Call arguments:
        inputs: list of the `M` modality tensors `(batch, ...)`, in the
            model's modality order.
        mask: `(batch, M)` presence mask; absent modalities are read as
            zeros (their values, even NaN, never reach the output).

    Returns:
        `(batch, 2**M, output_dim)`: each sample's prediction under every
        pattern (row `p` uses only the modalities of pattern `p`). Pick a
        pattern per sample with `select`.

    Example:

    ```python
    import numpy as np
    import keras_robult

    base = keras_robult.layers.LinearBase(num_modalities=2, output_dim=1)
    a, b = np.random.normal(size=(2, 50, 3))
    y = a[:, :1] + 2 * b[:, 1:2]
    base.adapt([a, b], y, np.ones((50, 2)))
    values = base([a, b], np.ones((50, 2)))
    both = base.select(values, np.ones((50, 2)))  # (50, 1), close to y
    ```
    """

    def __init__(
        self,
        num_modalities,
        output_dim,
        min_samples=3,
        loss="squared",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_modalities = int(num_modalities)
        self.output_dim = int(output_dim)
        self.min_samples = int(min_samples)
        self.loss = loss
        if loss not in ("squared", "logistic"):
            raise ValueError(
                f"`loss` must be 'squared' or 'logistic'; received {loss!r}."
            )
        if loss == "logistic" and self.output_dim < 2:
            raise ValueError(
                "A logistic base needs `output_dim` (the number of "
                f"classes) of at least 2; received {output_dim!r}."
            )
        if self.num_modalities < 1 or self.output_dim < 1:
            raise ValueError(
                "`num_modalities` and `output_dim` must be positive; "
                f"received {num_modalities!r} and {output_dim!r}."
            )
        if self.min_samples < 2:
            raise ValueError(
                f"`min_samples` must be at least 2; received {min_samples!r}."
            )

    @property
    def num_patterns(self):
        return 2**self.num_modalities

    def build(self, inputs_shape):
        shapes = list(inputs_shape)
        if len(shapes) != self.num_modalities:
            raise ValueError(
                f"LinearBase takes {self.num_modalities} modalities; "
                f"received {len(shapes)} inputs."
            )
        self.widths = [int(np.prod(shape[1:])) for shape in shapes]
        self.kernel = self.add_weight(
            shape=(self.num_patterns, sum(self.widths), self.output_dim),
            initializer="zeros",
            trainable=False,
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(self.num_patterns, self.output_dim),
            initializer="zeros",
            trainable=False,
            name="bias",
        )
        self.built = True

    def call(self, inputs, mask):
        present = ops.cast(mask, "float32") > 0.5
        parts = []
        for index, values in enumerate(inputs):
            values = ops.cast(values, "float32")
            values = ops.reshape(values, (ops.shape(values)[0], -1))
            keep = ops.expand_dims(present[:, index], -1)
            parts.append(ops.where(keep, values, ops.zeros_like(values)))
        features = ops.concatenate(parts, axis=-1)
        values = ops.einsum("bd,pdo->bpo", features, self.kernel)
        return values + self.bias

    def select(self, values, mask):
        """`(batch, output_dim)`: each sample's row of `values` (the
        layer's output) for the pattern of `mask` `(batch, M)`."""
        bits = ops.cast(ops.cast(mask, "float32") > 0.5, "int32")
        weights = 2 ** ops.arange(self.num_modalities, dtype="int32")
        pattern = ops.sum(bits * weights, axis=-1)
        onehot = ops.one_hot(pattern, self.num_patterns, dtype=values.dtype)
        return ops.sum(values * ops.expand_dims(onehot, -1), axis=1)

    def adapt(self, inputs, targets, mask):
        """Fits every pattern's ridge regression (NumPy, outside any step).

        Args:
            inputs: list of the `M` modality arrays `(samples, ...)`.
            targets: `(samples,)` or `(samples, output_dim)` finite
                targets of the labeled samples, in the model's units;
                for `"logistic"`, `(samples,)` integer classes in
                `[0, output_dim)`.
            mask: `(samples, M)` presence mask.
        """
        if not self.built:
            self.build([np.shape(values) for values in inputs])
        blocks = [
            np.asarray(values, "float64").reshape(len(values), -1)
            for values in inputs
        ]
        targets = np.asarray(targets, "float64").reshape(len(targets), -1)
        present = np.asarray(mask) > 0.5
        count = len(targets)
        if not count:
            raise ValueError("LinearBase.adapt needs at least one sample.")
        width = 1 if self.loss == "logistic" else self.output_dim
        if targets.shape[1] != width or any(
            len(block) != count for block in blocks
        ):
            raise ValueError(
                f"LinearBase.adapt takes {count} targets of width "
                f"{width} and one row per target in each input; "
                f"received targets {targets.shape} and inputs of "
                f"{[len(block) for block in blocks]} rows."
            )
        if present.shape != (count, self.num_modalities):
            raise ValueError(
                f"The mask must be ({count}, {self.num_modalities}); "
                f"received {present.shape}."
            )
        if not np.all(np.isfinite(targets)):
            raise ValueError("LinearBase.adapt received NaN or inf targets.")
        if self.loss == "logistic":
            targets = targets.reshape(-1)
            if np.any(targets != np.round(targets)) or not np.all(
                (targets >= 0) & (targets < self.output_dim)
            ):
                raise ValueError(
                    "A logistic LinearBase takes integer classes in "
                    f"[0, {self.output_dim}); received values from "
                    f"{targets.min()} to {targets.max()}."
                )
            targets = targets.astype("int64")
            counts = np.bincount(targets, minlength=self.output_dim)
            prior = np.log((counts + 1.0) / (count + self.output_dim))
            bias = np.tile(prior, (self.num_patterns, 1))
        else:
            bias = np.tile(targets.mean(axis=0), (self.num_patterns, 1))
        starts = np.cumsum([0] + [block.shape[1] for block in blocks])
        kernel = np.zeros(tuple(self.kernel.shape))
        for pattern in range(1, self.num_patterns):
            members = [
                m for m in range(self.num_modalities) if pattern >> m & 1
            ]
            rows = present[:, members].all(axis=1)
            if rows.sum() < self.min_samples or (
                self.loss == "logistic"
                and np.bincount(targets[rows], minlength=self.output_dim).min()
                < 2
            ):
                continue
            features = np.concatenate([blocks[m][rows] for m in members], 1)
            if not np.all(np.isfinite(features)):
                raise ValueError(
                    "LinearBase.adapt received NaN or inf in a present "
                    "modality."
                )
            mean, std = features.mean(axis=0), features.std(axis=0)
            std[std == 0] = 1.0
            coef, intercept = self._fit((features - mean) / std, targets[rows])
            coef = coef / std[:, None]
            columns = np.concatenate(
                [np.arange(starts[m], starts[m + 1]) for m in members]
            )
            kernel[pattern, columns] = coef
            bias[pattern] = intercept - mean @ coef
        self.kernel.assign(kernel.astype("float32"))
        self.bias.assign(bias.astype("float32"))

    def _fit(self, features, targets):
        """`(kernel (features, output_dim), intercept (output_dim,))` of
        one pattern's model on standardised `features`."""
        if self.loss == "squared":
            from sklearn.linear_model import RidgeCV

            ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(features, targets)
            coef = np.reshape(ridge.coef_, (self.output_dim, -1)).T
            return coef, np.ravel(ridge.intercept_)
        model = logistic_regression(targets).fit(features, targets)
        coef, intercept = model.coef_.T, np.ravel(model.intercept_)
        if self.output_dim == 2:  # one logit: that of class 1 against 0
            coef = np.concatenate([np.zeros_like(coef), coef], axis=1)
            intercept = np.concatenate([[0.0], intercept])
        return coef, intercept

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        return (inputs_shape[0][0], self.num_patterns, self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_modalities": self.num_modalities,
                "output_dim": self.output_dim,
                "min_samples": self.min_samples,
                "loss": self.loss,
            }
        )
        return config
