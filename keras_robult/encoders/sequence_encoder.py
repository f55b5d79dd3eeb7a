import keras
import numpy as np
from keras import ops


def _sinusoidal_positions(length, depth):
    """Sinusoidal position encodings `(length, depth)` (Vaswani et al.)."""
    positions = ops.cast(ops.arange(length), "float32")[:, None]
    dims = ops.cast(ops.arange(depth), "float32")[None, :]
    rates = ops.exp(-np.log(10000.0) * (2.0 * ops.floor(dims / 2.0)) / depth)
    angles = positions * rates
    even = ops.cast(ops.arange(depth) % 2 == 0, "float32")[None, :]
    return even * ops.sin(angles) + (1.0 - even) * ops.cos(angles)


@keras.saving.register_keras_serializable(package="keras_robult")
class SequenceEncoder(keras.layers.Layer):
    """Transformer encoder for `(time, features)` inputs, pooled to a vector.

    A Dense projection to `hidden_dim` plus sinusoidal positions, then
    `num_layers` pre-norm Transformer blocks (multi-head self-attention and a
    feed-forward layer of width `4 * hidden_dim`), mean pooling over time and
    a linear Dense layer of width `units`. Suitable for the word / audio /
    visual feature sequences of CMU-MOSI and MOSEI. Time steps whose features
    are all zero (padding) are left out of the attention and of the pooling.

    Args:
        units: int, output width.
        hidden_dim: int, width of the Transformer blocks.
        num_layers: int, number of Transformer blocks.
        num_heads: int, attention heads (must divide `hidden_dim`).
        dropout: float, dropout rate in the blocks.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: float tensor `(batch, time, features)`.
        training: bool, enables dropout.

    Returns:
        `(batch, units)`.

    Example:

    ```python
    encoder = keras_robult.encoders.SequenceEncoder(128, hidden_dim=64)
    h = encoder(np.zeros((4, 50, 74), "float32"))  # (4, 128)
    ```
    """

    def __init__(
        self,
        units,
        hidden_dim=128,
        num_layers=1,
        num_heads=4,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be divisible by "
                f"`num_heads` ({num_heads})."
            )
        self.units = int(units)
        self.hidden_dim = int(hidden_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        policy = self.dtype_policy
        self.input_projection = keras.layers.Dense(
            self.hidden_dim, dtype=policy, name="input_projection"
        )
        # Parallel lists, one entry per Transformer block (tracked by Keras).
        self.norms_1, self.attentions, self.norms_2 = [], [], []
        self.ffns_1, self.ffns_2, self.dropouts = [], [], []
        for i in range(self.num_layers):
            self.norms_1.append(
                keras.layers.LayerNormalization(
                    dtype=policy, name=f"block_{i}_norm_1"
                )
            )
            self.attentions.append(
                keras.layers.MultiHeadAttention(
                    self.num_heads,
                    self.hidden_dim // self.num_heads,
                    dropout=self.dropout,
                    dtype=policy,
                    name=f"block_{i}_attention",
                )
            )
            self.norms_2.append(
                keras.layers.LayerNormalization(
                    dtype=policy, name=f"block_{i}_norm_2"
                )
            )
            self.ffns_1.append(
                keras.layers.Dense(
                    4 * self.hidden_dim,
                    activation="gelu",
                    dtype=policy,
                    name=f"block_{i}_ffn_1",
                )
            )
            self.ffns_2.append(
                keras.layers.Dense(
                    self.hidden_dim, dtype=policy, name=f"block_{i}_ffn_2"
                )
            )
            self.dropouts.append(
                keras.layers.Dropout(
                    self.dropout, dtype=policy, name=f"block_{i}_dropout"
                )
            )
        self.final_norm = keras.layers.LayerNormalization(
            dtype=policy, name="final_norm"
        )
        self.output_layer = keras.layers.Dense(
            self.units, dtype=policy, name="output"
        )

    def build(self, input_shape):
        batch, time = input_shape[0], input_shape[1]
        self.input_projection.build(input_shape)
        hidden_shape = (batch, time, self.hidden_dim)
        for i in range(self.num_layers):
            self.norms_1[i].build(hidden_shape)
            self.attentions[i].build(hidden_shape, hidden_shape)
            self.norms_2[i].build(hidden_shape)
            self.ffns_1[i].build(hidden_shape)
            self.ffns_2[i].build((batch, time, 4 * self.hidden_dim))
        self.final_norm.build(hidden_shape)
        self.output_layer.build((batch, self.hidden_dim))
        self.built = True

    def call(self, inputs, training=None):
        valid = ops.cast(ops.any(ops.not_equal(inputs, 0), axis=-1), "float32")
        # A sequence with no valid step keeps all steps (finite pooling).
        valid = ops.where(
            ops.sum(valid, axis=-1, keepdims=True) > 0, valid, 1.0
        )
        x = self.input_projection(inputs)
        time = ops.shape(inputs)[1]
        x = (
            x
            + ops.cast(_sinusoidal_positions(time, self.hidden_dim), x.dtype)[
                None
            ]
        )
        attention_mask = ops.cast(valid[:, None, :] * valid[:, :, None], "bool")
        for i in range(self.num_layers):
            y = self.norms_1[i](x)
            y = self.attentions[i](
                y, y, attention_mask=attention_mask, training=training
            )
            x = x + self.dropouts[i](y, training=training)
            y = self.ffns_2[i](self.ffns_1[i](self.norms_2[i](x)))
            x = x + self.dropouts[i](y, training=training)
        x = self.final_norm(x)
        weights = ops.cast(valid, x.dtype)[..., None]
        pooled = ops.sum(x * weights, axis=1) / ops.sum(weights, axis=1)
        return self.output_layer(pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
            }
        )
        return config
