"""The schema: migrations match the models, upgrade and downgrade cleanly, constraints hold."""

from __future__ import annotations

import re

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from annotator.storage import _alembic_config, make_engine
from db.models import Base


def test_migrations_match_the_models(engine: Engine) -> None:
    """Autogenerate finds nothing to add: every model change came with its migration."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    command.downgrade(_alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(_alembic_config(engine), "head")
    assert {"completions", "annotations", "assignments"} <= set(inspect(engine).get_table_names())


def test_constraints_live_in_the_database(engine: Engine) -> None:
    """A client that bypasses the services (a notebook, raw SQL) still cannot break the rules."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO completions (id, model, benchmark, query_language, image, completion, imported_at) "
                "VALUES ('c1', 'm', 'MaXM', 'deu', true, 'x', CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO annotators (id, name, role, password_hash, active, created_at) "
                "VALUES (1, 'a', 'annotator', 'h', true, CURRENT_TIMESTAMP)"
            )
        )
    bad_statements = [
        "INSERT INTO annotators (id, name, role, password_hash, active, created_at) "
        "VALUES (2, 'b', 'boss', 'h', true, CURRENT_TIMESTAMP)",  # unknown role
        "INSERT INTO annotations (completion_id, annotator_id, answer_language, created_at, updated_at) "
        "VALUES ('c1', 1, 'klingon', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",  # not an answer class
        "INSERT INTO annotations (completion_id, annotator_id, answer_language, created_at, updated_at) "
        "VALUES ('nope', 1, 'german', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",  # no such completion
        "INSERT INTO predictions (completion_id, source, probability, created_at) "
        "VALUES ('c1', 'lid176', 1.5, CURRENT_TIMESTAMP)",  # probability above 1
    ]
    for statement in bad_statements:
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(statement))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO annotations (completion_id, annotator_id, answer_language, created_at, updated_at) "
                "VALUES ('c1', 1, 'german', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    with pytest.raises(IntegrityError), engine.begin() as connection:  # one label per annotator and item
        connection.execute(
            text(
                "INSERT INTO annotations (completion_id, annotator_id, answer_language, created_at, updated_at) "
                "VALUES ('c1', 1, 'english', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )


def test_sample_rounds_backfill_round_one_of_older_samples(engine: Engine) -> None:
    command.downgrade(_alembic_config(engine), "0001")
    with engine.begin() as connection:
        for sample_id, rounds in ((1, 1), (2, 3)):
            connection.execute(
                text(
                    "INSERT INTO samples"
                    " (id, name, seed, n_target, weights, overlap_share, rounds, created_at, updated_at)"
                    f" VALUES ({sample_id}, 's{sample_id}', 7, 100, '{{}}', 0.1, {rounds},"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
    command.upgrade(_alembic_config(engine), "head")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT sample_id, round, seed, n_total, added FROM sample_rounds")).all()
    # A topped-up sample's earlier seeds were never kept: it gets no invented round 1.
    assert [tuple(row) for row in rows] == [(1, 1, 7, 100, 100)]


def _check_constraints_of_models() -> dict[tuple[str, str], str]:
    """(table, constraint name) -> CHECK text, as the models declare them."""
    checks = {}
    for table in Base.metadata.sorted_tables:
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint):
                checks[(table.name, str(constraint.name))] = str(constraint.sqltext)
    return checks


def _literals(sql: str) -> set[str]:
    """The quoted string literals of a CHECK (the allowed answer classes, roles, actions)."""
    return set(re.findall(r"'([^']*)'", sql))


def test_check_constraints_match_the_models(engine: Engine) -> None:
    """Autogenerate does not compare CHECK constraints, so a value list in the models (answer
    classes, roles) could drift from the migrations unseen. Compare names and allowed values of
    every CHECK in the migrated database with the models'. (PostgreSQL rewrites the expression,
    e.g. ``IN`` as ``= ANY (ARRAY[...])``, so the literals are compared, not the text.)"""
    declared = _check_constraints_of_models()
    inspector = inspect(engine)
    found = {
        (table, check["name"]): check["sqltext"]
        for table in inspector.get_table_names()
        if table != "alembic_version"
        for check in inspector.get_check_constraints(table)
    }
    assert set(found) == set(declared)
    for key, sql in declared.items():
        assert _literals(found[key]) == _literals(sql), key


def test_a_postgres_url_keeps_its_password() -> None:
    """A psycopg2 URL is served by psycopg (3), the driver installed; the swap is made on the URL
    object, since ``str(url)`` would send ``***`` as the password."""
    for url in ("postgresql://ifl:s3cret@127.0.0.1:5432/ifl", "postgresql+psycopg2://ifl:s3cret@127.0.0.1:5432/ifl"):
        engine = make_engine(url)
        assert engine.url.password == "s3cret" and engine.dialect.driver == "psycopg"
