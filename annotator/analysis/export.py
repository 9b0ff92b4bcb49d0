"""Exports as CSV: the gold standard, the input of R's ``dsl()``, and estimate tables.

``ifl export gold|dsl|estimates --out FILE``; pages offer the same tables from
:func:`export_frame` (and :func:`csv_bytes` for the download button).

CSV rules (:func:`write_csv`, for every kind)
    UTF-8 without a byte-order mark (``--excel`` / ``excel=True`` writes one first: see below),
    ``\\r\\n`` line ends (RFC 4180), a header row with the
    column names below. Text cells and names are in double quotes, numbers never are. Missing
    values (NA) are empty cells; booleans are written 1/0; timestamps are UTC,
    ISO 8601 (``2026-05-01T12:00:00.000000Z``). A text cell that begins with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return is prefixed with a single quote, so that a
    spreadsheet shows it instead of running it as a formula; numbers are never changed (a
    negative number stays a number), nor is text that is just a number (``-0.5``). Named index
    levels (``term`` of an estimates table) become the first columns; an unnamed index is dropped.

Excel (``ifl export gold --excel``, the Export page's "for Excel" button)
    The same CSV with a UTF-8 byte-order mark first: Excel opens a CSV by double-click in the
    system's legacy code page unless the file starts with a BOM, so Chinese, Japanese, Hindi or
    Arabic text shows as mojibake. Not the default, because R's ``read.csv`` keeps the BOM in the
    first column's name unless told ``fileEncoding = "UTF-8-BOM"`` (pandas, readr and Python's
    ``utf-8-sig`` skip it); every kind can be written either way.

``gold``: one row per sampled item (of the newest sample unless another is given)
    completion_id, model, benchmark, query_language, image, stratum, inclusion_probability
    (``n_h / N_h``), round (of drawing), queue_position, double_annotate, then the texts the
    annotators judged: prompt, gold_answer, completion (as stored; empty when not given); then per annotator
    ``k`` = 1, 2, ... (1 is the primary label: slot 1, then labels outside routing, then slot 2,
    oldest first): annotator_k_id, annotator_k_name, annotator_k_answer_language,
    annotator_k_matches_gold, annotator_k_correct, annotator_k_comment, annotator_k_labeled_at
    (the label's latest version); then the resolved labels estimation uses
    (:func:`annotator.annotation.labels.resolved_labels`): answer_language, matches_gold, correct,
    fidelity (answer language = the query language's class), n_annotations, disagreement,
    adjudicated, adjudicator_id, adjudicator_name, adjudication_comment, adjudicated_at,
    first_labeled_at, last_labeled_at. Unlabeled items leave the label columns empty.

``dsl``: one row per completion
    The columns of :func:`annotator.analysis.frame.analysis_frame` (gold labels empty where
    unlabeled), plus ``label_prob`` after ``sample_prob``: the probability that a completion is
    *labeled*, ``m_h / N_h`` with ``m_h`` the labeled items of its stratum. Routing labels each
    stratum in its random queue order, so the labeled items are a simple random sample of the
    stratum and ``label_prob`` is the right ``pi`` while the sample is being labeled;
    ``sample_prob`` (``n_h / N_h``) is right only once every item is labeled. In R::

        library(dsl)
        d <- read.csv("dsl.csv", na.strings = "", encoding = "UTF-8")
        fit <- dsl(model = "lm", formula = fidelity ~ image,
                   predicted_var = "fidelity", prediction = "pred_fidelity",
                   sample_prob = "label_prob", data = d)
        summary(fit)

    ``dsl()`` needs a prediction on every row (run language ID on all completions) and at
    least one label in every stratum (``label_prob > 0``); ``correct`` works the same way with
    ``prediction = "pred_correct"``, after dropping labeled rows whose ``correct`` is NA.

``estimates``: every estimate of :func:`annotator.analysis.estimates.study_estimates`, one row per
estimand, estimator and term (columns of ``stats.TIDY_COLUMNS``), with ``term_words`` after
``term``: the term in words (``image:llm[T.leo]`` -> "image x LLM: Leo",
:func:`annotator.analysis.wording.term_in_words`). A cell the labels cannot yet identify has
``status`` ``not_estimable``, empty numbers and a ``needs`` sentence ("not yet estimable: needs
about k more labels in <strata>"), never a number.
"""

