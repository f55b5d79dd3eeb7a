import keras
from keras import ops

from keras_robult.distribution import global_batch_loss
from keras_robult.layers.transformer_block import TransformerBlock
from keras_robult.models.multimodal_model import MultimodalModel
from keras_robult.utils.tensor import safe_divide


@keras.saving.register_keras_serializable(package="keras_robult")
class ActionMAE(MultimodalModel):
    """ActionMAE (Woo et al., AAAI 2023) as a baseline: modality tokens,
    random modality dropping in training, a transformer encoder over the
    kept tokens and a decoder that reconstructs the dropped ones.

    Each modality's encoder output, projected to `latent_dim`, is one
    token, plus a learned modality embedding per position. In training
    every batch draws a number of kept modalities `k` uniform in `1..M` and
    each sample keeps `k` of its present modalities at random (all of them
    if it has fewer); a missing modality is never kept. The encoder
    (`depth` pre-LayerNorm blocks) reads `num_memory_tokens` learned memory
    tokens and the kept tokens (the others are masked out of attention,
    equivalent to removing them); the decoder (same shape) reads the
    encoded kept tokens in place and a learned mask token at every other
    position, and a linear head reconstructs every token. At prediction a
    missing modality is dropped the same way and replaced by its
    reconstruction. One linear head per modality reads the decoder's
    output at its position (as the released code: at a dropped position
    the reconstruction, at a kept one the decoded kept token); the logits
    are summed.

    Loss: `L_task + rec_weight * L_rec`, where `L_rec` is the mean squared
    error between the reconstruction and the per-token standardised
    original token (mean / variance over the width; a fixed target, no
    gradient) over the dropped tokens of present modalities, on every
    sample, and `L_task` is the task loss (cross-entropy with
    `label_smoothing` for classification) on the labeled samples.

    Deviations from the released code (`sangminwoo/ActionMAE`), on
    purpose: its positional embeddings are never added (an inverted
    condition), so dropped tokens cannot be told apart: here each position
    has a learned modality embedding; when nothing is dropped it skips the
    decoder and classifies the memory tokens: here the decoder always
    runs, so training and prediction take one path.

    Args:
        encoders: dict, modality name -> Keras layer producing a vector.
        task: a `keras_robult.tasks.Task`.
        latent_dim: int, token width `D` (a multiple of `num_heads`).
        depth: int, blocks of the encoder and of the decoder.
        num_heads: int, attention heads.
        mlp_ratio: float, MLP width over `D`.
        num_memory_tokens: int, learned tokens prepended to the encoder.
        label_smoothing: float, of the classification loss.
        rec_weight: float, weight of `L_rec`.
        seed: int, seed of the training-time modality drops.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        inputs: dict of modality tensors plus `"modality_mask"`.
        training: bool (drops modalities at random when True).

    Returns:
        a dict with `prediction` `(batch, output_dim)` (the task
        activation of the summed position logits), `logits`,
        `modality_predictions` `(batch, M, output_dim)`, `tokens` and
        `reconstruction` `(batch, M, width)`, `keep` `(batch, M)` (the
        modalities kept this call) and `num_modalities` `(batch,)`.

    Example:

    ```python
    model = keras_robult.baselines.ActionMAE(
        {"a": keras_robult.encoders.MLPEncoder(64),
         "b": keras_robult.encoders.MLPEncoder(64)},
        keras_robult.tasks.Classification(3),
        latent_dim=64,
    )
    model.compile(optimizer="adam")
    ```
    """

    def __init__(
        self,
        encoders,
        task,
        latent_dim=128,
        depth=2,
        num_heads=8,
        mlp_ratio=4.0,
        num_memory_tokens=4,
        label_smoothing=0.1,
        rec_weight=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(encoders, task, latent_dim=latent_dim, **kwargs)
        if self.latent_dim % num_heads:
            raise ValueError(
                f"`latent_dim` ({self.latent_dim}) must be a multiple of "
                f"`num_heads` ({num_heads})."
            )
        if depth < 1 or num_memory_tokens < 0:
            raise ValueError(
                "`depth` must be at least 1 and `num_memory_tokens` at least "
                f"0; received depth={depth}, "
                f"num_memory_tokens={num_memory_tokens}."
            )
        if not 0 <= label_smoothing < 1:
            raise ValueError(
                "`label_smoothing` must be in [0, 1); received "
                f"{label_smoothing!r}."
            )
        self.depth = int(depth)
        self.num_heads = int(num_heads)
        self.mlp_ratio = float(mlp_ratio)
        self.num_memory_tokens = int(num_memory_tokens)
        self.label_smoothing = float(label_smoothing)
        self.rec_weight = float(rec_weight)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.encoder_blocks = [
            TransformerBlock(num_heads, mlp_ratio, name=f"encoder_block_{i}")
            for i in range(self.depth)
        ]
        self.decoder_blocks = [
            TransformerBlock(num_heads, mlp_ratio, name=f"decoder_block_{i}")
            for i in range(self.depth)
        ]
        self.encoder_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, name="encoder_norm"
        )
        self.decoder_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, name="decoder_norm"
        )
        self.reconstruction_head = keras.layers.Dense(
            self.latent_dim, name="reconstruction_head"
        )
        self.classifiers = [
            keras.layers.Dense(task.output_dim, name=f"classifier_{name}")
            for name in self.modalities
        ]
        self.task_loss_tracker = keras.metrics.Mean(name="loss_task")
        self.rec_loss_tracker = keras.metrics.Mean(name="loss_rec")

    def build(self, inputs_shape):
        width, count = self.latent_dim, self.num_modalities
        self.modality_embedding = self.add_weight(
            shape=(count, width),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="modality_embedding",
        )
        self.memory_tokens = self.add_weight(
            shape=(max(self.num_memory_tokens, 1), width),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="memory_tokens",
        )
        self.mask_token = self.add_weight(
            shape=(width,),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="mask_token",
        )
        tokens = (None, self.num_memory_tokens + count, width)
        for block in self.encoder_blocks + self.decoder_blocks:
            block.build(tokens)
        self.encoder_norm.build(tokens)
        self.decoder_norm.build(tokens)
        self.reconstruction_head.build(tokens)
        for classifier in self.classifiers:
            classifier.build((None, width))
        super().build(inputs_shape)

    def keep_mask(self, present, training):
        """`(batch, M)` 1 where a token is kept: in training `k` (uniform
        in 1..M per batch) random present modalities per sample; else every
        present one."""
        if not training:
            return present
        count = self.num_modalities
        rank = self.present_first_ranks(present, self.seed_generator)
        k = keras.random.randint((), 1, count + 1, seed=self.seed_generator)
        kept = ops.cast(rank < k, "float32")
        return kept * present

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        mask = self._modality_mask(inputs)
        present = ops.cast(mask > 0.5, "float32")
        tokens = self.encode(inputs, mask)  # (B, M, D)
        keep = self.keep_mask(present, training)
        batch = ops.shape(tokens)[0]
        memory = ops.broadcast_to(
            self.memory_tokens[None, : self.num_memory_tokens],
            (batch, self.num_memory_tokens, self.latent_dim),
        )
        position = self.modality_embedding[None]
        x = ops.concatenate([memory, tokens + position], axis=1)
        visible = ops.concatenate(
            [ops.ones((batch, self.num_memory_tokens)), keep], axis=1
        )
        # Queries attend to the memory and the kept tokens only; a query
        # at a dropped position still gets an output (ignored below).
        attention = ops.broadcast_to(
            visible[:, None, :] > 0.5,
            (batch, ops.shape(visible)[1], ops.shape(visible)[1]),
        )
        for block in self.encoder_blocks:
            x = block(x, attention_mask=attention, training=training)
        x = self.encoder_norm(x)
        memory_out = x[:, : self.num_memory_tokens]
        encoded = x[:, self.num_memory_tokens :]
        filled = ops.where(
            keep[..., None] > 0.5,
            encoded,
            ops.zeros_like(encoded) + self.mask_token,
        )
        y = ops.concatenate([memory_out, filled + position], axis=1)
        # Only the modality positions' outputs are read: the last block
        # computes those alone (the memory tokens stay keys and values).
        tokens_range = (
            self.num_memory_tokens,
            self.num_memory_tokens + self.num_modalities,
        )
        for index, block in enumerate(self.decoder_blocks):
            last = index == self.depth - 1
            y = block(
                y,
                training=training,
                query_range=tokens_range if last else None,
            )
        reconstruction = self.reconstruction_head(self.decoder_norm(y))
        # As the released code: the heads read the decoder's output at every
        # position (the reconstruction where a token was dropped), so kept
        # and reconstructed tokens reach a head on one (standardised) scale.
        logits = ops.stack(
            [
                head(reconstruction[:, i])
                for i, head in enumerate(self.classifiers)
            ],
            axis=1,
        )  # (B, M, out)
        outputs = {
            "prediction": self.task.activation(ops.sum(logits, axis=1)),
            "logits": ops.sum(logits, axis=1),
            "modality_predictions": self.task.activation(logits),
            "tokens": tokens,
            "reconstruction": reconstruction,
            "keep": keep,
        }
        return self.with_fallback(outputs, mask, inputs)

    @staticmethod
    def standardized(tokens, epsilon=1e-6):
        """Each token minus its mean over the width, over its standard
        deviation (ActionMAE's / MAE's normalised target)."""
        tokens = ops.convert_to_tensor(tokens)
        mean = ops.mean(tokens, axis=-1, keepdims=True)
        variance = ops.var(tokens, axis=-1, keepdims=True)
        return (tokens - mean) / ops.sqrt(variance + epsilon)

    def reconstruction_loss(self, tokens, reconstruction, keep, present):
        """Mean over the dropped tokens of present modalities of the
        per-token mean squared error to the standardised token; 0 when
        there is none."""
        target = ops.stop_gradient(self.standardized(tokens))
        error = ops.mean(
            ops.square(ops.subtract(reconstruction, target)), axis=-1
        )
        weight = present * (1.0 - keep)
        return safe_divide(ops.sum(error * weight), ops.sum(weight))

    def task_loss(self, labels, logits, weight):
        """Weighted mean over samples of the task loss (cross-entropy with
        label smoothing for classification)."""
        per_sample = self.task.supervised_loss(labels, logits)
        if self.task.name == "classification" and self.label_smoothing:
            uniform = -ops.mean(ops.log_softmax(logits, axis=-1), axis=-1)
            per_sample = (
                1.0 - self.label_smoothing
            ) * per_sample + self.label_smoothing * uniform
        return safe_divide(ops.sum(per_sample * weight), ops.sum(weight))

    @global_batch_loss
    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        labels, is_labeled = self.unpack_targets(x, y)
        present = ops.cast(self._modality_mask(x) > 0.5, "float32")
        weight = self.supervised_weights(is_labeled, sample_weight)
        # Samples with no modality carry no signal.
        weight = weight * ops.cast(ops.sum(present, axis=-1) > 0, "float32")
        task = self.task_loss(labels, y_pred["logits"], weight)
        rec = self.reconstruction_loss(
            y_pred["tokens"], y_pred["reconstruction"], y_pred["keep"], present
        )
        self.task_loss_tracker.update_state(ops.stop_gradient(task))
        self.rec_loss_tracker.update_state(ops.stop_gradient(rec))
        return task + self.rec_weight * rec + self.regularization_loss()

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "depth": self.depth,
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "num_memory_tokens": self.num_memory_tokens,
                "label_smoothing": self.label_smoothing,
                "rec_weight": self.rec_weight,
                "seed": self.seed,
            }
        )
        return config
