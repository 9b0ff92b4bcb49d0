"""Routing: which sampled item an annotator labels next, under a lease, and what they send back.

The annotator pages and the CLI share this API. Its rules follow from the design:

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

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from sqlalchemy import CursorResult, Engine, Result, and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from annotator.annotation.queue import ItemView, QueueRow, aware_utc, item_view, routing_order
from annotator.storage import session_scope
from db.models import (
    Annotation,
    AnnotationEvent,
    Annotator,
    AnnotatorLanguage,
    Assignment,
    Completion,
    Sample,
    SampleItem,
    table_of,
    utcnow,
)
from db.vocabulary import ANSWER_CLASSES

if TYPE_CHECKING:  # pandas only for the reports, imported there: claims stay quick to start
    import pandas as pd

__all__ = [
    "DEFAULT_LEASE",
    "AlreadySubmittedError",
    "ClaimedItem",
    "InvalidLabelError",
    "Label",
    "LabeledItem",
    "LanguageNotReadError",
    "NotHeldError",
    "NotInSampleError",
    "Progress",
    "QueueState",
    "RoutingError",
    "UnknownAnnotatorError",
    "active_sample_id",
    "claim_batch",
    "claim_next",
    "progress",
    "queue_status",
    "release",
    "revise",
    "skip",
    "submit",
    "submit_batch",
    "undo_last",
    "unroutable_languages",
    "validate_label",
]

DEFAULT_LEASE = timedelta(minutes=30)


class RoutingError(ValueError):
    """A routing request was refused and nothing was changed; the message says what to do."""


class UnknownAnnotatorError(RoutingError):
    """No such annotator, or the account is deactivated."""


class LanguageNotReadError(RoutingError):
    """The item's query language is not one the annotator reads."""


class NotInSampleError(RoutingError):
    """The completion is not an item of the active sample (or there is no sample)."""


class NotHeldError(RoutingError):
    """The annotator does not hold a claim on the item (never claimed, taken over, skipped)."""


class InvalidLabelError(RoutingError):
    """A label value outside what the form allows."""


class AlreadySubmittedError(RoutingError):
    """The annotator already labeled this completion; revise it instead."""


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


@dataclass(frozen=True)
class Label:
    """One label as :func:`submit_batch` takes it (the arguments of :func:`submit`)."""

    completion_id: str
    answer_language: str
    matches_gold: bool | None
    correct: bool | None
    comment: str | None = None
    seconds_spent: float | None = None


@dataclass(frozen=True)
class LabeledItem:
    """An annotator's own label with the item it belongs to, reopened for revision."""

    completion_id: str
    prompt: str | None
    image_path: str | None
    image_url: str | None
    gold_answer: str | None
    completion: str
    query_language: str
    answer_language: str
    matches_gold: bool | None
    correct: bool | None
    comment: str | None
    seconds_spent: float | None
    labeled_at: datetime
    revised_at: datetime


class QueueState(StrEnum):
    """Why an annotator's queue looks the way it does."""

    AVAILABLE = "available"
    NO_SAMPLE = "no_sample"
    NO_ITEMS_IN_MY_LANGUAGES = "no_items_in_my_languages"
    ALL_DONE = "all_done"
    HELD_BY_OTHERS = "held_by_others"


@dataclass(frozen=True)
class Progress:
    """An annotator's standing in the active sample; ``message`` is for showing as is."""

    annotator_id: int
    sample_id: int | None
    languages: tuple[str, ...]
    labeled_today: int
    labeled_total: int
    left_in_my_languages: int
    available_to_me: int
    held_by_others: int
    skipped_by_me: int
    holding: str | None
    state: QueueState
    message: str
    #: What this annotator can still label: the item they hold plus what is offered to them (not
    #: ``left_in_my_languages``, which also counts second labels others must give, their skips
    #: and items others hold).
    left_for_me: int


# --------------------------------------------------------------------------- helpers