from __future__ import annotations

from io import TextIOBase
from numbers import Number
from os import PathLike
from typing import BinaryIO, TextIO, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_numeric_dtype,
    is_object_dtype,
)
from sqlalchemy import Engine, select

from annotator.analysis.frame import ANALYSIS_COLUMNS, analysis_frame, faithful_class
from annotator.analysis.wording import with_term_words
from annotator.annotation.labels import resolved_labels
from annotator.annotation.reads import current_sample_id
from annotator.design.sampling import NoSampleError
from annotator.storage import session_scope
from db.models import (
    Adjudication,
    Annotation,
    Annotator,
    Assignment,
    Completion,
    Sample,
    SampleItem,
)

__all__ = [
    "ANNOTATOR_FIELDS",
    "BOM",
    "DSL_COLUMNS",
    "EXPORT_KINDS",
    "csv_bytes",
    "export",
    "export_frame",
    "write_csv",
]

EXPORT_KINDS = ("gold", "dsl", "estimates")
#: Per-annotator columns of the gold export: ``annotator_<k>_<field>``.
ANNOTATOR_FIELDS = ("id", "name", "answer_language", "matches_gold", "correct", "comment", "labeled_at")
DSL_COLUMNS = (
    *ANALYSIS_COLUMNS[: ANALYSIS_COLUMNS.index("sample_prob") + 1],
    "label_prob",
    *ANALYSIS_COLUMNS[ANALYSIS_COLUMNS.index("sample_prob") + 1 :],
)
_ITEM_COLUMNS = (
    "completion_id",
    "model",
    "benchmark",
    "query_language",
    "image",
    "stratum",
    "inclusion_probability",
    "round",
    "queue_position",
    "double_annotate",
    "prompt",
    "gold_answer",
    "completion",
)
#: Written first by ``excel=True``: the UTF-8 byte-order mark Excel needs to read UTF-8.
BOM = "\ufeff".encode()
_RESOLVED_COLUMNS = (
    "answer_language",
    "matches_gold",
    "correct",
    "fidelity",
    "n_annotations",
    "disagreement",
    "adjudicated",
    "adjudicator_id",
    "adjudicator_name",
    "adjudication_comment",
    "adjudicated_at",
    "first_labeled_at",
    "last_labeled_at",
)
# The planned design has two annotation slots: keep both sets of columns even while empty.
_MIN_ANNOTATORS = 2
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_TIMESTAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
# RFC 4180 line ends; Arrow quotes every text cell and header name ("needed" style), never numbers.
_WRITE_OPTIONS = pa_csv.WriteOptions(eol="\r\n")


