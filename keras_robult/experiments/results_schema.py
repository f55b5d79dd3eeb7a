"""The schema of `results.json`, typed: what a run, `robult evaluate`, the
tuner, the reports and the documentation read and write.

`Results.from_dict` checks a results dict (a malformed entry is a
`ValueError` that names it) and gives typed entries; `Results.to_dict`
gives the dict back with its keys in the order they came, so a file read
and written again is byte for byte the same.
"""

import dataclasses
import json

from keras_robult.data.masking import subset_name

#: The keys of every results dict, in the order a run writes them.
REQUIRED_KEYS = (
    "dataset",
    "task",
    "labeled_fraction",
    "seeds",
    "modalities",
    "results",
    "missing_rate_curves",
)


@dataclasses.dataclass
class SubsetSummary:
    """One metric of one method on one modality subset, over the seeds
    (an entry of `"results"`)."""

    method: str
    subset: list
    metric: str
    mean: float
    std: float
    per_seed: list


@dataclasses.dataclass
class MissingTypeSummary:
    """One metric of one method at one test `MissingSpec` (an entry of
    `"missing_type"`)."""

    method: str
    train: str
    test: str
    metric: str
    mean: float
    std: float
    per_seed: list


@dataclasses.dataclass
class MissingRateCurve:
    """A method's mean metric at each missing rate, and its AUC."""

    method: str
    metric: str
    rates: list
    mean: list
    auc: float

    def __post_init__(self):
        if len(self.rates) != len(self.mean):
            raise ValueError("A curve needs one value per rate.")


@dataclasses.dataclass
class Robustness:
    """A curve's relative robustness, and its effective robustness against
    the `reference` method (None where the run has no reference)."""

    method: str
    metric: str
    relative: float
    effective: float | None
    reference: str | None


@dataclasses.dataclass
class ReliabilityCurve:
    """A method's reliability curve at `present` modalities: each bin's
    mean confidence and accuracy (calibrated or not)."""

    method: str
    calibrated: bool
    present: int
    confidence: list
    accuracy: list


@dataclasses.dataclass
class Failure:
    """A (method, seed) whose training loss became NaN or infinite."""

    method: str
    seed: int
    epoch: int
    message: str


#: The optional lists, in the order a run writes them.
_RUN_ORDER = ("robustness", "missing_type", "cost", "reliability")
#: Each list of the schema and the type of its entries.
ENTRY_TYPES = {
    "results": SubsetSummary,
    "missing_rate_curves": MissingRateCurve,
    "robustness": Robustness,
    "missing_type": MissingTypeSummary,
    "reliability": ReliabilityCurve,
    "failures": Failure,
}
#: How an error names a malformed entry of each list.
_ENTRY_NAMES = {
    "results": "results",
    "missing_rate_curves": "curve",
    "robustness": "robustness",
    "missing_type": "missing-type",
    "reliability": "reliability",
    "failures": "failure",
}


def _entry(kind, fields):
    """An entry of the list `kind` from its dict, or a `ValueError`."""
    klass = ENTRY_TYPES[kind]
    names = {f.name for f in dataclasses.fields(klass)}
    if not isinstance(fields, dict) or set(fields) != names:
        found = sorted(fields) if isinstance(fields, dict) else fields
        raise ValueError(f"Malformed {_ENTRY_NAMES[kind]} entry: {found}.")
    return klass(**fields)


