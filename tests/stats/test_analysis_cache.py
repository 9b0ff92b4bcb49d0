"""analyse_study with an AnalysisCache gives the numbers of a call without one (issue 10).

The dashboard keeps, per population, what the estimators derive from the population alone
(learner inputs, cells, design matrices, surrogate-only fits) and recomputes after each label
with it. These tests grow the labels of one population step by step, as annotation does (a
stratum's first label changes which strata are covered, "cannot tell" answers appear), and
compare every table with a fresh call.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stats import analyse_study, simulate_study
from stats.cache import AnalysisCache

SPLITS = dict(cross_fit=5, sample_split=3, seed=4, languages=("zho", "deu"))


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return simulate_study(20_000, 700, seed=11)


def with_labels(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The frame with only the labels of ``keep`` (a row mask) left, the population untouched."""
    drop = frame["labeled"].to_numpy() & ~keep
    out = frame.copy()
    out.loc[drop, ["fidelity", "correct"]] = np.nan
    out.loc[drop, "labeled"] = False
    return out


def test_cached_recomputes_match_fresh_ones_as_labels_arrive(full: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    order = rng.permutation(np.flatnonzero(full["labeled"].to_numpy()))
    cache = AnalysisCache()
    steps = [30, 31, 150, 400, len(order)]  # one label more, then many: coverage changes between them
    for labels in steps:
        keep = np.zeros(len(full), dtype=bool)
        keep[order[:labels]] = True
        frame = with_labels(full, keep)
        if labels == 400:  # some "cannot tell" answers: the bounds refit on filled frames
            cannot_tell = order[:labels][::9]
            frame.loc[frame.index[cannot_tell], "correct"] = np.nan
        fresh = analyse_study(frame, **SPLITS)
        cached = analyse_study(frame, cache=cache, **SPLITS)
        pd.testing.assert_frame_equal(cached.estimates, fresh.estimates)
        pd.testing.assert_frame_equal(cached.power, fresh.power)
        assert cached.notes == fresh.notes
    assert len(cache) > 0


def test_a_cache_refuses_another_population(full: pd.DataFrame) -> None:
    cache = AnalysisCache()
    analyse_study(full, cache=cache, **SPLITS)
    with pytest.raises(ValueError, match="rows"):
        analyse_study(full.iloc[:-1].reset_index(drop=True), cache=cache, **SPLITS)
