"""Import model completions: validate the whole file, then upsert it in one transaction.

Input schema (CSV with a header, JSON Lines, or Parquet; one row per completion):

================  ========  ==============================================================
column            required  meaning
================  ========  ==============================================================
id                yes       unique completion id; re-importing an id updates that row
model             yes       the model that wrote the completion (``llava-v1.5-7b``)
benchmark         yes       ``LLaVA-W``, ``MaXM``, ``ViSIT``...
query_language    yes       ISO 639-1, ISO 639-3 or English name (``de``, ``deu``, ``German``)
image             yes       was an image given: true/false, 1/0, yes/no
completion        yes       the model's answer (may be empty: an empty answer is data too)
prompt            no        the query
gold_answer       no        the benchmark's reference answer
image_path        no        the image shown with the query: a file inside the image root
image_url         no        or an http(s) URL of it, from a host IFL_IMAGE_HOSTS allows
llm               no        design: language model of the VLM (``vicuna``, ``yi``, ``leo``)
vision_encoder    no        design: vision encoder (``clip``, ``dinov2``)
train_language    no        design: training-data languages (``en``, ``zh``, ``de``)
<source>_correct  no        a surrogate's verdict on correctness (e.g. ``judge_correct``)
<source>_fidelity no        a surrogate's verdict on language fidelity
anything else     no        kept per completion as a covariate (JSON)
================  ========  ==============================================================

Nothing is written unless every row is valid; an error names the file, the row (1 = first
data row) and the column, so it can be fixed at the source. Beyond the columns' own rules,
every backend gets the same limits, checked here rather than left to the database:

* text holds no NUL byte (PostgreSQL cannot store one) and at most :data:`MAX_TEXT_BYTES`
  (1 MB of UTF-8) per field; ``id``, ``model``, ``benchmark`` and the design columns fit
  their columns' lengths in ``db/models.py`` (PostgreSQL enforces them, SQLite would not);
* a column name appears once in the header;
* ids are text; JSON Lines may give integers (stored as their decimal text), nothing else;
  no text field takes a JSON object, array or boolean;
* a JSON Lines line that is not a JSON object is reported by its line number, a CSV quote
  that is never closed (or closed in the middle of a field) as such;
* ``image_path`` must lie inside the import's image root (see :mod:`annotator.ingest.images`) and is
  stored resolved and absolute; a file that is missing or not an image is only a warning
  (the images may be copied later); ``image_url`` must be an http(s) URL whose host
  ``IFL_IMAGE_HOSTS`` allows.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, String, func, select

from annotator.ingest import images
from annotator.ingest.bulk import upsert_rows
from annotator.languages import UnknownLanguageError, canonical_language
from annotator.storage import writer
from db.models import Base, Completion, Prediction, table_of

__all__ = [
    "DESIGN_COLUMNS",
    "FORMATS",
    "MAX_TEXT_BYTES",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "ImportReport",
    "IngestError",
    "Validated",
    "csv_quote_problem",
    "default_import_root",
    "import_file",
    "import_frame",
    "import_rows",
    "read_table",
    "validate_frame",
]

REQUIRED_COLUMNS = ("id", "model", "benchmark", "query_language", "image", "completion")
DESIGN_COLUMNS = ("llm", "vision_encoder", "train_language")
OPTIONAL_COLUMNS = ("prompt", "gold_answer", "image_path", "image_url", *DESIGN_COLUMNS)
SURROGATE_FIELDS = {"correct": "predicted_correct", "fidelity": "predicted_fidelity"}
FORMATS = ("csv", "jsonl", "parquet")
TEXT_COLUMNS = ("id", "model", "benchmark", "query_language", "completion", *OPTIONAL_COLUMNS)
#: The most one text field may hold, in bytes of UTF-8 (1 MB): far above any real completion,
#: far below what would make an import take minutes and gigabytes.
MAX_TEXT_BYTES = 1_000_000


def _schema_length(model: type[Base], column: str) -> int:
    """The length a ``String(n)`` column of the models allows (PostgreSQL enforces it, SQLite not)."""
    column_type = model.__table__.c[column].type
    if not isinstance(column_type, String) or not column_type.length:
        raise TypeError(f"{model.__tablename__}.{column} is not a String(n) column")
    return column_type.length


# Columns whose length the schema limits, with that limit.
_LENGTH_LIMITS = {
    column: _schema_length(Completion, column) for column in ("id", "model", "benchmark", *DESIGN_COLUMNS)
}
_SOURCE_LENGTH = _schema_length(Prediction, "source")
_MODEL_VERSION_LENGTH = _schema_length(Prediction, "model_version")
_EXAMPLES = 3  # how many rows a warning names
_HEADER_CHARS = 1 << 16  # enough of a CSV to hold its header

_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}
_NA = {"", "na", "nan", "none", "null"}


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


@dataclass
class ImportReport:
    """What an import did; ``unchanged`` rows were already stored exactly as given."""

    file: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    surrogates: list[str] = field(default_factory=list)
    covariates: list[str] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  #: problems that did not stop the import

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.rows} rows ({self.inserted} new, {self.updated} updated, "
            f"{self.unchanged} unchanged) in {self.seconds:.1f} s"
        )


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


def _strings(series: pd.Series) -> pd.Series:
    """Stripped strings with missing kept as None (JSON and Parquet give numbers where CSV gives text)."""
    present = series.notna()
    out = pd.Series(None, index=series.index, dtype=object)
    out[present] = series[present].astype(str).str.strip().astype(object)
    return out


def _first(mask: pd.Series) -> int:
    """1-based row number of the first True in ``mask``."""
    return int(mask.to_numpy().argmax()) + 1


def _parse_booleans(file: str, frame: pd.DataFrame, column: str, allow_missing: bool) -> pd.Series:
    values = frame[column]
    keys = _strings(values).str.lower()
    mapping: dict[Any, bool | None] = {}
    for key in keys.dropna().unique():
        if key in _TRUE:
            mapping[key] = True
        elif key in _FALSE:
            mapping[key] = False
        elif key in _NA:
            mapping[key] = None
        else:
            raise IngestError(
                file,
                f"{values[keys == key].iloc[0]!r} is not a boolean (use true/false, 1/0 or yes/no)",
                row=_first(keys == key),
                column=column,
            )
    parsed = keys.map(mapping).astype(object)
    parsed = parsed.where(parsed.notna(), None)
    if not allow_missing and parsed.isna().any():
        raise IngestError(file, "a value is required", row=_first(parsed.isna()), column=column)
    return parsed


def _kind_problem(value: Any, is_id: bool) -> str | None:
    """Why a cell cannot be text (None if it can): JSON objects, arrays and booleans never
    are; an id must also not be a fractional number (``5.5``, or ``1.0`` that would sit beside ``1``)."""
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, (bool, np.bool_)):
        return f"{value!r} is a boolean, not text"
    if isinstance(value, (int, np.integer)):
        return None
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):  # missing
            return None
        return f"{value!r} is a number with a fraction; ids are text or integers" if is_id else None
    if isinstance(value, dict):
        return "a JSON object is not text"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "a JSON array is not text"
    if isinstance(value, (bytes, bytearray)):
        return "binary data is not text"
    return f"a {type(value).__name__} is not text"


def _check_kinds(file: str, series: pd.Series, column: str) -> None:
    """Refuse cells of ``column`` that are not text (or an integer), naming the first."""
    is_id = column == "id"
    kind = series.dtype.kind
    if isinstance(series.dtype, pd.StringDtype) or kind in "iuSU":
        return
    if kind == "f" and not (is_id and series.notna().any()):
        return
    if kind == "O":
        types = set(series.map(type).unique())
        if types <= {str, int, type(None)} or (not is_id and types <= {str, int, float, type(None)}):
            return
    problems = series.map(lambda value: _kind_problem(value, is_id))
    bad = problems.notna()
    if bad.any():
        raise IngestError(file, problems[bad].iloc[0], row=_first(bad), column=column)


def _text_cells(series: pd.Series) -> pd.Series:
    """The cells of ``series`` that are text, as strings (numbers hold no NUL and are short)."""
    if isinstance(series.dtype, pd.StringDtype):
        return series.dropna()
    if series.dtype != object:
        return series.iloc[:0].astype(str)
    return series[series.map(lambda value: isinstance(value, str))].astype(str)


def _check_text(file: str, column: str, series: pd.Series, max_chars: int | None = None) -> None:
    """The limits every backend shares: no NUL byte, at most MAX_TEXT_BYTES, and where the
    schema limits the column, at most ``max_chars`` characters once stripped.

    Works on the column as read (vectorised on pyarrow strings: under a second at 730k rows
    for every column together), stripping only the few values that are too long as given.
    """
    text = _text_cells(series)
    if text.empty:
        return
    nul = text.str.contains("\x00", regex=False)
    if nul.any():
        raise IngestError(
            file,
            "contains a NUL byte (\\x00), which the database cannot store; remove it",
            row=int(nul.idxmax()) + 1,
            column=column,
        )
    lengths = text.str.len()
    if max_chars is not None and (lengths > max_chars).any():
        stripped = text[lengths > max_chars].str.strip()
        over = stripped.str.len() > max_chars
        if over.any():
            index = over.idxmax()
            raise IngestError(
                file,
                f"{stripped[index][:40]!r}... is {len(stripped[index]):,} characters long; "
                f"at most {max_chars} fit this column",
                row=int(index) + 1,
                column=column,
            )
    long = lengths > MAX_TEXT_BYTES // 4  # a character takes at most 4 bytes of UTF-8
    if long.any():
        sizes = text[long].map(lambda value: len(value.encode("utf-8")))
        over = sizes > MAX_TEXT_BYTES
        if over.any():
            index = over.idxmax()
            raise IngestError(
                file,
                f"the text is {sizes[index]:,} bytes; at most {MAX_TEXT_BYTES:,} (1 MB) per field",
                row=int(index) + 1,
                column=column,
            )


def _check_column_names(file: str, columns: list[str]) -> None:
    counts = Counter(columns)
    repeated = next((name for name, n in counts.items() if n > 1), None)
    if repeated is not None:
        raise IngestError(
            file,
            f"the column {repeated!r} appears {counts[repeated]} times; each column may appear once",
            column=repeated,
        )
    for name in columns:
        if "\x00" in name:
            raise IngestError(file, "a column name contains a NUL byte (\\x00)", column=name)


def _rows_named(mask: pd.Series) -> str:
    rows = [str(int(index) + 1) for index in mask[mask].index[:_EXAMPLES]]
    return ", ".join(rows) + (", ..." if int(mask.sum()) > _EXAMPLES else "")


def _image_paths(file: str, paths: pd.Series, root: Path) -> tuple[pd.Series, list[str]]:
    """Each ``image_path`` resolved inside ``root`` (relative ones against it), as absolute
    text; an error for one outside, warnings for files missing or not images."""
    resolved: dict[str, str] = {}
    missing: set[str] = set()
    not_images: set[str] = set()
    for value in paths.dropna().unique():
        try:
            target = images.confine_image_path(value, root)
        except (ValueError, OSError) as error:
            raise IngestError(
                file,
                f"{error}; keep images inside it, or set IFL_IMAGE_ROOT to the folder that holds them",
                row=_first(paths == value),
                column="image_path",
            ) from None
        resolved[value] = str(target)
        if not target.is_file():
            missing.add(value)
        elif not images.looks_like_image(target):
            not_images.add(value)
    warnings = []
    for problem, values in (
        ("no such file (yet) in the image root", missing),
        ("not a PNG, JPEG, GIF, WebP or BMP image, in the image root", not_images),
    ):
        if values:
            mask = paths.isin(values)
            count = int(mask.sum())
            warnings.append(
                f"{file}, column 'image_path': {problem} {str(root)!r} for {count} "
                f"row{'s' * (count != 1)} ({_rows_named(mask)}); the app shows no image for them"
            )
    return paths.map(resolved, na_action="ignore").astype(object), warnings


def _check_image_urls(file: str, urls: pd.Series) -> None:
    for value in urls.dropna().unique():
        problem = images.image_url_problem(value)
        if problem is not None:
            raise IngestError(file, f"{value[:80]!r} {problem}", row=_first(urls == value), column="image_url")


class Validated(NamedTuple):
    """An input table checked and normalised, ready to store."""

    rows: pd.DataFrame  #: columns of the ``completions`` table
    surrogates: dict[str, pd.DataFrame]  #: predictions to store, by source
    covariates: list[str]  #: names of the columns kept as covariates
    warnings: list[str]  #: problems that do not stop the import (missing image files)


def validate_frame(frame: pd.DataFrame, file: str = "<data>", *, image_root: Path | None = None) -> Validated:
    """Check and normalise an input table.

    ``image_root`` confines ``image_path`` (default: the configured root,
    :func:`annotator.ingest.images.image_root`). Raises :class:`IngestError` on the first problem
    found, naming its row and column.
    """
    if len(frame) == 0:
        raise IngestError(file, "the file has a header but no rows")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(column).strip() for column in frame.columns]
    _check_column_names(file, list(frame.columns))
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise IngestError(file, f"missing required column(s): {', '.join(missing)}", column=missing[0])
    for column in TEXT_COLUMNS:
        if column in frame.columns:
            _check_kinds(file, frame[column], column)

    required = {column: _strings(frame[column]) for column in ("id", "model", "benchmark", "query_language")}
    for column, values in required.items():
        empty = values.isna() | (values == "")
        if empty.any():
            raise IngestError(file, "a value is required", row=_first(empty), column=column)
    completion = frame["completion"]
    # Not stripped: the exact text is what language ID and annotators see.
    completion = completion.where(completion.notna(), "").astype(str).astype(object)
    optional = {column: _strings(frame[column]) if column in frame.columns else None for column in OPTIONAL_COLUMNS}
    for column in TEXT_COLUMNS:
        if column in frame.columns:
            _check_text(file, column, frame[column], _LENGTH_LIMITS.get(column))

    ids = required["id"]
    duplicated = ids.duplicated(keep="first")
    if duplicated.any():
        position = _first(duplicated) - 1
        first = _first(ids == ids.iloc[position])
        raise IngestError(
            file, f"duplicate id {ids.iloc[position]!r} (first at row {first})", row=position + 1, column="id"
        )

    languages = required["query_language"]
    canonical: dict[str, str] = {}
    for value in languages.unique():
        try:
            canonical[value] = canonical_language(value)
        except UnknownLanguageError:
            raise IngestError(
                file,
                f"unknown language {value!r} (use an ISO 639-1 or 639-3 code or an English name)",
                row=_first(languages == value),
                column="query_language",
            ) from None

    rows = pd.DataFrame(
        {
            "id": ids,
            "model": required["model"],
            "benchmark": required["benchmark"],
            "query_language": languages.map(canonical),
            "image": _parse_booleans(file, frame, "image", allow_missing=False).astype(bool),
            "completion": completion,
        }
    )
    warnings: list[str] = []
    for column, values in optional.items():
        rows[column] = values
    if optional["image_path"] is not None:
        root = images.image_root() if image_root is None else image_root.resolve()
        rows["image_path"], warnings = _image_paths(file, optional["image_path"], root)
    if optional["image_url"] is not None:
        _check_image_urls(file, optional["image_url"])

    surrogates: dict[str, pd.DataFrame] = {}
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    surrogate_columns = []
    for column in frame.columns:
        source, _, kind = column.rpartition("_")
        if column in known or not source or kind not in SURROGATE_FIELDS:
            continue
        if len(source) > _SOURCE_LENGTH:
            raise IngestError(
                file, f"a surrogate's name (before _{kind}) may have at most {_SOURCE_LENGTH} characters", column=column
            )
        surrogate_columns.append(column)
        values = _parse_booleans(file, frame, column, allow_missing=True)
        table = surrogates.setdefault(source, pd.DataFrame({"completion_id": ids}))
        table[SURROGATE_FIELDS[kind]] = values

    covariates = [c for c in frame.columns if c not in known and c not in surrogate_columns]
    if covariates:
        extra = frame[covariates].astype(object).where(frame[covariates].notna(), None)
        for column in covariates:
            _check_text(file, column, frame[column])
        rows["covariates"] = [
            {key: (value.item() if hasattr(value, "item") else value) for key, value in record.items()}
            for record in extra.to_dict("records")
        ]
    else:
        rows["covariates"] = None
    return Validated(rows, surrogates, covariates, warnings)


def import_frame(
    engine: Engine, frame: pd.DataFrame, source: str = "<data>", *, image_root: Path | None = None
) -> ImportReport:
    """Validate ``frame`` and upsert it, all in one transaction (all or nothing)."""
    with writer(engine).begin() as connection:
        return import_rows(connection, frame, source, image_root=image_root)


def import_rows(
    connection: Connection, frame: pd.DataFrame, source: str = "<data>", *, image_root: Path | None = None
) -> ImportReport:
    """Validate ``frame`` and upsert it inside the caller's transaction.

    For callers that write more in the same transaction (the demo writes its true labels).
    ``image_root`` confines ``image_path`` (default: the configured image root); a root other
    than the configured one is recorded, so the app shows the images imported under it.
    """
    started = time.perf_counter()
    checked = validate_frame(frame, source, image_root=image_root)
    rows = checked.rows
    stored_before = _count_completions(connection)
    touched = upsert_rows(connection, table_of(Completion), rows, ["id"], stamp="imported_at")
    version = f"imported from {Path(source).name}"[:_MODEL_VERSION_LENGTH]
    for surrogate_source, predictions in checked.surrogates.items():
        predictions = predictions.assign(source=surrogate_source, model_version=version)
        upsert_rows(connection, table_of(Prediction), predictions, ["completion_id", "source"], stamp="created_at")
    if image_root is not None and rows["image_path"].notna().any() and image_root.resolve() != images.image_root():
        images.record_image_root(connection, image_root)
    inserted = _count_completions(connection) - stored_before
    updated = touched - inserted
    return ImportReport(
        file=source,
        rows=len(rows),
        inserted=inserted,
        updated=updated,
        unchanged=len(rows) - inserted - updated,
        surrogates=sorted(checked.surrogates),
        covariates=checked.covariates,
        seconds=time.perf_counter() - started,
        warnings=checked.warnings,
    )


def _count_completions(connection) -> int:
    return connection.execute(select(func.count()).select_from(Completion)).scalar_one()


def default_import_root(path: str | Path) -> Path:
    """The image root of ``ifl import path``: ``IFL_IMAGE_ROOT`` if set, else the file's own folder
    (so ``image_path`` may be given relative to the file)."""
    configured = os.environ.get("IFL_IMAGE_ROOT", "").strip()
    return images.image_root() if configured else Path(path).resolve().parent


def import_file(
    engine: Engine,
    path: str | Path,
    fmt: str | None = None,
    *,
    display_name: str | None = None,
    image_root: Path | None = None,
) -> ImportReport:
    """Read, validate and upsert a completions file (see the module docstring for its schema).

    ``display_name`` is the name errors and the report use (an upload's own name, where the
    file was saved under a temporary path). ``image_root`` confines ``image_path`` (default:
    the configured root; ``ifl import`` passes :func:`default_import_root`).
    """
    name = display_name or str(path)
    try:
        frame = read_table(path, fmt)
    except IngestError as error:
        raise IngestError(name, error.reason, error.row, error.column) from None
    try:
        return import_frame(engine, frame, source=name, image_root=image_root)
    except IngestError:
        # A stray quote shows up rows later, as whatever the shifted cells break: name the quote.
        if _format_of(Path(path), fmt) == "csv":
            quote = csv_quote_problem(name, _decode(Path(path)))
            if quote is not None:
                raise quote from None
        raise
