"""Scoring one configuration: the tuning splits (the test split of every
seed set aside first) and the protocol run on each seed's validation
part."""

import math

import numpy as np

from keras_robult.data.masking import subset_name
from keras_robult.data.splits import protocol_split, train_test_split
from keras_robult.experiments.comparison import tensorboard_callbacks
from keras_robult.experiments.metrics import PRIMARY, higher_is_better
from keras_robult.experiments.protocol import run_protocol
from keras_robult.experiments.registry import method_factories
from keras_robult.experiments.results_schema import Results
from keras_robult.experiments.tune.space import method_values


def tuning_splits(data, config):
    """Per seed, the rows of the search: dict seed -> `{"fit",
    "validation", "test", "labeled_fraction"}` (row indices of `data`;
    `test` is what the comparison tests on and what no trial reads).

    The validation rows are the data's own validation split when it has
    one; otherwise a stratified `config.validation_fraction` of the
    training split (of its labeled rows where the data marks them). The
    fitting rows keep as many labels as the comparison's training split
    would hold."""
    y = np.asarray(data.y)
    splits = {}
    for seed in config.seeds:
        train, test = protocol_split(
            y, seed, data.task, data.test_mask, data.is_labeled
        )
        if data.validation_mask is not None:
            in_validation = np.asarray(data.validation_mask, bool)
            validation = np.flatnonzero(in_validation)
            fit = train[~in_validation[train]]
            fraction = config.labeled_fraction
        else:
            pool = train
            if data.is_labeled is not None:
                pool = train[np.asarray(data.is_labeled, bool)[train]]
            keep, held = train_test_split(
                y[pool], config.validation_fraction, seed=seed, task=data.task
            )
            validation = pool[held]
            fit = np.setdiff1d(train, validation)
            # As many labels as the comparison's training split holds.
            fraction = min(1.0, config.labeled_fraction * len(train) / len(fit))
        if not len(fit) or not len(validation):
            raise ValueError(
                f"seed {seed}: the search needs training and validation "
                f"rows; the training split has {len(train)}."
            )
        splits[seed] = {
            "fit": fit,
            "validation": np.sort(validation),
            "test": test,
            "labeled_fraction": float(fraction),
        }
    return splits


def score_results(results, objective, metric):
    """The objective of one seed's validation results (a results dict)."""
    results = Results.from_dict(results)
    if results.failures:
        return None
    if objective == "auc":
        return float(results.missing_rate_curves[0].auc)
    values = {row: e.mean for (_, row), e in results.summaries(metric).items()}
    full = values["all"]
    if objective == "all":
        return float(full)
    modalities = results.modalities
    singles = [values[subset_name([m], modalities)] for m in modalities]
    return float(np.mean([*singles, full]))


class Search:
    """The trials of one search on `data` (a `ComparisonData`): trains
    the method on each seed's fitting rows with a trial's options and
    scores it on the validation rows.

    Args:
        config: a `TuneConfig`.
        data: a `keras_robult.experiments.ComparisonData`.
    """

    def __init__(self, config, data):
        if data.finetune is not None:
            raise ValueError(
                "robult tune searches on frozen features; leave out `finetune`."
            )
        self.config = config
        self.data = data
        self.metric = (
            data.metrics[0] if data.metrics else PRIMARY[data.task.name][0]
        )
        self.higher = higher_is_better(self.metric)
        self.splits = tuning_splits(data, config)
        #: Every row a trial was given, per seed (what tests check).
        self.rows_seen = {}

    def evaluate(self, values, epochs=None, tensorboard=None):
        """The objective of the method with `values` (flat trial values):
        `(mean, per_seed)`, `mean` None when a training diverged."""
        options = method_values(values)
        if epochs is not None:
            options["epochs"] = int(epochs)
        latent = options.pop("latent_dim", self.config.latent_dim)
        factories = method_factories(
            [self.config.method],
            latent_dim=latent,
            method_options={self.config.method: options},
        )
        per_seed = []
        for seed, split in self.splits.items():
            rows = np.concatenate([split["fit"], split["validation"]])
            self.rows_seen.setdefault(seed, set()).update(rows.tolist())
            x = {k: np.asarray(v)[rows] for k, v in self.data.x.items()}
            y = np.asarray(self.data.y)[rows]
            is_validation = np.arange(len(rows)) >= len(split["fit"])
            is_labeled = None
            if self.data.is_labeled is not None:
                is_labeled = np.asarray(self.data.is_labeled, bool)[rows]
                is_labeled[is_validation] = True
            results, _ = run_protocol(
                x,
                y,
                self.data.task,
                factories,
                seeds=(seed,),
                labeled_fraction=split["labeled_fraction"],
                epochs=options.get("epochs", self.config.epochs),
                batch_size=self.config.batch_size,
                test_mask=is_validation,
                is_labeled=is_labeled,
                dataset=f"{self.data.dataset}-validation",
                verbose=0,
                curve_metric=self.metric,
                callbacks=(
                    tensorboard_callbacks(None, tensorboard)
                    if tensorboard
                    else None
                ),
            )
            score = score_results(results, self.config.objective, self.metric)
            if score is None or not math.isfinite(score):
                return None, per_seed
            per_seed.append(score)
        return float(np.mean(per_seed)), per_seed
