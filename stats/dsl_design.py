"""Design-variance DSL: the population is fixed and known, the labels a stratified sample of it.

The population coefficient of a linear model is ``(X'X)^-1 X'g + (X'X)^-1 X'(Y - g)``: the first
term is known exactly given g-hat, the second is estimated from the labeled rows by the
stratified Hajek regression of the residual (:func:`stats.design.survey_regression`), so only it
carries sampling variance: a finite-population design variance with Satterthwaite degrees of
freedom and the no-error floor (docs/stats.md). :func:`stats.dsl.dsl` with ``variance="design"``
solves one split with :func:`solve_design`; :func:`dsl_design_matrix` and
:func:`dsl_design_sums` serve callers that fit many cells of one population
(:func:`stats.analyse_study`), sharing what does not depend on g-hat across the splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from stats._formula import formula_outcome
from stats._linalg import first_rows
from stats.design import (
    StratifiedSample,
    SurveyFit,
    covariate_patterns,
    survey_coefficients,
    survey_regression,
    survey_regressions,
)
from stats.dsl_results import DSLResults, SplitFit

__all__ = [
    "CellDesign",
    "dsl_design_estimate",
    "dsl_design_matrix",
    "dsl_design_sums",
    "predicted_variance",
    "solve_design",
]


def dsl_design_matrix(
    formula: str,
    x: pd.DataFrame,
    outcome: ArrayLike,
    g_hat: NDArray[np.float64],
    sample_prob: ArrayLike,
    strata: ArrayLike,
    stratum_size: ArrayLike,
) -> DSLResults:
    """``dsl("lm", formula, ..., variance="design")`` on a design matrix the caller built once.

    The same estimator, covariance and degrees of freedom as :func:`dsl` with the outcome as the
    only predicted variable, for a caller that fits several estimators on one cell
    (:func:`stats.analyse_study`): the cell's patsy design is built once for all of them, and
    the ``sample_split`` splits share what does not depend on g-hat (the coefficients of g-hat
    on every row solved for all splits at once, the covariate patterns, the labeled sample).

    Parameters
    ----------
    formula : str
        The formula ``x`` was built from (kept on the results).
    x : DataFrame
        Design matrix of every row of the cell, columns named by term.
    outcome : array-like
        Gold outcome per row, NaN where unlabeled.
    g_hat : ndarray (S, N)
        Cross-fitted predictions of the outcome per split and row.
    sample_prob, strata, stratum_size
        Per row: ``n_h / N_h``, sampling stratum and ``N_h``, as for :func:`dsl`.
    """
    design, y, predictions, labeled, sample = _design_inputs(x, outcome, g_hat, sample_prob, strata, stratum_size)
    b_g = _coefficients_of_g_hat(design, predictions)
    gold, x_labeled = y[labeled], design[labeled]
    residuals = gold - predictions[:, labeled]
    floors = (
        _unseen_error_floor(covariate_patterns(design), predictions, labeled, residuals)
        if np.isin(gold, (0.0, 1.0)).all()
        else None
    )
    fits = survey_regressions(x_labeled, residuals, sample, floors, known_floor=True)
    return _design_results(formula, list(x.columns), b_g, fits, residuals, nobs=len(y))


def dsl_design_estimate(
    x: pd.DataFrame,
    outcome: ArrayLike,
    g_hat: NDArray[np.float64],
    sample_prob: ArrayLike,
    strata: ArrayLike,
    stratum_size: ArrayLike,
) -> pd.Series:
    """The coefficients of :func:`dsl_design_matrix` alone (same arguments but the formula).

    For the "can't tell" bounds, which need the estimate with the unanswerable items read as
    wrong or right but not its variance: the coefficients of g-hat plus the Hajek regression of
    the residual, per split, and their median, without the linearisation variance.
    """
    design, y, predictions, labeled, sample = _design_inputs(x, outcome, g_hat, sample_prob, strata, stratum_size)
    b_g = _coefficients_of_g_hat(design, predictions)
    residuals = y[labeled] - predictions[:, labeled]
    by_split = [
        b_g[split] + survey_coefficients(design[labeled], residual, sample) for split, residual in enumerate(residuals)
    ]
    return pd.Series(np.median(np.vstack(by_split), axis=0), index=list(x.columns))


@dataclass(frozen=True)
class CellDesign:
    """A cell's design matrix with what design-variance DSL derives from it alone.

    Rows with the same covariates (a cell's image arm, an ablation level combination) form a
    covariate pattern, and DSL needs g-hat on the cell's unlabeled rows only through per-pattern
    sums (:func:`dsl_design_sums`). Built once per cell and population, whatever the labels.
    """

    x: pd.DataFrame
    design: NDArray[np.float64]
    patterns: NDArray[np.intp]
    counts: NDArray[np.float64]
    pattern_rows: NDArray[np.float64]
    gram: NDArray[np.float64]

    @classmethod
    def of(cls, x: pd.DataFrame) -> CellDesign | None:
        """The cell design of ``x``; None when a row has a missing value (use :func:`dsl_design_matrix`)."""
        design = x.to_numpy(dtype=np.float64)
        if np.isnan(design).any() or not len(design):
            return None
        patterns = covariate_patterns(design)
        first = first_rows(patterns, int(patterns.max()) + 1)
        counts = np.bincount(patterns).astype(np.float64)
        return cls(x, design, patterns, counts, design[first], design.T @ design)


def dsl_design_sums(
    formula: str,
    cell: CellDesign,
    outcome: NDArray[np.float64],
    g_labeled: NDArray[np.float64],
    g_sums: NDArray[np.float64],
    g_variance_sums: NDArray[np.float64],
    sample_prob: NDArray[np.float64],
    strata: ArrayLike,
    stratum_size: ArrayLike,
    *,
    point_only: bool = False,
) -> DSLResults | pd.Series:
    """:func:`dsl_design_matrix` (or, with ``point_only``, :func:`dsl_design_estimate`) from
    g-hat's sufficient statistics: the same estimator, without a pass over the cell's rows per split.

    ``g_labeled`` (S, labeled rows in row order) is g-hat on the labeled rows; ``g_sums`` and
    ``g_variance_sums`` (S, patterns) are the sums of g-hat and of ``g (1 - g)`` (g clipped to
    [0, 1]) over the rows of each of ``cell``'s covariate patterns. The coefficients of g-hat on
    every row are ``(X'X)^-1 sum_p x_p sum_{i in p} g_i``, and the no-error floor needs the
    per-pattern mean of ``g (1 - g)``: everything else rests on the labeled rows. ``outcome``, ``sample_prob``,
    ``strata`` and ``stratum_size`` are per row of the cell as for :func:`dsl_design_matrix`.
    """
    y = np.asarray(outcome, dtype=np.float64)
    probs = np.asarray(sample_prob, dtype=np.float64)
    if np.isnan(probs).any():
        raise ValueError("sample_prob has missing values")
    labeled, sample = _labeled_sample(y, probs, np.asarray(strata), np.asarray(stratum_size, dtype=np.float64))
    b_g = np.linalg.solve(cell.gram, (g_sums @ cell.pattern_rows).T).T.astype(np.float64, copy=False)
    gold, x_labeled = y[labeled], cell.design[labeled]
    residuals = gold - g_labeled
    if point_only:
        by_split = [
            b_g[split] + survey_coefficients(x_labeled, residual, sample) for split, residual in enumerate(residuals)
        ]
        return pd.Series(np.median(np.vstack(by_split), axis=0), index=list(cell.x.columns))
    floors = (
        _no_error_floor(cell.patterns[labeled], residuals, g_variance_sums / cell.counts, cell.counts)
        if np.isin(gold, (0.0, 1.0)).all()
        else None
    )
    fits = survey_regressions(x_labeled, residuals, sample, floors, known_floor=True)
    return _design_results(formula, list(cell.x.columns), b_g, fits, residuals, nobs=len(y))


def _split_fit(b_g: NDArray[np.float64], fit: SurveyFit) -> SplitFit:
    """One split's ``b = b_g + b_e``: all its variance is the labeling's (power analysis rescales it)."""
    return SplitFit(params=b_g + fit.params, cov=fit.cov, labeling_part=fit.cov, rest=np.zeros_like(fit.cov), df=fit.df)


def _design_results(
    formula: str,
    terms: Sequence[str],
    b_g: NDArray[np.float64],
    fits: Sequence[SurveyFit],
    residuals: NDArray[np.float64],
    nobs: int,
) -> DSLResults:
    """The results of every split: ``b_g`` (S, k) of g-hat, the survey fits of the residuals (S, n)."""
    rmse = float(np.mean(np.sqrt(np.mean(residuals**2, axis=1))))
    return DSLResults(
        model="lm",
        formula=formula,
        terms=terms,
        split_fits=[_split_fit(b, fit) for b, fit in zip(b_g, fits, strict=True)],
        nobs=nobs,
        n_labeled=residuals.shape[1],
        prediction_rmse=pd.Series({formula_outcome(formula): rmse}),
        variance="design",
    )


def _design_inputs(
    x: pd.DataFrame,
    outcome: ArrayLike,
    g_hat: NDArray[np.float64],
    sample_prob: ArrayLike,
    strata: ArrayLike,
    stratum_size: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], StratifiedSample]:
    """Design, outcome, g-hat and labeled mask of the usable rows (as :func:`dsl` keeps them), and
    the stratified sample of the labeled ones."""
    design = x.to_numpy(dtype=np.float64)
    probs = np.asarray(sample_prob, dtype=np.float64)
    keep = ~np.isnan(design).any(axis=1) & ~np.isnan(probs)
    design, probs = design[keep], probs[keep]
    y = np.asarray(outcome, dtype=np.float64)[keep]
    predictions = np.asarray(g_hat, dtype=np.float64)[:, keep]
    strata_kept, sizes_kept = np.asarray(strata)[keep], np.asarray(stratum_size, dtype=np.float64)[keep]
    labeled, sample = _labeled_sample(y, probs, strata_kept, sizes_kept)
    return design, y, predictions, labeled, sample


def _labeled_sample(
    y: NDArray[np.float64], probs: NDArray[np.float64], strata: NDArray[np.generic], sizes: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], StratifiedSample]:
    """The labeled rows (a gold ``y``) and the stratified sample they are, after checking that
    there are some and that their ``n_h / N_h`` is a probability."""
    labeled = ~np.isnan(y)
    if not labeled.any():
        raise ValueError("no labeled rows: the predicted variable(s) are NA everywhere")
    if not np.all((probs[labeled] > 0) & (probs[labeled] <= 1)):
        raise ValueError("sample_prob must lie in (0, 1] on the labeled rows")
    return labeled, StratifiedSample.from_rows(strata[labeled], probs[labeled], sizes[labeled])


def _coefficients_of_g_hat(design: NDArray[np.float64], predictions: NDArray[np.float64]) -> NDArray[np.float64]:
    """``b_g`` of every split at once (S, k), by the normal equations: lstsq's SVD for each split
    cost more than everything else in a cell (the labels identify the design: X'X is regular)."""
    return np.linalg.solve(design.T @ design, (predictions @ design).T).T.astype(np.float64, copy=False)


def solve_design(
    y_orig: NDArray[np.float64],
    x: NDArray[np.float64],
    g: NDArray[np.float64],
    labeled: NDArray[np.bool_],
    sample: StratifiedSample,
) -> SplitFit:
    """One split of design-variance DSL: ``b = b_g + b_e`` with the design covariance of ``b_e``.

    The population coefficient is ``(X'X)^-1 X'g + (X'X)^-1 X'(Y - g)``. The first term is known
    exactly given g-hat; the second is estimated from the labeled rows by the stratified Hajek
    regression of the residual, so only it carries sampling variance.
    """
    b_g = np.linalg.lstsq(x, g, rcond=None)[0].astype(np.float64, copy=False)
    y, residual = y_orig[labeled], y_orig[labeled] - g[labeled]
    floor = (
        _unseen_error_floor(covariate_patterns(x), g, labeled, residual)[0] if np.isin(y, (0.0, 1.0)).all() else None
    )
    return _split_fit(b_g, survey_regression(x[labeled], residual, sample, floor_variance=floor, known_floor=True))


def predicted_variance(g: NDArray[np.float64]) -> NDArray[np.float64]:
    """The residual variance g-hat predicts for a binary label, ``g (1 - g)`` with g clipped to
    [0, 1]: per row, what the no-error floor averages over a pattern (:func:`_unseen_error_floor`)."""
    clipped = np.clip(g, 0.0, 1.0)
    return clipped * (1.0 - clipped)


def _unseen_error_floor(
    patterns: NDArray[np.intp], g: NDArray[np.float64], labeled: NDArray[np.bool_], residual: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Per split and labeled row: a residual variance for patterns whose labels show no error of g-hat.

    With a binary label, g-hat errs on a row when ``|Y - g_hat| > 1/2``. If none of the labels of
    a covariate pattern (an image arm of a cell) shows such an error, the residual variance they
    estimate is near zero even when g-hat errs on a few per cent of the pattern's population:
    with few labels that is likely, and the interval would be far too short. Such a pattern is
    given the larger of two variances, neither estimated from its labels (they show none):

    * the residual variance g-hat itself predicts, the pattern's mean of ``g (1 - g)`` (g clipped
      to [0, 1]): the expected squared residual ``E(Y - g)^2`` where g-hat is calibrated. g-hat is
      cross-fitted, so it predicts each labeled row without having seen it. It is at least that
      of half an error over the pattern's rows (``q (1 - q)``, ``q = 0.5 / N_pattern``): a
      learner that predicts 0 or 1 claims nothing here;
    * the variance of an error at the rate no error among the cell's labels can rule out,
      ``0.5 / (labels + 1)`` (the Jeffreys posterior mean after none). It keeps a handful of
      labels honest and vanishes as ``1/n``.

    As the floor is not estimated from the labels, it costs no degrees of freedom beside the
    variance they do estimate (``known_floor`` of :func:`stats.design.survey_regression`).
    (Until 30 November: the Jeffreys rate with the cell's errors counted, ``(errors + 0.5) /
    (labels + 1)``, times ``mean(max(g, 1 - g))^2``, alone: an error in one arm raised the
    other's floor, and the LLaVA-W intervals were 7% wider at full labeling with coverage 1.00
    either way; docs/stats.md.)

    ``patterns`` are :func:`stats.design.covariate_patterns` of the design matrix; ``g`` (S, N)
    and ``residual`` (S, n) hold every split (one per row), which are computed together: a
    sparse product instead of a pass over the rows per split (issue 10). Returns (S, n).
    """
    g, residual = np.atleast_2d(g), np.atleast_2d(residual)
    n_patterns = patterns.max() + 1
    one_hot = sp.csr_matrix(
        (np.ones(len(patterns)), (np.arange(len(patterns)), patterns)), shape=(len(patterns), n_patterns)
    )
    counts = np.bincount(patterns, minlength=n_patterns).astype(np.float64)
    predicted = (one_hot.T @ predicted_variance(g).T).T / counts
    return _no_error_floor(patterns[labeled], residual, predicted, counts)


def _no_error_floor(
    labeled_patterns: NDArray[np.intp],
    residual: NDArray[np.float64],
    predicted: NDArray[np.float64],
    counts: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The floor of :func:`_unseen_error_floor` from each labeled row's pattern, the residuals
    (S, n), each pattern's mean predicted variance ``g (1 - g)`` (S, patterns) and its rows
    (patterns), where a pattern's labels show no error."""
    is_error = (np.abs(residual) > 0.5).astype(np.float64)
    n_patterns = predicted.shape[1]
    errors = np.stack([np.bincount(labeled_patterns, weights=split, minlength=n_patterns) for split in is_error])
    least = 0.5 / counts
    no_error_rate = 0.5 / (residual.shape[1] + 1.0)
    floor = np.maximum(np.maximum(predicted, least * (1.0 - least)), no_error_rate)
    return np.where(errors == 0, floor, 0.0)[:, labeled_patterns]
