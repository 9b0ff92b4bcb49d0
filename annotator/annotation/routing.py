"""Routing: which sampled item an annotator labels next, under a lease, and what they send back.

Claims, leases, skips, releases and submits. The annotator pages and the CLI share this API;
revising one's own labels is :mod:`annotator.annotation.revisions`, how far everyone is
:mod:`annotator.annotation.reporting`, the queue policy itself the database-free
:mod:`annotator.annotation.queue`. Its rules follow from the design:

* **Only items whose query language the annotator reads** are offered.
* **Within a stratum, items go out in ascending ``queue_position``** (a random order fixed at
  sampling time), so the labels collected at any moment are a random subsample of every
  stratum and an estimate made halfway through is still design-based.
* **Across strata** (:func:`annotator.annotation.queue.stratum_priority`), among the
  annotator's languages: first every stratum's first item (largest strata first), so that
  stopping early leaves as few strata empty as it can; then the stratum with the smallest
  ``(taken + 1/2) / items`` (taken: labeled or currently held; items: its sampled items), the
  Sainte-Lague rule, so the labels at every point are spread over the strata, and hence over
  the model x image arms the sampler makes strata, in proportion to their sizes. Ties go in a
  fixed pseudo-random order of the names (not alphabetically, which would serve one benchmark
  or model first).
* **Second labels first**: a double-annotated item (``SampleItem.double_annotate``) becomes
  open for slot 2 once its slot-1 label is in, and open slot-2 work is offered before new
  slot-1 items, so agreement can be measured, and disagreements adjudicated, as work goes on.
  Slot 2 is never given to the slot-1 annotator (the unique (completion, annotator) key on
  annotations guards that too).
* **Claims are leases** (30 minutes by default). An annotator who already holds a claim gets
  it back, renewed. An expired, released or (by someone else) skipped claim can be taken
  over, so an abandoned item is never lost; a skipped item is not offered again to whoever
  skipped it while their skip stands. The submit of a claim whose lease ran out is still
  accepted as long as nobody took the item over.

Concurrency: every claim runs in one short write transaction. On SQLite
``session_scope(write=True)`` begins IMMEDIATE, so claims are serialized by the database's
write lock and the chosen item cannot be taken in between. On PostgreSQL the annotator's own
row is locked first (``SELECT ... FOR UPDATE``, so two tabs of one person cannot claim two
items), then each candidate is taken with one atomic statement: ``INSERT ... ON CONFLICT
(sample_item_id, slot) DO NOTHING`` for a fresh slot, or a conditional ``UPDATE`` (``WHERE``
the lease has expired, or the claim was released) for a takeover. PostgreSQL re-checks that
``WHERE`` on the newest row version, and the unique key decides the race for fresh slots, so
the loser just moves on to its next candidate; having lost a race, a claim reads the queue
again before it reports it empty (items may have opened meanwhile: a second slot, a release).
Either way two annotators never hold one slot. A lease starts when its claim is written,
after any wait for a lock, so a busy database does not shorten it.
Claims commit without waiting for the WAL flush on PostgreSQL (a claim lost in a crash only
frees its item early); labels commit durably.

Blinding: :class:`ClaimedItem` carries only what the annotator should see. Routing never
reads predictions, the judge, adjudications or anybody else's labels.

Routing works on the *active sample*, the most recently drawn one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, and_, bindparam, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from annotator.annotation.answers import Label
from annotator.annotation.errors import (
    AlreadySubmittedError,
    LanguageNotReadError,
    NotHeldError,
    NotInSampleError,
    RoutingError,
)
from annotator.annotation.queue import ItemView, item_view, routing_order
from annotator.annotation.reads import active_annotator, current_sample_id, queue_rows, submittable_items, utc
from annotator.storage import session_scope
from db.models import Annotation, AnnotationEvent, Assignment, Completion, SampleItem, table_of, utcnow

__all__ = [
    "DEFAULT_LEASE",
    "ClaimedItem",
    "claim_batch",
    "claim_next",
    "release",
    "skip",
    "submit",
    "submit_batch",
]

DEFAULT_LEASE = timedelta(minutes=30)


@dataclass(frozen=True)
class ClaimedItem:
    """What an annotator sees of the item they hold, and nothing more (blinding).

    No language-ID prediction, no judge verdict, no other annotator's label, not even
    whether the item is a second annotation: each would anchor the label.
    """

    completion_id: str
    prompt: str | None
    image_path: str | None
    image_url: str | None
    gold_answer: str | None
    completion: str
    query_language: str
    lease_expires_at: datetime


def _sample_item(session: Session, completion_id: str) -> SampleItem:
    sample_id = current_sample_id(session)
    if sample_id is None:
        raise NotInSampleError("no sample has been drawn yet, so there is nothing to label")
    item = session.scalars(
        select(SampleItem).where(SampleItem.sample_id == sample_id, SampleItem.completion_id == completion_id)
    ).one_or_none()
    if item is None:
        raise NotInSampleError(f"completion {completion_id!r} is not in the active sample {sample_id}")
    return item


def _check_reads(completion_id: str, query_language: str, languages: tuple[str, ...]) -> None:
    if query_language not in languages:
        raise LanguageNotReadError(
            f"completion {completion_id!r} is in {query_language!r}, which is not among "
            f"your languages ({', '.join(languages) or 'none'}); an admin can add it"
        )


def _held_assignment(session: Session, me: int, item_id: int, completion_id: str) -> Assignment:
    """The annotator's open claim on the item, or :class:`NotHeldError` saying what happened."""
    rows = session.scalars(select(Assignment).where(Assignment.sample_item_id == item_id)).all()
    for assignment in rows:
        if assignment.annotator_id == me and assignment.status == "claimed":
            return assignment
    mine = {assignment.status for assignment in rows if assignment.annotator_id == me}
    if "skipped" in mine:
        reason = "you skipped it"
    elif "released" in mine:
        reason = "you released it"
    else:
        reason = "you have not claimed it, or your lease ran out and someone else took it over"
    raise NotHeldError(f"you do not hold completion {completion_id!r} ({reason}); claim the next item")


