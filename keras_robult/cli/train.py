"""`robult train`: the comparison on a user's data (or mfeat)."""

import dataclasses
import sys

import keras

from keras_robult.cli.options import backbone_config, comparison_config
from keras_robult.experiments.comparison import default_out, run_comparison
from keras_robult.experiments.compilation_cache import enable_compilation_cache
from keras_robult.experiments.image_text import write_raw_models
from keras_robult.experiments.user_data import (
    is_records_file,
    mfeat_data,
    npz_data,
    records_data,
)


def load_data(args, verbose):
    """The `ComparisonData` of `--data` (an .npz file, image+text records,
    or the embedded mfeat), and the records' backbone configuration and
    backbones (None for arrays)."""
    if args.data and is_records_file(args.data):
        backbone = backbone_config(args)
        data, backbones = records_data(
            args.data,
            backbone,
            args.task,
            args.bins,
            image_column=args.image_column,
            text_column=args.text_column,
            label_column=args.label_column,
            verbose=verbose,
        )
        return data, backbone, backbones
    if args.data:
        return npz_data(args.data, args.task, args.bins), None, None
    return mfeat_data(args.task, args.bins), None, None


def train(args):
    config = comparison_config(args)  # checked before any data is read
    data, backbone, backbones = load_data(args, config.verbose)
    # A default folder is named by the time: say where it is, and how to
    # resume there.
    out = config.out or default_out(data.dataset)
    config = dataclasses.replace(config, out=out)
    if config.verbose:
        print(
            f"robult train: {data.dataset}, {data.task}, {len(data.y)} "
            f"samples, modalities {data.modalities}, methods "
            f"{config.method_names}, seeds {list(config.seeds)}, backend "
            f"{keras.backend.backend()}; results in {out}/ (rerun with "
            f"--out {out} to resume there)",
            flush=True,
        )
    enable_compilation_cache()
    try:
        run_comparison(config, data)
    except KeyboardInterrupt:
        print(f"robult train: resume with --out {out}", file=sys.stderr)
        raise
    if backbones is not None and backbone.raw_models:
        write_raw_models(backbone, backbones, out, config.verbose)
    return 0
