"""Stratified gold-standard sampling: allocation, exact probabilities, reproducibility, top-ups."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from annotator.annotation.reads import current_sample_id
from annotator.design import draws, sampling
from annotator.design.draws import draw_sample, top_up
from annotator.design.report import design_report, sample_rounds
from annotator.design.sampling import SamplingError, allocate, plan_allocation
from annotator.design.weights import PAPER_WEIGHTS, SamplingWeights, WeightsError, load_weights
from annotator.storage import make_engine, session_scope, upgrade_database
from db.models import Sample, SampleItem, SampleStratum

# Unequal benchmarks and languages, one stratum too small for its share, one tiny.
COUNTS = {
    ("MaXM", "deu"): 30,
    ("MaXM", "eng"): 120,
    ("MaXM", "ron"): 60,
    ("XM3600", "deu"): 200,
    ("XM3600", "eng"): 400,
    ("XM3600", "zho"): 3,
    ("XM3600", "urd"): 1,
}


def items_of(engine: Engine, sample_id: int) -> pd.DataFrame:
    with engine.connect() as connection:
        frame = pd.read_sql(
            select(SampleItem).where(SampleItem.sample_id == sample_id).order_by(SampleItem.id), connection
        )
    return frame.astype({"double_annotate": bool})


def strata_of(engine: Engine, sample_id: int) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.read_sql(
            select(SampleStratum).where(SampleStratum.sample_id == sample_id).order_by(SampleStratum.stratum),
            connection,
        ).set_index("stratum")


@pytest.fixture
def study(engine: Engine, completion_frame, insert_completions) -> Engine:
    insert_completions(engine, completion_frame(COUNTS))
    return engine


# --- allocation ---------------------------------------------------------------------------------


def test_allocation_is_proportional_to_weights():
    assert allocate([1, 2, 3, 4], [1000] * 4, 100).tolist() == [10, 20, 30, 40]


def test_allocation_rounds_by_largest_remainder():
    # Quotas 3.6, 3.3, 3.1 -> floors 3, 3, 3 and the one unit left goes to the largest remainder.
    assert allocate([36, 33, 31], [100] * 3, 10).tolist() == [4, 3, 3]
    # Ties go to the first stratum, so the result is deterministic.
    assert allocate([1, 1, 1], [10] * 3, 10).tolist() == [4, 3, 3]


def test_capped_stratum_passes_its_excess_on_in_proportion_to_weights():
    # Stratum 0 wants 30 * 10/14 = 21.4 but has 2; the 28 left go 1:3 to the others.
    assert allocate([10, 1, 3], [2, 100, 100], 30).tolist() == [2, 7, 21]


def test_every_stratum_gets_one_taken_from_the_others_in_proportion():
    # Stratum 2's share is 10/901 of a draw: it gets 1, the other 9 go 2:1 to the rest.
    assert allocate([600, 300, 1], [100, 100, 100], 10).tolist() == [6, 3, 1]


def test_allocation_bounds_and_sum_hold_for_random_designs(rng: np.random.Generator):
    for _ in range(300):
        strata = int(rng.integers(1, 30))
        population = rng.integers(1, 200, strata)
        weights = rng.lognormal(0, 2, strata) * population
        lower = np.minimum(population, rng.integers(0, 5, strata))
        lower = np.maximum(lower, 1)
        n = int(rng.integers(lower.sum(), population.sum() + 1))
        drawn = allocate(weights, population, n, lower=lower)
        assert drawn.sum() == n
        assert np.all(drawn >= lower) and np.all(drawn <= population)
        # Strata strictly inside their bounds get lambda * W_h rounded down or up, for one lambda.
        free = (drawn > lower) & (drawn < population)
        if free.any():
            assert ((drawn[free] - 1) / weights[free]).max() < ((drawn[free] + 1) / weights[free]).min()


@pytest.mark.parametrize(
    ("weights", "population", "n", "message"),
    [
        ([1, 1, 1], [5, 5, 5], 2, "below the 3 draws"),
        ([1, 1], [5, 5], 11, "more than the 10 completions"),
        ([1, 0], [5, 5], 4, "positive"),
        ([1, 1], [5, 0], 4, "positive"),
    ],
)
def test_allocation_refuses_impossible_designs(weights, population, n, message):
    with pytest.raises(SamplingError, match=message):
        allocate(weights, population, n)


# --- weights ------------------------------------------------------------------------------------


def test_weights_file_accepts_any_language_form(tmp_path):
    path = tmp_path / "weights.toml"
    path.write_text(
        "[benchmark]\nbalance = false\n[benchmark.multipliers]\nMaXM = 2\n"
        "[language]\nGerman = 4.0\nzh = 2\nhin = 2\nron = 0.5\n",
        encoding="utf-8",
    )
    weights = load_weights(path)
    assert weights == SamplingWeights(
        balance_benchmarks=False, languages={"deu": 4.0, "zho": 2.0, "hin": 2.0, "ron": 0.5}, benchmarks={"MaXM": 2.0}
    )
    assert SamplingWeights.from_mapping(weights.to_dict()) == weights


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[language]\nKlingonese = 2\n", r"language\.Klingonese: unknown language"),
        ("[language]\ndeu = -1\n", r"language\.deu: -1 must be a positive number"),
        ("[language]\ndeu = 0\n", r"language\.deu: 0 must be a positive number"),
        ('[language]\ndeu = "four"\n', r"language\.deu: 'four' is not a number"),
        ("[language]\nde = 2\ndeu = 3\n", r"language\.deu: names 'deu' a second time"),
        ("[benchmark]\nbalance = 1\n", r"benchmark\.balance: 1 is not true or false"),
        ("[benchmark]\nbalanced = true\n", r"benchmark\.balanced: unknown key"),
        ("[benchmark.multipliers]\nMaXM = true\n", r"benchmark\.multipliers\.MaXM: True is not a number"),
        ("[languages]\ndeu = 2\n", r"languages: unknown section"),
        ("language = 3\n", r"language: expected a table"),
        ("[language\n", r"not valid TOML"),
    ],
)
def test_weights_file_errors_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WeightsError, match=rf"^{path}: .*{message}|^{path}: {message}"):
        load_weights(path)


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        load_weights(tmp_path / "nope.toml")


def test_paper_weights_balance_benchmarks_then_multiply_languages():
    strata = pd.DataFrame(
        {
            "benchmark": ["A", "A", "B", "B"],
            "query_language": ["deu", "ron", "eng", "zho"],
            "population": [10, 30, 40, 20],
        }
    )
    # N = 100; A holds 40 (unit weight 2.5), B 60 (unit weight 5/3).
    expected = [10 * 2.5 * 4, 30 * 2.5 * 0.5, 40 * 100 / 60, 20 * 100 / 60 * 2]
    assert PAPER_WEIGHTS.stratum_weights(strata) == pytest.approx(expected)


# --- drawing ------------------------------------------------------------------------------------


def test_draw_records_an_exact_design(study: Engine):
    """The benchmark x language design (``balance="none"``); the arms' split has its own tests."""
    summary = draw_sample(study, 100, seed=3, balance="none")
    assert (summary.n, summary.added, summary.strata, summary.population) == (100, 100, 7, 814)
    assert current_sample_id(study) == summary.sample_id
    items = items_of(study, summary.sample_id)
    strata = strata_of(study, summary.sample_id)

    assert len(items) == 100 and items["completion_id"].is_unique
    assert (strata["drawn"] >= 1).all() and strata["drawn"].sum() == 100
    assert strata.loc["XM3600|urd", "drawn"] == 1  # min 1 although its share is tiny
    counts = items.groupby("stratum").size()
    assert counts.to_dict() == strata["drawn"].to_dict()
    probability = strata["drawn"] / strata["population"]
    assert np.allclose(items["inclusion_probability"], items["stratum"].map(probability))
    # Inclusion probabilities over all completions sum to n.
    assert (strata["population"] * probability).sum() == pytest.approx(100)
    # Queue positions are 0..n_h-1 within each stratum; the completion ids match the stratum.
    for stratum, group in items.groupby("stratum"):
        assert sorted(group["queue_position"]) == list(range(len(group)))
        assert group["completion_id"].str.startswith(stratum.replace("|", "-")).all()
    assert items["double_annotate"].sum() == 10
    assert (items["round"] == 1).all()
    with session_scope(study) as session:
        sample = session.get(Sample, summary.sample_id)
        assert (sample.n_target, sample.seed, sample.rounds) == (100, 3, 1)
        assert sample.weights == PAPER_WEIGHTS.to_dict()