# Claims, built once (the hot path). A fresh slot is taken by INSERT ... ON CONFLICT DO NOTHING:
# the unique (sample_item_id, slot) key decides a race. A finished or abandoned slot is taken
# over by a conditional UPDATE whose WHERE the database re-checks on the newest row version.
_ASSIGNMENTS = table_of(Assignment)
_CLAIM_FRESH = {
    name: dialect_insert(_ASSIGNMENTS)
    .on_conflict_do_nothing(index_elements=["sample_item_id", "slot"])
    .returning(_ASSIGNMENTS.c.id)
    for name, dialect_insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}
_NOW = bindparam("now", type_=_ASSIGNMENTS.c.lease_expires_at.type)
_ME = bindparam("me", type_=_ASSIGNMENTS.c.annotator_id.type)
_CLAIM_TAKEOVER = (
    update(_ASSIGNMENTS)
    .where(
        _ASSIGNMENTS.c.id == bindparam("assignment_id"),
        or_(
            _ASSIGNMENTS.c.status == "released",
            and_(_ASSIGNMENTS.c.status == "skipped", _ASSIGNMENTS.c.annotator_id != _ME),
            and_(
                _ASSIGNMENTS.c.status == "claimed",
                _ASSIGNMENTS.c.lease_expires_at < _NOW,
                _ASSIGNMENTS.c.annotator_id != _ME,
            ),
        ),
    )
    .values(
        annotator_id=_ME,
        status="claimed",
        claimed_at=_NOW,
        lease_expires_at=bindparam("expiry", type_=_ASSIGNMENTS.c.lease_expires_at.type),
        finished_at=None,
    )
)


_RENEW = (
    update(_ASSIGNMENTS)
    .where(
        _ASSIGNMENTS.c.id.in_(bindparam("ids", expanding=True)),
        _ASSIGNMENTS.c.annotator_id == _ME,
        _ASSIGNMENTS.c.status == "claimed",
    )
    .values(lease_expires_at=bindparam("expiry", type_=_ASSIGNMENTS.c.lease_expires_at.type))
    .returning(_ASSIGNMENTS.c.id)
)


def _acquire(session: Session, view: ItemView, slot: int, me: int, now: datetime, lease: timedelta) -> bool:
    """Take ``slot`` of the item in one atomic statement, the lease starting at ``now``; False
    when someone was faster."""
    assignment_id = view.row.a1_id if slot == 1 else view.row.a2_id
    connection = session.connection()
    if assignment_id is None:
        statement = _CLAIM_FRESH[connection.dialect.name]
        parameters = {
            "sample_item_id": view.row.item_id,
            "slot": slot,
            "annotator_id": me,
            "status": "claimed",
            "claimed_at": now,
            "lease_expires_at": now + lease,
        }
        return connection.execute(statement, parameters).first() is not None
    parameters = {"assignment_id": assignment_id, "me": me, "now": now, "expiry": now + lease}
    return connection.execute(_CLAIM_TAKEOVER, parameters).rowcount == 1


def _claimed_items(session: Session, leases: dict[int, datetime]) -> list[ClaimedItem]:
    """What the annotator may see of the items (sample item id -> lease expiry), in that order."""
    rows = session.execute(
        select(
            SampleItem.id,
            Completion.id,
            Completion.prompt,
            Completion.image_path,
            Completion.image_url,
            Completion.gold_answer,
            Completion.completion,
            Completion.query_language,
        )
        .join(SampleItem, SampleItem.completion_id == Completion.id)
        .where(SampleItem.id.in_(list(leases)))
    ).all()
    by_item = {row[0]: row[1:] for row in rows}
    return [ClaimedItem(*by_item[item_id], lease_expires_at=utc(expiry)) for item_id, expiry in leases.items()]


