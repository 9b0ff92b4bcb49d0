"""Adjudicate (researchers): agreement on double-annotated items, and resolving disagreements.

Researchers see the item and every annotator's label, but never the surrogate's prediction:
a resolution informed by it would correlate gold labels with the surrogate's errors.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from annotator.agreement import AdjudicationError, adjudicate, adjudication_queue, agreement_table
from annotator.languages import ANSWER_CLASSES, language_name
from annotator.routing import RoutingError
from pages._common import (
    ANSWER_TEXT,
    ANSWERS,
    RESEARCH_ROLES,
    class_label,
    engine,
    flash,
    require_role,
    show_error,
    show_flash,
    show_image,
    show_table,
    show_untrusted,
)

user = require_role(RESEARCH_ROLES)
db = engine()

st.title("Adjudicate")
show_flash()

st.subheader("Agreement")
agreement = agreement_table(db)
if agreement.empty:
    st.info("No item has two labels yet; agreement shows once second labels come in.")
else:
    st.caption("On the double-annotated items, per question and query language. NA counts as its own answer.")
    show_table(agreement, key="agreement_table",
                 column_config={"percent_agreement": st.column_config.NumberColumn(format="%.1f"),
                                "cohen_kappa": st.column_config.NumberColumn(format="%.3f"),
                                "krippendorff_alpha": st.column_config.NumberColumn(format="%.3f")})

st.subheader("Disagreements")
queue = adjudication_queue(db)
if queue.empty:
    st.success("No disagreement waits for a resolution.")
    st.stop()
st.caption(f"{len(queue)} items wait, oldest first. Until resolved, the primary annotator's label counts.")
chosen = st.selectbox("Item", queue["completion_id"], key="adjudicate_item")
item = queue.set_index("completion_id").loc[chosen]

content, ruling = st.columns([3, 2], gap="large")
with content:
    with st.container(border=True):
        st.caption(f"Query language: {language_name(item['query_language'])} ({item['query_language']})")
        show_untrusted("Query", item["prompt"])
        show_image(item["image_path"], item["image_url"])
        show_untrusted("Gold answer", item["gold_answer"], empty="(no gold answer)")
    with st.container(border=True):
        show_untrusted("The model's answer", item["completion"], empty="(empty answer)")
    st.caption("The annotators' labels")
    show_table(pd.DataFrame(item["labels"]), key="adjudicate_labels")

with ruling, st.form("adjudicate"):
    st.selectbox("Answer language", ANSWER_CLASSES, index=None, format_func=class_label, key="adj_answer_language")
    st.segmented_control("Matches the gold answer?", list(ANSWERS), format_func=ANSWER_TEXT.get,
                         key="adj_matches_gold")
    st.segmented_control("Correct?", list(ANSWERS), format_func=ANSWER_TEXT.get, key="adj_correct")
    st.text_input("Comment (optional)", key="adj_comment", max_chars=2000)
    resolve = st.form_submit_button("Record the resolution", key="adj_submit", type="primary")

if resolve:
    answers = [st.session_state[key] for key in ("adj_answer_language", "adj_matches_gold", "adj_correct")]
    if None in answers:
        st.warning("Answer all three questions (Can't tell is an answer).")
    else:
        try:
            adjudicate(db, user.id, chosen, answers[0], ANSWERS[answers[1]], ANSWERS[answers[2]],
                       comment=st.session_state["adj_comment"] or None)
        except (AdjudicationError, RoutingError) as error:
            show_error(error)
        else:
            flash("success", f"Resolved {chosen}; it is the item's gold label now.")
            for key in ("adj_answer_language", "adj_matches_gold", "adj_correct", "adj_comment", "adjudicate_item"):
                st.session_state.pop(key, None)
            st.rerun()