def _utc(value: datetime | None) -> datetime:
    """Aware UTC (see :func:`aware_utc`); no value means now."""
    return utcnow() if value is None else aware_utc(value)


def _is_bool_or_na(value: Any) -> bool:
    return value is None or isinstance(value, (bool, np.bool_))


def validate_label(
    answer_language: Any, matches_gold: Any, correct: Any, comment: Any, seconds_spent: Any
) -> dict[str, Any]:
    """The label as stored (class lower-cased, comment stripped), or :class:`InvalidLabelError`
    naming the bad field. Shared by submit, revise and adjudication."""
    if not isinstance(answer_language, str) or answer_language.strip().lower() not in ANSWER_CLASSES:
        raise InvalidLabelError(
            f"answer_language {answer_language!r} is not a class; choose one of {', '.join(ANSWER_CLASSES)}"
        )
    for field, value in (("matches_gold", matches_gold), ("correct", correct)):
        if not _is_bool_or_na(value):
            raise InvalidLabelError(f"{field} must be true, false or NA (None), not {value!r}")
    if comment is not None and not isinstance(comment, str):
        raise InvalidLabelError(f"comment must be text, not {type(comment).__name__}")
    if seconds_spent is not None:
        if isinstance(seconds_spent, bool) or not isinstance(seconds_spent, (int, float, np.number)):
            raise InvalidLabelError(f"seconds_spent must be a number of seconds, not {seconds_spent!r}")
        if not math.isfinite(seconds_spent) or seconds_spent < 0:
            raise InvalidLabelError(f"seconds_spent must be a finite number >= 0, not {seconds_spent!r}")
    return {
        "answer_language": answer_language.strip().lower(),
        "matches_gold": None if matches_gold is None else bool(matches_gold),
        "correct": None if correct is None else bool(correct),
        "comment": (comment.strip() or None) if comment is not None else None,
        "seconds_spent": None if seconds_spent is None else float(seconds_spent),
    }


def _label_of(annotation: Annotation) -> dict[str, Any]:
    return {
        "answer_language": annotation.answer_language,
        "matches_gold": annotation.matches_gold,
        "correct": annotation.correct,
        "comment": annotation.comment,
        "seconds_spent": annotation.seconds_spent,
    }


def active_sample_id(session: Session) -> int | None:
    """The sample routing works on: the most recently drawn one (None before any)."""
    return session.scalar(select(func.max(Sample.id)))


_ANNOTATOR = (
    select(Annotator.id, Annotator.name, Annotator.active, AnnotatorLanguage.language)
    .outerjoin(AnnotatorLanguage, AnnotatorLanguage.annotator_id == Annotator.id)
    .where(Annotator.id == bindparam("annotator_id"))
)
_ANNOTATOR_LOCKED = _ANNOTATOR.with_for_update(of=Annotator)


def _annotator(session: Session, annotator_id: int, *, lock: bool = False) -> tuple[int, tuple[str, ...]]:
    """The id of an active annotator and the languages they read, or :class:`UnknownAnnotatorError`.

    ``lock`` takes the annotator's row lock on PostgreSQL, serializing one person's claims.
    """
    try:
        parameters = {"annotator_id": int(annotator_id)}
    except (TypeError, ValueError):
        raise UnknownAnnotatorError(f"{annotator_id!r} is not an annotator id") from None
    rows = session.execute(_ANNOTATOR_LOCKED if lock else _ANNOTATOR, parameters).all()
    if not rows:
        raise UnknownAnnotatorError(f"no annotator with id {annotator_id!r}; log in again or ask an admin")
    if not rows[0].active:
        raise UnknownAnnotatorError(f"annotator {rows[0].name!r} is deactivated; ask an admin to reactivate")
    return rows[0].id, tuple(sorted(row.language for row in rows if row.language is not None))


def _sample_item(session: Session, completion_id: str) -> SampleItem:
    sample_id = active_sample_id(session)
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


# --------------------------------------------------------------------------- queue model


