"""Inter-annotator agreement on the doubly annotated items, and adjudication of disagreements.

Agreement is reported per question and per query language with three figures, because each
answers a different worry: percent agreement is what a person reads, Cohen's kappa corrects
it for chance given each annotator's own label frequencies, and Krippendorff's alpha (nominal)
corrects it with the pooled frequencies and is the usual reliability figure for coding. NA
(None) is a category of its own for the yes/no questions: one annotator saying "not
applicable" where the other says "yes" is a disagreement.

Disagreements go to researchers, who see the item and every label but no surrogate
prediction: an adjudication informed by the language-ID model or the judge would correlate
the gold labels with the surrogate's errors, which is exactly what the estimator must not have.
"""

from __future__ import annotations

import warnings
from datetime import datetime

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from annotator.annotation.answers import Label
from annotator.annotation.labels import resolved_labels
from annotator.storage import session_scope
from db.models import (
    Adjudication,
    Annotation,
    AnnotationEvent,
    Annotator,
    Assignment,
    Completion,
    SampleItem,
    utcnow,
)
from db.vocabulary import QUESTIONS, RESEARCH_ROLES

__all__ = [
    "AGREEMENT_COLUMNS",
    "AdjudicationError",
    "adjudicate",
    "adjudication_queue",
    "agreement_table",
]

AGREEMENT_COLUMNS = ["question", "query_language", "n_items", "percent_agreement", "cohen_kappa", "krippendorff_alpha"]


class AdjudicationError(ValueError):
    """An adjudication was refused and nothing was changed; the message says why."""


def _annotations(session: Session, sample_id: int | None) -> pd.DataFrame:
    query = (
        select(
            Annotation.id,
            Annotation.completion_id,
            Annotation.annotator_id,
            Annotation.answer_language,
            Annotation.matches_gold,
            Annotation.correct,
            Annotation.comment,
            Annotation.created_at,
            Assignment.slot,
            Completion.query_language,
        )
        .join(Completion, Completion.id == Annotation.completion_id)
        .outerjoin(Assignment, Assignment.id == Annotation.assignment_id)
    )
    if sample_id is not None:
        query = query.where(
            Annotation.completion_id.in_(select(SampleItem.completion_id).where(SampleItem.sample_id == sample_id))
        )
    return pd.DataFrame(session.execute(query).all(), columns=list(query.selected_columns.keys()))


def _pairs(annotations: pd.DataFrame) -> pd.DataFrame:
    """The first two labels of every completion labeled at least twice, side by side."""
    ordered = annotations.assign(rank=annotations["slot"].fillna(1.5)).sort_values(
        ["completion_id", "rank", "created_at", "id"]
    )
    ordered["nth"] = ordered.groupby("completion_id").cumcount()
    first = ordered[ordered["nth"] == 0].set_index("completion_id")
    second = ordered[ordered["nth"] == 1].set_index("completion_id")
    return first[["query_language", *QUESTIONS]].join(second[list(QUESTIONS)].add_suffix("_2"), how="inner")


