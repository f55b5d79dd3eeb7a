"""Robult in the evaluation protocol."""

from keras_robult.experiments.method import Method, stage_backup_dir
from keras_robult.models.robult import Robult


class RobultMethod(Method):
    """Robult in the evaluation protocol (also its Table 3 ablations).

    Args:
        task, input_shapes, statistics, latent_dim, learning_rate,
            jit_compile, encoder_dropout, weight_decay, ema_momentum,
            patience, modality_dropout: see `Method`.
        loss_weights: dict of Robult loss weights (ablations set one to 0).
        probe: bool, after training, freeze everything but the task head
            and fit it alone on the labeled samples (the "no L_sup +
            logistic regression on the latents" ablation).
        probe_epochs: int, epochs of that probe.
        **model_kwargs: further `Robult` arguments (`temperature`,
            `rbf_bandwidth`, `dropout`, ...).
    """

    name = "robult"

    def __init__(
        self,
        task,
        input_shapes,
        statistics=None,
        latent_dim=128,
        learning_rate=1e-3,
        jit_compile="auto",
        encoder_dropout=0.0,
        weight_decay=0.0,
        ema_momentum=None,
        loss_weights=None,
        probe=False,
        probe_epochs=200,
        patience=10,
        modality_dropout=0.0,
        **model_kwargs,
    ):
        super().__init__(
            task,
            input_shapes,
            statistics,
            latent_dim=latent_dim,
            learning_rate=learning_rate,
            jit_compile=jit_compile,
            encoder_dropout=encoder_dropout,
            weight_decay=weight_decay,
            ema_momentum=ema_momentum,
            patience=patience,
            modality_dropout=modality_dropout,
        )
        self.loss_weights = loss_weights
        self.probe = probe
        self.probe_epochs = probe_epochs
        self.model_kwargs = model_kwargs
        self.model = None

    def build_model(self):
        half = self.latent_dim // 2
        kwargs = dict(redundant_dim=half, unique_dim=self.latent_dim - half)
        kwargs.update(self.model_kwargs)
        return Robult(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            latent_dim=self.latent_dim,
            loss_weights=self.loss_weights,
            **kwargs,
        )

    @property
    def monitor_task_metric(self):
        return not self.probe

    def after_fit(self, x, y, batch_size, seed, verbose, backup_dir):
        # Linear probe: the task head alone, on the labeled samples (the
        # latents are frozen, so this is a logistic regression on them).
        if self.probe:
            self.fit_head_alone(
                self.model.task_head,
                (x, y, batch_size, seed),
                self.probe_epochs,
                "    linear probe on the latents" if verbose else None,
                stage_backup_dir(backup_dir, "probe"),
            )
