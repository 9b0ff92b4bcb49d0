"""The study's estimates for the dashboard and the export page: cached loaders (figures: :mod:`pages._figures`).

The numbers come from ``annotator.analysis.estimates`` and ``annotator.annotation.agreement``; they and the figures
drawn from them are kept per :class:`ViewVersion` (population and labels, read from the
database on every run), so a page refreshing every few seconds recomputes and redraws nothing
until something changed, and a new label shows on the next refresh. The population part of the
analysis frame is kept on the engine between recomputes, so a new label reads only the labels.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from annotator.analysis import estimates
from annotator.analysis.estimates import StudyEstimates  # in class bodies `estimates` is a method
from annotator.analysis.frame import (
    LabelCount,
    PopulationVersion,
    cached_population,
    change_stamp,
    keep_population_cached,
    keep_population_on_disk,
    label_count,
    population_disk_folder,
    population_version,
)
from annotator.annotation.agreement import agreement_table
from annotator.storage import database_url
from pages._common import engine_for
from pages._figures import FIGURES


class ViewVersion(NamedTuple):
    """What the numbers on show depend on, read from the database on every run, so every app
    process sees a change whichever process (or the CLI) made it: the population part of the
    analysis frame (imports, language ID, samples) and the gold labels."""

    population: PopulationVersion
    labels: LabelCount


def view_version(db: Engine) -> ViewVersion:
    """The current :class:`ViewVersion`: two queries (~0.3 s at 775k completions on SQLite),
    skipped when nothing was committed since they were last read (:func:`change_stamp`)."""
    seen = _store().versions
    key = str(db.url)
    stamp = change_stamp(db)  # before the version: what is kept is then at least as new
    if stamp is not None and key in seen and seen[key][0] == stamp:
        return seen[key][1]
    version = ViewVersion(population_version(db), label_count(db))
    seen[key] = (stamp, version)
    return version


@dataclass
class _Computed:
    """The estimates of one version, and what is drawn from them (filled on first use)."""

    estimates: estimates.StudyEstimates
    figures: dict[str, dict] | None = None


@dataclass
class _Store:
    """Per app process: the computed versions (newest last, a few per database), the version
    last read per database with its change stamp, the version each database shows, and one
    lock per database so two sessions never compute the same version twice."""

    computed: dict[tuple[str, ViewVersion], _Computed] = field(default_factory=dict)
    versions: dict[str, tuple[int | None, ViewVersion]] = field(default_factory=dict)
    shown: dict[str, tuple[ViewVersion, float]] = field(default_factory=dict)
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, url: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(url, threading.Lock())

    def keep(self, url: str, version: ViewVersion, computed: _Computed) -> None:
        with self.guard:
            self.computed[(url, version)] = computed
            mine = [key for key in self.computed if key[0] == url]
            for key in mine[:-_KEPT_VERSIONS]:
                del self.computed[key]


_KEPT_VERSIONS = 2
#: The tables of :meth:`annotator.analysis.estimates.StudyEstimates.tables`, named before they exist
#: (the export page offers their downloads without computing them).
ESTIMATE_TABLES = ("ifl", "interaction", "accuracy", "strata", "power")


@st.cache_resource(show_spinner=False)
def _store() -> _Store:
    return _Store()


def _engine(url: str) -> Engine:
    """The process-wide engine of ``url``, keeping the population part of the frame between
    recomputes: a new label then reads only the labels. It is kept on disk too (as ``ifl
    estimate`` keeps it; ``IFL_CACHE_DIR``), so the first visit after a restart, or in another
    app process, loads it instead of reading it; writes are atomic and keyed by the population's
    version, so processes sharing the folder never see half a file or another version's."""
    db = engine_for(url)
    keep_population_cached(db)
    if population_disk_folder(db) is None:
        keep_population_on_disk(db)
    return db


def warm_population(url: str | None = None) -> threading.Thread:
    """Read the population part of the analysis frame in the background (after an import, a
    language-ID run or at start), so the next dashboard visit reads only the labels."""
    db = _engine(url or database_url())

    def warm() -> None:
        try:
            cached_population(db)
        except Exception:  # only a head start: the next page run reads the population itself
            logging.getLogger(__name__).warning("warming the population failed", exc_info=True)

    thread = threading.Thread(target=warm, name="ifl-warm-population", daemon=True)
    thread.start()
    return thread


