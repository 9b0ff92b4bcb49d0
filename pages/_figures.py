"""The dashboard's figures (plotly), drawn from the estimate tables: forest plots of the
intervals, the precision curve, labels per language, and the standalone HTML the export offers.

Presentation only: the numbers come from ``annotator.analysis``; :mod:`pages._study` draws each
figure once per version of the study's data.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io

from annotator.analysis import estimates
from annotator.analysis.wording import ESTIMATOR_WORDS, language_in_words, term_in_words

ESTIMATORS = ESTIMATOR_WORDS
COLORS = {"DSL (debiased)": "#1f5fa8", "Surrogate only": "#e07b24", "Labeled only": "#7f8c8d"}
#: Legend entry of the DSL accuracy bounds: the estimate if every "can't tell" were wrong / right.
BOUNDS = "Bounds: every can't tell wrong … right"
_ROW_HEIGHT = 34
_PANEL_GAP = 110  # pixels between stacked panels: the upper one's ticks and the lower one's title


def inert(text: object) -> str:
    """Untrusted text (model, benchmark, language names) made literal for plotly.

    Plotly renders a subset of HTML in every label, legend, tick and hover text (``<b>``,
    ``<a href>``, ``<br>``...), so ``&``, ``<`` and ``>`` are escaped; plotly turns the
    entities back into the characters, shown as typed. Quotes are left alone: plotly does not
    know ``&quot;`` and would show it as such.
    """
    return html.escape(str(text), quote=False)


def estimable(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with a number to draw: a row that is not estimable (``status``, or no estimate)
    is listed by the page with what it needs, never drawn as a point or a zero-width bar."""
    drawable = frame["estimate"].notna() & frame["ci_low"].notna() & frame["ci_high"].notna()
    if "status" in frame:
        drawable &= frame["status"].eq("ok")
    return frame[drawable]


def _bound_rows(data: pd.DataFrame) -> pd.DataFrame:
    """Accuracy bounds (``bound_low``, ``bound_high``) of the DSL estimates as extra rows drawn as
    a bare range; where no answer was "can't tell" the bounds are the estimate and nothing is drawn.
    (The labeled-only bounds are in the table.)"""
    if "bound_low" not in data or "bound_high" not in data:
        return data.iloc[:0]
    bounded = data[(data["estimator"] == "dsl") & (data["bound_high"] - data["bound_low"] > 1e-9)]
    return bounded.assign(
        Estimator=BOUNDS,
        estimate=(bounded["bound_low"] + bounded["bound_high"]) / 2,
        ci_low=bounded["bound_low"],
        ci_high=bounded["bound_high"],
        se=float("nan"),
    )


def forest(frame: pd.DataFrame, y: str, x_title: str, facet: str | None = None) -> go.Figure:
    """Point estimates with 95% intervals, the estimators side by side per row (the paper's Figure 1).

    Rows are drawn bottom-up in the frame's order, so pass it sorted in reverse reading order.
    Every name on show is made :func:`inert`; not-estimable rows are left out (:func:`estimable`).
    Several facets are stacked one above the other, each with its own rows, so long row labels
    never run into a neighbouring panel. Built as a plain figure dict and validated once: plotly
    express and ``update_*`` took ~0.3 s a figure, redrawn after every new label.
    """
    data = estimable(frame)
    data = data.assign(Estimator=data["estimator"].map(ESTIMATORS).fillna(data["estimator"]).map(inert))
    data = pd.concat([data, _bound_rows(data)], ignore_index=True)
    data = data.assign(plus=data["ci_high"] - data["estimate"], minus=data["estimate"] - data["ci_low"])
    data[y] = data[y].map(inert)
    facet = facet if facet and data[facet].nunique() > 1 else None
    if facet:
        data[facet] = data[facet].map(inert)
    panels = list(data[facet].unique()) if facet else [None]
    estimators = [inert(name) for name in ESTIMATORS.values()]
    estimators += [name for name in data["Estimator"].unique() if name not in estimators]
    height = _forest_height(data, y, facet)
    gap = _PANEL_GAP / height if facet else 0.0
    share = (1 - gap * (len(panels) - 1)) / len(panels)
    traces: list[dict] = []
    layout: dict = {
        "height": height,
        "scattermode": "group",
        "scattergap": 0.45,
        "margin": {"l": 10, "r": 10, "t": 70, "b": 60},
        "legend": {"orientation": "h", "yref": "container", "y": 1, "yanchor": "top", "x": 0, "title": {"text": ""}},
        "annotations": [],
        "shapes": [],
    }
    for index, panel in enumerate(panels):  # top to bottom
        suffix = str(index + 1) if index else ""
        top = 1 - index * (share + gap)
        rows = data[data[facet] == panel] if facet else data
        layout[f"yaxis{suffix}"] = {
            "domain": [max(top - share, 0.0), top],
            "anchor": f"x{suffix}",
            "type": "category",
            "categoryorder": "array",
            "categoryarray": list(rows[y].unique()),
            "automargin": True,
        }
        last = index == len(panels) - 1
        layout[f"xaxis{suffix}"] = {
            "anchor": f"y{suffix}",
            "domain": [0.0, 1.0],
            "zeroline": False,
            "automargin": True,
            "title": {"text": x_title if last else ""},
            **({"matches": "x"} if suffix else {}),
        }
        layout["shapes"].append(
            {
                "type": "line",
                "x0": 0,
                "x1": 0,
                "xref": f"x{suffix}",
                "y0": 0,
                "y1": 1,
                "yref": f"y{suffix} domain",
                "line": {"dash": "dot", "color": "#999"},
            }
        )
        if facet:  # the panel's title above it, left-aligned
            layout["annotations"].append(
                {
                    "text": panel,
                    "x": 0,
                    "xref": "paper",
                    "xanchor": "left",
                    "y": top,
                    "yref": "paper",
                    "yanchor": "bottom",
                    "showarrow": False,
                    "font": {"size": 14},
                }
            )
        for name in estimators:
            shown = rows[rows["Estimator"] == name]
            if shown.empty:
                continue
            traces.append(_forest_trace(shown, y, name, suffix, first=not any(t["name"] == name for t in traces)))
    return go.Figure(data=traces, layout=layout)


