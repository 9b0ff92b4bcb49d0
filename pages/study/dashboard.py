"""Dashboard (researchers): the study's estimates with 95% intervals, live while annotators work.

The figures sit in a fragment that reruns on its own every few seconds; the estimates are
cached on the label count, so a rerun without new labels costs one cheap query.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from pages._common import RESEARCH_ROLES, download_csv, require_role, show_table
from pages._study import ESTIMATORS, recompute_seconds, study_view

require_role(RESEARCH_ROLES)
REFRESH_SECONDS = 10
NUMBERS = {column: st.column_config.NumberColumn(format="%.4f")
           for column in ("estimate", "se", "ci_low", "ci_high", "halfwidth", "se_more", "halfwidth_more",
                          "design_prob", "effective_prob")}


def table(frame: pd.DataFrame, name: str) -> None:
    """The numbers behind a figure, and their CSV."""
    with st.expander("The numbers"):
        show_table(frame, key=f"table_{name}", column_config=NUMBERS)
        download_csv("Download (CSV)", frame, f"{name}.csv", key=f"download_{name}")


def cell_numbers(frame: pd.DataFrame) -> None:
    """One model x benchmark cell's estimates as numbers, to read exactly."""
    frame = frame.sort_values(["benchmark", "model"])  # the figure's order, top to bottom
    cells = frame["model"] + " · " + frame["benchmark"]
    chosen = st.selectbox("Model · benchmark", cells.unique(), key="dashboard_cell")
    rows = frame[cells == chosen]
    for column, row in zip(st.columns(len(rows)), rows.itertuples(), strict=True):
        label = ESTIMATORS.get(row.estimator, row.estimator)
        if pd.isna(row.estimate):
            column.metric(label, "n/a", border=True, help="Not estimable yet (too few labels in this cell).")
        else:
            column.metric(label, f"{row.estimate:+.3f}", border=True,
                          help=f"95% CI [{row.ci_low:+.3f}, {row.ci_high:+.3f}], SE {row.se:.3f}; "
                               f"{row.n_labeled:,} of {row.n:,} completions labeled")


st.title("Dashboard")
live = st.toggle(f"Live: refresh every {REFRESH_SECONDS} s", value=True, key="dashboard_live")


@st.fragment(run_every=REFRESH_SECONDS if live else None)
def results() -> None:
    view = study_view()
    reason = view.not_estimable()
    if reason is not None:
        st.info(reason)
        return
    study = view.estimates()
    figures = view.figures()
    newer = view.labels_waiting
    if newer > 0:
        st.caption(f"{newer} newer label(s) will be included at the next update "
                   f"(the estimates are recomputed at most every {recompute_seconds():.0f} s).")
    unlabeled = study.strata[study.strata["empty"]]
    st.caption(f"Refreshed at {datetime.now():%H:%M:%S}" + (f", again every {REFRESH_SECONDS} s." if live else "."))
    labels, adjudicated, strata, waiting = st.columns(4)
    labels.metric("Labels so far", study.labels.annotations)
    adjudicated.metric("Adjudications", study.labels.adjudications)
    strata.metric("Strata", len(study.strata))
    waiting.metric("Sampled strata without labels", len(unlabeled),
                   help="Their completions are left out of the estimates until one of their items is labeled.")
    ifl, interaction, accuracy, precision, languages, agreed = st.tabs(
        ["IFL", "Per target language", "Accuracy", "Precision vs labels", "Languages and strata", "Agreement"]
    )
    with ifl:
        st.caption("Image-induced fidelity loss per model and benchmark: DSL combines the surrogate with the gold "
                   "labels; surrogate only and labeled only are shown for comparison.")
        cell_numbers(study.ifl)
        st.plotly_chart(figures["ifl"], key="chart_ifl")
        if study.ifl["ablation"].any():
            with st.expander("The ablation variants (models that name their LLM, vision encoder and data)"):
                st.plotly_chart(figures["ifl-ablation"], key="chart_ifl_ablation")
        table(study.ifl, "ifl")
    with interaction:
        st.caption("Interaction regression of fidelity on the ablation models, per target language: how the "
                   "image effect changes when the LLM, the vision encoder or the training data is swapped.")
        st.plotly_chart(figures["interaction"], key="chart_interaction")
        table(study.interaction, "interaction")
    with accuracy:
        st.caption("The image-induced change in accuracy per model and benchmark, then its interaction regression.")
        st.plotly_chart(figures["accuracy"], key="chart_accuracy")
        st.plotly_chart(figures["accuracy-interaction"], key="chart_accuracy_interaction")
        table(study.accuracy, "accuracy")
    with precision:
        st.caption("How the 95% interval of each IFL estimate narrows: its half-width with the labels so far "
                   "(filled) and projected with twice as many, same allocation (open).")
        st.plotly_chart(figures["power"], key="chart_power")
        table(study.power, "power")
    with languages:
        st.plotly_chart(figures["languages"], key="chart_languages")
        if unlabeled.empty:
            st.success("Every sampled stratum has labels.")
        else:
            st.warning("Strata still without labels:")
            show_table(unlabeled, key="table_unlabeled", column_config=NUMBERS)
        table(study.strata, "strata")
        if study.notes:
            with st.expander("Notes from the estimation"):
                st.text("\n".join(study.notes))
    with agreed:
        pairs = view.agreement()
        if pairs.empty:
            st.info("No item has two labels yet.")
        else:
            show_table(pairs, key="table_agreement")
            download_csv("Download (CSV)", pairs, "agreement.csv", key="download_agreement")


results()
