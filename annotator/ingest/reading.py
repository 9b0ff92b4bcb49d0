"""Read an input file of completions into a frame (CSV, JSON Lines, Parquet), or say where it is broken.

Reading is only the first step of an import (:mod:`annotator.ingest.completions` validates and
stores): cells stay strings and values, empty cells missing, and a file that cannot be read
raises :class:`IngestError` naming the file and, where it can, the line, row and column (a stray
quote in a CSV, a JSON key given twice, bytes that are not UTF-8).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["FORMATS", "IngestError", "csv_quote_problem", "read_table", "stray_quote"]

FORMATS = ("csv", "jsonl", "parquet")
_HEADER_CHARS = 1 << 16  # enough of a CSV to hold its header


class IngestError(ValueError):
    """A file that cannot be imported, with where the problem is."""

    def __init__(self, file: str, message: str, row: int | None = None, column: str | None = None):
        self.file, self.row, self.column, self.reason = file, row, column, message
        where = [file]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}")


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise IngestError(str(path), f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "parquet"):
        return suffix
    if suffix in ("jsonl", "ndjson", "json"):
        return "jsonl"
    raise IngestError(str(path), "cannot tell the format from the file name: pass --format csv|jsonl|parquet")


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise IngestError(
            str(path), f"bytes that are not UTF-8 at line {line} (byte {error.start}); save the file as UTF-8"
        ) from None


def read_table(path: str | Path, fmt: str | None = None) -> pd.DataFrame:
    """Read an input file into strings-and-values, keeping empty cells as missing."""
    path = Path(path)
    if not path.exists():
        raise IngestError(str(path), "no such file")
    fmt = _format_of(path, fmt)
    if fmt == "parquet":
        try:
            return pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several types for a broken file
            raise IngestError(str(path), f"not a readable Parquet file ({error})") from None
    text = _decode(path)
    if not text.strip():
        raise IngestError(str(path), "the file is empty")
    if fmt == "jsonl":
        return _read_jsonl(str(path), text)
    return _read_csv(str(path), text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (``json`` would silently keep the last)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        raise _DuplicateKey(next(key for key, n in counts.items() if n > 1))
    return record


class _DuplicateKey(ValueError):
    pass


def _read_jsonl(file: str, text: str) -> pd.DataFrame:
    """JSON Lines, one object per line, values kept as the JSON types they are (an id ``1``
    stays the integer 1, not ``1.0``); blank lines are skipped. Errors name the line."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_unique_keys)
        except _DuplicateKey as error:
            raise IngestError(
                file, f"line {number}: the key {error.args[0]!r} appears twice", column=error.args[0]
            ) from None
        except json.JSONDecodeError as error:
            raise IngestError(file, f"line {number}: not valid JSON ({error.msg} at character {error.colno})") from None
        if not isinstance(record, dict):
            raise IngestError(file, f"line {number}: not a JSON object (each line holds one completion as {{...}})")
        records.append(record)
    if not records:
        raise IngestError(file, "the file is empty")
    frame = pd.DataFrame(records, dtype=object)
    for column in frame.columns:
        # Columns of strings only become the string dtype the CSV reader gives, so the checks
        # after run vectorised (seconds at 730k rows) rather than cell by cell.
        if set(map(type, frame[column].to_numpy())) <= {str, type(None)}:
            frame[column] = pd.array(frame[column].to_numpy(), dtype="str")
    return frame


