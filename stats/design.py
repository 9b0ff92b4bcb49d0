"""The labeling design while annotation is under way (interim validity).

DSL's bias correction needs each row's probability ``pi_i`` of carrying a gold label. The study
draws a stratified simple random sample, ``n_h`` of the ``N_h`` completions of stratum ``h``, so the
design probability is ``n_h / N_h``. Before annotation is finished only ``l_h <= n_h`` of them have
labels. If the order in which sampled items get annotated is unrelated to their labels within a
stratum (missing at random within stratum), the labeled items are themselves a simple random
sample of the stratum, with probability

    pi_i = l_h / N_h                                          (effective inclusion probability)

so every estimate is design-valid at any time, using these effective probabilities. The same
argument covers items whose gold answer is "cannot tell" (``correct`` is NA): for the accuracy
estimands they count as unlabeled and ``l_h`` counts only definite answers.

A stratum with sampled items but no label yet (``l_h = 0``) has ``pi = 0``: nothing can be said
about its rows by design, so estimation must leave those rows out, which changes the estimand to
the covered strata. :func:`interim_design` reports such strata instead of hiding them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "InterimDesign",
    "StratifiedSample",
    "SurveyFit",
    "agresti_coull_floor",
    "covariate_patterns",
    "interim_design",
    "interim_sample_prob",
    "stratified_linearisation",
    "stratum_sizes",
    "survey_coefficients",
    "survey_regression",
    "survey_regressions",
]


def interim_sample_prob(stratum: ArrayLike, labeled: ArrayLike) -> NDArray[np.float64]:
    """Effective inclusion probability ``l_h / N_h`` of each row's stratum.

    Parameters
    ----------
    stratum : array-like
        Stratum of every row of the population (the whole analysis frame).
    labeled : array-like of bool
        Whether the row has a usable gold label now.

    Returns
    -------
    ndarray
        ``l_h / N_h`` for each row (0 for rows of strata without labels).
    """
    codes, _ = pd.factorize(_values(stratum))
    if (codes < 0).any():
        raise ValueError("stratum has missing values")
    labeled = np.asarray(labeled, dtype=bool)
    sizes = np.bincount(codes)
    n_labeled = np.bincount(codes, weights=labeled.astype(np.float64), minlength=len(sizes))
    return (n_labeled / sizes)[codes]


def _values(labels: ArrayLike) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """Labels as an array without an index, as they are: a Series' own array, else a NumPy array.

    Never through ``pd.Series(labels)``: that copies an object array of strings into a new Arrow
    string array, which at 775k rows cost more than what is computed from it (issue 10).
    """
    if not isinstance(labels, (pd.Series, pd.Index)):
        return np.asarray(labels)
    return labels.to_numpy() if isinstance(labels.dtype, np.dtype) else labels.array


def stratum_sizes(stratum: ArrayLike) -> NDArray[np.float64]:
    """``N_h`` of each row's stratum (a missing stratum counts as one more stratum)."""
    codes, _ = pd.factorize(_values(stratum), use_na_sentinel=False)
    return np.bincount(codes).astype(np.float64)[codes]


@dataclass(frozen=True)
class InterimDesign:
    """Per-stratum state of the labeling design.

    Attributes
    ----------
    strata : DataFrame
        One row per stratum: ``stratum, N_h, n_sampled, n_labeled, design_prob, effective_prob``.
    empty_strata : list of str
        Strata with sampled items but no usable label yet: excluded from estimation.
    unsampled_strata : list of str
        Strata where the design sampled nothing (``design_prob == 0``): excluded as well.
    """

    strata: pd.DataFrame
    empty_strata: list[str]
    unsampled_strata: list[str]

    @property
    def covered_strata(self) -> list[str]:
        """Strata with at least one usable label: the population estimates refer to."""
        return self.strata.loc[self.strata["n_labeled"] > 0, "stratum"].tolist()

    def covered(self, stratum: ArrayLike) -> NDArray[np.bool_]:
        """Row mask: True where the row's stratum has at least one usable label."""
        values = _values(stratum)
        return pd.Series(values, dtype=values.dtype, copy=False).isin(self.covered_strata).to_numpy()

    def describe(self) -> str:
        """One line on coverage, for reports and notes."""
        excluded = self.strata["stratum"].isin(self.empty_strata + self.unsampled_strata)
        share = self.strata.loc[excluded, "N_h"].sum() / self.strata["N_h"].sum()
        return (
            f"{len(self.covered_strata)} of {len(self.strata)} strata have labels; "
            f"{len(self.empty_strata)} sampled strata without labels yet and "
            f"{len(self.unsampled_strata)} unsampled strata are excluded ({share:.1%} of rows)"
        )


