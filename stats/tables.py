"""The fits of the estimands as tables: one tidy row per cell, term and estimator, and DSL's power.

:func:`tidy_estimates` is what the app shows and exports (:data:`TIDY_COLUMNS`; a cell whose
labels do not identify it is ``not_estimable`` with a ``needs`` sentence, never a number);
:func:`power_table` predicts each DSL interval's width with more labels (:func:`stats.power_dsl`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from stats.cells import LABEL_ESTIMATORS, EstimandFit
from stats.dsl_results import DSLResults
from stats.power import labels_for_halfwidth, power_dsl

__all__ = ["ESTIMAND_RANGE", "STATUS_NOT_ESTIMABLE", "STATUS_OK", "TIDY_COLUMNS", "power_table", "tidy_estimates"]

TIDY_COLUMNS: tuple[str, ...] = (
    "estimand",
    "outcome",
    "model",
    "benchmark",
    "language",
    "term",
    "estimator",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "n_labeled",
    "df",
    "status",
    "needs",
    "bound_low",
    "bound_high",
)
STATUS_OK, STATUS_NOT_ESTIMABLE = "ok", "not_estimable"


#: The range of each estimand's terms where it is bounded: an image effect is a difference of
#: two proportions (of binary outcomes), so it lies in [-1, 1]. Its intervals are clipped to it.
ESTIMAND_RANGE: dict[str, tuple[float, float]] = {"image_effect": (-1.0, 1.0)}


def tidy_estimates(fits: Sequence[EstimandFit], alpha: float = 0.05) -> pd.DataFrame:
    """One row per estimand cell x term x estimator (:data:`TIDY_COLUMNS`).

    The interval is each estimator's ``conf_int`` (t with ``df`` for the design variance, normal
    for R's sandwich, statsmodels' t for the HC1 baselines), clipped to the estimand's range
    (:data:`ESTIMAND_RANGE`: the true value always lies in it, so clipping keeps the coverage and
    only removes values no cell can take); an estimator that could not run gives NaNs.
    ``status`` is ``not_estimable`` (and ``needs`` says what is missing) where the labels do not
    identify a label-based estimator's cell; ``bound_low``/``bound_high`` stay NaN
    here (:func:`analyse_study` fills them for accuracy).
    """
    records = []
    for fit in fits:
        for estimator, result in fit.results.items():
            terms = fit.terms or (None,)
            blocked = bool(fit.needs) and estimator in LABEL_ESTIMATORS
            if result is not None:
                ci, df = result.conf_int(alpha), _degrees_of_freedom(result)
            for term in terms:
                ok = result is not None and term in result.params.index
                records.append(
                    {
                        **fit.keys(term),
                        "estimator": estimator,
                        "estimate": result.params[term] if ok else np.nan,
                        "se": result.bse[term] if ok else np.nan,
                        "ci_low": ci.loc[term, 0] if ok else np.nan,
                        "ci_high": ci.loc[term, 1] if ok else np.nan,
                        "n": fit.n,
                        "n_labeled": 0 if estimator == "surrogate" else fit.n_labeled,
                        "df": df[term] if ok else np.nan,
                        "status": STATUS_NOT_ESTIMABLE if blocked or not ok else STATUS_OK,
                        "needs": "" if ok else (fit.needs or f"not estimable: {fit.note or 'no result'}"),
                        "bound_low": np.nan,
                        "bound_high": np.nan,
                    }
                )
    table = pd.DataFrame.from_records(records, columns=list(TIDY_COLUMNS))
    for estimand, (low, high) in ESTIMAND_RANGE.items():
        bounded = table["estimand"] == estimand
        table.loc[bounded, "ci_low"] = table.loc[bounded, "ci_low"].clip(lower=low)
        table.loc[bounded, "ci_high"] = table.loc[bounded, "ci_high"].clip(upper=high)
    return table


def _degrees_of_freedom(result: Any) -> pd.Series:
    """Per term: the t interval's df (design variance, statsmodels' residual df), inf if normal."""
    df = getattr(result, "df", None)  # DSLResults (None under R's sandwich) and SurveyResults
    if isinstance(df, pd.Series):
        return df
    return pd.Series(float(getattr(result, "df_resid", np.inf)), index=result.params.index)


def power_table(
    fits: Sequence[EstimandFit],
    *,
    label_factor: float = 2.0,
    target_halfwidth: float | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Predicted precision of every DSL estimate with more labels (:func:`stats.power_dsl`).

    Columns: the estimand keys, ``n_labeled``, ``se`` and ``halfwidth`` now,
    ``se_more``/``halfwidth_more`` with ``label_factor`` times the labels (same allocation), and
    ``labels_needed`` for ``target_halfwidth`` (labels in the cell; NaN if unreachable).
    """
    z = sps.norm.ppf(1.0 - alpha / 2.0)
    records = []
    for fit in fits:
        result = fit.results.get("dsl")
        if not isinstance(result, DSLResults):
            continue
        more = round(label_factor * result.n_labeled)
        predicted = power_dsl(result, [more])
        needed = (
            labels_for_halfwidth(result, target_halfwidth, alpha)
            if target_halfwidth is not None
            else pd.Series(np.nan, index=result.terms)
        )
        for term in fit.terms:
            records.append(
                {
                    **fit.keys(term),
                    "n_labeled": result.n_labeled,
                    "se": result.bse[term],
                    "halfwidth": z * result.bse[term],
                    "labels_more": more,
                    "se_more": predicted.iloc[1][term],
                    "halfwidth_more": z * predicted.iloc[1][term],
                    "labels_needed": needed[term],
                }
            )
    return pd.DataFrame.from_records(records)
