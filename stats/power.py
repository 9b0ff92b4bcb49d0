"""Power analysis for DSL: predicted standard errors and CI half-widths with more labels.

The DSL sandwich meat splits into a labeling term that scales with ``1/pi`` and a term that does
not (Egami et al. 2023, Section 3; R's ``dsl::power_dsl``). Scaling every inclusion probability by
``n_new / n`` (more labels, same allocation across strata) gives, for each cross-fitting split,

    V_s(n_new) = L_s * n / n_new + O_s

with ``L_s`` and ``O_s`` from :meth:`stats.DSLResults.variance_components`. The prediction holds the
learner's quality fixed (more labels usually improve g-hat, so it is mildly conservative).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats as sps

from stats.dsl_results import DSLResults

__all__ = ["labels_for_halfwidth", "power_dsl", "predicted_halfwidth"]


def _split_se(result: DSLResults, sizes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-split predicted SEs, shape (S, len(sizes), k); NaN where the variance is negative."""
    labeling, rest = result.variance_components()
    ratio = sizes / result.n_labeled
    variances = labeling[:, None, :, :] / ratio[None, :, None, None] + rest[:, None, :, :]
    diag = np.diagonal(variances, axis1=2, axis2=3)
    return np.sqrt(np.where(diag >= 0, diag, np.nan))


def power_dsl(result: DSLResults, labeled_size: Sequence[int] | None = None) -> pd.DataFrame:
    """Predicted standard errors for other numbers of labels, exactly as R's ``power_dsl``.

    The predicted SE is the median over splits of ``sqrt(diag V_s(n_new))``. As in R, the first row
    is the current combined SE (which includes the between-split spread) and later rows do not;
    a negative predicted variance is replaced by extrapolating the last valid SE as
    ``1 / sqrt(n)``.

    Parameters
    ----------
    result : DSLResults
    labeled_size : sequence of int, optional
        Label counts to predict for; default 1.1, 1.2, ..., 2.0 times the current count.

    Returns
    -------
    DataFrame
        Index ``labeled_size`` (current count first), columns the terms.
    """
    current = result.n_labeled
    if labeled_size is None:
        labeled_size = [round(r * current) for r in np.arange(1.1, 2.05, 0.1)]
    sizes = np.asarray(labeled_size, dtype=np.float64)
    predicted = np.vstack([result.bse.to_numpy(), np.nanmedian(_split_se(result, sizes), axis=0)])
    all_ratio = np.concatenate([[1.0], sizes / current])
    for j in range(predicted.shape[1]):
        last_valid = 0
        for i in range(1, predicted.shape[0]):
            if np.isnan(predicted[i, j]):
                predicted[i, j] = predicted[last_valid, j] / np.sqrt(all_ratio[i] / all_ratio[last_valid])
            else:
                last_valid = i
    index = pd.Index(np.concatenate([[current], sizes]).astype(np.int64), name="labeled_size")
    return pd.DataFrame(predicted, index=index, columns=result.terms)


def predicted_halfwidth(
    result: DSLResults, labeled_size: Sequence[int] | None = None, alpha: float = 0.05
) -> pd.DataFrame:
    """Predicted half-width ``z_{1-alpha/2} * SE`` of the normal confidence interval (see :func:`power_dsl`)."""
    return power_dsl(result, labeled_size) * sps.norm.ppf(1.0 - alpha / 2.0)


def labels_for_halfwidth(
    result: DSLResults, halfwidth: float, alpha: float = 0.05, max_labels: int | None = None
) -> pd.Series:
    """Smallest number of labels whose predicted CI half-width is at most ``halfwidth``, per term.

    Uses the per-split prediction ``median_s sqrt(diag V_s(n))`` (negative variances count as 0),
    which decreases in ``n``, and bisects over whole numbers of labels.

    Parameters
    ----------
    result : DSLResults
    halfwidth : float
        Target half-width of the ``1 - alpha`` interval.
    alpha : float
    max_labels : int, optional
        Search ceiling; default the number of rows (everything labeled).

    Returns
    -------
    Series
        Labels needed per term; NaN where even ``max_labels`` labels would not reach the target.
    """
    ceiling = result.nobs if max_labels is None else max_labels
    z = sps.norm.ppf(1.0 - alpha / 2.0)

    def width(n: int) -> NDArray[np.float64]:
        return z * np.median(np.nan_to_num(_split_se(result, np.array([float(n)]))[:, 0, :], nan=0.0), axis=0)

    needed = {}
    for j, term in enumerate(result.terms):
        if width(ceiling)[j] > halfwidth:
            needed[term] = np.nan
            continue
        low, high = 0, ceiling  # width(high) <= target; width(low) > target or low == 0
        while high - low > 1:
            middle = (low + high) // 2
            if width(middle)[j] <= halfwidth:
                high = middle
            else:
                low = middle
        needed[term] = float(high)
    return pd.Series(needed, name="labels_needed")