def interim_design(stratum: ArrayLike, labeled: ArrayLike, sample_prob: ArrayLike) -> InterimDesign:
    """Summarise the labeling design now: sizes, labels so far and effective probabilities.

    Parameters
    ----------
    stratum : array-like
        Stratum of every row of the analysis frame.
    labeled : array-like of bool
        Usable gold label present (for accuracy: a definite ``correct`` answer).
    sample_prob : array-like
        Design inclusion probability ``n_h / N_h`` of each row (gives ``n_sampled``).

    Returns
    -------
    InterimDesign
    """
    # factorize and bincount rather than a groupby: a third of the time at 775k rows (issue 10)
    codes, names = pd.factorize(_values(stratum), sort=True)
    present = codes >= 0  # rows without a stratum belong to none, as groupby drops them
    codes = codes[present]
    labeled = np.asarray(labeled, dtype=bool)[present]
    probs = np.asarray(sample_prob, dtype=np.float64)[present]
    known = ~np.isnan(probs)  # the mean design probability skips missing values, as pandas' mean
    size = np.bincount(codes, minlength=len(names))
    with np.errstate(invalid="ignore"):
        design_prob = np.bincount(codes[known], weights=probs[known], minlength=len(names)) / np.bincount(
            codes[known], minlength=len(names)
        )
    strata = pd.DataFrame(
        {
            "stratum": pd.Series(np.asarray(names)),
            "N_h": size,
            "n_sampled": np.rint(design_prob * size).astype(np.int64),
            "n_labeled": np.bincount(codes, weights=labeled, minlength=len(names)).astype(np.int64),
            "design_prob": design_prob,
        }
    )
    strata["effective_prob"] = strata["n_labeled"] / strata["N_h"]
    empty = strata.loc[(strata["n_sampled"] > 0) & (strata["n_labeled"] == 0), "stratum"].tolist()
    unsampled = strata.loc[(strata["n_sampled"] == 0) & (strata["n_labeled"] == 0), "stratum"].tolist()
    return InterimDesign(strata=strata, empty_strata=empty, unsampled_strata=unsampled)


@dataclass(frozen=True)
class StratifiedSample:
    """Where the labeled rows of a population cell come from: the stratified SRS behind them.

    Attributes
    ----------
    stratum : ndarray of int
        Stratum code (0..H-1) of each labeled row of the cell.
    population : ndarray
        ``N_h`` per stratum code: rows of the whole stratum (inside and outside the cell).
    labeled : ndarray
        ``n_h`` per stratum code: labeled rows of the whole stratum. Labeled rows outside the
        cell count, with a zero contribution (domain estimation).
    """

    stratum: NDArray[np.intp]
    population: NDArray[np.float64]
    labeled: NDArray[np.float64]

    @classmethod
    def from_rows(cls, stratum: ArrayLike, sample_prob: ArrayLike, stratum_size: ArrayLike) -> StratifiedSample:
        """From the labeled rows' stratum labels, inclusion probabilities ``n_h / N_h`` and ``N_h``."""
        codes, _ = pd.factorize(_values(stratum))
        population = np.zeros(codes.max() + 1 if len(codes) else 0)
        labeled = np.zeros_like(population)
        population[codes] = np.asarray(stratum_size, dtype=np.float64)
        labeled[codes] = np.rint(np.asarray(sample_prob, dtype=np.float64) * population[codes])
        return cls(codes, population, labeled)

    @property
    def weights(self) -> NDArray[np.float64]:
        """Design weight ``N_h / n_h`` of each labeled row."""
        return (self.population / self.labeled)[self.stratum]