def _read_csv(file: str, text: str) -> pd.DataFrame:
    """CSV as strings, empty cells missing: pyarrow's parser (several times faster at 730k
    rows), or pandas' own where pyarrow refuses the file (ragged rows), which pads short rows
    so that validation can name the missing cell.

    A header naming a column twice is refused here, before pandas renames the second copy
    (``completion.1``) and it slips in as a covariate.
    """
    try:
        header = next(csv.reader(StringIO(text[:_HEADER_CHARS])))
    except (csv.Error, StopIteration):
        header = []
    counts = Counter(name.strip() for name in header)
    repeated = next((name for name, n in counts.items() if n > 1), None)
    if repeated is not None:
        raise IngestError(
            file,
            f"the header names the column {repeated!r} {counts[repeated]} times; each column may appear once",
            column=repeated,
        )
    options = dict(dtype=str, keep_default_na=False, na_values=[""])
    try:
        frame = pd.read_csv(BytesIO(text.encode("utf-8")), engine="pyarrow", **options)
    except Exception:  # pyarrow's ArrowInvalid and kin: let the C parser read or explain it
        try:
            frame = pd.read_csv(StringIO(text), **options)
        except (ValueError, pd.errors.ParserError) as error:
            raise csv_quote_problem(file, text) or IngestError(file, f"not readable as csv ({error})") from None
    # Fewer records than lines: some field spans lines. Usually a multi-line answer, but a
    # stray quote swallowing the rows after it looks the same to the parsers, so look closer
    # (a strict pass, a few seconds at 730k rows; files without line breaks in fields skip it).
    lines = text.count("\n") + (not text.endswith("\n"))
    if len(frame) + 1 != lines:
        problem = csv_quote_problem(file, text)
        if problem is not None:
            raise problem
    return frame


def csv_quote_problem(file: str, text: str) -> IngestError | None:
    """The first unbalanced quote in a CSV, as an error naming its row, line and column; None if none.

    A stray ``"`` at the start of a field makes the parsers read on past the end of the line,
    so the symptom shows up rows later (an unknown language, a missing value). Python's csv
    module in strict mode stops at the quote itself: a quoted field never closed, or closed
    and followed by more text instead of a comma or the end of the line.
    """
    reader = csv.reader(StringIO(text), strict=True)
    records, start_line = 0, 1
    limit = csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))  # a field may be the whole file
    try:
        for _ in reader:
            records += 1
            start_line = reader.line_num + 1
    except csv.Error as error:
        lines = text.split("\n")  # as the reader counts them
        column = _open_quote_field(lines[start_line - 1] if start_line <= len(lines) else "", lines[0] if lines else "")
        row = records  # the header is record 1, so the failing record is data row ``records``
        if "end of data" in str(error):
            what = "a quote opened here is never closed"
        elif "expected after" in str(error):
            what = f"a quoted field is closed and followed by more text ({error})"
        else:
            return None  # not about quotes: the caller's own error says more
        return IngestError(
            file,
            f"unbalanced quote (line {start_line}): {what}; double a quote inside "
            'a quoted field ("") or quote the whole field',
            row=row or None,
            column=column,
        )
    finally:
        csv.field_size_limit(limit)
    return None


def _open_quote_field(line: str, header_line: str) -> str | None:
    """The header name of the field on ``line`` whose quote is still open at its end, if any."""
    field_index, in_quotes, at_field_start, opened, position = 0, False, True, None, 0
    while position < len(line):
        character = line[position]
        position += 1
        if in_quotes:
            if character == '"':
                if line[position : position + 1] == '"':  # "" is a quote inside the field
                    position += 1
                else:
                    in_quotes = False
        elif character == ",":
            field_index, at_field_start, opened = field_index + 1, True, None
        else:
            if character == '"' and at_field_start:
                in_quotes, opened = True, field_index
            at_field_start = False
    if not in_quotes or opened is None:
        return None
    try:
        names = next(csv.reader(StringIO(header_line)))
    except (csv.Error, StopIteration):
        return None
    return names[opened].strip() if opened < len(names) else None


def stray_quote(path: Path, fmt: str | None, name: str) -> IngestError | None:
    """The error naming the stray quote of a CSV file (named ``name``), if it has one: such a
    quote shows up rows later as whatever the shifted cells break, so an import asks for it."""
    if _format_of(path, fmt) != "csv":
        return None
    return csv_quote_problem(name, _decode(path))
