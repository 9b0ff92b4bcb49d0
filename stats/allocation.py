"""Allocating a stratified gold-standard sample: proportional quotas, collapsed fine strata,
and a surrogate-informed (Neyman-style) allocation with the interval widths it predicts.

Everything here uses only what is known for every completion before any gold label: stratum
sizes and the surrogate's confidence. So a design built from it is fixed in advance, and the
inclusion probabilities of a stratified simple random sample (``n_h / N_h``) stay exact.

The variance model (used to allocate and to predict widths). The DSL estimate of an arm's mean
(model x benchmark x image) is the surrogate's mean plus a design-weighted mean of the
residuals ``Y - Yhat`` of the labeled items; with a stratified SRS whose stratum ``k`` lies
inside the arm ``a`` (size ``N_a``),

    Var(mean_a) ~= sum_k (N_k / N_a)^2 (1 - pi_k) S_k^2 / (pi_k N_k)

(Cochran 1977, eq. 5.3, applied to the residual), and an IFL contrast adds its two arms'
variances. ``S_k^2``, the residual variance, is unknown before labels; a surrogate that gives
its answer with probability ``p`` errs with probability about ``e = 1 - p``, so ``S_k^2 ~= e(1 -
e)`` with ``e`` the cell's mean of ``1 - p`` (capped at 1/2) and floored at :data:`ERROR_FLOOR`
because language ID is over-confident on short texts. Only the ratios between cells matter for
the allocation; the predicted widths are as good as this proxy (they are upper-biased on the
demo, where ``1 - p`` is two to three times the real error rate).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CONFIDENCE_CUTS",
    "ERROR_FLOOR",
    "Z_95",
    "collapse_cells",
    "confidence_band",
    "expected_widths",
    "neyman_allocation",
    "proportional_quota",
    "residual_variance",
]

#: Cut points of the surrogate-confidence bands (probability of the predicted language). On the
#: demo the language ID's real error rate is 0.30 / 0.19 / 0.04 / 0.004 in the four bands.
CONFIDENCE_CUTS: tuple[float, ...] = (0.5, 0.8, 0.95)
#: Smallest error rate assumed for a cell, however confident the surrogate is.
ERROR_FLOOR = 0.01
#: The band of completions without a surrogate prediction (their error rate counts as 1/2).
NO_PREDICTION = "no prediction"
Z_95 = 1.959963984540054


def proportional_quota(
    weight: ArrayLike, cap: ArrayLike, total: float, lower: ArrayLike | None = None
) -> NDArray[np.float64]:
    """``clip(lambda * weight, lower, cap)`` with the ``lambda`` that makes it sum to ``total``.

    The sum is continuous, nondecreasing and piecewise linear in ``lambda`` (breakpoints
    ``lower / weight`` and ``cap / weight``), so ``lambda`` is found exactly: strata at their cap
    pass their excess, strata raised to their floor take their shortfall, from the free strata
    in proportion to their weights. The caller checks ``sum(lower) <= total <= sum(cap)``.
    """
    w = np.asarray(weight, dtype=np.float64)
    cap = np.asarray(cap, dtype=np.float64)
    low = np.zeros_like(cap) if lower is None else np.asarray(lower, dtype=np.float64)
    breaks = np.unique(np.concatenate([low / w, cap / w]))
    totals = np.clip(np.outer(breaks, w), low, cap).sum(axis=1)
    k = int(np.searchsorted(totals, total, side="right")) - 1
    if k < 0:
        lam = breaks[0]
    elif k >= len(breaks) - 1 or totals[k] == total:
        lam = breaks[min(k, len(breaks) - 1)]
    else:
        lam = breaks[k] + (total - totals[k]) * (breaks[k + 1] - breaks[k]) / (totals[k + 1] - totals[k])
    return np.clip(lam * w, low, cap)


def confidence_band(probability: pd.Series, cuts: tuple[float, ...] = CONFIDENCE_CUTS) -> pd.Series:
    """The confidence band of each completion, e.g. ``"p<0.5"``, ``"0.5<=p<0.8"``, ``"p>=0.95"``."""
    edges = (-np.inf, *cuts, np.inf)
    names = [
        f"p<{high:g}" if low == -np.inf else f"p>={low:g}" if high == np.inf else f"{low:g}<=p<{high:g}"
        for low, high in itertools.pairwise(edges)
    ]
    values = probability.to_numpy(dtype=np.float64)
    band = np.asarray(names, dtype=object)[np.searchsorted(np.asarray(cuts), np.nan_to_num(values), side="right")]
    return pd.Series(np.where(np.isnan(values), NO_PREDICTION, band), index=probability.index, dtype=object)


def residual_variance(mean_error: ArrayLike) -> NDArray[np.float64]:
    """Predicted variance ``S^2`` of label minus surrogate in a cell whose mean ``1 - p`` is given."""
    e = np.clip(np.asarray(mean_error, dtype=np.float64), ERROR_FLOOR, 0.5)
    return e * (1 - e)


def _contrast_variance(
    population: NDArray[np.float64],
    variance: NDArray[np.float64],
    pi: NDArray[np.float64],
    arm_size: NDArray[np.float64],
    contrast: NDArray[np.int64],
    n_contrasts: int,
) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(pi > 0, population * (1 - pi) * variance / (pi * arm_size**2), np.inf)
    return np.bincount(contrast, weights=term, minlength=n_contrasts).astype(np.float64, copy=False)


def expected_widths(cells: pd.DataFrame, pi: ArrayLike, z: float = Z_95) -> pd.Series:
    """Predicted width (``2 z SE``) of each contrast's interval under inclusion probabilities ``pi``.

    ``cells`` has one row per cell with ``population``, ``variance`` (``S^2``), ``arm`` (the
    domain whose mean is estimated) and ``contrast`` (the estimand the arm belongs to; NaN for
    cells outside the target estimands). Indexed by contrast.
    """
    target = cells["contrast"].notna().to_numpy()
    rows = cells.loc[target]
    codes, names = pd.factorize(rows["contrast"], sort=True)
    arm_size = rows.groupby("arm")["population"].transform("sum").to_numpy(dtype=np.float64)
    variance = _contrast_variance(
        rows["population"].to_numpy(np.float64),
        rows["variance"].to_numpy(np.float64),
        np.asarray(pi, dtype=np.float64)[target],
        arm_size,
        codes,
        len(names),
    )
    return pd.Series(2 * z * np.sqrt(variance), index=names, name="width")


def neyman_allocation(cells: pd.DataFrame, total: float, iterations: int = 50) -> NDArray[np.float64]:
    """Continuous labels per target cell that minimise the mean width of the contrasts, summing to ``total``.

    Minimising ``sum_c sqrt(V_c)`` with ``V_c`` as in the module docstring gives (Lagrange)
    ``n_k ∝ N_k S_k / (N_a V_c^(1/4))``: Neyman's ``N_k S_k`` within an arm, scaled down for
    contrasts that are already precise. ``V_c`` depends on the allocation, so the weights are
    iterated to a fixed point (ignoring the finite-population factor, which only matters in
    cells that are taken whole, and those are capped at ``N_k``). Cells outside the targets
    (``contrast`` NaN) get 0; the caller gives them their share first.
    """
    target = cells["contrast"].notna().to_numpy()
    rows = cells.loc[target]
    population = rows["population"].to_numpy(np.float64)
    sd = np.sqrt(rows["variance"].to_numpy(np.float64))
    arm_size = rows.groupby("arm")["population"].transform("sum").to_numpy(dtype=np.float64)
    codes, names = pd.factorize(rows["contrast"], sort=True)
    scale = np.ones(len(names))
    quota = np.zeros(len(rows))
    for _ in range(iterations):
        quota = proportional_quota(population * sd / arm_size / scale[codes], population, total)
        variance = _contrast_variance(population, sd**2, quota / population, arm_size, codes, len(names))
        updated = np.maximum(variance, np.finfo(float).tiny) ** 0.25
        if np.allclose(updated / updated.mean(), scale / scale.mean(), rtol=1e-6):
            break
        scale = updated
    allocation = np.zeros(len(cells))
    allocation[target] = quota
    return allocation


def collapse_cells(share: ArrayLike, minimum: float) -> NDArray[np.int64]:
    """Group consecutive cells (of one coarse stratum, in the caller's order) so that every
    group's expected labels reach ``minimum``; the group number of each cell, from 0.

    Cells are added to the open group until it reaches ``minimum``; a short tail joins the last
    group. A stratum whose whole share is below ``minimum`` stays one group. With
    ``minimum = 2`` every stratum can show a within-stratum variance once it is labeled.
    """
    share = np.asarray(share, dtype=np.float64)
    groups = np.zeros(len(share), dtype=np.int64)
    group, filled = 0, 0.0
    for i, value in enumerate(share):
        groups[i] = group
        filled += value
        if filled >= minimum and share[i + 1 :].sum() >= minimum:
            group, filled = group + 1, 0.0
    return groups
