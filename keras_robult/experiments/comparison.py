"""One comparison run: every method on every seed of one dataset, the
results folder written. `robult train` and every recipe run through
`run_comparison`; they differ only in how they build its two arguments.
"""

import dataclasses
import datetime
import importlib.util
import os

import keras
import numpy as np

from keras_robult.data.missing_spec import (
    MissingSpec,
    literature_grid,
    missing_specs,
)
from keras_robult.distribution import training_context
from keras_robult.experiments.comparison_data import ComparisonData
from keras_robult.experiments.protocol import ProtocolOptions, run_protocol
from keras_robult.experiments.protocol.options import DEFAULTS
from keras_robult.experiments.registry import (
    DEFAULT_METHODS,
    METHODS,
    expand_methods,
    method_factories,
)
from keras_robult.experiments.report import (
    missing_type_table,
    report_metrics,
    report_tables,
    write_results,
)
from keras_robult.experiments.results_schema import Results
from keras_robult.experiments.run_store import RunStore, run_lock
from keras_robult.experiments.training_backup import DEFAULT_INTERVAL
from keras_robult.models.robult import LATE_FUSION_RULES
from keras_robult.utils.atomic import write_json, write_text

__all__ = [
    "GRIDS",
    "ComparisonConfig",
    "ComparisonData",  # in comparison_data.py; kept importable from here
    "default_out",
    "robult_options",
    "run_comparison",
    "tensorboard_callbacks",
]

#: The grids of `--grid`.
GRIDS = ("literature",)
#: The options a comparison gives `run_protocol` as they are.
_PROTOCOL_FIELDS = (
    "seeds",
    "labeled_fraction",
    "epochs",
    "batch_size",
    "train_missing_rate",
    "backup_interval",
    "calibration_fraction",
    "coverage",
    "verbose",
)


