import keras
from keras import ops

from keras_robult.distribution import global_batch_loss
from keras_robult.encoders.mlp_encoder import MLPEncoder
from keras_robult.models.multimodal_model import MultimodalModel


@keras.saving.register_keras_serializable(package="keras_robult")
class EarlyFusionMLP(MultimodalModel):
    """The supervised reference a practitioner writes first: one MLP on
    the concatenation of every modality's features and the modality mask.

    Each modality goes through its encoder (in `robult train`: the
    standardisation of the training split, flattened), is set to zero
    where the modality is missing, and is concatenated with the others
    and with the `(batch, M)` mask; `hidden_units` ReLU layers (with
    `dropout`) and a Dense task head follow. It trains with the task loss
    on the labeled samples only; trained with modality dropout (the
    pipeline's `modality_dropout`), it predicts from any subset. It uses
    no unlabeled sample: a semi-supervised method earns its place only by
    beating it.

    Args:
        encoders: dict, modality name -> Keras layer producing a vector
            `(batch, features)` (e.g. `keras.layers.Flatten()`).
        task: a `keras_robult.tasks.Task`.
        hidden_units: tuple of int, widths of the hidden layers.
        dropout: float, dropout after each hidden layer.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        inputs: dict of modality tensors plus `"modality_mask"`.
        training: bool.

    Returns:
        a dict with `prediction` `(batch, output_dim)`, `logits` and
        `num_modalities` `(batch,)`.

    Example:

    ```python
    model = keras_robult.baselines.EarlyFusionMLP(
        {"a": keras.layers.Flatten(), "b": keras.layers.Flatten()},
        keras_robult.tasks.Regression(),
    )
    ```
    """

    def __init__(
        self, encoders, task, hidden_units=(256, 256), dropout=0.1, **kwargs
    ):
        kwargs.pop("latent_dim", None)  # no shared latent space
        super().__init__(encoders, task, **kwargs)
        self.projections = {}  # the features enter as they are
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.dropout = float(dropout)
        self.network = MLPEncoder(
            task.output_dim,
            hidden_units=self.hidden_units,
            activation="relu",
            dropout=self.dropout,
            normalize=False,
            name="network",
        )
        self.sup_loss_tracker = keras.metrics.Mean(name="loss_sup")

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        mask = self._modality_mask(inputs)
        features = []
        for index, name in enumerate(self.modalities):
            x = inputs[name]
            present = mask[:, index]
            # A missing modality: zeros in (its values, even NaN, are never
            # read) and zeros out, whatever the encoder makes of zeros.
            x = ops.where(self.per_row(present > 0.5, x), x, ops.zeros_like(x))
            encoded = self.encoders[name](x)
            features.append(encoded * ops.cast(present, encoded.dtype)[:, None])
        logits = self.network(
            ops.concatenate([*features, mask], axis=-1), training=training
        )
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
        available = ops.max(self._modality_mask(x), axis=-1, keepdims=True)
        loss = self.branch_supervised_loss(
            labels,
            self.supervised_weights(is_labeled, sample_weight),
            y_pred["logits"][:, None],
            available,
        )
        self.sup_loss_tracker.update_state(ops.stop_gradient(loss))
        return loss + self.regularization_loss()

    def get_config(self):
        config = super().get_config()
        config.pop("latent_dim", None)
        config.update(
            {"hidden_units": list(self.hidden_units), "dropout": self.dropout}
        )
        return config
