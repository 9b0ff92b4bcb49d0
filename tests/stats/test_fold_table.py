"""fold_table draws in place (issue 10: a cold `ifl estimate` draws 2 x 10 tables of 775k folds)."""

from __future__ import annotations

import numpy as np
import pytest

from stats.crossfit import fold_assignments, fold_table


@pytest.mark.parametrize(("n_units", "cross_fit"), [(1, 2), (7, 5), (1000, 5), (10_001, 3), (333, 127)])
def test_fold_table_is_the_row_by_row_draw(n_units: int, cross_fit: int) -> None:
    table = fold_table(n_units, cross_fit, 4, np.random.default_rng(11))
    rng = np.random.default_rng(11)
    expected = np.stack([fold_assignments(n_units, cross_fit, rng) for _ in range(4)])
    assert table.dtype == np.int8
    np.testing.assert_array_equal(table, expected)
    # and the generator is left where the row-by-row draw leaves it
    follow = np.random.default_rng(11)
    fold_table(n_units, cross_fit, 4, follow)
    assert follow.integers(1 << 30) == rng.integers(1 << 30)


def test_fold_table_refuses_too_few_folds() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fold_table(10, 1, 2, np.random.default_rng(0))
