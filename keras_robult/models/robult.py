import keras
import numpy as np
from keras import ops

from keras_robult.encoders.mlp_encoder import MLPEncoder
from keras_robult.layers.fusion_encoder import FusionEncoder
from keras_robult.layers.latent_projection import LatentProjection
from keras_robult.layers.modality_mlp import ModalityMLP
from keras_robult.losses.latent_reconstruction import (
    latent_reconstruction_loss,
)
from keras_robult.losses.soft_pu import (
    cosine_similarity_matrix,
    safe_divide,
    soft_pu_loss,
)
from keras_robult.tasks.task import Task
from keras_robult.validation import check_arrays, check_dataset_spec

MASK_KEY = "modality_mask"
LOSS_TERMS = ("lb", "ulb", "rec", "sup")
FULL_SET_MODES = ("fused", "late", "mean")


@keras.saving.register_keras_serializable(package="keras_robult")
class Robult(keras.Model):
    """Robult: a multimodal model robust to missing modalities, trained
    semi-supervised (Nguyen, Kamboj, Do, IJCAI 2025).

    Each modality `m` is encoded into the shared latent space,
    `H^m = f^m(X^m)`; the fusion encoder gives `H^0 = f^0(H^1..H^M, mask)`.
    The shared head `g^0` gives the redundant parts `S = g^0(H^0)` and
    `Z^m = g^0(H^m)`, the unique heads give `U^m = g^m(H^m)`, and the shared
    task head `c` predicts `y^0 = c(H^0)` and `y^m = c([U^m, Z^m])`. The
    reconstruction heads `r^m([U^m, Z^m]) ~ H^m` serve only the latent
    reconstruction loss.

    Training minimises
    `L_PU + lambda_rec L_rec + lambda_sup L_sup` with
    `L_PU = mean_m(lambda_lb L_lb^m + lambda_ulb L_ulb^m)`, the soft
    positive-unlabeled contrastive loss between `S` and each `Z^m`
    (`keras_robult.losses.soft_pu_loss`), the latent reconstruction loss
    (`keras_robult.losses.latent_reconstruction_loss`) and the task loss of
    every branch on the labeled samples. Gradients are routed as in the
    paper (section 2.3): `L_PU` reaches `f^m, f^0, g^0` only, `L_rec`
    reaches `g^m, r^m` only, `L_sup` reaches everything.

    Prediction is per sample, from whatever modalities it has: the fused
    branch when all are present (see `full_set`), otherwise the late fusion
    (mean of branch outputs in the task output space) of the present ones.
    A missing modality is zero-filled before its encoder and masked out, so
    its values never reach the prediction.

    Args:
        encoders: dict, modality name -> Keras layer mapping that modality's
            input to a vector `(batch, features)`. The dict order is the
            modality order. Outputs of width other than `latent_dim` get a
            linear projection.
        task: a `keras_robult.tasks.Task` (`Classification`, `Regression`,
            `MultiLabel`).
        fusion: optional layer `fusion(latents, modality_mask) -> (batch, d)`
            where `latents` is `(batch, M, d)`. Defaults to a
            `keras_robult.layers.FusionEncoder(latent_dim)`.
        latent_dim: int, width `d` of the shared latent space.
        redundant_dim: int, width `d_z` of `S` and `Z^m`.
        unique_dim: int, width `d_u` of `U^m`; `d_u + d_z` must equal `d`.
        temperature: float, `tau` of the PU contrastive loss.
        rbf_bandwidth: float, `sigma` of the RBF weight on the cosine scale.
        loss_weights: dict with any of the keys `"lb"`, `"ulb"`, `"rec"`,
            `"sup"` (default 1.0 each); 0 switches a term off (the ablations
            of the paper's Table 3).
        head_units: int, hidden width of the `g^0`, `g^m` and `r^m` MLPs.
            Defaults to `latent_dim`.
        dropout: float, dropout rate in the heads and the fusion encoder.
        full_set: `"fused"` (default), `"late"` or `"mean"`: the prediction
            when every modality is present is the fused branch, the late
            fusion of the modality branches, or the mean of both.
        min_pair_probability: float, soft same-class probabilities below it
            are set to 0 in `L_ulb`.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: dict with one tensor per modality (first axis = batch) and
            optionally `"modality_mask"`, float `(batch, M)`, 1 = present
            (default: all present).
        training: bool.

    Returns (from `call`, `predict`): a dict with
        `prediction` `(batch, output_dim)`; `fused_prediction`
        `(batch, output_dim)`; `modality_predictions` `(batch, M,
        output_dim)`; `fused_logits`, `modality_logits` (raw head outputs);
        `fused_latent` `H^0` `(batch, d)`; `modality_latents` `H^m`
        `(batch, M, d)`; `shared` `S` `(batch, d_z)`; `redundant` `Z^m`
        `(batch, M, d_z)`; `unique` `U^m` `(batch, M, d_u)`;
        `reconstruction` `r^m` output `(batch, M, d)`.

    Targets for `fit` / `evaluate`: a dict `{"label": ..., "is_labeled":
    ...}` (an unlabeled sample carries any placeholder label and
    `is_labeled = 0`), or plain labels (all labeled), or none at all (all
    unlabeled).

    Example:

    ```python
    import numpy as np
    import keras_robult

    model = keras_robult.Robult(
        encoders={
            "audio": keras_robult.encoders.MLPEncoder(128),
            "video": keras_robult.encoders.MLPEncoder(128),
        },
        task=keras_robult.tasks.Classification(num_classes=3),
    )
    model.compile(optimizer="adam")
    x = {
        "audio": np.random.rand(64, 20).astype("float32"),
        "video": np.random.rand(64, 30).astype("float32"),
        "modality_mask": np.ones((64, 2), "float32"),
    }
    y = {
        "label": np.random.randint(0, 3, 64),
        "is_labeled": (np.arange(64) < 8).astype("float32"),
    }
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    x["modality_mask"][:, 1] = 0  # video missing for every sample
    probabilities = model.predict(x, verbose=0)["prediction"]
    ```
    """

    def __init__(
        self,
        encoders,
        task,
        fusion=None,
        latent_dim=128,
        redundant_dim=64,
        unique_dim=64,
        temperature=0.5,
        rbf_bandwidth=0.3,
        loss_weights=None,
        head_units=None,
        dropout=0.0,
        full_set="fused",
        min_pair_probability=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(encoders, dict) or not encoders:
            raise ValueError(
                "`encoders` must be a non-empty dict mapping modality names "
                f"to Keras layers; received {encoders!r}."
            )
        for name, encoder in encoders.items():
            if not isinstance(name, str) or not name:
                raise ValueError(
                    f"Modality names must be non-empty strings; got {name!r}."
                )
            if name == MASK_KEY:
                raise ValueError(
                    f"'{MASK_KEY}' is reserved for the modality mask and "
                    "cannot be a modality name."
                )
            if not isinstance(encoder, keras.layers.Layer):
                raise ValueError(
                    f"The encoder of modality '{name}' must be a Keras layer "
                    f"or model; received {type(encoder).__name__}."
                )
        if not isinstance(task, Task):
            raise ValueError(
                "`task` must be a keras_robult.tasks.Task (Classification, "
                f"Regression or MultiLabel); received {task!r}."
            )
        if unique_dim + redundant_dim != latent_dim:
            raise ValueError(
                "The task head is shared by the fused branch (input H^0 of "
                "width latent_dim) and the unimodal branches (input [U^m, "
                "Z^m] of width unique_dim + redundant_dim), so "
                "unique_dim + redundant_dim must equal latent_dim; received "
                f"unique_dim={unique_dim}, redundant_dim={redundant_dim}, "
                f"latent_dim={latent_dim}."
            )
        if not temperature > 0:
            raise ValueError(
                f"`temperature` must be positive; received {temperature!r}."
            )
        if not rbf_bandwidth > 0:
            raise ValueError(
                f"`rbf_bandwidth` must be positive; received {rbf_bandwidth!r}."
            )
        loss_weights = dict(loss_weights or {})
        unknown = set(loss_weights) - set(LOSS_TERMS)
        if unknown:
            raise ValueError(
                f"Unknown `loss_weights` keys {sorted(unknown)}; valid keys "
                f"are {list(LOSS_TERMS)}."
            )
        if full_set not in FULL_SET_MODES:
            raise ValueError(
                f"`full_set` must be one of {FULL_SET_MODES}; received "
                f"{full_set!r}."
            )

        self.encoders = dict(encoders)
        self.modalities = tuple(encoders)
        self.num_modalities = len(self.modalities)
        self.task = task
        self.latent_dim = int(latent_dim)
        self.redundant_dim = int(redundant_dim)
        self.unique_dim = int(unique_dim)
        self.temperature = float(temperature)
        self.rbf_bandwidth = float(rbf_bandwidth)
        self.loss_weights = {
            key: float(loss_weights.get(key, 1.0)) for key in LOSS_TERMS
        }
        self.head_units = int(head_units or latent_dim)
        self.dropout = float(dropout)
        self.full_set = full_set
        self.min_pair_probability = float(min_pair_probability)

        self.projections = {
            name: LatentProjection(self.latent_dim, name=f"projection_{name}")
            for name in self.modalities
        }
        self.fusion = fusion or FusionEncoder(
            self.latent_dim,
            hidden_units=(self.head_units,),
            dropout=self.dropout,
            name="fusion",
        )
        self.shared_head = MLPEncoder(
            self.redundant_dim,
            hidden_units=(self.head_units,),
            dropout=self.dropout,
            normalize=False,
            name="shared_head",
        )
        self.unique_heads = ModalityMLP(
            self.num_modalities,
            self.unique_dim,
            hidden_units=(self.head_units,),
            dropout=self.dropout,
            name="unique_heads",
        )
        self.reconstruction_heads = ModalityMLP(
            self.num_modalities,
            self.latent_dim,
            hidden_units=(self.head_units,),
            dropout=self.dropout,
            name="reconstruction_heads",
        )
        self.task_head = keras.layers.Dense(task.output_dim, name="task_head")

        self.lb_loss_tracker = keras.metrics.Mean(name="loss_lb")
        self.ulb_loss_tracker = keras.metrics.Mean(name="loss_ulb")
        self.rec_loss_tracker = keras.metrics.Mean(name="loss_rec")
        self.sup_loss_tracker = keras.metrics.Mean(name="loss_sup")
        self.task_metric = task.make_metric()

    # ------------------------------------------------------------------ call
    def _modality_mask(self, inputs):
        first = inputs[self.modalities[0]]
        if MASK_KEY not in inputs:
            return ops.ones((ops.shape(first)[0], self.num_modalities))
        mask = inputs[MASK_KEY]
        if len(mask.shape) != 2 or mask.shape[-1] != self.num_modalities:
            raise ValueError(
                f"'{MASK_KEY}' must have shape (batch, "
                f"{self.num_modalities}), one column per modality "
                f"{list(self.modalities)}; received shape {tuple(mask.shape)}."
            )
        return ops.cast(mask, "float32")

    def _check_inputs(self, inputs):
        if not isinstance(inputs, dict):
            raise ValueError(
                "Robult expects a dict of modality tensors plus "
                f"'{MASK_KEY}'; received {type(inputs).__name__}."
            )
        missing = [m for m in self.modalities if m not in inputs]
        unknown = [
            k for k in inputs if k not in self.modalities and k != MASK_KEY
        ]
        if missing or unknown:
            raise ValueError(
                f"Input keys {sorted(inputs)} do not match the model's "
                f"modalities {list(self.modalities)} (plus '{MASK_KEY}'): "
                f"missing {missing}, unknown {unknown}. Feed a missing "
                "modality as zeros with its mask column set to 0."
            )

    def build(self, inputs_shape):
        """Builds every sub-layer by tracing `call` on symbolic inputs.

        Input errors (a missing modality, a mask of the wrong width) are
        raised here, before anything is marked as built.
        """
        self._check_inputs(inputs_shape)
        symbolic = {
            key: keras.KerasTensor(tuple(shape))
            for key, shape in inputs_shape.items()
        }
        self.call(symbolic)
        self.built = True

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        mask = self._modality_mask(inputs)
        present = mask > 0.5

        latents = []
        for index, name in enumerate(self.modalities):
            x = inputs[name]
            keep = ops.reshape(
                present[:, index], (-1,) + (1,) * (len(x.shape) - 1)
            )
            # Zero-fill a missing modality: its values never reach anything.
            x = ops.where(keep, x, ops.zeros_like(x))
            h = self.projections[name](self.encoders[name](x))
            latents.append(h)
        latents = ops.stack(latents, axis=1)  # (B, M, d)

        fused_latent = self.fusion(latents, mask)  # (B, d)
        shared = self.shared_head(fused_latent)  # S: (B, d_z)
        redundant = self.shared_head(latents)  # Z^m: (B, M, d_z)
        unique = self.unique_heads(latents)  # U^m: (B, M, d_u)

        fused_logits = self.task_head(fused_latent)
        modality_logits = self.task_head(
            ops.concatenate([unique, redundant], axis=-1)
        )
        fused_prediction = self.task.activation(fused_logits)
        modality_predictions = self.task.activation(modality_logits)

        # L_rec path: stop the gradient into H^m and Z^m (paper section 2.2).
        reconstruction = self.reconstruction_heads(
            ops.concatenate(
                [
                    self.unique_heads(ops.stop_gradient(latents)),
                    ops.stop_gradient(redundant),
                ],
                axis=-1,
            )
        )

        late = self._late_fusion(modality_predictions, mask)
        if self.full_set == "fused":
            full = fused_prediction
        elif self.full_set == "late":
            full = late
        else:
            full = 0.5 * (fused_prediction + late)
        all_present = ops.all(present, axis=-1, keepdims=True)
        prediction = ops.where(all_present, full, late)

        return {
            "prediction": prediction,
            "fused_prediction": fused_prediction,
            "modality_predictions": modality_predictions,
            "fused_logits": fused_logits,
            "modality_logits": modality_logits,
            "fused_latent": fused_latent,
            "modality_latents": latents,
            "shared": shared,
            "redundant": redundant,
            "unique": unique,
            "reconstruction": reconstruction,
        }

    @staticmethod
    def _late_fusion(modality_predictions, mask):
        """Mean of the present branches' outputs, `(B, output_dim)`."""
        weights = ops.cast(mask, modality_predictions.dtype)
        total = ops.einsum("bm,bmo->bo", weights, modality_predictions)
        count = ops.sum(weights, axis=-1, keepdims=True)
        return safe_divide(total, count)

    # ------------------------------------------------------------------ loss
    def _unpack_targets(self, x, y):
        batch_size = ops.shape(x[self.modalities[0]])[0]
        if y is None:
            labels = self.task.placeholder_labels(batch_size)
            is_labeled = ops.zeros((batch_size,))
        elif isinstance(y, dict):
            labels = y["label"]
            is_labeled = y.get("is_labeled")
            if is_labeled is None:
                is_labeled = ops.ones((batch_size,))
        else:
            labels, is_labeled = y, ops.ones((batch_size,))
        is_labeled = ops.reshape(ops.cast(is_labeled, "float32"), (-1,))
        # Placeholder labels of unlabeled samples may be anything (-1, NaN):
        # replace them by a valid value; every use is gated by is_labeled.
        keep = ops.reshape(
            is_labeled > 0.5, (-1,) + (1,) * (len(labels.shape) - 1)
        )
        labels = ops.where(keep, labels, ops.zeros_like(labels))
        return labels, is_labeled

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """Total Robult loss; records each term in the `loss_*` metrics."""
        labels, is_labeled = self._unpack_targets(x, y)
        mask = self._modality_mask(x)
        loss_sup = self.supervised_loss(
            labels, is_labeled, mask, y_pred, sample_weight
        )
        loss_lb, loss_ulb = self.pu_loss(labels, is_labeled, mask, y_pred)
        loss_rec = self.reconstruction_loss(mask, y_pred)
        w = self.loss_weights
        total = (
            w["lb"] * loss_lb
            + w["ulb"] * loss_ulb
            + w["rec"] * loss_rec
            + w["sup"] * loss_sup
        )
        if self.losses:
            total = total + ops.sum(
                [ops.cast(loss, "float32") for loss in self.losses]
            )
        for tracker, value in (
            (self.lb_loss_tracker, loss_lb),
            (self.ulb_loss_tracker, loss_ulb),
            (self.rec_loss_tracker, loss_rec),
            (self.sup_loss_tracker, loss_sup),
        ):
            tracker.update_state(ops.stop_gradient(value))
        return total

    def supervised_loss(
        self, labels, is_labeled, mask, y_pred, sample_weight=None
    ):
        """`L_sup`: mean over branches (fused, then each modality) of the
        task loss on the labeled samples where the branch is available.

        The fused branch is available when at least one modality is present
        (the fusion encoder is mask-aware); branch `m` when modality `m` is.
        Branches with no such sample in the batch are left out of the mean.
        """
        present = ops.cast(mask > 0.5, "float32")
        logits = ops.concatenate(
            [y_pred["fused_logits"][:, None], y_pred["modality_logits"]],
            axis=1,
        )
        per_sample = self.task.supervised_loss(labels, logits)  # (B, M+1)
        weight = is_labeled
        if sample_weight is not None:
            weight = weight * ops.reshape(
                ops.cast(sample_weight, "float32"), (-1,)
            )
        available = ops.concatenate(
            [ops.max(present, axis=-1, keepdims=True), present], axis=1
        )
        branch_weight = available * weight[:, None]
        branch_mass = ops.sum(branch_weight, axis=0)
        branch_loss = safe_divide(
            ops.sum(branch_weight * per_sample, axis=0), branch_mass
        )
        has_branch = ops.cast(branch_mass > 0, "float32")
        return safe_divide(
            ops.sum(has_branch * branch_loss), ops.sum(has_branch)
        )

    def pu_loss(self, labels, is_labeled, mask, y_pred):
        """`(L_lb, L_ulb)`, each averaged over modalities: the soft PU loss
        between `S` (anchors) and each `Z^m` (keys).

        Soft targets: the label's class distribution for labeled samples;
        for unlabeled ones the fused branch's prediction when every
        modality is present, else the late fusion of the present branches.
        """
        present = ops.cast(mask > 0.5, "float32")
        label_dist = self.task.label_distribution(labels)
        pseudo = ops.where(
            ops.min(present, axis=-1, keepdims=True) > 0,
            y_pred["fused_prediction"],
            self._late_fusion(y_pred["modality_predictions"], mask),
        )
        soft = ops.where(
            is_labeled[:, None] > 0.5,
            label_dist,
            self.task.soft_targets(pseudo),
        )
        soft = ops.stop_gradient(soft)
        same_class = ops.cast(
            self.task.pair_probability(label_dist, label_dist) > 0.5,
            "float32",
        )
        redundant = ops.transpose(y_pred["redundant"], (1, 0, 2))  # (M,B,dz)
        similarity = cosine_similarity_matrix(
            y_pred["shared"][None], redundant
        )  # (M, B, B)
        loss_lb, loss_ulb = soft_pu_loss(
            similarity,
            is_labeled,
            same_class,
            self.task.pair_probability(soft, soft),
            anchor_mask=ops.max(present, axis=-1)[None, :],
            key_mask=ops.transpose(present),
            temperature=self.temperature,
            rbf_bandwidth=self.rbf_bandwidth,
            min_pair_probability=self.min_pair_probability,
        )
        return ops.mean(loss_lb), ops.mean(loss_ulb)

    def reconstruction_loss(self, mask, y_pred):
        """`L_rec`: directions of `H^m` recovered from
        `[g^m(sg H^m), sg Z^m]`, over present modalities."""
        return latent_reconstruction_loss(
            y_pred["reconstruction"],
            ops.stop_gradient(y_pred["modality_latents"]),
            ops.cast(mask > 0.5, "float32"),
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Updates the task metric on the labeled samples."""
        labels, is_labeled = self._unpack_targets(x, y)
        self.task_metric.update_state(
            self.task.metric_labels(labels),
            y_pred["prediction"],
            sample_weight=is_labeled,
        )
        return super().compute_metrics(x, y, y_pred, sample_weight)

    # ------------------------------------------------------- eager checks
    def _check_data(self, x, y=None):
        if x is None:
            return
        if isinstance(x, dict):
            check_arrays(x, y, self.modalities, self.task)
        elif hasattr(x, "__array__") or isinstance(x, (list, tuple)):
            raise ValueError(
                "Robult expects a dict of modality arrays plus "
                f"'{MASK_KEY}'; received {type(x).__name__}."
            )
        else:
            check_dataset_spec(x, self.modalities)

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_data(x, y)
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, (tuple, list)):
            self._check_data(*validation_data[:2])
        elif validation_data is not None:
            self._check_data(validation_data)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_data(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_data(x)
        return super().predict(x, *args, **kwargs)

    # ---------------------------------------------------------- serialising
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoders": {
                    name: keras.layers.serialize(encoder)
                    for name, encoder in self.encoders.items()
                },
                "task": keras.saving.serialize_keras_object(self.task),
                "fusion": keras.layers.serialize(self.fusion),
                "latent_dim": self.latent_dim,
                "redundant_dim": self.redundant_dim,
                "unique_dim": self.unique_dim,
                "temperature": self.temperature,
                "rbf_bandwidth": self.rbf_bandwidth,
                "loss_weights": dict(self.loss_weights),
                "head_units": self.head_units,
                "dropout": self.dropout,
                "full_set": self.full_set,
                "min_pair_probability": self.min_pair_probability,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoders"] = {
            name: keras.layers.deserialize(encoder)
            for name, encoder in config["encoders"].items()
        }
        config["task"] = keras.saving.deserialize_keras_object(config["task"])
        config["fusion"] = keras.layers.deserialize(config["fusion"])
        return cls(**config)

    def example_inputs(self, batch_size, shapes, dtype="float32"):
        """Zero inputs of the right structure, e.g. to build the model.

        Args:
            batch_size: int.
            shapes: dict, modality name -> per-sample shape tuple.
            dtype: dtype of the modality tensors.
        """
        inputs = {
            name: np.zeros((batch_size,) + tuple(shapes[name]), dtype)
            for name in self.modalities
        }
        inputs[MASK_KEY] = np.ones((batch_size, self.num_modalities), "float32")
        return inputs