def stratified_linearisation(
    scores: NDArray[np.float64],
    sample: StratifiedSample,
    groups: NDArray[np.intp] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Design covariance and Satterthwaite degrees of freedom of an estimated total.

    ``scores`` (shape ``(n, k)``, one row per labeled row of the cell) are the weighted
    linearised contributions ``w_i u_i`` of an estimator ``sum_i R_i w_i u_i`` (a Horvitz-Thompson
    total, or the linearisation of a Hajek / weighted-least-squares estimator). Under stratified
    simple random sampling without replacement its variance estimate is

        V = sum_h (1 - n_h / N_h) n_h / (n_h - 1) sum_{i in s_h} (z_i - zbar_h)(z_i - zbar_h)^T

    where ``s_h`` is every labeled row of stratum ``h``, those outside the cell with ``z_i = 0``
    (domain estimation), and ``zbar_h`` the mean over ``s_h``; the factor ``1 - n_h / N_h`` is the
    finite-population correction (the population is fixed and fully known). A stratum with a
    single label cannot estimate its own spread: it contributes ``(1 - n_h/N_h) z z^T`` (centred at
    zero, which is conservative for a domain).

    Degrees of freedom per coefficient follow Satterthwaite (Welch for two groups): the variance
    is split into the contributions ``v_g`` of ``groups`` of labeled rows (the covariate patterns,
    e.g. the two image arms; default: one group), each with ``n_g - 1`` degrees of freedom, and
    ``df = (sum v_g)^2 / sum (v_g^2 / (n_g - 1))``. A contrast that rests on the three labels of
    one arm so gets about 2, not the hundreds of the labeled rows around it. (Per-stratum
    degrees of freedom would collapse to 1 under a design with a stratum per cell arm.)
    """
    k = scores.shape[1]
    n_strata = len(sample.population)
    sums = np.zeros((n_strata, k))
    np.add.at(sums, sample.stratum, scores)
    cell_counts = np.bincount(sample.stratum, minlength=n_strata).astype(np.float64)
    n_h, big_n = sample.labeled, sample.population
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(n_h[:, None] > 0, sums / n_h[:, None], 0.0)
    centred = scores - means[sample.stratum]
    fpc = np.clip(1.0 - n_h / np.where(big_n > 0, big_n, 1.0), 0.0, 1.0)
    lonely = n_h <= 1
    factor = np.where(lonely, fpc, fpc * n_h / np.where(lonely, 1.0, n_h - 1.0))
    per_stratum = np.zeros((n_strata, k, k))
    # Inside the cell: the centred scores; outside it, (n_h - n_hc) zeros centred at -zbar_h.
    np.add.at(per_stratum, sample.stratum, centred[:, :, None] * centred[:, None, :])
    outside = np.where(lonely, 0.0, n_h - cell_counts)
    per_stratum += outside[:, None, None] * means[:, :, None] * means[:, None, :]
    lonely_rows = lonely[sample.stratum]
    if lonely_rows.any():  # centre a lone label at zero instead of at itself
        per_stratum[lonely] = 0.0
        np.add.at(
            per_stratum, sample.stratum[lonely_rows], scores[lonely_rows][:, :, None] * scores[lonely_rows][:, None, :]
        )
    per_stratum *= factor[:, None, None]
    cov = per_stratum.sum(axis=0)
    # Each labeled row's share of the diagonal, summed by group, for the degrees of freedom.
    groups = np.zeros(len(scores), dtype=np.intp) if groups is None else groups
    own = np.where(lonely_rows[:, None], scores, centred) ** 2 * factor[sample.stratum][:, None]
    n_groups = groups.max() + 1 if len(groups) else 0
    contributions = np.zeros((n_groups, k))
    np.add.at(contributions, groups, own)
    own_df = np.maximum(np.bincount(groups, minlength=n_groups) - 1.0, 1.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        df = contributions.sum(axis=0) ** 2 / (contributions**2 / own_df).sum(axis=0)
    return cov, np.where(np.isfinite(df), df, max(len(scores) - k, 1.0))


@dataclass(frozen=True)
class SurveyFit:
    """A design-weighted regression on labeled rows: coefficients, design covariance, df."""

    params: NDArray[np.float64]
    cov: NDArray[np.float64]
    df: NDArray[np.float64]


def survey_regression(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    sample: StratifiedSample,
    *,
    floor_variance: NDArray[np.float64] | None = None,
    known_floor: bool = False,
) -> SurveyFit:
    """Weighted least squares of ``y`` on ``x`` over labeled rows, weights ``N_h / n_h``.

    This is the stratified Hajek / pseudo-likelihood estimator of the population regression
    coefficient (for a saturated design of indicators: the Hajek mean of each cell), with the
    linearisation variance of :func:`stratified_linearisation` (scores ``w_i T^-1 x_i r_i``,
    ``T = X'WX``, ``r`` the residuals) including the finite-population correction. Degrees of
    freedom are Satterthwaite's over the covariate patterns (distinct rows of ``x``).

    ``floor_variance`` (per labeled row, 0 for none) is a residual variance the row's pattern
    cannot be shown to be below (see :func:`agresti_coull_floor`); each such row adds
    ``(1 - f_h) w_i^2 floor_i T^-1 x_i x_i^T T^-1``, with ``labels of the pattern - 1`` degrees
    of freedom, so a pattern whose few labels happen to agree never claims to be known exactly.
    With ``known_floor`` the floor is a variance the labels did not estimate (DSL's, from g-hat's
    predictions and the label count): beside a variance the labels estimate it adds no degrees-of-
    freedom penalty; alone (every label agrees) it keeps ``labels - 1``.
    """
    floors = None if floor_variance is None else floor_variance[None, :]
    return survey_regressions(x, np.asarray(y, dtype=np.float64)[None, :], sample, floors, known_floor=known_floor)[0]


def survey_regressions(
    x: NDArray[np.float64],
    ys: NDArray[np.float64],
    sample: StratifiedSample,
    floor_variances: NDArray[np.float64] | None = None,
    *,
    known_floor: bool = False,
) -> list[SurveyFit]:
    """:func:`survey_regression` of each row of ``ys`` (S, n) on the same ``x`` and sample, with
    ``floor_variances`` (S, n) per row of ``ys`` and ``known_floor``: the same numbers, with what depends on ``x``
    alone (rank check, weights, bread, covariate patterns) computed once (DSL's splits, issue 10)."""
    _check_identified(x, ys.shape[1])
    w = sample.weights
    gram = x.T @ (w[:, None] * x)
    bread = np.linalg.inv(gram)
    projected = x @ bread
    patterns = covariate_patterns(x)
    fits = []
    for split, y in enumerate(ys):
        params = np.linalg.solve(gram, x.T @ (w * y)).astype(np.float64, copy=False)
        scores = (w * (y - x @ params))[:, None] * projected
        cov, df = stratified_linearisation(scores, sample, patterns)
        floor = None if floor_variances is None else floor_variances[split]
        if floor is not None and np.any(floor > 0):
            cov, df = _add_floor(projected, patterns, sample, floor, cov, df, known=known_floor)
        fits.append(SurveyFit(params, cov, df))
    return fits


def survey_coefficients(
    x: NDArray[np.float64], y: NDArray[np.float64], sample: StratifiedSample
) -> NDArray[np.float64]:
    """The coefficients of :func:`survey_regression` alone: weighted least squares, weights ``N_h / n_h``.

    Raises LinAlgError where the labeled rows do not identify every coefficient.
    """
    _check_identified(x, len(y))
    w = sample.weights
    return np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (w * y)).astype(np.float64, copy=False)


def _check_identified(x: NDArray[np.float64], n_labeled: int) -> None:
    """Raise LinAlgError where the ``n_labeled`` rows of ``x`` do not identify every coefficient."""
    k = x.shape[1]
    if n_labeled <= k or np.linalg.matrix_rank(x) < k:
        raise np.linalg.LinAlgError("the labeled rows do not identify every coefficient (singular design)")


def covariate_patterns(x: NDArray[np.float64]) -> NDArray[np.intp]:
    """Code (0..P-1) of each row's distinct covariate pattern (e.g. its image arm).

    Numbered in the rows' lexicographic order, as ``np.unique(x, axis=0)`` numbers them, but by
    hashing each column and combining the codes: np.unique sorts whole rows, 20x slower, which
    dominated a recompute at the study's scale (issue 10).
    """
    x = np.asarray(x)
    key = np.zeros(len(x), dtype=np.int64)
    size = 1
    for column in (x if x.ndim == 2 else x[:, None]).T:
        codes, levels = pd.factorize(column, sort=True, use_na_sentinel=False)
        if size * len(levels) >= 2**62:  # keep the mixed-radix key within int64: renumber it first
            key = pd.factorize(key, sort=True)[0].astype(np.int64)
            size = int(key.max()) + 1
        key = key * len(levels) + codes
        size *= len(levels)
    return pd.factorize(key, sort=True)[0].astype(np.intp)


def agresti_coull_floor(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per row: ``p(1-p)`` at ``p = (ones + 2) / (labels + 4)`` where all labels of its pattern agree.

    For a binary outcome; 0 on rows of patterns whose labels disagree (their residuals speak for
    themselves). The Agresti-Coull centre is what keeps a binomial interval honest at 0 or n
    successes.
    """
    patterns = covariate_patterns(x)
    ones = np.bincount(patterns, weights=y)
    counts = np.bincount(patterns).astype(np.float64)
    shrunk = (ones + 2.0) / (counts + 4.0)
    agree = (ones == 0) | (ones == counts)
    return np.where(agree, shrunk * (1.0 - shrunk), 0.0)[patterns]


def _add_floor(
    projected: NDArray[np.float64],
    patterns: NDArray[np.intp],
    sample: StratifiedSample,
    floor: NDArray[np.float64],
    cov: NDArray[np.float64],
    df: NDArray[np.float64],
    *,
    known: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Add each row's floor variance (``projected`` rows are ``T^-1 x_i``) and update the df:
    Satterthwaite's with ``labels of the pattern - 1`` for the floor, or with none for a ``known``
    floor beside a variance the labels estimate."""
    n_patterns = patterns.max() + 1
    fpc = np.clip(1.0 - sample.labeled / sample.population, 0.0, 1.0)[sample.stratum]
    scale = fpc * sample.weights**2 * floor
    added = np.zeros((n_patterns, *cov.shape))
    np.add.at(added, patterns, scale[:, None, None] * projected[:, :, None] * projected[:, None, :])
    floor_var = np.diagonal(added, axis1=1, axis2=2)  # (P, k)
    design_var = np.diag(cov)
    own_df = np.maximum(np.bincount(patterns, minlength=n_patterns) - 1.0, 1.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        design_term = np.where(design_var > 0, design_var**2 / df, 0.0)
        floor_term = (floor_var**2 / own_df).sum(axis=0)
        if known:
            floor_term = np.where(design_term > 0, 0.0, floor_term)
        new_df = (design_var + floor_var.sum(axis=0)) ** 2 / (design_term + floor_term)
    return cov + added.sum(axis=0), np.where(np.isfinite(new_df), new_df, df)
