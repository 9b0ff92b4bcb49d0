"""Routing: language routing, queue order, leases, second labels, blinding, refusals, revisions."""

from __future__ import annotations

import dataclasses
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from annotator.annotation import queue, routing
from annotator.annotation.answers import Label
from annotator.annotation.errors import (
    AlreadySubmittedError,
    InvalidLabelError,
    LanguageNotReadError,
    NotHeldError,
    NotInSampleError,
    RoutingError,
    UnknownAnnotatorError,
)
from annotator.annotation.queue import aware_utc
from annotator.annotation.reporting import QueueState, progress, queue_status, unroutable_languages
from annotator.annotation.revisions import revise, undo_last
from annotator.annotation.routing import (
    ClaimedItem,
    claim_batch,
    claim_next,
    release,
    skip,
    submit,
    submit_batch,
)
from annotator.storage import make_engine, upgrade_database
from db.models import Annotation, AnnotationEvent, Assignment, Prediction, utcnow

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def label(engine, annotator_id, completion_id, answer="german", matches_gold=True, correct=None, **extra):
    return submit(engine, annotator_id, completion_id, answer, matches_gold, correct, **extra)


def drain(engine, annotator_id, now=None):
    """Claim and label until the queue is empty; the completion ids in the order given."""
    order = []
    while (item := claim_next(engine, annotator_id, now=now)) is not None:
        label(engine, annotator_id, item.completion_id)
        order.append(item.completion_id)
    return order


def test_only_items_in_languages_the_annotator_reads(engine, make_study, add_account):
    items = make_study(engine, {("mmmu", "deu"): 4, ("mmmu", "eng"): 3, ("mmmu", "tha"): 2}, double_share=0)
    reader = add_account(engine, "ana", "de,th")
    order = drain(engine, reader)
    language = dict(zip(items["completion_id"], items["query_language"], strict=True))
    assert sorted(order) == sorted(items.loc[items["query_language"] != "eng", "completion_id"])
    assert {language[completion_id] for completion_id in order} == {"deu", "tha"}


def test_queue_order_is_by_position_within_and_lowest_taken_share_across_strata(engine, make_study, add_account):
    items = make_study(engine, {("a", "deu"): 9, ("b", "deu"): 3, ("c", "eng"): 4}, double_share=0)
    reader = add_account(engine, "ana", "de,en")
    order = drain(engine, reader)
    assert len(order) == 16
    position = items.set_index("completion_id")
    sizes = items.groupby("stratum").size()
    taken = dict.fromkeys(sizes.index, 0)
    for completion_id in order:
        stratum = position.loc[completion_id, "stratum"]
        open_strata = [name for name in sizes.index if taken[name] < sizes[name]]
        # First items first (largest strata first), then Sainte-Lague; ties by CRC-32, not by name.
        lowest = min(
            open_strata,
            key=lambda name: (taken[name] > 0, (taken[name] + 0.5) / sizes[name], zlib.crc32(name.encode())),
        )
        assert stratum == lowest
        expected = position[position["stratum"] == stratum].sort_values("queue_position").index[taken[stratum]]
        assert completion_id == expected, "within a stratum, ascending queue_position"
        taken[stratum] += 1


def test_a_held_claim_comes_back_renewed(engine, make_study, add_account):
    make_study(engine, {("mmmu", "deu"): 3})
    ana = add_account(engine, "ana", "de")
    first = claim_next(engine, ana, now=T0)
    again = claim_next(engine, ana, now=T0 + timedelta(minutes=20))
    assert again.completion_id == first.completion_id
    assert first.lease_expires_at == T0 + routing.DEFAULT_LEASE
    assert again.lease_expires_at == T0 + timedelta(minutes=20) + routing.DEFAULT_LEASE
    with Session(engine) as session:
        assert len(session.scalars(select(Assignment)).all()) == 1