def _figures(first: pd.Series, second: pd.Series) -> tuple[float, float, float]:
    """Percent agreement, Cohen's kappa and Krippendorff's alpha of two raters' labels.

    Kappa and alpha are undefined (NaN) when only one category occurs: no variation, nothing
    to correct for chance with.
    """
    # repr, not astype(str): pandas turns None into NaN there, and NA is a category here.
    a, b = first.map(repr).to_numpy(dtype=str), second.map(repr).to_numpy(dtype=str)
    percent = float(np.mean(a == b) * 100)
    categories = np.unique(np.concatenate([a, b]))
    if len(categories) < 2:
        return percent, float("nan"), float("nan")
    codes = np.searchsorted(categories, np.vstack([a, b])).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = float(cohen_kappa_score(a, b))
    alpha = float(krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal"))
    return percent, kappa, alpha


def agreement_table(engine: Engine, sample_id: int | None = None) -> pd.DataFrame:
    """Agreement between the first two labels of doubly annotated completions.

    One row per question and query language, plus ``query_language == "all"`` per question.
    Columns: question, query_language, n_items, percent_agreement (0-100), cohen_kappa,
    krippendorff_alpha. Empty when no completion has two labels yet.
    """
    with session_scope(engine) as session:
        annotations = _annotations(session, sample_id)
    if annotations.empty:
        return pd.DataFrame(columns=AGREEMENT_COLUMNS)
    pairs = _pairs(annotations)
    if pairs.empty:
        return pd.DataFrame(columns=AGREEMENT_COLUMNS)
    rows = []
    groups = [("all", pairs), *sorted(pairs.groupby("query_language"), key=lambda group: str(group[0]))]
    for question in QUESTIONS:
        for language, group in groups:
            percent, kappa, alpha = _figures(group[question], group[f"{question}_2"])
            rows.append([question, str(language), len(group), percent, kappa, alpha])
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def adjudication_queue(engine: Engine, sample_id: int | None = None) -> pd.DataFrame:
    """Completions whose annotators disagree and that no researcher has adjudicated, oldest first.

    Columns: completion_id, query_language, prompt, image_path, image_url, gold_answer,
    completion, labels (a list of {annotator, answer_language, matches_gold, correct,
    comment}), last_labeled_at.
    """
    columns = [
        "completion_id",
        "query_language",
        "prompt",
        "image_path",
        "image_url",
        "gold_answer",
        "completion",
        "labels",
        "last_labeled_at",
    ]
    with session_scope(engine) as session:
        resolved = resolved_labels(session, sample_id)
        waiting = resolved[resolved["disagreement"] & ~resolved["adjudicated"]]
        if waiting.empty:
            return pd.DataFrame(columns=columns)
        ids = waiting["completion_id"].tolist()
        content = pd.DataFrame(
            session.execute(
                select(
                    Completion.id.label("completion_id"),
                    Completion.query_language,
                    Completion.prompt,
                    Completion.image_path,
                    Completion.image_url,
                    Completion.gold_answer,
                    Completion.completion,
                ).where(Completion.id.in_(ids))
            )
            .mappings()
            .all()
        )
        labels = session.execute(
            select(
                Annotation.completion_id,
                Annotator.name,
                Annotation.answer_language,
                Annotation.matches_gold,
                Annotation.correct,
                Annotation.comment,
            )
            .join(Annotator, Annotator.id == Annotation.annotator_id)
            .where(Annotation.completion_id.in_(ids))
            .order_by(Annotation.completion_id, Annotation.created_at, Annotation.id)
        ).all()
    by_completion: dict[str, list[dict[str, object]]] = {}
    for row in labels:
        by_completion.setdefault(row.completion_id, []).append(
            {
                "annotator": row.name,
                "answer_language": row.answer_language,
                "matches_gold": row.matches_gold,
                "correct": row.correct,
                "comment": row.comment,
            }
        )
    queue = content.merge(waiting[["completion_id", "last_labeled_at"]], on="completion_id")
    queue["labels"] = queue["completion_id"].map(by_completion)
    return queue.sort_values(["last_labeled_at", "completion_id"]).reset_index(drop=True)[columns]


def adjudicate(
    engine: Engine,
    researcher_id: int,
    completion_id: str,
    answer_language: str,
    matches_gold: bool | None,
    correct: bool | None,
    comment: str | None = None,
) -> None:
    """Record a researcher's resolution of ``completion_id``; it becomes the resolved label.

    Only researchers and admins adjudicate, only labeled completions, and a later
    adjudication replaces an earlier one. Every adjudication is kept as an ``adjudicate``
    event with before and after.
    """
    label = Label(completion_id, answer_language, matches_gold, correct, comment).checked().values()
    del label["seconds_spent"]
    now: datetime = utcnow()
    with session_scope(engine, write=True) as session:
        researcher = session.get(Annotator, int(researcher_id))
        if researcher is None or not researcher.active:
            raise AdjudicationError(f"no active account with id {researcher_id!r}")
        if researcher.role not in RESEARCH_ROLES:
            raise AdjudicationError(
                f"{researcher.name!r} is an {researcher.role}; only researchers and admins adjudicate"
            )
        if session.scalar(select(Annotation.id).where(Annotation.completion_id == completion_id).limit(1)) is None:
            raise AdjudicationError(f"completion {completion_id!r} has no labels to adjudicate")
        existing = session.get(Adjudication, completion_id)
        before = None
        if existing is None:
            existing = Adjudication(completion_id=completion_id)
            session.add(existing)
        else:
            before = {field: getattr(existing, field) for field in label}
        for field, value in label.items():
            setattr(existing, field, value)
        existing.researcher_id = researcher.id
        existing.resolved_at = now
        session.add(
            AnnotationEvent(
                completion_id=completion_id,
                annotation_id=None,
                actor_id=researcher.id,
                action="adjudicate",
                before=before,
                after=label,
                at=now,
            )
        )
