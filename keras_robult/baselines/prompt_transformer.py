import keras
import numpy as np
from keras import ops

from keras_robult.distribution import global_batch_loss
from keras_robult.layers.transformer_block import TransformerBlock
from keras_robult.models.multimodal_model import MultimodalModel
from keras_robult.utils.tensor import safe_divide

#: Above this many modalities the default prompts are per modality
#: (2^M - 1 presence patterns would be too many).
MAX_PATTERN_MODALITIES = 4


@keras.saving.register_keras_serializable(package="keras_robult")
class PromptTransformer(MultimodalModel):
    """Prompt-Trans, missing-aware prompts (Lee et al., CVPR 2023), as a
    baseline: a transformer over modality tokens whose first layers get
    learned prompts chosen by the sample's missing-modality pattern.

    The modality encoders give one token per modality (projected to
    `latent_dim`, plus a learned modality-type embedding) after a learned
    CLS token. A missing modality enters as its encoder's output on the
    zero tensor, without attention masking, as the original feeds dummy
    inputs through ViLT. Each of the first `num_prompt_layers` blocks
    (default: half of `depth`) prepends `prompt_length` prompt tokens to
    its input ("input-level" prompts: they accumulate). The prompts are
    selected per sample: `prompt_mode="pattern"` keeps one prompt set per
    presence pattern (2^M - 1; for two modalities the original's
    complete / first missing / second missing), each initialised to zeros
    with one row of ones at its own position, as in the original;
    `"per_modality"` keeps a base prompt plus one prompt per modality,
    added when that modality is missing (parameters linear in M), the
    default above four modalities. A pooler (Dense + tanh on the CLS
    output, the first non-prompt token) and a classifier (Dense(2D),
    LayerNorm, GELU, Dense) give the prediction.

    Training is supervised (task loss on the labeled samples) and, as the
    original's `simulate_missing`, each sample loses a random non-empty
    proper subset of its present modalities with probability
    `missing_rate`, so every pattern's prompt trains. Nothing here is
    pretrained, so everything trains (the original freezes its pretrained
    ViLT).

    Args:
        encoders: dict, modality name -> Keras layer producing a vector.
        task: a `keras_robult.tasks.Task`.
        latent_dim: int, token width `D` (a multiple of `num_heads`).
        depth: int, transformer blocks.
        num_heads: int.
        mlp_ratio: float.
        prompt_length: int, prompt tokens per prompted block.
        num_prompt_layers: int or None (`depth // 2`, at least 1).
        prompt_mode: `"pattern"`, `"per_modality"` or None (pattern up to
            four modalities, per modality above).
        missing_rate: float in [0, 1), training-time simulated missingness.
        seed: int, seed of the simulated missingness.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        inputs: dict of modality tensors plus `"modality_mask"`.
        training: bool.

    Returns:
        a dict with `prediction` `(batch, output_dim)`, `logits` and
        `num_modalities` `(batch,)`.

    Example:

    ```python
    model = keras_robult.baselines.PromptTransformer(
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
        depth=4,
        num_heads=8,
        mlp_ratio=4.0,
        prompt_length=16,
        num_prompt_layers=None,
        prompt_mode=None,
        missing_rate=0.7,
        seed=None,
        **kwargs,
    ):
        super().__init__(encoders, task, latent_dim=latent_dim, **kwargs)
        if prompt_mode is None:
            prompt_mode = (
                "pattern"
                if self.num_modalities <= MAX_PATTERN_MODALITIES
                else "per_modality"
            )
        if prompt_mode not in ("pattern", "per_modality"):
            raise ValueError(
                "`prompt_mode` must be 'pattern' or 'per_modality'; "
                f"received {prompt_mode!r}."
            )
        if num_prompt_layers is None:
            num_prompt_layers = max(1, depth // 2)
        if not 1 <= num_prompt_layers <= depth:
            raise ValueError(
                f"`num_prompt_layers` must be in [1, depth={depth}]; "
                f"received {num_prompt_layers}."
            )
        if self.latent_dim % num_heads:
            raise ValueError(
                f"`latent_dim` ({self.latent_dim}) must be a multiple of "
                f"`num_heads` ({num_heads})."
            )
        if not 0 <= missing_rate < 1:
            raise ValueError(
                f"`missing_rate` must be in [0, 1); received {missing_rate!r}."
            )
        if prompt_length < 1:
            raise ValueError(
                f"`prompt_length` must be positive; received {prompt_length}."
            )
        self.depth = int(depth)
        self.num_heads = int(num_heads)
        self.mlp_ratio = float(mlp_ratio)
        self.prompt_length = int(prompt_length)
        self.num_prompt_layers = int(num_prompt_layers)
        self.prompt_mode = prompt_mode
        self.missing_rate = float(missing_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.blocks = [
            TransformerBlock(num_heads, mlp_ratio, name=f"block_{i}")
            for i in range(self.depth)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, name="final_norm"
        )
        self.pooler = keras.layers.Dense(
            self.latent_dim, activation="tanh", name="pooler"
        )
        self.classifier = keras.Sequential(
            [
                keras.layers.Dense(2 * self.latent_dim),
                keras.layers.LayerNormalization(),
                keras.layers.Activation("gelu"),
                keras.layers.Dense(task.output_dim),
            ],
            name="classifier",
        )
        self.task_loss_tracker = keras.metrics.Mean(name="loss_task")

    @property
    def num_patterns(self):
        return 2**self.num_modalities - 1

    def _prompt_initializer(self, count):
        """Zeros with one row of ones per prompt set, at evenly spread
        positions (the original's complete / missing-text / missing-image
        prompts have theirs at the first, middle and last row)."""
        values = np.zeros(
            (
                count,
                self.num_prompt_layers,
                self.prompt_length,
                self.latent_dim,
            ),
            "float32",
        )
        for index in range(count):
            row = (index * (self.prompt_length - 1)) // max(count - 1, 1)
            values[index, :, row] = 1.0
        return keras.initializers.Constant(values)

    def build(self, inputs_shape):
        width, count = self.latent_dim, self.num_modalities
        self.cls_token = self.add_weight(
            shape=(width,),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="cls_token",
        )
        self.type_embedding = self.add_weight(
            shape=(count + 1, width),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="type_embedding",
        )
        sets = self.num_patterns if self.prompt_mode == "pattern" else count + 1
        self.prompts = self.add_weight(
            shape=(sets, self.num_prompt_layers, self.prompt_length, width),
            initializer=self._prompt_initializer(sets),
            name="prompts",
        )
        length = 1 + count
        for index, block in enumerate(self.blocks):
            prompted = min(index + 1, self.num_prompt_layers)
            block.build((None, length + prompted * self.prompt_length, width))
        total = length + self.num_prompt_layers * self.prompt_length
        self.final_norm.build((None, total, width))
        self.pooler.build((None, width))
        self.classifier.build((None, width))
        super().build(inputs_shape)

    def simulate_missing(self, present):
        """Training: with probability `missing_rate` a sample keeps a
        random non-empty proper subset of its present modalities (a sample
        with one present modality keeps it)."""
        shape = ops.shape(present)
        rank = self.present_first_ranks(present, self.seed_generator)
        count = ops.sum(present, axis=-1, keepdims=True)
        draw = keras.random.uniform((shape[0], 2), seed=self.seed_generator)
        # k uniform in 1 .. count - 1 (0 extra when count is 1).
        extra = ops.floor(draw[:, :1] * ops.maximum(count - 1.0, 0.0))
        keep = ops.cast(ops.cast(rank, "float32") < 1.0 + extra, "float32")
        dropping = ops.cast(draw[:, 1:] < self.missing_rate, "float32")
        dropping = dropping * ops.cast(count > 1, "float32")
        return present * (dropping * keep + (1.0 - dropping))

    def pattern_index(self, present):
        """Index of each sample's presence pattern in `0 .. 2^M - 2`
        (bit m set when modality m is present; none present maps to 0)."""
        bits = 2.0 ** ops.arange(self.num_modalities, dtype="float32")
        code = ops.sum(present * bits[None], axis=-1)
        return ops.cast(ops.maximum(code - 1.0, 0.0), "int32")

    def sample_prompts(self, present):
        """`(batch, num_prompt_layers, prompt_length, D)` per sample."""
        if self.prompt_mode == "pattern":
            return ops.take(self.prompts, self.pattern_index(present), axis=0)
        missing = 1.0 - present
        added = ops.einsum("bm,mlpd->blpd", missing, self.prompts[1:])
        return ops.add(added, self.prompts[0][None])

    def _forward(self, inputs, present, training):
        """Logits `(batch, output_dim)` with the modalities of `present`."""
        tokens = self.encode(inputs, present)  # missing: encoder(zeros)
        batch = ops.shape(tokens)[0]
        cls = ops.broadcast_to(
            self.cls_token[None, None], (batch, 1, self.latent_dim)
        )
        x = ops.concatenate([cls, tokens], axis=1) + self.type_embedding[None]
        prompts = self.sample_prompts(present)
        # The CLS token, the first after the prompts; only its output is
        # read, so the last block computes that one alone.
        first = self.num_prompt_layers * self.prompt_length
        for index, block in enumerate(self.blocks):
            if index < self.num_prompt_layers:
                x = ops.concatenate([prompts[:, index], x], axis=1)
            last = index == self.depth - 1
            x = block(
                x,
                training=training,
                query_range=(first, first + 1) if last else None,
            )
        x = self.final_norm(x)
        return self.classifier(self.pooler(x[:, 0]))

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        mask = self._modality_mask(inputs)
        present = ops.cast(mask > 0.5, "float32")
        if training:
            present = self.simulate_missing(present)
        logits = self._forward(inputs, present, training)
        outputs = {
            "prediction": self.task.activation(logits),
            "logits": logits,
        }
        return self.with_fallback(outputs, mask, inputs)

    @global_batch_loss
    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        labels, is_labeled = self.unpack_targets(x, y)
        present = ops.cast(self._modality_mask(x) > 0.5, "float32")
        weight = self.supervised_weights(is_labeled, sample_weight)
        weight = weight * ops.cast(ops.sum(present, axis=-1) > 0, "float32")
        per_sample = self.task.supervised_loss(labels, y_pred["logits"])
        task = safe_divide(ops.sum(per_sample * weight), ops.sum(weight))
        self.task_loss_tracker.update_state(ops.stop_gradient(task))
        return task + self.regularization_loss()

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "depth": self.depth,
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "prompt_length": self.prompt_length,
                "num_prompt_layers": self.num_prompt_layers,
                "prompt_mode": self.prompt_mode,
                "missing_rate": self.missing_rate,
                "seed": self.seed,
            }
        )
        return config
