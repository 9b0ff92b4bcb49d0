"""The two estimators DSL is compared with: surrogate-only and labeled-only regression.

Both return statsmodels results (``params``, ``bse``, ``conf_int``, ...), the same interface as
:class:`stats.DSLResults`, so the three can be tabulated side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from numpy.typing import ArrayLike
from statsmodels.regression.linear_model import RegressionModel, RegressionResultsWrapper

from stats._formula import formula_outcome, with_outcome

__all__ = ["labeled_ols", "surrogate_ols"]


def surrogate_ols(formula: str, data: pd.DataFrame, surrogate: str) -> RegressionResultsWrapper:
    """OLS with the surrogate in place of the gold outcome, on every row (HC1 standard errors).

    This is what one reports without labels. Its interval is narrow (all ``N`` rows) but centred on
    the wrong value whenever the surrogate's errors are related to the regressors (e.g. a language
    ID that errs more on the short answers given to image queries), so its coverage of the true
    coefficient goes to zero as ``N`` grows. Rows where the surrogate is missing are dropped.
    """
    rows = data.loc[data[surrogate].notna()]
    return _full_rank(smf.ols(with_outcome(formula, surrogate), rows)).fit(cov_type="HC1")


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