@dataclasses.dataclass(frozen=True)
class ComparisonConfig:
    """How a comparison trains and where it writes: the same for every
    method. Checked when made (the messages name the command's options).

    Args:
        methods: names of `keras_robult.experiments.registry.METHODS`;
            `None`: all of them (`DEFAULT_METHODS`).
        seeds: one split, labeled subset, initialisation and training per
            seed.
        labeled_fraction: fraction of the training split that keeps its
            label (ignored where the data marks its own labeled samples).
        epochs: at most this many epochs.
        batch_size: training batch size (the global one when
            `distribute`).
        latent_dim: width of every method's shared latent space.
        patience: early-stopping patience on the validation split; `None`
            keeps each method's own default.
        train_missing_rate: training data with gaps (drawn once per seed:
            `run_protocol`), each modality of a sample independently.
        train_missing: `"TYPE:RATE"`, training data with gaps under the
            missing-type protocol (`keras_robult.data.MissingSpec`).
        test_missing: `"TYPE:RATE"` specs, each a row of the missing-type
            table.
        both_ratio: the share of the incomplete samples of a two-modality
            `both` spec that lose the first modality.
        grid: `"literature"`: one comparison per training spec of
            `literature_grid` (in `out/train-<TYPE>-<RATE>/`), each tested
            at its specs, and their missing-type tables merged in `out`.
        modality_dropout: augmentation, new draws every epoch.
        late_fusion: `"mean"` or `"product"`: every Robult variant's rule
            for modality subsets; `None` keeps each variant's own.
        out: the results folder; `None`: `results/<dataset>-<time>`.
        restart: forget the pairs already finished in `out`.
        backup_interval: seconds between two backups of a fit in `out`
            (0: every epoch); a rerun resumes from the last one.
        distribute: train data-parallel on every local device.
        hparams: what `keras_robult.experiments.hparams.load_hparams`
            returns: one method's hyper-parameters, recorded in
            `results.json` (`"hparams"`) and in the run configuration.
        tensorboard: a folder: every training writes TensorBoard logs of
            each loss term and validation metric per epoch to
            `<folder>/<method>-seed<seed>` (the `tune` extra).
        calibration_fraction: above 0, the fraction of each seed's labeled
            training samples held out to calibrate every method per
            presence pattern (`run_protocol`); 0 (default): no
            calibration.
        coverage: the nominal coverage of the regression intervals of a
            calibrated run.
        verbose: 0 silent; 1 progress and a line per (method, seed).
    """

    methods: tuple | None = None
    seeds: tuple = DEFAULTS.seeds
    labeled_fraction: float = DEFAULTS.labeled_fraction
    epochs: int = DEFAULTS.epochs
    batch_size: int = DEFAULTS.batch_size
    latent_dim: int = 128
    patience: int | None = None
    train_missing_rate: float = 0.0
    train_missing: str | None = None
    test_missing: tuple = ()
    both_ratio: float = 0.5
    grid: str | None = None
    modality_dropout: float = 0.0
    late_fusion: str | None = None
    out: str | None = None
    restart: bool = False
    backup_interval: float = DEFAULT_INTERVAL
    distribute: bool = False
    hparams: dict | None = None
    tensorboard: str | None = None
    calibration_fraction: float = DEFAULTS.calibration_fraction
    coverage: float = DEFAULTS.coverage
    verbose: int = 1

    def __post_init__(self):
        if not 0 < self.labeled_fraction <= 1:
            raise ValueError(
                "`labeled_fraction` must be in (0, 1]; got "
                f"{self.labeled_fraction}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("`epochs` and `batch_size` must be positive")
        if not self.seeds or min(self.seeds) < 0:
            raise ValueError(
                "`seeds` must be non-negative integers; got "
                + " ".join(map(str, self.seeds))
            )
        if self.backup_interval < 0:
            raise ValueError(
                "`backup_interval` must be >= 0 seconds; got "
                f"{self.backup_interval}"
            )
        if self.latent_dim < 2:
            raise ValueError("`latent_dim` must be at least 2")
        for name in (
            "train_missing_rate",
            "modality_dropout",
            "calibration_fraction",
        ):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"`{name}` must be in [0, 1); got {value}")
        if not 0 < self.coverage < 1:
            raise ValueError(
                f"`coverage` must be in (0, 1); got {self.coverage}"
            )
        if self.train_missing is not None and self.train_missing_rate > 0:
            raise ValueError(
                "`train_missing` and `train_missing_rate` are two protocols "
                "of training gaps; give one of them."
            )
        if self.grid not in (None, *GRIDS):
            raise ValueError(f"`grid` must be one of {GRIDS}; got {self.grid}")
        if self.grid and (
            self.train_missing or self.test_missing or self.train_missing_rate
        ):
            raise ValueError(
                "`grid` literature chooses the training and test specs "
                "itself; leave out `train_missing`, `test_missing` and "
                "`train_missing_rate`."
            )
        # Syntax, rates and duplicates here; modality names with the data.
        _ = (self.train_spec, self.test_specs)
        if self.late_fusion not in (None, *LATE_FUSION_RULES):
            raise ValueError(
                f"`late_fusion` must be one of {LATE_FUSION_RULES}; got "
                f"{self.late_fusion!r}"
            )
        if self.methods is not None:
            method_factories(self.methods)  # unknown names fail here
        if self.hparams and self.hparams["method"] not in self.method_names:
            raise ValueError(
                f"`hparams` are {self.hparams['method']}'s, which `methods` "
                "leaves out."
            )
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise RuntimeError(
                "`tensorboard` needs TensorBoard: pip install "
                "'keras-robult[tune]'"
            )

    def protocol_options(self, **run):
        """The `ProtocolOptions` of this comparison: its own options of
        the protocol, then `run` (the data's splits, the run folder's
        store) over them."""
        shared = {name: getattr(self, name) for name in _PROTOCOL_FIELDS}
        shared["train_missing"] = self.train_spec
        shared["test_missing"] = self.test_specs
        return ProtocolOptions(**{**shared, **run})

    @property
    def method_names(self):
        return expand_methods(self.methods or DEFAULT_METHODS)

    def missing_modality_options(self):
        """The missing-modality and calibration options that differ from
        their defaults, as `results.json` and the run configuration record
        them."""
        options = {}
        if self.late_fusion is not None:
            options["late_fusion"] = self.late_fusion
        for name in ("train_missing_rate", "modality_dropout"):
            if getattr(self, name) > 0:
                options[name] = float(getattr(self, name))
        if self.train_missing:
            options["train_missing"] = str(self.train_spec)
        if self.test_missing:
            options["test_missing"] = [str(s) for s in self.test_specs]
        if self.both_ratio != 0.5:
            options["both_ratio"] = float(self.both_ratio)
        if self.calibration_fraction > 0:
            options["calibration"] = {
                "fraction": float(self.calibration_fraction),
                "coverage": float(self.coverage),
            }
        if self.hparams:
            options["hparams"] = {
                "method": self.hparams["method"],
                "values": self.hparams["values"],
            }
        return options

    @property
    def train_spec(self):
        if self.train_missing is None:
            return None
        return MissingSpec.parse(self.train_missing, self.both_ratio)

    @property
    def test_specs(self):
        return missing_specs(self.test_missing, self.both_ratio)


