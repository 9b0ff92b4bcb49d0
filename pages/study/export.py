"""Export (researchers): the gold standard, the DSL-ready table, the estimates and the figures.

Tables use the CLI's CSV rules (``annotator.analysis.export``: UTF-8, NA as empty cells, formula-like
text neutralised). Figures are interactive HTML: a PNG would need kaleido and a browser on the
server. Nothing is built to open the page: every file is written when its button is clicked
(the 775k-row DSL table included), and the estimates are computed only when asked (or taken
from the dashboard's, when they are current).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from annotator.analysis.export import csv_bytes, export_frame
from annotator.analysis.wording import with_term_words
from annotator.annotation.reads import current_sample_id
from db.vocabulary import RESEARCH_ROLES
from pages._common import download_csv, engine, require_role
from pages._figures import FIGURES, figure_html
from pages._study import ESTIMATE_TABLES, study_view

require_role(RESEARCH_ROLES)
db = engine()


def html_of(figures: Callable[[], dict[str, dict]], name: str) -> Callable[[], str]:
    """The figure as a standalone HTML page, drawn and written only when downloaded."""
    return lambda: figure_html(figures()[name])


st.title("Export")
sample_id = current_sample_id(db)

st.subheader("Gold standard and DSL input")
if sample_id is None:
    st.info("Nothing to export yet: draw a sample first (Sample design).")
else:
    st.caption(
        f"Sample {sample_id}. The gold standard has one row per sampled item with the prompt, gold answer "
        "and completion, every annotator's label and the resolved label; the DSL table has one row per "
        "completion, ready for R's dsl() (use label_prob as sample_prob while labeling goes on). "
        'Files are UTF-8; the "for Excel" one starts with the byte-order mark Excel needs to show '
        "Chinese, Hindi or Arabic text."
    )
    with st.container(horizontal=True):
        download_csv("Gold standard (CSV)", lambda: export_frame(db, "gold"), "gold.csv", key="download_gold")
        st.download_button(
            "Gold standard for Excel (CSV)",
            lambda: csv_bytes(export_frame(db, "gold"), excel=True),
            file_name="gold-excel.csv",
            mime="text/csv",
            key="download_gold_excel",
            on_click="ignore",
        )
        download_csv("DSL input (CSV)", lambda: export_frame(db, "dsl"), "dsl.csv", key="download_dsl")

st.subheader("Estimates and figures")
view = study_view()
reason = view.not_estimable()
if reason is not None:
    st.info(reason)
    st.stop()
# Everything below is deferred: the estimates (seconds at the paper's scale when the dashboard
# has not computed them yet), the tables and the figures are made when a button is clicked.
study = view.estimates_when_asked()
st.caption(
    "Every estimate in one tidy table, or each table of the dashboard on its own."
    + ("" if view.is_computed() else " The first download computes the estimates first: it takes a while.")
)
with st.container(horizontal=True):
    download_csv(
        "All estimates (CSV)", lambda: with_term_words(study().all_estimates), "estimates.csv", key="download_estimates"
    )
    for name in ESTIMATE_TABLES:

        def estimate_table(name: str = name) -> pd.DataFrame:
            return with_term_words(study().tables()[name])

        download_csv(f"{name} (CSV)", estimate_table, f"estimates-{name}.csv", key=f"download_estimates_{name}")
st.caption(
    "The figures as interactive HTML that works offline (plotly.js is inside each file, so opening one "
    "sends no request). PNG export would need kaleido and a browser on the server, which the app does not ship."
)
figures = view.figures_when_asked()
with st.container(horizontal=True):
    for name in FIGURES:
        st.download_button(
            f"{name} (HTML)",
            html_of(figures, name),
            file_name=f"figure-{name}.html",
            mime="text/html",
            key=f"download_figure_{name}",
            on_click="ignore",
        )
