"""Intervals of a bounded estimand stay inside its range: an image effect lies in [-1, 1]."""

from __future__ import annotations

import numpy as np

from stats import image_effect_fits, simulate_study, tidy_estimates
from stats.tables import ESTIMAND_RANGE


def test_image_effect_intervals_are_clipped_to_the_range_and_nothing_else_moves() -> None:
    # Few labels per cell: some raw intervals reach past +-1.
    frame = simulate_study(3_000, 150, seed=5)
    fits = image_effect_fits(frame, "fidelity", cross_fit=3, sample_split=1, seed=1)
    table = tidy_estimates(fits)
    raw = np.array(
        [
            result.conf_int().loc["image"].to_numpy()
            for fit in fits
            for estimator, result in fit.results.items()
            if result is not None and "image" in result.params.index
        ]
    )
    low, high = ESTIMAND_RANGE["image_effect"]
    assert ((raw[:, 0] < low) | (raw[:, 1] > high)).any()  # the case exists
    shown = table.dropna(subset=["ci_low"])
    assert len(shown) == len(raw)
    assert (shown["ci_low"] >= low).all() and (shown["ci_high"] <= high).all()
    # Clipping only cuts what lies outside: inside the range every end is the raw one.
    assert np.allclose(shown["ci_low"], np.maximum(raw[:, 0], low))
    assert np.allclose(shown["ci_high"], np.minimum(raw[:, 1], high))
    assert (shown["ci_low"] <= shown["estimate"]).all() and (shown["estimate"] <= shown["ci_high"]).all()