def _gold_frame(engine: Engine, sample_id: int | None) -> pd.DataFrame:
    if sample_id is None:
        sample_id = current_sample_id(engine)
        if sample_id is None:
            raise NoSampleError("no sample to export: run `ifl sample` first")
    with session_scope(engine) as session:
        if session.get(Sample, sample_id) is None:
            raise NoSampleError(f"there is no sample {sample_id}")
        connection = session.connection()
        in_sample = select(SampleItem.completion_id).where(SampleItem.sample_id == sample_id)
        items = pd.read_sql(
            select(
                SampleItem.completion_id,
                Completion.model,
                Completion.benchmark,
                Completion.query_language,
                Completion.image,
                SampleItem.stratum,
                SampleItem.inclusion_probability,
                SampleItem.round,
                SampleItem.queue_position,
                SampleItem.double_annotate,
                Completion.prompt,
                Completion.gold_answer,
                Completion.completion,
            )
            .join(Completion, Completion.id == SampleItem.completion_id)
            .where(SampleItem.sample_id == sample_id)
            .order_by(SampleItem.stratum, SampleItem.queue_position),
            connection,
        )
        annotations = pd.read_sql(
            select(
                Annotation.completion_id,
                Annotation.id.label("annotation_id"),
                Assignment.slot,
                Annotation.created_at,
                Annotation.annotator_id.label("id"),
                Annotator.name,
                Annotation.answer_language,
                Annotation.matches_gold,
                Annotation.correct,
                Annotation.comment,
                Annotation.updated_at.label("labeled_at"),
            )
            .join(Annotator, Annotator.id == Annotation.annotator_id)
            .outerjoin(Assignment, Assignment.id == Annotation.assignment_id)
            .where(Annotation.completion_id.in_(in_sample)),
            connection,
        )
        adjudications = pd.read_sql(
            select(
                Adjudication.completion_id,
                Adjudication.researcher_id.label("adjudicator_id"),
                Annotator.name.label("adjudicator_name"),
                Adjudication.comment.label("adjudication_comment"),
                Adjudication.resolved_at.label("adjudicated_at"),
            )
            .join(Annotator, Annotator.id == Adjudication.researcher_id)
            .where(Adjudication.completion_id.in_(in_sample)),
            connection,
        )
        resolved = resolved_labels(session, sample_id)

    gold = items.astype({"image": np.int64, "double_annotate": "boolean"})
    # The primary label first, as resolved_labels orders them.
    annotations["created_at"] = pd.to_datetime(annotations["created_at"], utc=True)
    annotations = annotations.assign(rank=annotations["slot"].fillna(1.5)).sort_values(
        ["completion_id", "rank", "created_at", "annotation_id"]
    )
    annotations["k"] = annotations.groupby("completion_id").cumcount() + 1
    for k in range(1, max(_MIN_ANNOTATORS, int(annotations["k"].max()) if len(annotations) else 0) + 1):
        wide = annotations.loc[annotations["k"] == k, ["completion_id", *ANNOTATOR_FIELDS]]
        gold = gold.merge(
            wide.rename(columns={f: f"annotator_{k}_{f}" for f in ANNOTATOR_FIELDS}), on="completion_id", how="left"
        )
        gold[f"annotator_{k}_id"] = gold[f"annotator_{k}_id"].astype("Int64")
        gold[f"annotator_{k}_labeled_at"] = pd.to_datetime(gold[f"annotator_{k}_labeled_at"], utc=True)
        for field in ("matches_gold", "correct"):
            gold[f"annotator_{k}_{field}"] = gold[f"annotator_{k}_{field}"].astype("boolean")

    gold = gold.merge(resolved, on="completion_id", how="left").merge(adjudications, on="completion_id", how="left")
    labeled = gold["answer_language"].notna()
    gold["fidelity"] = (gold["answer_language"] == faithful_class(gold["query_language"])).where(labeled)
    gold = gold.astype(
        {
            "matches_gold": "boolean",
            "correct": "boolean",
            "fidelity": "boolean",
            "n_annotations": "Int64",
            "adjudicator_id": "Int64",
        }
    )
    gold["n_annotations"] = gold["n_annotations"].fillna(0)
    gold["adjudicated"] = gold["adjudicated"].astype("boolean").fillna(False)
    gold["disagreement"] = gold["disagreement"].astype("boolean").where(labeled)
    for column in ("adjudicated_at", "first_labeled_at", "last_labeled_at"):
        gold[column] = pd.to_datetime(gold[column], utc=True)
    annotator_columns = [c for c in gold.columns if c.startswith("annotator_")]
    return gold[[*_ITEM_COLUMNS, *annotator_columns, *_RESOLVED_COLUMNS]]


def _dsl_frame(engine: Engine, sample_id: int | None) -> pd.DataFrame:
    frame = analysis_frame(engine, sample_id)
    strata = frame.groupby("stratum")["labeled"]
    frame["label_prob"] = strata.transform("sum") / strata.transform("size")
    return frame[list(DSL_COLUMNS)]


def export_frame(engine: Engine, kind: str, sample_id: int | None = None) -> pd.DataFrame:
    """The table of ``kind`` (``gold``, ``dsl`` or ``estimates``, see the module docstring), before CSV rules."""
    if kind == "gold":
        return _gold_frame(engine, sample_id)
    if kind == "dsl":
        return _dsl_frame(engine, sample_id)
    if kind == "estimates":
        from annotator.analysis.estimates import study_estimates

        return with_term_words(study_estimates(engine, sample_id=sample_id).all_estimates)
    raise ValueError(f"unknown export {kind!r} (use one of {', '.join(EXPORT_KINDS)})")


