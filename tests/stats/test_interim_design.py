"""Effective inclusion probabilities and coverage reporting while annotation is under way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stats import interim_design, interim_sample_prob


@pytest.fixture
def design_frame() -> pd.DataFrame:
    """Stratum a: 10 rows, 4 sampled, 3 labeled; b: 5 rows, 2 sampled, 0 labeled; c: 5 rows, none sampled."""
    return pd.DataFrame(
        {
            "stratum": ["a"] * 10 + ["b"] * 5 + ["c"] * 5,
            "sample_prob": [0.4] * 10 + [0.4] * 5 + [0.0] * 5,
            "labeled": [True] * 3 + [False] * 17,
        }
    )


def test_effective_probability_is_labels_so_far_over_stratum_size(design_frame: pd.DataFrame) -> None:
    pi = interim_sample_prob(design_frame["stratum"], design_frame["labeled"])
    np.testing.assert_allclose(pi, [0.3] * 10 + [0.0] * 10)


def test_empty_and_unsampled_strata_are_reported(design_frame: pd.DataFrame) -> None:
    design = interim_design(design_frame["stratum"], design_frame["labeled"], design_frame["sample_prob"])
    table = design.strata.set_index("stratum")
    assert table.loc["a", ["N_h", "n_sampled", "n_labeled"]].tolist() == [10, 4, 3]
    assert table.loc["a", "effective_prob"] == pytest.approx(0.3)
    assert table.loc["b", "design_prob"] == pytest.approx(0.4)
    assert design.empty_strata == ["b"]
    assert design.unsampled_strata == ["c"]
    assert design.covered_strata == ["a"]
    np.testing.assert_array_equal(design.covered(design_frame["stratum"]), [True] * 10 + [False] * 10)
    assert "1 of 3 strata have labels" in design.describe()
    assert "(50.0% of rows)" in design.describe()


def test_complete_annotation_recovers_the_design_probability() -> None:
    stratum = np.repeat(["x", "y"], [8, 4])
    labeled = np.r_[[True] * 2 + [False] * 6, [True] * 2 + [False] * 2]
    design = interim_design(stratum, labeled, np.r_[[0.25] * 8, [0.5] * 4])
    np.testing.assert_allclose(design.strata["effective_prob"], design.strata["design_prob"])
    assert design.empty_strata == [] and design.unsampled_strata == []
