"""The analysis frame: one row per completion, joining design, surrogate and gold labels.

This is the contract with ``stats/``: :func:`analysis_frame` returns exactly
:data:`ANALYSIS_COLUMNS`, whatever the database holds.

=================  =======  ================================================================
column             type     meaning
=================  =======  ================================================================
completion_id      str      the completion
model              str      the model that wrote it
benchmark          str      its benchmark
query_language     str      ISO 639-3 code of the query
image              int      1 if an image was given, else 0
llm                str/NaN  design covariates, NaN where not given
vision_encoder     str/NaN
train_language     str/NaN
stratum            str      ``benchmark|query_language`` (the sampling stratum)
sample_prob        float    the design's inclusion probability ``n_h / N_h`` of the row's
                            stratum (also on unsampled rows; 0.0 where the stratum has no draws)
sampled            bool     the completion is an item of the sample
labeled            bool     it is sampled and has a resolved gold label
fidelity           float    1.0 if the resolved answer language is the query language's class,
                            0.0 if not, NaN if unlabeled
correct            float    resolved correctness 1.0/0.0; NaN if unlabeled or judged NA
answer_language    str      resolved answer-language class, None if unlabeled
pred_fidelity      float    the language-ID surrogate's fidelity 1.0/0.0, NaN if none
pred_language      str/NaN  the surrogate's answer-language class
pred_probability   float    the surrogate's confidence, NaN if none
pred_correct       float    the ``judge`` surrogate's correctness 1.0/0.0, NaN if none
completion_chars   int      length of the completion in characters
=================  =======  ================================================================

Resolved labels follow :func:`annotator.annotation.labels.resolved_labels` (adjudication, else the
primary annotator). The sample is the newest one unless another is named. One query per
table and vectorised merges keep the frame at a few seconds for 730k completions; a
long-lived process keeps that part (:class:`Population`) per :class:`PopulationVersion` and
then reads only the labels (:func:`keep_population_cached`).
"""

from __future__ import annotations

import sqlite3
import threading
import warnings
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from sqlalchemy import Engine, and_, func, select
from sqlalchemy.orm import Session, aliased

from annotator.analysis.population_store import load_population, population_cache_dir, population_key, save_population
from annotator.annotation.labels import RESOLVED_COLUMNS, resolved_labels
from annotator.annotation.reads import current_sample_id
from annotator.design.sampling import strata_for_sample
from annotator.ingest.langid import LANGUAGE_ID_SOURCES
from annotator.languages import query_language_class
from annotator.storage import fetch_frame, session_scope
from db.models import (
    Adjudication,
    Annotation,
    Completion,
    Prediction,
    Sample,
    SampleItem,
    SampleStratum,
)
from stats.cache import AnalysisCache

__all__ = [
    "ANALYSIS_COLUMNS",
    "JUDGE_SOURCE",
    "LabelCount",
    "Population",
    "PopulationVersion",
    "analysis_frame",
    "cached_population",
    "change_stamp",
    "faithful_class",
    "keep_population_cached",
    "keep_population_on_disk",
    "label_count",
    "population_and_frame",
    "population_disk_folder",
    "population_frame",
    "population_version",
]

ANALYSIS_COLUMNS = (
    "completion_id",
    "model",
    "benchmark",
    "query_language",
    "image",
    "llm",
    "vision_encoder",
    "train_language",
    "stratum",
    "sample_prob",
    "sampled",
    "labeled",
    "fidelity",
    "correct",
    "answer_language",
    "pred_fidelity",
    "pred_language",
    "pred_probability",
    "pred_correct",
    "completion_chars",
)
JUDGE_SOURCE = "judge"
#: The columns that come from the gold labels; the rest is the population part.
_LABEL_COLUMNS = ("labeled", "fidelity", "correct", "answer_language")
#: Per engine, held weakly (its entries go when the engine goes): the kept populations of an
#: engine with :func:`keep_population_cached`, and the connection :func:`change_stamp` asks.
_POPULATIONS: weakref.WeakKeyDictionary[Engine, dict[tuple[int | None, str | None], tuple[Population, int | None]]]
_POPULATIONS = weakref.WeakKeyDictionary()
_WATCHES: weakref.WeakKeyDictionary[Engine, tuple[threading.Lock, sqlite3.Connection]] = weakref.WeakKeyDictionary()
#: Per engine: the folder where :func:`keep_population_on_disk` keeps its population.
_DISK: weakref.WeakKeyDictionary[Engine, Path] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()  # held for dictionary updates only
_POPULATION_LOCK = threading.Lock()  # held while a population is read


