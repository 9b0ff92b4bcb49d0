"""Sample design: draw or top up the stratified gold-standard sample, with editable weights
and a choice of allocation (the paper's weights, or surrogate-informed)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from annotator.annotation.reads import current_sample_id
from annotator.annotation.reporting import queue_status
from annotator.design.draws import draw_sample, top_up
from annotator.design.report import design_report, sample_rounds
from annotator.design.sampling import (
    ALLOCATIONS,
    NoSampleError,
    SamplingError,
    plan_allocation,
    predicted_widths,
)
from annotator.design.weights import PAPER_WEIGHTS, WeightsError
from annotator.languages import language_name
from db.vocabulary import RESEARCH_ROLES
from pages._common import (
    download_csv,
    engine,
    escape_markdown,
    require_role,
    show_error,
    show_table,
)

require_role(RESEARCH_ROLES)
db = engine()
SAMPLING_ERRORS = (SamplingError, WeightsError, NoSampleError)
ALLOCATION_NAMES = {"paper": "Paper weights", "surrogate": "Surrogate-informed"}
MESSAGE = "design_message"
#: Set by a finished action: its inputs start afresh on the next run (a replaced sample also
#: resets the top-up, whose default follows the sample's size). Values are set before the
#: widgets exist, the one moment Streamlit lets a page overrule what the browser holds.
fresh = st.session_state.pop("design_reset", False)


def succeeded(where: str, message: object) -> None:
    """Keep the message for the spot where the action was started, reset the inputs, rerun."""
    st.session_state[MESSAGE] = (where, str(message))
    st.session_state["design_reset"] = True
    st.rerun()


def show_message(where: str) -> None:
    """The message of the action started here (once): under its button, and as a toast, which
    stays in view when the rerun shortens the page above the button (a preview closes)."""
    if st.session_state.get(MESSAGE, ("",))[0] == where:
        message = escape_markdown(st.session_state.pop(MESSAGE)[1])
        st.success(message)
        st.toast(message, icon=":material/check_circle:", duration="long")


def weights_editor(name: str, label: str, multipliers: Mapping[str, float]) -> pd.DataFrame:
    """An editable table of ``name`` -> multiplier (rows can be added), starting from ``multipliers``."""
    rows = {
        name: pd.Series(list(multipliers), dtype=str),
        "multiplier": pd.Series(list(multipliers.values()), dtype=float),
    }
    return st.data_editor(
        pd.DataFrame(rows),
        num_rows="dynamic",
        hide_index=True,
        key=f"weights_{name}s",
        column_config={
            name: st.column_config.TextColumn(label, required=True),
            "multiplier": st.column_config.NumberColumn("Multiplier", min_value=0.0, required=True),
        },
    )


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
sample_id = current_sample_id(db)

st.subheader("Current sample")
if sample_id is None:
    st.info("No sample has been drawn yet: draw one below so annotators get work.")
else:
    report = design_report(db, sample_id)
    total = int(report["drawn"].sum())
    st.caption(
        f"Sample {sample_id}: {total:,} items in {len(report)} strata, {int(report['labeled'].sum()):,} "
        "labeled. Each stratum is a benchmark × language (its model × image arms balanced by a systematic "
        "draw and a nested queue, so the labels so far spread over them too), or one arm of it (merged with "
        "its neighbours where its share is under two items); the level column says which. Probability is "
        "n_h / N_h."
    )
    show_table(
        report,
        key="design_report",
        column_config={
            "probability": st.column_config.NumberColumn(format="%.5f"),
            "expected": st.column_config.NumberColumn(format="%.1f"),
            "weight_sum": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    download_csv("Download the design report (CSV)", report, f"design-sample-{sample_id}.csv", "design_download")
    with st.expander("Labeling progress per stratum"):
        show_table(queue_status(db), key="queue_status")
    with st.expander("Rounds (the seed and size of each draw: replaying them rebuilds this sample)"):
        show_table(sample_rounds(db, sample_id), key="sample_rounds")

    st.subheader("Top up")
    st.caption(
        f"Grows the current sample (now {total:,} items) to a new total; the strata stay, the design stays "
        "exact, and new items queue after the existing ones in every stratum."
    )
    if fresh or "topup_n" not in st.session_state:
        st.session_state["topup_n"], st.session_state["topup_seed"] = total + 100, len(sample_rounds(db, sample_id)) + 1
    with st.form("top_up"):
        st.number_input("New total of items", min_value=1, step=50, key="topup_n")
        st.number_input("Seed", min_value=0, step=1, key="topup_seed")
        grow = st.form_submit_button("Top up", key="topup_run", type="primary")
    if grow:
        try:
            summary = top_up(db, sample_id, n_total=st.session_state["topup_n"], seed=st.session_state["topup_seed"])
        except SAMPLING_ERRORS as error:
            show_error(error)
        else:
            succeeded("top_up", summary)
    show_message("top_up")

st.subheader("Draw a new sample")
st.caption(
    "The weights act on benchmark × query language: each completion weighs 1 / its benchmark's share (if "
    "balanced) × its benchmark's multiplier × its language's multiplier, and the sample is allocated in "
    "proportion, at least two items each (all of a smaller one), then spread over the model × image arms "
    "inside (implicit stratification; the surrogate-informed allocation makes each arm a stratum). "
    "Surrogate-informed: the main models' items go where the language ID is least sure, so that the "
    "12 main IFL intervals come out as narrow as possible (the ablation keeps the weights' share). "
    "Defaults: the paper's weights (Appendix B)."
)
# One form: the allocation, size, seed, share and weights go to the server together when a
# button is pressed, so a number still being typed can never be lost to a run another widget
# started (a draw once used the default seed where 3 had been typed).
with st.form("draw_sample", border=False):
    st.radio("Allocation", ALLOCATIONS, format_func=ALLOCATION_NAMES.get, horizontal=True, key="sample_allocation")
    balance, size, seed, overlap = st.columns(4)
    balance.toggle("Balance benchmarks", value=PAPER_WEIGHTS.balance_benchmarks, key="weights_balance")
    size.number_input("Sample size", min_value=1, value=1000, step=100, key="sample_n")
    seed.number_input("Seed", min_value=0, value=0, step=1, key="sample_seed")
    overlap.number_input(
        "Share annotated twice", min_value=0.0, max_value=1.0, value=0.1, step=0.05, key="sample_overlap"
    )
    languages, benchmarks = st.columns(2)
    with languages:
        language_weights = weights_editor("language", "Language (code or name)", PAPER_WEIGHTS.languages)
        st.caption(
            "Languages not listed weigh 1. "
            + ", ".join(f"{code} = {language_name(code)}" for code in PAPER_WEIGHTS.languages)
        )
    with benchmarks:
        benchmark_weights = weights_editor("benchmark", "Benchmark", {})
        st.caption("Benchmarks not listed weigh 1.")

    preview = st.form_submit_button("Preview the allocation and the predicted interval widths", key="sample_preview")
    if sample_id is not None:
        if fresh:
            st.session_state["sample_confirm"] = False
        st.checkbox(
            "Replace the current sample: routing moves to the new one; labels given so far stay with the old one.",
            key="sample_confirm",
        )
    draw = st.form_submit_button("Draw the sample", key="sample_draw", type="primary")
if preview:
    weights = weights_mapping(language_weights, benchmark_weights)
    try:
        with st.spinner("Planning both allocations over every completion..."):
            plan = plan_allocation(db, st.session_state["sample_n"], weights, st.session_state["sample_allocation"])
            widths = predicted_widths(db, st.session_state["sample_n"], weights)
    except SAMPLING_ERRORS as error:
        show_error(error)
    else:
        strata, width = st.columns([3, 2])
        with strata:
            st.caption(f"{ALLOCATION_NAMES[st.session_state['sample_allocation']]}: {len(plan)} strata")
            show_table(
                plan, key="sample_plan", column_config={"probability": st.column_config.NumberColumn(format="%.5f")}
            )
        with width:
            st.caption(
                f"Predicted width of the 95% interval of each main IFL at n = {st.session_state['sample_n']:,}, "
                f"before any label (from the language ID's confidence). Mean: paper "
                f"{widths['paper'].mean():.3f}, surrogate-informed {widths['surrogate'].mean():.3f}."
            )
            show_table(
                widths,
                key="sample_widths",
                column_config={
                    name: st.column_config.NumberColumn(format="%.3f") for name in ("paper", "surrogate", "ratio")
                },
            )
if draw and sample_id is not None and not st.session_state.get("sample_confirm"):
    st.error(
        f"Sample {sample_id} is the current one: tick “Replace the current sample” to draw a new one. "
        "Nothing was drawn."
    )
elif draw:
    try:
        summary = draw_sample(
            db,
            n=st.session_state["sample_n"],
            seed=st.session_state["sample_seed"],
            weights=weights_mapping(language_weights, benchmark_weights),
            overlap_share=st.session_state["sample_overlap"],
            allocation=st.session_state["sample_allocation"],
        )
    except SAMPLING_ERRORS as error:
        show_error(error)
    else:
        succeeded("draw", summary)
show_message("draw")
