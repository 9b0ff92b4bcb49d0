"""Implicit stratification (``balance="implicit"``, the paper allocation's default): benchmark x
language strata, systematic selection over the model x image sort, a nested queue order.

What the design promises, each checked here: every prefix of a stratum's queue holds each of
its completions with probability exactly ``l / N_h`` (a seeded simulation of the draw), top-ups
keep that, every prefix of the labels given through routing spreads over the arms in proportion,
and the CLI names the choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, select

from annotator.analysis.frame import analysis_frame
from annotator.annotation.routing import claim_batch, submit
from annotator.cli import main
from annotator.design.draws import _draw, draw_sample, nested_order, top_up
from annotator.design.report import design_report
from annotator.design.sampling import SamplingError
from db.models import Sample, SampleItem

MODELS = ("m1", "m2", "m3")
COUNTS = {("MaXM", "deu"): 600, ("MaXM", "ron"): 600, ("ViSIT", "deu"): 1200, ("ViSIT", "urd"): 12}


@pytest.fixture
def study(engine: Engine, completion_frame, insert_completions) -> Engine:
    insert_completions(engine, completion_frame(COUNTS, models=MODELS))
    return engine


def items_with_arms(engine: Engine, sample_id: int) -> pd.DataFrame:
    frame = analysis_frame(engine, sample_id)[["completion_id", "model", "image", "stratum"]]
    with engine.connect() as connection:
        items = pd.read_sql(select(SampleItem).where(SampleItem.sample_id == sample_id), connection)
    return items.merge(frame, on="completion_id", suffixes=("", "_frame"))


@pytest.mark.parametrize("n", range(1, 40))
def test_nested_order_is_a_queue_whose_every_prefix_is_spread_over_the_circle(n: int) -> None:
    rank = nested_order(n)
    assert sorted(rank) == list(range(n))
    queue = np.argsort(rank)
    for length in range(1, n + 1):
        points = np.sort(queue[:length])
        gaps = np.diff(np.append(points, points[0] + n))
        assert gaps.max() <= 2 * n / length + 1e-9, (n, length, points)


def test_every_prefix_of_a_systematic_queue_has_exact_inclusion_probabilities() -> None:
    """4,000 seeded draws of two strata (13 and 7 rows, sorted into uneven arms), then a top-up
    from the rest: the share of draws in which each row is among the first ``l`` of its
    stratum's queue matches ``l / N_h`` for every ``l``, within 4.5 standard errors."""
    sizes, need, more = np.array([13, 7]), np.array([5, 3]), np.array([4, 2])
    population = pd.DataFrame(
        {
            "id": np.arange(sizes.sum()),
            "code": np.repeat([0, 1], sizes),
            "order": np.r_[[0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2], [0, 1, 1, 1, 1, 1, 2]],
        }
    )
    reps = 4000
    rng = np.random.default_rng(20261130)
    total = need + more
    hits = np.zeros((len(population), int(total.max())))  # row x prefix length
    ids = population["id"].to_numpy()  # also the row's position
    for _ in range(reps):
        first = _draw(population, need, np.zeros(2, dtype=np.int64), rng, systematic=True)
        rest = population[~np.isin(ids, first["id"].to_numpy())].reset_index(drop=True)
        second = _draw(rest, more, need, rng, systematic=True)
        # The two draws' items as arrays: bookkeeping in pandas took twice as long as the draws.
        picked, codes, positions = (
            np.concatenate([first[column].to_numpy(), second[column].to_numpy()])
            for column in ("id", "code", "queue_position")
        )
        assert len(np.unique(picked)) == len(picked)
        for code in (0, 1):
            in_stratum = codes == code
            order = np.argsort(positions[in_stratum])
            assert positions[in_stratum][order].tolist() == list(range(total[code]))
            queue = picked[in_stratum][order]
            for length in range(1, total[code] + 1):
                hits[queue[:length], length - 1] += 1
    for code in (0, 1):
        rows = population.index[population["code"] == code]
        for length in range(1, total[code] + 1):
            expected = length / sizes[code]
            tolerance = 4.5 * np.sqrt(expected * (1 - expected) / reps) + 1e-12
            observed = hits[rows, length - 1] / reps
            assert np.abs(observed - expected).max() <= tolerance, (code, length, observed)