# Built once: aliased entities are costly to construct, and claims are the hot path.
_SLOT1, _SLOT2 = aliased(Assignment, name="slot1"), aliased(Assignment, name="slot2")
_MINE = aliased(Annotation, name="mine")
_SLOTS = (
    _SLOT1.id,
    _SLOT1.annotator_id,
    _SLOT1.status,
    _SLOT1.lease_expires_at,
    _SLOT2.id,
    _SLOT2.annotator_id,
    _SLOT2.status,
    _SLOT2.lease_expires_at,
)


def _with_slots(query):
    return query.outerjoin(_SLOT1, and_(_SLOT1.sample_item_id == SampleItem.id, _SLOT1.slot == 1)).outerjoin(
        _SLOT2, and_(_SLOT2.sample_item_id == SampleItem.id, _SLOT2.slot == 2)
    )


_ACTIVE_SAMPLE = select(func.max(Sample.id)).scalar_subquery()
_QUEUE_ROWS = (
    _with_slots(
        select(
            SampleItem.id,
            SampleItem.completion_id,
            SampleItem.stratum,
            SampleItem.query_language,
            SampleItem.queue_position,
            SampleItem.double_annotate,
            *_SLOTS,
            _MINE.id,
        )
    )
    .outerjoin(_MINE, and_(_MINE.completion_id == SampleItem.completion_id, _MINE.annotator_id == bindparam("me")))
    .where(
        SampleItem.sample_id == _ACTIVE_SAMPLE,
        SampleItem.query_language.in_(bindparam("languages", expanding=True)),
    )
)
_MY_CLAIM = aliased(Assignment, name="my_claim")
_SUBMITTABLE = (
    select(
        SampleItem.id.label("item_id"),
        SampleItem.completion_id,
        SampleItem.query_language,
        _MY_CLAIM.id.label("claim_id"),
        _MINE.id.label("annotation_id"),
    )
    .outerjoin(
        _MY_CLAIM,
        and_(
            _MY_CLAIM.sample_item_id == SampleItem.id,
            _MY_CLAIM.annotator_id == bindparam("me"),
            _MY_CLAIM.status == "claimed",
        ),
    )
    .outerjoin(_MINE, and_(_MINE.completion_id == SampleItem.completion_id, _MINE.annotator_id == bindparam("me")))
    .where(SampleItem.sample_id == _ACTIVE_SAMPLE, SampleItem.completion_id.in_(bindparam("ids", expanding=True)))
)
_SAMPLE_FRAME = _with_slots(
    select(SampleItem.stratum, SampleItem.query_language, SampleItem.double_annotate, *_SLOTS)
).where(SampleItem.sample_id == bindparam("sample_id"))
_SAMPLE_FRAME_COLUMNS = [
    "stratum",
    "query_language",
    "double_annotate",
    "a1_id",
    "a1_who",
    "a1_status",
    "a1_expires",
    "a2_id",
    "a2_who",
    "a2_status",
    "a2_expires",
]


