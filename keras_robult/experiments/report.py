"""Writes a protocol's results: JSON, a markdown table, a PNG plot."""

import os
import warnings

import numpy as np

from keras_robult.data.masking import subset_label
from keras_robult.experiments.confidence import CALIBRATION_METRICS
from keras_robult.experiments.metrics import PRIMARY
from keras_robult.experiments.results_schema import Results
from keras_robult.utils.atomic import (
    atomic_path,
    write_json,
    write_text,
)


def validate_results(results):
    """Raises `ValueError` if `results` does not follow the schema
    (`Results.from_dict`)."""
    Results.from_dict(results)


def _typed(results):
    """`results` as a `Results` (a results dict is checked)."""
    if isinstance(results, Results):
        return results
    return Results.from_dict(results)


def markdown_table(results, metric=None):
    """Subsets as rows, methods as columns: `mean ± std` of `metric`
    (default the task's primary metric), then the missing-rate AUC when
    the curve is of that metric. `results`: a results dict or `Results`."""
    results = _typed(results)
    metric = metric or PRIMARY[results.task][0]
    modalities = results.modalities
    methods = results.methods()
    cells = results.summaries(metric)
    rows = list(dict.fromkeys(row for _, row in cells))
    one = len(results.seeds) == 1
    lines = [
        f"{metric} on {results.dataset}, {_setting(results)}"
        + ("" if one or "model" in results.extra else " (mean ± std)"),
        "",
        "| subset | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    singles = {m: [] for m in methods}
    for row in rows:
        values = []
        for method in methods:
            entry = cells.get((method, row))
            if entry is None:
                values.append("–")
                continue
            values.append(_cell(entry, one))
            if row in modalities:
                singles[method].append(entry.mean)
        subset = modalities if row == "all" else row.split("+")
        label = subset_label(subset, modalities)
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    if any(singles.values()):
        lines.append(
            "| single-modality mean | "
            + " | ".join(
                f"{np.mean(v):.3f}" if v else "–" for v in singles.values()
            )
            + " |"
        )
    lines.extend(_robustness_rows(results, metric, methods))
    for failure in results.failures:
        lines.append(
            f"\nFailed: {failure.method}, seed {failure.seed} (loss "
            f"NaN or infinite in epoch {failure.epoch}); its seed is "
            "left out of the means above."
        )
    return "\n".join(lines) + "\n"


def _robustness_rows(results, metric, methods):
    """The table's missing-rate AUC and effective-robustness rows (where
    the results have them for `metric`)."""
    aucs = {m: c.auc for m, c in results.curves(metric).items()}
    effective = {
        r.method: r.effective
        for r in results.robustness
        if r.effective is not None and r.metric == metric
    }
    rows = []
    if aucs:
        rows.append(
            "| missing-rate AUC | "
            + " | ".join(
                f"{aucs[m]:.3f}" if m in aucs else "–" for m in methods
            )
            + " |"
        )
    if effective:
        reference = next(
            (r.reference for r in results.robustness if r.reference), None
        )
        rows.append(
            f"| effective robustness (vs {reference}) | "
            + " | ".join(
                f"{effective[m]:+.3f}" if m in effective else "–"
                for m in methods
            )
            + " |"
        )
    return rows


def _cell(entry, one):
    """`mean` of a one-seed summary, else `mean ± std`."""
    if one:
        return f"{entry.mean:.3f}"
    return f"{entry.mean:.3f} ± {entry.std:.3f}"


def missing_type_table(results, metric=None):
    """The missing-type protocol's cells: a row per (train spec, test
    spec), methods as columns, `mean ± std` of `metric`; "" without
    cells. `results`: a results dict or `Results`."""
    results = _typed(results)
    metric = metric or PRIMARY[results.task][0]
    entries = [e for e in results.missing_type if e.metric == metric]
    if not entries:
        return ""
    methods = list(dict.fromkeys(e.method for e in entries))
    rows = list(dict.fromkeys((e.train, e.test) for e in entries))
    cells = {(e.method, e.train, e.test): e for e in entries}
    one = len(results.seeds) == 1
    lines = [
        f"{metric} under the missing-type protocol (TYPE:RATE, RATE the "
        "fraction of incomplete samples) on "
        f"{results.dataset}, {_setting(results)}",
        "",
        "| train | test | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for train, test in rows:
        values = []
        for method in methods:
            entry = cells.get((method, train, test))
            values.append("–" if entry is None else _cell(entry, one))
        lines.append(f"| {train} | {test} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def cost_table(results):
    """Parameters, training time, peak memory and prediction time per
    method (means over seeds; times depend on the machine); "" without a
    cost report. `results`: a results dict or `Results`."""
    results = _typed(results)
    costs = results.cost
    if not costs:
        return ""
    device = any("peak_device_mib" in c for c in costs)
    header = (
        "| method | parameters | s / epoch (with compilation) | epochs | "
        "peak host MiB (training, evaluation) | "
        + ("peak device MiB | " if device else "")
        + "s / 1,000 predictions |"
    )
    lines = [
        f"Cost on {results.dataset} (this machine; training shared "
        "between methods is the training method's)",
        "",
        header,
        "|---|" + "---|" * (header.count("|") - 2),
    ]
    for cost in costs:
        name = cost["method"]
        if cost.get("shared_with"):
            name += f" (trained as {cost['shared_with']})"
        cells = [
            name,
            f"{cost['parameters']:,.0f}" if "parameters" in cost else "–",
            f"{cost['train_seconds_per_epoch']:.3f}",
            f"{cost['epochs']:.0f}",
            f"{cost['peak_host_mib']:,.0f}",
        ]
        if device:
            peak = cost.get("peak_device_mib")
            cells.append("–" if peak is None else f"{peak:,.0f}")
        cells.append(f"{cost['predict_seconds_per_1000']:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report_metrics(results, metrics=None):
    """The metrics of `results.md`'s tables: `metrics` (default the
    primary one) and, in a calibrated run, the uncalibrated and calibrated
    ECE (classification) or the intervals' coverage and width
    (regression)."""
    if "calibration" not in results:
        return metrics
    task = results["task"]
    extra = {
        "classification": ("ece", "calibrated_ece"),
        "regression": CALIBRATION_METRICS["regression"],
    }[task]
    chosen = list(metrics or [PRIMARY[task][0]])
    return chosen + [m for m in extra if m not in chosen]


def report_tables(results, metrics=None):
    """Every table of `results.md`: the subset table of each metric, the
    missing-type table of each, then the cost table."""
    results = _typed(results)  # checked once for every table
    tables = [markdown_table(results, m) for m in metrics or [None]]
    tables += [missing_type_table(results, m) for m in metrics or [None]]
    tables.append(cost_table(results))
    return [t for t in tables if t]


def _percent(fraction):
    """`0.05` -> `5%`, `0.125` -> `12.5%`: never rounded to another value
    at the shown precision."""
    text = f"{100 * fraction:.3g}"
    return f"{text}%"


def _setting(results):
    """The table's title after the dataset: the labeled fraction and the
    seeds of a run, or the model an evaluation read (a `Results`)."""
    if "model" in results.extra:
        return f"model {results.extra['model']}"
    seeds = results.seeds
    return (
        f"{_percent(results.labeled_fraction)} labeled, "
        + ("seed " if len(seeds) == 1 else "seeds ")
        + ", ".join(map(str, seeds))
    )


def plot_missing_rate(results, path):
    """PNG of the curve metric against the missing rate, per method."""
    import matplotlib  # seconds to load: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), dpi=120)
    for curve in results["missing_rate_curves"]:
        axis.plot(
            curve["rates"],
            curve["mean"],
            marker="o",
            label=f"{curve['method']} (AUC {curve['auc']:.3f})",
        )
    metric = PRIMARY[results["task"]][0]
    for curve in results["missing_rate_curves"]:
        metric = curve.get("metric", metric)
    axis.set_xlabel("missing rate p (each modality dropped independently)")
    axis.set_ylabel(metric)
    setting = (
        f"model {results['model']}"
        if "model" in results
        else f"{_percent(results['labeled_fraction'])} labeled"
    )
    axis.set_title(f"{results['dataset']}: {metric} vs missing rate, {setting}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_reliability(results, path):
    """PNG of the reliability curves (`results["reliability"]`): one
    panel per method, one curve per number of present modalities, the
    calibrated curves solid and the uncalibrated ones dashed."""
    import matplotlib  # seconds to load: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = results["reliability"]
    methods = list(dict.fromkeys(e["method"] for e in entries))
    counts = sorted({e["present"] for e in entries})
    columns = min(len(methods), 4)
    rows = -(-len(methods) // columns)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(3.2 * columns, 3.2 * rows),
        dpi=120,
        squeeze=False,
    )
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(counts)))
    for axis, method in zip(axes.flat, methods):
        axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        for entry in entries:
            if entry["method"] != method:
                continue
            colour = colours[counts.index(entry["present"])]
            axis.plot(
                entry["confidence"],
                entry["accuracy"],
                color=colour,
                linestyle="-" if entry["calibrated"] else "--",
                marker="." if entry["calibrated"] else None,
                label=f"{entry['present']} present"
                + ("" if entry["calibrated"] else ", uncalibrated"),
            )
        axis.set_title(method, fontsize=9)
        axis.set_xlabel("confidence", fontsize=8)
        axis.set_ylabel("accuracy", fontsize=8)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(methods) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=6)
    figure.suptitle(
        f"{results['dataset']}: reliability per number of present "
        "modalities (15 equal-mass bins)",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_results(results, splits, out_dir, metrics=None):
    """Writes `results.json`, `results.md` (one table per metric of
    `metrics`, default the primary metric), `missing_rate.png` (and
    `reliability.png` for results with reliability curves) and
    `labeled_indices.json` under `out_dir`; returns their paths."""
    validate_results(results)
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        "json": os.path.join(out_dir, "results.json"),
        "markdown": os.path.join(out_dir, "results.md"),
        "plot": os.path.join(out_dir, "missing_rate.png"),
        "splits": os.path.join(out_dir, "labeled_indices.json"),
    }
    # Each file under a temporary name, then renamed into place: an
    # interruption leaves the previous file or the new one, never half.
    write_json(paths["json"], results)
    write_text(paths["markdown"], "\n".join(report_tables(results, metrics)))
    write_json(
        paths["splits"],
        {f"seed_{k}": v for k, v in splits.items()},
        indent=None,
    )
    # Last, and never fatal: the numbers above are already on disk.
    try:
        with atomic_path(paths["plot"]) as temporary:
            plot_missing_rate(results, temporary)
    except Exception as error:  # e.g. no matplotlib, no writable font cache
        warnings.warn(f"Could not draw {paths['plot']}: {error}")
        del paths["plot"]
    if results.get("reliability"):
        paths["reliability"] = os.path.join(out_dir, "reliability.png")
        try:
            with atomic_path(paths["reliability"]) as temporary:
                plot_reliability(results, temporary)
        except Exception as error:
            warnings.warn(f"Could not draw {paths['reliability']}: {error}")
            del paths["reliability"]
    return paths
