"""The population part of the analysis frame, kept between calls: reused while only labels
change, read again exactly when completions, predictions or the sample change."""

from __future__ import annotations

import pandas as pd
import pytest
from population_support import COUNTS, fresh_frame, sampled
from sqlalchemy import Engine, insert

from annotator.analysis import frame as analysis
from annotator.analysis.frame import analysis_frame, cached_population, keep_population_cached, population_version
from annotator.design.draws import draw_sample, top_up
from db.models import Prediction


@pytest.fixture
def study(engine: Engine, completion_frame, insert_completions) -> Engine:
    insert_completions(engine, completion_frame(COUNTS))
    draw_sample(engine, 8, seed=1, weights={"benchmark": {"balance": False}})
    return engine


def test_a_new_label_reuses_the_population_and_shows_at_once(study: Engine, annotate):
    keep_population_cached(study)
    first = cached_population(study)
    items = sampled(study)
    annotate(study, items[0], "ann", "german", correct=True, slot=1)
    assert cached_population(study) is first  # labels do not touch the population
    frame = analysis_frame(study)
    assert frame["labeled"].sum() == 1
    pd.testing.assert_frame_equal(frame, fresh_frame(study))


def test_new_predictions_or_a_top_up_read_the_population_again(study: Engine, annotate):
    keep_population_cached(study)
    first = cached_population(study)
    item = sampled(study)[0]
    with study.begin() as connection:
        connection.execute(
            insert(Prediction).values(
                source="lid176", completion_id=item, language_class="german", predicted_fidelity=True
            )
        )
    second = cached_population(study)
    assert second is not first and second.version != first.version
    assert analysis_frame(study)["pred_fidelity"].notna().sum() == 1

    top_up(study, None, n_more=4, seed=2)
    third = cached_population(study)
    assert third is not second and int(third.frame["sampled"].sum()) == 12
    pd.testing.assert_frame_equal(analysis_frame(study), fresh_frame(study))


def test_an_import_reads_the_population_again(study: Engine, completion_frame, insert_completions):
    keep_population_cached(study)
    before = population_version(study)
    cached_population(study)
    insert_completions(study, completion_frame({("MaXM", "fra"): 2}))
    assert population_version(study) != before
    with pytest.warns(UserWarning, match="completions changed"):
        frame = analysis_frame(study)
    assert len(frame) == 22


def test_without_the_cache_every_call_reads_everything(study: Engine):
    assert cached_population(study) is not cached_population(study)


def test_the_change_stamp_moves_with_every_commit_on_sqlite(
    sqlite_engine: Engine, completion_frame, insert_completions, annotate, monkeypatch
):
    insert_completions(sqlite_engine, completion_frame(COUNTS))
    draw_sample(sqlite_engine, 8, seed=1, weights={"benchmark": {"balance": False}})
    keep_population_cached(sqlite_engine)
    first = cached_population(sqlite_engine)
    stamp = analysis.change_stamp(sqlite_engine)
    assert analysis.change_stamp(sqlite_engine) == stamp  # nothing committed: same stamp

    def no_version_read(engine):
        raise AssertionError("the version was read although nothing was committed")

    with monkeypatch.context() as patched:
        patched.setattr(analysis, "population_version", no_version_read)
        assert cached_population(sqlite_engine) is first
    annotate(sqlite_engine, sampled(sqlite_engine)[0], "ann", "german", slot=1)
    assert analysis.change_stamp(sqlite_engine) != stamp  # a label, committed elsewhere
    assert cached_population(sqlite_engine) is first  # read the version: the population is unchanged


def test_no_change_stamp_on_postgresql(postgres_engine: Engine):
    assert analysis.change_stamp(postgres_engine) is None
