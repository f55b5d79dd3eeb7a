import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_robult")
class TransformerBlock(keras.layers.Layer):
    """A pre-LayerNorm transformer encoder block (as in ViT / MAE):
    `x + MHA(LN(x))`, then `x + MLP(LN(x))` with a GELU MLP.

    With `query_range=(start, stop)` it gives the outputs at those
    positions only: every token is still a key and a value, but only
    those are queries and go through the MLP (the values of
    `block(tokens)[:, start:stop]`, without computing the others; a last
    block whose other outputs are dropped saves their work).

    Args:
        num_heads: int, attention heads (the width must divide by it).
        mlp_ratio: float, hidden width of the MLP over the token width.
        dropout: float, dropout after attention and in the MLP (training).
        epsilon: float, LayerNorm epsilon.
        **kwargs: base `Layer` arguments.

    Call arguments:
        tokens: `(batch, tokens, width)`.
        attention_mask: optional bool `(batch, tokens, tokens)`: query i
            may attend to key j where True.
        training: bool.
        query_range: optional `(start, stop)` Python ints: the positions
            whose outputs are computed (default: all).

    Returns:
        `(batch, tokens, width)`, or `(batch, stop - start, width)` with
        `query_range`.

    Example:

    ```python
    block = keras_robult.layers.TransformerBlock(num_heads=8)
    block(np.zeros((2, 5, 64)))  # (2, 5, 64)
    ```
    """

    def __init__(
        self, num_heads=8, mlp_ratio=4.0, dropout=0.0, epsilon=1e-6, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.mlp_ratio = float(mlp_ratio)
        self.dropout = float(dropout)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(
                f"TransformerBlock: the token width {width} must be a "
                f"multiple of num_heads={self.num_heads}."
            )
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.epsilon, name="attention_norm"
        )
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads,
            width // self.num_heads,
            dropout=self.dropout,
            name="attention",
        )
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=self.epsilon, name="mlp_norm"
        )
        hidden = int(round(width * self.mlp_ratio))
        self.mlp_hidden = keras.layers.Dense(
            hidden, activation="gelu", name="mlp_hidden"
        )
        self.mlp_output = keras.layers.Dense(width, name="mlp_output")
        self.mlp_dropout = keras.layers.Dropout(self.dropout)
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_hidden.build(input_shape)
        self.mlp_output.build(tuple(input_shape[:-1]) + (hidden,))
        self.built = True

    def call(
        self, tokens, attention_mask=None, training=None, query_range=None
    ):
        x = self.attention_norm(tokens)
        queries = x
        if query_range is not None:
            positions = slice(*query_range)
            tokens, queries = tokens[:, positions], x[:, positions]
            if attention_mask is not None:
                attention_mask = attention_mask[:, positions]
        shape = ops.shape(tokens)
        if self.dropout > 0:  # dropout on the attention weights
            attended = self.attention(
                queries, x, attention_mask=attention_mask, training=training
            )
        else:
            attended = self.self_attention(x, attention_mask, queries)
        tokens = tokens + attended
        # The MLP on `(batch * tokens, width)`: one plain matrix product
        # each way, forward and backward (a 3-D operand costs XLA on CPU
        # about an eighth more per block).
        x = ops.reshape(self.mlp_norm(tokens), (-1, shape[-1]))
        x = ops.reshape(self.mlp_output(self.mlp_hidden(x)), shape)
        return tokens + self.mlp_dropout(x, training=training)

    def self_attention(self, x, attention_mask=None, queries=None):
        """`self.attention(queries, x, attention_mask)` (queries default
        to `x`) without attention dropout, computed from its weights with
        each projection a plain matrix product on `(batch * tokens,
        width)`: the same values, a fifth less time per block on CPU than
        the layer's 3-D einsums."""
        queries = x if queries is None else queries
        width = ops.shape(x)[-1]
        heads = self.num_heads
        size = width // heads

        def project(dense, inputs):
            shape = ops.shape(inputs)
            kernel = ops.reshape(dense.kernel, (width, width))
            flat = ops.reshape(inputs, (-1, width))
            y = ops.matmul(flat, kernel) + ops.reshape(dense.bias, (width,))
            return ops.reshape(y, (shape[0], shape[1], heads, size))

        mask = None
        if attention_mask is not None:
            mask = ops.cast(attention_mask, "bool")[:, None]
        attention = self.attention
        output = ops.dot_product_attention(
            project(attention.query_dense, queries),
            project(attention.key_dense, x),
            project(attention.value_dense, x),
            mask=mask,
            scale=1.0 / math.sqrt(size),
        )
        dense = attention.output_dense
        output = ops.matmul(
            ops.reshape(output, (-1, width)),
            ops.reshape(dense.kernel, (width, width)),
        ) + ops.reshape(dense.bias, (width,))
        return ops.reshape(output, ops.shape(queries))

    def compute_output_spec(
        self, tokens, attention_mask=None, training=None, query_range=None
    ):
        shape = tuple(tokens.shape)
        if query_range is not None:
            start, stop = query_range
            count = stop - start
            if shape[1] is not None:
                count = len(range(shape[1])[start:stop])
            shape = (shape[0], count) + shape[2:]
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "dropout": self.dropout,
                "epsilon": self.epsilon,
            }
        )
        return config