def faithful_class(query_language: pd.Series) -> pd.Series:
    """The answer-language class that counts as faithful, per row (mapped once per language)."""
    classes = {code: query_language_class(code) for code in query_language.dropna().unique()}
    return query_language.map(classes)


def _flag(series: pd.Series) -> pd.Series:
    """True/False/None (or SQLite's 1/0/None) as 1.0/0.0/NaN."""
    return series.astype("boolean").astype(np.float64)


def _surrogate(session: Session, requested: str | None) -> str | None:
    """The language-ID source to use: the requested one (which must exist) or the preferred present."""
    present = set(session.scalars(select(Prediction.source).distinct()))
    if requested is not None:
        if requested not in present:
            raise ValueError(
                f"no predictions from source {requested!r} (present: {', '.join(sorted(present)) or 'none'})"
            )
        return requested
    return next((source for source in LANGUAGE_ID_SOURCES if source in present), None)


class PopulationVersion(NamedTuple):
    """Changes whenever the population part of the frame can change: an import (completions'
    count or latest ``imported_at``), a language-ID run (predictions) or a new sample or top-up.
    Labels are not part of it: they are read afresh every time."""

    completions: int
    imported_at: datetime | None
    predictions: int
    predicted_at: datetime | None
    samples: int
    sampled_at: datetime | None
    sample_items: int


def population_version(engine: Engine) -> PopulationVersion:
    """The current :class:`PopulationVersion`, read from the database in one query (so every app
    process sees the same version, whichever process wrote the change)."""
    statement = select(
        select(func.count()).select_from(Completion).scalar_subquery(),
        select(func.max(Completion.imported_at)).scalar_subquery(),
        select(func.count()).select_from(Prediction).scalar_subquery(),
        select(func.max(Prediction.created_at)).scalar_subquery(),
        select(func.count()).select_from(Sample).scalar_subquery(),
        select(func.max(Sample.updated_at)).scalar_subquery(),
        select(func.count()).select_from(SampleItem).scalar_subquery(),
    )
    with engine.connect() as connection:
        return PopulationVersion(*connection.execute(statement).one())


@dataclass(frozen=True)
class Population:
    """The population part of the analysis frame: everything but the gold labels.

    It changes only with imports, language ID and sampling, while labels arrive one at a time,
    so it is read once per :class:`PopulationVersion` and each label update reads only labels.
    """

    frame: pd.DataFrame
    sample_id: int | None
    version: PopulationVersion
    faithful: NDArray[np.object_]
    rows: pd.Index
    #: What the estimators derive from this population alone (learner inputs, cells, designs),
    #: kept with it so that a recompute after a new label fits only what the labels change.
    derived: AnalysisCache = field(default_factory=AnalysisCache, compare=False, repr=False)

    def with_labels(self, labels: pd.DataFrame) -> pd.DataFrame:
        """The analysis frame: this population with ``labels`` (:func:`resolved_labels`) set.

        Works on a shallow copy (pandas copy-on-write): the population's columns are shared,
        only the four label columns are new arrays.
        """
        frame = self.frame.copy(deep=False)
        n_rows = len(frame)
        rows, known = self._label_rows(labels["completion_id"])
        labeled = np.zeros(n_rows, dtype=bool)
        labeled[rows] = True
        labeled &= frame["sampled"].to_numpy()
        answer = np.full(n_rows, None, dtype=object)
        answer[rows] = labels["answer_language"].to_numpy(dtype=object)[known]
        answer[~labeled] = None
        correct = np.full(n_rows, np.nan)
        correct[rows] = _flag(labels["correct"]).to_numpy()[known]
        correct[~labeled] = np.nan
        frame["labeled"] = labeled
        frame["fidelity"] = np.where(labeled, (answer == self.faithful).astype(np.float64), np.nan)
        frame["correct"] = correct
        frame["answer_language"] = pd.Series(answer, index=frame.index, dtype=object)
        return frame[list(ANALYSIS_COLUMNS)]

    def _label_rows(self, ids: pd.Series) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """The rows of the labeled completions ``ids`` (unique), and the position in ``ids`` of each.

        Found by looking each of the N completion ids up among the n labels' (a hash of n ids),
        not each label among the completions': hashing 775k ids for the index costs 0.6 s, and
        a process that estimates once (``ifl estimate``) would pay it every time. ``ids`` of no
        completion (none should exist: labels are of sampled items) are left out.
        """
        if not pd.Index(ids).is_unique:  # one label per completion; else the last one, as before
            at = self.rows.get_indexer(ids)
            known = np.flatnonzero(at >= 0)
            return at[known], known
        found = pc.index_in(pa.array(self.frame["completion_id"]), value_set=pa.array(ids, type=pa.string()))
        rows = np.flatnonzero(found.is_valid().to_numpy(zero_copy_only=False))
        return rows, found.drop_null().to_numpy().astype(np.intp)


