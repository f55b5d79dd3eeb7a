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
import importlib.util
import json
import os
import shutil
import time

import keras
import numpy as np

from keras_robult.experiments.tune.config import default_out
from keras_robult.experiments.tune.search import Search
from keras_robult.experiments.tune.space import (
    INTEGERS,
    OBJECTIVE_NAME,
    method_defaults,
    method_values,
    search_space,
    trial_hparams,
)
from keras_robult.utils.atomic import write_json, write_text


def tune(config, data):
    """Searches `config.method`'s hyper-parameters on `data` with
    KerasTuner and writes `best_hparams.json` (the `--hparams` format of
    `robult train`), `trials.json`, `trials.md` and `tuning_splits.json`
    (the rows of each seed's fitting, validation and test parts) to
    `config.out`. The method's defaults are scored too, on the same
    splits; where no trial beats them, `best_hparams.json` holds them.

    Args:
        config: a `TuneConfig`.
        data: a `keras_robult.experiments.ComparisonData`.

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
