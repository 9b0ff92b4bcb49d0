"""Design-based supervised learning (DSL) regression, matching the R package ``dsl`` 0.1.0.

DSL (Egami, Hinck, Stewart and Wei 2023, "Using imperfect surrogates for downstream inference",
NeurIPS) estimates a regression on a variable that is measured by an imperfect surrogate on all
``N`` rows and by a gold label on a sample of rows drawn with known probabilities ``pi_i``. With
``R_i`` the labeling indicator and ``g_hat`` a cross-fitted prediction of the label, the
estimating equation is the mean of the bias-corrected moment

    m_i(b) = m(g_hat_i; b) + (R_i / pi_i) * (m(gold_i; b) - m(g_hat_i; b)),      (paper eq. 6)

with ``m(gold; b) := 0`` on unlabeled rows. Because ``E[R_i / pi_i] = 1`` by design, the correction
removes any bias of ``g_hat``; a good ``g_hat`` only makes the estimate more precise. For ``lm`` (and
``felm``) ``m(y, x; b) = x (y - x'b)``, for ``logit`` ``m(y, x; b) = x (y - expit(x'b))``; where the
predicted variable is a covariate, ``x`` too is taken from the gold or the predicted data.

This module solves the equation exactly (closed form for lm/felm, Newton for logit) where R runs a
general-purpose optimiser that stops early; given the same g-hat, estimates agree with R to within
that optimiser's slack (3e-4 or better on R's examples) and standard errors to 1e-4 relative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, TypeAlias, cast

import numpy as np
import pandas as pd
import patsy
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps
from scipy.special import expit

from stats._formula import as_list, formula_names, formula_outcome
from stats._linalg import cluster_sum, nearest_psd_keep_diag, outer_sum
from stats.crossfit import cross_fit_predictions
from stats.design import (
    StratifiedSample,
    covariate_patterns,
    survey_coefficients,
    survey_regression,
    survey_regressions,
)
from stats.learners import Learner

__all__ = [
    "VARIANCES",
    "CellDesign",
    "DSLResults",
    "dsl",
    "dsl_design_estimate",
    "dsl_design_matrix",
    "dsl_design_sums",
]

ModelName = Literal["lm", "logit", "felm"]
Variance = Literal["sandwich", "design"]
#: ``sandwich``: R's ``dsl`` exactly (normal intervals); ``design``: finite-population design
#: variance of the correction term with t intervals (see :func:`dsl`).
VARIANCES: tuple[str, ...] = ("sandwich", "design")
GHat: TypeAlias = ArrayLike | Mapping[str, ArrayLike] | pd.DataFrame

_KEEP_NA = patsy.NAAction(NA_types=[])
# Formulas see patsy's builtins (C, Treatment, I, Q, ...) and numpy as `np`, whoever calls.
_EVAL_ENV = patsy.EvalEnvironment([{"np": np}])


@dataclass(frozen=True)
class _SplitFit:
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
        split_fits: Sequence[_SplitFit],
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


def dsl(
    model: ModelName,
    formula: str,
    data: pd.DataFrame,
    predicted_var: str | Sequence[str],
    prediction: str | Sequence[str] | None = None,
    sample_prob: str | ArrayLike | None = None,
    feature: str | Sequence[str] | None = None,
    cross_fit: int = 5,
    sample_split: int = 10,
    seed: int | np.random.Generator = 1234,
    g_hat: GHat | None = None,
    cluster: str | None = None,
    fixed_effect: Literal["oneway", "twoways"] | None = None,
    index: str | Sequence[str] | None = None,
    learner: Learner | None = None,
    variance: Variance = "sandwich",
    strata: str | ArrayLike | None = None,
    stratum_size: str | ArrayLike | None = None,
) -> DSLResults:
    """Fit a regression by design-based supervised learning (DSL), as R's ``dsl::dsl``.

    Parameters
    ----------
    model : {"lm", "logit", "felm"}
        Linear, logistic or fixed-effects linear regression. A mean is ``lm`` with ``y ~ 1``.
    formula : str
        patsy formula (statsmodels' formula language), e.g. ``"fidelity ~ image + image:llm"``.
    data : DataFrame
        All rows. Rows with NA in any used column other than the predicted variables are dropped
        (as R does); rows are *labeled* where all predicted variables are non-NA.
    predicted_var : str or list of str
        Column(s) with gold labels on the labeled rows; may be the outcome or covariates.
    prediction : str or list of str, optional
        Surrogate column(s): learner inputs for g-hat.
    sample_prob : str or array-like, optional
        Column name (or values) of each row's labeling probability ``pi_i``. Rescaled so that
        ``mean(pi) == mean(R)`` as in R; default ``pi = n_labeled / N`` (simple random sampling).
    feature : str or list of str, optional
        Further learner inputs.
    cross_fit, sample_split : int
        Folds and independent fold draws for g-hat (see :func:`stats.cross_fit_predictions`).
    seed : int or numpy.random.Generator
        Seeds the fold draws.
    g_hat : array-like or mapping, optional
        Precomputed predictions of the predicted variable(s) for every row of ``data``; skips
        cross-fitting. Shape ``(N,)`` (one split) or ``(S, N)`` (S splits) for a single predicted
        variable; for several, a mapping ``{name: array}`` (each ``(N,)`` or ``(S, N)``) or a
        DataFrame with a column per predicted variable (one split). The output of
        :func:`stats.cross_fit_predictions` is accepted as is.
    cluster : str, optional
        Column for cluster-robust standard errors (moments summed within clusters first); also
        keeps clusters whole in the cross-fitting folds.
    fixed_effect : {"oneway", "twoways"}, optional
        For ``felm``; default ``"oneway"``.
    index : str or list of str, optional
        For ``felm``: the fixed-effect column (oneway) or two columns (twoways).
    learner : sklearn-like estimator, optional
        Learner for g-hat; default :func:`stats.learners.default_learner`.
    variance : {"sandwich", "design"}
        ``sandwich`` (default) is R's: ``pi`` rescaled to ``mean(R)``, the sandwich variance and
        normal intervals. ``design`` treats the population as fixed and known and the labels as
        a stratified simple random sample (``strata``, ``stratum_size`` and an unrescaled
        ``sample_prob = n_h / N_h`` required; ``lm`` with the outcome predicted only): the
        estimate is ``b_g + b_e``, the regression of g-hat on all rows plus the design-weighted
        (Hajek) regression of the residual ``Y - g_hat`` on the labeled rows, and its variance
        is the stratified linearisation variance of ``b_e`` with finite-population correction
        and Satterthwaite degrees of freedom (:func:`stats.design.survey_regression`); intervals
        are t intervals. Given g-hat only the labeling is random, which is what a finite
        population of completions needs.
    strata, stratum_size : str or array-like, optional
        For ``variance="design"``: each row's sampling stratum and its size ``N_h`` (rows of the
        whole stratum, also outside ``data``).

    Returns
    -------
    DSLResults

    Notes
    -----
    ``felm`` follows R's ``dsl``: the pseudo-outcome ``Y~ = Y_pred + (R/pi)(Y - Y_pred)`` and
    pseudo-covariates ``X~`` are averaged within fixed-effect groups (twoways: the sum of the two
    group means minus the grand mean, exact for balanced panels), the slope solves the DSL moment
    with the fixed effects so concentrated out, and the variance is the sandwich of the moment
    with the fixed-effect dummies as explicit parameters (no degrees-of-freedom correction).
    """
    if model not in ("lm", "logit", "felm"):
        raise ValueError("`model` should be 'lm', 'logit' or 'felm'")
    if variance not in VARIANCES:
        raise ValueError(f"`variance` should be one of {VARIANCES}")
    if variance == "design" and (
        model != "lm" or sample_prob is None or strata is None or stratum_size is None or cluster is not None
    ):
        raise ValueError("variance='design' needs model 'lm', sample_prob, strata and stratum_size (no cluster)")
    targets = [predicted_var] if isinstance(predicted_var, str) else list(predicted_var)
    fe_columns: list[str] = []
    if model == "felm":
        fixed_effect = "oneway" if fixed_effect is None else fixed_effect
        fe_columns = [index] if isinstance(index, str) else list(index or [])
        needed = {"oneway": 1, "twoways": 2}.get(fixed_effect)
        if needed is None or len(fe_columns) < needed:
            raise ValueError("felm needs `index`: one column for 'oneway', two for 'twoways'")
        fe_columns = fe_columns[:needed]
    if g_hat is None and prediction is None and feature is None:
        raise ValueError("specify at least one of `prediction` and `feature` (or pass `g_hat`)")

    data = data.reset_index(drop=True)
    probs = (
        None
        if sample_prob is None
        else (
            data[sample_prob].to_numpy(dtype=np.float64)
            if isinstance(sample_prob, str)
            else np.asarray(sample_prob, dtype=np.float64)
        )
    )
    used = set(formula_names(formula, data.columns)) | set(as_list(prediction)) | set(as_list(feature))
    used |= {c for c in [cluster, *fe_columns] if c is not None}
    used -= set(targets)
    keep = ~data[sorted(used)].isna().any(axis=1).to_numpy()
    if probs is not None:
        keep &= ~np.isnan(probs)
    design_info = None
    if variance == "design" and strata is not None and stratum_size is not None:  # checked above
        design_info = (_column(data, strata)[keep], _column(data, stratum_size).astype(np.float64)[keep])
    data = data.loc[keep].reset_index(drop=True)
    if probs is not None:
        probs = probs[keep]

    labeled = data[targets].notna().all(axis=1).to_numpy()
    n_rows, n_labeled = len(data), int(labeled.sum())
    if n_labeled == 0:
        raise ValueError("no labeled rows: the predicted variable(s) are NA everywhere")
    if probs is None:
        pi = np.full(n_rows, n_labeled / n_rows)
    elif variance == "design":
        pi = probs  # n_h / N_h of the stratum: a Hajek ratio per covariate pattern, not R's rescaling
        if not np.all((pi[labeled] > 0) & (pi[labeled] <= 1)):
            raise ValueError("sample_prob must lie in (0, 1] on the labeled rows")
    else:
        pi = probs * (labeled.mean() / probs.mean())
        if not np.all((pi > 0) & (pi <= 1)):
            raise ValueError("sample_prob must lie in (0, 1] (after rescaling to mean(R))")

    if g_hat is None:
        predictions = cross_fit_predictions(
            data,
            targets,
            prediction,
            feature,
            cross_fit=cross_fit,
            sample_split=sample_split,
            seed=seed,
            learner=learner,
            cluster=cluster,
        )
    else:
        predictions = {name: values[:, keep] for name, values in _normalise_g_hat(g_hat, targets, len(keep)).items()}
    n_splits = {v.shape[0] for v in predictions.values()}
    if len(n_splits) != 1:
        raise ValueError("g_hat must have the same number of splits for every predicted variable")

    cluster_codes = None if cluster is None else pd.factorize(data[cluster], sort=True)[0]
    fe_codes = [pd.factorize(data[c], sort=True)[0] for c in fe_columns]
    design = _Design(formula, data, targets, drop_intercept=model == "felm")
    gold = data[targets].to_numpy(dtype=np.float64)

    if design_info is not None:
        if not design.outcome_only:
            raise ValueError("variance='design' needs the predicted variable to be the outcome only")
        sample = StratifiedSample.from_rows(design_info[0][labeled], pi[labeled], design_info[1][labeled])
    fits = []
    for s in range(n_splits.pop()):
        y_pred, x_pred = design.with_predictions({name: predictions[name][s] for name in targets})
        if design_info is not None:
            fits.append(_solve_design(design.y, design.x, y_pred, labeled, sample))
            continue
        fits.append(_solve(model, design.y, design.x, y_pred, x_pred, labeled, pi, cluster_codes, fe_codes))
    rmse = pd.Series(
        {
            name: float(np.mean(np.sqrt(np.mean((predictions[name][:, labeled] - gold[labeled, t]) ** 2, axis=1))))
            for t, name in enumerate(targets)
        }
    )
    return DSLResults(
        model=model,
        formula=formula,
        terms=design.terms,
        split_fits=fits,
        nobs=n_rows,
        n_labeled=n_labeled,
        prediction_rmse=rmse,
        variance=variance,
    )


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
    n_labeled = len(gold)
    residuals = gold - predictions[:, labeled]
    floors = (
        _unseen_error_floor(covariate_patterns(design), predictions, labeled, residuals)
        if np.isin(gold, (0.0, 1.0)).all()
        else [None] * len(predictions)
    )
    fits = []
    for split, (residual, floor) in enumerate(zip(residuals, floors, strict=True)):
        fit = survey_regression(x_labeled, residual, sample, floor_variance=floor, known_floor=True)
        fits.append(
            _SplitFit(
                params=b_g[split] + fit.params,
                cov=fit.cov,
                labeling_part=fit.cov,
                rest=np.zeros_like(fit.cov),
                df=fit.df,
            )
        )
    rmse = float(np.mean(np.sqrt(np.mean(residuals**2, axis=1))))
    return DSLResults(
        model="lm",
        formula=formula,
        terms=list(x.columns),
        split_fits=fits,
        nobs=len(y),
        n_labeled=n_labeled,
        prediction_rmse=pd.Series({formula_outcome(formula): rmse}),
        variance="design",
    )


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
        first = np.empty(int(patterns.max()) + 1, dtype=np.intp)
        first[patterns[::-1]] = np.arange(len(patterns))[::-1]
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
    labeled = ~np.isnan(y)
    if not labeled.any():
        raise ValueError("no labeled rows: the predicted variable(s) are NA everywhere")
    if np.isnan(probs).any():
        raise ValueError("sample_prob has missing values")
    if not np.all((probs[labeled] > 0) & (probs[labeled] <= 1)):
        raise ValueError("sample_prob must lie in (0, 1] on the labeled rows")
    sample = StratifiedSample.from_rows(
        np.asarray(strata)[labeled], probs[labeled], np.asarray(stratum_size, dtype=np.float64)[labeled]
    )
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
    fits = [
        _SplitFit(
            params=b_g[split] + fit.params, cov=fit.cov, labeling_part=fit.cov, rest=np.zeros_like(fit.cov), df=fit.df
        )
        for split, fit in enumerate(survey_regressions(x_labeled, residuals, sample, floors, known_floor=True))
    ]
    rmse = float(np.mean(np.sqrt(np.mean(residuals**2, axis=1))))
    return DSLResults(
        model="lm",
        formula=formula,
        terms=list(cell.x.columns),
        split_fits=fits,
        nobs=len(y),
        n_labeled=len(gold),
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
    labeled = ~np.isnan(y)
    if not labeled.any():
        raise ValueError("no labeled rows: the predicted variable(s) are NA everywhere")
    if not np.all((probs[labeled] > 0) & (probs[labeled] <= 1)):
        raise ValueError("sample_prob must lie in (0, 1] on the labeled rows")
    sample = StratifiedSample.from_rows(
        np.asarray(strata)[keep][labeled], probs[labeled], np.asarray(stratum_size, dtype=np.float64)[keep][labeled]
    )
    return design, y, predictions, labeled, sample


def _coefficients_of_g_hat(design: NDArray[np.float64], predictions: NDArray[np.float64]) -> NDArray[np.float64]:
    """``b_g`` of every split at once (S, k), by the normal equations: lstsq's SVD for each split
    cost more than everything else in a cell (the labels identify the design: X'X is regular)."""
    return np.linalg.solve(design.T @ design, (predictions @ design).T).T.astype(np.float64, copy=False)


def _column(data: pd.DataFrame, values: str | ArrayLike) -> NDArray[np.float64]:
    """A column of ``data`` by name, or given values aligned with its rows."""
    column = data[values].to_numpy() if isinstance(values, str) else np.asarray(values)
    if len(column) != len(data):
        raise ValueError("strata and stratum_size must have one value per row of data")
    return column


def _solve_design(
    y_orig: NDArray[np.float64],
    x: NDArray[np.float64],
    g: NDArray[np.float64],
    labeled: NDArray[np.bool_],
    sample: StratifiedSample,
) -> _SplitFit:
    """One split of design-variance DSL: ``b = b_g + b_e`` with the design covariance of ``b_e``.

    The population coefficient is ``(X'X)^-1 X'g + (X'X)^-1 X'(Y - g)``. The first term is known
    exactly given g-hat; the second is estimated from the labeled rows by the stratified Hajek
    regression of the residual, so only it carries sampling variance.
    """
    b_g = np.linalg.lstsq(x, g, rcond=None)[0]
    y, residual = y_orig[labeled], y_orig[labeled] - g[labeled]
    floor = (
        _unseen_error_floor(covariate_patterns(x), g, labeled, residual)[0] if np.isin(y, (0.0, 1.0)).all() else None
    )
    fit = survey_regression(x[labeled], residual, sample, floor_variance=floor, known_floor=True)
    return _SplitFit(
        params=b_g + fit.params, cov=fit.cov, labeling_part=fit.cov, rest=np.zeros_like(fit.cov), df=fit.df
    )


class _Design:
    """patsy design of the formula on the gold data, rebuilt with predicted values substituted."""

    def __init__(self, formula: str, data: pd.DataFrame, targets: list[str], drop_intercept: bool) -> None:
        lhs, rhs = formula.split("~", 1)
        self._data = data
        y, x = patsy.dmatrices(formula, data, NA_action=_KEEP_NA, eval_env=_EVAL_ENV)
        if y.shape[1] != 1:
            raise ValueError("the outcome must be a single numeric column")
        self._infos = (y.design_info, x.design_info)
        # The outcome is read straight from g-hat when it is a bare predicted column (the usual
        # case): patsy is then needed only where a predicted variable enters the regressors.
        self._outcome_column = lhs.strip() if lhs.strip() in targets else None
        self._rebuild = (
            self._outcome_column is None and bool(set(formula_names(lhs, targets))),
            bool(set(formula_names(rhs, targets))),
        )
        # True when g-hat enters only as the outcome: the regressors are known on every row.
        self.outcome_only = self._outcome_column is not None and not self._rebuild[1]
        names = list(x.design_info.column_names)
        self._columns = [i for i, n in enumerate(names) if not (drop_intercept and n == "Intercept")]
        self.terms = [names[i] for i in self._columns]
        self.y = np.asarray(y, dtype=np.float64)[:, 0]
        self.x = np.asarray(x, dtype=np.float64)[:, self._columns]

    def with_predictions(
        self, values: Mapping[str, NDArray[np.float64]]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Outcome and design matrix with the predicted variables replaced by g-hat."""
        y, x = self.y, self.x
        if self._outcome_column is not None:
            y = np.asarray(values[self._outcome_column], dtype=np.float64)
        if any(self._rebuild):
            filled = self._data.assign(**values)
            y_info, x_info = self._infos
            if self._rebuild[0]:
                y = np.asarray(patsy.build_design_matrices([y_info], filled, NA_action=_KEEP_NA)[0])[:, 0]
            if self._rebuild[1]:
                x = np.asarray(patsy.build_design_matrices([x_info], filled, NA_action=_KEEP_NA)[0])[:, self._columns]
        return y, x


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
    clipped = np.clip(g, 0.0, 1.0)
    predicted = (one_hot.T @ (clipped * (1.0 - clipped)).T).T / counts
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


def _solve(
    model: ModelName,
    y_orig: NDArray[np.float64],
    x_orig: NDArray[np.float64],
    y_pred: NDArray[np.float64],
    x_pred: NDArray[np.float64],
    labeled: NDArray[np.bool_],
    pi: NDArray[np.float64],
    cluster_codes: NDArray[np.intp] | None,
    fe_codes: list[NDArray[np.float64]],
) -> _SplitFit:
    """Solve the mean DSL moment exactly and return the sandwich covariance of one split."""
    n = len(y_orig)
    w = np.where(labeled, 1.0 / pi, 0.0)  # R_i / pi_i
    y_gold = np.where(labeled, y_orig, 0.0)
    x_gold = np.where(labeled[:, None], x_orig, 0.0)
    if model == "felm":
        return _solve_felm(y_gold, x_gold, y_pred, x_pred, labeled, w, cluster_codes, fe_codes)
    if model == "lm":
        params = np.linalg.solve(
            _weighted_cross(x_pred, 1.0 - w, x_pred) + _weighted_cross(x_gold, w, x_gold),
            x_pred.T @ ((1.0 - w) * y_pred) + x_gold.T @ (w * y_gold),
        )
        resid_pred, resid_gold = y_pred - x_pred @ params, y_gold - x_gold @ params
        curv_pred = curv_gold = np.ones(n)
    else:
        params = _newton_logit(y_gold, x_gold, y_pred, x_pred, w)
        p_pred, p_gold = expit(x_pred @ params), expit(x_gold @ params)
        resid_pred, resid_gold = y_pred - p_pred, y_gold - p_gold
        curv_pred, curv_gold = p_pred * (1.0 - p_pred), p_gold * (1.0 - p_gold)
    m_pred = x_pred * resid_pred[:, None]
    correction = w[:, None] * (x_gold * resid_gold[:, None] - m_pred)
    jac = (_weighted_cross(x_pred, (1.0 - w) * curv_pred, x_pred) + _weighted_cross(x_gold, w * curv_gold, x_gold)) / n
    return _sandwich(params, m_pred, correction, jac, cluster_codes, n)


def _solve_felm(
    y_gold: NDArray[np.float64],
    x_gold: NDArray[np.float64],
    y_pred: NDArray[np.float64],
    x_pred: NDArray[np.float64],
    labeled: NDArray[np.bool_],
    w: NDArray[np.float64],
    cluster_codes: NDArray[np.intp] | None,
    fe_codes: list[NDArray[np.float64]],
) -> _SplitFit:
    """felm as R's ``dsl``: group means of the pseudo data concentrate out the fixed effects."""
    n = len(y_gold)
    adj_y = (1.0 - w) * y_pred + w * y_gold
    adj_x = (1.0 - w)[:, None] * x_pred + w[:, None] * x_gold
    fe_y, fe_x = _group_mean(adj_y, fe_codes[0]), _group_mean(adj_x, fe_codes[0])
    if len(fe_codes) == 2:
        fe_y = fe_y + _group_mean(adj_y, fe_codes[1]) - adj_y.mean()
        fe_x = fe_x + _group_mean(adj_x, fe_codes[1]) - adj_x.mean(axis=0)
    a = _weighted_cross(x_pred, 1.0 - w, x_pred - fe_x) + _weighted_cross(x_gold, w, x_gold - fe_x)
    c = x_pred.T @ ((1.0 - w) * (y_pred - fe_y)) + x_gold.T @ (w * (y_gold - fe_y))
    params = np.linalg.solve(a, c).astype(np.float64, copy=False)
    fitted_fe = fe_y - fe_x @ params
    resid_pred = y_pred - fitted_fe - x_pred @ params
    resid_gold = np.where(labeled, y_gold - fitted_fe - x_gold @ params, 0.0)

    # Variance: the lm moment with the fixed effects as explicit dummy parameters (oneway: one
    # dummy per level; twoways: all levels of the first index, all but one of the second).
    dummies = [_one_hot(fe_codes[0])]
    if len(fe_codes) == 2:
        dummies.append(_one_hot(fe_codes[1])[:, 1:])
    dummy = sp.hstack(dummies, format="csr")
    k = x_pred.shape[1]
    m_pred = sp.hstack([sp.csr_matrix(x_pred * resid_pred[:, None]), dummy.multiply(resid_pred[:, None])], format="csr")
    m_gold = sp.hstack([sp.csr_matrix(x_gold * resid_gold[:, None]), dummy.multiply(resid_gold[:, None])], format="csr")
    correction = (m_gold - m_pred).multiply(w[:, None]).tocsr()
    x_mix = w[:, None] * x_gold + (1.0 - w)[:, None] * x_pred
    jac_xx = _weighted_cross(x_gold, w, x_gold) + _weighted_cross(x_pred, 1.0 - w, x_pred)
    jac_xd = np.asarray((dummy.T @ x_mix).T)
    jac_dd = outer_sum(dummy)
    jac = np.block([[jac_xx, jac_xd], [jac_xd.T, jac_dd]]) / n
    return _sandwich(params, m_pred, correction, jac, cluster_codes, n, n_params=k)


def _sandwich(
    params: NDArray[np.float64],
    m_pred: NDArray[np.float64] | sp.spmatrix,
    correction: NDArray[np.float64] | sp.spmatrix,
    jac: NDArray[np.float64],
    cluster_codes: NDArray[np.intp] | None,
    n: int,
    n_params: int | None = None,
) -> _SplitFit:
    """``V = J^-1 Meat J^-T / N`` for the first ``n_params`` parameters, with R's meat split.

    ``Meat = sum (m_pred + c)(m_pred + c)^T / N`` over rows (or cluster sums), ``c`` the labeling
    correction ``(R/pi)(m_gold - m_pred)``; ``sum c c^T / N`` is the part that scales with ``1/pi``.
    """
    k = len(params) if n_params is None else n_params
    bread = np.linalg.solve(jac.T, np.eye(jac.shape[0])[:, :k]).T  # first k rows of J^-1
    moments = cluster_sum(m_pred + correction, cluster_codes)
    corr = cluster_sum(correction, cluster_codes)
    meat = outer_sum(moments) / n
    meat_labeling = outer_sum(corr) / n
    labeling_part = bread @ meat_labeling @ bread.T / n
    rest = bread @ (meat - meat_labeling) @ bread.T / n
    return _SplitFit(params=params, cov=labeling_part + rest, labeling_part=labeling_part, rest=rest)


def _newton_logit(
    y_gold: NDArray[np.float64],
    x_gold: NDArray[np.float64],
    y_pred: NDArray[np.float64],
    x_pred: NDArray[np.float64],
    w: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Root of the mean DSL logit moment by Newton's method with step halving.

    The Jacobian ``sum (1 - w) p(1-p) x x^T + w p(1-p) x x^T`` need not be definite (``1 - w < 0`` on
    labeled rows), so each step is accepted only if it lowers the moment norm.
    """
    n = len(y_gold)

    def moment(b: NDArray[np.float64]) -> NDArray[np.float64]:
        pred_part = x_pred.T @ ((1.0 - w) * (y_pred - expit(x_pred @ b)))
        return (pred_part + x_gold.T @ (w * (y_gold - expit(x_gold @ b)))) / n

    params = np.zeros(x_pred.shape[1])
    g = moment(params)
    for _ in range(100):
        if np.max(np.abs(g)) < 1e-13:
            return params
        p_pred, p_gold = expit(x_pred @ params), expit(x_gold @ params)
        jac = (
            _weighted_cross(x_pred, (1.0 - w) * p_pred * (1.0 - p_pred), x_pred)
            + _weighted_cross(x_gold, w * p_gold * (1.0 - p_gold), x_gold)
        ) / n
        step = np.linalg.solve(jac, g)
        norm = np.linalg.norm(g)
        for _ in range(40):
            candidate = params + step
            g_candidate = moment(candidate)
            if np.linalg.norm(g_candidate) < norm:
                break
            step = step / 2.0
        else:
            break
        params, g = candidate, g_candidate
    if np.max(np.abs(g)) < 1e-9:
        return params
    raise RuntimeError("DSL logit moment: Newton's method did not reach a root (separation?)")


def _weighted_cross(
    a: NDArray[np.float64], weights: NDArray[np.float64], b: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``a^T diag(weights) b``."""
    return a.T @ (weights[:, None] * b)


def _group_mean(values: NDArray[np.float64], codes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each row's group mean of ``values`` (1-D or 2-D), by integer group ``codes``."""
    counts = np.bincount(codes)
    if values.ndim == 1:
        return (np.bincount(codes, weights=values) / counts)[codes]
    sums = np.column_stack(
        [np.bincount(codes, weights=values[:, j], minlength=len(counts)) for j in range(values.shape[1])]
    )
    return (sums / counts[:, None])[codes]


def _one_hot(codes: NDArray[np.float64]) -> sp.csr_matrix:
    n = len(codes)
    return sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, int(codes.max()) + 1))


def _normalise_g_hat(g_hat: GHat, targets: list[str], n_rows: int) -> dict[str, NDArray[np.float64]]:
    """Bring every accepted ``g_hat`` form to ``{name: array (S, N)}``."""
    if isinstance(g_hat, pd.DataFrame):
        mapping: Mapping[str, ArrayLike] = {name: g_hat[name].to_numpy() for name in targets}
    elif isinstance(g_hat, Mapping):
        mapping = g_hat
    elif len(targets) == 1:
        mapping = {targets[0]: g_hat}
    else:
        raise ValueError("with several predicted variables, pass g_hat as a mapping or DataFrame")
    out = {}
    for name in targets:
        if name not in mapping:
            raise ValueError(f"g_hat has no predictions for {name!r}")
        values = np.asarray(mapping[name], dtype=np.float64)
        values = values[None, :] if values.ndim == 1 else values
        if values.ndim != 2 or values.shape[1] != n_rows:
            raise ValueError(f"g_hat for {name!r} must have shape (N,) or (S, N) with N = {n_rows}")
        if np.isnan(values).any():
            raise ValueError(f"g_hat for {name!r} has missing values")
        out[name] = values
    return out
