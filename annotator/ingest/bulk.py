"""Bulk upserts of DataFrames, fast enough for the study's 730k completions.

SQLAlchemy's per-row parameter handling costs more than the database's own work at this
scale (its own executemany and "insertmanyvalues" paths take 2-4 times as long here:
``benchmarks/bench_ingest.py``), so on SQLite SQLAlchemy compiles one ``INSERT ... VALUES``
statement of many rows ``ON CONFLICT DO UPDATE``, run with the driver's ``executemany`` on
column-wise converted values; on PostgreSQL the rows are streamed with ``COPY`` into a
temporary table and upserted by one ``INSERT ... SELECT`` (a round trip per row would dominate).
Both skip rows that are already stored exactly as given, so re-importing the same data changes
nothing.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import pandas as pd
from sqlalchemy import (
    JSON,
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    Table,
    Text,
    bindparam,
    cast,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from db.models import utcnow

__all__ = ["upsert_rows"]

# Rows per executemany call: large enough to amortise calls, small enough for memory.
_BATCH = 20_000
# Rows per multi-row INSERT on SQLite (100 runs as fast as 500 and compiles in 20 ms, not 260),
# and SQLite's limit on bound parameters (since 3.32).
_ROWS_PER_STATEMENT = 100
_SQLITE_MAX_PARAMETERS = 32_766


def _column_values(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column as plain Python values, with every kind of missing as None."""
    series = frame[name]
    return series.astype(object).where(series.notna(), None).tolist()


def _upsert(statement, table: Table, keys: tuple[str, ...], compared: tuple[str, ...], updated: tuple[str, ...]):
    """``statement`` (an INSERT) made an upsert by ``keys`` that updates a stored row only where
    some ``compared`` column differs from the given one."""
    excluded = statement.excluded
    differs = None
    for column in compared:
        stored: ColumnElement[Any] = table.c[column]
        given: ColumnElement[Any] = excluded[column]
        if isinstance(stored.type, JSON):  # PostgreSQL's json has no equality: compare text
            stored, given = cast(stored, Text), cast(given, Text)
        differs = stored.is_distinct_from(given) if differs is None else differs | stored.is_distinct_from(given)
    if not updated:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={column: excluded[column] for column in updated}, where=differs
    )


def upsert_rows(
    connection: Connection, table: Table, frame: pd.DataFrame, keys: list[str], stamp: str | None = None
) -> int:
    """Insert ``frame``'s rows into ``table`` or update them by ``keys``, in the caller's transaction.

    A stored row is updated only where some column differs from the given one; ``stamp`` names
    a timestamp column set to now on the rows inserted or changed. Returns how many rows were
    inserted or changed.
    """
    dialect = connection.dialect
    compared = tuple(column for column in frame.columns if column not in keys)
    names = [*frame.columns, *([stamp] if stamp else [])]
    updated = tuple(column for column in names if column not in keys)
    now = utcnow()
    if dialect.name == "postgresql":

        def upsert(statement):
            return _upsert(statement, table, tuple(keys), compared, updated)

        return _upsert_by_copy(connection, table, frame, names, stamp, now, upsert)
    # SQLite: one statement of many VALUES rows costs about half as much per row as an executemany
    # of one-row statements, and SQLAlchemy's own executemany (per-row parameter dicts, bind
    # processing and "insertmanyvalues") costs 2-4 times as much as this whole path
    # (benchmarks/bench_ingest.py --compare). So SQLAlchemy compiles the many-row statement, and
    # the values, bind-processed column-wise, go to the driver's executemany.
    ordered = tuple(column.name for column in table.columns if column.name in names)  # as SQLAlchemy binds
    columns = []
    for name in ordered:
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if name == stamp:
            columns.append([processor(now) if processor else now] * len(frame))
            continue
        values = _column_values(frame, name)
        columns.append([None if v is None else processor(v) for v in values] if processor else values)
    rows = list(zip(*columns, strict=True))
    per_statement = max(1, min(_ROWS_PER_STATEMENT, _SQLITE_MAX_PARAMETERS // len(ordered)))
    full = len(rows) - len(rows) % per_statement
    shape = (table, ordered, tuple(keys), compared, updated)
    touched = 0
    if full:
        many = _sqlite_upsert_sql(*shape, per_statement)
        for start in range(0, full, _BATCH):
            stop = min(start + _BATCH, full)
            batches = [
                tuple(v for row in rows[at : at + per_statement] for v in row)
                for at in range(start, stop, per_statement)
            ]
            touched += connection.exec_driver_sql(many, batches).rowcount
    if full < len(rows):  # the rest row by row: compiling a statement of their number costs more
        touched += connection.exec_driver_sql(_sqlite_upsert_sql(*shape, 1), rows[full:]).rowcount
    return touched


@lru_cache(maxsize=32)
def _sqlite_upsert_sql(
    table: Table,
    names: tuple[str, ...],
    keys: tuple[str, ...],
    compared: tuple[str, ...],
    updated: tuple[str, ...],
    count: int,
) -> str:
    """The SQLite upsert of ``count`` rows of ``names`` as SQLAlchemy compiles it (once per shape),
    its parameters row by row in the order of ``names`` (checked: the values go by position)."""
    parameters: list[list[BindParameter[Any]]] = [
        [bindparam(f"r{row}c{column}") for column in range(len(names))] for row in range(count)
    ]
    rows = [dict(zip(names, row, strict=True)) for row in parameters]
    compiled = _upsert(sqlite.insert(table).values(rows), table, keys, compared, updated).compile(
        dialect=sqlite.dialect()
    )
    if list(compiled.positiontup or ()) != [parameter.key for row in parameters for parameter in row]:
        raise ValueError(f"unexpected parameter order in {str(compiled)[:200]}")
    return str(compiled)


def _upsert_by_copy(
    connection: Connection, table: Table, frame: pd.DataFrame, names: list[str], stamp, now, upsert
) -> int:
    """PostgreSQL: COPY into a temporary table dropped at commit, then one INSERT ... SELECT."""
    stage = Table(
        f"ifl_stage_{table.name}",
        MetaData(),
        *(Column(name, table.c[name].type) for name in names),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    stage.create(connection)
    columns = []
    for name in names:
        if name == stamp:
            values: list[Any] = [now] * len(frame)
        else:
            values = _column_values(frame, name)
            if isinstance(table.c[name].type, JSON):
                values = [None if v is None else json.dumps(v) for v in values]
        columns.append(values)
    raw: Any = connection.connection.driver_connection  # psycopg's connection: COPY is psycopg's API
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {stage.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
        statement = upsert(postgresql.insert(table).from_select(names, select(*(stage.c[n] for n in names))))
        compiled = statement.compile(dialect=connection.dialect)
        # Through the driver's cursor: SQLAlchemy reports no rowcount for INSERT ... SELECT here.
        cursor.execute(str(compiled), compiled.params)
        touched = cursor.rowcount
    stage.drop(connection)
    return touched
