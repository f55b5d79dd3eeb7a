"""MultiBench's robustness summaries of a performance-vs-imperfection
curve (Liang et al., MultiBench, NeurIPS 2021 Datasets and Benchmarks),
on the protocol's missing-rate curve."""

import numpy as np


def _area(rates, values):
    """Trapezoidal area under `values` over `rates`, divided by the rate
    range (the curve's average level, on the metric's own scale)."""
    rates = np.asarray(rates, "float64")
    values = np.asarray(values, "float64")
    if rates.ndim != 1 or rates.shape != values.shape or rates.size < 2:
        raise ValueError(
            "A robustness curve needs one value per rate and two rates at "
            f"least; received {rates.shape} rates, {values.shape} values."
        )
    area = np.sum((values[1:] + values[:-1]) * np.diff(rates)) / 2.0
    return float(area / (rates[-1] - rates[0]))


def relative_robustness(rates, values):
    """The area under the performance-vs-missing-rate curve, normalised
    by the rate range:

        RR = 1 / (r_K - r_0) * sum_k (r_{k+1} - r_k) (v_k + v_{k+1}) / 2

    for performance `v_k` at missing rate `r_k` (MultiBench's relative
    robustness, which sums with a step of 0.1 over rates 0 to 0.9, is
    `0.9 x RR`). It equals the protocol's missing-rate AUC.

    Args:
        rates: increasing missing rates `r_0 .. r_K`.
        values: the metric at each rate.

    Returns:
        float, on the metric's scale.
    """
    return _area(rates, values)


def effective_robustness(rates, values, reference, higher_is_better=True):
    """The same area, of the curve relative to a reference method's curve
    after equalising their performance on clean data (rate `r_0`):

        ER = s * RR(v - (u + v_0 - u_0))

    for the method's curve `v` and the reference's `u` (MultiBench's
    effective robustness, whose reference is late fusion; here the
    unimodal baseline, `unimodal`), with `s = 1` for a score (accuracy,
    F1) and `s = -1` for an error (MAE), so that the sign means the same
    for every metric. Zero: the method degrades as the reference does;
    positive: it keeps more of its clean performance (loses less score,
    gains less error as modalities go missing).

    Args:
        rates: increasing missing rates.
        values: the method's metric at each rate.
        reference: the reference method's metric at each rate.
        higher_is_better: bool, False for an error metric.

    Returns:
        float, on the metric's scale.
    """
    values = np.asarray(values, "float64")
    reference = np.asarray(reference, "float64")
    if reference.shape != values.shape:
        raise ValueError(
            f"The reference curve has {reference.shape} values for "
            f"{values.shape} of the method's."
        )
    expected = reference + (values[0] - reference[0])
    sign = 1.0 if higher_is_better else -1.0
    return sign * _area(rates, values - expected)