def test_an_expired_lease_returns_the_item(engine, make_study, add_account):
    make_study(engine, {("mmmu", "deu"): 1})
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    held = claim_next(engine, ana, lease=timedelta(minutes=10), now=T0)
    assert claim_next(engine, ben, now=T0 + timedelta(minutes=9)) is None
    assert progress(engine, ben, now=T0 + timedelta(minutes=9)).state is QueueState.HELD_BY_OTHERS
    taken = claim_next(engine, ben, now=T0 + timedelta(minutes=11))
    assert taken.completion_id == held.completion_id
    with pytest.raises(NotHeldError, match="someone else took it over"):
        label(engine, ana, held.completion_id)
    label(engine, ben, held.completion_id)
    with Session(engine) as session:
        assert session.execute(select(Annotation.annotator_id)).scalars().all() == [ben]


def test_an_expired_claim_nobody_took_can_still_be_submitted(engine, make_study, add_account):
    make_study(engine, {("mmmu", "deu"): 1})
    ana = add_account(engine, "ana", "de")
    held = claim_next(engine, ana, lease=timedelta(seconds=1), now=T0)
    label(engine, ana, held.completion_id)  # long after T0 + 1 s
    assert progress(engine, ana).state is QueueState.ALL_DONE


def test_second_labels_go_to_someone_else_and_come_first(engine, make_study, add_account, row_count):
    items = make_study(engine, {("mmmu", "deu"): 6}, double_share=0.5, seed=3)
    double = set(items.loc[items["double_annotate"], "completion_id"])
    assert 0 < len(double) < 6
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    first = drain(engine, ana)
    assert sorted(first) == sorted(items["completion_id"])
    mine = progress(engine, ana)
    assert mine.state is QueueState.ALL_DONE and mine.left_in_my_languages == len(double)
    assert "need someone else" in mine.message
    second = drain(engine, ben)
    assert sorted(second) == sorted(double)
    with Session(engine) as session:
        slots = session.execute(select(Assignment.slot, Assignment.annotator_id, Assignment.status)).all()
    assert sorted(slots) == sorted([(1, ana, "submitted")] * 6 + [(2, ben, "submitted")] * len(double))
    assert row_count(engine, Annotation) == 6 + len(double)


def test_open_second_labels_are_offered_before_new_items(engine, make_study, add_account):
    items = make_study(engine, {("mmmu", "deu"): 12}, double_share=0.5, seed=1)
    double = set(items.loc[items["double_annotate"], "completion_id"])
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    by_ana = []
    for _ in range(6):
        by_ana.append(claim_next(engine, ana).completion_id)
        label(engine, ana, by_ana[-1])
    waiting = [completion_id for completion_id in by_ana if completion_id in double]
    assert waiting, "the seed gives ana some double-annotated items"
    by_ben = []
    for _ in range(len(waiting) + 1):
        by_ben.append(claim_next(engine, ben).completion_id)
        label(engine, ben, by_ben[-1])
    assert sorted(by_ben[:-1]) == sorted(waiting)
    assert by_ben[-1] not in by_ana, "then new items"


def test_skip_and_release(engine, make_study, add_account):
    make_study(engine, {("mmmu", "deu"): 1})
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    item = claim_next(engine, ana)
    skip(engine, ana, item.completion_id)
    assert claim_next(engine, ana) is None, "not offered again to whoever skipped it"
    assert progress(engine, ana).skipped_by_me == 1
    taken = claim_next(engine, ben)
    assert taken.completion_id == item.completion_id
    assert release(engine, ben, taken.completion_id) == 1
    assert claim_next(engine, ben).completion_id == item.completion_id, "a released item may come back"
    assert release(engine, ben) == 1
    assert queue_status(engine).loc[0, "held"] == 0


def test_claimed_item_is_blind_to_surrogates_and_other_labels(engine, make_study, add_account):
    items = make_study(engine, {("mmmu", "deu"): 2})
    with engine.begin() as connection:
        connection.execute(
            insert(Prediction),
            [
                {"completion_id": completion_id, "source": "lid176", "language_class": "german", "created_at": utcnow()}
                for completion_id in items["completion_id"]
            ],
        )
    ana = add_account(engine, "ana", "de")
    assert {field.name for field in dataclasses.fields(ClaimedItem)} == {
        "completion_id",
        "prompt",
        "image_path",
        "image_url",
        "gold_answer",
        "completion",
        "query_language",
        "lease_expires_at",
    }
    statements: list[str] = []

    def listener(connection, cursor, statement, *args) -> None:
        statements.append(statement.lower())

    event.listen(engine, "before_cursor_execute", listener)
    try:
        item = claim_next(engine, ana)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert statements
    for forbidden in ("predictions", "adjudications", "demo_oracle", "annotation_events"):
        assert not any(forbidden in statement for statement in statements), forbidden
    assert item.prompt == f"prompt of {item.completion_id}" and item.gold_answer == "gold"


