"""`robult tune`: a KerasTuner search of one Robult variant's
hyper-parameters on a validation split carved from the training split.

The test split of every seed is set aside first, exactly as the
comparison draws it (the data's own `test` rows, or the stratified 70/30
split of the seed), and no row of it is ever given to a trial. Each
trial trains on the rest of the training split and is scored on its
validation part by the protocol's own evaluation (`run_protocol`); its
score is the mean over the seeds.
"""

import dataclasses
import datetime
import importlib.util
import json
import math
import os
import shutil
import time

import keras
import numpy as np

from keras_robult.data.splits import protocol_split, train_test_split
from keras_robult.experiments.comparison import tensorboard_callbacks
from keras_robult.experiments.hparams import check_value
from keras_robult.experiments.metrics import PRIMARY, higher_is_better
from keras_robult.experiments.protocol import run_protocol
from keras_robult.experiments.registry import METHODS, method_factories
from keras_robult.experiments.robult_method import (
    keyword_defaults,
    robult_defaults,
)
from keras_robult.models.robult import DEFAULT_LOSS_WEIGHTS
from keras_robult.utils.atomic import write_json, write_text

TUNERS = ("bayesian", "hyperband")
OBJECTIVES = ("single-mean", "all", "auc")
#: The searched loss terms (`pseudo` and `consistency` are off by default
#: and stay so).
TUNED_TERMS = ("lb", "ulb", "rec", "sup")
#: The default search space: option -> its range. `min`/`max` (with `log`
#: for a log-uniform draw, `step` for integers) or a list of choices.
#: Every range holds the method's default. Left out: a temperature under
#: 0.2 and a learning rate over 3e-3, which scored below the defaults in
#: each of the 21 and 10 trials that drew them, on four datasets
#: (benchmarks/RESULTS.md, "`robult tune` against the defaults").
SEARCH_SPACE = {
    "temperature": {"min": 0.2, "max": 3.0, "log": True},
    "rbf_bandwidth": {"min": 0.05, "max": 3.0, "log": True},
    "learning_rate": {"min": 1e-4, "max": 3e-3, "log": True},
    **{
        f"loss_weights.{term}": {"min": 0.1, "max": 10.0, "log": True}
        for term in TUNED_TERMS
    },
    "dropout": {"min": 0.0, "max": 0.5},
    "latent_dim": [64, 128, 256],
    "epochs": {"min": 50, "max": 300, "step": 50},
}
#: Options whose values are integers.
INTEGERS = ("latent_dim", "epochs")
OBJECTIVE_NAME = "validation_score"


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
    labeled_fraction: float = 0.05
    validation_fraction: float = 0.2
    epochs: int = 150
    batch_size: int = 256
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


def method_defaults(method):
    """The searched options' values in `method` as the registry makes
    it: where a search starts from, and what it is compared with."""
    fixed = METHODS[method].defaults
    robult = robult_defaults()
    weights = {**DEFAULT_LOSS_WEIGHTS, **fixed.get("loss_weights", {})}
    defaults = {
        "temperature": fixed.get("temperature", robult["temperature"]),
        "rbf_bandwidth": fixed.get("rbf_bandwidth", robult["rbf_bandwidth"]),
        "learning_rate": fixed.get(
            "learning_rate",
            keyword_defaults(METHODS[method].method_class)["learning_rate"],
        ),
        "dropout": fixed.get("dropout", robult["dropout"]),
        **{f"loss_weights.{t}": weights[t] for t in TUNED_TERMS},
    }
    return defaults


def trial_hparams(trial):
    """The method's values a KerasTuner trial trained with: its searched
    values, and Hyperband's epochs (`tuner/epochs`) where it set them."""
    values = method_values(trial.hyperparameters.values)
    if "tuner/epochs" in trial.hyperparameters.values:
        values["epochs"] = int(trial.hyperparameters.values["tuner/epochs"])
    return values


def search_space(config):
    """The searched options of `config`: dict option -> `{"min", "max",
    "log", "step"}`, `{"choices"}` or `{"fixed"}`, with `"default"` (the
    method's own value).

    `config.space` narrows `SEARCH_SPACE`: each of its keys is an option
    of it, mapped to `{"min": A, "max": B}` (optionally `"log"`,
    `"step"`), a list of choices, a single value (fixed), or `null`
    (left out: the method's default, or `config.epochs` /
    `config.latent_dim`). A loss term the method switches off (weight 0,
    as in the ablations) is not searched. With Hyperband, `epochs` is its
    budget and not an option."""
    where = "the search space"
    given = dict(config.space or {})
    unknown = sorted(set(given) - set(SEARCH_SPACE))
    if unknown:
        raise ValueError(
            f"{where}: unknown option(s) {unknown}; it may set "
            f"{list(SEARCH_SPACE)}."
        )
    defaults = {
        **method_defaults(config.method),
        "latent_dim": config.latent_dim,
        "epochs": config.epochs,
    }
    space = {}
    for name, default_range in SEARCH_SPACE.items():
        if name.startswith("loss_weights.") and defaults[name] == 0:
            continue  # a term this variant leaves out
        if name == "epochs" and config.tuner == "hyperband":
            if given.get("epochs") is not None:
                raise ValueError(
                    f"{where}: with `tuner` hyperband the epochs are "
                    "Hyperband's budget (`epochs`); leave them out."
                )
            continue
        value = given.get(name, default_range)
        if value is None:
            continue
        entry = _entry(where, name, value)
        entry["default"] = _default_in(entry, defaults[name])
        space[name] = entry
    return space


