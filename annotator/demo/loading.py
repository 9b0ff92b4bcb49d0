"""Loading the demo study into a database: completions through the ordinary import, truth beside them.

Kept apart from :mod:`annotator.demo.generator`, which builds the study and needs no database:
``load_demo`` (the first step of ``ifl demo``) imports the built completions and
``write_oracle`` puts their true labels into ``demo_oracle``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine

from annotator.demo.generator import build_demo

__all__ = ["DemoReport", "ProgressCallback", "load_demo", "write_oracle"]

#: ``progress(stage, done, total)``: called while loading, e.g. to drive a progress bar.
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoReport:
    """What :func:`load_demo` did."""

    size: str
    seed: int
    completions: int
    oracle_rows: int
    import_report: Any  #: whatever ``annotator.ingest.completions.import_frame`` returned
    build_seconds: float
    load_seconds: float

    def __str__(self) -> str:
        return (
            f"demo ({self.size}, seed {self.seed}): {self.completions} completions built in "
            f"{self.build_seconds:.1f} s; imported with their true labels ({self.oracle_rows} "
            f"oracle rows) in {self.load_seconds:.1f} s"
        )


def write_oracle(
    connection: Connection,
    oracle: pd.DataFrame,
    progress: ProgressCallback | None = None,
    chunk_size: int = 10_000,
) -> int:
    """Write ``oracle`` into ``demo_oracle``, replacing the rows of the same completions.

    Runs in the caller's transaction (it takes a connection, not an engine), so a caller can
    make it all or nothing, or put it in the same transaction as the completions' import.
    Replacing by completion id, rather than emptying the table, keeps the truth of demo
    completions that this call does not touch (e.g. those of a bigger demo loaded before)
    and still valid. Returns the number of rows written.
    """
    from annotator.ingest.bulk import upsert_rows
    from db.models import DemoOracle, table_of

    total = len(oracle)
    frame = pd.DataFrame(
        {
            "completion_id": oracle["completion_id"].astype(object),
            "answer_language": oracle["answer_language"].astype(object),
            "matches_gold": _nullable(oracle["matches_gold"]),
            "correct": _nullable(oracle["correct"]),
        }
    )
    for start in range(0, total, chunk_size):
        stop = min(start + chunk_size, total)
        upsert_rows(connection, table_of(DemoOracle), frame.iloc[start:stop], ["completion_id"])
        if progress is not None:
            progress("oracle", stop, total)
    return total


def _nullable(values: pd.Series) -> list[bool | None]:
    """Plain Python booleans with None for NA, as the database driver wants them."""
    missing = values.isna().to_numpy()
    present = values.to_numpy(dtype=bool, na_value=False).tolist()
    return [None if na else value for value, na in zip(present, missing.tolist(), strict=True)]


def load_demo(
    engine: Engine,
    size: str = "small",
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> DemoReport:
    """Build the demo, import its completions and write its truth into ``demo_oracle``.

    The completions go through ``annotator.ingest.completions.import_rows`` (source ``"demo"``) like any
    import, and the oracle replaces the ``demo_oracle`` rows in the same transaction, so the
    demo is written whole or not at all and re-running replaces it. Language ID, sampling and
    accounts are the caller's business.
    """
    from annotator.ingest.completions import import_rows
    from annotator.storage import writer

    started = time.perf_counter()
    if progress is not None:
        progress("build", 0, 1)
    study = build_demo(size, seed)
    built = time.perf_counter()
    if progress is not None:
        progress("build", 1, 1)
        progress("import", 0, len(study.completions))
    with writer(engine).begin() as connection:
        import_report = import_rows(connection, study.completions, source="demo")
        if progress is not None:
            progress("import", len(study.completions), len(study.completions))
        written = write_oracle(connection, study.oracle, progress)
    return DemoReport(
        size=size,
        seed=seed,
        completions=len(study.completions),
        oracle_rows=written,
        import_report=import_report,
        build_seconds=built - started,
        load_seconds=time.perf_counter() - built,
    )
