from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import keras
import numpy as np
from keras import ops

from keras_robult.distribution import global_batch_loss
from keras_robult.encoders.mlp_encoder import MLPEncoder
from keras_robult.layers.fusion_encoder import FusionEncoder
from keras_robult.layers.linear_base import LinearBase
from keras_robult.layers.modality_mlp import ModalityMLP
from keras_robult.losses.latent_reconstruction import (
    latent_reconstruction_loss,
)
from keras_robult.losses.soft_pu import (
    cosine_similarity_matrix,
    soft_pu_loss,
)
from keras_robult.models.multimodal_model import MultimodalModel
from keras_robult.tasks.classification import Classification
from keras_robult.tasks.regression import Regression
from keras_robult.utils.validation import MASK_KEY, check_arrays

if TYPE_CHECKING:
    from keras_robult.tasks import Task

# L_pseudo (self-training, not in the paper) is opt-in; the late fusion is
# the product of experts by default (chosen on mfeat's validation split,
# benchmarks/RESULTS.md). PAPER_OPTIONS give the paper's exact method.
DEFAULT_LOSS_WEIGHTS = {
    "lb": 1.0,
    "ulb": 1.0,
    "rec": 1.0,
    "sup": 1.0,
    "pseudo": 0.0,
    "consistency": 0.0,
}
#: `Robult(..., **PAPER_OPTIONS)` is the paper's objective and prediction
#: rule: no self-training or consistency term, late fusion by the mean of
#: probabilities.
PAPER_OPTIONS = {
    "loss_weights": {"pseudo": 0.0, "consistency": 0.0},
    "late_fusion": "mean",
    "full_set": "fused",
    "min_fused_modalities": None,
    "linear_base": False,
}
LOSS_TERMS = tuple(DEFAULT_LOSS_WEIGHTS)
FULL_SET_MODES = ("fused", "late", "mean")
FUSION_POOLINGS = ("attention", "concat")
LATE_FUSION_RULES = ("mean", "product")


