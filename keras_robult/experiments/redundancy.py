"""How much the modalities of a training set tell about each other: the
measure behind `RobultMethod(view_alignment="auto")`.

Robult's soft-PU terms (`L_lb`, `L_ulb`) align each modality's latent
with the fused one: they assume the modalities share information. Where
they share none (each view carries its own part of the target, the
complementary views of `benchmarks/RESULTS.md`), the alignment can only
fit noise. This measure needs no label: per pair of vector modalities, the
largest canonical correlation `c` of their standardised features (ridge
regularised) against `c0`, the same with one view's rows shuffled (the
value chance alone reaches with these widths and this many samples), as
the share of the way from chance to a perfect correlation, `(c - c0) /
(1 - c0)`, averaged over the pairs (`c0` averaged over a few shuffles).
"""

import itertools

import numpy as np

from keras_robult.utils.validation import MASK_KEY

#: Below this, `view_alignment="auto"` turns the alignment off (see
#: `benchmarks/RESULTS.md` for the suite's values).
REDUNDANCY_THRESHOLD = 0.2
#: Rows and principal components a pair is measured on (a bound on the
#: cost, whatever the data's size).
MAX_ROWS = 2000
MAX_COMPONENTS = 32
#: Vector modalities wider than this, and inputs that are not vectors
#: (images, sequences, token ids), are not measured.
MAX_FEATURES = 4096
MIN_ROWS = 20


def view_redundancy(x, modalities, seed=0, ridge=1e-3, shuffles=5):
    """The mean over pairs of vector modalities of `x` (dict of arrays,
    optionally with `"modality_mask"`) of `(c - c0) / (1 - c0)`: `c` the
    top canonical correlation of the pair on the rows that hold both,
    `c0` that of the pair with the second view's rows shuffled. About 0
    for independent views, up to 1 for views that determine each other
    linearly. None where no pair can be measured (fewer than two
    modalities in `x`, inputs that are not vectors or are wider than
    `MAX_FEATURES`, fewer than `MIN_ROWS` rows holding both).

    Args:
        x: dict, modality -> array `(samples, ...)`.
        modalities: the modalities to measure, in order.
        seed: int, the row sample and the shuffle.
        ridge: float, added to each view's (standardised) covariance
            (the correlation's ceiling is then `1 / (1 + ridge)`).
        shuffles: int, the shuffles `c0` is averaged over.
    """
    rng = np.random.default_rng([int(seed), 11])
    views = {}
    for name in modalities:
        if name not in x:
            continue
        value = np.asarray(x[name])
        if value.ndim == 2 and value.shape[1] <= MAX_FEATURES:
            if np.issubdtype(value.dtype, np.number):
                views[name] = value
    if len(views) < 2:
        return None
    count = len(next(iter(views.values())))
    mask = np.asarray(
        x.get(MASK_KEY, np.ones((count, len(modalities)), "float32"))
    )
    present = {m: mask[:, i] > 0.5 for i, m in enumerate(modalities)}
    excess = []
    for first, second in itertools.combinations(views, 2):
        rows = np.flatnonzero(present[first] & present[second])
        if rows.size < MIN_ROWS:
            continue
        if rows.size > MAX_ROWS:
            rows = np.sort(rng.choice(rows, MAX_ROWS, replace=False))
        a = _components(views[first][rows])
        b = _components(views[second][rows])
        if a is None or b is None:
            continue
        chance = np.mean(
            [
                _top_correlation(a, b[rng.permutation(len(b))], ridge)
                for _ in range(shuffles)
            ]
        )
        ceiling = 1.0 / (1.0 + ridge)
        excess.append(
            (_top_correlation(a, b, ridge) - chance)
            / max(ceiling - chance, 1e-6)
        )
    return float(np.mean(excess)) if excess else None


def shares_information(redundancy):
    """Whether a `view_redundancy` value (None: not measurable) keeps the
    alignment: None, or at least `REDUNDANCY_THRESHOLD`."""
    return redundancy is None or redundancy >= REDUNDANCY_THRESHOLD


def _components(view):
    """The standardised view, reduced to its `MAX_COMPONENTS` principal
    components where wider; None where no feature varies."""
    view = np.nan_to_num(np.asarray(view, "float64"))
    view = view - view.mean(axis=0)
    scale = view.std(axis=0)
    keep = scale > 1e-12
    if not keep.any():
        return None
    view = view[:, keep] / scale[keep]
    width = min(MAX_COMPONENTS, len(view) // 10)
    if view.shape[1] > width:
        _, _, basis = np.linalg.svd(view, full_matrices=False)
        view = view @ basis[:width].T
        view = view / np.maximum(view.std(axis=0), 1e-12)
    return view


def _top_correlation(a, b, ridge):
    """The largest canonical correlation of `a` and `b` (centred, unit
    variance), each covariance with `ridge` added to its diagonal."""

    def whitening(view):
        values, vectors = np.linalg.eigh(
            view.T @ view / len(view) + ridge * np.eye(view.shape[1])
        )
        return vectors / np.sqrt(np.maximum(values, 1e-12))

    cross = whitening(a).T @ (a.T @ b / len(a)) @ whitening(b)
    return float(np.linalg.svd(cross, compute_uv=False)[0])
