"""The results object of :func:`stats.dsl.dsl` and of design-variance DSL (:mod:`stats.dsl_design`).

In the manner of statsmodels' results classes (``params``, ``bse``, ``conf_int()``,
``summary()``): each cross-fitting split's solution is a :class:`SplitFit`, and
:class:`DSLResults` combines the splits as R's ``dsl`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats as sps

from stats._linalg import nearest_psd_keep_diag

__all__ = ["DSLResults", "ModelName", "SplitFit", "Variance"]

ModelName = Literal["lm", "logit", "felm"]
Variance = Literal["sandwich", "design"]


@dataclass(frozen=True)
class SplitFit:
    """One estimator-stage solution: coefficients, their covariance and power-analysis pieces."""

    params: NDArray[np.float64]
    cov: NDArray[np.float64]
    # cov = labeling_part + rest; power analysis rescales labeling_part by n / n_new.
    labeling_part: NDArray[np.float64]
    rest: NDArray[np.float64]
    # Degrees of freedom per coefficient (design variance only; None: normal intervals).
    df: NDArray[np.float64] | None = None


class DSLResults:
    """Results of :func:`dsl`, in the manner of statsmodels' results classes.

    Split combination follows R's ``dsl`` (and Chernozhukov et al. 2018 for repeated
    cross-fitting): the point estimate is the median over splits of the split estimates ``b_s``,
    the variance of coefficient ``j`` is ``median_s(se_sj^2 + (b_sj - b_j)^2)``, and the covariance
    is the element-wise median of ``V_s + d_s d_s^T`` (``d_s = b_s - b``), symmetrised and, if needed,
    repaired to the nearest positive semi-definite matrix with the same diagonal, so that its
    diagonal equals ``bse ** 2``.

    With ``variance="design"`` each split also has Satterthwaite degrees of freedom per
    coefficient; their median over splits is ``df`` and intervals and p-values use the t
    distribution. With R's sandwich ``df`` is None and they are normal, as in R.
    """

    def __init__(
        self,
        *,
        model: ModelName,
        formula: str,
        terms: Sequence[str],
        split_fits: Sequence[SplitFit],
        nobs: int,
        n_labeled: int,
        prediction_rmse: pd.Series,
        variance: Variance = "sandwich",
    ) -> None:
        self.variance = variance
        self.model = model
        self.formula = formula
        self.terms = list(terms)
        self._split_fits = list(split_fits)
        self.nobs = nobs
        self.n_labeled = n_labeled
        self.prediction_rmse = prediction_rmse

    @property
    def sample_split(self) -> int:
        """Number of cross-fitting splits combined."""
        return len(self._split_fits)

    @cached_property
    def params_by_split(self) -> pd.DataFrame:
        """Coefficients of each split (rows: split 1..S, columns: terms)."""
        return pd.DataFrame(
            np.vstack([f.params for f in self._split_fits]),
            index=pd.RangeIndex(1, self.sample_split + 1, name="split"),
            columns=self.terms,
        )

    @cached_property
    def bse_by_split(self) -> pd.DataFrame:
        """Standard errors of each split (rows: split 1..S, columns: terms)."""
        return pd.DataFrame(
            np.vstack([np.sqrt(np.diag(f.cov)) for f in self._split_fits]),
            index=pd.RangeIndex(1, self.sample_split + 1, name="split"),
            columns=self.terms,
        )

    @cached_property
    def params(self) -> pd.Series:
        """Median of the split estimates."""
        return pd.Series(np.median(self.params_by_split.to_numpy(), axis=0), index=self.terms)

    @cached_property
    def _cov(self) -> NDArray[np.float64]:
        center = self.params.to_numpy()
        stacked = np.stack([f.cov + np.outer(f.params - center, f.params - center) for f in self._split_fits])
        combined = np.median(stacked, axis=0)
        combined = (combined + combined.T) / 2.0
        if np.linalg.eigvalsh(combined).min() <= 0:
            combined = nearest_psd_keep_diag(combined)
        return combined

    def variance_components(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-split covariance split as ``V_s = L_s + O_s``, arrays of shape (S, k, k).

        ``L_s = B M1 B^T / N`` comes from the labeling term of the meat, ``M1 = sum (R/pi)^2 (m_gold -
        m_pred)(m_gold - m_pred)^T / N``, and scales with ``1/pi``; ``O_s`` is the rest. Power
        analysis (:func:`stats.power_dsl`) rescales ``L_s``.
        """
        return (
            np.stack([f.labeling_part for f in self._split_fits]),
            np.stack([f.rest for f in self._split_fits]),
        )

    def cov_params(self) -> pd.DataFrame:
        """Covariance matrix of the coefficients (DataFrame indexed by term)."""
        return pd.DataFrame(self._cov, index=self.terms, columns=self.terms)

    @cached_property
    def bse(self) -> pd.Series:
        """Standard errors: ``sqrt(median_s(se_s^2 + (b_s - b)^2))``."""
        return pd.Series(np.sqrt(np.diag(self._cov)), index=self.terms)

    @cached_property
    def df(self) -> pd.Series | None:
        """Degrees of freedom per term (median over splits), or None for normal intervals."""
        if self._split_fits[0].df is None:
            return None
        return pd.Series(
            np.median(np.vstack([cast(NDArray[np.float64], f.df) for f in self._split_fits]), axis=0), index=self.terms
        )

    def _reference(self) -> sps.rv_continuous | sps.rv_frozen:
        return sps.norm if self.df is None else sps.t(self.df.to_numpy())

    @cached_property
    def tvalues(self) -> pd.Series:
        """``params / bse`` (z, or t with :attr:`df` degrees of freedom)."""
        return self.params / self.bse

    @cached_property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values, normal or t (R's ``summary.dsl`` prints one-sided normal ones)."""
        return pd.Series(2.0 * self._reference().sf(np.abs(self.tvalues.to_numpy())), index=self.terms)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Confidence intervals (normal, or t with :attr:`df`), columns 0 (lower) and 1 (upper)."""
        q = self._reference().ppf(1.0 - alpha / 2.0)
        return pd.DataFrame({0: self.params - q * self.bse, 1: self.params + q * self.bse})

    def summary(self, alpha: float = 0.05) -> str:
        """A readable coefficient table."""
        ci = self.conf_int(alpha)
        table = pd.DataFrame(
            {
                "coef": self.params,
                "std err": self.bse,
                "z" if self.df is None else "t": self.tvalues,
                "P>|z|" if self.df is None else "P>|t|": self.pvalues,
                f"[{alpha / 2:g}": ci[0],
                f"{1 - alpha / 2:g}]": ci[1],
            }
        )
        header = [
            f"DSL regression ({self.model}): {self.formula}",
            f"rows: {self.nobs}   labeled: {self.n_labeled}   cross-fitting splits: {self.sample_split}",
            "variance: "
            + ("R's sandwich (normal)" if self.df is None else "stratified design, FPC (t, Satterthwaite df)"),
        ]
        rmse = ", ".join(f"{k} {v:.4g}" for k, v in self.prediction_rmse.items())
        header.append(f"g-hat RMSE on labeled rows: {rmse}")
        rule = "=" * 78
        return "\n".join([rule, *header, rule, table.to_string(float_format=lambda v: f"{v:.4f}"), rule])

    def __repr__(self) -> str:
        return f"<DSLResults {self.model} '{self.formula}' nobs={self.nobs} n_labeled={self.n_labeled}>"