def export(
    engine: Engine,
    kind: str,
    out: str | PathLike[str] | BinaryIO | TextIO,
    sample_id: int | None = None,
    *,
    excel: bool = False,
) -> int:
    """Write the ``kind`` table as CSV to ``out`` (a path or an open stream); returns the rows written.

    ``excel`` writes the byte-order mark Excel needs to show UTF-8 text (module docstring).
    """
    return write_csv(export_frame(engine, kind, sample_id), out, excel=excel)


def _neutralise(column: pd.Series) -> pd.Series:
    """Text cells for the CSV: a quote before what a spreadsheet would run, other values as text."""
    if isinstance(column.dtype, pd.StringDtype):
        starts = column.str.startswith(_FORMULA_START, na=False)
        if not starts.any():  # the common case, kept cheap for the 730k-row DSL table
            return column
        risky = starts & ~column.str.fullmatch(_NUMBER, na=False)
        return column.where(~risky, "'" + column)
    values = column.astype(object)
    present = values.notna().to_numpy()
    is_text = np.zeros(len(values), dtype=bool)
    is_text[present] = [isinstance(value, str) for value in values.to_numpy()[present]]
    values[present & ~is_text] = values[present & ~is_text].map(str)  # numbers among text: as they print
    text = values[is_text]
    risky = text.str.startswith(_FORMULA_START) & ~text.str.fullmatch(_NUMBER)
    values[risky.index[risky]] = "'" + text[risky]
    return values.where(present, None)


def _only(column: pd.Series, types: type | tuple[type, ...]) -> bool:
    """An object column whose values (NA aside) are all of ``types``, and not all NA."""
    values = column.dropna()
    return is_object_dtype(column) and len(values) > 0 and all(isinstance(value, types) for value in values)


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the CSV rules (module docstring) to a copy of ``frame``."""
    named = [name for name in frame.index.names if name is not None]
    ready = (frame.reset_index(level=named) if named else frame).reset_index(drop=True)
    columns: dict[str, pd.Series] = {}
    for name, column in ready.items():
        if is_bool_dtype(column) or _only(column, (bool, np.bool_)):
            column = column.astype("boolean").astype("Int64")
        elif is_datetime64_any_dtype(column):
            aware = column.dt.tz is not None
            column = (column.dt.tz_convert("UTC") if aware else column).dt.strftime(
                _TIMESTAMP if aware else _TIMESTAMP.removesuffix("Z")
            )
        elif _only(column, Number):
            column = pd.to_numeric(column)
        elif not is_numeric_dtype(column):
            column = _neutralise(column)
        columns[_neutralise(pd.Series([str(name)], dtype=object)).iat[0]] = column
    return pd.DataFrame(columns, index=ready.index)


def csv_bytes(frame: pd.DataFrame, *, excel: bool = False) -> bytes:
    """``frame`` as CSV under the rules of the module docstring (also for a download button);
    ``excel`` puts the byte-order mark first."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(pa.Table.from_pandas(_csv_ready(frame), preserve_index=False), sink, _WRITE_OPTIONS)
    return (BOM if excel else b"") + sink.getvalue().to_pybytes()


def write_csv(frame: pd.DataFrame, out: str | PathLike[str] | BinaryIO | TextIO, *, excel: bool = False) -> int:
    """Write ``frame`` as CSV to a path or an open stream; returns the rows written.

    Arrow's CSV writer, because pandas' takes ten times as long for the 730k-row DSL table.
    ``excel`` puts the byte-order mark first (module docstring).
    """
    if isinstance(out, (str, PathLike)):
        table = pa.Table.from_pandas(_csv_ready(frame), preserve_index=False)  # before the file is opened
        with open(out, "wb") as sink:
            sink.write(BOM if excel else b"")
            pa_csv.write_csv(table, sink, _WRITE_OPTIONS)
    else:
        data = csv_bytes(frame, excel=excel)
        if isinstance(out, TextIOBase):
            out.write(data.decode("utf-8"))
        else:
            cast(BinaryIO, out).write(data)
    return len(frame)