def _queue_rows(session: Session, me: int, languages: tuple[str, ...]) -> list[QueueRow]:
    """Every item of the active sample in the annotator's languages, with both slots and own label."""
    if not languages:
        return []
    return [QueueRow(*row) for row in session.execute(_QUEUE_ROWS, {"me": me, "languages": list(languages)})]


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
    return [ClaimedItem(*by_item[item_id], lease_expires_at=_utc(expiry)) for item_id, expiry in leases.items()]


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
    fixed_now = None if now is None else _utc(now)

    def clock() -> datetime:
        return fixed_now or utcnow()

    with session_scope(engine, write=True) as session:
        if session.get_bind().dialect.name == "postgresql":
            # A claim lost in a server crash only returns its item early, so the claim need not
            # wait for the WAL flush (several ms on a plain disk); labels still do.
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        me, languages = _annotator(session, annotator_id, lock=True)  # waits for the lock
        leases: dict[int, datetime] = {}
        for round_ in range(_CLAIM_ROUNDS):
            read_at = clock()
            views = [item_view(row, me, read_at) for row in _queue_rows(session, me, languages)]
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

    An item the annotator already holds comes back with its lease renewed. :func:`progress`
    says why the queue is empty.
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
    checked = [
        validate_label(label.answer_language, label.matches_gold, label.correct, label.comment, label.seconds_spent)
        for label in labels
    ]
    ids = [label.completion_id for label in labels]
    repeated = next((completion_id for completion_id, n in Counter(ids).items() if n > 1), None)
    if repeated is not None:
        raise AlreadySubmittedError(f"{repeated!r} is labeled twice in one submission")
    items = {row.completion_id: row for row in session.execute(_SUBMITTABLE, {"me": me, "ids": ids})}
    for completion_id in ids:
        if completion_id not in items:
            sample_id = active_sample_id(session)
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
        me, languages = _annotator(session, annotator_id)
        return _store_labels(session, me, languages, list(labels))


def skip(engine: Engine, annotator_id: int, completion_id: str) -> None:
    """Give a held item back because this annotator cannot label it; others still get it.

    It is not offered to the same annotator again while their skip stands (until someone
    else takes it over). Items nobody can label stay unlabeled: :func:`queue_status` counts them.
    """
    _finish_claim(engine, annotator_id, completion_id, "skipped")


def release(engine: Engine, annotator_id: int, completion_id: str | None = None) -> int:
    """Give back a held item (or, without ``completion_id``, every held item, e.g. at logout)
    without judgment: anyone may take it next, the same annotator too. Returns how many."""
    if completion_id is not None:
        _finish_claim(engine, annotator_id, completion_id, "released")
        return 1
    with session_scope(engine, write=True) as session:
        me, _ = _annotator(session, annotator_id)
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
        me, languages = _annotator(session, annotator_id)
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


# --------------------------------------------------------------------------- revising


def undo_last(engine: Engine, annotator_id: int) -> LabeledItem | None:
    """Reopen the annotator's most recently submitted label, to correct it with :func:`revise`.

    Nothing is deleted: a label once given stays in the data and the audit trail, and the
    corrected version is recorded as an update with before and after. None if no labels yet.
    """
    with session_scope(engine) as session:
        me, _ = _annotator(session, annotator_id)
        annotation = session.scalars(
            select(Annotation)
            .where(Annotation.annotator_id == me)
            .order_by(Annotation.created_at.desc(), Annotation.id.desc())
            .limit(1)
        ).first()
        if annotation is None:
            return None
        completion = session.get_one(Completion, annotation.completion_id)
        return LabeledItem(
            completion_id=completion.id,
            prompt=completion.prompt,
            image_path=completion.image_path,
            image_url=completion.image_url,
            gold_answer=completion.gold_answer,
            completion=completion.completion,
            query_language=completion.query_language,
            answer_language=annotation.answer_language,
            matches_gold=annotation.matches_gold,
            correct=annotation.correct,
            comment=annotation.comment,
            seconds_spent=annotation.seconds_spent,
            labeled_at=_utc(annotation.created_at),
            revised_at=_utc(annotation.updated_at),
        )


def revise(
    engine: Engine,
    annotator_id: int,
    completion_id: str,
    answer_language: str,
    matches_gold: bool | None,
    correct: bool | None,
    comment: str | None = None,
    seconds_spent: float | None = None,
) -> bool:
    """Change the annotator's own label of ``completion_id``; True if anything changed.

    ``seconds_spent`` is the time spent revising and is added to the label's total. The
    audit trail gets an ``update`` event with before and after.
    """
    label = validate_label(answer_language, matches_gold, correct, comment, seconds_spent)
    now = utcnow()
    with session_scope(engine, write=True) as session:
        me, _ = _annotator(session, annotator_id)
        annotation = session.scalars(
            select(Annotation).where(Annotation.completion_id == completion_id, Annotation.annotator_id == me)
        ).one_or_none()
        if annotation is None:
            raise NotHeldError(f"you have no label on {completion_id!r} to revise")
        before = _label_of(annotation)
        if label["seconds_spent"] is not None:
            label["seconds_spent"] += annotation.seconds_spent or 0.0
        else:
            label["seconds_spent"] = annotation.seconds_spent
        if label == before:
            return False
        for field, value in label.items():
            setattr(annotation, field, value)
        annotation.updated_at = now
        session.add(
            AnnotationEvent(
                completion_id=completion_id,
                annotation_id=annotation.id,
                actor_id=me,
                action="update",
                before=before,
                after=label,
                at=now,
            )
        )
        return True