def test_allocation_follows_the_weights(study: Engine):
    plan = plan_allocation(study, 100, balance="none").set_index("stratum")
    assert plan["expected"].sum() == pytest.approx(100)
    assert plan["weight_sum"].tolist() == pytest.approx(PAPER_WEIGHTS.stratum_weights(plan.reset_index()).tolist())
    # MaXM (210 completions) weighs as much as XM3600 (604) in total.
    per_benchmark = plan.groupby("benchmark")["weight_sum"].sum()
    unit = plan["weight_sum"] / plan["population"]
    assert unit["MaXM|deu"] / unit["XM3600|deu"] == pytest.approx(604 / 210)
    assert unit["MaXM|deu"] / unit["MaXM|eng"] == pytest.approx(4)
    assert per_benchmark.index.tolist() == ["MaXM", "XM3600"]
    assert plan["probability"].mul(plan["population"]).sum() == pytest.approx(100)


def test_weights_can_come_as_a_mapping(study: Engine):
    plan = plan_allocation(study, 81, {"benchmark": {"balance": False}}, balance="none").set_index("stratum")
    # Unweighted: proportional to population (814 completions, 81 draws; urd raised to its one
    # completion, zho to two).
    assert plan.loc["XM3600|eng", "drawn"] == 38
    assert plan["drawn"].sum() == 81


