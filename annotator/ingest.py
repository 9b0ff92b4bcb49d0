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
image_path        no        a local path to the image shown with the query
image_url         no        a URL of that image
llm               no        design: language model of the VLM (``vicuna``, ``yi``, ``leo``)
vision_encoder    no        design: vision encoder (``clip``, ``dinov2``)
train_language    no        design: training-data languages (``en``, ``zh``, ``de``)
<source>_correct  no        a surrogate's verdict on correctness (e.g. ``judge_correct``)
<source>_fidelity no        a surrogate's verdict on language fidelity
anything else     no        kept per completion as a covariate (JSON)
================  ========  ==============================================================

Nothing is written unless every row is valid; an error names the file, the row (1 = first
data row) and the column, so it can be fixed at the source.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from annotator.bulk import upsert_rows
from annotator.languages import UnknownLanguageError, canonical_language
from annotator.storage import writer
from db.models import Completion, Prediction

__all__ = [
    "DESIGN_COLUMNS",
    "FORMATS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "ImportReport",
    "IngestError",
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
    from io import StringIO

    try:
        if fmt == "csv":
            return _read_csv(text)
        return pd.read_json(StringIO(text), lines=True, dtype=False)
    except (ValueError, pd.errors.ParserError) as error:
        raise IngestError(str(path), f"not readable as {fmt} ({error})") from None


def _read_csv(text: str) -> pd.DataFrame:
    """CSV as strings, empty cells missing: pyarrow's parser (several times faster at 730k
    rows), or pandas' own where pyarrow refuses the file (ragged rows), which pads short rows
    so that validation can name the missing cell."""
    from io import BytesIO, StringIO

    options = dict(dtype=str, keep_default_na=False, na_values=[""])
    try:
        return pd.read_csv(BytesIO(text.encode("utf-8")), engine="pyarrow", **options)
    except Exception:  # pyarrow's ArrowInvalid and kin: let the C parser read or explain it
        return pd.read_csv(StringIO(text), **options)


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


def validate_frame(frame: pd.DataFrame, file: str = "<data>") -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[str]]:
    """Check and normalise an input table.

    Returns the completion rows (columns of the ``completions`` table), the surrogate
    predictions by source, and the names of the covariate columns. Raises
    :class:`IngestError` on the first problem found, naming its row and column.
    """
    if len(frame) == 0:
        raise IngestError(file, "the file has a header but no rows")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(column).strip() for column in frame.columns]
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise IngestError(file, f"missing required column(s): {', '.join(missing)}", column=missing[0])

    required = {column: _strings(frame[column]) for column in ("id", "model", "benchmark", "query_language")}
    for column, values in required.items():
        empty = values.isna() | (values == "")
        if empty.any():
            raise IngestError(file, "a value is required", row=_first(empty), column=column)

    ids = required["id"]
    duplicated = ids.duplicated(keep="first")
    if duplicated.any():
        position = _first(duplicated) - 1
        first = _first(ids == ids.iloc[position])
        raise IngestError(file, f"duplicate id {ids.iloc[position]!r} (first at row {first})", row=position + 1, column="id")

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

    completion = frame["completion"]
    rows = pd.DataFrame(
        {
            "id": ids,
            "model": required["model"],
            "benchmark": required["benchmark"],
            "query_language": languages.map(canonical),
            "image": _parse_booleans(file, frame, "image", allow_missing=False).astype(bool),
            # Not stripped: the exact text is what language ID and annotators see.
            "completion": completion.where(completion.notna(), "").astype(str).astype(object),
        }
    )
    for column in OPTIONAL_COLUMNS:
        rows[column] = _strings(frame[column]) if column in frame.columns else None

    surrogates: dict[str, pd.DataFrame] = {}
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    surrogate_columns = []
    for column in frame.columns:
        source, _, kind = column.rpartition("_")
        if column in known or not source or kind not in SURROGATE_FIELDS:
            continue
        surrogate_columns.append(column)
        values = _parse_booleans(file, frame, column, allow_missing=True)
        table = surrogates.setdefault(source, pd.DataFrame({"completion_id": ids}))
        table[SURROGATE_FIELDS[kind]] = values

    covariates = [c for c in frame.columns if c not in known and c not in surrogate_columns]
    if covariates:
        extra = frame[covariates].astype(object).where(frame[covariates].notna(), None)
        rows["covariates"] = [
            {key: (value.item() if hasattr(value, "item") else value) for key, value in record.items()}
            for record in extra.to_dict("records")
        ]
    else:
        rows["covariates"] = None
    return rows, surrogates, covariates


def import_frame(engine: Engine, frame: pd.DataFrame, source: str = "<data>") -> ImportReport:
    """Validate ``frame`` and upsert it, all in one transaction (all or nothing)."""
    with writer(engine).begin() as connection:
        return import_rows(connection, frame, source)


def import_rows(connection: Connection, frame: pd.DataFrame, source: str = "<data>") -> ImportReport:
    """Validate ``frame`` and upsert it inside the caller's transaction.

    For callers that write more in the same transaction (the demo writes its true labels).
    """
    started = time.perf_counter()
    rows, surrogates, covariates = validate_frame(frame, source)
    stored_before = _count_completions(connection)
    touched = upsert_rows(connection, Completion.__table__, rows, ["id"], stamp="imported_at")
    for surrogate_source, predictions in surrogates.items():
        predictions = predictions.assign(source=surrogate_source, model_version=f"imported from {Path(source).name}")
        upsert_rows(connection, Prediction.__table__, predictions, ["completion_id", "source"], stamp="created_at")
    inserted = _count_completions(connection) - stored_before
    updated = touched - inserted
    return ImportReport(
        file=source,
        rows=len(rows),
        inserted=inserted,
        updated=updated,
        unchanged=len(rows) - inserted - updated,
        surrogates=sorted(surrogates),
        covariates=covariates,
        seconds=time.perf_counter() - started,
    )


def _count_completions(connection) -> int:
    return connection.execute(select(func.count()).select_from(Completion)).scalar_one()


def import_file(engine: Engine, path: str | Path, fmt: str | None = None, *, display_name: str | None = None) -> ImportReport:
    """Read, validate and upsert a completions file (see the module docstring for its schema).

    ``display_name`` is the name errors and the report use (an upload's own name, where the
    file was saved under a temporary path).
    """
    name = display_name or str(path)
    try:
        frame = read_table(path, fmt)
    except IngestError as error:
        raise IngestError(name, error.reason, error.row, error.column) from None
    return import_frame(engine, frame, source=name)
