"""The study's estimates for the dashboard and the export page: cached loaders and figures.

The numbers come from ``annotator.estimates`` and ``annotator.agreement``; they and the figures
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
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy import Engine

from annotator import estimates
from annotator.analysis import (
    LabelCount,
    PopulationVersion,
    cached_population,
    keep_population_cached,
    label_count,
    population_version,
)
from annotator.agreement import agreement_table
from annotator.languages import language_name
from annotator.storage import database_url
from pages._common import engine_for


class ViewVersion(NamedTuple):
    """What the numbers on show depend on, read from the database on every run, so every app
    process sees a change whichever process (or the CLI) made it: the population part of the
    analysis frame (imports, language ID, samples) and the gold labels."""

    population: PopulationVersion
    labels: LabelCount


def view_version(db: Engine) -> ViewVersion:
    """The current :class:`ViewVersion` (two queries: ~0.3 s at 775k completions on SQLite)."""
    return ViewVersion(population_version(db), label_count(db))


@dataclass
class _Computed:
    """The estimates of one version, and what is drawn from them (filled on first use)."""

    estimates: estimates.StudyEstimates
    figures: dict[str, dict] | None = None


@dataclass
class _Store:
    """Per app process: the computed versions (newest last, a few per database), the version
    each database shows, and one lock per database so two sessions never compute the same
    version twice."""

    computed: dict[tuple[str, ViewVersion], _Computed] = field(default_factory=dict)
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
#: The tables of :meth:`annotator.estimates.StudyEstimates.tables`, named before they exist
#: (the export page offers their downloads without computing them).
ESTIMATE_TABLES = ("ifl", "interaction", "accuracy", "strata", "power")


@st.cache_resource(show_spinner=False)
def _store() -> _Store:
    return _Store()


def _engine(url: str) -> Engine:
    """The process-wide engine of ``url``, keeping the population part of the frame between
    recomputes: a new label then reads only the labels."""
    db = engine_for(url)
    keep_population_cached(db)
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
                bar.progress(0.05, text="Reading the completions, predictions and sample "
                                        "(once per import, language-ID run or sample)…")
            population = cached_population(db)
            if bar is not None:
                bar.progress(0.5, text=f"Reading the labels, then cross-fitting and estimating every estimand on "
                                       f"{len(population.frame):,} completions…")
            kept = _Computed(estimates.study_estimates(db))
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

    def estimates_when_asked(self) -> Callable[[], estimates.StudyEstimates]:
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


ESTIMATORS = {"dsl": "DSL (debiased)", "surrogate": "Surrogate only", "labeled": "Labeled only"}
COLORS = {"DSL (debiased)": "#1f5fa8", "Surrogate only": "#e07b24", "Labeled only": "#7f8c8d"}
_ROW_HEIGHT = 34


def forest(frame: pd.DataFrame, y: str, x_title: str, facet: str | None = None) -> go.Figure:
    """Point estimates with 95% intervals, the estimators side by side per row (the paper's Figure 1).

    Rows are drawn bottom-up in the frame's order, so pass it sorted in reverse reading order.
    """
    data = frame.assign(
        Estimator=frame["estimator"].map(ESTIMATORS).fillna(frame["estimator"]),
        plus=frame["ci_high"] - frame["estimate"],
        minus=frame["estimate"] - frame["ci_low"],
    )
    facet = facet if facet and data[facet].nunique() > 1 else None
    figure = px.scatter(
        data, x="estimate", y=y, color="Estimator", error_x="plus", error_x_minus="minus",
        facet_col=facet, color_discrete_map=COLORS, category_orders={"Estimator": list(ESTIMATORS.values())},
        hover_data={"se": ":.4f", "ci_low": ":.4f", "ci_high": ":.4f", "plus": False, "minus": False},
    )
    figure.update_traces(orientation="h", marker_size=8)
    rows = data[y].nunique()
    figure.update_layout(
        scattermode="group", scattergap=0.45, height=140 + _ROW_HEIGHT * rows,
        margin={"l": 10, "r": 10, "t": 70, "b": 10}, yaxis_title=None,
        legend={"orientation": "h", "yref": "container", "y": 1, "yanchor": "top", "x": 0, "title": None},
    )
    figure.update_xaxes(title=x_title, zeroline=False)
    figure.for_each_annotation(lambda note: note.update(text=note.text.split("=")[-1]))
    figure.add_vline(x=0, line_dash="dot", line_color="#999")
    return figure


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows labeled ``model · benchmark``, ordered by benchmark, then model (top to bottom)."""
    return frame.assign(cell=frame["model"] + " · " + frame["benchmark"]).sort_values(
        ["benchmark", "model"], ascending=False
    )


def ifl_forest(ifl: pd.DataFrame, ablation: bool = False) -> go.Figure:
    """IFL per model x benchmark (the paper's Figure 1): the studied models, or the ablation variants."""
    cells = ifl[ifl["ablation"] == ablation]
    return forest(_cells(cells), "cell", "Image-induced change in fidelity (95% CI; negative = loss)",
                  facet="estimand")


def accuracy_forest(accuracy: pd.DataFrame) -> go.Figure:
    """The image-induced change in accuracy per model x benchmark of the studied models."""
    cells = accuracy[(accuracy["estimand"] == "image_effect") & ~accuracy["ablation"]]
    return forest(_cells(cells), "cell", "Image-induced change in accuracy (95% CI)", facet="estimand")


def interaction_forest(frame: pd.DataFrame) -> go.Figure:
    """Interaction-regression coefficients, one panel per target language (the paper's Table 4)."""
    rows = frame[frame["estimand"] == "interaction"]
    rows = rows.assign(language=rows["language"].map(lambda code: f"{language_name(code)} ({code})"))
    figure = forest(rows.sort_values("term", ascending=False), "term", "Coefficient (95% CI)", facet="language")
    figure.update_yaxes(matches=None, showticklabels=True)
    return figure


def power_curve(power: pd.DataFrame) -> go.Figure:
    """95% half-width of each IFL estimate with the labels so far (filled) and, projected, with
    twice as many (open), joined per model x benchmark cell."""
    ifl = power[(power["estimand"] == "image_effect") & (power["outcome"] == "fidelity") & (power["term"] == "image")]
    figure = go.Figure()
    for benchmark, cells in ifl.groupby("benchmark", sort=True):
        x, y, symbol, model = [], [], [], []
        for cell in cells.itertuples():
            x += [cell.n_labeled, cell.labels_more, None]
            y += [cell.halfwidth, cell.halfwidth_more, None]
            symbol += ["circle", "circle-open", "circle"]
            model += [cell.model] * 3
        figure.add_trace(go.Scatter(
            x=x, y=y, name=benchmark, mode="lines+markers", text=model,
            marker={"symbol": symbol, "size": 9}, line={"width": 1, "dash": "dot"},
            hovertemplate="%{text}<br>%{x} labels: ±%{y:.3f}<extra>" + benchmark + "</extra>",
        ))
    figure.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend_title=None)
    figure.update_xaxes(title="Gold labels in the cell (log scale)", type="log")
    figure.update_yaxes(title="95% CI half-width of the IFL", rangemode="tozero")
    return figure


def labels_per_language(strata: pd.DataFrame) -> go.Figure:
    """Sampled and labeled items per query language (summed over benchmarks by the chart)."""
    figure = px.histogram(strata, x="query_language", y=["n_sampled", "n_labeled"], histfunc="sum",
                          barmode="group", color_discrete_sequence=["#c7d7ea", "#1f5fa8"])
    figure.for_each_trace(lambda trace: trace.update(name={"n_sampled": "sampled", "n_labeled": "labeled"}[trace.name]))
    figure.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend_title=None,
                         yaxis_title="Items", xaxis_title="Query language")
    return figure


#: The dashboard's figures: name -> how it is drawn from the estimates.
FIGURES: dict[str, Callable[[estimates.StudyEstimates], go.Figure]] = {
    "ifl": lambda study: ifl_forest(study.ifl),
    "ifl-ablation": lambda study: ifl_forest(study.ifl, ablation=True),
    "interaction": lambda study: interaction_forest(study.interaction),
    "accuracy": lambda study: accuracy_forest(study.accuracy),
    "accuracy-interaction": lambda study: interaction_forest(study.accuracy),
    "power": lambda study: power_curve(study.power),
    "languages": lambda study: labels_per_language(study.strata),
}
