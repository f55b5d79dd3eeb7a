"""The options every method of the comparison takes."""

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class MethodOptions:
    """The hyper-parameters every `Method` takes as keyword arguments,
    with their defaults. A method with options of its own declares a
    subclass (`RobultOptions`) as its `options_type`.

    Args:
        latent_dim: int, width of the encoders' output.
        learning_rate: float, Adam learning rate.
        jit_compile: bool or "auto".
        encoder_dropout: float, dropout inside the default encoders.
        weight_decay: float, decoupled weight decay (AdamW) when positive.
        ema_momentum: float or None; when set, the optimizer keeps an
            exponential moving average of the weights, which replaces them
            at the end of training (Keras `use_ema`).
        patience: int, epochs without improvement of the validation metric
            before early stopping (runs with a validation split only).
        modality_dropout: float in [0, 1), augmentation: the training
            pipeline drops each present modality of a sample with this
            probability, at least one kept, new draws every epoch
            (`make_dataset`).
        epochs: int or None, this method's own epoch budget, replacing the
            comparison's (`--hparams` with a tuned `epochs`); None: the
            comparison's.
        min_steps: int or None, the fewest optimizer steps of a training
            stage: on small data (a few dozen samples, one batch an
            epoch) the epochs are raised to reach it (`epochs_for`).

    Example:

    ```python
    from keras_robult.experiments import MethodOptions, RobultMethod

    assert RobultMethod.options_type().latent_dim == 128
    assert "learning_rate" in MethodOptions.names()
    ```
    """

    latent_dim: int = 128
    learning_rate: float = 1e-3
    jit_compile: Any = "auto"
    encoder_dropout: float = 0.0
    weight_decay: float = 0.0
    ema_momentum: float | None = None
    patience: int = 10
    modality_dropout: float = 0.0
    epochs: int | None = None
    min_steps: int | None = None

    @classmethod
    def names(cls):
        """The options' names, in declaration order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def split(cls, options):
        """`(cls(**known), others)`: the keyword arguments `options` that
        are this class's fields, as an instance, and the rest as a dict."""
        names = set(cls.names())
        known = {k: v for k, v in options.items() if k in names}
        return cls(**known), {
            k: v for k, v in options.items() if k not in names
        }
