"""`TuneConfig`: what one `robult tune` search runs, checked when made."""

import dataclasses
import datetime
import importlib.util
import os

from keras_robult.experiments.protocol.options import DEFAULTS
from keras_robult.experiments.registry import METHODS
from keras_robult.experiments.tune.space import OBJECTIVES, TUNERS, search_space


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """How `tune` searches. Checked when made.

    Args:
        method: the Robult variant searched (a name of the registry).
        tuner: `"bayesian"` (KerasTuner's Gaussian-process Bayesian
            optimisation) or `"hyperband"` (its epochs are Hyperband's
            budget, at most `epochs`, and leave the search space).
        objective: `"single-mean"`: the mean of the task's primary metric
            over the single-modality subsets and the full set;
            `"all"`: the full set's; `"auc"`: the missing-rate AUC.
        max_trials: trials of the search (Hyperband stops at this many
            too).
        seeds: every trial trains once per seed (each seed its own
            splits); its score is the mean.
        labeled_fraction: as in the comparison: the trials train with as
            many labels as the comparison's training split holds.
        validation_fraction: the share of the training split carved off
            (stratified) as validation, where the data has no validation
            split of its own.
        epochs: with `"bayesian"`, the epochs when the space leaves them
            out; with `"hyperband"`, its largest budget.
        batch_size: training batch size.
        latent_dim: the latent width when the space leaves it out.
        space: dict option -> range, narrowing `SEARCH_SPACE` (see
            `search_space`).
        out: the search folder (KerasTuner's project in `out/tuner`); a
            rerun with the same folder resumes.
        restart: forget the trials in `out`.
        tensorboard: a folder: each trial's trainings write TensorBoard
            logs to `<folder>/trial-<id>/<method>-seed<seed>`.
        verbose: 0 silent; 1 one line per trial.
    """

    method: str = "robult"
    tuner: str = "bayesian"
    objective: str = "single-mean"
    max_trials: int = 20
    seeds: tuple = (0,)
    labeled_fraction: float = DEFAULTS.labeled_fraction
    validation_fraction: float = 0.2
    epochs: int = DEFAULTS.epochs
    batch_size: int = DEFAULTS.batch_size
    latent_dim: int = 128
    space: dict | None = None
    out: str | None = None
    restart: bool = False
    tensorboard: str | None = None
    verbose: int = 1

    def __post_init__(self):
        if self.method not in METHODS or not METHODS[self.method].is_robult:
            raise ValueError(
                f"`method` must be a Robult variant; got {self.method!r}"
            )
        if self.tuner not in TUNERS:
            raise ValueError(f"`tuner` must be one of {TUNERS}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"`objective` must be one of {OBJECTIVES}")
        if self.max_trials < 1:
            raise ValueError("`max_trials` must be at least 1")
        if not self.seeds or min(self.seeds) < 0:
            raise ValueError("`seeds` must be non-negative integers")
        if not 0 < self.labeled_fraction <= 1:
            raise ValueError("`labeled_fraction` must be in (0, 1]")
        if not 0 < self.validation_fraction < 1:
            raise ValueError("`validation_fraction` must be in (0, 1)")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("`epochs` and `batch_size` must be positive")
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise RuntimeError(
                "`tensorboard` needs TensorBoard: pip install "
                "'keras-robult[tune]'"
            )
        search_space(self)  # a bad space fails here


def default_out(dataset):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("results", f"{dataset}-tune-{stamp}")
