"""Per-pattern temperatures and intervals: the fitting rules against
independent NumPy computations, the keras.ops application against the
NumPy one, and the errors."""

import math

import numpy as np
import pytest

from keras_robult.calibration import (
    PresenceCalibration,
    expected_calibration_error,
    pattern_ids,
)
from tests.conftest import to_numpy

MODALITIES = ["a", "b", "c"]


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def overconfident(n, sharpness, seed):
    """Labels drawn from softmax(z); the model says softmax(sharpness z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4)) * 1.5
    y = np.array([rng.choice(4, p=row) for row in softmax(z)])
    return softmax(sharpness * z), y


def grid_log_temperature(p, y):
    """The maximum-likelihood log-temperature by a fine grid search."""
    grid = np.linspace(math.log(0.05), math.log(20), 4001)
    log_p = np.log(np.clip(p, 1e-12, 1))
    nll = [
        -np.mean(np.log(softmax(log_p / math.exp(t))[np.arange(len(y)), y]))
        for t in grid
    ]
    return grid[int(np.argmin(nll))]


def test_pattern_ids_set_one_bit_per_present_modality():
    mask = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 1], [0.5, 0.7, np.nan]])
    np.testing.assert_array_equal(pattern_ids(mask), [1, 6, 7, 2])


def test_a_known_temperature_is_recovered_and_lowers_the_error():
    p, y = overconfident(6000, 2.5, seed=0)
    patterns = np.full(len(y), 7)
    calibration = PresenceCalibration.fit_temperatures(
        p, y, patterns, MODALITIES, prior_strength=0
    )
    assert calibration.temperature_of(MODALITIES) == pytest.approx(2.5, 0.1)
    calibrated = calibration.apply_numpy(p, np.ones((len(y), 3)))
    assert expected_calibration_error(
        calibrated["prediction"], y
    ) < 0.3 * expected_calibration_error(p, y)
    # Temperature scaling keeps the arg-max.
    np.testing.assert_array_equal(
        calibrated["prediction"].argmax(1), p.argmax(1)
    )


def nll(p, y, log_t):
    log_p = np.log(np.clip(p, 1e-12, 1))
    scaled = log_p / np.exp(np.asarray(log_t, "float64")).reshape(-1, 1)
    return -np.sum(np.log(softmax(scaled)[np.arange(len(y)), y]))


def test_shrinkage_follows_the_stated_rule():
    """Two patterns of two modalities (a+b: 400 samples, b+c: 12) and one
    of one (a: 300); the rest have none."""
    parts = [overconfident(400, 1.5, 1), overconfident(12, 1.0, 2)]
    parts.append(overconfident(300, 3.0, 3))
    p = np.concatenate([q for q, _ in parts])
    y = np.concatenate([t for _, t in parts])
    patterns = np.repeat([3, 6, 1], [400, 12, 300])
    k = 20.0
    calibration = PresenceCalibration.fit_temperatures(
        p, y, patterns, MODALITIES, prior_strength=k
    )
    log = {q: math.log(calibration.table[q]) for q in range(1, 8)}
    # Patterns without samples: the trend at their count, a line in it.
    trend = {1: log[2], 2: log[5], 3: log[7]}
    assert log[2] == log[4] and log[5] not in (log[3], log[6])
    assert trend[3] - trend[2] == pytest.approx(trend[2] - trend[1])
    # The line maximises the likelihood of every sample (its log-temperature
    # at each sample's count) times a Gaussian prior of precision k around
    # T = 1 on its level and slope: no nearby line does better.
    sizes = np.array([bin(q).count("1") for q in patterns])
    centre = sizes.mean()
    slope = trend[2] - trend[1]
    level = trend[1] + slope * (centre - 1)

    def objective(a, b):
        return nll(p, y, a + b * (sizes - centre)) + k / 2 * (a**2 + b**2)

    best = objective(level, slope)
    for da, db in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        assert objective(level + da, slope + db) > best
    # Each pattern with samples: its likelihood times the Gaussian prior of
    # precision k around the trend, maximised (a grid search).
    grid = np.linspace(math.log(0.05), math.log(20), 4001)
    for q in (1, 3, 6):
        rows = patterns == q
        prior = trend[bin(q).count("1")]
        objective = [
            nll(p[rows], y[rows], t) + k / 2 * (t - prior) ** 2 for t in grid
        ]
        assert log[q] == pytest.approx(grid[np.argmin(objective)], abs=3e-3)
        # Between its own estimate and the trend.
        own = grid_log_temperature(p[rows], y[rows])
        assert min(own, prior) - 1e-3 <= log[q] <= max(own, prior) + 1e-3
    # 12 samples stay near the trend, 400 near their own estimate.
    rows = patterns == 3
    assert abs(log[3] - grid_log_temperature(p[rows], y[rows])) < 0.05
    assert calibration.counts == [0, 300, 0, 400, 0, 0, 12, 0]
    assert calibration.sources == [
        "none", "shrunk", "trend", "shrunk", "trend", "trend", "shrunk",
        "trend",
    ]  # fmt: skip


def test_conformal_half_widths_and_their_fallbacks():
    rng = np.random.default_rng(4)
    sizes = {1: 200, 2: 10, 4: 10, 3: 45, 7: 5}
    patterns = np.repeat(list(sizes), list(sizes.values()))
    targets = rng.normal(size=len(patterns))
    predictions = targets + rng.normal(size=len(patterns)) * patterns
    calibration = PresenceCalibration.fit_conformal(
        predictions, targets, patterns, MODALITIES, coverage=0.9,
        min_samples=30,
    )  # fmt: skip
    scores = np.abs(predictions - targets)

    def quantile(rows):
        ordered = np.sort(scores[rows])
        return ordered[math.ceil((len(ordered) + 1) * 0.9) - 1]

    sizes_of = np.array([bin(q).count("1") for q in patterns])
    assert calibration.half_width_of(["a"]) == quantile(patterns == 1)
    assert calibration.half_width_of(["a", "b"]) == quantile(patterns == 3)
    # b: 10 of its own, 220 of one modality: the level's.
    assert calibration.half_width_of(["b"]) == quantile(sizes_of == 1)
    # a+b+c: 5 of its own and of its level: every sample's.
    assert calibration.half_width_of(MODALITIES) == quantile(patterns > 0)
    assert calibration.sources[1:] == [
        "pattern", "count", "pattern", "count", "count", "count", "global",
    ]  # fmt: skip
    assert calibration.table[0] == max(calibration.table[1:])


def test_conformal_intervals_reach_their_coverage_per_pattern():
    rng = np.random.default_rng(5)
    noise = {1: 0.3, 2: 1.0, 3: 0.2}

    def draw(n):
        patterns = rng.choice([1, 2, 3], n)
        y = rng.normal(size=n)
        scale = np.array([noise[q] for q in patterns])
        return y + scale * rng.standard_t(4, n), y, patterns

    calibration = PresenceCalibration.fit_conformal(
        *draw(1500), ["a", "b"], coverage=0.8
    )
    prediction, y, patterns = draw(30000)
    mask = np.stack([patterns & 1, (patterns >> 1) & 1], axis=1)
    low, high = calibration.apply_numpy(prediction[:, None], mask)[
        "prediction_interval"
    ].T
    for q in (1, 2, 3):
        rows = patterns == q
        inside = np.mean((y[rows] >= low[rows]) & (y[rows] <= high[rows]))
        assert inside == pytest.approx(0.8, abs=0.03), q


@pytest.mark.parametrize("kind", ["temperature", "conformal"])
def test_keras_ops_apply_equals_numpy_and_the_config_round_trips(kind):
    rng = np.random.default_rng(6)
    mask = (rng.random((40, 3)) < 0.6).astype("float32")
    mask[:3] = 0.0
    if kind == "temperature":
        p, y = overconfident(40, 2.0, 7)
        calibration = PresenceCalibration.fit_temperatures(
            p, y, pattern_ids(mask), MODALITIES
        )
    else:
        y = rng.normal(size=40)
        p = (y + rng.normal(size=40))[:, None]
        calibration = PresenceCalibration.fit_conformal(
            p, y, pattern_ids(mask), MODALITIES, min_samples=10
        )
    p = p.astype("float32")
    got = to_numpy(calibration.apply(p, mask))
    expected = calibration.apply_numpy(p, mask)
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=2e-6)
    clone = PresenceCalibration.from_config(calibration.get_config())
    assert clone == calibration
    if kind == "temperature":  # nothing present: the prior unchanged
        np.testing.assert_allclose(got["prediction"][:3], p[:3], atol=1e-6)


def test_bad_input_gets_one_clear_error():
    p, y = overconfident(50, 2.0, 8)
    ids = np.full(50, 3)
    with pytest.raises(ValueError, match="single class"):
        PresenceCalibration.fit_temperatures(
            p, np.zeros(50, int), ids, MODALITIES
        )
    with pytest.raises(ValueError, match="NaN"):
        PresenceCalibration.fit_temperatures(
            p, np.where(np.arange(50) == 4, np.nan, y), ids, MODALITIES
        )
    with pytest.raises(ValueError, match="No held-out sample"):
        PresenceCalibration.fit_temperatures(
            p, y, np.zeros(50, int), MODALITIES
        )
    with pytest.raises(ValueError, match="at least 19"):
        PresenceCalibration.fit_conformal(
            np.zeros(10), np.ones(10), np.ones(10, int), ["a"], coverage=0.95
        )
    with pytest.raises(ValueError, match="8 entries"):
        PresenceCalibration(
            "temperature", MODALITIES, [1.0] * 4, [0] * 4, ["none"] * 4
        )
    with pytest.raises(ValueError, match="Unknown modalities"):
        PresenceCalibration.fit_temperatures(
            p, y, ids, MODALITIES
        ).temperature_of(["d"])


def test_a_row_predicted_under_several_patterns_weighs_one_in_the_trend():
    p, y = overconfident(60, 2.0, 9)
    patterns = np.repeat([1, 3], 30)
    once = PresenceCalibration.fit_temperatures(p, y, patterns, MODALITIES)
    # Every prediction five times, marked as the same row: the same trend.
    repeated = PresenceCalibration.fit_temperatures(
        np.tile(p, (5, 1)),
        np.tile(y, 5),
        np.tile(patterns, 5),
        MODALITIES,
        rows=np.tile(np.arange(60), 5),
    )
    for empty in (["c"], ["a", "c"], MODALITIES):
        assert repeated.temperature_of(empty) == pytest.approx(
            once.temperature_of(empty), rel=1e-3
        )
    # Not marked: five times the evidence, further from T = 1.
    louder = PresenceCalibration.fit_temperatures(
        np.tile(p, (5, 1)), np.tile(y, 5), np.tile(patterns, 5), MODALITIES
    )
    assert abs(math.log(louder.temperature_of(["c"]))) > abs(
        math.log(once.temperature_of(["c"]))
    )
