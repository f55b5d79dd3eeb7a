import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_robult")
class FeatureStandardization(keras.layers.Layer):
    """`(x - mean) / std` per feature, with fixed statistics.

    The statistics (computed on the training split, e.g. with
    `keras_robult.data.fit_standardization`) are stored as non-trainable
    weights created in `build`, so the layer is safe to build inside a
    traced or compiled step on every backend and travels with a saved
    model: a served model takes raw features.

    Args:
        mean: array-like `(features,)`.
        std: array-like `(features,)`, positive.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: float tensor `(..., features)`.

    Returns:
        the standardised tensor, of the input's shape.

    Example:

    ```python
    layer = keras_robult.layers.FeatureStandardization([0.0, 1.0], [1.0, 2.0])
    layer(np.array([[1.0, 3.0]]))  # [[1.0, 1.0]]
    ```
    """

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in np.ravel(mean)]
        self.std = [float(v) for v in np.ravel(std)]
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"`mean` has {len(self.mean)} values but `std` has "
                f"{len(self.std)}."
            )
        if min(self.std, default=1.0) <= 0:
            raise ValueError("Every `std` value must be positive.")

    def build(self, input_shape):
        if input_shape[-1] != len(self.mean):
            raise ValueError(
                f"FeatureStandardization holds statistics of "
                f"{len(self.mean)} features; the input has {input_shape[-1]}."
            )
        self.offset = self.add_weight(
            shape=(len(self.mean),),
            initializer=keras.initializers.Constant(self.mean),
            trainable=False,
            name="mean",
        )
        self.scale = self.add_weight(
            shape=(len(self.std),),
            initializer=keras.initializers.Constant(
                [1.0 / s for s in self.std]
            ),
            trainable=False,
            name="inverse_std",
        )
        self.built = True

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        return (inputs - self.offset) * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean, "std": self.std})
        return config
