"""The study's estimands on a simulated analysis frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stats import (
    ESTIMATORS,
    INTERACTION_FORMULA,
    TIDY_COLUMNS,
    ablation_frame,
    analyse_study,
    image_effect_fits,
    image_effect_table,
    interaction_fits,
    interaction_table,
    outcome_design,
    simulate_study,
    study_predictions,
    tidy_estimates,
)

SPLITS = dict(cross_fit=5, sample_split=2)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate_study(40_000, 1_500, seed=11, include_truth=True)


@pytest.fixture(scope="module")
def g_fidelity(frame: pd.DataFrame) -> np.ndarray:
    return study_predictions(frame, "fidelity", seed=3, **SPLITS)


def _true_image_effect(rows: pd.DataFrame, outcome: str = "fidelity_true") -> float:
    return rows.loc[rows["image"] == 1, outcome].mean() - rows.loc[rows["image"] == 0, outcome].mean()


def test_image_effect_table_shape_and_contents(frame: pd.DataFrame, g_fidelity: np.ndarray) -> None:
    table = image_effect_table(frame, "fidelity", g_hat=g_fidelity)
    assert list(table.columns) == list(TIDY_COLUMNS)
    assert len(table) == 12 * len(ESTIMATORS)
    assert set(table["term"]) == {"image"} and set(table["estimator"]) == set(ESTIMATORS)
    assert table.groupby("estimator")["n"].sum().eq(len(frame)).all()
    assert (table.loc[table["estimator"] == "surrogate", "n_labeled"] == 0).all()
    labeled = table.loc[table["estimator"] == "dsl", "n_labeled"].sum()
    assert labeled == frame["fidelity"].notna().sum()
    assert (table["ci_low"] < table["estimate"]).all() and (table["estimate"] < table["ci_high"]).all()


def test_dsl_is_centred_on_the_truth_and_the_surrogate_is_not(frame: pd.DataFrame, g_fidelity: np.ndarray) -> None:
    table = image_effect_table(frame, "fidelity", g_hat=g_fidelity).set_index(["model", "benchmark", "estimator"])
    truth = frame.groupby(["model", "benchmark"]).apply(_true_image_effect)
    dsl_z = (table.xs("dsl", level="estimator")["estimate"] - truth) / table.xs("dsl", level="estimator")["se"]
    surrogate_error = table.xs("surrogate", level="estimator")["estimate"] - truth
    assert dsl_z.abs().max() < 3.5
    assert abs(dsl_z.mean()) < 1.0  # mean of 12 z-scores: SD about 0.3
    # The language ID errs more on the short answers to image queries: it understates the loss.
    assert surrogate_error.mean() > 0.02
    dsl_se = table.xs("dsl", level="estimator")["se"]
    labeled_se = table.xs("labeled", level="estimator")["se"]
    assert (dsl_se < labeled_se).mean() >= 0.75  # the surrogate buys precision


def test_per_language_cells(frame: pd.DataFrame, g_fidelity: np.ndarray) -> None:
    table = image_effect_table(frame, "fidelity", per_language=True, estimators=["dsl"], g_hat=g_fidelity)
    assert len(table) == 12 * frame["query_language"].nunique()
    assert table["language"].notna().all()


def test_ablation_frame_codes_against_llava() -> None:
    rows = pd.DataFrame(
        {
            "llm": ["qwen2", "vicuna", None],
            "vision_encoder": ["clip", "siglip", "clip"],
            "train_language": ["en", "en", "en"],
        }
    )
    coded = ablation_frame(rows)
    assert len(coded) == 2  # the row without an llm is not an ablation model
    assert list(coded["llm"].cat.categories) == ["vicuna", "qwen2"]
    assert list(coded["vision"].cat.categories) == ["clip", "siglip"]
    with pytest.raises(ValueError, match="reference level"):
        ablation_frame(rows, reference={"llm": "llama", "vision": "clip", "data": "en"})


def test_interaction_regression(frame: pd.DataFrame, g_fidelity: np.ndarray) -> None:
    external = frame.head(3000).assign(
        model="external",
        llm=None,
        vision_encoder=None,
        train_language=None,
        stratum=lambda d: "external|" + d["stratum"],
    )
    with_external = pd.concat([frame, external], ignore_index=True)
    g_hat = np.hstack([g_fidelity, g_fidelity[:, :3000]])
    table = interaction_table(with_external, g_hat=g_hat)
    assert set(table["language"]) == {"zho", "deu"}
    assert set(table["term"]) == {"image", "image:llm[T.qwen2]", "image:vision[T.siglip]", "image:data[T.multi]"}
    german = (table["language"] == "deu") & (table["term"] == "image")
    assert (table.loc[german, "n"] == (frame["query_language"] == "deu").sum()).all()  # no external rows
    # The simulation's image effect of the qwen2 LLM is +0.5 on the logit scale: positive here.
    qwen = table[(table["estimator"] == "dsl") & (table["term"] == "image:llm[T.qwen2]")]
    assert (qwen["estimate"] + 3 * qwen["se"] > 0).all()
    missing = interaction_fits(
        frame, INTERACTION_FORMULA, languages=["zho", "kor"], g_hat=g_fidelity, estimators=["dsl"]
    )
    assert [fit.language for fit in missing] == ["zho", "kor"]
    assert missing[1].results == {"dsl": None} and "no covered rows" in missing[1].note


def test_accuracy_counts_cannot_tell_as_unlabeled(frame: pd.DataFrame) -> None:
    design = outcome_design(frame, "correct").strata.set_index("stratum")
    definite = frame.groupby("stratum")["correct"].count()
    pd.testing.assert_series_equal(design["n_labeled"], definite, check_names=False)
    assert (frame["labeled"] & frame["correct"].isna()).sum() > 0  # the simulation has NA answers
    table = image_effect_table(frame, "correct", estimators=["dsl", "labeled"], seed=5, **SPLITS)
    assert table.groupby("estimator")["n_labeled"].sum().eq(frame["correct"].notna().sum()).all()
    truth = frame.groupby(["model", "benchmark"]).apply(_true_image_effect, outcome="correct_true")
    dsl = table[table["estimator"] == "dsl"].set_index(["model", "benchmark"])
    assert ((dsl["estimate"] - truth) / dsl["se"]).abs().max() < 3.5


def test_interim_analysis_reports_and_excludes_unlabeled_strata() -> None:
    frame = simulate_study(20_000, 1_200, seed=4, completed=0.6)
    empty = "maxm|deu"
    frame.loc[frame["stratum"] == empty, ["labeled", "fidelity", "correct"]] = [False, np.nan, np.nan]
    analysis = analyse_study(frame, outcomes=["fidelity"], estimators=["dsl", "labeled"], seed=1, **SPLITS)
    design = analysis.designs["fidelity"]
    assert design.empty_strata == [empty]
    assert design.strata["n_labeled"].sum() == frame["fidelity"].notna().sum() < design.strata["n_sampled"].sum()
    assert any("1 sampled strata without labels yet" in note for note in analysis.notes)
    effects = analysis.estimates.query("estimand == 'image_effect'").set_index(["model", "benchmark"])
    in_stratum = frame["stratum"] == empty
    for (model, benchmark), rows in frame.groupby(["model", "benchmark"]):
        expected = len(rows) - in_stratum[rows.index].sum()
        assert (effects.loc[(model, benchmark), "n"] == expected).all()
    # The German interaction regression loses the excluded stratum's rows, and says so in n.
    german = analysis.estimates.query("estimand == 'interaction' and language == 'deu'")
    assert (german["n"] < (frame["query_language"] == "deu").sum()).all()
    # Without labels for part of their population, those cells show no interval: they say so.
    waiting = pd.concat([effects.loc[effects.index.get_level_values("benchmark") == "maxm"].reset_index(), german])
    assert (waiting["status"] == "not_estimable").all() and waiting["estimate"].isna().all()
    assert waiting["needs"].str.endswith(f"needs about 1 more label in {empty}").all()
    others = effects.loc[effects.index.get_level_values("benchmark") != "maxm"]
    assert (others["status"] == "ok").all()


def test_missing_surrogate_values_are_handled(frame: pd.DataFrame) -> None:
    """The real frame has NaN where no language ID ran: g-hat still covers every row."""
    holes = frame.assign(
        pred_fidelity=frame["pred_fidelity"].mask(frame.index % 50 == 0),
        pred_probability=frame["pred_probability"].mask(frame.index % 50 == 0),
    )
    g_hat = study_predictions(holes, "fidelity", cross_fit=5, sample_split=1, seed=0)
    assert np.isfinite(g_hat).all()
    table = image_effect_table(holes, "fidelity", g_hat=g_hat)
    surrogate = table[table["estimator"] == "surrogate"]
    assert surrogate["estimate"].notna().all()


def test_a_cell_without_one_arm_gives_nan_and_a_note(frame: pd.DataFrame, g_fidelity: np.ndarray) -> None:
    """No image rows in one cell: `image` is constant there, no estimator can run; it is reported."""
    arm = ((frame["model"] == "llava-1.5") & (frame["benchmark"] == "xgqa") & (frame["image"] == 1)).to_numpy()
    fits = image_effect_fits(frame[~arm].reset_index(drop=True), "fidelity", g_hat=g_fidelity[:, ~arm])
    broken = [fit for fit in fits if (fit.model, fit.benchmark) == ("llava-1.5", "xgqa")]
    assert len(fits) == 12 and len(broken) == 1
    assert all(result is None for result in broken[0].results.values())
    assert "singular" in broken[0].note
    table = tidy_estimates(fits)
    assert table["estimate"].isna().sum() == len(ESTIMATORS)  # the other 11 cells are unaffected


def test_analyse_study_tables(frame: pd.DataFrame) -> None:
    analysis = analyse_study(frame, seed=2, **SPLITS)
    estimates = analysis.estimates
    assert set(estimates["outcome"]) == {"fidelity", "correct"}
    assert set(estimates["estimand"]) == {"image_effect", "interaction"}
    assert len(estimates) == 2 * (12 + 2 * 4) * len(ESTIMATORS)
    power = analysis.power
    assert len(power) == 2 * (12 + 2 * 4)
    assert (power["se_more"] < power["se"]).all() and (power["labels_more"] == 2 * power["n_labeled"]).all()
    reachable = power["labels_needed"].notna()
    assert reachable.any()
    already = power["halfwidth"] <= 0.05
    assert (power.loc[already & reachable, "labels_needed"] <= power.loc[already & reachable, "n_labeled"] * 1.1).all()
    assert set(analysis.designs) == {"fidelity", "correct"}