def test_same_seed_same_sample(study: Engine):
    first = items_of(study, draw_sample(study, 60, seed=11, name="a").sample_id)
    again = items_of(study, draw_sample(study, 60, seed=11, name="b").sample_id)
    other = items_of(study, draw_sample(study, 60, seed=12, name="c").sample_id)
    columns = ["completion_id", "stratum", "queue_position", "double_annotate", "inclusion_probability"]
    pd.testing.assert_frame_equal(first[columns], again[columns])
    assert set(first["completion_id"]) != set(other["completion_id"])
    assert current_sample_id(study) == other["sample_id"].iat[0]


@pytest.mark.postgres
def test_same_seed_same_sample_on_both_backends(sqlite_engine, postgres_engine, completion_frame, insert_completions):
    """The draw orders ids in pandas, so it cannot depend on a backend's collation."""
    frame = completion_frame(COUNTS)
    frame["id"] = frame["id"].str.replace("-0", "-a", regex=False).str.swapcase()
    drawn = []
    for engine in (sqlite_engine, postgres_engine):
        insert_completions(engine, frame)
        drawn.append(
            items_of(engine, draw_sample(engine, 50, seed=9).sample_id)[
                ["completion_id", "queue_position", "double_annotate"]
            ]
        )
    pd.testing.assert_frame_equal(*drawn)


def test_draw_refuses_impossible_requests(engine: Engine, completion_frame, insert_completions):
    with pytest.raises(SamplingError, match="no completions"):
        draw_sample(engine, 10, seed=1)
    insert_completions(engine, completion_frame({("A", "deu"): 5, ("B", "eng"): 5, ("C", "hin"): 5}))
    with pytest.raises(SamplingError, match="below the 6 draws"):  # two per stratum
        draw_sample(engine, 2, seed=1)
    with pytest.raises(SamplingError, match="more than the 15"):
        draw_sample(engine, 16, seed=1)
    draw_sample(engine, 6, seed=1, name="one")
    with pytest.raises(SamplingError, match="exists already"):
        draw_sample(engine, 6, seed=1, name="one")
    with session_scope(engine) as session:  # nothing half-written by the refusals
        assert session.scalar(select(func.count()).select_from(SampleItem)) == 6