def population_frame(engine: Engine, sample_id: int | None = None, surrogate_source: str | None = None) -> Population:
    """Read the population part of the analysis frame (one query per table, vectorised merges)."""
    version = population_version(engine)
    if sample_id is None:
        sample_id = current_sample_id(engine)
    with session_scope(engine) as session:
        connection = session.connection()
        source = _surrogate(session, surrogate_source)
        # One query: the surrogate, the judge and sample membership joined in the database (each
        # at most one row per completion: unique keys) instead of merged on 775k string ids in
        # pandas, which cost more than reading them (issue 10).
        surrogate, judge, item = aliased(Prediction), aliased(Prediction), aliased(SampleItem)
        frame = fetch_frame(
            connection,
            select(
                Completion.id.label("completion_id"),
                Completion.model,
                Completion.benchmark,
                Completion.query_language,
                Completion.image,
                Completion.llm,
                Completion.vision_encoder,
                Completion.train_language,
                func.length(Completion.completion).label("completion_chars"),
                surrogate.predicted_fidelity.label("stored_fidelity"),
                surrogate.language_class.label("pred_language"),
                surrogate.probability.label("pred_probability"),
                judge.predicted_correct.label("pred_correct"),
                item.id.is_not(None).label("sampled"),
            )
            .outerjoin(surrogate, and_(surrogate.completion_id == Completion.id, surrogate.source == source))
            .outerjoin(judge, and_(judge.completion_id == Completion.id, judge.source == JUDGE_SOURCE))
            .outerjoin(item, and_(item.completion_id == Completion.id, item.sample_id == sample_id)),
        )
        strata = fetch_frame(
            connection,
            select(
                SampleStratum.stratum,
                SampleStratum.population,
                SampleStratum.drawn,
            ).where(SampleStratum.sample_id == sample_id),
        )

    frame["image"] = frame["image"].astype(np.int64)
    frame["completion_chars"] = frame["completion_chars"].astype(np.int64)
    frame["sampled"] = frame["sampled"].astype(bool)
    frame["stratum"] = strata_for_sample(engine, frame, sample_id)
    _warn_on_drift(frame, strata, sample_id)
    probability = pd.Series(
        strata["drawn"].to_numpy(np.float64) / strata["population"].to_numpy(np.float64), index=strata["stratum"]
    )
    frame["sample_prob"] = frame["stratum"].map(probability).fillna(0.0).astype(np.float64)
    faithful = faithful_class(frame["query_language"])

    derived = (frame["pred_language"] == faithful).astype(np.float64).where(frame["pred_language"].notna())
    frame["pred_fidelity"] = _flag(frame["stored_fidelity"]).fillna(derived)
    frame["pred_probability"] = frame["pred_probability"].astype(np.float64)
    frame["pred_correct"] = _flag(frame["pred_correct"])
    for column in ("llm", "vision_encoder", "train_language", "pred_language"):
        frame[column] = frame[column].where(frame[column].notna(), np.nan)  # NaN, not None, where missing
    population = [column for column in ANALYSIS_COLUMNS if column not in _LABEL_COLUMNS]
    return _population(frame[population], sample_id, version, faithful)


