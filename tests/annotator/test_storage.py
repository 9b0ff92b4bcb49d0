"""Sessions and engines of annotator.storage: how write transactions begin, and that nothing
keeps an engine alive after its last user lets go."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from sqlalchemy import event, text

from annotator.storage import make_engine, session_scope, writer


def _begins(engine, run) -> list[str]:
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: statements.append(statement))
    run()
    return [statement for statement in statements if statement.startswith("BEGIN")]


def test_write_sessions_and_the_writer_engine_begin_immediate_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def read() -> None:
        with session_scope(engine) as session:
            session.execute(text("SELECT 1"))

    def write() -> None:
        with session_scope(engine, write=True) as session:
            session.execute(text("SELECT 1"))

    def raw() -> None:
        with writer(engine).begin() as connection:
            connection.execute(text("SELECT 1"))

    assert _begins(engine, read) == ["BEGIN DEFERRED"]
    assert _begins(engine, write) == ["BEGIN IMMEDIATE"]
    assert _begins(engine, raw) == ["BEGIN IMMEDIATE"]
    engine.dispose()


def test_an_engine_used_for_writes_is_freed_with_its_last_reference(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with session_scope(engine, write=True) as session:
        session.execute(text("SELECT 1"))
    with writer(engine).begin() as connection:
        connection.execute(text("SELECT 1"))
    engine.dispose()
    gone = weakref.ref(engine)
    del engine, session, connection
    gc.collect()
    assert gone() is None
