"""Calibration of a trained model's outputs per presence pattern."""

from __future__ import annotations

import math

import numpy as np
from keras import ops
from numpy.typing import ArrayLike
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax

KINDS = ("temperature", "conformal")
# log-temperatures searched: T in [0.05, 20].
_LOG_T_RANGE = (math.log(0.05), math.log(20.0))
# Probabilities are clipped before the log (a method may output exact 0).
_EPS = 1e-12


def pattern_ids(mask):
    """Presence pattern of each row as an integer: bit `m` set where
    modality `m` is present (`mask > 0.5`); NumPy in, NumPy out."""
    present = np.asarray(mask) > 0.5
    return (present * (1 << np.arange(present.shape[1]))).sum(axis=1)


def pattern_size(pattern):
    """Number of modalities present in `pattern` (its set bits)."""
    return bin(int(pattern)).count("1")


class PresenceCalibration:
    """Calibration of a model's outputs for each presence pattern.

    A model that keeps predicting when modalities drop out is not equally
    sure under every pattern. This object holds one number per pattern of
    present modalities (`2 ** M` patterns, bit `m` of the pattern's index
    set when modality `m` is present) and applies it to the model's
    outputs:

    - `"temperature"` (classification): the class probabilities `p`
      become `softmax(log p / T)`, with `T` the pattern's temperature.
      Dividing every log-probability by the same positive number keeps
      their order, so the predicted class (and the accuracy) is unchanged.
    - `"conformal"` (regression): the interval `prediction ± q`, with `q`
      the pattern's split-conformal half-width at `coverage`; the
      prediction itself is unchanged.

    Fitted by `fit_temperatures` or `fit_conformal` on held-out labeled
    predictions (`MultimodalModel.calibrate` does it for a model); rebuilt
    from `get_config()`, which a model's config holds, so a calibrated
    model keeps its calibration in a `.keras` file and a SavedModel.

    Patterns with few validation samples borrow from their neighbours:

    - temperatures: a trend over the number `c` of present modalities,
      `log T(c) = a + b (c - c̄)`, maximises the likelihood of every
      held-out prediction (each held-out row weighing one, however many
      patterns it was predicted under: `rows`) times a Gaussian prior of
      precision `k = prior_strength` on `a` and `b` around 0 (T = 1), so a
      few held-out rows move it little; each pattern's `log T` then
      minimises its own samples' negative log-likelihood plus
      `k / 2 (log T - log T(c)) ** 2`, the same prior around the trend at
      its count. A pattern with no sample takes the trend; one with a few
      stays near it; one with hundreds takes about its own estimate.
    - half-widths come from the pattern's own samples when it has at least
      `min_samples` of them, else from every pattern with the same number
      of present modalities when those have `min_samples`, else from all
      samples. Only the first carries the conformal guarantee for that
      pattern; `sources` says which each pattern used.

    A row with no modality present (the model's label prior) gets
    temperature 1 and the widest half-width.

    Args:
        kind: `"temperature"` or `"conformal"`.
        modalities: the model's modality names, in its order (bit `m` of a
            pattern is `modalities[m]`).
        table: `2 ** M` floats, the temperature or half-width per pattern.
        counts: `2 ** M` ints, the validation samples of each pattern.
        sources: `2 ** M` strings, where each value came from: `"pattern"`,
            `"count"` or `"global"` (conformal), `"shrunk"` or `"trend"`
            (temperature); `"none"` for the pattern with nothing present.
        coverage: float, the nominal coverage of the intervals (conformal).
        prior_strength: float, `k` of the temperature shrinkage.
        min_samples: int, the samples a pattern needs for its own interval.

    Example:

    ```python
    import numpy as np
    from keras_robult.calibration import PresenceCalibration

    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
    calibration = PresenceCalibration.fit_temperatures(
        probabilities,
        labels=np.array([0, 1, 0]),
        patterns=np.array([3, 1, 3]),
        modalities=["image", "text"],
    )
    calibration.temperature_of(["image"])
    ```
    """

    def __init__(
        self,
        kind: str,
        modalities,
        table,
        counts,
        sources,
        coverage: float | None = None,
        prior_strength: float | None = None,
        min_samples: int | None = None,
    ):
        if kind not in KINDS:
            raise ValueError(
                f"`kind` must be one of {KINDS}; received {kind!r}."
            )
        self.kind = kind
        self.modalities = [str(m) for m in modalities]
        size = 1 << len(self.modalities)
        self.table = [float(v) for v in table]
        self.counts = [int(v) for v in counts]
        self.sources = [str(v) for v in sources]
        if not (len(self.table) == len(self.counts) == len(self.sources)):
            raise ValueError(
                "`table`, `counts` and `sources` must have one entry per "
                f"presence pattern ({size} for {len(self.modalities)} "
                f"modalities); received {len(self.table)}, "
                f"{len(self.counts)} and {len(self.sources)}."
            )
        if len(self.table) != size:
            raise ValueError(
                f"`table` must have {size} entries (2 ** {len(modalities)} "
                f"presence patterns); received {len(self.table)}."
            )
        if not all(math.isfinite(v) and v >= 0 for v in self.table):
            raise ValueError("`table` must hold finite, non-negative values.")
        self.coverage = None if coverage is None else float(coverage)
        self.prior_strength = (
            None if prior_strength is None else float(prior_strength)
        )
        self.min_samples = None if min_samples is None else int(min_samples)

    # -------------------------------------------------------------- fitting
    @classmethod
    def fit_temperatures(
        cls,
        probabilities: ArrayLike,
        labels: ArrayLike,
        patterns: ArrayLike,
        modalities,
        prior_strength: float = 20.0,
        rows: ArrayLike | None = None,
    ) -> PresenceCalibration:
        """Temperatures per pattern from held-out class probabilities.

        Args:
            probabilities: `(samples, classes)` the model's uncalibrated
                probabilities.
            labels: `(samples,)` integer class indices.
            patterns: `(samples,)` presence pattern of each row (see
                `pattern_ids`); rows of pattern 0 are ignored.
            modalities: the model's modality names.
            prior_strength: float >= 0, `k` of the shrinkage (see the
                class). Defaults to 20.
            rows: optional `(samples,)` id of the held-out row of each
                prediction, where one row is predicted under several
                patterns: each row then weighs one in the trend, its
                predictions `1 / P` each. Default: every prediction its
                own row.
        """
        if not prior_strength >= 0:
            raise ValueError(
                "`prior_strength` must be non-negative; received "
                f"{prior_strength!r}."
            )
        ids = np.arange(len(labels)) if rows is None else np.asarray(rows)
        if ids.shape != (len(labels),):
            raise ValueError(
                f"`rows` must hold one id per prediction ({len(labels)}); "
                f"received shape {ids.shape}."
            )
        ids = ids[np.asarray(patterns).reshape(-1) > 0]
        p, y, patterns = _rows(probabilities, labels, patterns, modalities)
        p = np.asarray(p, dtype="float64")
        if p.ndim != 2 or p.shape[1] < 2:
            raise ValueError(
                "Temperature calibration needs class probabilities of shape "
                f"(samples, classes >= 2); received shape {p.shape}."
            )
        if not np.all((y >= 0) & (y < p.shape[1]) & (y == np.round(y))):
            raise ValueError(
                f"`labels` must be class indices 0..{p.shape[1] - 1}."
            )
        y = y.astype("int64")
        if len(np.unique(y)) < 2:
            raise ValueError(
                "The calibration labels hold a single class "
                f"({int(y[0])}): a temperature cannot be fitted on them. "
                "Use held-out samples of several classes."
            )
        log_p = np.log(np.clip(p, _EPS, 1.0))
        size = 1 << len(modalities)
        sizes = np.array([pattern_size(q) for q in patterns])
        _, inverse, repeats = np.unique(
            ids, return_inverse=True, return_counts=True
        )
        weights = 1.0 / repeats[inverse.reshape(-1)]
        trend = _temperature_trend(log_p, y, sizes, weights, prior_strength)
        table, counts = [1.0] * size, [0] * size
        sources = ["none"] + ["trend"] * (size - 1)
        for q in range(1, size):
            rows = patterns == q
            counts[q] = int(rows.sum())
            prior = trend(pattern_size(q))
            if counts[q]:
                own = _log_temperature(
                    log_p[rows], y[rows], prior, prior_strength
                )
                table[q] = math.exp(own)
                sources[q] = "shrunk"
            else:
                table[q] = math.exp(prior)
        return cls(
            "temperature",
            modalities,
            table,
            counts,
            sources,
            prior_strength=prior_strength,
        )

    @classmethod
    def fit_conformal(
        cls,
        predictions: ArrayLike,
        targets: ArrayLike,
        patterns: ArrayLike,
        modalities,
        coverage: float = 0.9,
        min_samples: int = 30,
    ) -> PresenceCalibration:
        """Split-conformal half-widths per pattern from held-out
        predictions: the `ceil((n + 1) coverage)`-th smallest absolute
        error of the pattern's `n` samples (or of its fallback's).

        Args:
            predictions: `(samples,)` or `(samples, 1)` predicted values.
            targets: `(samples,)` true values.
            patterns: `(samples,)` presence pattern of each row.
            modalities: the model's modality names.
            coverage: float in (0, 1), the nominal coverage. Defaults to
                0.9.
            min_samples: int, the samples a pattern (or a level) needs for
                an interval of its own. Defaults to 30.
        """
        if not 0 < coverage < 1:
            raise ValueError(
                f"`coverage` must be in (0, 1); received {coverage!r}."
            )
        if int(min_samples) != min_samples or min_samples < 1:
            raise ValueError(
                "`min_samples` must be a positive integer; received "
                f"{min_samples!r}."
            )
        pred, y, patterns = _rows(predictions, targets, patterns, modalities)
        scores = np.abs(np.asarray(pred, "float64").reshape(len(y)) - y)
        needed = math.ceil(coverage / (1.0 - coverage) - 1e-9)
        if len(scores) < max(needed, 1):
            raise ValueError(
                f"A {coverage:.0%} conformal interval needs at least "
                f"{needed} held-out samples; received {len(scores)}."
            )
        size = 1 << len(modalities)
        sizes = np.array([pattern_size(q) for q in patterns])
        table, counts = [0.0] * size, [0] * size
        sources = ["none"] * size
        for q in range(1, size):
            own = scores[patterns == q]
            same = scores[sizes == pattern_size(q)]
            counts[q] = len(own)
            for source, values in (("pattern", own), ("count", same)):
                if len(values) >= max(min_samples, needed):
                    break
            else:
                source, values = "global", scores
            table[q] = _conformal_quantile(values, coverage)
            sources[q] = source
        table[0] = max(table[1:])
        return cls(
            "conformal",
            modalities,
            table,
            counts,
            sources,
            coverage=coverage,
            min_samples=min_samples,
        )

    # ------------------------------------------------------------- applying
    def apply(self, prediction, mask):
        """The calibrated outputs from a model's `prediction` and its
        `(batch, M)` presence mask, in `keras.ops` (compiles with the
        model): `{"prediction", "confidence"}` for temperatures,
        `{"prediction_interval"}` (`(batch, 2)`) for intervals; float32."""
        present = ops.cast(mask > 0.5, "int32")
        bits = ops.convert_to_tensor(
            [1 << m for m in range(len(self.modalities))], dtype="int32"
        )
        index = ops.sum(present * bits[None, :], axis=-1)
        table = ops.convert_to_tensor(self.table, dtype="float32")
        value = ops.take(table, index, axis=0)[:, None]
        # float32 whatever the model's policy (1e-12 is 0 in float16).
        prediction = ops.cast(ops.convert_to_tensor(prediction), "float32")
        if self.kind == "temperature":
            log_p = ops.log(ops.clip(prediction, _EPS, 1.0))
            calibrated = ops.softmax(log_p / value, axis=-1)
            return {
                "prediction": calibrated,
                "confidence": ops.max(calibrated, axis=-1),
            }
        return {
            "prediction_interval": ops.concatenate(
                [prediction - value, prediction + value], axis=-1
            )
        }

    def apply_numpy(self, prediction, mask):
        """`apply` in NumPy (an independent reference for the tests and
        the evaluation of predictions already computed)."""
        value = np.asarray(self.table)[pattern_ids(mask)][:, None]
        prediction = np.asarray(prediction, dtype="float64")
        if self.kind == "temperature":
            log_p = np.log(np.clip(prediction, _EPS, 1.0)) / value
            calibrated = np.exp(log_softmax(log_p, axis=-1))
            return {
                "prediction": calibrated,
                "confidence": calibrated.max(axis=-1),
            }
        return {
            "prediction_interval": np.concatenate(
                [prediction - value, prediction + value], axis=-1
            )
        }

    def _pattern(self, present):
        unknown = sorted(set(present) - set(self.modalities))
        if unknown:
            raise ValueError(
                f"Unknown modalities {unknown}; the model's are "
                f"{self.modalities}."
            )
        return sum(1 << self.modalities.index(m) for m in set(present))

    def temperature_of(self, present) -> float:
        """The temperature of the pattern with the modalities `present`."""
        if self.kind != "temperature":
            raise ValueError(
                "This calibration holds intervals, not temperatures."
            )
        return self.table[self._pattern(present)]

    def half_width_of(self, present) -> float:
        """The interval half-width of the pattern with `present`."""
        if self.kind != "conformal":
            raise ValueError(
                "This calibration holds temperatures, not intervals."
            )
        return self.table[self._pattern(present)]

    # -------------------------------------------------------- serialisation
    def get_config(self):
        return {
            "kind": self.kind,
            "modalities": list(self.modalities),
            "table": list(self.table),
            "counts": list(self.counts),
            "sources": list(self.sources),
            "coverage": self.coverage,
            "prior_strength": self.prior_strength,
            "min_samples": self.min_samples,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return (
            isinstance(other, PresenceCalibration)
            and self.get_config() == other.get_config()
        )

    def __repr__(self):
        return (
            f"PresenceCalibration(kind={self.kind!r}, "
            f"modalities={self.modalities})"
        )


def _rows(values, labels, patterns, modalities):
    """The rows with at least one modality present, checked."""
    values = np.asarray(values)
    labels = np.asarray(labels, dtype="float64").reshape(-1)
    patterns = np.asarray(patterns).reshape(-1).astype("int64")
    if not len(modalities):
        raise ValueError("`modalities` is empty.")
    if not (len(values) == len(labels) == len(patterns)):
        raise ValueError(
            "Predictions, labels and patterns must have one row each per "
            f"sample; received {len(values)}, {len(labels)} and "
            f"{len(patterns)}."
        )
    if np.any((patterns < 0) | (patterns >= 1 << len(modalities))):
        raise ValueError(
            f"`patterns` must be in 0..{(1 << len(modalities)) - 1} for "
            f"{len(modalities)} modalities."
        )
    if not np.all(np.isfinite(labels)):
        raise ValueError(
            "The calibration labels hold NaN or infinite values: give "
            "labeled held-out samples only."
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("The predictions hold NaN or infinite values.")
    keep = patterns > 0
    if not keep.any():
        raise ValueError(
            "No held-out sample has a modality present: nothing to "
            "calibrate on."
        )
    return values[keep], labels[keep], patterns[keep]


def _nll(log_p, y, log_t, weights=None):
    """Summed negative log-likelihood of `softmax(log p / T)`, with `log_t`
    one value or one per row (each row's term times its weight)."""
    scaled = log_p * np.exp(-np.asarray(log_t, "float64")).reshape(-1, 1)
    terms = -log_softmax(scaled, axis=1)[np.arange(len(y)), y]
    return terms.sum() if weights is None else (weights * terms).sum()


def _temperature_trend(log_p, y, sizes, weights, strength):
    """The log-temperature per number of present modalities: a line
    `a + b (c - mean c)` maximising the weighted likelihood of every
    prediction times a Gaussian prior of precision `strength` on `a` and
    `b` around 0 (T = 1: few held-out rows change little), clipped to the
    searched range (`b = 0` when the rows have one count only); a
    function of `c`."""
    centre = float(sizes.mean())
    one_count = len(np.unique(sizes)) == 1

    def objective(params):
        a, b = params[0], 0.0 if one_count else params[1]
        log_t = np.clip(a + b * (sizes - centre), *_LOG_T_RANGE)
        return _nll(log_p, y, log_t, weights) + strength / 2 * (a**2 + b**2)

    found = minimize(objective, x0=np.zeros(2), method="Nelder-Mead")
    a, b = found.x[0], 0.0 if one_count else found.x[1]
    return lambda count: float(np.clip(a + b * (count - centre), *_LOG_T_RANGE))


def _log_temperature(log_p, y, prior=None, strength=0.0):
    """The log-temperature of the rows: maximum likelihood, or, given a
    `prior` log-temperature, the maximum of the likelihood times a Gaussian
    prior of precision `strength` around it (`sum NLL + strength / 2
    (log T - prior) ** 2`), in [log 0.05, log 20]."""

    def objective(log_t):
        penalty = 0.0 if prior is None else strength / 2 * (log_t - prior) ** 2
        return _nll(log_p, y, log_t) + penalty

    found = minimize_scalar(objective, bounds=_LOG_T_RANGE, method="bounded")
    return float(found.x)


def _conformal_quantile(scores, coverage):
    """The `ceil((n + 1) coverage)`-th smallest score (split conformal)."""
    scores = np.sort(scores)
    k = math.ceil((len(scores) + 1) * coverage)
    return float(scores[min(k, len(scores)) - 1])
