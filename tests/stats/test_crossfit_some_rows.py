"""A fold's learner predicting some distinct rows (ColumnInputs.some_rows) gives exactly what
predicting every row and taking those gives (issue 10: the cross-fit at millions of rows)."""

from __future__ import annotations

import numpy as np
import pytest

from stats import simulate_study
from stats.crossfit import distinct_inputs
from stats.learners import BinnedInteractionLearner, ColumnInputs

INPUTS = ["pred_fidelity", "pred_probability", "log_chars", "image", "query_language", "model", "benchmark"]


@pytest.fixture(scope="module")
def inputs():
    frame = simulate_study(6_000, 600, seed=3)
    # Rounded, so that many values sit exactly on the learner's quantile edges.
    frame = frame.assign(
        log_chars=np.log1p(frame["completion_chars"]).round(1), pred_probability=frame["pred_probability"].round(2)
    )
    return frame, distinct_inputs(frame, INPUTS)


def test_some_rows_predict_exactly_as_all_rows(inputs) -> None:
    frame, distinct = inputs
    columns = distinct.columns
    assert columns is not None and distinct.x is None  # the dense matrix is not built
    labeled = frame["fidelity"].notna().to_numpy()
    learner = BinnedInteractionLearner().fit(columns.matrix(distinct.inverse[labeled]), frame["fidelity"][labeled])
    everything = learner.predict_columns(columns)
    rows = np.flatnonzero(np.random.default_rng(1).random(len(columns)) < 0.3)
    some = columns.some_rows(rows)
    np.testing.assert_array_equal(learner.predict_columns(some), everything[rows])
    for j, edges in enumerate(learner.edges_):
        if edges is not None:
            np.testing.assert_array_equal(some.bins(j, edges), columns.bins(j, edges)[rows])
            on_edges = np.isin(some.column(j), edges)
            assert on_edges.any()  # ties at the edges are counted as searchsorted(side="right") does


def test_bins_of_values_on_and_beyond_the_edges() -> None:
    values = np.array([[0.0], [0.5], [0.50000001], [1.0], [2.0], [-np.inf], [np.inf]])
    columns = ColumnInputs(values, [0], [], [], [], 1)
    some = columns.some_rows(np.arange(len(values)))
    edges = np.array([0.5, 1.0, 1.5])
    np.testing.assert_array_equal(some.bins(0, edges), np.searchsorted(edges, values[:, 0], side="right"))
    np.testing.assert_array_equal(some.bins(0, edges[:0]), np.zeros(len(values), dtype=np.intp))
