"""Calibration per presence pattern, before and after, on a suite dataset.

The suite's protocol (`keras_robult.datasets.suite`: its labeled fraction
and training gaps, the stratified 70/30 split, 150 epochs, latent 128)
with a calibration split of `--calibration-fraction` of each seed's
labeled training samples (`run_protocol(calibration_fraction=)`). Prints,
per method, each subset's uncalibrated and calibrated ECE
(classification) or the coverage and mean width of the intervals
(regression), then the mean and the worst over the subsets.

    python benchmarks/calibration.py mfeat --methods robult linear
    python benchmarks/calibration.py diabetes --methods robult linear
"""

import argparse
import sys
import time

import keras_robult_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--methods", nargs="+", default=["robult", "linear"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--labeled-fraction", type=float)
    parser.add_argument("--calibration-fraction", type=float, default=0.2)
    parser.add_argument("--coverage", type=float, default=0.9)
    parser.add_argument("--backend")
    args = parser.parse_args(argv)
    keras_robult_cli.prepare(
        ["--backend", args.backend] if args.backend else []
    )
    import numpy as np

    from keras_robult.datasets.suite import DATASETS
    from keras_robult.experiments import registry, run_protocol
    from keras_robult.experiments.user_data import make_task

    spec = DATASETS[args.dataset]
    x, y = spec.load()
    task = make_task(spec.task, y)
    start = time.perf_counter()
    results, splits = run_protocol(
        x,
        y,
        task,
        registry.method_factories(args.methods, latent_dim=128),
        seeds=tuple(args.seeds),
        labeled_fraction=args.labeled_fraction or spec.labeled_fraction,
        epochs=args.epochs,
        train_missing_rate=spec.train_missing_rate,
        calibration_fraction=args.calibration_fraction,
        coverage=args.coverage,
        verbose=0,
    )
    rows = [len(s["calibration"]) for s in splits.values()]
    print(
        f"{args.dataset}: {task.name}, calibration rows per seed {rows}, "
        f"seeds {args.seeds}, {time.perf_counter() - start:.0f} s"
    )
    pairs = (
        ("ece", "calibrated_ece")
        if task.name == "classification"
        else ("coverage", "interval_width")
    )
    modalities = results["modalities"]
    for method in args.methods:
        cells = {}
        for r in results["results"]:
            if r["method"] == method and r["metric"] in pairs:
                name = (
                    "all"
                    if len(r["subset"]) == len(modalities)
                    else "+".join(r["subset"])
                )
                cells.setdefault(name, {})[r["metric"]] = r["mean"]
        print(f"\n{method}\n\n| subset | {pairs[0]} | {pairs[1]} |")
        print("|---|---|---|")
        for name, values in cells.items():
            print(
                f"| {name} | {values[pairs[0]]:.3f} | {values[pairs[1]]:.3f} |"
            )
        first = [v[pairs[0]] for v in cells.values()]
        second = [v[pairs[1]] for v in cells.values()]
        if task.name == "classification":
            print(
                f"\nmean {np.mean(first):.4f} -> {np.mean(second):.4f}, "
                f"worst {np.max(first):.4f} -> {np.max(second):.4f}"
            )
        else:
            gap = np.abs(np.array(first) - args.coverage)
            print(
                f"\ncoverage: mean {np.mean(first):.3f}, farthest from "
                f"{args.coverage} by {gap.max():.3f}; mean width "
                f"{np.mean(second):.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
