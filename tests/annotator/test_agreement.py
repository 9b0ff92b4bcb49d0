"""Resolved labels (the contract estimation uses), agreement figures, and adjudication."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from annotator.annotation.agreement import AdjudicationError, adjudicate, adjudication_queue, agreement_table
from annotator.annotation.errors import InvalidLabelError
from annotator.annotation.labels import RESOLVED_COLUMNS, resolved_labels
from annotator.annotation.routing import claim_next, submit
from annotator.storage import session_scope
from db.models import Annotation, AnnotationEvent, Assignment, SampleItem, utcnow

GERMAN, ENGLISH = ("german", True, True), ("english", True, True)


def label_all(engine, annotator_id, labels):
    """The annotator labels every item routing gives them, with ``labels[completion_id]``."""
    while (item := claim_next(engine, annotator_id)) is not None:
        submit(engine, annotator_id, item.completion_id, *labels[item.completion_id])


@pytest.fixture
def pairs(engine, make_study, add_account):
    """14 doubly annotated items: 10 German (some disagreements), 4 English (full agreement).

    German pairs: answer_language agrees on 8 of 10; matches_gold is (T,T) x5, (NA,NA) x3,
    (T,NA) x2, so 80 % agreement, kappa 0.6 and alpha 1 - 19*4/(2*12*8).
    """
    items = make_study(engine, {("mmmu", "deu"): 10, ("mmmu", "eng"): 4}, double_share=1.0)
    german = sorted(items.loc[items["query_language"] == "deu", "completion_id"])
    english = sorted(items.loc[items["query_language"] == "eng", "completion_id"])
    first, second = {}, {}
    for k, completion_id in enumerate(german):
        matches = [(True, True)] * 5 + [(None, None)] * 3 + [(True, None)] * 2
        answers = ["german"] * 8 + ["english"] * 2
        first[completion_id] = ("german", matches[k][0], True)
        second[completion_id] = (answers[(k + 3) % 10], matches[k][1], True)
    for completion_id in english:
        first[completion_id] = second[completion_id] = ENGLISH
    ana, ben = add_account(engine, "ana", "de,en"), add_account(engine, "ben", "de,en")
    label_all(engine, ana, first)
    label_all(engine, ben, second)
    disagreeing = {c for c in german if first[c] != second[c]}
    return {
        "first": first,
        "second": second,
        "disagreeing": disagreeing,
        "german": german,
        "english": english,
        "researcher": add_account(engine, "rita", "", role="researcher"),
        "ana": ana,
    }


def test_resolved_labels_contract(engine, pairs):
    with session_scope(engine) as session:
        resolved = resolved_labels(session)
    assert list(resolved.columns) == RESOLVED_COLUMNS
    assert len(resolved) == 14 and resolved["completion_id"].is_unique
    by_id = resolved.set_index("completion_id")
    for completion_id, label in pairs["first"].items():
        row = by_id.loc[completion_id]
        assert (row["answer_language"], row["matches_gold"], row["correct"]) == label, "the primary (slot-1) label"
        assert row["disagreement"] == (completion_id in pairs["disagreeing"])
    assert (by_id["n_annotations"] == 2).all() and not by_id["adjudicated"].any()
    na = by_id.loc[pairs["german"][5], "matches_gold"]
    assert na is None, "NA stays None, not NaN"
    assert (by_id["first_labeled_at"] <= by_id["last_labeled_at"]).all()
    assert str(by_id["first_labeled_at"].dt.tz) == "UTC"


def test_adjudication_wins_and_leaves_the_queue(engine, pairs, db_snapshot):
    queue = adjudication_queue(engine)
    assert set(queue["completion_id"]) == pairs["disagreeing"]
    target = queue.iloc[0]
    assert sorted(label["annotator"] for label in target["labels"]) == ["ana", "ben"]
    assert "prediction" not in " ".join(queue.columns), "adjudicators see no surrogate"
    adjudicate(engine, pairs["researcher"], target["completion_id"], "english", False, None, comment="read it twice")
    with session_scope(engine) as session:
        row = resolved_labels(session).set_index("completion_id").loc[target["completion_id"]]
    assert (row["answer_language"], row["matches_gold"], row["correct"]) == ("english", False, None)
    assert row["adjudicated"] and row["disagreement"], "still flagged: the annotators did disagree"
    assert target["completion_id"] not in set(adjudication_queue(engine)["completion_id"])
    adjudicate(engine, pairs["researcher"], target["completion_id"], "german", True, True)
    with Session(engine) as session:
        events = session.scalars(
            select(AnnotationEvent).where(AnnotationEvent.action == "adjudicate").order_by(AnnotationEvent.id)
        ).all()
    assert [e.before for e in events] == [
        None,
        {"answer_language": "english", "matches_gold": False, "correct": None, "comment": "read it twice"},
    ]
    assert events[1].after["answer_language"] == "german" and events[1].actor_id == pairs["researcher"]


@pytest.mark.parametrize("case", ["annotator role", "unknown researcher", "no labels", "bad class"])
def test_adjudication_refusals_change_nothing(engine, pairs, db_snapshot, case):
    completion_id = min(pairs["disagreeing"])
    calls = {
        "annotator role": (
            lambda: adjudicate(engine, pairs["ana"], completion_id, "german", True, True),
            AdjudicationError,
            "only researchers and admins",
        ),
        "unknown researcher": (
            lambda: adjudicate(engine, 999, completion_id, "german", True, True),
            AdjudicationError,
            "no active account",
        ),
        "no labels": (
            lambda: adjudicate(engine, pairs["researcher"], "nope", "german", True, True),
            AdjudicationError,
            "no labels to adjudicate",
        ),
        "bad class": (
            lambda: adjudicate(engine, pairs["researcher"], completion_id, "Deutsch", True, True),
            InvalidLabelError,
            "not a class",
        ),
    }
    call, error, message = calls[case]
    before = db_snapshot(engine)
    with pytest.raises(error, match=message):
        call()
    assert db_snapshot(engine) == before


def test_agreement_table(engine, pairs):
    table = agreement_table(engine).set_index(["question", "query_language"])
    assert list(table.columns) == ["n_items", "percent_agreement", "cohen_kappa", "krippendorff_alpha"]
    assert set(table.index) == {
        (q, lang) for q in ("answer_language", "matches_gold", "correct") for lang in ("all", "deu", "eng")
    }
    german_matches = table.loc[("matches_gold", "deu")]
    assert german_matches["n_items"] == 10
    assert german_matches["percent_agreement"] == pytest.approx(80.0)
    assert german_matches["cohen_kappa"] == pytest.approx(0.6)
    assert german_matches["krippendorff_alpha"] == pytest.approx(1 - 19 * 4 / (2 * 12 * 8))
    assert table.loc[("answer_language", "deu"), "percent_agreement"] == pytest.approx(80.0)
    assert table.loc[("answer_language", "all"), "n_items"] == 14
    assert table.loc[("answer_language", "all"), "percent_agreement"] == pytest.approx(100 * 12 / 14)
    constant = table.loc[("correct", "all")]
    assert constant["percent_agreement"] == 100.0
    assert math.isnan(constant["cohen_kappa"]) and math.isnan(constant["krippendorff_alpha"]), "undefined, not 1"


def test_agreement_is_empty_without_pairs(engine, make_study, add_account):
    make_study(engine, {("mmmu", "deu"): 2}, double_share=0)
    assert agreement_table(engine).empty
    ana = add_account(engine, "ana", "de")
    label_all(engine, ana, {c: GERMAN for c in ("mmmu-deu-0000000", "mmmu-deu-0000001")})
    assert agreement_table(engine).empty and adjudication_queue(engine).empty


def test_the_slot_1_label_is_primary_even_if_made_later(engine, make_study, add_account):
    items = make_study(engine, {("mmmu", "deu"): 1}, double_share=1.0)
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    completion_id = items.loc[0, "completion_id"]
    now = utcnow()
    with Session(engine) as session, session.begin():
        item_id = session.scalar(select(SampleItem.id))
        for slot, who, answer, at in ((2, ben, "english", now - timedelta(hours=1)), (1, ana, "german", now)):
            assignment = Assignment(
                sample_item_id=item_id,
                slot=slot,
                annotator_id=who,
                status="submitted",
                claimed_at=at,
                lease_expires_at=at,
                finished_at=at,
            )
            session.add(assignment)
            session.flush()
            session.add(
                Annotation(
                    completion_id=completion_id,
                    annotator_id=who,
                    assignment_id=assignment.id,
                    answer_language=answer,
                    matches_gold=True,
                    correct=None,
                    created_at=at,
                    updated_at=at,
                )
            )
    with session_scope(engine) as session:
        row = resolved_labels(session).iloc[0]
    assert row["answer_language"] == "german" and row["disagreement"]
    assert row["first_labeled_at"] < row["last_labeled_at"]


def test_resolved_labels_filters_by_sample(engine, pairs):
    with session_scope(engine) as session:
        sample_id = session.scalar(select(SampleItem.sample_id))
        assert len(resolved_labels(session, sample_id)) == 14
        assert resolved_labels(session, sample_id + 1).empty
        empty = resolved_labels(session, sample_id + 1)
        full = resolved_labels(session, sample_id)
    assert list(empty.columns) == RESOLVED_COLUMNS
    assert empty.dtypes.to_dict() == full.dtypes.to_dict(), "typed alike, so callers need no special case"


def test_resolved_labels_is_fast_for_2000_annotations(engine, make_study, add_account):
    items = make_study(engine, {("mmmu", "deu"): 1800}, double_share=0)
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    now = utcnow()
    with Session(engine) as session, session.begin():
        item_ids = dict(session.execute(select(SampleItem.completion_id, SampleItem.id)).all())
        rows = [
            {
                "sample_item_id": item_ids[c],
                "slot": 1,
                "annotator_id": ana,
                "status": "submitted",
                "claimed_at": now,
                "lease_expires_at": now,
            }
            for c in items["completion_id"]
        ]
        rows += [{**row, "slot": 2, "annotator_id": ben} for row in rows[:200]]
        assignment_ids = session.scalars(
            insert(Assignment).returning(Assignment.id, sort_by_parameter_order=True), rows
        ).all()
        by_item = {v: k for k, v in item_ids.items()}
        session.execute(
            insert(Annotation),
            [
                {
                    "completion_id": by_item[row["sample_item_id"]],
                    "annotator_id": row["annotator_id"],
                    "assignment_id": assignment_id,
                    "answer_language": "german" if k % 7 else "english",
                    "matches_gold": bool(k % 3),
                    "correct": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for k, (row, assignment_id) in enumerate(zip(rows, assignment_ids, strict=True))
            ],
        )
    statements: list[str] = []

    def listener(connection, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        with session_scope(engine) as session:
            resolved = resolved_labels(session)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(resolved) == 1800 and resolved["n_annotations"].sum() == 2000
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 2
