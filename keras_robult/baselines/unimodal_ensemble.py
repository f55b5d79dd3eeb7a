import keras
from keras import ops

from keras_robult.distribution import global_batch_loss
from keras_robult.models.multimodal_model import MultimodalModel


@keras.saving.register_keras_serializable(package="keras_robult")
class UnimodalEnsemble(MultimodalModel):
    """The Unimodal baseline: one supervised model per modality.

    Modality `m` has its own encoder and its own task head; each is trained
    with the task loss on the labeled samples only (the sum over modalities
    of independent losses gives independent gradients, so one Keras model
    trains all of them at once). Any subset predicts by late fusion of the
    present modalities' outputs (mean in the task output space).

    Args:
        encoders: dict, modality name -> Keras layer producing a vector.
        task: a `keras_robult.tasks.Task`.
        latent_dim: int, width the encoder outputs are projected to.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        inputs: dict of modality tensors plus `"modality_mask"`.
        training: bool.

    Returns:
        a dict with `prediction` `(batch, output_dim)` (the late fusion
        of the present modalities), `modality_logits`,
        `modality_predictions` `(batch, M, output_dim)` and
        `num_modalities` `(batch,)`.

    Example:

    ```python
    model = keras_robult.baselines.UnimodalEnsemble(
        {"a": keras_robult.encoders.MLPEncoder(64),
         "b": keras_robult.encoders.MLPEncoder(64)},
        keras_robult.tasks.Classification(3),
        latent_dim=64,
    )
    ```
    """

    def __init__(self, encoders, task, latent_dim=128, **kwargs):
        super().__init__(encoders, task, latent_dim=latent_dim, **kwargs)
        self.heads = {
            name: keras.layers.Dense(task.output_dim, name=f"head_{name}")
            for name in self.modalities
        }
        self.sup_loss_tracker = keras.metrics.Mean(name="loss_sup")

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        mask = self._modality_mask(inputs)
        latents = self.encode(inputs, mask)
        logits = ops.stack(
            [
                self.heads[name](latents[:, index])
                for index, name in enumerate(self.modalities)
            ],
            axis=1,
        )
        predictions = self.task.activation(logits)
        outputs = {
            "prediction": self.mean_over_present(predictions, mask),
            "modality_logits": logits,
            "modality_predictions": predictions,
        }
        return self.with_fallback(outputs, mask, inputs)

    @global_batch_loss
    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        labels, is_labeled = self.unpack_targets(x, y)
        present = ops.cast(self._modality_mask(x) > 0.5, "float32")
        # Sum over modalities of each model's own mean loss.
        loss = self.branch_supervised_loss(
            labels,
            self.supervised_weights(is_labeled, sample_weight),
            y_pred["modality_logits"],
            present,
        ) * float(self.num_modalities)
        self.sup_loss_tracker.update_state(ops.stop_gradient(loss))
        return loss + self.regularization_loss()
