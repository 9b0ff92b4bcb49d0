"""The two estimators DSL is compared with: surrogate-only and labeled-only regression.

Both return results with ``params``, ``bse`` and ``conf_int`` (statsmodels results, or
:class:`SurveyResults` for the design-based labeled estimator), the same interface as
:class:`stats.DSLResults`, so the three can be tabulated side by side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import patsy
from numpy.typing import ArrayLike
from scipy import stats as sps

from stats._formula import formula_outcome, with_outcome
from stats.design import StratifiedSample, agresti_coull_floor, survey_coefficients, survey_regression

if TYPE_CHECKING:
    from statsmodels.regression.linear_model import RegressionModel, RegressionResultsWrapper

__all__ = [
    "OLSResults",
    "SurveyResults",
    "labeled_ols",
    "labeled_survey",
    "labeled_survey_design",
    "labeled_survey_estimate",
    "surrogate_ols",
    "surrogate_ols_design",
]


def surrogate_ols(formula: str, data: pd.DataFrame, surrogate: str) -> RegressionResultsWrapper:
    """OLS with the surrogate in place of the gold outcome, on every row (HC1 standard errors).

    This is what one reports without labels. Its interval is narrow (all ``N`` rows) but centred on
    the wrong value whenever the surrogate's errors are related to the regressors (e.g. a language
    ID that errs more on the short answers given to image queries), so its coverage of the true
    coefficient goes to zero as ``N`` grows. Rows where the surrogate is missing are dropped.
    """
    import statsmodels.formula.api as smf  # lazily: 0.7 s to import, and analyse_study never needs it

    rows = data.loc[data[surrogate].notna()]
    return _full_rank(smf.ols(with_outcome(formula, surrogate), rows)).fit(cov_type="HC1")


class OLSResults:
    """Coefficients, HC1 covariance and normal intervals of :func:`surrogate_ols_design`, as the
    statsmodels results of :func:`surrogate_ols` report them (``fit(cov_type="HC1")``)."""

    def __init__(self, terms: list[str], params: np.ndarray, cov: np.ndarray, nobs: int) -> None:
        self.params = pd.Series(params, index=terms)
        # A variance that is zero (the surrogate constant in an arm) may come out a rounding error below it.
        self.bse = pd.Series(np.sqrt(np.maximum(np.diag(cov), 0.0)), index=terms)
        self.nobs = nobs
        self.df_resid = float(nobs - len(terms))
        self._cov = cov

    def cov_params(self) -> pd.DataFrame:
        """HC1 covariance of the coefficients."""
        return pd.DataFrame(self._cov, index=self.params.index, columns=self.params.index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Normal intervals (statsmodels' default with a robust covariance), columns 0 and 1."""
        q = sps.norm.ppf(1.0 - alpha / 2.0)
        return pd.DataFrame({0: self.params - q * self.bse, 1: self.params + q * self.bse})


def surrogate_ols_design(x: pd.DataFrame, surrogate: ArrayLike) -> OLSResults:
    """:func:`surrogate_ols` on a design matrix the caller built once, without statsmodels' formula
    machinery: the same OLS and HC1 covariance (rows with a NaN surrogate dropped), about eight
    times faster per cell at the demo's size, which counts when every estimand is refitted after
    each label (issue 10)."""
    values = np.asarray(surrogate, dtype=np.float64)
    rows = ~np.isnan(values)
    design, values = x.to_numpy(dtype=np.float64)[rows], values[rows]
    n, k = design.shape
    if np.linalg.matrix_rank(design) < k:
        raise np.linalg.LinAlgError("singular design matrix (a regressor is constant or collinear)")
    if n <= k:
        raise np.linalg.LinAlgError(f"{n} rows for {k} parameters: no residual degree of freedom")
    bread = np.linalg.inv(design.T @ design)
    params = bread @ (design.T @ values)
    residual = values - design @ params
    meat = design.T @ (residual[:, None] ** 2 * design)
    cov = bread @ meat @ bread * (n / (n - k))
    return OLSResults(list(x.columns), params, cov, n)


def labeled_ols(formula: str, data: pd.DataFrame, sample_prob: ArrayLike) -> RegressionResultsWrapper:
    """Design-weighted least squares on the labeled rows only, weights ``1 / pi``.

    The Horvitz-Thompson (pseudo-likelihood) estimator of the population regression: unbiased by
    design, ignoring the surrogate. Its sandwich variance (HC1 of the weighted fit,
    ``(X'WX)^-1 X'W diag(e^2) W X (X'WX)^-1 * n/(n-k)``) is the usual with-replacement linearisation.

    Parameters
    ----------
    formula : str
        patsy formula on the gold outcome.
    data : DataFrame
        Rows of the population; those with a missing outcome are the unlabeled ones and are dropped.
    sample_prob : array-like
        Inclusion probability of each row of ``data``.
    """
    import statsmodels.formula.api as smf  # lazily, see surrogate_ols

    outcome = formula_outcome(formula)
    pi = np.asarray(sample_prob, dtype=np.float64)
    labeled = data[outcome].notna().to_numpy()
    return _full_rank(smf.wls(formula, data.loc[labeled], weights=1.0 / pi[labeled])).fit(cov_type="HC1")