def _entry(where, name, value):
    integer = name in INTEGERS
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"min", "max", "log", "step"})
        if unknown or "min" not in value or "max" not in value:
            raise ValueError(
                f"{where}: {name} must be {{'min': A, 'max': B}} (with "
                f"optional 'log', 'step'), a list or a value; got {value!r}"
            )
        low, high = value["min"], value["max"]
        for bound in (low, high):
            _check(where, name, bound, integer)
        if not low < high:
            raise ValueError(f"{where}: {name} needs min < max; got {value}")
        log = bool(value.get("log", False))
        if log and low <= 0:
            raise ValueError(f"{where}: {name} is log-scaled: min must be > 0")
        entry = {"min": low, "max": high, "log": log}
        if integer:
            entry["step"] = int(value.get("step", 1))
        return entry
    if isinstance(value, list):
        if not value or len(set(value)) != len(value):
            raise ValueError(
                f"{where}: {name} choices must be distinct and not empty"
            )
        for choice in value:
            _check(where, name, choice, integer)
        return {"choices": list(value)}
    _check(where, name, value, integer)
    return {"fixed": value}


def _check(where, name, value, integer):
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{where}: {name} takes integers; got {value!r}")
    if name.startswith("loss_weights."):
        check_value(where, "loss_weights", {name.split(".", 1)[1]: value})
    else:
        check_value(where, name, value)


def _default_in(entry, default):
    """The method's default where the range holds it, else the nearest
    value the range allows (KerasTuner needs a default inside it)."""
    if "fixed" in entry:
        return entry["fixed"]
    if "choices" in entry:
        return default if default in entry["choices"] else entry["choices"][0]
    low, high = entry["min"], entry["max"]
    value = min(max(default, low), high)
    if "step" in entry:
        value = low + (value - low) // entry["step"] * entry["step"]
    return value


def method_values(values):
    """A trial's flat values (`loss_weights.lb`, ...) as the method's
    options (`{"loss_weights": {"lb": ...}}`), the `hparams` of a
    `best_hparams.json`."""
    options, weights = {}, {}
    for name, value in values.items():
        if name.startswith("tuner/"):
            continue
        if name.startswith("loss_weights."):
            weights[name.split(".", 1)[1]] = float(value)
        elif name in INTEGERS:
            options[name] = int(value)
        else:
            options[name] = float(value)
    if weights:
        options["loss_weights"] = weights
    return options


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


def _score(results, objective, metric):
    """The objective of one seed's validation results."""
    if results.get("failures"):
        return None
    if objective == "auc":
        return float(results["missing_rate_curves"][0]["auc"])
    modalities = results["modalities"]
    values = {
        tuple(e["subset"]): e["mean"]
        for e in results["results"]
        if e["metric"] == metric
    }
    full = values[tuple(modalities)]
    if objective == "all":
        return float(full)
    singles = [values[(m,)] for m in modalities]
    return float(np.mean([*singles, full]))