# ----------------------------------------------------------------------------- refusals


@pytest.fixture
def refusal_study(engine, make_study, add_account, insert_completions, completion_frame):
    """ana reads German and holds one German item; ben reads English; one completion is unsampled."""
    items = make_study(engine, {("mmmu", "deu"): 3, ("mmmu", "eng"): 2}, double_share=0)
    insert_completions(engine, completion_frame({("other", "deu"): 1}))
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "en")
    done = claim_next(engine, ana)
    label(engine, ana, done.completion_id)
    held = claim_next(engine, ana)
    german = items.loc[items["query_language"] == "deu", "completion_id"]
    not_held = next(c for c in german if c not in (held.completion_id, done.completion_id))
    return {
        "ana": ana,
        "ben": ben,
        "held": held.completion_id,
        "done": done.completion_id,
        "not_held": not_held,
        "english": items.loc[items["query_language"] == "eng", "completion_id"].iloc[0],
        "unsampled": "other-deu-0000000",
    }


REFUSALS = {
    "unknown annotator": (lambda e, s: label(e, 999, s["held"]), UnknownAnnotatorError, "no annotator with id 999"),
    "annotator id not a number": (
        lambda e, s: label(e, "ana", s["held"]),
        UnknownAnnotatorError,
        "not an annotator id",
    ),
    "language not read": (lambda e, s: label(e, s["ben"], s["held"]), LanguageNotReadError, "not among your languages"),
    "not in the sample": (
        lambda e, s: label(e, s["ana"], s["unsampled"]),
        NotInSampleError,
        "not in the active sample",
    ),
    "no such completion": (lambda e, s: label(e, s["ana"], "nope"), NotInSampleError, "'nope' is not in the active"),
    "not held": (lambda e, s: label(e, s["ana"], s["not_held"]), NotHeldError, "you have not claimed it"),
    "class outside the classes": (
        lambda e, s: label(e, s["ana"], s["held"], answer="klingon"),
        InvalidLabelError,
        "choose one of chinese",
    ),
    "boolean as text": (
        lambda e, s: label(e, s["ana"], s["held"], matches_gold="yes"),
        InvalidLabelError,
        "matches_gold must be true, false or NA",
    ),
    "negative time": (
        lambda e, s: label(e, s["ana"], s["held"], seconds_spent=-1),
        InvalidLabelError,
        "seconds_spent must be a finite number >= 0",
    ),
    "double submit": (lambda e, s: label(e, s["ana"], s["done"]), AlreadySubmittedError, "already labeled"),
    "batch with one bad label": (
        lambda e, s: submit_batch(
            e, s["ana"], [Label(s["held"], "german", True, None), Label(s["not_held"], "german", True, None)]
        ),
        NotHeldError,
        "you do not hold",
    ),
    "skip what is not held": (lambda e, s: skip(e, s["ana"], s["not_held"]), NotHeldError, "you do not hold"),
    "release in a language not read": (lambda e, s: release(e, s["ben"], s["held"]), LanguageNotReadError, "deu"),
    "revise what was never labeled": (
        lambda e, s: revise(e, s["ana"], s["held"], "german", True, None),
        NotHeldError,
        "no label on",
    ),
    "claim by an unknown annotator": (lambda e, s: claim_next(e, 999), UnknownAnnotatorError, "999"),
    "non-positive lease": (lambda e, s: claim_next(e, s["ana"], lease=timedelta(0)), RoutingError, "positive"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_input_is_refused_and_changes_nothing(engine, refusal_study, db_snapshot, case):
    call, error, message = REFUSALS[case]
    before = db_snapshot(engine)
    with pytest.raises(error, match=message) as raised:
        call(engine, refusal_study)
    assert isinstance(raised.value, ValueError)
    assert db_snapshot(engine) == before


def test_submitting_with_no_sample_says_so(engine, add_account, db_snapshot):
    ana = add_account(engine, "ana", "de")
    assert claim_next(engine, ana) is None
    with pytest.raises(NotInSampleError, match="no sample has been drawn"):
        label(engine, ana, "anything")
    assert progress(engine, ana).state is QueueState.NO_SAMPLE


# ----------------------------------------------------------------------------- revisions


def test_undo_last_reopens_and_revise_keeps_the_audit_trail(engine, make_study, add_account):
    make_study(engine, {("mmmu", "deu"): 2}, double_share=0)
    ana = add_account(engine, "ana", "de")
    assert undo_last(engine, ana) is None
    first = claim_next(engine, ana)
    label(engine, ana, first.completion_id, seconds_spent=10)
    second = claim_next(engine, ana)
    label(engine, ana, second.completion_id, answer="english", matches_gold=None, comment="typo?", seconds_spent=5)
    reopened = undo_last(engine, ana)
    assert (reopened.completion_id, reopened.answer_language, reopened.matches_gold, reopened.comment) == (
        second.completion_id,
        "english",
        None,
        "typo?",
    )
    assert revise(engine, ana, second.completion_id, "german", False, True, seconds_spent=2) is True
    assert revise(engine, ana, second.completion_id, "german", False, True) is False, "no change, no event"
    with Session(engine) as session:
        annotation = session.scalars(select(Annotation).where(Annotation.completion_id == second.completion_id)).one()
        assert (annotation.answer_language, annotation.matches_gold, annotation.correct) == ("german", False, True)
        assert annotation.comment is None and annotation.seconds_spent == 7
        events = session.scalars(
            select(AnnotationEvent)
            .where(AnnotationEvent.completion_id == second.completion_id)
            .order_by(AnnotationEvent.id)
        ).all()
    assert [event_.action for event_ in events] == ["create", "update"]
    assert events[1].before["answer_language"] == "english" and events[1].after["answer_language"] == "german"
    assert events[0].after == events[1].before


def test_annotators_cannot_revise_each_others_labels(engine, make_study, add_account):
    make_study(engine, {("mmmu", "deu"): 1})
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    item = claim_next(engine, ana)
    label(engine, ana, item.completion_id)
    with pytest.raises(NotHeldError):
        revise(engine, ben, item.completion_id, "english", True, True)
    assert undo_last(engine, ben) is None


# ----------------------------------------------------------------------------- reports


def test_progress_explains_an_empty_queue(engine, make_study, add_account):
    ana = add_account(engine, "ana", "de")
    assert progress(engine, ana).state is QueueState.NO_SAMPLE
    make_study(engine, {("mmmu", "deu"): 2}, double_share=0)
    frida = add_account(engine, "frida", "fr")
    state = progress(engine, frida)
    assert state.state is QueueState.NO_ITEMS_IN_MY_LANGUAGES and "fra" in state.message
    ben = add_account(engine, "ben", "de")
    assert progress(engine, ana).state is QueueState.AVAILABLE
    claim_next(engine, ben, now=T0)
    claim_next(engine, ana, now=T0)
    assert progress(engine, ana, now=T0).holding is not None
    drain(engine, ana, now=T0)
    waiting = progress(engine, ana, now=T0)
    assert waiting.state is QueueState.HELD_BY_OTHERS and waiting.held_by_others == 1
    assert "2030-01-01 09:30 UTC" in waiting.message
    drain(engine, ben, now=T0)
    done = progress(engine, ana, now=T0)
    assert done.state is QueueState.ALL_DONE and done.left_in_my_languages == 0
    assert (done.labeled_total, done.labeled_today) == (1, 0), "labeled today counts by the UTC day of now"
    assert progress(engine, ana).labeled_today == 1


def test_unroutable_languages_are_reported(engine, make_study, add_account):
    items = make_study(engine, {("mmmu", "deu"): 4, ("mmmu", "tha"): 2}, double_share=0.5, seed=2)
    ana = add_account(engine, "ana", "de")
    table = unroutable_languages(engine).set_index("query_language")
    assert list(table.index) == ["tha"]
    assert table.loc["tha", "reason"] == "no active annotator reads this language"
    assert table.loc["tha", "open_items"] == 2
    drain(engine, ana)
    n_double = int(items.loc[items["query_language"] == "deu", "double_annotate"].sum())
    assert n_double > 0
    table = unroutable_languages(engine).set_index("query_language")
    assert table.loc["deu", "reason"] == f"{n_double} double-annotated items need a second annotator who reads it"
    add_account(engine, "ben", "de,th")
    assert unroutable_languages(engine).empty


def test_queue_status_counts(engine, make_study, add_account):
    make_study(engine, {("mmmu", "deu"): 4}, double_share=0)
    ana, ben, cem = (add_account(engine, name, "de") for name in ("ana", "ben", "cem"))
    item = claim_next(engine, ana, now=T0)
    label(engine, ana, item.completion_id)
    claim_next(engine, ben, lease=timedelta(minutes=5), now=T0)
    skip(engine, cem, claim_next(engine, cem, now=T0).completion_id)
    status = queue_status(engine, now=T0 + timedelta(minutes=10)).iloc[0]
    assert (status["items"], status["labeled"], status["held"], status["expired"], status["skipped"]) == (4, 1, 0, 1, 1)
    assert (status["remaining"], status["labeled_share"], status["eligible_annotators"]) == (3, 0.25, 3)
    assert queue_status(engine, now=T0).iloc[0]["held"] == 1


# ----------------------------------------------------------------------------- batches


def test_claim_batch_hands_out_what_claim_next_would(tmp_path, make_study, add_account, row_count):
    engines = [make_engine(f"sqlite:///{tmp_path / name}.sqlite") for name in ("one", "two")]
    for engine in engines:
        upgrade_database(engine)
        make_study(engine, {("a", "deu"): 5, ("b", "deu"): 2, ("c", "eng"): 3}, double_share=0, seed=7)
        add_account(engine, "ana", "de,en")
    one_by_one = drain(engines[0], 1)[:7]
    batch = claim_batch(engines[1], 1, 7)
    assert [item.completion_id for item in batch] == one_by_one
    assert [item.completion_id for item in claim_batch(engines[1], 1, 3)] == one_by_one[:3], "held ones first"
    ids = submit_batch(engines[1], 1, [Label(item.completion_id, "german", True, None) for item in batch])
    assert len(ids) == 7 == len(set(ids))
    assert row_count(engines[1], AnnotationEvent) == 7
    for engine in engines:
        engine.dispose()


# ----------------------------------------------------------------------------- the database decides


def _stale_first_read(monkeypatch, change):
    """Make the first queue read of the next claims show ``change(row)`` instead of the truth,
    as a read overtaken by a concurrent claim does; the reads are counted."""
    real_rows, reads = routing.queue_rows, []

    def rows(*args):
        reads.append(args)
        return [change(row) for row in real_rows(*args)] if len(reads) == 1 else real_rows(*args)

    monkeypatch.setattr(routing, "queue_rows", rows)
    return reads


def test_a_stale_read_cannot_take_an_unexpired_claim(engine, make_study, add_account, monkeypatch):
    """On PostgreSQL the candidates are read before they are taken; the takeover's WHERE must
    refuse a claim that is still leased even when the read said it had expired. The claim then
    reads again and, with nothing left, says so."""
    make_study(engine, {("mmmu", "deu"): 1})
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    held = claim_next(engine, ana, now=T0)
    reads = _stale_first_read(monkeypatch, lambda row: row._replace(a1_expires=T0 - timedelta(minutes=1)))
    assert claim_next(engine, ben, now=T0 + timedelta(minutes=1)) is None
    assert len(reads) == 2, "the lost race made the claim read the queue again"
    monkeypatch.undo()
    assert claim_next(engine, ana, now=T0 + timedelta(minutes=2)).completion_id == held.completion_id


def test_a_claim_that_keeps_losing_gives_up_with_try_again(engine, make_study, add_account, monkeypatch, db_snapshot):
    """Bounded: a claim whose every read is overtaken stops after a few rounds with a message,
    having written nothing (it never reports an empty queue it has not seen)."""
    make_study(engine, {("mmmu", "deu"): 1})
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    claim_next(engine, ana, now=T0)
    before = db_snapshot(engine)
    real_state = queue.slot_state
    monkeypatch.setattr(
        queue,
        "slot_state",
        lambda status, who, expires, me, now: (
            "open" if status == "claimed" and who != me else real_state(status, who, expires, me, now)
        ),
    )
    with pytest.raises(RoutingError, match="try again"):
        claim_next(engine, ben, now=T0 + timedelta(minutes=1))
    assert db_snapshot(engine) == before


def test_a_stale_read_cannot_take_a_fresh_slot_twice(engine, make_study, add_account, monkeypatch):
    """A slot claimed since the read is decided by the unique (item, slot) key: the later
    INSERT does nothing and the claimer moves on."""
    items = make_study(engine, {("mmmu", "deu"): 2}, double_share=0)
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    held = claim_next(engine, ana)
    _stale_first_read(monkeypatch, lambda row: row._replace(a1_id=None, a1_who=None, a1_status=None, a1_expires=None))
    taken = claim_next(engine, ben)
    assert taken is not None and taken.completion_id != held.completion_id
    assert {held.completion_id, taken.completion_id} == set(items["completion_id"])
    with Session(engine) as session:
        assert sorted(session.execute(select(Assignment.annotator_id)).scalars()) == [ana, ben]


@pytest.mark.postgres
def test_a_claim_that_loses_a_race_reads_again_and_finds_what_opened_meanwhile(
    postgres_engine, make_study, add_account, monkeypatch
):
    """Issue 11.8. Between ben's read and his write, another connection takes the item ben read
    as open and ana gives hers back: ben must get ana's, not be told the queue is empty."""
    engine = postgres_engine
    make_study(engine, {("mmmu", "deu"): 2}, double_share=0)
    ana, ben, cai = (add_account(engine, name, "de") for name in ("ana", "ben", "cai"))
    first = claim_next(engine, ana)
    real_acquire, interfered = routing._acquire, []

    def overtaken(session, view, slot, me, now, lease):
        if not interfered:
            interfered.append(view.row.completion_id)
            with engine.begin() as other:  # a second annotator's transaction, committed first
                other.execute(
                    insert(Assignment).values(
                        sample_item_id=view.row.item_id,
                        slot=slot,
                        annotator_id=cai,
                        status="claimed",
                        claimed_at=now,
                        lease_expires_at=now + lease,
                    )
                )
            release(engine, ana, first.completion_id)
        return real_acquire(session, view, slot, me, now, lease)

    monkeypatch.setattr(routing, "_acquire", overtaken)
    taken = claim_next(engine, ben)
    assert interfered and interfered[0] != first.completion_id
    assert taken is not None and taken.completion_id == first.completion_id
    with Session(engine) as session:
        holders = dict(
            session.execute(
                select(Assignment.annotator_id, Assignment.status).where(Assignment.status == "claimed")
            ).all()
        )
    assert set(holders) == {ben, cai}


def test_the_lease_starts_when_the_claim_is_written_not_before_the_lock_wait(engine, make_study, add_account):
    """Issue 11.7. Another transaction holds the lock the claim needs (SQLite's write lock; on
    PostgreSQL the annotator's row); the lease must count from after that wait."""
    import threading

    make_study(engine, {("mmmu", "deu"): 1})
    ana = add_account(engine, "ana", "de")
    asked, result = threading.Event(), {}

    def claim() -> None:
        asked.set()
        result["item"] = claim_next(engine, ana, lease=timedelta(minutes=10))

    blocker = engine.raw_connection()
    try:
        cursor = blocker.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("SELECT id FROM annotators WHERE id = %s FOR UPDATE", (ana,))
        worker = threading.Thread(target=claim)
        worker.start()
        asked.wait()
        worker.join(timeout=0.5)  # the claim is now waiting for the lock
        released_at = utcnow()
        blocker.commit()
    finally:
        blocker.close()
    worker.join()
    with Session(engine) as session:
        claimed_at, expires = session.execute(select(Assignment.claimed_at, Assignment.lease_expires_at)).one()
    claimed_at, expires = aware_utc(claimed_at), aware_utc(expires)
    assert claimed_at >= released_at, "the lease clock started before the lock was granted"
    assert expires - claimed_at == timedelta(minutes=10)
    assert result["item"].lease_expires_at == expires
