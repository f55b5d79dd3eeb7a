import keras


@keras.saving.register_keras_serializable(package="keras_robult")
class MLPEncoder(keras.layers.Layer):
    """Multi-layer perceptron for vector features.

    `hidden_units` Dense layers with `activation` (each followed by layer
    normalisation when `normalize=True`, and dropout), then a linear Dense
    layer of width `units`. Works on any rank: it acts on the last axis.

    Args:
        units: int, output width.
        hidden_units: tuple of ints, widths of the hidden layers.
        activation: activation of the hidden layers.
        dropout: float, dropout rate after each hidden layer.
        normalize: bool, layer normalisation after each hidden Dense layer.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(..., features)`.
        training: bool, enables dropout.

    Returns:
        `(..., units)`.

    Example:

    ```python
    encoder = keras_robult.encoders.MLPEncoder(128, hidden_units=(256,))
    h = encoder(np.zeros((4, 76), "float32"))  # (4, 128)
    ```
    """

    def __init__(
        self,
        units,
        hidden_units=(256,),
        activation="relu",
        dropout=0.0,
        normalize=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.dropout = float(dropout)
        self.normalize = bool(normalize)
        # Flat list: Dense, [LayerNormalization], [Dropout] per hidden layer.
        self.hidden_layers = []
        for i, width in enumerate(self.hidden_units):
            block = [
                keras.layers.Dense(
                    width,
                    activation=activation,
                    dtype=self.dtype_policy,
                    name=f"hidden_{i}",
                )
            ]
            if self.normalize:
                block.append(
                    keras.layers.LayerNormalization(
                        dtype=self.dtype_policy, name=f"norm_{i}"
                    )
                )
            if self.dropout > 0:
                block.append(
                    keras.layers.Dropout(
                        self.dropout, dtype=self.dtype_policy, name=f"drop_{i}"
                    )
                )
            self.hidden_layers.extend(block)
        self.output_layer = keras.layers.Dense(
            self.units, dtype=self.dtype_policy, name="output"
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.output_layer.build(shape)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.hidden_layers:
            x = layer(x, training=training)
        return self.output_layer(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "hidden_units": list(self.hidden_units),
                "activation": keras.activations.serialize(
                    keras.activations.get(self.activation)
                ),
                "dropout": self.dropout,
                "normalize": self.normalize,
            }
        )
        return config