def _forest_trace(rows: pd.DataFrame, y: str, name: str, suffix: str, first: bool) -> dict:
    """One estimator's points and intervals in one panel (a bounds range has no point: its
    marker is a dash lying on the range, so the legend shows a dash too)."""
    bounds = name == BOUNDS
    color = {**COLORS, BOUNDS: "#8db4e2"}.get(name, "#444")
    return {
        "type": "scatter",
        "mode": "markers",
        "orientation": "h",
        "name": name,
        "legendgroup": name,
        "showlegend": first,
        "x": rows["estimate"].tolist(),
        "y": rows[y].tolist(),
        "xaxis": f"x{suffix}",
        "yaxis": f"y{suffix}",
        "error_x": {
            "type": "data",
            "symmetric": False,
            "array": rows["plus"].tolist(),
            "arrayminus": rows["minus"].tolist(),
            "color": color,
            **({"thickness": 3, "width": 0} if bounds else {}),
        },
        "marker": (
            {"symbol": "line-ew-open", "size": 14, "line": {"width": 3, "color": color}, "color": color}
            if bounds
            else {"size": 8, "color": color}
        ),
        "customdata": rows[["se", "ci_low", "ci_high"]].to_numpy().tolist(),
        "hovertemplate": (
            "%{y}<br>DSL if every can't tell were wrong … right: %{customdata[1]:+.3f} … %{customdata[2]:+.3f}"
            "<extra></extra>"
            if bounds
            else "%{y}<br>%{fullData.name}: %{x:+.3f}<br>95% CI %{customdata[1]:+.3f} to %{customdata[2]:+.3f}, "
            "SE %{customdata[0]:.3f}<extra></extra>"
        ),
    }


def _forest_height(data: pd.DataFrame, y: str, facet: str | None) -> int:
    """Pixels: a fixed frame plus a band per row of every panel and a gap between panels."""
    rows = data.groupby(facet)[y].nunique().sum() if facet else data[y].nunique()
    panels = data[facet].nunique() if facet else 1
    return 190 + _ROW_HEIGHT * int(rows) + _PANEL_GAP * (panels - 1)


def not_estimable(frame: pd.DataFrame, what: Callable[[pd.DataFrame], pd.Series]) -> pd.DataFrame:
    """The rows a figure leaves out, in words: what (``what(frame)``), estimator, and what it needs."""
    rows = frame.drop(index=estimable(frame).index)
    needs = rows["needs"] if "needs" in rows else pd.Series("more labels", index=rows.index)
    return pd.DataFrame(
        {
            "what": what(rows),
            "estimator": rows["estimator"].map(ESTIMATORS).fillna(rows["estimator"]),
            "needs": needs.fillna("more labels"),
        }
    ).reset_index(drop=True)


def cell_label(frame: pd.DataFrame) -> pd.Series:
    """``model · benchmark`` of each row (as typed: inert only where it reaches plotly)."""
    return frame["model"].astype(str) + " · " + frame["benchmark"].astype(str)


