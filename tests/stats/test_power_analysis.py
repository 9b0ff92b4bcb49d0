"""Predicted precision with more labels, and the labels needed for a target CI half-width."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from stats import dsl, labels_for_halfwidth, power_dsl, predicted_halfwidth


@pytest.fixture
def result(rng: np.random.Generator):
    n = 5000
    x = rng.normal(size=n)
    y = 1 + 0.3 * x + rng.normal(size=n)
    labeled = rng.random(n) < 0.05
    frame = pd.DataFrame({"x": x, "y": np.where(labeled, y, np.nan)})
    g_hat = y + rng.normal(0, 0.7, size=(4, n))
    return dsl("lm", "y ~ x", frame, "y", g_hat=g_hat)


def test_more_labels_shrink_the_labeling_part_only(result) -> None:
    """As n_new grows without bound the predicted variance falls to the non-labeling part."""
    table = power_dsl(result, [result.n_labeled * 2, result.n_labeled * 10**6])
    _, rest = result.variance_components()
    floor = np.median(np.sqrt(np.diagonal(rest, axis1=1, axis2=2)), axis=0)
    np.testing.assert_allclose(table.iloc[2], floor, rtol=1e-3)
    assert (table.iloc[1] < table.iloc[0]).all()


def test_halfwidth_is_z_times_se(result) -> None:
    sizes = [400, 800]
    np.testing.assert_allclose(
        predicted_halfwidth(result, sizes, alpha=0.1), power_dsl(result, sizes) * sps.norm.ppf(0.95)
    )


def test_labels_needed_is_the_smallest_sufficient_count(result) -> None:
    target = 0.8 * predicted_halfwidth(result).iloc[0]["x"]
    needed = labels_for_halfwidth(result, target)
    n = int(needed["x"])
    widths = predicted_halfwidth(result, [n, n - 1])["x"]
    assert widths.iloc[1] <= target < widths.iloc[2]
    assert n > result.n_labeled
    assert np.isnan(labels_for_halfwidth(result, 1e-6, max_labels=10_000)["x"])
