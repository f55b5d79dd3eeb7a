"""`robult tune`: a KerasTuner search of one Robult variant's
hyper-parameters on a validation split carved from the training split.

By concern: `space` (the search-space format and the methods' searchable
options), `config` (`TuneConfig`), `search` (the tuning splits and the
score of one configuration) and `run` (`tune`: the tuner, resume, the
result files).
"""

from keras_robult.experiments.tune.config import TuneConfig, default_out
from keras_robult.experiments.tune.run import tune
from keras_robult.experiments.tune.search import Search, tuning_splits
from keras_robult.experiments.tune.space import (
    OBJECTIVE_NAME,
    OBJECTIVES,
    SEARCH_SPACE,
    TUNED_TERMS,
    TUNERS,
    method_defaults,
    method_values,
    search_space,
    trial_hparams,
)

__all__ = [
    "OBJECTIVES",
    "OBJECTIVE_NAME",
    "SEARCH_SPACE",
    "Search",
    "TUNED_TERMS",
    "TUNERS",
    "TuneConfig",
    "default_out",
    "method_defaults",
    "method_values",
    "search_space",
    "trial_hparams",
    "tune",
    "tuning_splits",
]
