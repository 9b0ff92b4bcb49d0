"""The ifl-studio schema: SQLAlchemy 2 typed ORM, one database per study.

Vocabulary follows Label Studio: *completions* are the tasks, *predictions* the cheap
surrogates, *annotations* the human labels, *assignments* the routing leases, *samples* the
gold-standard designs. Keys, uniqueness and value checks live in the database, so that a
second client (a notebook, another annotator's browser) cannot break them either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.vocabulary import ANSWER_CLASSES, ROLES

__all__ = [
    "Adjudication",
    "Annotation",
    "AnnotationEvent",
    "Annotator",
    "AnnotatorLanguage",
    "Assignment",
    "Base",
    "Completion",
    "DemoOracle",
    "Prediction",
    "Sample",
    "SampleItem",
    "SampleRound",
    "SampleStratum",
    "SignInFailure",
    "SignInSession",
    "StudySetting",
    "table_of",
    "utcnow",
]

ASSIGNMENT_STATES = ("claimed", "submitted", "skipped", "released")

# Stable constraint names, so Alembic migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp in the database is UTC."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def table_of(model: type[Base]) -> Table:
    """The model's Table, for Core statements: SQLAlchemy types ``Model.__table__`` as the wider FromClause."""
    return cast(Table, model.__table__)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Completion(Base):
    """One model output to be judged: a task, in Label Studio's words."""

    __tablename__ = "completions"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    benchmark: Mapped[str] = mapped_column(String(200))
    query_language: Mapped[str] = mapped_column(String(3), comment="ISO 639-3")
    image: Mapped[bool] = mapped_column(Boolean)
    completion: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str | None] = mapped_column(Text)
    gold_answer: Mapped[str | None] = mapped_column(Text)
    image_path: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(Text)
    llm: Mapped[str | None] = mapped_column(String(200))
    vision_encoder: Mapped[str | None] = mapped_column(String(200))
    train_language: Mapped[str | None] = mapped_column(String(200))
    covariates: Mapped[dict[str, Any] | None] = mapped_column(comment="extra input columns, kept for analysis")
    # Indexed: the analysis reads max(imported_at) on every refresh to see whether the
    # population changed (migration 0005).
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    predictions: Mapped[list[Prediction]] = relationship(back_populates="completion")

    __table_args__ = (
        Index("ix_completions_stratum", "benchmark", "query_language"),
        Index("ix_completions_model_benchmark", "model", "benchmark"),
    )