# --------------------------------------------------------------------------- claiming


# How often one claim re-reads the queue after losing races before it gives up with a "try
# again" (a round ends the claim as soon as it lost no race, so this is rarely reached).
_CLAIM_ROUNDS = 20


def _claim(engine: Engine, annotator_id: int, limit: int, lease: timedelta, now: datetime | None) -> list[ClaimedItem]:
    """Up to ``limit`` items for the annotator in routing order, held claims (renewed) first.

    The lease starts when the claim is written, after waiting for the write lock (SQLite) or
    the annotator's row lock (PostgreSQL), so a busy database does not shorten it. ``now``
    fixes the clock instead (tests, simulations).

    On PostgreSQL a concurrent claim can win a candidate this one read as open. Then the
    queue is read again (a fresh snapshot, which also shows items opened meanwhile) and the
    next candidates are tried, until the limit is met or a read offers nothing untried: an
    empty result means the queue was empty at the last read, never that races were lost.
    """
    if lease <= timedelta(0):
        raise RoutingError("the lease must be positive")
    fixed_now = None if now is None else utc(now)

    def clock() -> datetime:
        return fixed_now or utcnow()

    with session_scope(engine, write=True) as session:
        if session.get_bind().dialect.name == "postgresql":
            # A claim lost in a server crash only returns its item early, so the claim need not
            # wait for the WAL flush (several ms on a plain disk); labels still do.
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        me, languages = active_annotator(session, annotator_id, lock=True)  # waits for the lock
        leases: dict[int, datetime] = {}
        for round_ in range(_CLAIM_ROUNDS):
            read_at = clock()
            views = [item_view(row, me, read_at) for row in queue_rows(session, me, languages)]
            if round_ == 0:
                held = sorted(
                    (view.row.a1_id if view.slot1 == "mine" else view.row.a2_id, view.row.item_id)
                    for view in views
                    if "mine" in (view.slot1, view.slot2)
                )[:limit]
                if held:
                    expiry = clock() + lease
                    parameters = {"ids": [assignment_id for assignment_id, _ in held], "me": me, "expiry": expiry}
                    renewed = set(session.connection().execute(_RENEW, parameters).scalars())
                    # One missing from ``renewed`` expired and was taken over meanwhile: no longer ours.
                    leases = {item_id: expiry for assignment_id, item_id in held if assignment_id in renewed}
            lost_a_race = False
            for view, slot in routing_order(views):
                if len(leases) == limit:
                    break
                started = clock()
                if _acquire(session, view, slot, me, started, lease):
                    leases[view.row.item_id] = started + lease
                else:
                    lost_a_race = True
            if len(leases) == limit or not lost_a_race:
                break
        else:
            if not leases:
                raise RoutingError(
                    "many annotators are claiming at this moment and every item tried was taken first; try again"
                )
        return _claimed_items(session, leases) if leases else []


def claim_next(
    engine: Engine, annotator_id: int, lease: timedelta = DEFAULT_LEASE, now: datetime | None = None
) -> ClaimedItem | None:
    """The item this annotator should label next, claimed under a lease; None when there is none.

    An item the annotator already holds comes back with its lease renewed.
    :func:`~annotator.annotation.reporting.progress` says why the queue is empty.
    """
    claimed = _claim(engine, annotator_id, 1, lease, now)
    return claimed[0] if claimed else None


def claim_batch(
    engine: Engine, annotator_id: int, n: int, lease: timedelta = DEFAULT_LEASE, now: datetime | None = None
) -> list[ClaimedItem]:
    """Up to ``n`` items in the order :func:`claim_next` would hand them out one by one.

    For tools that label in bulk (the simulated annotators) and would otherwise pay one
    transaction per item; people use :func:`claim_next`, so nobody hoards items.
    """
    if n < 1:
        raise RoutingError("n must be at least 1")
    return _claim(engine, annotator_id, n, lease, now)