# --------------------------------------------------------------------------- reporting


def _start_of_day(now: datetime) -> datetime:
    return datetime.combine(now.date(), time.min, tzinfo=UTC)


def progress(engine: Engine, annotator_id: int, now: datetime | None = None) -> Progress:
    """How far the annotator is, and why their queue is empty when it is."""
    now = _utc(now)
    with session_scope(engine) as session:
        me, languages = _annotator(session, annotator_id)
        counts = session.execute(
            select(func.count(), func.count().filter(Annotation.created_at >= _start_of_day(now))).where(
                Annotation.annotator_id == me
            )
        ).one()
        sample_id = active_sample_id(session)
        views = [item_view(row, me, now) for row in _queue_rows(session, me, languages)]
        expiries = [
            _utc(view.row.a1_expires if view.slot1 == "held" else view.row.a2_expires)
            for view in views
            if view.held_by_others
        ]
    holding = next((view.row.completion_id for view in views if "mine" in (view.slot1, view.slot2)), None)
    left = sum(view.needs_work for view in views)
    available = sum(view.offer is not None for view in views)
    skipped = sum("skipped_by_me" in (view.slot1, view.slot2) for view in views)
    held = len(expiries)
    names = ", ".join(languages) or "none"
    if sample_id is None:
        state, message = QueueState.NO_SAMPLE, "No sample has been drawn yet; a researcher draws one first."
    elif not views:
        state = QueueState.NO_ITEMS_IN_MY_LANGUAGES
        message = f"The sample has no items in your languages ({names})."
    elif holding is not None or available:
        state = QueueState.AVAILABLE
        message = f"{available + (holding is not None)} items are waiting for you."
    elif held:
        state = QueueState.HELD_BY_OTHERS
        message = (
            f"What is left for you ({held} items) is held by other annotators; it comes back "
            f"if unfinished by {min(expiries):%Y-%m-%d %H:%M} UTC."
        )
    else:
        state = QueueState.ALL_DONE
        message = f"All done: nothing left for you in {names}."
        if left:
            message += f" {left} items still need someone else (a second annotator, or items you skipped)."
    return Progress(
        annotator_id=me,
        sample_id=sample_id,
        languages=languages,
        labeled_today=int(counts[1]),
        labeled_total=int(counts[0]),
        left_in_my_languages=left,
        available_to_me=available,
        held_by_others=held,
        skipped_by_me=skipped,
        holding=holding,
        state=state,
        message=message,
        left_for_me=available + (holding is not None),
    )


def _sample_frame(session: Session, sample_id: int) -> pd.DataFrame:
    """Every item of the sample with both slots' annotator, status and lease."""
    import pandas as pd

    rows = session.execute(_SAMPLE_FRAME, {"sample_id": sample_id}).all()
    frame = pd.DataFrame(rows, columns=_SAMPLE_FRAME_COLUMNS)
    frame["double_annotate"] = frame["double_annotate"].astype(bool)
    return frame


def _readers(session: Session) -> dict[str, set[int]]:
    """Language -> ids of the active annotators who read it."""
    rows = session.execute(
        select(AnnotatorLanguage.language, AnnotatorLanguage.annotator_id)
        .join(Annotator, Annotator.id == AnnotatorLanguage.annotator_id)
        .where(Annotator.active.is_(True))
    ).all()
    readers: dict[str, set[int]] = {}
    for language, annotator_id in rows:
        readers.setdefault(language, set()).add(annotator_id)
    return readers


