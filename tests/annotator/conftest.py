"""Fixtures for the service tests: PostgreSQL schemas reused within a test process, and for
routing a sampled study built directly (without the sampler) and accounts.

The sample rows are written by hand, so routing is tested on its own: every stratum gets a
seeded random ``queue_position`` order and a seeded share of double-annotated items, like
the sampler makes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from annotator.access.accounts import add_annotator
from annotator.storage import upgrade_database
from db.models import (
    Adjudication,
    Annotation,
    AnnotationEvent,
    Assignment,
    Sample,
    SampleItem,
    SampleStratum,
)


class _PostgresSchemas:
    """Migrated schemas in the PostgreSQL test database for one test process, dropped at its end.

    Running the migrations takes about half a second, and 170 tests here run on PostgreSQL; so a
    test gets the process's schema emptied (``TRUNCATE ... RESTART IDENTITY``: the same rows and
    ids as a schema just migrated; the migrations insert no rows), and a new one only where a
    connection a test left open still locks a table.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = create_engine(url, isolation_level="AUTOCOMMIT")
        self.made: list[str] = []
        self.schema: str | None = None

    def engine(self, schema: str) -> Engine:
        return create_engine(self.url, pool_pre_ping=True, connect_args={"options": f"-csearch_path={schema}"})

    def fresh(self) -> str:
        schema = f"t_{uuid.uuid4().hex}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.made.append(schema)
        engine = self.engine(schema)
        try:
            upgrade_database(engine)
        finally:
            engine.dispose()
        return schema

    def emptied(self) -> Engine:
        if self.schema is not None:
            engine = self.engine(self.schema)
            try:
                with engine.begin() as connection:
                    connection.execute(text("SET LOCAL lock_timeout = '5s'"))
                    tables = connection.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = :schema AND tablename != :kept"),
                        {"schema": self.schema, "kept": "alembic_version"},
                    ).scalars()
                    names = ", ".join(f'"{table}"' for table in tables)
                    connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                return engine
            except OperationalError:  # locked by a connection a test left open: start afresh
                engine.dispose()
        self.schema = self.fresh()
        return self.engine(self.schema)

    def drop(self) -> None:
        with self.admin.connect() as connection:
            for schema in self.made:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def _postgres_schemas() -> Iterator[_PostgresSchemas]:
    from tests.conftest import POSTGRES_URL

    schemas = _PostgresSchemas(POSTGRES_URL)
    try:
        with schemas.admin.connect():
            pass
    except OperationalError as error:
        schemas.admin.dispose()
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {error.orig}")
    yield schemas
    schemas.drop()


@pytest.fixture
def postgres_engine(_postgres_schemas: _PostgresSchemas) -> Iterator[Engine]:
    """An empty database at head on PostgreSQL (overrides tests/conftest.py's, which migrates a
    new schema for every test); its schema is the test process's, see :class:`_PostgresSchemas`."""
    engine = _postgres_schemas.emptied()
    yield engine
    engine.dispose()


def create_sample(
    engine: Engine, completions: pd.DataFrame, *, name: str = "test", seed: int = 0, double_share: float = 0.1
) -> pd.DataFrame:
    """A sample holding every row of ``completions`` (id, benchmark, query_language).

    Returns the items: completion_id, stratum, query_language, queue_position, double_annotate.
    """
    rng = np.random.default_rng(seed)
    items = completions[["id", "benchmark", "query_language"]].rename(columns={"id": "completion_id"}).copy()
    items["stratum"] = items["benchmark"] + "|" + items["query_language"]
    items["queue_position"] = 0
    for index in items.groupby("stratum").groups.values():
        items.loc[index, "queue_position"] = rng.permutation(len(index))
    items["double_annotate"] = rng.random(len(items)) < double_share
    with Session(engine) as session, session.begin():
        sample = Sample(
            name=name, seed=seed, n_target=len(items), weights={"scheme": "test"}, overlap_share=double_share
        )
        session.add(sample)
        session.flush()
        for (stratum, benchmark, language), group in items.groupby(["stratum", "benchmark", "query_language"]):
            session.add(
                SampleStratum(
                    sample_id=sample.id,
                    stratum=stratum,
                    benchmark=benchmark,
                    query_language=language,
                    population=len(group),
                    weight_sum=float(len(group)),
                    expected=float(len(group)),
                    drawn=len(group),
                )
            )
        session.execute(
            insert(SampleItem),
            [
                {
                    "sample_id": sample.id,
                    "completion_id": row.completion_id,
                    "stratum": row.stratum,
                    "query_language": row.query_language,
                    "inclusion_probability": 1.0,
                    "queue_position": int(row.queue_position),
                    "round": 1,
                    "double_annotate": bool(row.double_annotate),
                }
                for row in items.itertuples()
            ],
        )
    return items.drop(columns="benchmark").reset_index(drop=True)


@pytest.fixture
def make_study(
    insert_completions: Callable[[Engine, pd.DataFrame], int],
    completion_frame: Callable[..., pd.DataFrame],
) -> Callable[..., pd.DataFrame]:
    """``make_study(engine, {(benchmark, lang): n}, double_share=0.1)``: completions + a sample of all."""

    def make(engine: Engine, counts: Mapping[tuple[str, str], int], **options) -> pd.DataFrame:
        frame = completion_frame(counts)
        frame["prompt"] = "prompt of " + frame["id"]
        frame["gold_answer"] = "gold"
        insert_completions(engine, frame)
        return create_sample(engine, frame, **options)

    return make


@pytest.fixture
def add_account() -> Callable[..., int]:
    """``add_account(engine, name, "deu,eng", role="annotator")``: an account without a password."""

    def add(engine: Engine, name: str, languages: str, role: str = "annotator") -> int:
        return add_annotator(engine, name, languages, role, password=None)

    return add


def snapshot(engine: Engine) -> dict[str, object]:
    """Everything a refused request must leave unchanged: rows of the labeling tables."""
    with Session(engine) as session:
        return {
            model.__tablename__: sorted(
                tuple(str(value) for value in row) for row in session.execute(select(*model.__table__.columns))
            )
            for model in (Assignment, Annotation, AnnotationEvent, Adjudication)
        }


def count(engine: Engine, model: type) -> int:
    """Rows in ``model``'s table."""
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture(name="db_snapshot")
def snapshot_fixture() -> Callable[[Engine], dict[str, object]]:
    """:func:`snapshot`, for tests."""
    return snapshot


@pytest.fixture(name="row_count")
def count_fixture() -> Callable[[Engine, type], int]:
    """:func:`count`, for tests."""
    return count
