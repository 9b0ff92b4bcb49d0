"""Allocation maths: proportional quotas, collapsing, confidence bands, the Neyman-style allocation
and the widths it predicts (checked against a seeded simulation of the estimator)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stats.allocation import (
    ERROR_FLOOR,
    Z_95,
    collapse_cells,
    confidence_band,
    expected_widths,
    neyman_allocation,
    proportional_quota,
    residual_variance,
)


def test_proportional_quota_sums_to_total_within_bounds(rng: np.random.Generator):
    for _ in range(200):
        k = int(rng.integers(1, 12))
        weight = rng.uniform(0.01, 10, k)
        cap = rng.integers(1, 50, k).astype(float)
        lower = np.minimum(rng.integers(0, 3, k), cap)
        total = float(rng.uniform(lower.sum(), cap.sum()))
        quota = proportional_quota(weight, cap, total, lower)
        assert quota.sum() == pytest.approx(total)
        assert np.all(quota >= lower - 1e-9) and np.all(quota <= cap + 1e-9)
        free = (quota > lower + 1e-9) & (quota < cap - 1e-9)
        if free.sum() > 1:  # strata at neither bound get the same multiple of their weight
            assert np.ptp(quota[free] / weight[free]) == pytest.approx(0, abs=1e-9)


def test_collapse_reaches_the_minimum_in_every_group():
    assert collapse_cells([1, 1, 1, 1, 1], 2).tolist() == [0, 0, 1, 1, 1]  # the short tail joins
    assert collapse_cells([3, 0.5, 0.5, 2.5], 2).tolist() == [0, 1, 1, 1]
    assert collapse_cells([0.3, 0.2], 2).tolist() == [0, 0]  # too small to split: one stratum
    assert collapse_cells([2, 2, 2], 2).tolist() == [0, 1, 2]
    share = np.random.default_rng(4).uniform(0, 3, 40)
    groups = collapse_cells(share, 2)
    assert np.all(np.diff(groups) >= 0)  # consecutive
    assert np.all(np.bincount(groups, weights=share) >= 2)


def test_confidence_bands_and_their_variance():
    bands = confidence_band(pd.Series([0.1, 0.5, 0.79, 0.8, 0.99, np.nan]))
    assert bands.tolist() == ["p<0.5", "0.5<=p<0.8", "0.5<=p<0.8", "0.8<=p<0.95", "p>=0.95", "no prediction"]
    assert residual_variance([0.0, 0.2, 0.9]) == pytest.approx([ERROR_FLOOR * (1 - ERROR_FLOOR), 0.16, 0.25])


def two_arm_cells(variance_low: float, variance_high: float) -> pd.DataFrame:
    """One contrast; each arm has a large confident cell and a small uncertain one."""
    return pd.DataFrame(
        {
            "population": [900, 100, 900, 100],
            "variance": [variance_low, variance_high, variance_low, variance_high],
            "arm": ["a0", "a0", "a1", "a1"],
            "contrast": ["c", "c", "c", "c"],
        }
    )


def test_neyman_within_one_contrast_is_proportional_to_size_times_sd():
    cells = two_arm_cells(0.01, 0.16)
    allocation = neyman_allocation(cells, 100)
    assert allocation.sum() == pytest.approx(100)
    # N_k S_k: 900 * 0.1 = 90 and 100 * 0.4 = 40 in each arm.
    assert allocation[0] / allocation[1] == pytest.approx(90 / 40)


def test_neyman_beats_every_other_allocation_of_the_same_size(rng: np.random.Generator):
    cells = pd.concat(
        [
            two_arm_cells(0.01, 0.2).assign(contrast="c1"),
            two_arm_cells(0.05, 0.05).assign(contrast="c2", arm=lambda f: f["arm"] + "x"),
        ],
        ignore_index=True,
    )
    total = 120.0
    best = expected_widths(cells, neyman_allocation(cells, total) / cells["population"]).mean()
    for _ in range(300):
        other = rng.dirichlet(np.ones(len(cells))) * total
        if np.all(other <= cells["population"]):
            assert expected_widths(cells, other / cells["population"]).mean() >= best - 1e-12


def test_cells_outside_the_target_contrasts_get_nothing_and_no_width():
    cells = pd.concat([two_arm_cells(0.02, 0.1), two_arm_cells(0.02, 0.1).assign(contrast=np.nan)], ignore_index=True)
    allocation = neyman_allocation(cells, 50)
    assert allocation[4:].tolist() == [0, 0, 0, 0] and allocation.sum() == pytest.approx(50)
    assert expected_widths(cells, np.r_[allocation[:4] / cells["population"][:4], [0.1] * 4]).index.tolist() == ["c"]


def test_predicted_width_matches_the_estimators_spread_in_simulation():
    """Draw stratified SRSs from a fixed population with residuals whose variances are the
    cells' S^2, estimate the contrast of the two arms' residual means, and compare the empirical
    SD with the predicted SE (2000 seeded replications: within 7%)."""
    rng = np.random.default_rng(20261130)
    cells = two_arm_cells(0.01, 0.16)
    residuals = []
    for row in cells.itertuples():  # fixed finite population with exactly the cell's variance
        values = rng.normal(size=row.population)
        values = (values - values.mean()) / values.std(ddof=1) * np.sqrt(row.variance)
        residuals.append(values)
    drawn = np.array([30, 20, 30, 20])
    estimates = []
    for _ in range(2000):
        means = {"a0": 0.0, "a1": 0.0}
        for row, values, n in zip(cells.itertuples(), residuals, drawn, strict=True):
            sample = rng.choice(values, size=n, replace=False)
            means[row.arm] += row.population / 1000 * sample.mean()
        estimates.append(means["a0"] - means["a1"])
    predicted_se = expected_widths(cells, drawn / cells["population"]).iat[0] / (2 * Z_95)
    assert np.std(estimates) == pytest.approx(predicted_se, rel=0.07)