def queue_status(engine: Engine, now: datetime | None = None) -> pd.DataFrame:
    """Per stratum of the active sample: items, labeled (slot 1), held, expired claims,
    skipped, remaining, planned and finished second labels, labeled share, and how many
    active annotators read its language. Empty when there is no sample."""
    import pandas as pd

    now = _utc(now)
    columns = [
        "stratum",
        "query_language",
        "items",
        "labeled",
        "held",
        "expired",
        "skipped",
        "remaining",
        "double_planned",
        "double_labeled",
        "labeled_share",
        "eligible_annotators",
    ]
    with session_scope(engine) as session:
        sample_id = active_sample_id(session)
        if sample_id is None:
            return pd.DataFrame(columns=columns)
        frame = _sample_frame(session, sample_id)
        readers = _readers(session)
    if frame.empty:
        return pd.DataFrame(columns=columns)

    def claimed(slot: str, live: bool) -> pd.Series:
        expires = frame[f"{slot}_expires"].map(lambda value: _utc(value) >= now if value is not None else False)
        return (frame[f"{slot}_status"] == "claimed") & (expires if live else ~expires)

    frame = frame.assign(
        labeled=frame["a1_status"] == "submitted",
        held=claimed("a1", True) | claimed("a2", True),
        expired=claimed("a1", False) | claimed("a2", False),
        skipped=(frame["a1_status"] == "skipped") | (frame["a2_status"] == "skipped"),
        double_labeled=frame["double_annotate"] & (frame["a2_status"] == "submitted"),
    )
    table = frame.groupby(["stratum", "query_language"], as_index=False).agg(
        items=("labeled", "size"),
        labeled=("labeled", "sum"),
        held=("held", "sum"),
        expired=("expired", "sum"),
        skipped=("skipped", "sum"),
        double_planned=("double_annotate", "sum"),
        double_labeled=("double_labeled", "sum"),
    )
    table["remaining"] = table["items"] - table["labeled"]
    table["labeled_share"] = table["labeled"] / table["items"]
    table["eligible_annotators"] = table["query_language"].map(lambda language: len(readers.get(language, ())))
    return table[columns].astype(
        {column: int for column in columns if column not in ("stratum", "query_language", "labeled_share")}
    )


def unroutable_languages(engine: Engine) -> pd.DataFrame:
    """Languages of the active sample whose open work no active annotator can take.

    Either nobody active reads the language (its open items are listed), or double-annotated
    items wait for a second label and nobody other than their first annotator reads it.
    Reported rather than silently skipped, because a stratum left unlabeled breaks the design.
    """
    import pandas as pd

    columns = ["query_language", "items", "open_items", "open_second_labels", "eligible_annotators", "reason"]
    with session_scope(engine) as session:
        sample_id = active_sample_id(session)
        if sample_id is None:
            return pd.DataFrame(columns=columns)
        frame = _sample_frame(session, sample_id)
        readers = _readers(session)
    rows = []
    for language, group in frame.groupby("query_language"):
        eligible = readers.get(language, set())
        open_items = int((group["a1_status"] != "submitted").sum())
        waiting = group["double_annotate"] & (group["a1_status"] == "submitted") & (group["a2_status"] != "submitted")
        second = group[waiting]
        stuck_second = int(sum(not (eligible - {int(who)}) for who in second["a1_who"]))
        if not eligible and (open_items or len(second)):
            reason = "no active annotator reads this language"
        elif stuck_second:
            reason = f"{stuck_second} double-annotated items need a second annotator who reads it"
        else:
            continue
        rows.append(
            {
                "query_language": language,
                "items": len(group),
                "open_items": open_items,
                "open_second_labels": len(second),
                "eligible_annotators": len(eligible),
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=columns)
