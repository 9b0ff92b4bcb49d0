"""Resolved labels: the one gold label per completion that estimation uses.

Rule: a researcher's adjudication if there is one, else the label of the slot-1 (primary)
annotator. Taking the primary label while adjudication lags keeps every labeled item's gold
label defined, so the design-based estimator can use the whole labeled subsample at any time
instead of silently dropping the doubly annotated items whose pair disagrees (which would
make the labeled set depend on the labels). Such items are flagged ``disagreement`` and wait
in the adjudication queue; once adjudicated, the adjudication wins.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Adjudication, Annotation, Assignment, SampleItem
from db.vocabulary import QUESTIONS

__all__ = ["RESOLVED_COLUMNS", "resolved_labels"]

#: The columns of :func:`resolved_labels`, in order (a contract: estimation codes against it).
RESOLVED_COLUMNS = [
    "completion_id",
    "answer_language",
    "matches_gold",
    "correct",
    "n_annotations",
    "adjudicated",
    "disagreement",
    "first_labeled_at",
    "last_labeled_at",
]
_DTYPES = {
    "completion_id": "str",
    "answer_language": "object",
    "matches_gold": "object",
    "correct": "object",
    "n_annotations": "int64",
    "adjudicated": "bool",
    "disagreement": "bool",
    "first_labeled_at": "datetime64[us, UTC]",
    "last_labeled_at": "datetime64[us, UTC]",
}


def _na_to_none(series: pd.Series) -> pd.Series:
    """Object dtype with Python True/False/None, as the contract promises (no NaN, no pd.NA)."""
    return series.astype(object).where(series.notna(), None)


def resolved_labels(session: Session, sample_id: int | None = None) -> pd.DataFrame:
    """One row per completion with at least one annotation (of ``sample_id``'s items if given).

    Columns: completion_id, answer_language, matches_gold, correct (True/False/None = NA),
    n_annotations, adjudicated, disagreement (the annotators' labels differ on any question,
    NA versus a value included; stays True after adjudication), first_labeled_at (first
    annotation), last_labeled_at (latest annotation, revision or adjudication), both UTC.
    Two queries, then pandas.
    """
    annotations = select(
        Annotation.id,
        Annotation.completion_id,
        Annotation.answer_language,
        Annotation.matches_gold,
        Annotation.correct,
        Annotation.created_at,
        Annotation.updated_at,
        Assignment.slot,
    ).outerjoin(Assignment, Assignment.id == Annotation.assignment_id)
    adjudications = select(
        Adjudication.completion_id,
        Adjudication.answer_language,
        Adjudication.matches_gold,
        Adjudication.correct,
        Adjudication.resolved_at,
    )
    if sample_id is not None:
        in_sample = select(SampleItem.completion_id).where(SampleItem.sample_id == sample_id)
        annotations = annotations.where(Annotation.completion_id.in_(in_sample))
        adjudications = adjudications.where(Adjudication.completion_id.in_(in_sample))
    labels = pd.DataFrame(session.execute(annotations).all(), columns=list(annotations.selected_columns.keys()))
    adjudicated = pd.DataFrame(
        session.execute(adjudications).all(), columns=list(adjudications.selected_columns.keys())
    ).set_index("completion_id")
    if labels.empty:  # typed like a full result, so callers need no special case
        return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in _DTYPES.items()})
    for column in ("created_at", "updated_at"):
        labels[column] = pd.to_datetime(labels[column], utc=True)
    # Primary first: slot 1, then labels made outside routing (no slot), then slot 2; oldest first.
    labels["rank"] = labels["slot"].fillna(1.5)
    labels = labels.sort_values(["completion_id", "rank", "created_at", "id"])
    key = labels["answer_language"] + "|" + labels["matches_gold"].map(repr) + "|" + labels["correct"].map(repr)
    groups = labels.groupby("completion_id", sort=True)
    resolved = labels.drop_duplicates("completion_id").set_index("completion_id")[list(QUESTIONS)].astype(object)
    resolved["n_annotations"] = groups.size()
    resolved["disagreement"] = key.groupby(labels["completion_id"]).nunique() > 1
    resolved["first_labeled_at"] = groups["created_at"].min()
    resolved["last_labeled_at"] = groups["updated_at"].max()
    resolved["adjudicated"] = resolved.index.isin(adjudicated.index)
    if resolved["adjudicated"].any():
        ruled = adjudicated.reindex(resolved.index[resolved["adjudicated"]])
        resolved.loc[ruled.index, list(QUESTIONS)] = ruled[list(QUESTIONS)].astype(object).to_numpy()
        resolved_at = pd.to_datetime(ruled["resolved_at"], utc=True)
        resolved.loc[ruled.index, "last_labeled_at"] = resolved.loc[ruled.index, "last_labeled_at"].where(
            resolved.loc[ruled.index, "last_labeled_at"] >= resolved_at, resolved_at
        )
    for column in ("matches_gold", "correct"):
        resolved[column] = _na_to_none(resolved[column])
    return resolved.reset_index()[RESOLVED_COLUMNS].astype(_DTYPES)
