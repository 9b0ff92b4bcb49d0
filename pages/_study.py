"""The study's estimates for the dashboard and the export page: cached loaders and figures.

The numbers come from ``annotator.estimates`` and ``annotator.agreement``; they and the figures
drawn from them are cached on the label count (and the sample), so a page refreshing every few
seconds recomputes and redraws nothing until a label changes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from annotator import estimates
from annotator.agreement import agreement_table
from annotator.languages import language_name
from annotator.storage import database_url
from pages._common import engine, engine_for


@st.cache_data(show_spinner="Computing the estimates…", max_entries=4)
def _study_estimates(url: str, version: estimates.StudyVersion) -> estimates.StudyEstimates:
    return estimates.study_estimates(engine_for(url))


@st.cache_data(show_spinner=False, max_entries=4)
def _agreement(url: str, version: estimates.StudyVersion) -> pd.DataFrame:
    return agreement_table(engine_for(url))


@st.cache_data(show_spinner=False, max_entries=4)
def _figures(url: str, version: estimates.StudyVersion) -> dict[str, dict]:
    study = _study_estimates(url, version)
    return {name: draw(study).to_dict() for name, draw in FIGURES.items()}


def recompute_seconds() -> float:
    """At most one recompute of the estimates per this many seconds and database (a recompute
    takes ~20 s at the paper's 730k completions); meanwhile the last estimates are shown.
    ``IFL_DASHBOARD_RECOMPUTE_SECONDS``, default 60."""
    return float(os.environ.get("IFL_DASHBOARD_RECOMPUTE_SECONDS", "60"))


@st.cache_resource(show_spinner=False)
def _shown_versions() -> dict[str, tuple[estimates.StudyVersion, float]]:
    """Per database: the version whose estimates are shown, and when it was first shown."""
    return {}


@dataclass(frozen=True)
class StudyView:
    """What one page run shows: the study version whose estimates are on show, and the current
    one. Built once per run by :func:`study_view` (reading the version scans the predictions:
    ~0.16 s at 730k completions), then asked for everything the page draws."""

    url: str
    shown: estimates.StudyVersion
    current: estimates.StudyVersion

    @property
    def labels_waiting(self) -> int:
        """Labels stored since the estimates on show were computed (0 when they are current)."""
        return self.current.labels.annotations - self.shown.labels.annotations

    def not_estimable(self) -> str | None:
        """Why there can be no estimates yet (no sample, no labels), or None when there can."""
        if self.shown.samples == 0:
            return "No sample has been drawn yet: the estimates appear once its first items are labeled."
        if self.shown.labels.annotations == 0:
            return "No item of the sample is labeled yet: the estimates appear with the first labels."
        return None

    def estimates(self) -> estimates.StudyEstimates:
        """The study's estimates, recomputed only when the shown version changes."""
        return _study_estimates(self.url, self.shown)

    def figures(self) -> dict[str, dict]:
        """Name -> plotly figure (as a dict) of :data:`FIGURES`, redrawn only when the estimates change."""
        return _figures(self.url, self.shown)

    def agreement(self) -> pd.DataFrame:
        """Agreement on the double-annotated items, recomputed only when the shown version changes."""
        return _agreement(self.url, self.shown)


def study_view() -> StudyView:
    """The versions for this run. Labels, samples and predictions alike change the estimates;
    a newer version replaces the shown one only once :func:`recompute_seconds` have passed, so
    annotators labeling all day do not keep the server recomputing."""
    url, current = database_url(), estimates.study_version(engine())
    shown = _shown_versions()
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