def test_draws_are_simple_random_samples_within_strata():
    """Every unit, every subset and every first-in-queue equally likely: an SRS in random order.

    Strata are drawn independently, so one draw over 600 copies of a 6-unit stratum (n_h = 2)
    and a 4-unit stratum (n_h = 1) gives 600 replicates; five seeds make 3000.
    """
    copies, reps = 600, 3000
    sizes, need = np.tile([6, 4], copies), np.tile([2, 1], copies)
    codes = np.repeat(np.arange(2 * copies), sizes)
    unit = np.concatenate([np.arange(size) for size in sizes])
    population = pd.DataFrame({"id": [f"c{i}" for i in range(len(codes))], "code": codes, "unit": unit})
    picks = pd.concat(
        [
            draws._draw(population, need, np.zeros_like(need), np.random.default_rng(seed)).assign(seed=seed)
            for seed in range(reps // copies)
        ]
    )
    six, four = picks[picks["code"] % 2 == 0], picks[picks["code"] % 2 == 1]
    pairs = six.sort_values("unit").groupby(["seed", "code"])["unit"].agg(tuple).value_counts()
    first = six[six["queue_position"] == 0]["unit"].value_counts()
    assert len(pairs) == len(list(combinations(range(6), 2)))
    # Binomial 4-sigma bands around n_h / N_h = 1/3 and 1/4, 1/15 per pair and 1/6 first in line.
    for share, counts in (
        (2 / 6, six["unit"].value_counts()),
        (1 / 4, four["unit"].value_counts()),
        (1 / 15, pairs),
        (1 / 6, first),
    ):
        assert np.all(np.abs(counts / reps - share) < 4 * np.sqrt(share * (1 - share) / reps))


# --- top-ups ------------------------------------------------------------------------------------


def test_top_up_keeps_items_and_updates_probabilities(study: Engine):
    first = draw_sample(study, 40, seed=5)
    before_items, before_strata = items_of(study, first.sample_id), strata_of(study, first.sample_id)

    summary = top_up(study, first.sample_id, n_total=90, seed=6)
    assert (summary.n, summary.added, summary.rounds) == (90, 50, 2)
    items, strata = items_of(study, first.sample_id), strata_of(study, first.sample_id)

    old = items.set_index("completion_id").loc[before_items["completion_id"]]
    assert (old["queue_position"].to_numpy() == before_items["queue_position"].to_numpy()).all()
    assert (old["round"] == 1).all() and (items["round"] == 2).sum() == 50
    assert (strata["drawn"] >= before_strata["drawn"]).all() and strata["drawn"].sum() == 90
    assert strata["expected"].sum() == pytest.approx(90)
    probability = strata["drawn"] / strata["population"]
    assert np.allclose(items["inclusion_probability"], items["stratum"].map(probability))
    assert (strata["population"] * probability).sum() == pytest.approx(90)
    # New items queue after the old ones: positions stay 0..n'_h-1 with round-1 items first.
    for _, group in items.groupby("stratum"):
        assert sorted(group["queue_position"]) == list(range(len(group)))
        old_last = group.loc[group["round"] == 1, "queue_position"].max()
        assert (group.loc[group["round"] == 2, "queue_position"] > old_last).all()
    assert items["double_annotate"].sum() == 9
    with session_scope(study) as session:
        sample = session.get(Sample, first.sample_id)
        assert (sample.n_target, sample.rounds) == (90, 2)

    again = top_up(study, None, n_more=10, seed=7)
    assert (again.n, again.rounds) == (100, 3)
    assert len(items_of(study, first.sample_id)) == 100


def test_rounds_are_recorded_and_replay_to_the_same_sample(
    study: Engine, tmp_path, completion_frame, insert_completions
):
    first = draw_sample(study, 40, seed=5)
    top_up(study, first.sample_id, n_total=90, seed=6)
    top_up(study, None, n_more=10, seed=7)
    rounds = sample_rounds(study)
    assert rounds[["round", "seed", "n_total", "added"]].values.tolist() == [
        [1, 5, 40, 40],
        [2, 6, 90, 50],
        [3, 7, 100, 10],
    ]

    # The recorded seeds and sizes rebuild the sample on another database with the same completions.
    replica = make_engine(f"sqlite:///{tmp_path / 'replica.sqlite'}")
    upgrade_database(replica)
    insert_completions(replica, completion_frame(COUNTS))
    replayed = draw_sample(replica, int(rounds["n_total"].iat[0]), seed=int(rounds["seed"].iat[0]))
    for row in rounds.iloc[1:].itertuples():
        top_up(replica, replayed.sample_id, n_total=int(row.n_total), seed=int(row.seed))
    columns = ["completion_id", "queue_position", "round", "inclusion_probability"]
    original = items_of(study, first.sample_id)[columns].sort_values("completion_id").reset_index(drop=True)
    rebuilt = items_of(replica, replayed.sample_id)[columns].sort_values("completion_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(original, rebuilt)


def test_top_up_refuses_what_would_break_the_design(study: Engine, completion_frame, insert_completions):
    sample_id = draw_sample(study, 40, seed=5).sample_id
    with pytest.raises(SamplingError, match="exactly one"):
        top_up(study, sample_id, n_total=50, n_more=5, seed=1)
    with pytest.raises(SamplingError, match="has 40 items already"):
        top_up(study, sample_id, n_total=40, seed=1)
    with pytest.raises(sampling.NoSampleError):
        top_up(study, sample_id + 1, n_total=50, seed=1)
    insert_completions(study, completion_frame({("MaXM", "fra"): 3}))
    with pytest.raises(SamplingError, match="completions changed"):
        top_up(study, sample_id, n_total=50, seed=1)
    assert len(items_of(study, sample_id)) == 40


# --- report -------------------------------------------------------------------------------------


def test_design_report_counts_labels_per_stratum(study: Engine, annotate):
    assert current_sample_id(study) is None
    with pytest.raises(sampling.NoSampleError):
        design_report(study)
    sample_id = draw_sample(study, 50, seed=2).sample_id
    items = items_of(study, sample_id).sort_values(["stratum", "queue_position"])
    labeled = items.groupby("stratum").head(1)
    for completion_id in labeled["completion_id"]:
        annotate(study, completion_id, "ann", "german", slot=1)
    report = design_report(study)
    assert list(report.columns) == [
        "stratum",
        "benchmark",
        "query_language",
        "population",
        "weight_sum",
        "expected",
        "drawn",
        "probability",
        "level",
        "cells",
        "double_annotate",
        "labeled",
    ]
    assert report["labeled"].tolist() == [1] * len(report) and len(report) == items["stratum"].nunique()
    assert report["drawn"].sum() == 50 and report["double_annotate"].sum() == 5
    assert report["probability"].tolist() == pytest.approx((report["drawn"] / report["population"]).tolist())