def _full_rank(model: RegressionModel) -> RegressionModel:
    """Refuse a design statsmodels would fit anyway with a meaningless result: rank-deficient
    (a pseudo-inverse solution), or no more rows than parameters (HC1 divides by n - k)."""
    rows, parameters = model.exog.shape
    if np.linalg.matrix_rank(model.exog) < parameters:
        raise np.linalg.LinAlgError("singular design matrix (a regressor is constant or collinear)")
    if rows <= parameters:
        raise np.linalg.LinAlgError(f"{rows} rows for {parameters} parameters: no residual degree of freedom")
    return model


class SurveyResults:
    """Coefficients, design covariance and t intervals of :func:`labeled_survey`."""

    def __init__(self, terms: list[str], params: np.ndarray, cov: np.ndarray, df: np.ndarray, n_labeled: int) -> None:
        self.params = pd.Series(params, index=terms)
        self.bse = pd.Series(np.sqrt(np.diag(cov)), index=terms)
        self.df = pd.Series(df, index=terms)
        self.n_labeled = n_labeled
        self._cov = cov

    def cov_params(self) -> pd.DataFrame:
        """Design covariance of the coefficients."""
        return pd.DataFrame(self._cov, index=self.params.index, columns=self.params.index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """t intervals with the Satterthwaite degrees of freedom, columns 0 and 1 as statsmodels."""
        q = sps.t.ppf(1.0 - alpha / 2.0, self.df.to_numpy())
        return pd.DataFrame({0: self.params - q * self.bse, 1: self.params + q * self.bse})


def labeled_survey(
    formula: str, data: pd.DataFrame, sample_prob: ArrayLike, strata: ArrayLike, stratum_size: ArrayLike
) -> SurveyResults:
    """Stratified Hajek regression on the labeled rows, as a survey statistician computes it.

    Weighted least squares with weights ``N_h / n_h`` (for a saturated design of indicators, such
    as the image arms of a cell, the Hajek mean of each arm), with the stratified linearisation
    variance and finite-population correction of :func:`stats.design.survey_regression` and t
    intervals on Satterthwaite degrees of freedom (as R ``survey::svyglm`` with ``fpc``, but with
    per-cell degrees of freedom). For a binary outcome, a covariate pattern whose labels all agree
    contributes the Agresti-Coull binomial variance ``p(1-p)``, ``p = (ones + 2) / (labels + 4)``,
    instead of zero: no interval has zero width.

    Parameters
    ----------
    formula : str
        patsy formula on the gold outcome.
    data : DataFrame
        Rows of the population cell; those with a missing outcome are the unlabeled ones.
    sample_prob, strata, stratum_size : array-like
        Per row of ``data``: inclusion probability ``n_h / N_h`` (labels so far), sampling
        stratum and its size ``N_h`` (rows of the whole stratum, also outside ``data``).
    """
    outcome = formula_outcome(formula)
    labeled = data[outcome].notna().to_numpy()
    y, x = patsy.dmatrices(formula, data.loc[labeled], NA_action="raise", return_type="dataframe")
    return labeled_survey_design(
        x,
        y.iloc[:, 0],
        np.asarray(sample_prob, dtype=np.float64)[labeled],
        np.asarray(strata)[labeled],
        np.asarray(stratum_size, dtype=np.float64)[labeled],
    )


def labeled_survey_design(
    x: pd.DataFrame, outcome: ArrayLike, sample_prob: ArrayLike, strata: ArrayLike, stratum_size: ArrayLike
) -> SurveyResults:
    """:func:`labeled_survey` on a design matrix the caller built once (rows with a NaN outcome are
    the unlabeled ones): :func:`stats.analyse_study` shares one design per cell among its estimators."""
    design, values, sample = _labeled_rows(x, outcome, sample_prob, strata, stratum_size)
    floor = agresti_coull_floor(design, values) if np.isin(values, (0.0, 1.0)).all() else None
    fit = survey_regression(design, values, sample, floor_variance=floor)
    return SurveyResults(list(x.columns), fit.params, fit.cov, fit.df, len(values))


def labeled_survey_estimate(
    x: pd.DataFrame, outcome: ArrayLike, sample_prob: ArrayLike, strata: ArrayLike, stratum_size: ArrayLike
) -> pd.Series:
    """The coefficients of :func:`labeled_survey_design` alone, for the "can't tell" bounds."""
    return pd.Series(
        survey_coefficients(*_labeled_rows(x, outcome, sample_prob, strata, stratum_size)), index=list(x.columns)
    )


def _labeled_rows(
    x: pd.DataFrame, outcome: ArrayLike, sample_prob: ArrayLike, strata: ArrayLike, stratum_size: ArrayLike
) -> tuple[np.ndarray, np.ndarray, StratifiedSample]:
    """Design and outcome of the labeled rows (outcome not NaN) and their stratified sample."""
    values = np.asarray(outcome, dtype=np.float64)
    labeled = ~np.isnan(values)
    sample = StratifiedSample.from_rows(
        np.asarray(strata)[labeled],
        np.asarray(sample_prob, dtype=np.float64)[labeled],
        np.asarray(stratum_size, dtype=np.float64)[labeled],
    )
    return x.to_numpy(dtype=np.float64)[labeled], values[labeled], sample
