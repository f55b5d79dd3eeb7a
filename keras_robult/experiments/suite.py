"""The comparison on every dataset of the suite
(`keras_robult.datasets.suite`), and its summary: one table per dataset,
and, per dataset and modality subset, whether Robult is at least as good
as the better of the simple references (`linear`, `mlp`).

`benchmarks/suite.py` is its command line.
"""

import json
import os

import numpy as np

from keras_robult.data.masking import subset_label
from keras_robult.datasets.suite import DATASETS
from keras_robult.experiments.comparison import (
    ComparisonConfig,
    ComparisonData,
    run_comparison,
)
from keras_robult.experiments.metrics import PRIMARY, higher_is_better
from keras_robult.experiments.results_schema import Results
from keras_robult.experiments.user_data import make_task
from keras_robult.utils.atomic import write_text

#: The methods of the suite: Robult, the paper's Robult, two baselines and
#: the two references.
SUITE_METHODS = ("robult", "robult-paper", "gmc", "unimodal", "linear", "mlp")
REFERENCE_METHODS = ("linear", "mlp")
#: `--quick`: one seed, fewer epochs, at most this many samples a dataset.
QUICK = {"seeds": (0,), "epochs": 60, "samples": 600}


def run_suite(
    out,
    datasets=None,
    methods=SUITE_METHODS,
    seeds=(0, 1, 2),
    epochs=150,
    max_samples=None,
    verbose=1,
):
    """Runs the comparison of `methods` on each of `datasets` (names of
    `DATASETS`; default all), each in `out/<dataset>/` (resumable, like
    any run folder), and writes `out/suite.md` and `out/suite.json`.

    Args:
        out: the suite's folder.
        datasets: dataset names; None: every one.
        methods: method names (the comparison's registry).
        seeds: the seeds of every comparison.
        epochs: the comparison's epoch budget.
        max_samples: at most this many samples of a dataset (a stratified
            draw, seeded), or None.
        verbose: 0 silent, 1 progress.

    Returns:
        The summary dict written to `suite.json`.
    """
    names = list(datasets or DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ValueError(
            f"Unknown dataset(s) {unknown}; the suite has {list(DATASETS)}."
        )
    summary = {"datasets": {}}
    for name in names:
        spec = DATASETS[name]
        x, y = spec.load()
        if max_samples and len(y) > max_samples:
            rows = np.sort(
                np.random.default_rng(0).permutation(len(y))[:max_samples]
            )
            x, y = {k: v[rows] for k, v in x.items()}, y[rows]
        data = ComparisonData(x, y, make_task(spec.task, y), name)
        config = ComparisonConfig(
            methods=tuple(methods),
            seeds=tuple(seeds),
            labeled_fraction=spec.labeled_fraction,
            epochs=epochs,
            train_missing_rate=spec.train_missing_rate,
            out=os.path.join(out, name),
            verbose=verbose,
        )
        if verbose:
            print(f"== {name}: {spec.stresses}", flush=True)
        results, folder = run_comparison(config, data)
        entry = dataset_summary(results, spec.stresses)
        if spec.task == "regression":
            entry["median_mae"] = median_mae(folder, y)
        summary["datasets"][name] = entry
    write_text(os.path.join(out, "suite.json"), json.dumps(summary, indent=1))
    write_text(os.path.join(out, "suite.md"), suite_markdown(summary))
    return summary


def median_mae(folder, y):
    """Per seed, the test MAE of predicting the labeled training samples'
    median (the floor a regression must clear), and their mean."""
    with open(os.path.join(folder, "labeled_indices.json")) as handle:
        splits = json.load(handle)
    values = [
        float(np.mean(np.abs(y[s["test"]] - np.median(y[s["labeled"]]))))
        for s in splits.values()
    ]
    return {"mean": float(np.mean(values)), "per_seed": values}


def dataset_summary(results, stresses=""):
    """One dataset's summary: per method, per subset, the primary metric's
    mean and standard deviation over the seeds (and its single-modality
    mean, `"single"`, per seed); and Robult against the references."""
    results = Results.from_dict(results)
    primary, _ = PRIMARY[results.task]
    modalities = results.modalities
    cells = {}
    for entry in results.summaries(primary).values():
        label = subset_label(entry.subset, modalities)
        cells.setdefault(entry.method, {})[label] = {
            "mean": entry.mean,
            "std": entry.std,
            "per_seed": entry.per_seed,
        }
    for method, subsets in cells.items():
        singles = [subsets[m]["per_seed"] for m in modalities if m in subsets]
        if len(modalities) > 1 and singles:
            per_seed = np.mean(singles, axis=0)
            subsets["single"] = {
                "mean": float(np.mean(per_seed)),
                "std": float(np.std(per_seed)),
                "per_seed": [float(v) for v in per_seed],
            }
    return {
        "task": results.task,
        "metric": primary,
        "stresses": stresses,
        "modalities": modalities,
        "cells": cells,
        "robult_vs_references": robult_against_references(
            cells, higher_is_better(primary)
        ),
    }


def robult_against_references(cells, higher, method="robult"):
    """Per subset: whether `method` is at least as good as the better of
    the references there, within one standard deviation (the larger of
    the two methods' over the seeds). None where a side is missing."""
    if method not in cells:
        return {}
    verdicts = {}
    for subset, mine in cells[method].items():
        references = [
            cells[r][subset]
            for r in REFERENCE_METHODS
            if subset in cells.get(r, {})
        ]
        if not references:
            continue
        pick = max if higher else min
        best = pick(references, key=lambda c: c["mean"])
        margin = max(mine["std"], best["std"])
        gap = (
            mine["mean"] - best["mean"]
            if higher
            else best["mean"] - mine["mean"]
        )
        verdicts[subset] = {
            "robult": mine["mean"],
            "reference": best["mean"],
            "at_least_as_good": bool(gap >= -margin),
            "ahead": bool(gap > 0),
        }
    return verdicts


def suite_markdown(summary):
    """The suite's report: a table per dataset (methods as rows; the
    single-modality mean, every subset's primary metric), then the count
    of subsets where Robult is ahead of, or within a standard deviation
    of, the better reference."""
    lines = ["# The suite", ""]
    totals = {"subsets": 0, "within": 0, "ahead": 0}
    for name, entry in summary["datasets"].items():
        methods = list(entry["cells"])
        subsets = list(
            dict.fromkeys(s for c in entry["cells"].values() for s in c)
        )
        subsets = ["single"] + [s for s in subsets if s != "single"]
        lines += [
            f"## {name}: {entry['metric']} ({entry['task']})",
            "",
            entry["stresses"] + ".",
            "",
            "| method | "
            + " | ".join(
                "single-modality mean" if s == "single" else s for s in subsets
            )
            + " |",
            "|---|" + "---|" * len(subsets),
        ]
        for method in methods:
            row = [
                _cell(entry["cells"][method].get(subset)) for subset in subsets
            ]
            lines.append(f"| {method} | " + " | ".join(row) + " |")
        if "median_mae" in entry:
            lines.append(
                "| predicting the labeled median | "
                + " | ".join(
                    f"{entry['median_mae']['mean']:.3f}" for _ in subsets
                )
                + " |"
            )
        verdicts = entry["robult_vs_references"]
        within = [s for s, v in verdicts.items() if v["at_least_as_good"]]
        ahead = [s for s, v in verdicts.items() if v["ahead"]]
        totals["subsets"] += len(verdicts)
        totals["within"] += len(within)
        totals["ahead"] += len(ahead)
        behind = [s for s in verdicts if s not in within]
        lines += [
            "",
            f"robult against the better of linear and mlp: ahead on "
            f"{len(ahead)} of {len(verdicts)} subsets, at least as good "
            f"(within one standard deviation) on {len(within)}"
            + (f"; behind on {', '.join(behind)}" if behind else "")
            + ".",
            "",
        ]
    lines.append(
        f"**All datasets**: robult is ahead of the better reference on "
        f"{totals['ahead']} of {totals['subsets']} subsets and at least as "
        f"good on {totals['within']}."
    )
    return "\n".join(lines) + "\n"


def _cell(cell):
    if cell is None:
        return "–"
    return f"{cell['mean']:.3f} ± {cell['std']:.3f}"


def quick_settings():
    """The settings of `--quick` (a dict of `run_suite` arguments)."""
    return dict(
        seeds=QUICK["seeds"],
        epochs=QUICK["epochs"],
        max_samples=QUICK["samples"],
    )


__all__ = [
    "run_suite",
    "dataset_summary",
    "robult_against_references",
    "suite_markdown",
    "median_mae",
    "quick_settings",
    "SUITE_METHODS",
]