def _population(
    frame: pd.DataFrame, sample_id: int | None, version: PopulationVersion, faithful: pd.Series | None = None
) -> Population:
    """A :class:`Population` of its frame (the population columns of :data:`ANALYSIS_COLUMNS`)."""
    if faithful is None:
        faithful = faithful_class(frame["query_language"])
    return Population(
        frame=frame,
        sample_id=sample_id,
        version=version,
        faithful=faithful.to_numpy(dtype=object),
        rows=pd.Index(frame["completion_id"]),
    )


def keep_population_cached(engine: Engine) -> None:
    """Let :func:`analysis_frame` on ``engine`` keep the population part between calls.

    For long-lived processes (the app): the population is then read once per
    :class:`PopulationVersion` and a call reads only the labels. Off by default, so one-off
    callers (the CLI, tests that edit tables directly) always read everything. The cache is
    kept per engine (weakly: it goes with the engine) and holds one population.
    """
    with _CACHE_LOCK:
        _POPULATIONS.setdefault(engine, {})


def keep_population_on_disk(engine: Engine, directory: Path | None = None) -> Path | None:
    """Let :func:`cached_population` on ``engine`` keep the population on disk too, per
    :class:`PopulationVersion` (:mod:`annotator.analysis.population_store`).

    For processes that start often and read a population that seldom changes (``ifl
    estimate``, the app after a restart; ``ifl import``, ``lid``, ``sample`` and ``demo`` read
    the new population at their end to prepare it): a read from the database writes the
    population to ``directory`` (default
    :func:`~annotator.analysis.population_store.population_cache_dir`), and a later process
    whose database shows the same version loads it from there instead of reading it. Off by
    default. Returns the folder, or None where there is none (in-memory SQLite, ``IFL_CACHE_DIR=off``).
    """
    folder = population_cache_dir(engine) if directory is None else directory
    with _CACHE_LOCK:
        if folder is None:
            _DISK.pop(engine, None)
        else:
            _DISK[engine] = folder
    return folder


def population_disk_folder(engine: Engine) -> Path | None:
    """The folder where ``engine``'s population is kept on disk (:func:`keep_population_on_disk`), or None."""
    with _CACHE_LOCK:
        return _DISK.get(engine)


def _read_population(
    engine: Engine, sample_id: int | None, surrogate_source: str | None, version: PopulationVersion | None
) -> Population:
    """The population read from the database, or from the disk cache where one is kept for
    ``engine`` and holds the current version (``version`` if the caller has just read it)."""
    with _CACHE_LOCK:
        folder = _DISK.get(engine)
    if folder is None:
        return population_frame(engine, sample_id, surrogate_source)
    if version is None:
        version = population_version(engine)
    loaded = load_population(folder, population_key(version, sample_id, surrogate_source))
    if loaded is not None:
        frame, extra = loaded
        return _population(frame, extra["sample_id"], version)
    population = population_frame(engine, sample_id, surrogate_source)
    # Keyed by the version read before the population was: if anything changed while it was
    # read, the version differs now and the next process misses instead of using this copy.
    key = population_key(population.version, sample_id, surrogate_source)
    save_population(folder, key, population.frame, {"sample_id": population.sample_id})
    return population


