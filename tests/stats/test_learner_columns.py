"""The learner inputs kept by column (issue 10): the same matrix, and the default learner's
predictions from them equal its predictions from the dense matrix up to the order of a sum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stats import default_learner, learner_inputs, simulate_study
from stats.crossfit import learner_columns

COLUMNS = ["pred_fidelity", "pred_probability", "log_chars", "image", "query_language", "model", "benchmark"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    frame = simulate_study(6_000, 500, seed=3)
    return frame.assign(log_chars=np.log1p(frame["completion_chars"]))


def test_the_columns_give_the_learner_input_matrix(frame: pd.DataFrame) -> None:
    dense = learner_inputs(frame, COLUMNS)
    by_column = learner_columns(frame, COLUMNS)
    assert by_column.width == dense.shape[1] and len(by_column) == len(frame)
    rows = np.random.default_rng(0).permutation(len(frame))[:700]
    np.testing.assert_array_equal(by_column.matrix(rows), dense[rows])
    weights = np.random.default_rng(1).normal(size=(dense.shape[1], 2))
    np.testing.assert_allclose(by_column.dot(weights), dense @ weights, rtol=0, atol=1e-12)


def test_predictions_from_the_columns_match_the_dense_ones(frame: pd.DataFrame) -> None:
    dense = learner_inputs(frame, COLUMNS)
    labeled = frame["fidelity"].notna().to_numpy()
    fitted = default_learner().fit(dense[labeled], frame.loc[labeled, "fidelity"].to_numpy())
    from_columns = fitted.predict_columns(learner_columns(frame, COLUMNS))
    np.testing.assert_allclose(from_columns, fitted.predict(dense), rtol=0, atol=1e-12)
    assert np.ptp(from_columns) > 0.1  # a learner that learned something, not a constant