class Prediction(Base):
    """A surrogate for a completion's labels: language ID (``lid176``, ``glotlid``) or a judge."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    completion_id: Mapped[str] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str | None] = mapped_column(String(200))
    raw_label: Mapped[str | None] = mapped_column(String(100))
    probability: Mapped[float | None] = mapped_column(Float)
    language_class: Mapped[str | None] = mapped_column(String(20))
    predicted_fidelity: Mapped[bool | None] = mapped_column(Boolean)
    predicted_correct: Mapped[bool | None] = mapped_column(Boolean)
    # Indexed for the same reason as ``Completion.imported_at`` (migration 0005).
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    completion: Mapped[Completion] = relationship(back_populates="predictions")

    __table_args__ = (
        UniqueConstraint("completion_id", "source"),
        CheckConstraint("probability IS NULL OR (probability >= 0 AND probability <= 1)", name="probability"),
        CheckConstraint(f"language_class IS NULL OR {_in('language_class', ANSWER_CLASSES)}", name="language_class"),
        Index("ix_predictions_source", "source"),
    )


class Sample(Base):
    """A gold-standard sampling design: weights, seed and target size, topped up in rounds."""

    __tablename__ = "samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    seed: Mapped[int] = mapped_column(Integer)
    n_target: Mapped[int] = mapped_column(Integer)
    weights: Mapped[dict[str, Any]] = mapped_column(comment="the weighting scheme, as given")
    design: Mapped[dict[str, Any] | None] = mapped_column(
        comment="allocation, levels and the cell -> stratum map (NULL: strata are benchmark x language)"
    )
    overlap_share: Mapped[float] = mapped_column(Float, default=0.1)
    rounds: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    strata: Mapped[list[SampleStratum]] = relationship(back_populates="sample", cascade="all, delete-orphan")
    items: Mapped[list[SampleItem]] = relationship(back_populates="sample", cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("n_target > 0", name="n_target"),
        CheckConstraint("overlap_share >= 0 AND overlap_share <= 1", name="overlap_share"),
    )


class SampleStratum(Base):
    """Per-stratum design figures; the inclusion probability of every member is n_h / N_h."""

    __tablename__ = "sample_strata"

    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    stratum: Mapped[str] = mapped_column(String(400), primary_key=True)
    benchmark: Mapped[str] = mapped_column(String(200))
    query_language: Mapped[str] = mapped_column(String(3))
    population: Mapped[int] = mapped_column(Integer, comment="N_h")
    weight_sum: Mapped[float] = mapped_column(Float)
    expected: Mapped[float] = mapped_column(Float, comment="n * weight share before rounding")
    drawn: Mapped[int] = mapped_column(Integer, comment="n_h")

    sample: Mapped[Sample] = relationship(back_populates="strata")

    __table_args__ = (CheckConstraint("drawn >= 0 AND drawn <= population", name="drawn"),)


class SampleRound(Base):
    """One draw of a sample: the first (round 1) or a top-up, with the seed that made it, so
    every round can be reproduced from the same completions."""

    __tablename__ = "sample_rounds"

    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    seed: Mapped[int] = mapped_column(Integer)
    n_total: Mapped[int] = mapped_column(Integer, comment="sample size after this round")
    added: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (CheckConstraint("round >= 1 AND added >= 0 AND n_total > 0", name="round"),)


class SampleItem(Base):
    """A sampled completion, with its exact inclusion probability and its place in the queue."""

    __tablename__ = "sample_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    completion_id: Mapped[str] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"))
    stratum: Mapped[str] = mapped_column(String(400))
    query_language: Mapped[str] = mapped_column(String(3))
    inclusion_probability: Mapped[float] = mapped_column(Float)
    queue_position: Mapped[int] = mapped_column(
        Integer, comment="random order within the stratum, fixed at sampling time"
    )
    round: Mapped[int] = mapped_column(Integer, default=1)
    double_annotate: Mapped[bool] = mapped_column(Boolean, default=False)

    sample: Mapped[Sample] = relationship(back_populates="items")
    completion: Mapped[Completion] = relationship()

    __table_args__ = (
        UniqueConstraint("sample_id", "completion_id"),
        UniqueConstraint("sample_id", "stratum", "queue_position"),
        CheckConstraint("inclusion_probability > 0 AND inclusion_probability <= 1", name="inclusion_probability"),
        Index("ix_sample_items_queue", "sample_id", "query_language", "queue_position"),
    )


class Annotator(Base):
    """A person who labels (or reviews): the languages they read route work to them."""

    __tablename__ = "annotators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="annotator")
    password_hash: Mapped[str] = mapped_column(String(400))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    languages: Mapped[list[AnnotatorLanguage]] = relationship(back_populates="annotator", cascade="all, delete-orphan")

    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)


class AnnotatorLanguage(Base):
    """A language an annotator reads (ISO 639-3); a row each, so routing is a plain join."""

    __tablename__ = "annotator_languages"

    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(3), primary_key=True)

    annotator: Mapped[Annotator] = relationship(back_populates="languages")


class Assignment(Base):
    """A claim on a sampled item by one annotator, held under a lease that expires.

    ``slot`` 1 is the primary annotation, slot 2 the planned second one for agreement. The
    unique key on (item, slot) is what makes two annotators unable to hold the same work.
    """

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_item_id: Mapped[int] = mapped_column(ForeignKey("sample_items.id", ondelete="CASCADE"))
    slot: Mapped[int] = mapped_column(Integer, default=1)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    status: Mapped[str] = mapped_column(String(20), default="claimed")
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("sample_item_id", "slot"),
        CheckConstraint("slot IN (1, 2)", name="slot"),
        CheckConstraint(_in("status", ASSIGNMENT_STATES), name="status"),
        Index("ix_assignments_annotator", "annotator_id", "status"),
    )


class Annotation(Base):
    """A human label of one completion by one annotator; edits keep an audit trail."""

    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    completion_id: Mapped[str] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))
    answer_language: Mapped[str] = mapped_column(String(20))
    matches_gold: Mapped[bool | None] = mapped_column(Boolean, comment="NULL = NA")
    correct: Mapped[bool | None] = mapped_column(Boolean, comment="NULL = NA")
    comment: Mapped[str | None] = mapped_column(Text)
    seconds_spent: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("completion_id", "annotator_id"),
        CheckConstraint(_in("answer_language", ANSWER_CLASSES), name="answer_language"),
        CheckConstraint("seconds_spent IS NULL OR seconds_spent >= 0", name="seconds_spent"),
        Index("ix_annotations_annotator", "annotator_id", "created_at"),
    )


class AnnotationEvent(Base):
    """The audit trail: every create, revision and adjudication, with before and after."""

    __tablename__ = "annotation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    completion_id: Mapped[str] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"))
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="SET NULL"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    action: Mapped[str] = mapped_column(String(20))
    before: Mapped[dict[str, Any] | None] = mapped_column()
    after: Mapped[dict[str, Any] | None] = mapped_column()
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("action", ("create", "update", "adjudicate")), name="action"),
        Index("ix_annotation_events_completion", "completion_id"),
    )


class Adjudication(Base):
    """A researcher's resolution of a disagreement: the gold label estimation uses."""

    __tablename__ = "adjudications"

    completion_id: Mapped[str] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"), primary_key=True)
    researcher_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    answer_language: Mapped[str] = mapped_column(String(20))
    matches_gold: Mapped[bool | None] = mapped_column(Boolean)
    correct: Mapped[bool | None] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (CheckConstraint(_in("answer_language", ANSWER_CLASSES), name="answer_language"),)


class DemoOracle(Base):
    """True labels of the demo study's completions; never shown to annotators.

    Only ``ifl demo`` writes here. The simulated annotators and the tests that check
    estimates against the truth read it.
    """

    __tablename__ = "demo_oracle"

    completion_id: Mapped[str] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"), primary_key=True)
    answer_language: Mapped[str] = mapped_column(String(20))
    matches_gold: Mapped[bool | None] = mapped_column(Boolean)
    correct: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (CheckConstraint(_in("answer_language", ANSWER_CLASSES), name="answer_language"),)


class SignInSession(Base):
    """A signed-in browser: the app keeps only the SHA-256 of the token the browser holds, so a
    copy of the database signs nobody in. Revoked at sign-out; expires by itself."""

    __tablename__ = "sign_in_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_sign_in_sessions_annotator", "annotator_id"),)


class SignInFailure(Base):
    """Failed sign-ins per throttling key (``account:<name>`` or ``client:<address>``), kept
    whether or not the name exists, so the delay tells nobody which names do."""

    __tablename__ = "sign_in_failures"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("failures >= 0", name="failures"),)


class StudySetting(Base):
    """A study-wide text setting edited in the app (``guidelines``: the annotation guidelines
    as Markdown), with who changed it last."""

    __tablename__ = "study_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("annotators.id", ondelete="SET NULL"))
