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

import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, String, func, select

from annotator.ingest import images
from annotator.ingest.bulk import upsert_rows
from annotator.ingest.reading import IngestError, read_table, stray_quote
from annotator.languages import UnknownLanguageError, canonical_language
from annotator.storage import writer
from db.models import Base, Completion, Prediction, table_of

__all__ = [
    "DESIGN_COLUMNS",
    "MAX_TEXT_BYTES",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "ImportReport",
    "Validated",
    "default_import_root",
    "import_file",
    "import_frame",
    "import_rows",
    "validate_frame",
]

REQUIRED_COLUMNS = ("id", "model", "benchmark", "query_language", "image", "completion")
DESIGN_COLUMNS = ("llm", "vision_encoder", "train_language")
OPTIONAL_COLUMNS = ("prompt", "gold_answer", "image_path", "image_url", *DESIGN_COLUMNS)
SURROGATE_FIELDS = {"correct": "predicted_correct", "fidelity": "predicted_fidelity"}
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

_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}
_NA = {"", "na", "nan", "none", "null"}


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
        quote = stray_quote(Path(path), fmt, name)
        if quote is not None:
            raise quote from None
        raise