@keras.saving.register_keras_serializable(package="keras_robult")
class Robult(MultimodalModel):
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
    `L_PU + lambda_rec L_rec + lambda_sup L_sup + lambda_pseudo L_pseudo`
    with `L_PU = mean_m(lambda_lb L_lb^m + lambda_ulb L_ulb^m)`, the soft
    positive-unlabeled contrastive loss between `S` and each `Z^m`
    (`keras_robult.losses.soft_pu_loss`), the latent reconstruction loss
    (`keras_robult.losses.latent_reconstruction_loss`) and the task loss of
    every branch on the labeled samples. Gradients are routed as in the
    paper (section 2.3): `L_PU` reaches `f^m, f^0, g^0` only, `L_rec`
    reaches `g^m, r^m` only, `L_sup` reaches everything.

    Two terms beyond the paper are off by default: `L_pseudo`
    (`loss_weights={"pseudo": 1.0}`, self-training of the unimodal branches
    on the model's own confident predictions) and `L_cons`
    (`loss_weights={"consistency": 1.0}`, the fused branch on a random
    proper subset of each sample's modalities). Two prediction rules differ
    from the paper by default, neither changing training: `late_fusion`
    (product of experts, not the mean of probabilities) and
    `min_fused_modalities` / `full_set` (the fused branch joins every sample
    with two or more modalities). **The paper's exact method** is one
    argument away: `Robult(..., **keras_robult.models.robult.PAPER_OPTIONS)`
    (`robult-paper` in `robult train`). Why each default, and the
    validation numbers behind it: `docs/concepts.md`.

    Prediction is per sample, from whatever modalities it has: with at
    least `min_fused_modalities` present (all of them when None), the
    `full_set` rule (by default the mean of the fused branch and the late
    fusion); otherwise the late fusion of the present branches
    (`late_fusion`: their product of experts, or the paper's mean of
    branch outputs in the task output space).
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
        redundant_dim: int, width `d_z` of `S` and `Z^m`. Defaults to half
            of `latent_dim` (rounded up), or `latent_dim - unique_dim`.
        unique_dim: int, width `d_u` of `U^m`; `d_u + d_z` must equal `d`.
            Defaults to the rest of `latent_dim`.
        temperature: float, `tau` of the PU contrastive loss (default
            chosen on a validation split of mfeat: `docs/concepts.md`).
        rbf_bandwidth: float, `sigma` of the RBF weight on the cosine scale.
        loss_weights: dict with any of the keys `"lb"`, `"ulb"`, `"rec"`,
            `"sup"` (default 1.0 each; 0 switches a term off: the ablations
            of the paper's Table 3), `"pseudo"` (default 0.0, the
            self-training term described above) and `"consistency"`
            (default 0.0, the fused-branch consistency term below).
        head_units: int, hidden width of the `g^0`, `g^m` and `r^m` MLPs.
            Defaults to `latent_dim`.
        dropout: float, dropout rate in the heads and the fusion encoder.
        full_set: `"mean"` (default), `"fused"` (the paper) or `"late"`:
            the prediction of a sample with at least
            `min_fused_modalities` present is the mean of the fused branch
            and the late fusion, the fused branch, or the late fusion.
        min_fused_modalities: int >= 1 or None: the fewest present
            modalities for which `full_set` applies (default 2; capped at
            the number of modalities); below it the late fusion predicts.
            None: only when every modality is present (the paper).
        min_pair_probability: float, soft same-class probabilities below it
            are set to 0 in `L_ulb`.
        fusion_pooling: `"attention"` or `"concat"`, the pooling of the
            default `FusionEncoder` (ignored when `fusion` is given).
        pseudo_threshold: float in `[0, 1]`, the confidence a pseudo-label
            needs to enter `L_pseudo` (see `Task.pseudo_labels`; default
            chosen on mfeat's validation split: `docs/concepts.md`).
        late_fusion: how the present branches' outputs combine where the
            fused branch does not predict: `"product"` (default; product of
            experts: the normalised geometric mean of the branches'
            probabilities, i.e. the activation of the mean of
            `Task.log_scores`; for regression the mean of values) or
            `"mean"` (the paper's rule: mean of probabilities for
            classification and multi-label, of values for regression). It
            also gives the soft targets of unlabeled samples that miss a
            modality and the `L_pseudo` teacher.
        seed: int or None, seeds the modality subsets of `L_cons`.
        linear_base: bool (regression and classification). Adds a
            `LinearBase` (a ridge regression, for classification a
            cross-validated logistic regression, per presence pattern,
            fitted by `fit_linear_base` on the labeled samples, not trained)
            to every branch's logits, with the task head starting at zero:
            the network learns the residual of the linear model. With a
            few dozen labels this keeps regression at least as good as
            ridge (`benchmarks/RESULTS.md`); pair it with `full_set="fused"`
            (the fused branch holds the joint linear model of each pattern)
            and early stopping on held-out labeled samples. Defaults to
            `False`.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: dict with one tensor per modality (first axis = batch) and
            optionally `"modality_mask"`, float `(batch, M)`, 1 = present
            (default: all present).
        training: bool.

    Returns:
        From `call` and `predict`, a dict with
        `prediction` `(batch, output_dim)` (for a sample with no modality
        present: the training-label prior, see `set_label_prior`);
        `num_modalities` `(batch,)` int32, the present count;
        `fused_prediction`
        `(batch, output_dim)`; `modality_predictions` `(batch, M,
        output_dim)`; `fused_logits`, `modality_logits` (raw head outputs);
        `fused_latent` `H^0` `(batch, d)`; `modality_latents` `H^m`
        `(batch, M, d)`; `shared` `S` `(batch, d_z)`; `redundant` `Z^m`
        `(batch, M, d_z)`; `unique` `U^m` `(batch, M, d_u)`;
        `reconstruction` `r^m` output `(batch, M, d)`.

    Targets for `fit` / `evaluate`: a dict `{"label": ..., "is_labeled":
    ...}` (an unlabeled sample carries any placeholder label and
    `is_labeled = 0`), or plain labels (all labeled), or none at all (all
    unlabeled). A `sample_weight` weights each labeled sample in `L_sup`
    and in the task metric (weighted means); the unsupervised terms treat
    every sample alike.

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
        encoders: Mapping[str, keras.layers.Layer],
        task: Task,
        fusion: keras.layers.Layer | None = None,
        latent_dim: int = 128,
        redundant_dim: int | None = None,
        unique_dim: int | None = None,
        temperature: float = 1.0,
        rbf_bandwidth: float = 0.3,
        loss_weights: Mapping[str, float] | None = None,
        head_units: int | None = None,
        dropout: float = 0.0,
        full_set: str = "mean",
        min_pair_probability: float = 0.0,
        fusion_pooling: str = "attention",
        pseudo_threshold: float = 0.97,
        late_fusion: str = "product",
        seed: int | None = None,
        min_fused_modalities: int | None = 2,
        linear_base: bool = False,
        **kwargs,
    ):
        super().__init__(encoders, task, latent_dim=latent_dim, **kwargs)
        redundant_dim, unique_dim = _latent_split(
            latent_dim, redundant_dim, unique_dim
        )
        _check_options(
            temperature=temperature,
            rbf_bandwidth=rbf_bandwidth,
            loss_weights=dict(loss_weights or {}),
            pseudo_threshold=pseudo_threshold,
            min_pair_probability=min_pair_probability,
            dropout=dropout,
            fusion_pooling=None if fusion is not None else fusion_pooling,
            late_fusion=late_fusion,
            min_fused_modalities=min_fused_modalities,
            full_set=full_set,
        )
        loss_weights = dict(loss_weights or {})
        self.redundant_dim = int(redundant_dim)
        self.unique_dim = int(unique_dim)
        self.temperature = float(temperature)
        self.rbf_bandwidth = float(rbf_bandwidth)
        self.loss_weights = {
            key: float(loss_weights.get(key, DEFAULT_LOSS_WEIGHTS[key]))
            for key in LOSS_TERMS
        }
        self.head_units = int(head_units or latent_dim)
        self.dropout = float(dropout)
        self.full_set = full_set
        self.min_pair_probability = float(min_pair_probability)
        self.pseudo_threshold = float(pseudo_threshold)
        self.late_fusion = late_fusion
        self.min_fused_modalities = (
            None if min_fused_modalities is None else int(min_fused_modalities)
        )
        self.seed = seed
        # Only a model with the consistency term draws modality subsets (a
        # model without it keeps the variables of earlier releases).
        self.seed_generator = (
            keras.random.SeedGenerator(seed)
            if self.loss_weights["consistency"] > 0
            else None
        )

        self.fusion_pooling = fusion_pooling
        self.linear_base = bool(linear_base)
        if self.linear_base and not isinstance(
            task, (Regression, Classification)
        ):
            raise ValueError(
                "`linear_base` is for regression and classification; the "
                f"task is {type(task).__name__}."
            )
        self._make_layers(fusion, task)
        self._make_loss_trackers()

    def _make_layers(self, fusion, task):
        """`f^0`, `g^0`, the `g^m`, the `r^m` and the task head `c`."""
        self.fusion = fusion or FusionEncoder(
            self.latent_dim,
            hidden_units=(self.head_units,),
            dropout=self.dropout,
            pooling=self.fusion_pooling,
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
        # With the linear base, the network starts from ridge regression.
        self.task_head = keras.layers.Dense(
            task.output_dim,
            kernel_initializer="zeros"
            if self.linear_base
            else "glorot_uniform",
            name="task_head",
        )
        self.base = (
            LinearBase(
                self.num_modalities,
                task.output_dim,
                loss="logistic"
                if isinstance(task, Classification)
                else "squared",
                name="linear_base",
            )
            if self.linear_base
            else None
        )

    def _make_loss_trackers(self):
        self.lb_loss_tracker = keras.metrics.Mean(name="loss_lb")
        self.ulb_loss_tracker = keras.metrics.Mean(name="loss_ulb")
        self.rec_loss_tracker = keras.metrics.Mean(name="loss_rec")
        self.sup_loss_tracker = keras.metrics.Mean(name="loss_sup")
        self.pseudo_loss_tracker = keras.metrics.Mean(name="loss_pseudo")
        self.consistency_loss_tracker = keras.metrics.Mean(
            name="loss_consistency"
        )

    # ------------------------------------------------------------------ call
    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        mask = self._modality_mask(inputs)
        latents = self.encode(inputs, mask)  # H^m: (B, M, d)

        fused_latent = self.fusion(latents, mask)  # (B, d)
        shared = self.shared_head(fused_latent)  # S: (B, d_z)
        redundant = self.shared_head(latents)  # Z^m: (B, M, d_z)
        unique = self.unique_heads(latents)  # U^m: (B, M, d_u)

        fused_logits = self.task_head(fused_latent)
        modality_logits = self.task_head(
            ops.concatenate([unique, redundant], axis=-1)
        )
        if self.base is not None:
            base = self.base(
                [inputs[name] for name in self.modalities], mask
            )  # (B, 2**M, out): every pattern's ridge prediction
            fused_logits = fused_logits + ops.cast(
                self.base.select(base, mask), fused_logits.dtype
            )
            alone = ops.stack(  # pattern 2**m: modality m alone
                [base[:, 2**m] for m in range(self.num_modalities)], axis=1
            )
            modality_logits = modality_logits + ops.cast(
                alone, modality_logits.dtype
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

        late = self.fuse_late(modality_logits, mask)
        if self.full_set == "fused":
            full = fused_prediction
        elif self.full_set == "late":
            full = late
        else:
            full = 0.5 * (fused_prediction + late)
        # None, or above M (a one-modality model): every modality.
        fewest = min(
            self.min_fused_modalities or self.num_modalities,
            self.num_modalities,
        )
        count = ops.sum(ops.cast(mask > 0.5, "float32"), axis=-1)
        prediction = ops.where(count[:, None] >= fewest, full, late)

        outputs = {
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
        if training and self.seed_generator is not None:
            # L_cons student: the fused branch on a random proper subset of
            # each sample's present modalities.
            subset_mask = self.random_subset_mask(mask)
            outputs["subset_mask"] = subset_mask
            subset_logits = self.task_head(
                self.fusion(latents, subset_mask, training=training)
            )
            if self.base is not None:
                subset_logits = subset_logits + ops.cast(
                    self.base.select(base, subset_mask), subset_logits.dtype
                )
            outputs["subset_fused_logits"] = subset_logits
        return self.with_fallback(outputs, mask, inputs)

    def fit_linear_base(self, x, y, is_labeled=None):
        """Fits the `LinearBase` (`linear_base=True`) on the labeled
        samples of `x` (dict of arrays, optionally with
        `"modality_mask"`) and `y` (labels; `is_labeled` optional 0/1
        flags, default every sample). Call it before `fit` (the network
        learns the residual of this base) and, if you like, again after
        it on more labeled samples (e.g. with the ones early stopping
        held out)."""
        if self.base is None:
            raise ValueError(
                "This model has no linear base; build it with "
                "`linear_base=True`."
            )
        x = {key: np.asarray(value) for key, value in x.items()}
        missing = [m for m in self.modalities if m not in x]
        if missing:
            raise ValueError(
                f"`x` has no modality {missing}; the model's are "
                f"{list(self.modalities)}."
            )
        # Lengths, the mask, NaN in present modalities (read as missing,
        # as `call` does): the checks every input of the package gets.
        check_arrays(
            x, None, self.modalities, allow_empty_rows=True, lenient=True
        )
        count = len(x[self.modalities[0]])
        if np.shape(y)[:1] != (count,):
            raise ValueError(
                f"`y` has {np.shape(y)[0] if np.ndim(y) else 0} labels; "
                f"`x` has {count} samples."
            )
        labels = np.asarray(y, "float64").reshape(count, -1)
        keep = (
            np.ones(count, bool)
            if is_labeled is None
            else np.asarray(is_labeled).reshape(-1) > 0
        )
        if not keep.any():
            raise ValueError("`fit_linear_base` needs labeled samples.")
        if not np.all(np.isfinite(labels[keep])):
            raise ValueError("`fit_linear_base`: a label is NaN or inf.")
        mask = np.asarray(
            x.get(MASK_KEY, np.ones((count, self.num_modalities)))
        )
        for name in self.modalities:
            if x[name].dtype.kind not in "biuf":
                raise ValueError(
                    f"The linear base takes numbers; modality '{name}' "
                    f"holds {x[name].dtype}."
                )
        inputs = [x[name][keep] for name in self.modalities]
        finite = np.stack(
            [
                np.isfinite(v.reshape(len(v), -1).astype("float64")).all(1)
                for v in inputs
            ],
            axis=1,
        )  # NaN in a modality: treated as missing, as `call` does
        present = (mask[keep] > 0.5) & finite
        if not present.any(axis=1).all():
            raise ValueError(
                "`fit_linear_base`: a labeled sample has no modality."
            )
        inputs = [
            np.where(present[:, [m]], v.reshape(len(v), -1), 0.0)
            for m, v in enumerate(inputs)
        ]
        targets = labels[keep]
        if isinstance(self.task, Regression):
            targets = np.asarray(self.task.standardize(targets))
        self.base.adapt(inputs, targets, present)

    def random_subset_mask(self, mask):
        """`(batch, M)` float mask keeping `k` random present modalities
        per sample, `k` uniform in `1..n-1` for a sample with `n >= 2`
        present (a proper, non-empty subset), the only one when `n = 1`."""
        present = ops.cast(mask > 0.5, "float32")
        count = ops.sum(present, axis=-1, keepdims=True)
        rank = self.present_first_ranks(present, self.seed_generator)
        draw = keras.random.uniform(ops.shape(count), seed=self.seed_generator)
        keep = 1.0 + ops.floor(draw * ops.maximum(count - 1.0, 1.0))
        return ops.cast(ops.cast(rank, "float32") < keep, "float32") * present

    # ------------------------------------------------------------------ loss
    @global_batch_loss
    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """Total Robult loss; records each term in the `loss_*` metrics."""
        labels, is_labeled = self.unpack_targets(x, y)
        mask = self._modality_mask(x)
        loss_sup = self.supervised_loss(
            labels, is_labeled, mask, y_pred, sample_weight
        )
        loss_lb, loss_ulb = self.pu_loss(labels, is_labeled, mask, y_pred)
        loss_rec = self.reconstruction_loss(mask, y_pred)
        loss_pseudo = self.pseudo_label_loss(is_labeled, mask, y_pred)
        loss_consistency = self.consistency_loss(labels, is_labeled, y_pred)
        w = self.loss_weights
        values = {
            "lb": loss_lb,
            "ulb": loss_ulb,
            "rec": loss_rec,
            "sup": loss_sup,
            "pseudo": loss_pseudo,
            "consistency": loss_consistency,
        }
        total = w[LOSS_TERMS[0]] * values[LOSS_TERMS[0]]
        for key in LOSS_TERMS[1:]:  # in the order of DEFAULT_LOSS_WEIGHTS
            total = total + w[key] * values[key]
        total = total + self.regularization_loss()
        for key, tracker in self._loss_trackers().items():
            if w[key]:  # a term that is off is not logged
                tracker.update_state(ops.stop_gradient(values[key]))
        return total

    def _loss_trackers(self):
        return {
            "lb": self.lb_loss_tracker,
            "ulb": self.ulb_loss_tracker,
            "rec": self.rec_loss_tracker,
            "sup": self.sup_loss_tracker,
            "pseudo": self.pseudo_loss_tracker,
            "consistency": self.consistency_loss_tracker,
        }

    @property
    def metrics(self):
        # The `loss_*` terms whose weight is 0 are left out of the logs:
        # an unweighted value of a term that is off reads as active.
        off = {
            id(tracker)
            for key, tracker in self._loss_trackers().items()
            if not self.loss_weights[key]
        }
        return [m for m in super().metrics if id(m) not in off]

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
        weight = self.supervised_weights(is_labeled, sample_weight)
        available = ops.concatenate(
            [ops.max(present, axis=-1, keepdims=True), present], axis=1
        )
        return self.branch_supervised_loss(labels, weight, logits, available)

    def pseudo_label_loss(self, is_labeled, mask, y_pred):
        """`L_pseudo`: the task loss of the unimodal branches on the
        unlabeled samples (mean over branches of the mean over samples
        where the modality is present), against the hard pseudo-label of
        the ensemble prediction (fused and late fusion averaged when every
        modality is present, late fusion otherwise), where its confidence
        reaches `pseudo_threshold`. The teacher is under stop-gradient. The
        fused branch is left out: trained on its own pseudo-labels it
        drifted into confirmation bias on mfeat."""
        is_labeled = ops.cast(is_labeled, "float32")
        mask = ops.cast(mask, "float32")
        late = self.fuse_late(y_pred["modality_logits"], mask)
        teacher = self.where_all_present(
            mask, 0.5 * (y_pred["fused_prediction"] + late), late
        )
        pseudo, confidence = self.task.pseudo_labels(ops.stop_gradient(teacher))
        weight = (1.0 - is_labeled) * ops.cast(
            confidence >= self.pseudo_threshold, "float32"
        )
        return self.branch_supervised_loss(
            ops.stop_gradient(pseudo),
            weight,
            y_pred["modality_logits"],
            ops.cast(mask > 0.5, "float32"),
        )

    def consistency_loss(self, labels, is_labeled, y_pred):
        """`L_cons`: the task loss of the fused branch on a random proper
        subset of each sample's modalities (`subset_fused_logits`, drawn
        in `call` when training), against the label of a labeled sample
        and, on an unlabeled one, the hard pseudo-label of the fused branch
        on all the sample's modalities (under stop-gradient) where its
        confidence reaches `pseudo_threshold`; averaged over the samples
        that have a target. 0 outside training (no subset is drawn)."""
        if "subset_fused_logits" not in y_pred:
            return ops.zeros(())
        is_labeled = ops.cast(is_labeled, "float32")
        pseudo, confidence = self.task.pseudo_labels(
            ops.stop_gradient(y_pred["fused_prediction"])
        )
        confident = ops.cast(confidence >= self.pseudo_threshold, "float32")
        targets = ops.where(
            self.per_row(is_labeled > 0.5, labels),
            ops.cast(labels, pseudo.dtype),
            ops.stop_gradient(pseudo),
        )
        weight = is_labeled + (1.0 - is_labeled) * confident
        return self.branch_supervised_loss(
            targets,
            weight,
            y_pred["subset_fused_logits"][:, None],
            ops.max(y_pred["subset_mask"], axis=-1)[:, None],
        )

    def fuse_late(self, modality_logits, mask):
        """Late fusion `(batch, output_dim)` of the present branches, from
        their raw outputs `(batch, M, output_dim)`, by the `late_fusion`
        rule."""
        if self.late_fusion == "mean":
            return self.mean_over_present(
                self.task.activation(modality_logits), mask
            )
        return self.task.activation(
            self.mean_over_present(self.task.log_scores(modality_logits), mask)
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
        pseudo = self.where_all_present(
            mask,
            y_pred["fused_prediction"],
            self.fuse_late(y_pred["modality_logits"], mask),
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
        # One (B, d_z) x (d_z, B) product per modality, passed as a list:
        # XLA:CPU runs the gradient of the broadcast batched product about
        # twice slower, and that of slices of a stacked tensor pads each
        # slice's gradient back to (M, B, B).
        # One split, not M indexings (whose gradients are zero-padded
        # copies of the whole (B, M, d_z) tensor).
        similarity = [
            cosine_similarity_matrix(y_pred["shared"], ops.squeeze(keys, 1))
            for keys in ops.split(
                y_pred["redundant"], self.num_modalities, axis=1
            )
        ]
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

    # ---------------------------------------------------------- serialising
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "fusion": keras.layers.serialize(self.fusion),
                "redundant_dim": self.redundant_dim,
                "unique_dim": self.unique_dim,
                "temperature": self.temperature,
                "rbf_bandwidth": self.rbf_bandwidth,
                "loss_weights": dict(self.loss_weights),
                "head_units": self.head_units,
                "dropout": self.dropout,
                "full_set": self.full_set,
                "min_pair_probability": self.min_pair_probability,
                "pseudo_threshold": self.pseudo_threshold,
                "fusion_pooling": self.fusion_pooling,
                "late_fusion": self.late_fusion,
                "seed": self.seed,
                "min_fused_modalities": self.min_fused_modalities,
                "linear_base": self.linear_base,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["fusion"] = keras.layers.deserialize(config["fusion"])
        return super().from_config(config)


def _latent_split(latent_dim, redundant_dim, unique_dim):
    """`(redundant_dim, unique_dim)`, the defaults filled in (half of the
    latent width each, the redundant part rounded up); their sum must be
    `latent_dim`."""
    if redundant_dim is None:
        redundant_dim = (
            latent_dim - unique_dim
            if unique_dim is not None
            else latent_dim - latent_dim // 2
        )
    if unique_dim is None:
        unique_dim = latent_dim - redundant_dim
    if unique_dim + redundant_dim != latent_dim:
        raise ValueError(
            "The task head is shared by the fused branch (input H^0 of "
            "width latent_dim) and the unimodal branches (input [U^m, "
            "Z^m] of width unique_dim + redundant_dim), so "
            "unique_dim + redundant_dim must equal latent_dim; received "
            f"unique_dim={unique_dim}, redundant_dim={redundant_dim}, "
            f"latent_dim={latent_dim}."
        )
    return redundant_dim, unique_dim


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {choices}; received {value!r}."
        )


def _check_options(
    temperature,
    rbf_bandwidth,
    loss_weights,
    pseudo_threshold,
    min_pair_probability,
    dropout,
    fusion_pooling,
    late_fusion,
    min_fused_modalities,
    full_set,
):
    """Raises a `ValueError` naming the first of Robult's arguments that is
    out of its range (`fusion_pooling` None: a custom fusion layer)."""
    for name, value in (
        ("temperature", temperature),
        ("rbf_bandwidth", rbf_bandwidth),
    ):
        if not value > 0:
            raise ValueError(f"`{name}` must be positive; received {value!r}.")
    unknown = set(loss_weights) - set(LOSS_TERMS)
    if unknown:
        raise ValueError(
            f"Unknown `loss_weights` keys {sorted(unknown)}; valid keys "
            f"are {list(LOSS_TERMS)}."
        )
    for name, value in (
        ("pseudo_threshold", pseudo_threshold),
        ("min_pair_probability", min_pair_probability),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1]; received {value!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1); received {dropout!r}.")
    if fusion_pooling is not None:
        _check_choice("fusion_pooling", fusion_pooling, FUSION_POOLINGS)
    _check_choice("late_fusion", late_fusion, LATE_FUSION_RULES)
    if min_fused_modalities is not None and not (
        isinstance(min_fused_modalities, int) and min_fused_modalities >= 1
    ):
        raise ValueError(
            "`min_fused_modalities` must be None or an int >= 1; "
            f"received {min_fused_modalities!r}."
        )
    _check_choice("full_set", full_set, FULL_SET_MODES)
