import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_robult")
class ModalityMLP(keras.layers.Layer):
    """One MLP per modality, evaluated for all modalities in one einsum.

    Input `(batch, M, features)`; modality `m` goes through its own weights.
    Used for the unique heads `g^m` and the reconstruction heads `r^m`: the
    `M` small MLPs become a few batched matrix products, which XLA compiles
    into one kernel per layer instead of `M`.

    Args:
        num_modalities: int, `M`.
        units: int, output width.
        hidden_units: tuple of ints, hidden widths (shared shape, separate
            weights per modality).
        activation: activation of the hidden layers.
        dropout: float, dropout after each hidden layer.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: float tensor `(batch, M, features)`.
        training: bool, enables dropout.

    Returns:
        `(batch, M, units)`, one MLP per modality.

    Example:

    ```python
    heads = keras_robult.layers.ModalityMLP(3, units=64, hidden_units=(128,))
    u = heads(np.zeros((8, 3, 128), "float32"))  # (8, 3, 64)
    ```
    """

    def __init__(
        self,
        num_modalities,
        units,
        hidden_units=(),
        activation="relu",
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_modalities = int(num_modalities)
        self.units = int(units)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = keras.activations.get(activation)
        self.dropout = float(dropout)
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] != self.num_modalities:
            raise ValueError(
                "ModalityMLP expects inputs of shape (batch, "
                f"{self.num_modalities}, features); received {input_shape}."
            )
        widths = (input_shape[-1],) + self.hidden_units + (self.units,)
        self.kernels, self.biases = [], []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            self.kernels.append(
                self.add_weight(
                    shape=(self.num_modalities, fan_in, fan_out),
                    initializer="glorot_uniform",
                    name=f"kernel_{i}",
                )
            )
            self.biases.append(
                self.add_weight(
                    shape=(self.num_modalities, fan_out),
                    initializer="zeros",
                    name=f"bias_{i}",
                )
            )
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        last = len(self.kernels) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            x = ops.einsum("bmi,mio->bmo", x, kernel) + bias
            if i < last:
                x = self.activation(x)
                if self.dropout > 0:
                    x = self.dropout_layer(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_modalities": self.num_modalities,
                "units": self.units,
                "hidden_units": list(self.hidden_units),
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
            }
        )
        return config
