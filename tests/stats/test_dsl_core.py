"""stats.dsl: exact identities, the g_hat forms, the results object, input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from stats import DSLResults, dsl
from stats._linalg import nearest_psd_keep_diag


@pytest.fixture
def frame(rng: np.random.Generator) -> pd.DataFrame:
    """1500 rows; y depends on x and a group; 400 labeled at random; a noisy surrogate."""
    n = 1500
    x = rng.normal(size=n)
    group = rng.integers(0, 30, size=n)
    y = 1.0 + 0.5 * x + 0.1 * group + rng.normal(size=n)
    labeled = rng.permutation(n) < 400
    return pd.DataFrame(
        {
            "x": x,
            "g": group.astype(str),
            "year": rng.integers(0, 5, size=n),
            "y": np.where(labeled, y, np.nan),
            "y_true": y,
            "pred": y + rng.normal(0.3, 0.8, size=n),
            "yb": np.where(labeled, (y > 1.5).astype(float), np.nan),
            "predb": ((y + rng.normal(size=n)) > 1.5).astype(float),
        }
    )


def test_fully_labeled_lm_is_ols_with_hc0_errors(frame: pd.DataFrame) -> None:
    """With every row labeled and pi = 1 the correction replaces the prediction entirely."""
    full = frame.assign(y=frame["y_true"])
    result = dsl("lm", "y ~ x + g", full, "y", g_hat=full["pred"].to_numpy())
    ols = smf.ols("y ~ x + g", full).fit(cov_type="HC0")
    np.testing.assert_allclose(result.params, ols.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.bse, ols.bse, rtol=1e-8)
    assert list(result.params.index) == list(ols.params.index)


def test_fully_labeled_logit_is_mle_with_sandwich_errors(frame: pd.DataFrame) -> None:
    full = frame.assign(yb=(frame["y_true"] > 1.5).astype(float))
    result = dsl("logit", "yb ~ x", full, "yb", g_hat=full["predb"].to_numpy())
    mle = smf.logit("yb ~ x", full).fit(disp=0, cov_type="HC0")
    np.testing.assert_allclose(result.params, mle.params, rtol=1e-8)
    np.testing.assert_allclose(result.bse, mle.bse, rtol=1e-6)


def test_cluster_errors_are_liang_zeger_without_correction(frame: pd.DataFrame) -> None:
    full = frame.assign(y=frame["y_true"])
    result = dsl("lm", "y ~ x", full, "y", g_hat=full["pred"].to_numpy(), cluster="g")
    codes = pd.factorize(full["g"])[0]
    ols = smf.ols("y ~ x", full).fit(cov_type="cluster", cov_kwds={"groups": codes, "use_correction": False})
    np.testing.assert_allclose(result.bse, ols.bse, rtol=1e-8)


def test_fully_labeled_felm_is_the_within_estimator(frame: pd.DataFrame) -> None:
    """One-way felm equals OLS with group dummies; its clustered SE the dummy-regression sandwich."""
    full = frame.assign(y=frame["y_true"])
    result = dsl("felm", "y ~ x", full, "y", g_hat=full["pred"].to_numpy(), index="g", cluster="g")
    codes = pd.factorize(full["g"])[0]
    dummies = smf.ols("y ~ x + C(g)", full).fit(cov_type="cluster", cov_kwds={"groups": codes, "use_correction": False})
    assert result.terms == ["x"]
    np.testing.assert_allclose(result.params["x"], dummies.params["x"], rtol=1e-10)
    np.testing.assert_allclose(result.bse["x"], dummies.bse["x"], rtol=1e-8)


def test_balanced_twoway_felm_is_the_two_way_within_estimator(rng: np.random.Generator) -> None:
    units, periods = 40, 6
    panel = pd.DataFrame({"unit": np.repeat(np.arange(units), periods), "t": np.tile(np.arange(periods), units)})
    panel["x"] = rng.normal(size=len(panel)) + 0.2 * panel["t"]
    panel["y"] = 2 * panel["x"] + 0.5 * panel["unit"] % 3 + panel["t"] + rng.normal(size=len(panel))
    result = dsl(
        "felm",
        "y ~ x",
        panel,
        "y",
        g_hat=panel["y"].to_numpy(),
        index=["unit", "t"],
        fixed_effect="twoways",
        cluster="unit",
    )
    dummies = smf.ols("y ~ x + C(unit) + C(t)", panel).fit(
        cov_type="cluster", cov_kwds={"groups": panel["unit"], "use_correction": False}
    )
    np.testing.assert_allclose(result.params["x"], dummies.params["x"], rtol=1e-10)
    np.testing.assert_allclose(result.bse["x"], dummies.bse["x"], rtol=1e-8)


def test_mean_is_prediction_mean_plus_weighted_correction(frame: pd.DataFrame) -> None:
    """DSL mean: mean(g) + mean(R/pi (Y - g)), with pi = n/N."""
    g = frame["pred"].to_numpy()
    labeled = frame["y"].notna().to_numpy()
    pi = labeled.mean()
    expected = g.mean() + np.mean(np.where(labeled, (frame["y"].fillna(0) - g) / pi, 0.0))
    result = dsl("lm", "y ~ 1", frame, "y", g_hat=g)
    assert result.params["Intercept"] == pytest.approx(expected, rel=1e-12)
    # Variance of the mean: the sample variance of the pseudo-outcome over N (no df correction).
    pseudo = g + np.where(labeled, (frame["y"].fillna(0) - g) / pi, 0.0)
    assert result.bse["Intercept"] == pytest.approx(np.sqrt(pseudo.var() / len(pseudo)), rel=1e-10)


def test_sample_prob_is_rescaled_to_the_labeled_share(frame: pd.DataFrame) -> None:
    """Only relative probabilities matter: scaling sample_prob leaves the fit unchanged."""
    pi = np.where(frame["x"] > 0, 0.4, 0.2)
    a = dsl("lm", "y ~ x", frame, "y", sample_prob=pi, g_hat=frame["pred"].to_numpy())
    b = dsl("lm", "y ~ x", frame.assign(p=pi / 2), "y", sample_prob="p", g_hat=frame["pred"].to_numpy())
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12)
    c = dsl("lm", "y ~ x", frame, "y", g_hat=frame["pred"].to_numpy())
    assert not np.allclose(a.params, c.params)


def test_predicted_covariate_uses_gold_design_on_labeled_rows(frame: pd.DataFrame) -> None:
    """When the predicted variable is a regressor, the design is rebuilt with g-hat per split."""
    data = frame.assign(xl=np.where(frame["y"].notna(), frame["x"], np.nan), xp=frame["x"] + 0.3, out=frame["y_true"])
    exact = dsl("lm", "out ~ xl", data, "xl", g_hat=data["x"].to_numpy())
    # With g-hat equal to the truth the correction vanishes: OLS of out on x over all rows.
    ols = smf.ols("out ~ x", data).fit()
    np.testing.assert_allclose(exact.params.to_numpy(), ols.params.to_numpy(), rtol=1e-10)
    noisy = dsl("lm", "out ~ xl + I(xl ** 2)", data, "xl", g_hat=data["xp"].to_numpy())
    assert noisy.terms == ["Intercept", "xl", "I(xl ** 2)"]
    assert np.isfinite(noisy.bse).all()


def test_g_hat_forms_agree(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    splits = frame["pred"].to_numpy() + rng.normal(0, 0.1, size=(3, len(frame)))
    as_array = dsl("lm", "y ~ x", frame, "y", g_hat=splits)
    as_mapping = dsl("lm", "y ~ x", frame, "y", g_hat={"y": splits})
    pd.testing.assert_series_equal(as_array.params, as_mapping.params)
    one = dsl("lm", "y ~ x", frame, "y", g_hat=splits[0])
    from_frame = dsl("lm", "y ~ x", frame, "y", g_hat=pd.DataFrame({"y": splits[0]}))
    pd.testing.assert_series_equal(one.params, from_frame.params)
    assert as_array.sample_split == 3 and one.sample_split == 1
    with pytest.raises(ValueError, match="shape"):
        dsl("lm", "y ~ x", frame, "y", g_hat=splits[:, :-1])


def test_two_predicted_variables(frame: pd.DataFrame) -> None:
    data = frame.assign(xl=np.where(frame["y"].notna(), frame["x"], np.nan))
    g_hat = {"y": data["pred"].to_numpy(), "xl": data["x"].to_numpy() + 0.1}
    result = dsl("lm", "y ~ xl", data, ["y", "xl"], g_hat=g_hat)
    assert result.terms == ["Intercept", "xl"]
    with pytest.raises(ValueError, match="mapping"):
        dsl("lm", "y ~ xl", data, ["y", "xl"], g_hat=data["pred"].to_numpy())


def test_split_combination_is_median_with_spread(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    splits = frame["pred"].to_numpy() + rng.normal(0, 0.5, size=(5, len(frame)))
    result = dsl("lm", "y ~ x", frame, "y", g_hat=splits)
    b, se = result.params_by_split.to_numpy(), result.bse_by_split.to_numpy()
    np.testing.assert_allclose(result.params, np.median(b, axis=0))
    np.testing.assert_allclose(result.bse, np.sqrt(np.median(se**2 + (b - np.median(b, axis=0)) ** 2, axis=0)))
    np.testing.assert_allclose(np.diag(result.cov_params()), result.bse**2)


def test_results_interface(frame: pd.DataFrame) -> None:
    result = dsl("lm", "y ~ x", frame, "y", g_hat=frame["pred"].to_numpy())
    assert isinstance(result, DSLResults)
    z = result.params / result.bse
    pd.testing.assert_series_equal(result.tvalues, z)
    np.testing.assert_allclose(result.pvalues, 2 * sps.norm.sf(np.abs(z)))
    ci = result.conf_int(0.1)
    assert list(ci.columns) == [0, 1]
    np.testing.assert_allclose(ci[1] - ci[0], 2 * sps.norm.ppf(0.95) * result.bse)
    cov = result.cov_params()
    assert list(cov.index) == list(cov.columns) == ["Intercept", "x"]
    text = result.summary()
    assert "Intercept" in text and "P>|z|" in text and f"labeled: {result.n_labeled}" in text
    assert result.nobs == 1500 and result.n_labeled == 400


def test_rows_with_missing_covariates_are_dropped_as_in_r(frame: pd.DataFrame) -> None:
    holes = frame.assign(x=frame["x"].mask(frame.index % 10 == 0))
    result = dsl("lm", "y ~ x", holes, "y", g_hat=holes["pred"].to_numpy())
    kept = holes["x"].notna()
    same = dsl("lm", "y ~ x", holes[kept], "y", g_hat=holes.loc[kept, "pred"].to_numpy())
    pd.testing.assert_series_equal(result.params, same.params)
    assert result.nobs == kept.sum()


def test_cross_fitting_is_seeded(frame: pd.DataFrame) -> None:
    a = dsl("lm", "y ~ x", frame, "y", prediction="pred", feature="x", sample_split=2, seed=7)
    b = dsl("lm", "y ~ x", frame, "y", prediction="pred", feature="x", sample_split=2, seed=7)
    c = dsl("lm", "y ~ x", frame, "y", prediction="pred", feature="x", sample_split=2, seed=8)
    pd.testing.assert_frame_equal(a.params_by_split, b.params_by_split)
    assert not np.allclose(a.params_by_split, c.params_by_split)
    assert a.prediction_rmse["y"] < np.sqrt(np.mean((frame["pred"] - frame["y"]) ** 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(model="probit"), "`model`"),
        (dict(model="felm"), "index"),
        (dict(model="felm", index="g", fixed_effect="twoways"), "two for"),
        (dict(g_hat=None), "prediction"),
    ],
)
def test_bad_arguments(frame: pd.DataFrame, kwargs: dict, message: str) -> None:
    call = dict(model="lm", formula="y ~ x", data=frame, predicted_var="y", g_hat=frame["pred"].to_numpy())
    call.update(kwargs)
    with pytest.raises(ValueError, match=message):
        dsl(**call)


def test_no_labels_is_an_error(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no labeled rows"):
        dsl("lm", "y ~ x", frame.assign(y=np.nan), "y", g_hat=frame["pred"].to_numpy())


def test_nearest_psd_keeps_the_diagonal(rng: np.random.Generator) -> None:
    a = rng.normal(size=(4, 4))
    indefinite = (a + a.T) / 2 + np.diag([3.0, 3.0, 3.0, 3.0])
    indefinite[0, 1] = indefinite[1, 0] = 4.0
    assert np.linalg.eigvalsh(indefinite).min() < 0
    repaired = nearest_psd_keep_diag(indefinite)
    np.testing.assert_allclose(np.diag(repaired), np.diag(indefinite))
    assert np.linalg.eigvalsh(repaired).min() > -1e-8
    np.testing.assert_allclose(repaired, repaired.T)
