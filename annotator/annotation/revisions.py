"""Revising one's own labels: :func:`undo_last` reopens the latest, :func:`revise` corrects any.

Nothing is deleted: a label once given stays in the audit trail, and every correction is an
``update`` event with before and after. A revision takes the same :class:`~annotator.annotation.answers.Label`
as a submit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from annotator.annotation.answers import Label
from annotator.annotation.errors import NotHeldError
from annotator.annotation.reads import active_annotator, utc
from annotator.storage import session_scope
from db.models import Annotation, AnnotationEvent, Completion, utcnow

__all__ = ["LabeledItem", "revise", "undo_last"]


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


def _stored(annotation: Annotation) -> Label:
    return Label(
        annotation.completion_id,
        annotation.answer_language,
        annotation.matches_gold,
        annotation.correct,
        annotation.comment,
        annotation.seconds_spent,
    )


def undo_last(engine: Engine, annotator_id: int) -> LabeledItem | None:
    """Reopen the annotator's most recently submitted label, to correct it with :func:`revise`.

    Nothing is deleted: a label once given stays in the data and the audit trail, and the
    corrected version is recorded as an update with before and after. None if no labels yet.
    """
    with session_scope(engine) as session:
        me, _ = active_annotator(session, annotator_id)
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
            labeled_at=utc(annotation.created_at),
            revised_at=utc(annotation.updated_at),
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
    label = Label(completion_id, answer_language, matches_gold, correct, comment, seconds_spent).checked()
    now = utcnow()
    with session_scope(engine, write=True) as session:
        me, _ = active_annotator(session, annotator_id)
        annotation = session.scalars(
            select(Annotation).where(Annotation.completion_id == completion_id, Annotation.annotator_id == me)
        ).one_or_none()
        if annotation is None:
            raise NotHeldError(f"you have no label on {completion_id!r} to revise")
        before = _stored(annotation)
        spent = annotation.seconds_spent
        if label.seconds_spent is not None:
            spent = label.seconds_spent + (spent or 0.0)
        label = dataclasses.replace(label, seconds_spent=spent)
        if label == before:
            return False
        for field, value in label.values().items():
            setattr(annotation, field, value)
        annotation.updated_at = now
        session.add(
            AnnotationEvent(
                completion_id=completion_id,
                annotation_id=annotation.id,
                actor_id=me,
                action="update",
                before=before.values(),
                after=label.values(),
                at=now,
            )
        )
        return True
