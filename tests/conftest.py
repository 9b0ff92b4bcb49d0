"""Shared fixtures: fresh databases on SQLite and PostgreSQL, a seeded RNG, synthetic completions
and labels.

``engine`` runs a test on both backends. PostgreSQL tests get a schema of their own (dropped
afterwards), so they can run in parallel under pytest-xdist; they are skipped where no server
answers at ``IFL_TEST_POSTGRES_URL`` (default: the local ``test`` database).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from annotator.storage import make_engine, upgrade_database
from db.models import (
    Adjudication,
    Annotation,
    Annotator,
    Assignment,
    Completion,
    Sample,
    SampleItem,
    utcnow,
)

POSTGRES_URL = os.environ.get("IFL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_INSERT_BATCH = 50_000


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a ``slow`` study run first, their tests together and in order.

    Under ``-n 2`` the workers take tests in collection order, and ``tests/stats`` comes last: one
    worker ran the two small-sample studies (30 s) at the very end while the other had nothing
    left to do. Started first, they run beside the rest.
    """
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite file database with the schema at head."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ifl.sqlite'}")
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """A fresh schema in the PostgreSQL test database, with the schema at head; dropped after."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    schema = f"t_{uuid.uuid4().hex}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {error.orig}")
    engine = create_engine(POSTGRES_URL, pool_pre_ping=True, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade_database(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each backend in turn: the test runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so that random test data is the same on every run."""
    return np.random.default_rng(20240521)


def completion_frame(
    counts: Mapping[tuple[str, str], int], models: tuple[str, ...] = ("model-a", "model-b")
) -> pd.DataFrame:
    """Synthetic completions: ``counts[(benchmark, query_language)]`` rows each, ids unique.

    Models take turns and ``image`` alternates, so both vary inside every stratum.
    """
    frames = []
    for (benchmark, language), count in counts.items():
        index = np.arange(count)
        frames.append(
            pd.DataFrame(
                {
                    "id": [f"{benchmark}-{language}-{i:07d}" for i in index],
                    "model": np.asarray(models, dtype=object)[index % len(models)],
                    "benchmark": benchmark,
                    "query_language": language,
                    "image": index % 2 == 0,
                    "completion": [f"answer {i}" for i in index],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def insert_completions(engine: Engine, frame: pd.DataFrame) -> int:
    """Insert completions with plain core inserts (fast; no ingest validation). Returns rows.

    ``frame`` needs id, benchmark and query_language; model, image and completion default.
    """
    rows = (
        frame.assign(
            model=frame.get("model", "model-a"),
            image=frame.get("image", False),
            completion=frame.get("completion", ""),
            imported_at=utcnow(),
        )
        .astype(object)
        .where(lambda f: f.notna(), None)
        .to_dict("records")
    )
    with engine.begin() as connection:
        for start in range(0, len(rows), _INSERT_BATCH):
            connection.execute(insert(Completion), rows[start : start + _INSERT_BATCH])
    return len(rows)


@pytest.fixture(name="completion_frame")
def completion_frame_fixture() -> Callable[..., pd.DataFrame]:
    """:func:`completion_frame`, for tests."""
    return completion_frame


@pytest.fixture(name="insert_completions")
def insert_completions_fixture() -> Callable[[Engine, pd.DataFrame], int]:
    """:func:`insert_completions`, for tests."""
    return insert_completions


def _account(session: Session, name: str, role: str) -> int:
    annotator_id = session.scalar(select(Annotator.id).where(Annotator.name == name))
    if annotator_id is None:
        account = Annotator(name=name, role=role, password_hash="!no-login")
        session.add(account)
        session.flush()
        annotator_id = account.id
    return annotator_id


def annotate(
    engine: Engine,
    completion_id: str,
    annotator: str,
    answer_language: str,
    *,
    matches_gold: bool | None = None,
    correct: bool | None = None,
    comment: str | None = None,
    slot: int | None = None,
) -> int:
    """Store a submitted label by ``annotator`` (created on first use); returns the annotation id.

    With ``slot``, the label comes through a submitted assignment on the newest sample's item,
    as routing makes them; without, it is a label made outside routing.
    """
    with Session(engine) as session, session.begin():
        annotator_id = _account(session, annotator, "annotator")
        assignment_id = None
        if slot is not None:
            item_id = session.scalar(
                select(SampleItem.id).where(
                    SampleItem.completion_id == completion_id,
                    SampleItem.sample_id == select(func.max(Sample.id)).scalar_subquery(),
                )
            )
            now = utcnow()
            assignment = Assignment(
                sample_item_id=item_id,
                slot=slot,
                annotator_id=annotator_id,
                status="submitted",
                claimed_at=now,
                lease_expires_at=now,
                finished_at=now,
            )
            session.add(assignment)
            session.flush()
            assignment_id = assignment.id
        annotation = Annotation(
            completion_id=completion_id,
            annotator_id=annotator_id,
            assignment_id=assignment_id,
            answer_language=answer_language,
            matches_gold=matches_gold,
            correct=correct,
            comment=comment,
        )
        session.add(annotation)
        session.flush()
        return annotation.id


def adjudicate(
    engine: Engine,
    completion_id: str,
    researcher: str,
    answer_language: str,
    *,
    matches_gold: bool | None = None,
    correct: bool | None = None,
    comment: str | None = None,
) -> None:
    """Store a researcher's ruling on ``completion_id`` (the researcher is created on first use)."""
    with Session(engine) as session, session.begin():
        session.add(
            Adjudication(
                completion_id=completion_id,
                researcher_id=_account(session, researcher, "researcher"),
                answer_language=answer_language,
                matches_gold=matches_gold,
                correct=correct,
                comment=comment,
            )
        )


@pytest.fixture(name="annotate")
def annotate_fixture() -> Callable[..., int]:
    """:func:`annotate`, for tests."""
    return annotate


@pytest.fixture(name="adjudicate")
def adjudicate_fixture() -> Callable[..., None]:
    """:func:`adjudicate`, for tests."""
    return adjudicate
