"""analyse_study's fast path gives the numbers of the estimators' own functions (issue 10).

To recompute after every label, :func:`stats.analyse_study` builds one design matrix per cell
for all estimators, solves g-hat's coefficients for every split at once, fits the surrogate
without statsmodels' formula machinery and takes the "can't tell" bounds from point estimates
alone. These tests recompute every cell the straightforward way, with the public functions each
estimator is defined by (``dsl``, ``labeled_survey``, ``surrogate_ols``, and the full fits on the
frame with "can't tell" read as wrong or right), and compare.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

from stats import (
    INTERACTION_FORMULA,
    SURROGATE,
    ablation_frame,
    analyse_study,
    dsl,
    image_effect_fits,
    interaction_fits,
    interim_sample_prob,
    labeled_survey,
    outcome_design,
    simulate_study,
    study_predictions,
    surrogate_ols,
    tidy_estimates,
)
from stats._formula import with_outcome
from stats.baselines import surrogate_ols_design
from stats.crossfit import cross_fit_predictions, fold_table

SPLITS = dict(cross_fit=5, sample_split=3)
SEED = 21
LANGUAGES = ("zho", "deu")
KEYS = ["estimand", "outcome", "model", "benchmark", "language", "term", "estimator"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate_study(30_000, 900, seed=5)


@pytest.fixture(scope="module")
def g_hat(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """g-hat as analyse_study draws it: one generator from the seed, fidelity first."""
    rng = np.random.default_rng(SEED)
    return {outcome: study_predictions(frame, outcome, seed=rng, **SPLITS) for outcome in ("fidelity", "correct")}


@pytest.fixture(scope="module")
def analysis(frame: pd.DataFrame):
    return analyse_study(frame, seed=SEED, languages=LANGUAGES, **SPLITS)


def _reference_fits(frame: pd.DataFrame, outcome: str, g_hat: np.ndarray) -> dict[tuple, dict[str, object]]:
    """Every cell fitted by the general functions: (estimand, model, benchmark, language) -> results."""
    labeled = frame[outcome].notna().to_numpy()
    rows = frame.assign(
        _pi=interim_sample_prob(frame["stratum"], labeled),
        _size=frame.groupby("stratum")["stratum"].transform("size").to_numpy(dtype=np.float64),
        _position=np.arange(len(frame)),
    )[outcome_design(frame, outcome).covered(frame["stratum"])]
    cells = [("image_effect", f"{outcome} ~ image", ["model", "benchmark"], rows)]
    cells.append(
        (
            "interaction",
            with_outcome(INTERACTION_FORMULA, outcome),
            ["query_language"],
            rows[rows["query_language"].isin(LANGUAGES)],
        )
    )
    out = {}
    for estimand, formula, by, data in cells:
        for key, cell in data.groupby(by):
            if estimand == "interaction":
                cell = ablation_frame(cell)
            position = cell["_position"].to_numpy()
            labels = dict(zip(by, key, strict=True))
            out[(estimand, labels.get("model"), labels.get("benchmark"), labels.get("query_language"))] = {
                "dsl": lambda f=formula, c=cell, p=position: dsl(
                    "lm",
                    f,
                    c,
                    outcome,
                    sample_prob="_pi",
                    g_hat=g_hat[:, p],
                    variance="design",
                    strata="stratum",
                    stratum_size="_size",
                ),
                "labeled": lambda f=formula, c=cell: labeled_survey(f, c, c["_pi"], c["stratum"], c["_size"]),
                "surrogate": lambda f=formula, c=cell: surrogate_ols(f, c, SURROGATE[outcome]),
            }
    return out


@pytest.mark.parametrize("outcome", ["fidelity", "correct"])
def test_every_cell_matches_the_estimators_own_functions(frame, g_hat, analysis, outcome: str) -> None:
    reference = _reference_fits(frame, outcome, g_hat[outcome])
    compared = 0
    for fit in analysis.fits:
        if fit.outcome != outcome:
            continue
        expected = reference[(fit.estimand, fit.model, fit.benchmark, fit.language)]
        for estimator, result in fit.results.items():
            if result is None:
                continue
            slow = expected[estimator]()
            np.testing.assert_allclose(result.params, slow.params, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(result.bse, slow.bse, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(result.conf_int(0.05), slow.conf_int(0.05), rtol=1e-9, atol=1e-12)
            if estimator == "surrogate":
                assert result.df_resid == slow.df_resid
            else:
                np.testing.assert_allclose(result.df, slow.df, rtol=1e-9)
            compared += 1
    # 12 image-effect cells and 2 interaction regressions, three estimators each, all identified here
    assert compared == 14 * 3


def test_cannot_tell_bounds_match_the_full_fits_of_both_readings(frame, g_hat, analysis) -> None:
    cannot_tell = frame["labeled"].to_numpy() & frame["correct"].isna().to_numpy()
    assert cannot_tell.sum() > 10
    formula = with_outcome(INTERACTION_FORMULA, "correct")
    readings = []
    for value in (0.0, 1.0):
        filled = frame.assign(correct=frame["correct"].mask(cannot_tell, value))
        common = dict(estimators=("dsl", "labeled"), g_hat=g_hat["correct"])
        fits = image_effect_fits(filled, "correct", **common) + interaction_fits(
            filled, formula, languages=LANGUAGES, **common
        )
        readings.append(tidy_estimates(fits).set_index(KEYS)["estimate"])
    bounds = analysis.estimates.query("outcome == 'correct' and estimator != 'surrogate'").set_index(KEYS)
    wrong, right = (reading.reindex(bounds.index).to_numpy() for reading in readings)
    np.testing.assert_allclose(bounds["bound_low"], np.fmin(wrong, right), rtol=1e-12)
    np.testing.assert_allclose(bounds["bound_high"], np.fmax(wrong, right), rtol=1e-12)
    assert (bounds["bound_low"] < bounds["bound_high"]).mean() > 0.9  # the readings do differ


def test_a_fold_table_drawn_up_front_gives_the_same_predictions(frame) -> None:
    inputs = frame.assign(log_chars=np.log1p(frame["completion_chars"]))
    args = ("fidelity", "pred_fidelity", ["pred_probability", "log_chars", "image"])
    drawn = cross_fit_predictions(inputs, *args, seed=np.random.default_rng(4), **SPLITS)
    table = fold_table(len(frame), SPLITS["cross_fit"], SPLITS["sample_split"], np.random.default_rng(4))
    assert table.shape == (3, len(frame)) and set(np.unique(table)) == set(range(5))
    np.testing.assert_array_equal(cross_fit_predictions(inputs, *args, folds=table, **SPLITS), drawn)
    with pytest.raises(ValueError, match="folds must have shape"):
        cross_fit_predictions(inputs, *args, folds=table[:2], **SPLITS)


def test_surrogate_constant_in_an_arm_has_a_zero_not_a_missing_standard_error() -> None:
    data = pd.DataFrame({"s": [1.0] * 9 + [1, 1, 0, 1, 1, 1, 1, 1, 1.0], "image": [0] * 9 + [1] * 9})
    fast = surrogate_ols_design(patsy.dmatrix("image", data, return_type="dataframe"), data["s"].to_numpy())
    slow = surrogate_ols("s ~ image", data, "s")
    assert not fast.bse.isna().any()
    np.testing.assert_allclose(fast.bse, slow.bse, atol=1e-12)
    np.testing.assert_allclose(fast.params, slow.params, atol=1e-12)
