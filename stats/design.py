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

__all__ = ["InterimDesign", "interim_design", "interim_sample_prob"]


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


def _values(labels: ArrayLike) -> pd.api.extensions.ExtensionArray:
    """Labels as a pandas array without an index (and without converting strings to objects)."""
    return pd.Series(labels).array


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
        return pd.Series(_values(stratum)).isin(self.covered_strata).to_numpy()

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
    table = pd.DataFrame(
        {
            "stratum": _values(stratum),
            "labeled": np.asarray(labeled, dtype=bool),
            "sample_prob": np.asarray(sample_prob, dtype=np.float64),
        }
    )
    strata = table.groupby("stratum", sort=True).agg(
        N_h=("labeled", "size"), n_labeled=("labeled", "sum"), design_prob=("sample_prob", "mean")
    )
    strata["n_sampled"] = np.rint(strata["design_prob"] * strata["N_h"]).astype(np.int64)
    strata["effective_prob"] = strata["n_labeled"] / strata["N_h"]
    strata = strata.reset_index()[["stratum", "N_h", "n_sampled", "n_labeled", "design_prob", "effective_prob"]]
    empty = strata.loc[(strata["n_sampled"] > 0) & (strata["n_labeled"] == 0), "stratum"].tolist()
    unsampled = strata.loc[(strata["n_sampled"] == 0) & (strata["n_labeled"] == 0), "stratum"].tolist()
    return InterimDesign(strata=strata, empty_strata=empty, unsampled_strata=unsampled)