def default_out(dataset):
    """`results/<dataset>-<date>-<time>`."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("results", f"{dataset}-{stamp}")


def robult_options(config, data):
    """The options of every Robult variant in a comparison: the late
    fusion the configuration names, and no linear base on backbone
    features (`ComparisonData.backbone_features`)."""
    options = {}
    if config.late_fusion:
        options["late_fusion"] = config.late_fusion
    if data.backbone_features:
        options["linear_base"] = False
    return options


def run_comparison(config, data, callbacks=None):
    """Trains and evaluates every method of `config` on `data` for every
    seed (`run_protocol`), resuming the pairs already finished in the
    results folder, and writes `results.json`, `results.md`,
    `missing_rate.png`, `labeled_indices.json` and the models there.
    With `config.grid`, one such comparison per training spec of the
    grid, each in a folder of `out`, and `out/results.json` and
    `out/results.md` hold their merged missing-type cells.

    Args:
        config: a `ComparisonConfig`.
        data: a `ComparisonData`.
        callbacks: optional function `(method_name, seed) -> list` of Keras
            callbacks for that pair's training and prediction
            (`run_protocol`).

    Returns:
        `(results, out)`: the results dict and the results folder.
    """
    out = config.out or default_out(data.dataset)
    with run_lock(out):
        return _run_comparison(config, data, out, callbacks)


def _run_comparison(config, data, out, callbacks):
    """`run_comparison` in the results folder `out`, which it holds."""
    if config.grid:
        return _run_grid(config, data, out, callbacks)
    if config.tensorboard:
        callbacks = tensorboard_callbacks(callbacks, config.tensorboard)
    store = RunStore(out, _run_configuration(config, data), config.restart)
    models_dir = os.path.join(out, "models")

    def save_models(name, seed):
        os.makedirs(models_dir, exist_ok=True)
        return os.path.join(models_dir, f"{name}-seed{seed}.keras")

    options = {"latent_dim": config.latent_dim}
    if config.patience is not None:
        options["patience"] = config.patience
    if config.modality_dropout > 0:  # else each method's own default
        options["modality_dropout"] = config.modality_dropout
    names = config.method_names
    if data.finetune is not None and config.methods is None:
        # The references take fixed features: not a fine-tuning run's.
        names = [n for n in names if not METHODS[n].reference]
    methods = method_factories(
        names,
        finetune=data.finetune,
        robult_options=robult_options(config, data),
        method_options=(
            {config.hparams["method"]: config.hparams["values"]}
            if config.hparams
            else None
        ),
        **options,
    )
    with training_context(
        config.distribute, config.batch_size, data.finetune is not None
    ) as devices:
        if config.verbose and config.distribute:
            print(f"data parallel over {devices} devices", flush=True)
        results, splits = run_protocol(
            data.x,
            np.asarray(data.y),
            data.task,
            methods,
            config.protocol_options(
                test_mask=data.test_mask,
                validation_mask=data.validation_mask,
                is_labeled=data.is_labeled,
                dataset=data.dataset,
                save_models=save_models,
                store=store,
                curve_metric=data.metrics[0] if data.metrics else None,
                callbacks=callbacks,
            ),
        )
    results.update(config.missing_modality_options())
    if config.hparams:
        results["hparams"] = config.hparams  # with the file it came from
    results.update(data.extra)
    metrics = report_metrics(results, data.metrics)
    paths = write_results(results, splits, out, metrics=metrics)
    for table in report_tables(results, metrics):
        print()
        print(table)
    names = ", ".join(os.path.basename(p) for p in paths.values())
    print(f"Results written to {out}/ ({names})", flush=True)
    return results, out


def _run_grid(config, data, out, callbacks):
    """`run_comparison` of each training spec of `config.grid`, then the
    merged missing-type cells in `out`."""
    grid = literature_grid(data.modalities, both_ratio=config.both_ratio)
    trained, runs = {}, {}
    for train, tests in grid:
        folder = f"train-{train.kind}-{train.rate:g}"
        if config.verbose:
            print(
                f"grid: trained at {train}, tested at "
                + ", ".join(map(str, tests))
                + f" ({folder}/)",
                flush=True,
            )
        results, _ = run_comparison(
            dataclasses.replace(
                config,
                grid=None,
                tensorboard=(
                    os.path.join(config.tensorboard, folder)
                    if config.tensorboard
                    else None
                ),
                train_missing=str(train),
                test_missing=tuple(str(t) for t in tests),
                out=os.path.join(out, folder),
            ),
            data,
            callbacks,
        )
        runs[str(train)] = folder
        trained[str(train)] = Results.from_dict(results)
    merged = Results.merge_grid(
        trained, grid=config.grid, grid_runs=runs
    ).to_dict()
    write_json(os.path.join(out, "results.json"), merged)
    tables = [missing_type_table(merged, m) for m in data.metrics or [None]]
    write_text(os.path.join(out, "results.md"), "\n".join(tables))
    for table in tables:
        print()
        print(table)
    print(f"Grid results written to {out}/ (results.json, results.md)")
    return merged, out


def tensorboard_callbacks(callbacks, folder):
    """`callbacks` (a function `(method, seed) -> list`, or None) plus a
    `keras.callbacks.TensorBoard` writing to `folder/<method>-seed<seed>`:
    every logged loss term and validation metric, once per epoch."""

    def pair_callbacks(name, seed):
        given = list(callbacks(name, seed)) if callbacks else []
        board = keras.callbacks.TensorBoard(
            log_dir=os.path.join(folder, f"{name}-seed{seed}"),
            update_freq="epoch",
            write_graph=False,
            profile_batch=0,
        )
        return [*given, board]

    return pair_callbacks


def _run_configuration(config, data):
    """What the results depend on, saved in the results folder: a rerun
    with another configuration is refused, naming what differs."""
    run = dict(
        data.record,
        labeled_fraction=config.labeled_fraction,
        seeds=list(config.seeds),
        epochs=config.epochs,
        batch_size=config.batch_size,
        latent_dim=config.latent_dim,
        methods=config.method_names,
        backend=keras.backend.backend(),
        **config.missing_modality_options(),
    )
    if config.patience is not None:
        run["patience"] = config.patience
    return run
