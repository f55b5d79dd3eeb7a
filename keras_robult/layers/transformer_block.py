import keras


@keras.saving.register_keras_serializable(package="keras_robult")
class TransformerBlock(keras.layers.Layer):
    """A pre-LayerNorm transformer encoder block (as in ViT / MAE):
    `x + MHA(LN(x))`, then `x + MLP(LN(x))` with a GELU MLP.

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

    def call(self, tokens, attention_mask=None, training=None):
        x = self.attention_norm(tokens)
        tokens = tokens + self.attention(
            x, x, attention_mask=attention_mask, training=training
        )
        x = self.mlp_output(self.mlp_hidden(self.mlp_norm(tokens)))
        return tokens + self.mlp_dropout(x, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

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