def change_stamp(engine: Engine) -> int | None:
    """A number that changes whenever anything is committed to the database, or None.

    SQLite's ``PRAGMA data_version`` on a connection of its own (kept per engine, never
    writing): it changes whenever another connection, in any process, commits. It costs
    microseconds, where reading the versions costs two table scans (~0.3 s at 775k
    completions), so a refresh with nothing new can skip them. None on other backends and
    in-memory SQLite: callers then read the versions.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    with _CACHE_LOCK:
        watch = _WATCHES.get(engine)
        if watch is None:
            watch = _WATCHES[engine] = (threading.Lock(), sqlite3.connect(database, check_same_thread=False))
    lock, connection = watch
    with lock:
        return int(connection.execute("PRAGMA data_version").fetchone()[0])


def cached_population(
    engine: Engine,
    sample_id: int | None = None,
    surrogate_source: str | None = None,
    *,
    version: PopulationVersion | None = None,
) -> Population:
    """The population of ``engine``: from its cache when the version still matches (see
    :func:`keep_population_cached`), else read (and, if caching is on, kept). When nothing was
    committed since the cached population was last confirmed (:func:`change_stamp`), the
    version is not even read; nor when the caller has just read it (``version``, e.g. the
    dashboard's) and the kept population has it."""
    with _CACHE_LOCK:
        cache = _POPULATIONS.get(engine)
    if cache is None:
        return _read_population(engine, sample_id, surrogate_source, version)
    key = (sample_id, surrogate_source)
    with _CACHE_LOCK:
        kept, confirmed = cache.get(key, (None, None))
    # The stamp is read before the version: what is kept is then at least as new as the stamp.
    stamp = change_stamp(engine)
    if kept is not None and stamp is not None and stamp == confirmed:
        return kept
    if kept is not None and version is not None and kept.version == version:
        return kept
    if kept is not None and kept.version == population_version(engine):
        with _CACHE_LOCK:
            cache[key] = (kept, stamp)
        return kept
    with _POPULATION_LOCK:  # one read at a time: two sessions must not both read 775k rows
        with _CACHE_LOCK:
            kept, confirmed = cache.get(key, (None, None))
        if kept is not None and stamp is not None and stamp == confirmed:
            return kept
        population = _read_population(engine, sample_id, surrogate_source, None)
        with _CACHE_LOCK:
            cache.clear()  # one population at a time: it is the bulk of the app's memory
            cache[key] = (population, stamp)
        return population


def analysis_frame(engine: Engine, sample_id: int | None = None, surrogate_source: str | None = None) -> pd.DataFrame:
    """One row per completion with :data:`ANALYSIS_COLUMNS` (see the module docstring).

    ``sample_id`` defaults to the newest sample (with none, nothing is sampled or labeled);
    ``surrogate_source`` to ``glotlid`` if present, else ``lid176``. Warns if the completions
    changed since the sample was drawn: the recorded ``n_h / N_h`` no longer describe them.
    The population part comes from :func:`cached_population`; the labels are always read.
    """
    return population_and_frame(engine, sample_id, surrogate_source)[1]


def population_and_frame(
    engine: Engine,
    sample_id: int | None = None,
    surrogate_source: str | None = None,
    *,
    version: PopulationVersion | None = None,
) -> tuple[Population, pd.DataFrame]:
    """:func:`analysis_frame` and the :class:`Population` it was made from (whose ``derived``
    cache the estimators may use for this frame); ``version`` as for :func:`cached_population`."""
    population = cached_population(engine, sample_id, surrogate_source, version=version)
    if population.sample_id is None:
        labels = pd.DataFrame(columns=RESOLVED_COLUMNS)
    else:
        with session_scope(engine) as session:
            labels = resolved_labels(session, population.sample_id)
    return population, population.with_labels(labels)


def _warn_on_drift(frame: pd.DataFrame, strata: pd.DataFrame, sample_id: int | None) -> None:
    if strata.empty:
        return
    now = frame["stratum"].value_counts()
    recorded = strata.set_index("stratum")["population"]
    if not now.reindex(recorded.index).eq(recorded).all() or not now.index.isin(recorded.index).all():
        warnings.warn(
            f"the completions changed since sample {sample_id} was drawn: its inclusion probabilities "
            "no longer describe every stratum; draw a new sample before estimating",
            stacklevel=3,
        )


class LabelCount(NamedTuple):
    """A cheap fingerprint of the gold labels: changes whenever a label is added, edited or ruled."""

    annotations: int
    adjudications: int
    last_annotation: datetime | None
    last_adjudication: datetime | None


def label_count(engine: Engine) -> LabelCount:
    """Counts and latest change times of annotations and adjudications, in one query.

    Meant as a cache key for pages that hold an :func:`analysis_frame`: any new, revised or
    adjudicated label changes it. (A new sample or new predictions do not: key on those too.)
    """
    statement = select(
        select(func.count()).select_from(Annotation).scalar_subquery(),
        select(func.count()).select_from(Adjudication).scalar_subquery(),
        select(func.max(Annotation.updated_at)).scalar_subquery(),
        select(func.max(Adjudication.resolved_at)).scalar_subquery(),
    )
    with engine.connect() as connection:
        row = connection.execute(statement).one()
    return LabelCount(int(row[0]), int(row[1]), row[2], row[3])
