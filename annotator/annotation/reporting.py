"""How far annotation is: an annotator's :func:`progress` (and why their queue is empty when it
is), :func:`queue_status` per stratum of the active sample, and :func:`unroutable_languages`
whose open work no active annotator can take. Read-only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from annotator.annotation.queue import item_view
from annotator.annotation.reads import active_annotator, current_sample_id, queue_rows, sample_frame, utc
from annotator.storage import session_scope
from db.models import Annotation, Annotator, AnnotatorLanguage

if TYPE_CHECKING:  # pandas only for the tables, imported there: progress stays quick to start
    import pandas as pd

__all__ = ["Progress", "QueueState", "progress", "queue_status", "unroutable_languages"]


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


def _start_of_day(now: datetime) -> datetime:
    return datetime.combine(now.date(), time.min, tzinfo=UTC)


def progress(engine: Engine, annotator_id: int, now: datetime | None = None) -> Progress:
    """How far the annotator is, and why their queue is empty when it is."""
    now = utc(now)
    with session_scope(engine) as session:
        me, languages = active_annotator(session, annotator_id)
        counts = session.execute(
            select(func.count(), func.count().filter(Annotation.created_at >= _start_of_day(now))).where(
                Annotation.annotator_id == me
            )
        ).one()
        sample_id = current_sample_id(session)
        views = [item_view(row, me, now) for row in queue_rows(session, me, languages)]
        expiries = [
            utc(view.row.a1_expires if view.slot1 == "held" else view.row.a2_expires)
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


def _active_sample_work(engine: Engine) -> tuple[pd.DataFrame, dict[str, set[int]]] | None:
    """The active sample's items with both slots (:func:`sample_frame`) and who reads each
    language (:func:`_readers`), read in one transaction; None before any sample."""
    with session_scope(engine) as session:
        sample_id = current_sample_id(session)
        if sample_id is None:
            return None
        return sample_frame(session, sample_id), _readers(session)


def queue_status(engine: Engine, now: datetime | None = None) -> pd.DataFrame:
    """Per stratum of the active sample: items, labeled (slot 1), held, expired claims,
    skipped, remaining, planned and finished second labels, labeled share, and how many
    active annotators read its language. Empty when there is no sample."""
    import pandas as pd

    now = utc(now)
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
    work = _active_sample_work(engine)
    if work is None or work[0].empty:
        return pd.DataFrame(columns=columns)
    frame, readers = work

    def claimed(slot: str, live: bool) -> pd.Series:
        expires = frame[f"{slot}_expires"].map(lambda value: utc(value) >= now if value is not None else False)
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
    work = _active_sample_work(engine)
    if work is None:
        return pd.DataFrame(columns=columns)
    frame, readers = work
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
