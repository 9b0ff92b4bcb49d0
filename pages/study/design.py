"""Sample design: draw or top up the stratified gold-standard sample, with editable weights."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from annotator.languages import language_name
from annotator.routing import queue_status
from annotator.sampling import (
    PAPER_WEIGHTS,
    NoSampleError,
    SamplingError,
    WeightsError,
    current_sample_id,
    design_report,
    draw_sample,
    plan_allocation,
    sample_rounds,
    top_up,
)
from pages._common import (
    RESEARCH_ROLES,
    download_csv,
    engine,
    flash,
    require_role,
    show_error,
    show_flash,
    show_table,
)

require_role(RESEARCH_ROLES)
db = engine()
SAMPLING_ERRORS = (SamplingError, WeightsError, NoSampleError)


def weights_mapping(languages: pd.DataFrame, benchmarks: pd.DataFrame) -> dict:
    """The edited weights in the TOML shape the sampler validates (its errors name the key)."""
    return {
        "benchmark": {
            "balance": st.session_state["weights_balance"],
            "multipliers": {str(row.benchmark): float(row.multiplier) for row in benchmarks.dropna().itertuples()},
        },
        "language": {str(row.language): float(row.multiplier) for row in languages.dropna().itertuples()},
    }


st.title("Sample design")
show_flash()
sample_id = current_sample_id(db)

st.subheader("Current sample")
if sample_id is None:
    st.info("No sample has been drawn yet: draw one below so annotators get work.")
else:
    report = design_report(db, sample_id)
    st.caption(f"Sample {sample_id}: {int(report['drawn'].sum()):,} items in {len(report)} strata, "
               f"{int(report['labeled'].sum()):,} labeled. Probability is n_h / N_h per stratum.")
    show_table(report, key="design_report",
                 column_config={"probability": st.column_config.NumberColumn(format="%.5f"),
                                "expected": st.column_config.NumberColumn(format="%.1f"),
                                "weight_sum": st.column_config.NumberColumn(format="%.1f")})
    download_csv("Download the design report (CSV)", report, f"design-sample-{sample_id}.csv", "design_download")
    with st.expander("Labeling progress per stratum"):
        show_table(queue_status(db), key="queue_status")
    with st.expander("Rounds (the seed and size of each draw: replaying them rebuilds this sample)"):
        show_table(sample_rounds(db, sample_id), key="sample_rounds")

    st.subheader("Top up")
    st.caption("Grows the current sample to a new total; the design stays exact and new items queue "
               "after the existing ones in every stratum.")
    with st.form("top_up"):
        st.number_input("New total of items", min_value=1, value=int(report["drawn"].sum()) + 100, step=50,
                        key="topup_n")
        st.number_input("Seed", min_value=0, value=1, step=1, key="topup_seed")
        grow = st.form_submit_button("Top up", key="topup_run", type="primary")
    if grow:
        try:
            summary = top_up(db, sample_id, n_total=st.session_state["topup_n"], seed=st.session_state["topup_seed"])
        except SAMPLING_ERRORS as error:
            show_error(error)
        else:
            flash("success", summary)
            st.rerun()

st.subheader("Draw a new sample")
st.caption("Strata are benchmark × query language. Each completion weighs 1 / its benchmark's share (if balanced) "
           "× its benchmark's multiplier × its language's multiplier; the sample is allocated to strata in "
           "proportion, at least one item each. Defaults: the paper's weights (Appendix B).")
balance, size, seed, overlap = st.columns(4)
balance.toggle("Balance benchmarks", value=PAPER_WEIGHTS.balance_benchmarks, key="weights_balance")
size.number_input("Sample size", min_value=1, value=1000, step=100, key="sample_n")
seed.number_input("Seed", min_value=0, value=0, step=1, key="sample_seed")
overlap.number_input("Share annotated twice", min_value=0.0, max_value=1.0, value=0.1, step=0.05, key="sample_overlap")
languages, benchmarks = st.columns(2)
with languages:
    language_weights = st.data_editor(
        pd.DataFrame({"language": list(PAPER_WEIGHTS.languages), "multiplier": list(PAPER_WEIGHTS.languages.values())}),
        num_rows="dynamic", hide_index=True, key="weights_languages",
        column_config={
            "language": st.column_config.TextColumn("Language (code or name)", required=True),
            "multiplier": st.column_config.NumberColumn("Multiplier", min_value=0.0, required=True),
        },
    )
    st.caption("Languages not listed weigh 1. " + ", ".join(f"{code} = {language_name(code)}"
                                                           for code in PAPER_WEIGHTS.languages))
with benchmarks:
    benchmark_weights = st.data_editor(
        pd.DataFrame({"benchmark": pd.Series(dtype=str), "multiplier": pd.Series(dtype=float)}),
        num_rows="dynamic", hide_index=True, key="weights_benchmarks",
        column_config={
            "benchmark": st.column_config.TextColumn("Benchmark", required=True),
            "multiplier": st.column_config.NumberColumn("Multiplier", min_value=0.0, required=True),
        },
    )
    st.caption("Benchmarks not listed weigh 1.")

preview, draw = st.columns(2)
if preview.button("Preview the allocation", key="sample_preview"):
    try:
        plan = plan_allocation(db, st.session_state["sample_n"], weights_mapping(language_weights, benchmark_weights))
    except SAMPLING_ERRORS as error:
        show_error(error)
    else:
        show_table(plan, key="sample_plan")
confirmed = True
if sample_id is not None:
    confirmed = draw.checkbox("Replace the current sample: routing moves to the new one; labels given so far stay "
                              "with the old one.", key="sample_confirm")
if draw.button("Draw the sample", key="sample_draw", type="primary", disabled=not confirmed):
    try:
        summary = draw_sample(db, n=st.session_state["sample_n"], seed=st.session_state["sample_seed"],
                              weights=weights_mapping(language_weights, benchmark_weights),
                              overlap_share=st.session_state["sample_overlap"])
    except SAMPLING_ERRORS as error:
        show_error(error)
    else:
        flash("success", summary)
        st.rerun()
