"""The design-based variance: textbook identities, DSL's design mode, identification and bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stats import (
    STATUS_NOT_ESTIMABLE,
    StratifiedSample,
    analyse_study,
    dsl,
    identification_shortfall,
    image_effect_table,
    labeled_survey,
    simulate_study,
    stratified_linearisation,
    study_predictions,
    survey_regression,
)


def test_stratified_mean_variance_is_the_textbook_formula_with_fpc(rng: np.random.Generator) -> None:
    y = rng.random(30)
    stratum = np.r_[np.zeros(10, int), np.ones(20, int)]
    sample = StratifiedSample(stratum, np.array([100.0, 400.0]), np.array([10.0, 20.0]))
    fit = survey_regression(np.ones((30, 1)), y, sample)
    mean = (100 * y[:10].mean() + 400 * y[10:].mean()) / 500
    variance = (100**2 * 0.9 * y[:10].var(ddof=1) / 10 + 400**2 * 0.95 * y[10:].var(ddof=1) / 20) / 500**2
    assert fit.params[0] == pytest.approx(mean, rel=1e-12)
    assert fit.cov[0, 0] == pytest.approx(variance, rel=1e-12)


def test_domain_total_counts_the_labels_outside_the_domain_as_zeros(rng: np.random.Generator) -> None:
    # One stratum of N = 200 with n = 8 labels, 3 of them in the domain: the HT domain total's
    # variance is N^2 (1 - f) s^2 / n over all 8 values, the 5 outside being zeros.
    z_domain = rng.normal(size=3)
    sample = StratifiedSample(np.zeros(3, int), np.array([200.0]), np.array([8.0]))
    weighted = (200 / 8) * z_domain
    cov, _ = stratified_linearisation(weighted[:, None], sample)
    all_values = np.r_[z_domain, np.zeros(5)]
    assert cov[0, 0] == pytest.approx(200**2 * (1 - 8 / 200) * all_values.var(ddof=1) / 8, rel=1e-12)


def test_census_has_no_sampling_variance_and_dsl_design_equals_ols(rng: np.random.Generator) -> None:
    n = 400
    data = pd.DataFrame({"image": rng.integers(0, 2, n), "stratum": rng.integers(0, 4, n)})
    data["y"] = (rng.random(n) < 0.7 - 0.2 * data["image"]).astype(float)
    g_hat = np.clip(data["y"] + rng.normal(0, 0.3, n), 0, 1)
    sizes = data["stratum"].map(data["stratum"].value_counts())
    fit = dsl(
        "lm",
        "y ~ image",
        data,
        "y",
        sample_prob=np.ones(n),
        g_hat=g_hat,
        variance="design",
        strata="stratum",
        stratum_size=sizes,
    )
    truth = data.loc[data["image"] == 1, "y"].mean() - data.loc[data["image"] == 0, "y"].mean()
    assert fit.params["image"] == pytest.approx(truth, abs=1e-12)
    assert fit.bse["image"] == pytest.approx(0.0, abs=1e-12)  # every row labeled: FPC is zero


def test_design_mode_is_a_hajek_correction_per_arm(rng: np.random.Generator) -> None:
    n = 600
    data = pd.DataFrame({"image": np.repeat([0, 1], n // 2), "stratum": np.tile(np.arange(3), n // 3)})
    truth = (rng.random(n) < 0.8 - 0.3 * data["image"]).astype(float)
    g_hat = np.clip(truth + rng.normal(0, 0.2, n), 0, 1)
    labeled = rng.random(n) < 0.2
    data["y"] = np.where(labeled, truth, np.nan)
    n_h = pd.Series(labeled).groupby(data["stratum"]).transform("sum")
    sizes = data["stratum"].map(data["stratum"].value_counts())
    fit = dsl(
        "lm",
        "y ~ image",
        data,
        "y",
        sample_prob=n_h / sizes,
        g_hat=g_hat,
        variance="design",
        strata="stratum",
        stratum_size=sizes,
    )
    residual, weight = truth - g_hat, sizes / n_h

    def arm(value: int) -> float:
        rows = (data["image"] == value).to_numpy()
        lab = rows & labeled
        return g_hat[rows].mean() + np.sum(weight[lab] * residual[lab]) / np.sum(weight[lab])

    assert fit.params["image"] == pytest.approx(arm(1) - arm(0), abs=1e-12)
    assert fit.df is not None and (fit.df > 1).all()
    low, high = fit.conf_int().loc["image"]
    assert high - low > 2 * 1.96 * fit.bse["image"]  # t, not normal, quantiles


def test_design_mode_needs_the_design() -> None:
    data = pd.DataFrame({"y": [1.0, np.nan, 0.0, 1.0], "image": [0, 1, 1, 0]})
    with pytest.raises(ValueError, match="strata and stratum_size"):
        dsl("lm", "y ~ image", data, "y", sample_prob=np.full(4, 0.75), g_hat=np.full(4, 0.5), variance="design")


def test_labeled_survey_never_gives_a_zero_width_interval() -> None:
    # Every label agrees in both arms: residuals are zero, the Agresti-Coull floor is not.
    data = pd.DataFrame({"y": [1.0] * 6 + [np.nan] * 4, "image": [0, 0, 0, 1, 1, 1, 0, 1, 0, 1]})
    fit = labeled_survey("y ~ image", data, np.full(10, 0.6), np.zeros(10), np.full(10, 10.0))
    low, high = fit.conf_int().loc["image"]
    assert fit.params["image"] == pytest.approx(0.0)
    assert high - low > 0.5


def test_identification_names_the_missing_labels() -> None:
    data = pd.DataFrame(
        {
            "fidelity": [1.0, 0.0, 1.0, 1.0, np.nan, np.nan, np.nan, np.nan],
            "image": [0, 0, 0, 1, 1, 1, 1, 1],
            "stratum": ["a", "a", "a", "b", "b", "b", "b", "b"],
            "_stratum_size": [3.0, 3.0, 3.0, 10.0, 10.0, 10.0, 10.0, 10.0],
        }
    )
    # The image arm has 1 label of the 3 needed; its rows are 5 of stratum b's 10.
    assert identification_shortfall("fidelity ~ image", data, "fidelity", 3) == (
        "not yet estimable: needs about 4 more labels in b"
    )
    assert identification_shortfall("fidelity ~ image", data, "fidelity", 1) == ""


@pytest.fixture(scope="module")
def sparse_frame() -> pd.DataFrame:
    """Few labels: some model x benchmark arms get fewer than three."""
    return simulate_study(20_000, 120, seed=5)


def test_cells_without_enough_labels_are_reported_as_not_estimable(sparse_frame: pd.DataFrame) -> None:
    g_hat = study_predictions(sparse_frame, "fidelity", seed=1, cross_fit=5, sample_split=2)
    table = image_effect_table(sparse_frame, "fidelity", g_hat=g_hat)
    blocked = table.loc[table["status"] == STATUS_NOT_ESTIMABLE]
    assert len(blocked) and set(blocked["estimator"]) <= {"dsl", "labeled"}
    assert blocked[["estimate", "se", "ci_low", "ci_high"]].isna().all().all()
    assert blocked["needs"].str.match(r"not yet estimable: needs about \d+ more labels? in ").all()
    fine = table.loc[table["status"] == "ok"]
    assert fine[["estimate", "ci_low", "ci_high"]].notna().all().all() and (fine["needs"] == "").all()


def test_cannot_tell_bounds_bracket_the_two_readings() -> None:
    frame = simulate_study(20_000, 1_500, seed=9)
    labeled_correct = np.flatnonzero(frame["correct"].notna().to_numpy())
    cannot_tell = np.random.default_rng(0).choice(labeled_correct, 150, replace=False)
    frame.loc[cannot_tell, "correct"] = np.nan
    estimates = analyse_study(
        frame, outcomes=("correct",), cross_fit=3, sample_split=1, seed=2, target_halfwidth=None
    ).estimates
    rows = estimates.loc[estimates["estimator"].isin(["dsl", "labeled"]) & (estimates["status"] == "ok")]
    assert (rows["bound_low"] < rows["bound_high"]).all()
    means = rows.loc[rows["term"] == "image"]
    assert ((means["bound_high"] - means["bound_low"]) < 0.2).all()  # 10% cannot tell moves little
    assert estimates.loc[estimates["estimator"] == "surrogate", ["bound_low", "bound_high"]].isna().all().all()
