"""Bulk upserts of DataFrames, fast enough for the study's 730k completions.

SQLAlchemy's per-row parameter handling costs more than the database's own work at this
scale, so the statement is compiled once and run with the driver's ``executemany`` on
column-wise converted values (SQLite), or the rows are streamed with ``COPY`` into a
temporary table and upserted by one ``INSERT ... SELECT`` (PostgreSQL, where a round trip per
row would dominate). Both skip rows that are already stored exactly as given, so re-importing
the same data changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import JSON, Column, Connection, MetaData, Table, Text, cast, select
from sqlalchemy.dialects import postgresql, sqlite

from db.models import utcnow

__all__ = ["upsert_rows"]

# Rows per executemany call: large enough to amortise calls, small enough for memory.
_BATCH = 20_000
# Rows per multi-row INSERT on SQLite, and SQLite's limit on bound parameters (since 3.32).
_ROWS_PER_STATEMENT = 500
_SQLITE_MAX_PARAMETERS = 32_766


def _column_values(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column as plain Python values, with every kind of missing as None."""
    series = frame[name]
    return series.astype(object).where(series.notna(), None).tolist()


def upsert_rows(
    connection: Connection, table: Table, frame: pd.DataFrame, keys: list[str], stamp: str | None = None
) -> int:
    """Insert ``frame``'s rows into ``table`` or update them by ``keys``, in the caller's transaction.

    A stored row is updated only where some column differs from the given one; ``stamp`` names
    a timestamp column set to now on the rows inserted or changed. Returns how many rows were
    inserted or changed.
    """
    dialect = connection.dialect
    insert = (postgresql if dialect.name == "postgresql" else sqlite).insert
    compared = [column for column in frame.columns if column not in keys]
    names = [*frame.columns, *([stamp] if stamp else [])]

    def upsert(statement):
        excluded = statement.excluded
        differs = None
        for column in compared:
            stored, given = table.c[column], excluded[column]
            if isinstance(stored.type, JSON):  # PostgreSQL's json has no equality: compare text
                stored, given = cast(stored, Text), cast(given, Text)
            differs = stored.is_distinct_from(given) if differs is None else differs | stored.is_distinct_from(given)
        updated = [column for column in names if column not in keys]
        if not updated:
            return statement.on_conflict_do_nothing(index_elements=keys)
        return statement.on_conflict_do_update(
            index_elements=keys, set_={column: excluded[column] for column in updated}, where=differs
        )

    now = utcnow()
    if dialect.name == "postgresql":
        return _upsert_by_copy(connection, table, frame, names, stamp, now, upsert)

    columns: dict[str, list[Any]] = {}
    for name in frame.columns:
        values = _column_values(frame, name)
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        columns[name] = [None if v is None else processor(v) for v in values] if processor else values
    if stamp:
        processor = table.c[stamp].type.dialect_impl(dialect).bind_processor(dialect)
        columns[stamp] = [processor(now) if processor else now] * len(frame)
    # SQLite: one statement of many VALUES rows costs about half as much per row as executemany
    # of one-row statements; its size stays under SQLite's limit of bound parameters.
    compiled = upsert(insert(table)).compile(dialect=dialect, column_keys=names)
    order = [compiled.binds[name].key for name in compiled.positiontup]
    rows: list[tuple[Any, ...]] = list(zip(*(columns[name] for name in order), strict=True))
    per_statement = max(1, min(_ROWS_PER_STATEMENT, _SQLITE_MAX_PARAMETERS // len(order)))
    single = str(compiled)
    head, row_placeholders, tail = _split_values(single, len(order))
    touched = 0
    full = len(rows) - len(rows) % per_statement
    if full:
        many = head + ", ".join([row_placeholders] * per_statement) + tail
        batches = [
            tuple(value for row in rows[start : start + per_statement] for value in row)
            for start in range(0, full, per_statement)
        ]
        for start in range(0, len(batches), _BATCH // per_statement or 1):
            touched += connection.exec_driver_sql(
                many, batches[start : start + (_BATCH // per_statement or 1)]
            ).rowcount
    if full < len(rows):
        touched += connection.exec_driver_sql(single, rows[full:]).rowcount
    return touched


def _split_values(sql: str, width: int) -> tuple[str, str, str]:
    """``INSERT ... VALUES (?, ...) ON CONFLICT ...`` as (head, one row's placeholders, tail)."""
    placeholders = "(" + ", ".join(["?"] * width) + ")"
    head, found, tail = sql.partition(" VALUES " + placeholders)
    if not found:
        raise ValueError(f"unexpected INSERT statement: {sql[:200]}")
    return head + " VALUES ", placeholders, tail


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
