"""Robult in the evaluation protocol."""

import inspect

import numpy as np

from keras_robult.experiments.callbacks import stage_backup_dir
from keras_robult.experiments.method import Method
from keras_robult.experiments.redundancy import (
    REDUNDANCY_THRESHOLD,
    shares_information,
    view_redundancy,
)
from keras_robult.experiments.robult_options import RobultOptions
from keras_robult.models.robult import DEFAULT_LOSS_WEIGHTS, Robult
from keras_robult.utils.validation import MASK_KEY

#: Robult's arguments that change how it predicts, not what it learns:
#: the rule of the full set, and the late fusion of the branches (which
#: the training objective also uses, but only on samples that miss a
#: modality: `Robult.pu_loss`, `Robult.pseudo_label_loss`).
PREDICTION_OPTIONS = ("full_set", "min_fused_modalities", "late_fusion")


def keyword_defaults(function):
    """The keyword arguments of `function` (or of a class's constructor)
    that have a default, with their default values."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def robult_defaults():
    """`Robult`'s keyword arguments with their default values."""
    return keyword_defaults(Robult.__init__)


class RobultMethod(Method):
    """Robult in the evaluation protocol (also its Table 3 ablations).

    Args:
        task: as in `Method`.
        input_shapes: as in `Method`.
        statistics: as in `Method`.
        **options: the fields of `RobultOptions` (`MethodOptions`'
            `latent_dim`, `learning_rate`, ..., and Robult's own
            `loss_weights`, `probe`, `validation_fraction`, ...), then
            further `Robult` arguments (`temperature`, `rbf_bandwidth`,
            `dropout`, ...), kept in `model_kwargs`. `linear_base`
            defaults to True for regression, and for classification where
            the alignment is off (the views share nothing: a logistic
            base), and then `full_set` to `"fused"`: see `Robult` and
            `benchmarks/RESULTS.md`.
    """

    name = "robult"

    options_type = RobultOptions
    takes_model_options = True

    def __init__(self, task, input_shapes, statistics=None, **options):
        super().__init__(task, input_shapes, statistics, **options)
        self.validation_fraction = float(self.validation_fraction)
        self.retrain = bool(self.retrain)
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                "`validation_fraction` must be in [0, 1); received "
                f"{self.validation_fraction!r}."
            )
        if self.view_alignment not in (True, False, "auto"):
            raise ValueError(
                "`view_alignment` must be True, False or 'auto'; received "
                f"{self.view_alignment!r}."
            )
        #: `view_redundancy` of the last training inputs ("auto" only).
        self.redundancy = None
        self._measured_on = None  # the inputs `redundancy` was measured on
        self._aligned = self.view_alignment is not False
        self.model = None
        self._base_data = None

    def build_model(self):
        half = self.latent_dim // 2
        kwargs = dict(redundant_dim=half, unique_dim=self.latent_dim - half)
        kwargs.update(self.resolved_model_kwargs)
        return Robult(
            {name: self.encoder(name) for name in self.modalities},
            self.task,
            latent_dim=self.latent_dim,
            loss_weights=self.effective_loss_weights,
            **kwargs,
        )

    @property
    def effective_loss_weights(self):
        """`loss_weights`, with `L_lb` and `L_ulb` off (where not named)
        when the alignment is off."""
        if self._aligned:
            return self.loss_weights
        return {"lb": 0.0, "ulb": 0.0, **(self.loss_weights or {})}

    def resolve_alignment(self, x, verbose=0):
        """Decides `view_alignment` for training inputs `x` (under
        `"auto"`, from their `view_redundancy`); returns whether the
        alignment is on."""
        if self.view_alignment != "auto":
            self._aligned = bool(self.view_alignment)
            return self._aligned
        self._aligned = True
        if self.task.name == "classification":
            # The protocol asks for the training key, then fits, on the
            # same inputs: measured once.
            if self._measured_on is not x:
                self.redundancy = view_redundancy(x, self.modalities)
                self._measured_on = x
            self._aligned = shares_information(self.redundancy)
        if verbose and not self._aligned:
            print(
                f"  {self.name}: the modalities share no information "
                f"(redundancy {self.redundancy:.2f} < "
                f"{REDUNDANCY_THRESHOLD}): no soft-PU alignment"
                + (
                    "; a logistic linear base, early stopping on held-out "
                    "labels"
                    if self.linear_base
                    else "; subsets predicted by the product of experts"
                ),
                flush=True,
            )
        return self._aligned

    def adopt(self, trained, x, y):
        self.resolve_alignment(x)
        return super().adopt(trained, x, y)

    @property
    def linear_base(self):
        """Whether the model has a `LinearBase`: as given, else for
        regression, and for classification without the alignment (the
        views share nothing, so the unlabeled samples teach nothing and
        the model is a supervised one on a few labels)."""
        given = self.model_kwargs.get("linear_base")
        if given is not None:
            return bool(given)
        return self.task.name == "regression" or (
            self.task.name == "classification" and not self._aligned
        )

    @property
    def resolved_model_kwargs(self):
        """`model_kwargs` with the defaults that depend on the task and
        the alignment: `linear_base` and then `full_set="fused"` (the
        fused branch holds the joint linear model of each pattern)."""
        kwargs = dict(self.model_kwargs, linear_base=self.linear_base)
        if self.linear_base:
            kwargs.setdefault("full_set", "fused")
        elif not self._aligned and self.task.name == "classification":
            kwargs.setdefault("full_set", "late")
        return kwargs

    def fit(self, x, y, epochs, batch_size, seed=0, validation=None, **kw):
        """`Method.fit`; with the linear base, fitted on the labeled
        samples before training (the network learns its residual), early
        stopping on `validation_fraction` of them when the protocol gives
        no validation split, and then (`retrain`) a second training from
        the start on every labeled sample for the epochs early stopping
        chose. Under `view_alignment="auto"`, decides the alignment from
        `x` first (`resolve_alignment`)."""
        self.resolve_alignment(x, kw.get("verbose", 0))
        if not self.linear_base:
            return super().fit(
                x, y, epochs, batch_size, seed=seed, validation=validation, **kw
            )
        y_fit = y
        if validation is None:
            y_fit, validation = self.hold_out(x, y, seed)
        self._fit_on_base(x, y_fit, epochs, batch_size, seed, validation, kw)
        if y_fit is y:
            return self
        if not self.retrain:  # the held-out labels fit the base alone
            self.model.fit_linear_base(x, y["label"], y["is_labeled"])
            return self
        # Early stopping chose the epochs; the held-out labels are worth
        # more as training labels than as a judge (benchmarks/RESULTS.md).
        best = self.best_epochs()
        if kw.get("verbose"):
            print(
                f"  {self.name}: training again on every label for the "
                f"{best} epoch{'s' if best > 1 else ''} early stopping "
                "chose",
                flush=True,
            )
        kw = dict(
            kw, backup_dir=stage_backup_dir(kw.get("backup_dir"), "retrain")
        )
        self._fit_on_base(x, y, best, batch_size, seed, None, kw)
        return self

    def _fit_on_base(self, x, y, epochs, batch_size, seed, validation, kw):
        """`Method.fit` with the base fitted on `y`'s labels first."""
        self._base_data = (x, y)
        try:
            super().fit(
                x,
                y,
                epochs,
                batch_size,
                seed=seed,
                validation=validation,
                **kw,
            )
        finally:
            self._base_data = None

    def hold_out(self, x, y, seed):
        """`(y without the held-out labels, (x_val, labels_val))`: a
        seeded `validation_fraction` of the labeled samples, or `(y,
        None)` where that leaves fewer than 2 on either side."""
        labeled = np.flatnonzero(np.asarray(y["is_labeled"]) > 0)
        count = int(round(self.validation_fraction * len(labeled)))
        if count < 2 or len(labeled) - count < 2:
            return y, None
        rng = np.random.default_rng([int(seed), 5])
        held = np.sort(rng.choice(labeled, count, replace=False))
        is_labeled = np.array(y["is_labeled"], dtype="float32", copy=True)
        is_labeled[held] = 0.0
        x_val = {key: np.asarray(value)[held] for key, value in x.items()}
        labels = np.asarray(y["label"])[held]
        return {**y, "is_labeled": is_labeled}, (x_val, labels)

    def _new_model(self, y, seed):
        super()._new_model(y, seed)
        if self._base_data is not None:
            x, y_fit = self._base_data
            self.model.fit_linear_base(x, y_fit["label"], y_fit["is_labeled"])

    @property
    def monitor_task_metric(self):
        return not self.probe

    def training_key(self, x, validation=None):
        """Every option of the training (`Robult`'s arguments with their
        defaults filled in, the loss weights completed) but the prediction
        rule (`PREDICTION_OPTIONS`): `robult` and `robult-paper` train the
        same model where every training sample has every modality and no
        modality dropout applies (the late fusion then never enters the
        objective). None with a validation split (the protocol's, or the
        linear base's own): early stopping watches the predictions, so
        the rule changes the weights kept."""
        self.resolve_alignment(x)
        if validation is not None or (
            self.linear_base and self.validation_fraction > 0
        ):  # early stopping, on the protocol's split or one of its own
            return None
        options = robult_defaults()
        options.update(self.resolved_model_kwargs)
        complete = self.modality_dropout == 0 and bool(
            np.all(np.asarray(x[MASK_KEY]) > 0.5) if MASK_KEY in x else True
        )
        ignored = PREDICTION_OPTIONS if complete else PREDICTION_OPTIONS[:2]
        for name in ignored + ("loss_weights", "kwargs"):
            options.pop(name, None)
        weights = {
            **DEFAULT_LOSS_WEIGHTS,
            **(self.effective_loss_weights or {}),
        }
        training = dict(
            latent_dim=self.latent_dim,
            learning_rate=self.learning_rate,
            jit_compile=self.jit_compile,
            encoder_dropout=self.encoder_dropout,
            weight_decay=self.weight_decay,
            ema_momentum=self.ema_momentum,
            modality_dropout=self.modality_dropout,
            epochs=self.epochs,
            min_steps=self.min_steps,
            validation_fraction=(
                self.validation_fraction if self.linear_base else None
            ),
            retrain=self.retrain if self.linear_base else None,
            probe=self.probe,
            probe_epochs=self.probe_epochs if self.probe else None,
            loss_weights=sorted(weights.items()),
        )
        return (
            type(self).__name__,
            repr(sorted({**options, **training}.items())),
        )

    def after_fit(self, x, y, batch_size, seed, verbose, backup_dir):
        # Linear probe: the task head alone, on the labeled samples (the
        # latents are frozen, so this is a logistic regression on them).
        if self.probe:
            self.fit_head_alone(
                self.model.task_head,
                (x, y, batch_size, seed),
                self.probe_epochs,
                "    linear probe on the latents" if verbose else None,
                stage_backup_dir(backup_dir, "probe"),
            )
