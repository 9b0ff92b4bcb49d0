"""A scratch database for a benchmark run, dropped afterwards: for benchmarks that take ``--db``."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from annotator.storage import make_engine


@contextmanager
def scratch_database(url: str | None, name: str) -> Iterator[Engine]:
    """An empty database (not migrated): on a PostgreSQL ``url`` a new schema ``name_<hex>`` in
    it, named in the engine's URL so that worker processes can open it too; else the given
    SQLite URL, or a temporary SQLite file."""
    parsed = make_url(url) if url else None
    if parsed is None or parsed.get_backend_name() != "postgresql":
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(url or f"sqlite:///{Path(folder) / f'{name}.sqlite'}")
            try:
                yield engine
            finally:
                engine.dispose()
        return
    schema = f"{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = make_engine(
            parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        )
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