class Search:
    """The trials of one search on `data` (a `ComparisonData`): trains
    the method on each seed's fitting rows with a trial's options and
    scores it on the validation rows.

    Args:
        config: a `TuneConfig`.
        data: a `keras_robult.experiments.comparison.ComparisonData`.
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
            score = _score(results, self.config.objective, self.metric)
            if score is None or not math.isfinite(score):
                return None, per_seed
            per_seed.append(score)
        return float(np.mean(per_seed)), per_seed


def default_out(dataset):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("results", f"{dataset}-tune-{stamp}")


def tune(config, data):
    """Searches `config.method`'s hyper-parameters on `data` with
    KerasTuner and writes `best_hparams.json` (the `--hparams` format of
    `robult train`), `trials.json`, `trials.md` and `tuning_splits.json`
    (the rows of each seed's fitting, validation and test parts) to
    `config.out`. The method's defaults are scored too, on the same
    splits; where no trial beats them, `best_hparams.json` holds them.

    Args:
        config: a `TuneConfig`.
        data: a `keras_robult.experiments.comparison.ComparisonData`.

    Returns:
        `(best, out)`: the `best_hparams.json` dict and the folder.
    """
    if importlib.util.find_spec("keras_tuner") is None:
        raise RuntimeError(
            "robult tune needs KerasTuner: pip install 'keras-robult[tune]'"
        )
    import keras_tuner

    out = os.path.abspath(config.out or default_out(data.dataset))
    search = Search(config, data)
    space = search_space(config)
    _check_folder(out, config, data)
    write_json(
        os.path.join(out, "tuning_splits.json"),
        {
            str(seed): {
                k: v.tolist() if isinstance(v, np.ndarray) else v
                for k, v in split.items()
            }
            for seed, split in search.splits.items()
        },
    )
    direction = "max" if search.higher else "min"
    tuner = _make_tuner(keras_tuner, config, space, search, direction, out)
    if config.verbose:
        done = sum(
            t.status == "COMPLETED" for t in tuner.oracle.trials.values()
        )
        print(
            f"robult tune: {config.method} on {data.dataset}, "
            f"{config.tuner}, objective {config.objective} {search.metric} "
            f"({direction}), {config.max_trials} trials ({done} done "
            f"earlier), seeds {list(config.seeds)}, backend "
            f"{keras.backend.backend()}",
            flush=True,
        )
    defaults = _defaults_score(search, out, config)
    tuner.search(verbose=0)
    best = _best(tuner, defaults, search, config, out)
    _write_trials(tuner, defaults, search, config, out)
    if config.verbose:
        print(
            f"best: {best['source']} ({search.metric} {config.objective} "
            f"{best['validation_score']:.4f}; the defaults "
            f"{defaults['score']:.4f}); written to "
            f"{os.path.join(out, 'best_hparams.json')}",
            flush=True,
        )
    return best, out


def _configuration(config, data):
    run = dict(data.record, dataset=data.dataset)
    run.update(
        {
            k: v
            for k, v in dataclasses.asdict(config).items()
            if k
            not in ("max_trials", "out", "restart", "verbose", "tensorboard")
        }
    )
    run["seeds"] = list(config.seeds)
    run["backend"] = keras.backend.backend()
    return json.loads(json.dumps(run))


def _check_folder(out, config, data):
    """Refuses to resume a search in `out` made with other settings."""
    path = os.path.join(out, "tune_config.json")
    run = _configuration(config, data)
    if config.restart:
        for name in ("tuner", "defaults.json", "tune_config.json"):
            target = os.path.join(out, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
    if os.path.exists(path):
        with open(path) as handle:
            saved = json.load(handle)
        differing = sorted(
            k for k in set(saved) | set(run) if saved.get(k) != run.get(k)
        )
        if differing:
            raise ValueError(
                f"{out} holds a search with other settings ({differing}); "
                "give another `out`, or `restart` to start over."
            )
    write_json(path, run)


def _make_tuner(keras_tuner, config, space, search, direction, out):
    objective = keras_tuner.Objective(OBJECTIVE_NAME, direction=direction)
    hp = keras_tuner.HyperParameters()
    for name, entry in space.items():
        if "fixed" in entry:
            hp.Fixed(name, entry["fixed"])
        elif "choices" in entry:
            hp.Choice(name, entry["choices"], default=entry["default"])
        elif name in INTEGERS:
            hp.Int(
                name,
                entry["min"],
                entry["max"],
                step=entry["step"],
                sampling="log" if entry["log"] else "linear",
                default=entry["default"],
            )
        else:
            hp.Float(
                name,
                entry["min"],
                entry["max"],
                sampling="log" if entry["log"] else "linear",
                default=entry["default"],
            )
    seed = int(config.seeds[0])
    if config.tuner == "hyperband":
        base = keras_tuner.Hyperband
        options = dict(max_epochs=config.epochs, factor=3)
    else:
        base = keras_tuner.BayesianOptimization
        options = dict(max_trials=config.max_trials)

    class RobultTuner(base):
        def run_trial(self, trial, *args, **kwargs):
            return _run_trial(self, trial, search, config)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            _report_trial(self, trial, config)

    tuner = RobultTuner(
        objective=objective,
        hyperparameters=hp,
        tune_new_entries=False,
        seed=seed,
        directory=out,
        project_name="tuner",
        overwrite=False,
        max_consecutive_failed_trials=config.max_trials,
        **options,
    )
    tuner.oracle.max_trials = config.max_trials  # Hyperband's too
    return tuner


def _run_trial(tuner, trial, search, config):
    import keras_tuner

    start = time.perf_counter()
    values = dict(trial.hyperparameters.values)
    board = None
    if config.tensorboard:
        board = os.path.join(config.tensorboard, f"trial-{trial.trial_id}")
    try:
        score, per_seed = search.evaluate(
            values, epochs=values.get("tuner/epochs"), tensorboard=board
        )
    except Exception as error:  # the user's error, not a bad trial
        raise keras_tuner.errors.FatalError(str(error)) from error
    if score is None:
        raise keras_tuner.errors.FailedTrialError(
            "the training diverged or the validation metric is undefined"
        )
    metrics = {OBJECTIVE_NAME: score, "seconds": time.perf_counter() - start}
    metrics.update({f"seed_{s}": v for s, v in zip(config.seeds, per_seed)})
    return metrics


def _report_trial(tuner, trial, config):
    if not config.verbose:
        return
    trial = tuner.oracle.get_trial(trial.trial_id)
    values = trial_hparams(trial)
    shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    done = len(tuner.oracle.trials)
    best = tuner.oracle.get_best_trials(1)
    best = f", best {best[0].score:.4f}" if best else ""
    if trial.status == "COMPLETED":
        seconds = trial.metrics.get_last_value("seconds")
        outcome = f"{trial.score:.4f}{best} ({seconds:.0f} s)"
    else:
        outcome = f"{trial.status.lower()}{best}"
    print(
        f"trial {trial.trial_id} ({done}/{config.max_trials}): {shown} -> "
        f"{outcome}",
        flush=True,
    )


def _short(value):
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _defaults_score(search, out, config):
    """The method's defaults (what `robult train` trains without
    `--hparams`, at `config.epochs` and `config.latent_dim`) on the same
    splits, scored once (kept in `out/defaults.json`, so a resumed search
    does not train them again)."""
    path = os.path.join(out, "defaults.json")
    if os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    values = {
        **method_defaults(config.method),
        "latent_dim": config.latent_dim,
        "epochs": config.epochs,
    }
    start = time.perf_counter()
    score, per_seed = search.evaluate(values)
    record = {
        "hparams": method_values(values),
        "score": score,
        "per_seed": per_seed,
        "seconds": time.perf_counter() - start,
    }
    if config.verbose:
        shown = "diverged" if score is None else f"{score:.4f}"
        print(f"defaults: {shown} ({record['seconds']:.0f} s)", flush=True)
    write_json(path, record)
    return record


def _beats(score, other, higher):
    return other is None or (score > other if higher else score < other)


def _best(tuner, defaults, search, config, out):
    trials = tuner.oracle.get_best_trials(1)
    best_trial = trials[0] if trials else None
    if best_trial is not None and _beats(
        best_trial.score, defaults["score"], search.higher
    ):
        values = trial_hparams(best_trial)
        score, source = best_trial.score, f"trial {best_trial.trial_id}"
    else:
        values, score = defaults["hparams"], defaults["score"]
        source = "the defaults"
    if score is None:
        raise RuntimeError(
            "Every trial and the defaults diverged; nothing to write."
        )
    if "epochs" not in values:
        values["epochs"] = int(config.epochs)
    best = {
        "method": config.method,
        "hparams": values,
        "source": source,
        "objective": config.objective,
        "metric": search.metric,
        "direction": "max" if search.higher else "min",
        "validation_score": float(score),
        "defaults_validation_score": defaults["score"],
        "tuner": config.tuner,
        "seeds": list(config.seeds),
        "trials": sum(
            t.status == "COMPLETED" for t in tuner.oracle.trials.values()
        ),
    }
    write_json(os.path.join(out, "best_hparams.json"), best)
    return best


def _write_trials(tuner, defaults, search, config, out):
    rows = []
    for trial in sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id):
        rows.append(
            {
                "trial": trial.trial_id,
                "status": trial.status,
                "hparams": trial_hparams(trial),
                "score": trial.score,
                "per_seed": [
                    trial.metrics.get_last_value(f"seed_{s}")
                    for s in config.seeds
                ]
                if trial.status == "COMPLETED"
                else None,
            }
        )
    write_json(
        os.path.join(out, "trials.json"),
        {
            "metric": search.metric,
            "objective": config.objective,
            "defaults": defaults,
            "trials": rows,
        },
    )
    names = sorted({k for r in rows for k in _flat(r["hparams"])})
    header = ["trial", *names, f"{config.objective} {search.metric}"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]

    def line(label, values, score):
        flat = _flat(values)
        cells = [_short(flat[n]) if n in flat else "" for n in names]
        shown = "" if score is None else f"{score:.4f}"
        lines.append("| " + " | ".join([label, *cells, shown]) + " |")

    line("defaults", defaults["hparams"], defaults["score"])
    for row in rows:
        line(row["trial"], row["hparams"], row["score"])
    write_text(os.path.join(out, "trials.md"), "\n".join(lines) + "\n")


def _flat(values):
    flat = {}
    for k, v in values.items():
        if isinstance(v, dict):
            flat.update({f"{k}.{t}": w for t, w in v.items()})
        else:
            flat[k] = v
    return flat
