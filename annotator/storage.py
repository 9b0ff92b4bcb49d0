"""Where the study lives: database URL, engines, sessions and schema upgrades.

One SQLAlchemy URL names the database: ``--db`` on the CLI, else ``IFL_DATABASE_URL``, else
the embedded SQLite file ``db/ifl.sqlite``. SQLite gets WAL (readers never block the writer),
a busy timeout (concurrent annotators wait instead of failing) and foreign keys (off by
default in SQLite). PostgreSQL needs nothing extra.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import Connection, Engine, Executable, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DatabaseDriverError",
    "database_url",
    "fetch_frame",
    "fetch_rows",
    "get_engine",
    "is_empty",
    "make_engine",
    "session_scope",
    "upgrade_database",
    "writer",
]

DEFAULT_DATABASE_URL = "sqlite:///db/ifl.sqlite"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_MIGRATIONS = Path(__file__).resolve().parent.parent / "db" / "migrations"


class DatabaseDriverError(RuntimeError):
    """The URL names a database whose driver is not installed (PostgreSQL is an extra)."""


def database_url(explicit: str | None = None) -> str:
    """The URL in force: an explicit one, else ``IFL_DATABASE_URL``, else the embedded default."""
    return explicit or os.environ.get("IFL_DATABASE_URL") or DEFAULT_DATABASE_URL


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling defers BEGIN to the first write; take it over so a
    # transaction starts where SQLAlchemy's does (see SQLAlchemy's "serializable isolation" recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # Writers that read first (claiming an item) ask for IMMEDIATE: it takes the write lock up
    # front, so the busy timeout applies instead of a snapshot conflict failing at once.
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str | None = None) -> Engine:
    """A new engine for ``url``; creates the SQLite file's folder on first use."""
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _set_sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() in ("", "psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")  # a URL object: str() would mask the password
        if parsed.get_driver_name() == "psycopg" and importlib.util.find_spec("psycopg") is None:
            raise DatabaseDriverError(
                f"{parsed.render_as_string(hide_password=True)} needs the PostgreSQL driver: "
                'pip install -c constraints.txt -e ".[postgres]"'
            )
    return create_engine(parsed, pool_pre_ping=True)


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (one pool per database)."""
    return make_engine(url)


_IMMEDIATE = {"sqlite_begin": "IMMEDIATE"}


def writer(engine: Engine) -> Engine:
    """The engine for read-then-write transactions: on SQLite they begin IMMEDIATE.

    A new option engine each time (about 5 us), not a cache: an option engine holds its parent,
    so a cache keyed by the engine, weakly or not, would keep every engine and its pool alive.
    The hot path, :func:`session_scope`, sets the option on its connection instead.
    """
    return engine.execution_options(**_IMMEDIATE) if engine.dialect.name == "sqlite" else engine


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error.

    ``write=True`` is for read-then-write transactions that race with others (claims,
    submits): on SQLite it begins IMMEDIATE; PostgreSQL relies on row locks and constraints.
    """
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if write and engine.dialect.name == "sqlite":
            session.connection(execution_options=_IMMEDIATE)  # before the first statement: BEGIN IMMEDIATE
        yield session


def _alembic_config(engine: Engine):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (creates it on an empty database)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def fetch_rows(connection: Connection, statement: Executable) -> list[tuple[Any, ...]]:
    """The rows of a SELECT as plain tuples, straight from the DBAPI cursor.

    SQLAlchemy's per-row ``Row`` objects cost seconds at 730k rows; the values are therefore
    as the driver returns them (SQLite gives booleans as 0/1 and timestamps as text).
    """
    result = connection.execute(statement)
    try:
        return cast(list[tuple[Any, ...]], result.cursor.fetchall())  # a list of tuples in both drivers
    finally:
        result.close()


def fetch_frame(connection: Connection, statement: Executable) -> pd.DataFrame:
    """A SELECT into a DataFrame, like ``pandas.read_sql`` but about twice as fast on big
    tables (see :func:`fetch_rows`: convert types after reading)."""
    result = connection.execute(statement)
    try:
        return pd.DataFrame.from_records(result.cursor.fetchall(), columns=list(result.keys()))
    finally:
        result.close()


def is_empty(engine: Engine) -> bool:
    """True when the database has no completions table or no rows in it."""
    if not inspect(engine).has_table("completions"):
        return True
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT 1 FROM completions LIMIT 1").first() is None
