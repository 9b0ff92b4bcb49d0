"""The label an annotator gives one completion: the one :class:`Label` type that submitting
(:mod:`annotator.annotation.routing`), revising (:mod:`annotator.annotation.revisions`) and
adjudicating (:mod:`annotator.annotation.agreement`) share, and its checks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotator.annotation.errors import InvalidLabelError
from db.vocabulary import ANSWER_CLASSES

__all__ = ["LABEL_FIELDS", "Label"]

#: The answered fields of a label, as an annotation row and the audit trail's before/after hold them.
LABEL_FIELDS = ("answer_language", "matches_gold", "correct", "comment", "seconds_spent")


def _is_bool_or_na(value: Any) -> bool:
    return value is None or isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Label:
    """One label of ``completion_id``: the arguments of :func:`~annotator.annotation.routing.submit`
    and :func:`~annotator.annotation.revisions.revise`; ``matches_gold``/``correct`` take None for NA."""

    completion_id: str
    answer_language: str
    matches_gold: bool | None
    correct: bool | None
    comment: str | None = None
    seconds_spent: float | None = None

    def checked(self) -> Label:
        """The label as stored (class lower-cased, comment stripped, empty comment None, Python
        bools and float seconds), or :class:`InvalidLabelError` naming the bad field."""
        answer_language, matches_gold, correct = self.answer_language, self.matches_gold, self.correct
        comment, seconds_spent = self.comment, self.seconds_spent
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
        return Label(
            completion_id=self.completion_id,
            answer_language=answer_language.strip().lower(),
            matches_gold=None if matches_gold is None else bool(matches_gold),
            correct=None if correct is None else bool(correct),
            comment=(comment.strip() or None) if comment is not None else None,
            seconds_spent=None if seconds_spent is None else float(seconds_spent),
        )

    def values(self) -> dict[str, Any]:
        """The answered fields by name (:data:`LABEL_FIELDS`), without the completion id."""
        return {field: getattr(self, field) for field in LABEL_FIELDS}