def _store_labels(session: Session, me: int, languages: tuple[str, ...], labels: list[Label]) -> list[int]:
    """Check and store labels of items the annotator holds, all or none; the ids, in order.

    One read finds every item with the annotator's claim and own label, then three bulk
    writes: a batch costs the same few round trips whatever its size.
    """
    checked = [label.checked().values() for label in labels]
    ids = [label.completion_id for label in labels]
    repeated = next((completion_id for completion_id, n in Counter(ids).items() if n > 1), None)
    if repeated is not None:
        raise AlreadySubmittedError(f"{repeated!r} is labeled twice in one submission")
    items = submittable_items(session, me, ids)
    for completion_id in ids:
        if completion_id not in items:
            sample_id = current_sample_id(session)
            if sample_id is None:
                raise NotInSampleError("no sample has been drawn yet, so there is nothing to label")
            raise NotInSampleError(f"completion {completion_id!r} is not in the active sample {sample_id}")
        _check_reads(completion_id, items[completion_id].query_language, languages)
    for completion_id in ids:
        if items[completion_id].annotation_id is not None:
            raise AlreadySubmittedError(f"you already labeled {completion_id!r}; use revise to change the label")
    for completion_id in ids:
        if items[completion_id].claim_id is None:
            _held_assignment(session, me, items[completion_id].item_id, completion_id)  # raises, saying why
    now = utcnow()
    assignment_ids = [items[completion_id].claim_id for completion_id in ids]
    finished = session.execute(
        update(Assignment)
        .where(Assignment.id.in_(assignment_ids), Assignment.annotator_id == me, Assignment.status == "claimed")
        .values(status="submitted", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(finished) != len(ids):
        raise NotHeldError("a claim was taken over while submitting; nothing was stored, claim again")
    rows = [
        {
            "completion_id": completion_id,
            "annotator_id": me,
            "assignment_id": assignment_id,
            "created_at": now,
            "updated_at": now,
            **label,
        }
        for completion_id, assignment_id, label in zip(ids, assignment_ids, checked, strict=True)
    ]
    try:
        annotation_ids = session.scalars(
            insert(Annotation).returning(Annotation.id, sort_by_parameter_order=True), rows
        ).all()
    except IntegrityError:
        raise AlreadySubmittedError("one of these items was labeled by you meanwhile; nothing was stored") from None
    session.execute(
        insert(AnnotationEvent),
        [
            {
                "completion_id": completion_id,
                "annotation_id": annotation_id,
                "actor_id": me,
                "action": "create",
                "before": None,
                "after": label,
                "at": now,
            }
            for completion_id, annotation_id, label in zip(ids, annotation_ids, checked, strict=True)
        ],
    )
    return list(annotation_ids)


def submit(
    engine: Engine,
    annotator_id: int,
    completion_id: str,
    answer_language: str,
    matches_gold: bool | None,
    correct: bool | None,
    comment: str | None = None,
    seconds_spent: float | None = None,
) -> int:
    """Store the label for an item the annotator holds; returns the annotation id.

    ``matches_gold``/``correct`` take None for NA. Refused, with nothing changed, when the
    annotator is unknown, the item is not in the active sample or not in their languages,
    they do not hold it, a value is outside the form, or they labeled it already.
    """
    label = Label(completion_id, answer_language, matches_gold, correct, comment, seconds_spent)
    return submit_batch(engine, annotator_id, [label])[0]


def submit_batch(engine: Engine, annotator_id: int, labels: Sequence[Label]) -> list[int]:
    """:func:`submit` for many held items in one transaction: all are stored, or none."""
    if not labels:
        return []
    with session_scope(engine, write=True) as session:
        me, languages = active_annotator(session, annotator_id)
        return _store_labels(session, me, languages, list(labels))


def skip(engine: Engine, annotator_id: int, completion_id: str) -> None:
    """Give a held item back because this annotator cannot label it; others still get it.

    It is not offered to the same annotator again while their skip stands (until someone
    else takes it over). Items nobody can label stay unlabeled:
    :func:`~annotator.annotation.reporting.queue_status` counts them.
    """
    _finish_claim(engine, annotator_id, completion_id, "skipped")


def release(engine: Engine, annotator_id: int, completion_id: str | None = None) -> int:
    """Give back a held item (or, without ``completion_id``, every held item, e.g. at logout)
    without judgment: anyone may take it next, the same annotator too. Returns how many."""
    if completion_id is not None:
        _finish_claim(engine, annotator_id, completion_id, "released")
        return 1
    with session_scope(engine, write=True) as session:
        me, _ = active_annotator(session, annotator_id)
        result = session.execute(
            update(Assignment)
            .where(Assignment.annotator_id == me, Assignment.status == "claimed")
            .values(status="released", finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched: ``Session.execute`` is typed as returning Result, which has none."""
    return cast(CursorResult[Any], result).rowcount


def _finish_claim(engine: Engine, annotator_id: int, completion_id: str, status: str) -> None:
    with session_scope(engine, write=True) as session:
        me, languages = active_annotator(session, annotator_id)
        item = _sample_item(session, completion_id)
        _check_reads(completion_id, item.query_language, languages)
        assignment = _held_assignment(session, me, item.id, completion_id)
        result = session.execute(
            update(Assignment)
            .where(Assignment.id == assignment.id, Assignment.annotator_id == me, Assignment.status == "claimed")
            .values(status=status, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise NotHeldError(f"your claim on {completion_id!r} was taken over just now")
