import functools

import keras

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
        if self.probe:
            self._fit_probe(
                x,
                y,
                batch_size,
                seed,
                verbose,
                stage_backup_dir(backup_dir, "probe"),
            )

    def _fit_probe(self, x, y, batch_size, seed, verbose, backup_dir=None):
        """Linear probe: the task head alone, on the labeled samples (the
        latents are frozen, so this is a logistic regression on them)."""
        model = self.model
        for layer in model.layers:
            layer.trainable = layer is model.task_head
        model.loss_weights = {key: 0.0 for key in model.loss_weights}
        model.loss_weights["sup"] = 1.0
        model.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            jit_compile=self.step_jit_compile,
        )
        self.train(
            functools.partial(
                self.dataset, x, y, batch_size, seed, labeled_only=True
            ),
            self.probe_epochs,
            "    linear probe on the latents" if verbose else None,
            backup_dir=backup_dir,
        )
