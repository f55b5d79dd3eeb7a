import keras


@keras.saving.register_keras_serializable(package="keras_robult")
class LatentProjection(keras.layers.Layer):
    """Projects an encoder's output onto the shared latent width `d`.

    A linear Dense layer when the input width differs from `latent_dim`, the
    identity (no weights) when it already matches. `Robult` puts one after
    each user encoder, so encoders of any output width can be plugged in.

    Args:
        latent_dim: int, output width `d`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: float tensor `(batch, features)`.

    Returns:
        `(batch, latent_dim)`.

    Example:

    ```python
    projection = keras_robult.layers.LatentProjection(128)
    h = projection(np.zeros((4, 384), "float32"))  # (4, 128)
    ```
    """

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.dense = None

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "A modality encoder must output one vector per sample, shape "
                f"(batch, features); got an output of shape {input_shape}. "
                "Pool or flatten inside the encoder."
            )
        if input_shape[-1] != self.latent_dim:
            self.dense = keras.layers.Dense(
                self.latent_dim, dtype=self.dtype_policy, name="dense"
            )
            self.dense.build(input_shape)
        self.built = True

    def call(self, inputs):
        if self.dense is None:
            return inputs
        return self.dense(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.latent_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({"latent_dim": self.latent_dim})
        return config
