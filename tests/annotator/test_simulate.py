"""Simulated annotators: real routing path, oracle truth with seeded slips, second labels, speed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from annotator.access.accounts import authenticate
from annotator.demo.annotators import SimulationError, simulate_annotators
from annotator.storage import make_engine, upgrade_database
from db.models import Annotation, AnnotationEvent, Annotator, Assignment, DemoOracle
from db.vocabulary import ANSWER_CLASSES, STUDY_LANGUAGES


def add_oracle(engine, items: pd.DataFrame, seed: int = 0) -> dict[str, tuple]:
    """Truth for every sampled item: mostly the query's own class, some English; mixed booleans and NA."""
    rng = np.random.default_rng(seed)
    truth = {}
    for row in items.itertuples():
        answer = STUDY_LANGUAGES[row.query_language] if rng.random() < 0.8 else "english"
        truth[row.completion_id] = (answer, [True, False, None][rng.integers(3)], bool(rng.integers(2)))
    with engine.begin() as connection:
        connection.execute(
            insert(DemoOracle),
            [
                {"completion_id": c, "answer_language": a, "matches_gold": m, "correct": k}
                for c, (a, m, k) in truth.items()
            ],
        )
    return truth


def stored_labels(engine) -> pd.DataFrame:
    with Session(engine) as session:
        rows = session.execute(
            select(
                Annotation.completion_id,
                Annotator.name,
                Annotation.answer_language,
                Annotation.matches_gold,
                Annotation.correct,
                Annotation.seconds_spent,
                Assignment.slot,
            )
            .join(Annotator, Annotator.id == Annotation.annotator_id)
            .join(Assignment, Assignment.id == Annotation.assignment_id)
        ).all()
    return pd.DataFrame(
        rows, columns=["completion_id", "name", "answer_language", "matches_gold", "correct", "seconds_spent", "slot"]
    )


def test_refuses_without_sample_or_oracle(engine, make_study, db_snapshot, row_count):
    with pytest.raises(SimulationError, match="no sample has been drawn"):
        simulate_annotators(engine)
    make_study(engine, {("mmmu", "deu"): 3})
    before = db_snapshot(engine)
    with pytest.raises(SimulationError, match="demo_oracle table is empty"):
        simulate_annotators(engine)
    assert db_snapshot(engine) == before and row_count(engine, Annotator) == 0


def test_labels_everything_like_careful_annotators(engine, make_study):
    items = make_study(engine, {("mmmu", "deu"): 30, ("mmmu", "tha"): 12, ("xm", "eng"): 18}, double_share=0.2)
    truth = add_oracle(engine, items)
    n_double = int(items["double_annotate"].sum())
    assert simulate_annotators(engine, error_rate=0.0) == len(items), "items, not labels"
    assert len(stored_labels(engine)) == len(items) + n_double
    labels = stored_labels(engine)
    assert sorted(Counter(labels["completion_id"]).items()) == sorted(
        (row.completion_id, 1 + row.double_annotate) for row in items.itertuples()
    )
    for row in labels.itertuples():
        assert (row.answer_language, row.matches_gold, row.correct) == truth[row.completion_id]
        assert row.name.startswith(f"sim-{items.set_index('completion_id').loc[row.completion_id, 'query_language']}-")
        assert 3 <= row.seconds_spent <= 600
    pairs = labels[labels["completion_id"].duplicated(keep=False)]
    assert (pairs.groupby("completion_id")["name"].nunique() == 2).all(), "second labels by a different person"
    assert authenticate(engine, "sim-deu-1", "") is None, "simulated accounts cannot log in"
    with Session(engine) as session:
        assert Counter(session.scalars(select(Assignment.status))) == {"submitted": len(labels)}
        creates = select(func.count()).select_from(AnnotationEvent).where(AnnotationEvent.action == "create")
        assert session.scalar(creates) == len(labels)
    assert simulate_annotators(engine) == 0, "nothing left"


def test_a_partial_run_spreads_over_languages_and_completes_pairs(engine, make_study):
    items = make_study(engine, {("mmmu", "deu"): 40, ("mmmu", "eng"): 20, ("mmmu", "tha"): 10}, double_share=0.3)
    add_oracle(engine, items)
    assert simulate_annotators(engine, n=30) == 30
    labels = stored_labels(engine)
    first = labels[labels["slot"] == 1]
    assert len(first) == 30
    double = set(items.loc[items["double_annotate"], "completion_id"])
    assert set(labels.loc[labels["slot"] == 2, "completion_id"]) == double & set(first["completion_id"])
    language = items.set_index("completion_id")["query_language"]
    shares = first["completion_id"].map(language).value_counts() / items["query_language"].value_counts()
    assert shares.notna().all() and shares.max() - shares.min() <= 0.2, shares.to_dict()
    with Session(engine) as session:
        assert set(session.scalars(select(Assignment.status))) <= {"submitted", "released"}
    simulate_annotators(engine)
    assert len(stored_labels(engine)) == len(items) + len(double)


def test_slips_follow_the_error_rate_and_the_seed(tmp_path, make_study):
    runs = []
    for name in ("one", "two"):
        engine = make_engine(f"sqlite:///{tmp_path / name}.sqlite")
        upgrade_database(engine)
        items = make_study(engine, {("mmmu", "deu"): 150, ("mmmu", "eng"): 150}, double_share=0)
        truth = add_oracle(engine, items)
        simulate_annotators(engine, error_rate=0.2, seed=5)
        runs.append(stored_labels(engine).sort_values("completion_id").reset_index(drop=True))
        engine.dispose()
    pd.testing.assert_frame_equal(runs[0], runs[1])
    labels = runs[0]
    wrong = {
        question: np.mean([getattr(row, question) != truth[row.completion_id][k] for row in labels.itertuples()])
        for k, question in enumerate(("answer_language", "matches_gold", "correct"))
    }
    for question, rate in wrong.items():
        assert 0.12 < rate < 0.28, (question, rate)
    assert set(labels["answer_language"]) <= set(ANSWER_CLASSES)


def test_a_thousand_items_in_a_few_transactions(engine, make_study):
    """Labels are written in batches: one transaction per label cost about 10 s of CPU for a
    thousand items. Counted, not timed (timings belong in benchmarks/)."""
    items = make_study(engine, {(b, lang): 36 for b in ("mmmu", "xm") for lang in STUDY_LANGUAGES}, double_share=0.1)
    add_oracle(engine, items)
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(engine, "commit", count)
    try:
        labels = simulate_annotators(engine)
    finally:
        event.remove(engine, "commit", count)
    assert labels == len(items)
    assert len(stored_labels(engine)) == len(items) + int(items["double_annotate"].sum())
    # Claims and labels go in batches (one per annotator and stratum round): 178 here.
    assert len(commits) < labels / 4, f"{len(commits)} transactions for {labels} items"
