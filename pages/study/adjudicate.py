"""Adjudicate (researchers): agreement on double-annotated items, and resolving disagreements.

Researchers see the item and every annotator's label, but never the surrogate's prediction:
a resolution informed by it would correlate gold labels with the surrogate's errors.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from annotator.annotation.agreement import (
    AdjudicationError,
    adjudicate,
    adjudication_queue,
    agreement_table,
)
from annotator.annotation.errors import RoutingError
from annotator.errors import STORAGE_ERRORS
from annotator.languages import language_name
from db.vocabulary import ANSWER_CLASSES, ANSWERS, RESEARCH_ROLES
from pages._common import (
    ANSWER_TEXT,
    class_label,
    engine,
    escape_markdown,
    flash,
    require_role,
    show_flash,
    show_image,
    show_table,
    show_untrusted,
)

user = require_role(RESEARCH_ROLES)
db = engine()
RULING = ("answer_language", "matches_gold", "correct", "comment")


def ruling_key(name: str, completion_id: str) -> str:
    return f"adj_{name}_{completion_id}"


def record(completion_id: str) -> None:
    """Record the ruling given on ``completion_id``'s form; refused until all three answers are in."""
    answers: dict[str, Any] = {name: st.session_state.get(ruling_key(name, completion_id)) for name in RULING}
    missing = [str(number) for number, name in enumerate(RULING[:3], start=1) if answers[name] is None]
    if missing:
        flash(
            "warning",
            f"Answer all three questions first; still open: {', '.join(missing)} "
            "(Can't tell is an answer). Nothing was recorded.",
        )
        return
    try:
        adjudicate(
            db,
            user.id,
            completion_id,
            answers["answer_language"],
            ANSWERS[answers["matches_gold"]],
            ANSWERS[answers["correct"]],
            comment=(answers["comment"] or "").strip() or None,
        )
    except (AdjudicationError, RoutingError) as error:
        flash("error", error)
        return
    except STORAGE_ERRORS as error:
        flash("error", f"Could not save, please retry: the database did not answer ({type(error).__name__}).")
        return
    flash("success", f"Resolved {completion_id}; it is the item's gold label now.")
    for name in RULING:
        st.session_state.pop(ruling_key(name, completion_id), None)
    st.session_state["resolved"] = st.session_state.get("resolved", 0) + 1


def labels_in_words(labels: pd.DataFrame) -> pd.DataFrame:
    """The annotators' answers as the form words them: a checkbox would show No and Can't tell alike."""
    words = {True: ANSWER_TEXT["yes"], False: ANSWER_TEXT["no"]}
    for question in ("matches_gold", "correct"):
        labels[question] = [ANSWER_TEXT["na"] if pd.isna(value) else words[bool(value)] for value in labels[question]]
    labels["answer_language"] = labels["answer_language"].map(class_label)
    return labels


st.title("Adjudicate")

st.subheader("Agreement")
agreement = agreement_table(db)
if agreement.empty:
    st.info("No item has two labels yet; agreement shows once second labels come in.")
else:
    st.caption("On the double-annotated items, per question and query language. NA counts as its own answer.")
    show_table(
        agreement,
        key="agreement_table",
        column_config={
            "percent_agreement": st.column_config.NumberColumn(format="%.1f"),
            "cohen_kappa": st.column_config.NumberColumn(format="%.3f"),
            "krippendorff_alpha": st.column_config.NumberColumn(format="%.3f"),
        },
    )

st.subheader("Disagreements")
show_flash()
queue = adjudication_queue(db)
if queue.empty:
    st.success("No disagreement waits for a resolution.")
    st.stop()
st.caption(f"{len(queue)} items wait, oldest first. Until resolved, the primary annotator's label counts.")
# The chooser starts over at the oldest item after each resolution (a new key per round, so the
# browser cannot keep naming the item just resolved).
chosen = st.selectbox("Item", queue["completion_id"], key=f"adjudicate_item_{st.session_state.get('resolved', 0)}")
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
    show_table(labels_in_words(pd.DataFrame(item["labels"])), key="adjudicate_labels")

# Every input is keyed by the item, so each item's form starts empty and a ruling can only be
# recorded for the item it was given on.
with ruling, st.form(f"adjudicate_{chosen}"):
    st.markdown(f"**Resolution of item {escape_markdown(chosen)}**")
    st.selectbox(
        "Answer language",
        ANSWER_CLASSES,
        index=None,
        format_func=class_label,
        key=ruling_key("answer_language", chosen),
        placeholder="Choose the answer's language",
    )
    st.segmented_control(
        "Matches the gold answer?",
        list(ANSWERS),
        format_func=ANSWER_TEXT.__getitem__,
        key=ruling_key("matches_gold", chosen),
    )
    st.segmented_control(
        "Correct?", list(ANSWERS), format_func=ANSWER_TEXT.__getitem__, key=ruling_key("correct", chosen)
    )
    st.text_input("Comment (optional)", key=ruling_key("comment", chosen), max_chars=2000)
    st.form_submit_button("Record the resolution", key="adj_submit", type="primary", on_click=record, args=(chosen,))
