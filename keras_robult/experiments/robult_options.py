"""Robult's options in the evaluation protocol."""

import dataclasses
from typing import Any

from keras_robult.experiments.method_options import MethodOptions


@dataclasses.dataclass(frozen=True)
class RobultOptions(MethodOptions):
    """`RobultMethod`'s keyword options: `MethodOptions` and these.

    Args:
        loss_weights: dict of Robult loss weights (ablations set one to 0).
        probe: bool, after training, freeze everything but the task head
            and fit it alone on the labeled samples (the "no L_sup +
            logistic regression on the latents" ablation).
        probe_epochs: int, epochs of that probe.
        validation_fraction: float in [0, 1), with the linear base and no
            validation split from the protocol: this share of the labeled
            training samples is held out of `L_sup` (they stay in training
            as unlabeled samples) for early stopping with the best weights
            restored. Defaults to `0.2`.
        retrain: bool, after that early stopping, train again from the
            start, base included, on every labeled sample for the epochs
            early stopping chose (where False, the base alone is fitted
            again on every labeled sample). Defaults to `True`.
        view_alignment: True, False or `"auto"`: whether the soft-PU
            alignment of the views (`L_lb`, `L_ulb`) trains; `"auto"`
            decides from the training inputs (off for classification
            where the views share no information: `view_redundancy`).

    Example:

    ```python
    from keras_robult.experiments import RobultOptions

    options, model_kwargs = RobultOptions.split(
        {"latent_dim": 64, "probe": True, "temperature": 0.5}
    )
    assert (options.latent_dim, options.probe) == (64, True)
    assert model_kwargs == {"temperature": 0.5}
    ```
    """

    loss_weights: Any = None
    probe: bool = False
    probe_epochs: int = 200
    validation_fraction: float = 0.2
    retrain: bool = True
    view_alignment: Any = "auto"