def _computed(url: str, version: ViewVersion, store: _Store, show_progress: bool = True) -> _Computed:
    """The estimates of ``version``, computed on first use and kept. In a page run a progress
    bar says what runs; a deferred download (``show_progress=False``) runs outside the page."""
    kept = store.computed.get((url, version))
    if kept is not None:
        return kept
    bar = st.progress(0.0, text="Waiting for the estimates another session is computing…") if show_progress else None
    with store.lock(url):
        kept = store.computed.get((url, version))
        if kept is None:
            db = _engine(url)
            if bar is not None:
                bar.progress(
                    0.05,
                    text="Reading the completions, predictions and sample "
                    "(once per import, language-ID run or sample)…",
                )
            population = cached_population(db, version=version.population)
            if bar is not None:
                bar.progress(
                    0.5,
                    text=f"Reading the labels, then cross-fitting and estimating every estimand on "
                    f"{len(population.frame):,} completions…",
                )
            kept = _Computed(estimates.study_estimates(db, population_version=version.population))
            store.keep(url, version, kept)
    if bar is not None:
        bar.empty()
    return kept


def _figures_of(computed: _Computed) -> dict[str, dict]:
    if computed.figures is None:
        computed.figures = {name: draw(computed.estimates).to_dict() for name, draw in FIGURES.items()}
    return computed.figures


@st.cache_data(show_spinner=False, max_entries=4)
def _agreement(url: str, version: ViewVersion) -> pd.DataFrame:
    return agreement_table(engine_for(url))


def recompute_seconds() -> float:
    """At most one recompute of the estimates per this many seconds and database; meanwhile the
    last estimates are shown. ``IFL_DASHBOARD_RECOMPUTE_SECONDS``, default 0: recompute whenever
    labels changed (a recompute reads only the labels; docs/scaling.md has the figures). Set it
    for a study so large that recomputing after every label would keep the server busy."""
    return float(os.environ.get("IFL_DASHBOARD_RECOMPUTE_SECONDS", "0"))


@dataclass(frozen=True)
class StudyView:
    """What one page run shows: the version whose estimates are on show, and the current one.
    Built once per run by :func:`study_view`, then asked for everything the page draws."""

    url: str
    shown: ViewVersion
    current: ViewVersion

    @property
    def labels_waiting(self) -> int:
        """Labels stored since the estimates on show were computed (0 when they are current)."""
        return self.current.labels.annotations - self.shown.labels.annotations

    def not_estimable(self) -> str | None:
        """Why there can be no estimates yet (no sample, no labels), or None when there can."""
        if self.shown.population.samples == 0:
            return "No sample has been drawn yet: the estimates appear once its first items are labeled."
        if self.shown.labels.annotations == 0:
            return "No item of the sample is labeled yet: the estimates appear with the first labels."
        return None

    def is_computed(self) -> bool:
        """Whether the estimates on show are ready (else :meth:`estimates` computes them)."""
        return (self.url, self.shown) in _store().computed

    def estimates(self) -> estimates.StudyEstimates:
        """The study's estimates, computed once per version (with a progress bar) and kept."""
        return _computed(self.url, self.shown, _store()).estimates

    def figures(self) -> dict[str, dict]:
        """Name -> plotly figure (as a dict) of :data:`FIGURES`, drawn once per version."""
        return _figures_of(_computed(self.url, self.shown, _store()))

    def estimates_when_asked(self) -> Callable[[], StudyEstimates]:
        """The estimates for a deferred download: computed (if they are not yet) only when the
        download is clicked, so a page offering them opens at once."""
        url, version, store = self.url, self.shown, _store()
        return lambda: _computed(url, version, store, show_progress=False).estimates

    def figures_when_asked(self) -> Callable[[], dict[str, dict]]:
        """:meth:`figures` for a deferred download (see :meth:`estimates_when_asked`)."""
        url, version, store = self.url, self.shown, _store()
        return lambda: _figures_of(_computed(url, version, store, show_progress=False))

    def agreement(self) -> pd.DataFrame:
        """Agreement on the double-annotated items, recomputed only when the shown version changes."""
        return _agreement(self.url, self.shown)


def study_view() -> StudyView:
    """The versions for this run. Imports, language ID, samples and labels alike change the
    estimates; with :func:`recompute_seconds` set, a newer version replaces the shown one only
    once that many seconds have passed since the shown one was first shown."""
    url = database_url()
    current = view_version(_engine(url))
    shown = _store().shown
    previous = shown.get(url)
    if previous is not None and previous[0] != current and time.monotonic() - previous[1] < recompute_seconds():
        return StudyView(url, previous[0], current)
    if previous is None or previous[0] != current:
        shown[url] = (current, time.monotonic())
    return StudyView(url, current, current)
