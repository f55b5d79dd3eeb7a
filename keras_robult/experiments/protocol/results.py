"""The `results.json` schema: per-seed records tallied as the pairs
finish, summarised to means, standard deviations, robustness and cost."""

import dataclasses

import numpy as np

from keras_robult.experiments.metrics import higher_is_better
from keras_robult.experiments.protocol.evaluation import (
    MISSING_RATES,
    missing_rate_auc,
)
from keras_robult.experiments.results_schema import (
    MissingRateCurve,
    MissingTypeSummary,
    ReliabilityCurve,
    Results,
    Robustness,
    SubsetSummary,
)
from keras_robult.experiments.robustness import effective_robustness


class Tally:
    """The per-seed metrics of every method, as its (method, seed) pairs
    finish: what `summarise_results` averages.

    Args:
        primary: the metric of the line printed per pair.
        verbose: 1 prints a line per pair (and its failure), 0 nothing.

    Example:

    ```python
    tally = keras_robult.experiments.Tally("accuracy", verbose=0)
    subsets, curve = keras_robult.experiments.evaluate_predictor(
        predict, x_test, y_test, "classification", ["a", "b"])
    tally.add("mine", {"subsets": subsets, "curve": curve}, seconds=0)
    ```
    """

    def __init__(self, primary, verbose=1):
        self.primary = primary
        self.verbose = verbose
        self.per_subset = {}  # (method, subset, metric) -> [per seed]
        self.curves = {}  # method -> [per seed curve]
        self.per_missing = {}  # (method, test spec, metric) -> [per seed]
        self.costs = {}  # method -> [per seed cost dict]
        self.reliability = {}  # method -> [per seed reliability curves]
        self.failures = []

    def add(self, name, record, seconds):
        """Adds one (method `name`, seed) pair's `record`: its
        `"subsets"` metrics and `"curve"` (`evaluate_predictor`), with
        optional `"missing_type"`, `"cost"` and `"reliability"`, or a
        `"failure"`; `seconds` it took, for the printed line."""
        if "failure" in record:
            self.failures.append(record["failure"])
            if self.verbose:
                print(f"  {record['failure']['message']}", flush=True)
            return
        subset_metrics = record["subsets"]
        for subset, metrics in subset_metrics.items():
            for metric, value in metrics.items():
                key = (name, subset, metric)
                self.per_subset.setdefault(key, []).append(value)
        self.curves.setdefault(name, []).append(record["curve"])
        for spec, metrics in record.get("missing_type", {}).items():
            for metric, value in metrics.items():
                key = (name, spec, metric)
                self.per_missing.setdefault(key, []).append(value)
        if "cost" in record:
            self.costs.setdefault(name, []).append(record["cost"])
        if "reliability" in record:
            self.reliability.setdefault(name, []).append(record["reliability"])
        if not self.verbose:
            return
        primary = self.primary
        single = [
            metrics[primary]
            for subset, metrics in subset_metrics.items()
            if "+" not in subset and subset != "all"
        ]
        whole = subset_metrics.get("all")
        if single:
            summary = f"single-modality mean {primary} {np.mean(single):.4f}"
            if whole:
                summary += f", all {whole[primary]:.4f}"
        elif whole:  # one modality: its subset is the full set
            summary = f"{primary} {whole[primary]:.4f}"
        else:
            summary = "no subset with test samples"
        print(f"  {name}: {summary} ({seconds:.0f} s)", flush=True)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What `results.json` says of the run its metrics come from.

    Args:
        dataset: the dataset's name.
        task: the `Task`.
        primary: the metric of the missing-rate curves.
        labeled_fraction: the labeled share of the training splits (None:
            not a training run, e.g. `robult evaluate`).
        seeds: the seeds.
        modalities: the modality names, in order.
        train_spec: the training `MissingSpec` as text, if any.
    """

    dataset: str
    task: object
    primary: str
    labeled_fraction: float | None
    seeds: tuple
    modalities: tuple
    train_spec: str | None = None


def summarise_results(info, tally, reference="unimodal"):
    """The `results.json` dict of a run (`info`, a `RunInfo`) from the
    per-seed metrics of its `tally` (a `Tally`): each subset metric of
    each method gets its mean and standard deviation over the seeds, each
    method its mean missing-rate curve of `info.primary` and its AUC.

    The tally's missing-type metrics become `"missing_type"` entries (with
    `info.train_spec`, `"none"` without one), its cost records `"cost"`
    (their means), its reliability curves `"reliability"`. Every curve
    gets a `"robustness"` entry: relative robustness, and effective
    robustness against the `reference` method's curve when the run has
    it."""
    modalities = list(info.modalities)
    results = [
        SubsetSummary(
            method,
            modalities if subset == "all" else subset.split("+"),
            metric,
            *_over_seeds(values),
        )
        for (method, subset, metric), values in tally.per_subset.items()
    ]
    curves = []
    for method, per_seed in tally.curves.items():
        mean = np.mean(np.asarray(per_seed, "float64"), axis=0)
        curves.append(
            MissingRateCurve(
                method,
                info.primary,
                list(MISSING_RATES),
                [float(v) for v in mean],
                missing_rate_auc(MISSING_RATES, mean),
            )
        )
    fraction = info.labeled_fraction
    return Results(
        dataset=info.dataset,
        task=info.task.name,
        labeled_fraction=None if fraction is None else float(fraction),
        seeds=[int(s) for s in info.seeds],
        modalities=modalities,
        results=results,
        missing_rate_curves=curves,
        robustness=_robustness(curves, reference),
        missing_type=[
            MissingTypeSummary(
                method,
                info.train_spec or "none",
                spec,
                metric,
                *_over_seeds(values),
            )
            for (method, spec, metric), values in tally.per_missing.items()
        ],
        cost=[
            _mean_cost(method, records)
            for method, records in tally.costs.items()
        ],
        reliability=[
            entry
            for method, records in tally.reliability.items()
            for entry in _mean_reliability(method, records)
        ],
    ).to_dict()


def _over_seeds(values):
    """`(mean, std, per_seed)` of per-seed values, as floats."""
    return (
        float(np.mean(values)),
        float(np.std(values)),
        [float(v) for v in values],
    )


def _mean_reliability(method, records):
    """A method's reliability curves (`"raw"`, and `"calibrated"` when
    calibrated), per number of present modalities, each bin's mean
    confidence and accuracy averaged over the seeds."""
    entries = []
    for kind in ("raw", "calibrated"):
        for count in sorted(records[0].get(kind, {}), key=int):
            curves = [r[kind][count] for r in records if kind in r]
            size = min(len(c["confidence"]) for c in curves)
            entries.append(
                ReliabilityCurve(
                    method,
                    kind == "calibrated",
                    int(count),
                    *(
                        [
                            float(np.mean([c[field][i] for c in curves]))
                            for i in range(size)
                        ]
                        for field in ("confidence", "accuracy")
                    ),
                )
            )
    return entries


def _robustness(curves, reference):
    """One `Robustness` entry per missing-rate curve."""
    base = next((c for c in curves if c.method == reference), None)
    return [
        Robustness(
            curve.method,
            curve.metric,
            curve.auc,  # relative_robustness of the curve
            None
            if base is None
            else effective_robustness(
                curve.rates,
                curve.mean,
                base.mean,
                higher_is_better(curve.metric),
            ),
            reference if base else None,
        )
        for curve in curves
    ]


def _mean_cost(method, records):
    """A method's cost: each measured field's mean over its seeds."""
    entry = {"method": method, "seeds": len(records)}
    for field in COST_FIELDS:
        values = [r[field] for r in records if r.get(field) is not None]
        if values:
            entry[field] = float(np.mean(values))
    shared = {r["shared_with"] for r in records if r.get("shared_with")}
    if shared:
        entry["shared_with"] = sorted(shared)[0]
    return entry


#: The measured fields of a cost record, in table order.
COST_FIELDS = (
    "parameters",
    "train_seconds_per_epoch",
    "epochs",
    "train_seconds",
    "peak_host_mib",
    "peak_device_mib",
    "predict_seconds_per_1000",
)
