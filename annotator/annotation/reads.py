"""What the annotation API reads from the database, built once (claims are the hot path): the
active sample, the annotator and the languages they read, and each sampled item with both its
slots, as the :class:`~annotator.annotation.queue.QueueRow` the queue policy works on.

Shared by claims and submits (:mod:`~annotator.annotation.routing`), revisions and the
reports (:mod:`~annotator.annotation.reporting`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, select
from sqlalchemy.orm import Session, aliased

from annotator.annotation.errors import UnknownAnnotatorError
from annotator.annotation.queue import QueueRow, aware_utc
from db.models import Annotation, Annotator, AnnotatorLanguage, Assignment, Sample, SampleItem, utcnow

if TYPE_CHECKING:  # pandas only for the reports, imported there: claims stay quick to start
    import pandas as pd

__all__ = [
    "active_annotator",
    "current_sample_id",
    "queue_rows",
    "sample_frame",
    "submittable_items",
    "utc",
]


def utc(value: datetime | None) -> datetime:
    """Aware UTC (see :func:`~annotator.annotation.queue.aware_utc`); no value means now."""
    return utcnow() if value is None else aware_utc(value)


def current_sample_id(bind: Engine | Connection | Session) -> int | None:
    """The study's sample, the one routing, estimation and exports work on: the most recently
    drawn (one database is one study), or None before any. The one definition of it."""
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return connection.scalar(_CURRENT_SAMPLE)
    return bind.scalar(_CURRENT_SAMPLE)


_CURRENT_SAMPLE = select(func.max(Sample.id))


_ANNOTATOR = (
    select(Annotator.id, Annotator.name, Annotator.active, AnnotatorLanguage.language)
    .outerjoin(AnnotatorLanguage, AnnotatorLanguage.annotator_id == Annotator.id)
    .where(Annotator.id == bindparam("annotator_id"))
)
_ANNOTATOR_LOCKED = _ANNOTATOR.with_for_update(of=Annotator)


def active_annotator(session: Session, annotator_id: int, *, lock: bool = False) -> tuple[int, tuple[str, ...]]:
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


def queue_rows(session: Session, me: int, languages: tuple[str, ...]) -> list[QueueRow]:
    """Every item of the active sample in the annotator's languages, with both slots and own label."""
    if not languages:
        return []
    return [QueueRow(*row) for row in session.execute(_QUEUE_ROWS, {"me": me, "languages": list(languages)})]


def submittable_items(session: Session, me: int, ids: list[str]) -> dict[str, Any]:
    """Completion id -> its item of the active sample with the annotator's open claim and own
    label (ids, or None), for those of ``ids`` in the active sample."""
    return {row.completion_id: row for row in session.execute(_SUBMITTABLE, {"me": me, "ids": ids})}


def sample_frame(session: Session, sample_id: int) -> pd.DataFrame:
    """Every item of the sample with both slots' annotator, status and lease."""
    import pandas as pd

    rows = session.execute(_SAMPLE_FRAME, {"sample_id": sample_id}).all()
    frame = pd.DataFrame(rows, columns=_SAMPLE_FRAME_COLUMNS)
    frame["double_annotate"] = frame["double_annotate"].astype(bool)
    return frame
