import keras
from keras import ops

from keras_robult.distribution import global_batch_loss
from keras_robult.encoders.mlp_encoder import MLPEncoder
from keras_robult.layers.fusion_encoder import FusionEncoder
from keras_robult.losses.gmc_contrastive import gmc_contrastive_loss
from keras_robult.models.multimodal_model import MultimodalModel


@keras.saving.register_keras_serializable(package="keras_robult")
class GMC(MultimodalModel):
    """Geometric Multimodal Contrastive representation learning
    (Poklukar et al., ICML 2022), semi-supervised, as a baseline.

    Per-modality encoders give `h^m`, a joint encoder gives `h^0` (the same
    mask-aware `FusionEncoder` architecture Robult uses), a shared
    projection head `g` maps any latent to `z = normalize(g(h))`, and a
    classifier `c` reads `g(h)`. The loss is GMC's NT-Xent between `z^0` and
    each `z^m` (`keras_robult.losses.gmc_contrastive_loss`; temperature 1.0
    by default, chosen on a validation split: at 0.3 the contrastive term
    over-trains on mfeat, `benchmarks/RESULTS.md`)
    on all samples, plus the supervised loss on the labeled samples: of the
    joint and every modality branch (`supervised_branches="all"`, the
    default, chosen on a validation split: `benchmarks/RESULTS.md`) or of
    the joint branch alone, as in GMC's supervised code
    (`supervised_branches="joint"`). With every modality present the
    prediction is `c(g(h^0))` (`full_set="joint"`) or, as for the other
    subsets, `c(g(mean of the present h^m))` (`full_set="mean"`).

    Args:
        encoders: dict, modality name -> Keras layer producing a vector.
        task: a `keras_robult.tasks.Task`.
        latent_dim: int, width of `h`.
        projection_dim: int, width of `z`.
        temperature: float, NT-Xent temperature.
        loss_weights: dict with keys `"contrastive"` and `"sup"`.
        supervised_branches: `"all"` or `"joint"`, the branches the
            supervised loss trains.
        full_set: `"joint"` or `"mean"`, the representation classified
            when every modality is present.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        inputs: dict of modality tensors plus `"modality_mask"`.
        training: bool.

    Returns:
        a dict with `prediction` `(batch, output_dim)`, `branch_logits`
        (joint, then each modality), `joint_projection`,
        `modality_projections`, `modality_predictions` `(batch, M,
        output_dim)` and `num_modalities` `(batch,)`.

    Example:

    ```python
    model = keras_robult.baselines.GMC(
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
        projection_dim=64,
        temperature=1.0,
        loss_weights=None,
        supervised_branches="all",
        full_set="joint",
        **kwargs,
    ):
        super().__init__(encoders, task, latent_dim=latent_dim, **kwargs)
        self.projection_dim = int(projection_dim)
        self.temperature = float(temperature)
        weights = dict(loss_weights or {})
        unknown = set(weights) - {"contrastive", "sup"}
        if unknown:
            raise ValueError(
                f"Unknown `loss_weights` keys {sorted(unknown)}; valid keys "
                "are ['contrastive', 'sup']."
            )
        self.loss_weights = {
            "contrastive": float(weights.get("contrastive", 1.0)),
            "sup": float(weights.get("sup", 1.0)),
        }
        if supervised_branches not in ("all", "joint"):
            raise ValueError(
                "`supervised_branches` must be 'all' or 'joint'; received "
                f"{supervised_branches!r}."
            )
        if full_set not in ("joint", "mean"):
            raise ValueError(
                f"`full_set` must be 'joint' or 'mean'; received {full_set!r}."
            )
        self.supervised_branches = supervised_branches
        self.full_set = full_set
        self.joint_encoder = FusionEncoder(
            self.latent_dim, hidden_units=(self.latent_dim,), name="joint"
        )
        self.projection_head = MLPEncoder(
            self.projection_dim,
            hidden_units=(self.latent_dim,),
            normalize=False,
            name="projection_head",
        )
        self.classifier = keras.layers.Dense(task.output_dim, name="classifier")
        self.contrastive_loss_tracker = keras.metrics.Mean(
            name="loss_contrastive"
        )
        self.sup_loss_tracker = keras.metrics.Mean(name="loss_sup")

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        mask = self._modality_mask(inputs)
        latents = self.encode(inputs, mask)  # (B, M, d)
        joint = self.joint_encoder(latents, mask)  # (B, d)
        mean_present = self.mean_over_present(latents, mask)
        representation = mean_present
        if self.full_set == "joint":
            representation = self.where_all_present(mask, joint, mean_present)
        projected = self.projection_head(
            ops.concatenate(
                [joint[:, None], latents, representation[:, None]], axis=1
            )
        )  # (B, M + 2, p)
        logits = self.classifier(projected)
        outputs = {
            "prediction": self.task.activation(logits[:, -1]),
            "branch_logits": logits[:, :-1],  # joint, then each modality
            "joint_projection": projected[:, 0],
            "modality_projections": projected[:, 1:-1],
            "modality_predictions": self.task.activation(logits[:, 1:-1]),
        }
        return self.with_fallback(outputs, mask, inputs)

    @global_batch_loss
    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        labels, is_labeled = self.unpack_targets(x, y)
        mask = self._modality_mask(x)
        present = ops.cast(mask > 0.5, "float32")
        contrastive = gmc_contrastive_loss(
            y_pred["joint_projection"],
            ops.transpose(y_pred["modality_projections"], (1, 0, 2)),
            temperature=self.temperature,
            mask=ops.transpose(present),
        )
        modality_branches = present
        if self.supervised_branches == "joint":
            modality_branches = ops.zeros_like(present)
        available = ops.concatenate(
            [ops.max(present, axis=-1, keepdims=True), modality_branches],
            axis=1,
        )
        supervised = self.branch_supervised_loss(
            labels,
            self.supervised_weights(is_labeled, sample_weight),
            y_pred["branch_logits"],
            available,
        )
        self.contrastive_loss_tracker.update_state(
            ops.stop_gradient(contrastive)
        )
        self.sup_loss_tracker.update_state(ops.stop_gradient(supervised))
        return (
            self.loss_weights["contrastive"] * contrastive
            + self.loss_weights["sup"] * supervised
            + self.regularization_loss()
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projection_dim": self.projection_dim,
                "temperature": self.temperature,
                "loss_weights": dict(self.loss_weights),
                "supervised_branches": self.supervised_branches,
                "full_set": self.full_set,
            }
        )
        return config
