"""Cross-fitting on the distinct input rows gives the same g-hat as fitting and predicting every
row of every held-out fold (the implementation before it), for the same seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge

from stats import cross_fit_predictions, default_learner, fold_assignments, learner_inputs, simulate_study
from stats.crossfit import distinct_rows


def row_by_row(
    data: pd.DataFrame,
    target: str,
    inputs: list[str],
    cross_fit: int,
    sample_split: int,
    seed: int,
    learner,
    cluster: str | None = None,
) -> np.ndarray:
    """The straightforward cross-fit: per split and fold, fit on the labeled training rows and
    predict every held-out row (the reference the faster path must match)."""
    x = learner_inputs(data, inputs)
    y = data[target].to_numpy(dtype=float)
    labeled = np.flatnonzero(~np.isnan(y))
    rng = np.random.default_rng(seed)
    unit = np.arange(len(data)) if cluster is None else pd.factorize(data[cluster], sort=True)[0]
    out = np.empty((sample_split, len(data)))
    for split in range(sample_split):
        fold = fold_assignments(int(unit.max()) + 1, cross_fit, rng)[unit]
        for k in range(cross_fit):
            held_out = np.flatnonzero(fold == k)
            train = labeled[fold[labeled] != k]
            fitted = clone(learner).fit(x[train], y[train])
            out[split, held_out] = (
                fitted.predict_proba(x[held_out])[:, 1]
                if hasattr(fitted, "predict_proba")
                else fitted.predict(x[held_out])
            )
    return out


@pytest.fixture(params=["repeated", "distinct"])
def study(request: pytest.FixtureRequest) -> pd.DataFrame:
    """A small simulated study whose inputs repeat, as the real ones do (coarse confidence and
    length), or are nearly all distinct: the two ways the fast path predicts."""
    if request.param == "distinct":
        frame = simulate_study(4_000, 400, seed=7)
        return frame.assign(log_chars=np.log1p(frame["completion_chars"]))
    return repeated(simulate_study(12_000, 600, seed=7))


def repeated(frame: pd.DataFrame) -> pd.DataFrame:
    """Coarse length and confidence: each fold holds most distinct input rows."""
    return frame.assign(
        log_chars=np.log1p(frame["completion_chars"]).round(0), pred_probability=frame["pred_probability"].round(0)
    )


INPUTS = ["pred_fidelity", "pred_probability", "log_chars", "image", "query_language", "model", "benchmark"]


def test_distinct_rows_rebuild_the_inputs(study: pd.DataFrame):
    first, inverse = distinct_rows(study, INPUTS)
    rebuilt = study[INPUTS].iloc[first].iloc[inverse].reset_index(drop=True)
    pd.testing.assert_frame_equal(rebuilt, study[INPUTS].reset_index(drop=True))
    assert len(study[INPUTS].drop_duplicates()) == len(first)


@pytest.mark.parametrize("learner", [default_learner(), Ridge(alpha=1.0)], ids=["default", "ridge"])
def test_same_predictions_as_fitting_every_row(study: pd.DataFrame, learner):
    fast = cross_fit_predictions(
        study, "fidelity", INPUTS[0], INPUTS[1:], cross_fit=5, sample_split=3, seed=11, learner=learner
    )
    reference = row_by_row(study, "fidelity", INPUTS, 5, 3, 11, learner)
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-12)


def test_same_predictions_with_clusters_and_two_targets(study: pd.DataFrame):
    data = study.assign(cluster=study.index // 3)
    fast = cross_fit_predictions(
        data, ["fidelity", "correct"], INPUTS[0], INPUTS[1:], cross_fit=4, sample_split=2, seed=5, cluster="cluster"
    )
    both = data.dropna(subset=["fidelity"]).index.intersection(data.dropna(subset=["correct"]).index)
    # Rows count as labeled where both targets are; the reference gets the same labeled set.
    masked = data.assign(**{t: data[t].where(data.index.isin(both)) for t in ("fidelity", "correct")})
    for target in ("fidelity", "correct"):
        reference = row_by_row(masked, target, INPUTS, 4, 2, 5, default_learner(), cluster="cluster")
        np.testing.assert_allclose(fast[target], reference, rtol=0, atol=1e-12)


def test_the_repeated_study_has_few_distinct_rows():
    """So that a fold needs most of them and the learner predicts all at once (the other path)."""
    frame = repeated(simulate_study(12_000, 600, seed=7))
    assert len(distinct_rows(frame, INPUTS)[0]) < len(frame) / 5  # a fold (a fifth) holds most