def term_label(frame: pd.DataFrame) -> pd.Series:
    """``language: term`` of each interaction-regression row, in words."""
    return frame["language"].map(language_in_words) + ": " + frame["term"].map(term_in_words)


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows labeled ``model · benchmark``, ordered by benchmark, then model (top to bottom)."""
    return frame.assign(cell=cell_label(frame)).sort_values(["benchmark", "model"], ascending=False)


def ifl_forest(ifl: pd.DataFrame, ablation: bool = False) -> go.Figure:
    """IFL per model x benchmark (the paper's Figure 1): the studied models, or the ablation variants."""
    cells = ifl[ifl["ablation"] == ablation]
    return forest(_cells(cells), "cell", "Image-induced change in fidelity (95% CI; negative = loss)", facet="estimand")


def accuracy_forest(accuracy: pd.DataFrame) -> go.Figure:
    """The image-induced change in accuracy per model x benchmark of the studied models, with the
    bounds for "can't tell" (all wrong … all right) where the estimates carry them."""
    cells = accuracy[(accuracy["estimand"] == "image_effect") & ~accuracy["ablation"]]
    return forest(_cells(cells), "cell", "Image-induced change in accuracy (95% CI)", facet="estimand")


def interaction_forest(frame: pd.DataFrame) -> go.Figure:
    """Interaction-regression coefficients in words, one panel per target language (the paper's
    Table 4), stacked so that each panel's term labels have the full width."""
    rows = frame[frame["estimand"] == "interaction"]
    rows = rows.assign(language=rows["language"].map(language_in_words), term=rows["term"].map(term_in_words))
    return forest(
        rows.sort_values(["language", "term"], ascending=[True, False]),
        "term",
        "Coefficient (95% CI)",
        facet="language",
    )


def power_curve(power: pd.DataFrame) -> go.Figure:
    """95% half-width of each IFL estimate with the labels so far (filled) and, projected, with
    twice as many (open), joined per model x benchmark cell; cells without a half-width yet
    (not estimable) are left out."""
    ifl = power[(power["estimand"] == "image_effect") & (power["outcome"] == "fidelity") & (power["term"] == "image")]
    ifl = ifl[ifl["halfwidth"].notna()]
    figure = go.Figure()
    palette = px.colors.qualitative.D3  # explicit, so the exported HTML has the dashboard's colours
    for index, (benchmark, cells) in enumerate(ifl.groupby("benchmark", sort=True)):
        x, y, symbol, model = [], [], [], []
        for cell in cells.itertuples():
            x += [cell.n_labeled, cell.labels_more, None]
            y += [cell.halfwidth, cell.halfwidth_more, None]
            symbol += ["circle", "circle-open", "circle"]
            model += [inert(cell.model)] * 3
        figure.add_trace(
            go.Scatter(
                x=x,
                y=y,
                name=inert(benchmark),
                mode="lines+markers",
                text=model,
                marker={"symbol": symbol, "size": 9},
                line={"width": 1, "dash": "dot"},
                marker_color=palette[index % len(palette)],
                line_color=palette[index % len(palette)],
                # The benchmark comes from the trace, never pasted into the template (it may hold %{...}).
                hovertemplate="%{text}<br>%{x} labels: ±%{y:.3f}<extra>%{fullData.name}</extra>",
            )
        )
    figure.update_layout(height=420, margin={"l": 60, "r": 10, "t": 30, "b": 60}, legend_title=None)
    figure.update_xaxes(title="Gold labels in the cell (log scale)", type="log")
    figure.update_yaxes(title="95% CI half-width of the IFL", rangemode="tozero")
    return figure


def labels_per_language(strata: pd.DataFrame) -> go.Figure:
    """Sampled and labeled items per query language, by name (summed over benchmarks)."""
    per_language = (
        strata.assign(language=strata["query_language"].map(language_in_words).map(inert))
        .groupby("language", sort=True)[["n_sampled", "n_labeled"]]
        .sum()
    )
    figure = go.Figure(
        data=[
            go.Bar(
                x=per_language.index.tolist(),
                y=per_language[column].tolist(),
                name=name,
                marker_color=color,
                hovertemplate="%{x}: %{y} " + name + "<extra></extra>",
            )
            for column, name, color in (("n_sampled", "sampled", "#c7d7ea"), ("n_labeled", "labeled", "#1f5fa8"))
        ],
        layout={
            "barmode": "group",
            "height": 340,
            "margin": {"l": 60, "r": 10, "t": 30, "b": 60},
            "xaxis": {"title": {"text": "Query language"}, "type": "category", "automargin": True},
            "yaxis": {"title": {"text": "Items"}, "automargin": True},
        },
    )
    return figure


def figure_html(figure: dict | go.Figure) -> str:
    """A figure as a standalone HTML page that works offline: plotly.js is embedded (~4.7 MB),
    not fetched from a CDN, so opening it sends no request anywhere."""
    return plotly.io.to_html(figure, include_plotlyjs=True, full_html=True)


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
