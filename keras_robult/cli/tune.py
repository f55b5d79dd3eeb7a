"""`robult tune`: a hyper-parameter search on a user's data (or mfeat)."""

import json
import os

from keras_robult.cli.train import load_data
from keras_robult.experiments.compilation_cache import enable_compilation_cache
from keras_robult.experiments.tune import TuneConfig, tune


def load_space(path):
    """The search space of a JSON or YAML file (`search_space`'s
    format): an object of option -> range."""
    if path is None:
        return None
    import yaml  # PyYAML: installed with keras-hub (kagglehub)

    with open(path) as handle:
        text = handle.read()
    try:
        if path.endswith((".yaml", ".yml")):
            space = yaml.safe_load(text)
        else:
            space = json.loads(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ValueError(f"--space {path}: not readable ({error})") from None
    if not isinstance(space, dict):
        raise ValueError(f"--space {path}: expected an object of options.")
    return space


def tune_config(args, **overrides):
    """The `TuneConfig` of the options in `args`."""
    options = dict(
        method=args.method,
        tuner=args.tuner,
        objective=args.objective,
        max_trials=args.max_trials,
        seeds=tuple(args.seeds),
        labeled_fraction=args.labeled_fraction,
        validation_fraction=args.validation_fraction,
        epochs=args.epochs,
        batch_size=args.batch_size,
        latent_dim=args.latent_dim,
        space=load_space(args.space),
        out=args.out,
        restart=args.restart,
        tensorboard=args.tensorboard,
        verbose=0 if args.quiet else 1,
    )
    options.update(overrides)
    return TuneConfig(**options)


def run_tune(args):
    config = tune_config(args)  # checked before any data is read
    data, _, _ = load_data(args, config.verbose)
    enable_compilation_cache()
    _, out = tune(config, data)
    if config.verbose:
        print(
            "train with them: robult train ... --hparams "
            f"{os.path.join(out, 'best_hparams.json')}",
            flush=True,
        )
    return 0