def test_paper_allocation_defaults_to_benchmark_language_strata_with_exact_probabilities(study: Engine) -> None:
    summary = draw_sample(study, 120, seed=4)
    with study.connect() as connection:
        design = connection.scalar(select(Sample.design).where(Sample.id == summary.sample_id))
    assert design["balance"] == "implicit" and design["selection"] == "systematic"
    report = design_report(study, summary.sample_id)
    assert set(report["stratum"]) == {"MaXM|deu", "MaXM|ron", "ViSIT|deu", "ViSIT|urd"}
    assert report["level"].eq("benchmark x language, systematic by arm").all()
    items = items_with_arms(study, summary.sample_id)
    by_stratum = report.set_index("stratum")
    assert np.allclose(
        items["inclusion_probability"],
        items["stratum"].map(by_stratum["drawn"] / by_stratum["population"]),
    )
    # Arms of equal size inside a stratum get the same number of draws, give or take one.
    for _, stratum in items.groupby("stratum"):
        assert np.ptp(stratum.groupby(["model", "image"]).size()) <= 1


def test_labels_given_through_routing_reach_every_arm_in_proportion_at_every_point(study: Engine, add_account):
    sample_id = draw_sample(study, 120, seed=2).sample_id
    annotator = add_account(study, "reader", "deu,ron,urd")
    items = items_with_arms(study, sample_id).set_index("completion_id")
    arm = items["stratum"] + "|" + items["model"] + "|" + items["image"].astype(str)
    planned = arm.value_counts()
    strata = items["stratum"].value_counts()
    given: list[str] = []
    while len(given) < len(items):
        claimed = claim_batch(study, annotator, 7)
        assert claimed
        for item in claimed:
            submit(study, annotator, item.completion_id, "german", True, True)
            given.append(item.completion_id)
        # Inside each stratum, the labels so far are the first of its queue ...
        done = items.loc[given]
        for stratum, rows in done.groupby("stratum"):
            assert sorted(rows["queue_position"]) == list(range(len(rows))), stratum
        # ... so each arm has its share of its stratum's labels so far, give or take two (1.7 seen).
        labeled = arm.loc[given].value_counts().reindex(planned.index, fill_value=0)
        share = done["stratum"].value_counts().reindex(strata.index, fill_value=0) / strata
        due = planned * planned.index.str.rsplit("|", n=2).str[0].map(share).to_numpy()
        assert (np.abs(labeled - due) <= 2).all(), len(given)


def test_top_up_keeps_the_systematic_design(study: Engine) -> None:
    sample_id = draw_sample(study, 60, seed=3).sample_id
    before = items_with_arms(study, sample_id)
    top_up(study, sample_id, n_total=120, seed=9)
    after = items_with_arms(study, sample_id)
    report = design_report(study, sample_id).set_index("stratum")
    assert len(after) == 120 and set(before["completion_id"]) < set(after["completion_id"])
    assert np.allclose(after["inclusion_probability"], after["stratum"].map(report["drawn"] / report["population"]))
    for stratum, rows in after.groupby("stratum"):
        assert sorted(rows["queue_position"]) == list(range(len(rows))), stratum
        old = rows["completion_id"].isin(before["completion_id"])
        assert (rows.loc[~old, "queue_position"] >= old.sum()).all()  # new items queue after the old


def test_cli_balance_flag_and_the_surrogate_allocation_needs_arms(study: Engine, capsys) -> None:
    url = study.url.render_as_string(hide_password=False)
    if study.dialect.name != "sqlite":
        pytest.skip("the CLI takes a URL; a test's own PostgreSQL schema is set on its engine, not in the URL")
    main(["--db", url, "sample", "--n", "60", "--seed", "1", "--balance", "arms", "--report"])
    assert "model x image" in capsys.readouterr().out
    main(["--db", url, "sample", "--n", "60", "--seed", "2", "--report"])
    assert "systematic by arm" in capsys.readouterr().out
    with pytest.raises(SamplingError, match="balance 'arms'"):
        draw_sample(study, 60, seed=3, allocation="surrogate", balance="implicit")
