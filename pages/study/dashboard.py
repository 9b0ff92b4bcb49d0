"""Dashboard (researchers): the study's estimates with 95% intervals, live while annotators work.

The figures sit in a fragment that reruns on its own every few seconds; the estimates are
cached on the study's version, so a rerun without new labels costs one cheap query. Everything
on show is in words (terms, languages, estimators); a missing number reads "—", and an
estimate that is not estimable yet is listed with what it needs, never drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from annotator.analysis.wording import (
    readable_agreement,
    readable_estimates,
    readable_strata,
    with_term_words,
)
from db.vocabulary import RESEARCH_ROLES
from pages._common import download_csv, escape_markdown, require_role
from pages._figures import ESTIMATORS, cell_label, estimable, not_estimable, term_label
from pages._study import recompute_seconds, study_view

require_role(RESEARCH_ROLES)
REFRESH_SECONDS = 10
MISSING = "—"
#: Column -> its header on the dashboard (the CSV keeps the column names).
HEADERS = {
    "what": "estimate of",
    "estimand": "estimand",
    "outcome": "outcome",
    "term": "term",
    "estimator": "estimator",
    "estimate": "estimate",
    "se": "SE",
    "ci_low": "95% CI from",
    "ci_high": "to",
    "n": "completions",
    "n_labeled": "labels",
    "bound_low": "if every can't tell is wrong",
    "bound_high": "… is right",
    "status": "status",
    "needs": "needs",
    "query_language": "query language",
    "N_h": "completions (N_h)",
    "n_sampled": "sampled",
    "design_prob": "design probability",
    "effective_prob": "effective probability",
    "empty": "no labels yet",
    "halfwidth": "95% half-width",
    "labels_more": "labels (x2)",
    "se_more": "SE (x2)",
    "halfwidth_more": "95% half-width (x2)",
    "labels_needed": "labels needed",
    "question": "question",
    "n_items": "items with two labels",
    "percent_agreement": "agreement (%)",
    "cohen_kappa": "Cohen's kappa",
    "krippendorff_alpha": "Krippendorff's alpha",
}
_INTEGERS = {"n", "n_labeled", "N_h", "n_sampled", "labels_more", "labels_needed", "n_items"}


def readable_table(frame: pd.DataFrame, key: str) -> None:
    """A table in words: headers from :data:`HEADERS`, four decimals, "—" for every missing value."""
    config: dict[str, Any] = {column: HEADERS[column] for column in frame.columns if column in HEADERS}
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            config[column] = st.column_config.NumberColumn(
                HEADERS.get(column, column), format="%d" if column in _INTEGERS else "%.4f"
            )
    with st.container(key=key):
        st.dataframe(frame, hide_index=True, column_config=config, placeholder=MISSING)


def table(frame: pd.DataFrame, name: str, readable: pd.DataFrame | None = None) -> None:
    """The numbers behind a figure (in words), and their CSV (machine names and the terms in words,
    as the export has them)."""
    with st.expander("The numbers"):
        readable_table(readable_estimates(frame) if readable is None else readable, key=f"table_{name}")
        download_csv("Download (CSV)", with_term_words(frame), f"{name}.csv", key=f"download_{name}")


def waiting_for_labels(frame: pd.DataFrame, what: Callable[[pd.DataFrame], pd.Series], key: str) -> None:
    """Estimates that are not estimable yet: what they are and what they need, instead of a number."""
    missing = not_estimable(frame, what)
    if missing.empty:
        return
    st.warning(
        f"{len(missing)} estimate(s) not estimable yet, so not drawn; what each needs:",
        icon=":material/hourglass_empty:",
    )
    readable_table(missing, key=f"{key}_not_estimable")


def cell_numbers(frame: pd.DataFrame) -> None:
    """One model x benchmark cell's estimates as numbers, to read exactly."""
    frame = frame.sort_values(["benchmark", "model"])  # the figure's order, top to bottom
    cells = cell_label(frame)
    chosen = st.selectbox("Model · benchmark", cells.unique(), key="dashboard_cell")
    rows = frame[cells == chosen]
    drawable = estimable(rows).index
    for column, row in zip(st.columns(len(rows)), rows.itertuples(), strict=True):
        label = ESTIMATORS.get(row.estimator, row.estimator)
        if row.Index not in drawable:
            needs = getattr(row, "needs", None)
            column.metric(
                label,
                MISSING,
                border=True,
                # needs names strata (benchmark names): untrusted, and help renders Markdown
                help=escape_markdown(needs)
                if isinstance(needs, str)
                else "Not estimable yet: too few labels in this cell.",
            )
            continue
        bounds = ""
        if pd.notna(getattr(row, "bound_low", None)) and pd.notna(getattr(row, "bound_high", None)):
            bounds = f"; between {row.bound_low:+.3f} and {row.bound_high:+.3f} if every can't tell is wrong / right"
        column.metric(
            label,
            f"{row.estimate:+.3f}",
            border=True,
            help=f"95% CI [{row.ci_low:+.3f}, {row.ci_high:+.3f}], SE {row.se:.3f}; "
            f"{row.n_labeled:,} of {row.n:,} completions labeled{bounds}",
        )


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
        st.caption(
            f"{newer} newer label(s) will be included at the next update "
            f"(the estimates are recomputed at most every {recompute_seconds():.0f} s)."
        )
    unlabeled = study.strata[study.strata["empty"]]
    st.caption(f"Refreshed at {datetime.now():%H:%M:%S}" + (f", again every {REFRESH_SECONDS} s." if live else "."))
    labels, adjudicated, strata, waiting = st.columns(4)
    labels.metric("Labels so far", study.labels.annotations)
    adjudicated.metric("Adjudications", study.labels.adjudications)
    strata.metric("Strata", len(study.strata))
    waiting.metric(
        "Sampled strata without labels",
        len(unlabeled),
        help="Their completions are left out of the estimates until one of their items is labeled.",
    )
    ifl, interaction, accuracy, precision, languages, agreed = st.tabs(
        ["IFL", "Per target language", "Accuracy", "Precision vs labels", "Languages and strata", "Agreement"],
        key="dashboard_tab",  # keyed, so the live refresh keeps the tab the researcher is reading
    )
    with ifl:
        st.caption(
            "Image-induced fidelity loss per model and benchmark: DSL combines the surrogate with the gold "
            "labels; surrogate only and labeled only are shown for comparison."
        )
        cell_numbers(study.ifl)
        st.plotly_chart(figures["ifl"], key="chart_ifl")
        waiting_for_labels(study.ifl[~study.ifl["ablation"]], cell_label, key="ifl")
        if study.ifl["ablation"].any():
            with st.expander("The ablation variants (models that name their LLM, vision encoder and data)"):
                st.plotly_chart(figures["ifl-ablation"], key="chart_ifl_ablation")
                waiting_for_labels(study.ifl[study.ifl["ablation"]], cell_label, key="ifl_ablation")
        table(study.ifl, "ifl")
    with interaction:
        st.caption(
            "Interaction regression of fidelity on the ablation models, per target language: how the "
            "image effect changes when the LLM, the vision encoder or the training data is swapped "
            "(each against the original LLaVA: Vicuna, CLIP, English data)."
        )
        st.plotly_chart(figures["interaction"], key="chart_interaction")
        waiting_for_labels(
            study.interaction[study.interaction["estimand"] == "interaction"], term_label, key="interaction"
        )
        table(study.interaction, "interaction")
    with accuracy:
        st.caption("The image-induced change in accuracy per model and benchmark, then its interaction regression.")
        if "bound_low" in study.accuracy:
            st.caption(
                'Accuracy counts a "can\'t tell" answer as missing at random. The light bars without a '
                'point (Bounds) show the DSL estimate at the two extremes, every "can\'t tell" wrong and '
                "every one right: the wider they are, the more the estimate rests on that assumption. "
                "The table has the bounds of the labeled-only estimates too."
            )
        st.plotly_chart(figures["accuracy"], key="chart_accuracy")
        image_effect = study.accuracy[(study.accuracy["estimand"] == "image_effect") & ~study.accuracy["ablation"]]
        waiting_for_labels(image_effect, cell_label, key="accuracy")
        st.plotly_chart(figures["accuracy-interaction"], key="chart_accuracy_interaction")
        waiting_for_labels(
            study.accuracy[study.accuracy["estimand"] == "interaction"], term_label, key="accuracy_interaction"
        )
        table(study.accuracy, "accuracy")
    with precision:
        st.caption(
            "How the 95% interval of each IFL estimate narrows: its half-width with the labels so far "
            "(filled) and projected with twice as many, same allocation (open)."
        )
        st.plotly_chart(figures["power"], key="chart_power")
        table(study.power, "power")
    with languages:
        st.plotly_chart(figures["languages"], key="chart_languages")
        if unlabeled.empty:
            st.success("Every sampled stratum has labels.")
        else:
            st.warning("Strata still without labels:")
            readable_table(readable_strata(unlabeled), key="table_unlabeled")
        table(study.strata, "strata", readable=readable_strata(study.strata))
        if study.notes:
            with st.expander("Notes from the estimation"):
                st.text("\n".join(study.notes))
    with agreed:
        pairs = view.agreement()
        if pairs.empty:
            st.info("No item has two labels yet.")
        else:
            st.caption(
                f"{MISSING} where a statistic is undefined: kappa and alpha are not defined when every "
                "label of a question falls in one class (chance agreement is then 1)."
            )
            readable_table(readable_agreement(pairs), key="table_agreement")
            download_csv("Download (CSV)", pairs, "agreement.csv", key="download_agreement")


results()
