"""Training on data with gaps: every method at several training missing
rates on mfeat, tested on the usual subsets.

For each rate `p`, `robult train --train-missing-rate p` (each present
modality of each training sample dropped with probability `p`, at least
one kept, drawn once per seed; the test split keeps every modality) writes
`<out>/rate-<p>/`; a folder whose `results.json` already holds every
method is read, not retrained, and otherwise the run resumes there: an
interrupted rate continues, and methods added to an earlier comparison are
trained alone (the finished pairs are kept). Then one table (single-view mean,
mean over the leave-one-out subsets, all views; mean over seeds) and one
plot (`<out>/train_missing_rate.png`) over the rates.

    python benchmarks/train_missing_rate.py --out results/train-gaps \\
        --rates 0 0.3 0.5 0.7 --methods robult unimodal gmc
"""

import argparse
import collections
import json
import os
import subprocess
import sys

import numpy as np


def summary(results, method):
    """`(single-view mean, leave-one-out mean, all views)` of one method
    (accuracy, mean over seeds), or None when it is not in the results."""
    modalities = results["modalities"]
    rows = collections.defaultdict(list)  # subset size -> means
    found = False
    for entry in results["results"]:
        if entry["method"] != method or entry["metric"] != "accuracy":
            continue
        found = True
        rows[len(entry["subset"])].append(entry["mean"])
    if not found:
        return None
    count = len(modalities)
    return (
        float(np.mean(rows[1])),
        float(np.mean(rows[count - 1])),
        float(np.mean(rows[count])),
    )


def _load(path):
    """The results in `path`, or None when there are none yet."""
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def plot(table, rates, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for method, values in table.items():
        for axis, column in zip(axes, (0, 2)):
            axis.plot(
                rates,
                [v[column] for v in values],
                marker="o",
                label=method,
            )
    for axis, title in zip(axes, ("single-view mean", "all views")):
        axis.set_xlabel("training missing rate")
        axis.set_ylabel("test accuracy")
        axis.set_title(f"mfeat, 5 % labels: {title}")
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7]
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["robult", "unimodal", "gmc", "actionmae", "prompt-trans"],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument(
        "--robult-options",
        nargs="*",
        default=[],
        help="extra robult train options, e.g. --late-fusion product",
    )
    args = parser.parse_args()
    table = {method: [] for method in args.methods}
    for rate in args.rates:
        folder = os.path.join(args.out, f"rate-{rate:.1f}")
        path = os.path.join(folder, "results.json")
        results = _load(path)
        if results is None or any(
            summary(results, method) is None for method in args.methods
        ):
            argv = ["train", "--out", folder, "--epochs", str(args.epochs)]
            argv += ["--seeds", *map(str, args.seeds)]
            argv += ["--methods", *args.methods, *args.robult_options]
            if rate > 0:
                argv += ["--train-missing-rate", str(rate)]
            # A process of its own: `robult train` replaces the process
            # that calls it when KERAS_BACKEND is not yet its backend.
            command = [sys.executable, "-m", "keras_robult_cli", *argv]
            if subprocess.run(command).returncode != 0:
                raise SystemExit(f"robult train failed at rate {rate}")
            results = _load(path)
        for method in args.methods:
            values = summary(results, method)
            if values is None:
                raise SystemExit(f"{path} holds no results of {method}")
            table[method].append(values)
    lines = [
        "| method | " + " | ".join(f"p = {r:.1f}" for r in args.rates) + " |",
        "|---|" + "---|" * len(args.rates),
    ]
    for method, values in table.items():
        cells = [f"{s:.3f} / {loo:.3f} / {a:.3f}" for s, loo, a in values]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    text = (
        "Test accuracy (mean over seeds): single-view mean / leave-one-out "
        "mean / all views\n\n" + "\n".join(lines) + "\n"
    )
    print(text)
    with open(os.path.join(args.out, "train_missing_rate.md"), "w") as f:
        f.write(text)
    plot(table, args.rates, os.path.join(args.out, "train_missing_rate.png"))


if __name__ == "__main__":
    main()
