import warnings

import keras
from keras import ops

from keras_robult.utils.tensor import EXCLUDED_LOGIT, safe_divide


@keras.saving.register_keras_serializable(package="keras_robult")
class FusionEncoder(keras.layers.Layer):
    """Mask-aware fusion encoder `f^0`: modality latents to one fused latent.

    Each modality latent `H^m` is projected by its own weights into a
    modality token (the per-modality bias doubles as a modality embedding).
    With `pooling="attention"`, additive attention pools the tokens of the
    *present* modalities (absent ones get exactly zero weight); with
    `pooling="concat"`, the tokens of absent modalities are zeroed and all
    tokens are concatenated with the mask (an early fusion that keeps every
    modality's token apart). An MLP maps the result to `H^0`.
    The output shape never depends on which modalities are present.

    Any layer with the same call signature can replace it through
    `Robult(fusion=...)`.

    Args:
        latent_dim: int, width `d` of the tokens and of the output.
        hidden_units: tuple of ints, hidden widths of the output MLP.
        attention_units: int, width of the attention scorer.
        dropout: float, dropout on the tokens and in the MLP.
        pooling: `"attention"` or `"concat"`.
        **kwargs: base layer arguments.

    Call arguments:
        latents: float tensor `(batch, M, d_in)`, stacked modality latents.
        modality_mask: float tensor `(batch, M)`, 1 = present.
        training: bool, enables dropout.

    Returns:
        the fused latent `H^0`, `(batch, latent_dim)`.

    Example:

    ```python
    fusion = keras_robult.layers.FusionEncoder(128)
    h0 = fusion(np.zeros((8, 3, 128)), np.ones((8, 3)))  # (8, 128)
    ```
    """

    def __init__(
        self,
        latent_dim,
        hidden_units=(256,),
        attention_units=64,
        dropout=0.0,
        pooling="attention",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if pooling not in ("attention", "concat"):
            raise ValueError(
                "`pooling` must be 'attention' or 'concat'; received "
                f"{pooling!r}."
            )
        self.pooling = pooling
        self.latent_dim = int(latent_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.attention_units = int(attention_units)
        self.dropout = float(dropout)
        policy = self.dtype_policy
        self.score_hidden = keras.layers.Dense(
            self.attention_units,
            activation="tanh",
            dtype=policy,
            name="score_hidden",
        )
        self.score_output = keras.layers.Dense(
            1, use_bias=False, dtype=policy, name="score_output"
        )
        self.token_dropout = keras.layers.Dropout(self.dropout, dtype=policy)
        self.output_mlp = []
        for i, width in enumerate(self.hidden_units):
            self.output_mlp.append(
                keras.layers.Dense(
                    width, activation="relu", dtype=policy, name=f"hidden_{i}"
                )
            )
        self.output_layer = keras.layers.Dense(
            self.latent_dim, dtype=policy, name="output"
        )

    def build(self, latents_shape, modality_mask_shape=None):
        _, num_modalities, width = latents_shape
        self.token_kernel = self.add_weight(
            shape=(num_modalities, width, self.latent_dim),
            initializer="glorot_uniform",
            name="token_kernel",
        )
        self.token_bias = self.add_weight(
            shape=(num_modalities, self.latent_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="token_bias",
        )
        token_shape = (None, num_modalities, self.latent_dim)
        self.score_hidden.build(token_shape)
        self.score_output.build((None, num_modalities, self.attention_units))
        if self.pooling == "concat":
            shape = (None, num_modalities * (self.latent_dim + 1))
        else:
            shape = (None, self.latent_dim)
        for layer in self.output_mlp:
            layer.build(shape)
            shape = (None, layer.units)
        self.output_layer.build(shape)
        self.built = True

    def call(self, latents, modality_mask, training=None):
        tokens = (
            ops.einsum("bmi,mio->bmo", latents, self.token_kernel)
            + self.token_bias
        )
        tokens = ops.nn.gelu(tokens)
        tokens = self.token_dropout(tokens, training=training)
        present = ops.cast(modality_mask, "float32") > 0.5
        if self.pooling == "concat":
            flags = ops.cast(present, tokens.dtype)[..., None]
            x = ops.concatenate([tokens * flags, flags], axis=-1)
            x = ops.reshape(x, (-1, x.shape[1] * x.shape[2]))
            return self._output(x, training)
        scores = ops.cast(
            self.score_output(self.score_hidden(tokens)), "float32"
        )
        scores = ops.where(present, scores[..., 0], EXCLUDED_LOGIT)
        if scores.shape[-1] == 1:
            # One modality (static): a softmax over one score is 1, as
            # meant; Keras' warning about it is not for the user.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "You are using a softmax")
                weights = ops.softmax(scores, axis=-1)
        else:
            weights = ops.softmax(scores, axis=-1)
        weights = weights * ops.cast(present, "float32")
        weights = safe_divide(weights, ops.sum(weights, -1, keepdims=True))
        pooled = ops.einsum(
            "bm,bmd->bd", ops.cast(weights, tokens.dtype), tokens
        )
        return self._output(pooled, training)

    def _output(self, x, training):
        for layer in self.output_mlp:
            x = self.token_dropout(layer(x), training=training)
        return self.output_layer(x)

    def compute_output_shape(self, latents_shape, modality_mask_shape=None):
        return (latents_shape[0], self.latent_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim,
                "hidden_units": list(self.hidden_units),
                "attention_units": self.attention_units,
                "dropout": self.dropout,
                "pooling": self.pooling,
            }
        )
        return config