@dataclasses.dataclass
class Results:
    """A `results.json`: the run it describes, its per-subset summaries,
    missing-rate curves and robustness, and what else the run recorded.

    Args:
        dataset: the dataset's name.
        task: the task's name (`"classification"`, ...).
        labeled_fraction: the labeled share of the training splits (None
            for `robult evaluate` of a saved model).
        seeds: the seeds.
        modalities: the modality names, in order.
        results: `SubsetSummary` entries.
        missing_rate_curves: `MissingRateCurve` entries.
        robustness: `Robustness` entries.
        missing_type: `MissingTypeSummary` entries.
        reliability: `ReliabilityCurve` entries.
        failures: `Failure` entries.
        cost: dicts, a method's mean cost over its seeds (`"method"`,
            `"seeds"` and the measured fields of `COST_FIELDS`).
        extra: every other key of the file, as it is (`"calibration"`,
            `"hparams"`, `"model"`, a recipe's own fields, ...).

    Example:

    ```python
    results = keras_robult.experiments.Results.load("results/run")
    table = results.summaries("accuracy")  # (method, subset) -> summary
    ```
    """

    dataset: str
    task: str
    labeled_fraction: float | None
    seeds: list
    modalities: list
    results: list
    missing_rate_curves: list
    robustness: list = dataclasses.field(default_factory=list)
    missing_type: list = dataclasses.field(default_factory=list)
    reliability: list = dataclasses.field(default_factory=list)
    failures: list = dataclasses.field(default_factory=list)
    cost: list = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)
    #: The order of the keys of the dict this came from (to write it back
    #: byte for byte); None: the order a run writes.
    key_order: tuple | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_dict(cls, results):
        """The typed `Results` of a results dict, or a `ValueError` that
        names what does not follow the schema."""
        if not isinstance(results, dict):
            raise ValueError("A results file holds a JSON object.")
        kinds = {
            "dataset": str,
            "task": str,
            "labeled_fraction": (int, float, type(None)),
            "seeds": list,
            "modalities": list,
        }
        for key in REQUIRED_KEYS:
            kind = kinds.get(key, list)
            if key not in results or not isinstance(results[key], kind):
                name = getattr(kind, "__name__", "number")
                raise ValueError(f"results[{key!r}] must be a {name}.")
        if results["labeled_fraction"] is None and "model" not in results:
            # Only an evaluation of a saved model has no training split.
            raise ValueError("results['labeled_fraction'] must be a float.")
        typed = {
            key: [_entry(key, e) for e in results.get(key, [])]
            for key in ENTRY_TYPES
        }
        for entry in results.get("cost", []):
            if not isinstance(entry, dict) or "method" not in entry:
                raise ValueError(f"Malformed cost entry: {entry}.")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{k: results[k] for k in REQUIRED_KEYS[:5]},
            **typed,
            cost=list(results.get("cost", [])),
            extra={k: v for k, v in results.items() if k not in known},
            key_order=tuple(results),
        )

    @classmethod
    def load(cls, path):
        """The `Results` of a `results.json` file, or of the run folder
        that holds one."""
        if not path.endswith(".json"):
            path = f"{path.rstrip('/')}/results.json"
        with open(path) as handle:
            return cls.from_dict(json.load(handle))

    def to_dict(self):
        """The results dict: its keys in the order they were read (a run's
        own order for new ones), entries as dicts; an optional list that
        is empty, and was not read so, is left out (a run's
        `"robustness"` is always written)."""
        values = {
            "dataset": self.dataset,
            "task": self.task,
            "labeled_fraction": self.labeled_fraction,
            "seeds": list(self.seeds),
            "modalities": list(self.modalities),
        }
        written = self.key_order
        if written is None:  # a run's: its robustness even if empty
            written = (*REQUIRED_KEYS, "robustness")
        for key in (*ENTRY_TYPES, "cost"):
            entries = getattr(self, key)
            if entries or key in written:
                values[key] = [
                    dataclasses.asdict(e) if key != "cost" else dict(e)
                    for e in entries
                ]
        values.update(self.extra)
        order = [k for k in self.key_order or () if k in values]
        canonical = (*REQUIRED_KEYS, *_RUN_ORDER)
        order += [k for k in canonical if k in values and k not in order]
        order += [k for k in values if k not in order]
        return {key: values[key] for key in order}

    @classmethod
    def merge_grid(cls, runs, **records):
        """One `Results` of the missing-type cells of several runs, each
        trained at its own spec (`run_comparison`'s grid, `runs`: dict
        training spec -> `Results`): the first run's header and records,
        every run's missing-type entries and costs (a cost with its
        `"train"` spec), then `records`. The per-subset summaries and the
        curves stay each run's own (in its folder)."""
        first = next(iter(runs.values()))
        left_out = ("missing_type", "train_missing", "test_missing")
        order = [k for k in first.to_dict() if k not in left_out]
        order += [k for k in ("missing_type", "cost") if k not in order]
        return cls(
            dataset=first.dataset,
            task=first.task,
            labeled_fraction=first.labeled_fraction,
            seeds=first.seeds,
            modalities=first.modalities,
            results=[],
            missing_rate_curves=[],
            missing_type=[e for r in runs.values() for e in r.missing_type],
            reliability=first.reliability,
            failures=first.failures,
            cost=[
                dict(c, train=train)
                for train, r in runs.items()
                for c in r.cost
            ],
            extra={
                **{k: v for k, v in first.extra.items() if k not in left_out},
                **records,
            },
            key_order=(*order, *records),
        )

    def methods(self):
        """The methods of the per-subset summaries, in order."""
        return list(dict.fromkeys(e.method for e in self.results))

    def summaries(self, metric):
        """dict `(method, subset name)` -> `SubsetSummary` of `metric`
        (subset names as `keras_robult.data.subset_name` gives them, the
        full set `"all"`), in the order of the file."""
        return {
            (e.method, subset_name(e.subset, self.modalities)): e
            for e in self.results
            if e.metric == metric
        }

    def curves(self, metric=None):
        """dict method -> `MissingRateCurve` (of `metric`, if given)."""
        return {
            c.method: c
            for c in self.missing_rate_curves
            if metric is None or c.metric == metric
        }
