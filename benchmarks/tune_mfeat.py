"""Chooses the protocol defaults on mfeat with a validation split.

`robult tune` searches the hyper-parameters; this script scores a fixed
list of configurations (any method option, e.g. `full_set`) on the same
splits (`keras_robult.experiments.tune.tuning_splits`) with more
summaries than the search's objective.

For each seed, the protocol's stratified 70/30 train/test split is made and
the test part is never touched: a stratified 20 % validation split is
carved from the training split, 70 samples of the rest are labeled (5 % of
the full training split, as in the protocol), and every configuration is
trained on the rest and scored on the validation split (single-modality
mean accuracy, full-set accuracy, the mean accuracy over the leave-one-out
subsets, and, per seed, how far the worst subset falls below the best of
its own branches alone, averaged). Prints one line per configuration.

    python benchmarks/tune_mfeat.py --seeds 0 1 --configs '[{"epochs": 150}]'
"""

import argparse
import json
import time

import numpy as np

from keras_robult.experiments import registry, run_protocol
from keras_robult.experiments.tune import TuneConfig, tuning_splits
from keras_robult.experiments.user_data import mfeat_data

DEFAULT_CONFIGS = [
    {"epochs": 300},
    {"epochs": 150},
    {"epochs": 300, "full_set": "mean"},
    {"epochs": 300, "dropout": 0.2},
    {"epochs": 300, "encoder_dropout": 0.2},
    {"epochs": 300, "temperature": 1.0},
    {"epochs": 300, "weight_decay": 1e-3},
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--method", default="robult")
    parser.add_argument("--configs", help="JSON list of option dicts")
    args = parser.parse_args()
    configs = json.loads(args.configs) if args.configs else DEFAULT_CONFIGS
    data = mfeat_data()
    x, y, task = data.x, data.y, data.task
    # The search's own splits (`robult tune`): the same test split as the
    # comparison, a stratified 20 % validation split, 70 labels.
    splits = tuning_splits(data, TuneConfig(seeds=tuple(args.seeds)))
    for config in configs:
        config = dict(config)
        epochs = config.pop("epochs", 300)
        batch_size = config.pop("batch_size", 256)
        singles, fulls, loos, gaps, per_subset = [], [], [], [], {}
        start = time.perf_counter()
        for seed in args.seeds:
            split = splits[seed]
            train = np.union1d(split["fit"], split["validation"])
            is_val = np.isin(train, split["validation"])
            fraction = split["labeled_fraction"]
            results, _ = run_protocol(
                {k: v[train] for k, v in x.items()},
                y[train],
                task,
                registry.method_factories([args.method], **config),
                seeds=(seed,),
                labeled_fraction=fraction,
                epochs=epochs,
                batch_size=batch_size,
                test_mask=is_val,
                dataset="mfeat-validation",
                verbose=0,
            )
            accuracy = {
                tuple(entry["subset"]): entry["mean"]
                for entry in results["results"]
                if entry["metric"] == "accuracy"
            }
            for subset, value in accuracy.items():
                per_subset.setdefault("+".join(subset), []).append(value)
            # A fused subset against the best of its own branches alone.
            gaps.append(
                min(
                    value - max(accuracy[(m,)] for m in subset)
                    for subset, value in accuracy.items()
                    if len(subset) > 1
                )
            )
            for entry in results["results"]:
                if entry["metric"] != "accuracy":
                    continue
                if len(entry["subset"]) == 1:
                    singles.append(entry["mean"])
                elif len(entry["subset"]) == len(x):
                    fulls.append(entry["mean"])
                elif len(entry["subset"]) == len(x) - 1:
                    loos.append(entry["mean"])
        print(
            json.dumps(
                {
                    "method": args.method,
                    "epochs": epochs,
                    "batch_size": batch_size,
                    **config,
                    "val_single_mean": round(float(np.mean(singles)), 4),
                    "val_full": round(float(np.mean(fulls)), 4),
                    "val_leave_one_out": round(float(np.mean(loos)), 4),
                    # Per seed, the subset furthest below its best branch.
                    "val_worst_gap_to_best_branch": round(
                        float(np.mean(gaps)), 4
                    ),
                    "seconds": round(time.perf_counter() - start),
                    "val_subsets": {
                        k: round(float(np.mean(v)), 4)
                        for k, v in per_subset.items()
                    },
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
