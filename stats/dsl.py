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
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd
import patsy
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from stats._formula import as_list, formula_names
from stats._linalg import cluster_sum, outer_sum
from stats.crossfit import cross_fit_predictions
from stats.design import StratifiedSample
from stats.dsl_design import solve_design
from stats.dsl_results import DSLResults, ModelName, SplitFit, Variance
from stats.learners import Learner

__all__ = ["VARIANCES", "dsl"]

#: ``sandwich``: R's ``dsl`` exactly (normal intervals); ``design``: finite-population design
#: variance of the correction term with t intervals (see :func:`dsl`).
VARIANCES: tuple[str, ...] = ("sandwich", "design")
GHat: TypeAlias = ArrayLike | Mapping[str, ArrayLike] | pd.DataFrame

_KEEP_NA = patsy.NAAction(NA_types=[])
# Formulas see patsy's builtins (C, Treatment, I, Q, ...) and numpy as `np`, whoever calls.
_EVAL_ENV = patsy.EvalEnvironment([{"np": np}])


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
            fits.append(solve_design(design.y, design.x, y_pred, labeled, sample))
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


def _column(data: pd.DataFrame, values: str | ArrayLike) -> NDArray[np.float64]:
    """A column of ``data`` by name, or given values aligned with its rows."""
    column = data[values].to_numpy() if isinstance(values, str) else np.asarray(values)
    if len(column) != len(data):
        raise ValueError("strata and stratum_size must have one value per row of data")
    return column


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
) -> SplitFit:
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
) -> SplitFit:
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
) -> SplitFit:
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
    return SplitFit(params=params, cov=labeling_part + rest, labeling_part=labeling_part, rest=rest)


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
