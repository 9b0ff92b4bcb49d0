"""The design balanced inside benchmark x language (model x image arms as strata), the
surrogate-informed allocation, the one stratum map the analysis uses, and ``ifl sample``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select, update

from annotator.analysis.frame import analysis_frame
from annotator.annotation.routing import claim_batch, submit
from annotator.cli import main
from annotator.design.draws import draw_sample, top_up
from annotator.design.report import design_report
from annotator.design.sampling import (
    SamplingError,
    plan_allocation,
    predicted_widths,
    strata_for_sample,
)
from annotator.storage import session_scope
from db.models import Prediction, Sample, SampleItem, SampleStratum

MODELS = ("m1", "m2", "m3")
# German gets 4x the paper weight, Romanian 0.5x: one stratum splits into all six arms, one only
# partly, and a tiny one stays whole.
COUNTS = {("MaXM", "deu"): 600, ("MaXM", "ron"): 600, ("ViSIT", "deu"): 1200, ("ViSIT", "urd"): 12}


@pytest.fixture
def study(engine: Engine, completion_frame, insert_completions) -> Engine:
    frame = completion_frame(COUNTS, models=MODELS)
    insert_completions(engine, frame)
    # A language-ID surrogate whose confidence is low for one completion in four, seeded.
    rng = np.random.default_rng(1)
    probability = np.where(
        rng.random(len(frame)) < 0.25, rng.uniform(0.1, 0.5, len(frame)), rng.uniform(0.95, 1.0, len(frame))
    )
    with engine.begin() as connection:
        connection.execute(
            insert(Prediction),
            [
                {"completion_id": cid, "source": "lid176", "probability": float(p), "language_class": "german"}
                for cid, p in zip(frame["id"], probability, strict=True)
            ],
        )
    return engine


def items_with_cells(engine: Engine, sample_id: int) -> pd.DataFrame:
    frame = analysis_frame(engine, sample_id)
    with engine.connect() as connection:
        items = pd.read_sql(select(SampleItem).where(SampleItem.sample_id == sample_id), connection)
    return items.merge(
        frame[["completion_id", "model", "image", "benchmark", "query_language", "stratum", "sample_prob"]],
        on="completion_id",
        suffixes=("", "_frame"),
    )


def test_arms_are_strata_inside_each_benchmark_language_with_its_paper_share(study: Engine):
    coarse = plan_allocation(study, 120, balance="none").set_index("stratum")["drawn"]
    summary = draw_sample(study, 120, seed=4, balance="arms")
    report = design_report(study, summary.sample_id)
    # Every benchmark x language keeps exactly the paper's integer share.
    per_coarse = report.groupby(report["benchmark"] + "|" + report["query_language"])["drawn"].sum()
    assert per_coarse.to_dict() == coarse.to_dict()
    items = items_with_cells(study, summary.sample_id)
    arms_per_stratum = items.groupby("stratum")[["model", "image"]].apply(lambda g: len(g.drop_duplicates()))
    single = report.set_index("stratum")["level"].eq("model x image")
    assert single.any() and (arms_per_stratum[single[single].index] == 1).all()
    # A split stratum was expected to get at least two labels; the tiny one stays whole.
    split = report[report["level"] != "benchmark x language"]
    assert (split["expected"] >= 2 - 1e-9).all()
    assert report.set_index("stratum").loc["ViSIT|urd", "level"] == "benchmark x language"
    # Arms of one benchmark x language (equal sizes here) differ by at most one draw when split.
    deu = items[(items["benchmark"] == "ViSIT") & (items["query_language"] == "deu")]
    assert np.ptp(deu.groupby(["model", "image"]).size()) <= 1


def test_the_analysis_puts_every_row_in_its_recorded_stratum_with_exact_probability(study: Engine):
    for allocation in ("paper", "surrogate"):
        sample_id = draw_sample(study, 90, seed=7, allocation=allocation, name=allocation).sample_id
        frame = analysis_frame(study, sample_id)
        items = items_with_cells(study, sample_id)
        assert (items["stratum"] == items["stratum_frame"]).all()
        assert np.allclose(items["inclusion_probability"], items["sample_prob"])
        assert frame["sample_prob"].sum() == pytest.approx(90)
        assert frame.groupby("stratum")["sample_prob"].nunique().eq(1).all()
        with engine_rows(study, sample_id) as strata:
            sizes = frame["stratum"].value_counts()
            assert strata.set_index("stratum")["population"].to_dict() == sizes.to_dict()


class engine_rows:
    """``with engine_rows(engine, sample_id) as strata``: the recorded sample_strata rows."""

    def __init__(self, engine: Engine, sample_id: int) -> None:
        self.engine, self.sample_id = engine, sample_id

    def __enter__(self) -> pd.DataFrame:
        with self.engine.connect() as connection:
            return pd.read_sql(select(SampleStratum).where(SampleStratum.sample_id == self.sample_id), connection)

    def __exit__(self, *exc: object) -> None:
        return None


def test_labels_reach_every_arm_in_proportion_at_every_point(study: Engine, add_account):
    """Routing (``stratum_priority``) serves every stratum's first item, then by Sainte-Lague;
    with arms as strata, every prefix of the labels is spread over the arms in proportion."""
    sample_id = draw_sample(study, 120, seed=2, balance="arms").sample_id
    annotator = add_account(study, "reader", "deu,ron,urd")
    items = items_with_cells(study, sample_id).set_index("completion_id")
    arm_of = items["benchmark"] + "|" + items["model"] + "|" + items["image"].astype(str)
    sizes = items["stratum"].value_counts()
    given: list[str] = []
    for step in range(12):
        for item in claim_batch(study, annotator, 10):
            submit(study, annotator, item.completion_id, "german", True, True)
            given.append(item.completion_id)
        taken = items.loc[given, "stratum"].value_counts().reindex(sizes.index, fill_value=0)
        if len(given) < len(sizes):  # first items first: no stratum has a second label yet
            assert taken.max() == 1, step
            continue
        # Sainte-Lague: a stratum's last label beyond its first was due no later than any other
        # stratum's next one.
        seconds = taken >= 2
        if seconds.any():
            assert ((taken[seconds] - 0.5) / sizes[seconds]).max() <= ((taken + 0.5) / sizes).min() + 1e-9, step
        # So every arm has labels, each arm about its share of those given so far.
        labeled = arm_of.loc[given].value_counts().reindex(arm_of.unique(), fill_value=0)
        planned = arm_of.value_counts().reindex(labeled.index)
        assert (labeled > 0).all(), step
        spans = items.groupby(arm_of)["stratum"].nunique().reindex(labeled.index)
        assert (np.abs(labeled - len(given) / len(items) * planned) <= spans + 1e-9).all(), step


def test_surrogate_allocation_oversamples_low_confidence_and_predicts_narrower_intervals(study: Engine):
    sample_id = draw_sample(study, 150, seed=3, allocation="surrogate").sample_id
    with session_scope(study) as session:
        design = session.get(Sample, sample_id).design
    assert design["allocation"] == "surrogate" and design["confidence_source"] == "lid176"
    frame = analysis_frame(study, sample_id)
    low = frame["pred_probability"] < 0.5
    assert frame.loc[low, "sample_prob"].mean() > 2 * frame.loc[~low, "sample_prob"].mean()
    assert (frame["sample_prob"] > 0).all()
    widths = predicted_widths(study, 150)
    assert len(widths) == len(MODELS) * 2  # model x benchmark
    assert widths["surrogate"].mean() < widths["paper"].mean()
    # The paper allocation's widths are those of the draw it would make.
    assert set(widths.columns) == {"model", "benchmark", "paper", "surrogate", "ratio"}


def test_surrogate_allocation_needs_language_id(engine: Engine, completion_frame, insert_completions):
    insert_completions(engine, completion_frame({("MaXM", "deu"): 50}))
    with pytest.raises(SamplingError, match="ifl lid"):
        draw_sample(engine, 10, seed=1, allocation="surrogate")
    with pytest.raises(SamplingError, match="not one of"):
        draw_sample(engine, 10, seed=1, allocation="neyman")


def test_top_up_keeps_the_strata_and_refuses_when_the_bands_moved(study: Engine):
    first = draw_sample(study, 100, seed=5, allocation="surrogate")
    before = design_report(study)[["stratum", "drawn"]]
    grown = top_up(study, None, n_total=160, seed=6)
    after = design_report(study)
    assert grown.allocation == "surrogate" and grown.strata == first.strata
    assert after["stratum"].tolist() == before["stratum"].tolist()
    assert (after["drawn"].to_numpy() >= before["drawn"].to_numpy()).all() and after["drawn"].sum() == 160
    items = items_with_cells(study, first.sample_id)
    assert np.allclose(items["inclusion_probability"], items["sample_prob"])
    with study.begin() as connection:  # language ID re-run: a confident completion becomes uncertain
        connection.execute(update(Prediction).where(Prediction.probability > 0.95).values(probability=0.2))
    with pytest.raises(SamplingError, match="predictions its confidence bands use"):
        top_up(study, None, n_total=200, seed=7)


def test_strata_for_a_sample_without_a_recorded_design_are_benchmark_language(study: Engine):
    sample_id = draw_sample(study, 40, seed=1).sample_id
    with session_scope(study, write=True) as session:
        session.get(Sample, sample_id).design = None
    frame = pd.DataFrame(
        {"completion_id": ["x"], "benchmark": ["MaXM"], "query_language": ["deu"], "model": ["m1"], "image": [1]}
    )
    assert strata_for_sample(study, frame, sample_id).tolist() == ["MaXM|deu"]


def test_cli_draws_by_allocation_and_reports_the_levels(study: Engine, capsys):
    if study.dialect.name != "sqlite":
        pytest.skip("the CLI takes a URL; a test's own PostgreSQL schema is set on its engine, not in the URL")
    url = study.url.render_as_string(hide_password=False)
    main(["--db", url, "sample", "--n", "120", "--seed", "3", "--allocation", "surrogate", "--report"])
    out = capsys.readouterr().out
    assert "surrogate allocation" in out and "strata by level" in out
    assert "model x image x confidence band" in out
    main(["--db", url, "sample", "--n", "150", "--seed", "4", "--top-up"])
    assert "150 of" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--db", url, "sample", "--n", "120", "--seed", "3", "--allocation", "neyman"])
