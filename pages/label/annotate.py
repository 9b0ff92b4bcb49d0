"""Annotate: one item at a time from my queue, three questions, every action on a key.

Prompts, gold answers and completions are untrusted text and are shown with ``st.text``.
The page shows only what :class:`annotator.routing.ClaimedItem` carries: never a surrogate
prediction, nor anybody else's label.
"""

from __future__ import annotations

import time

import streamlit as st

from annotator import routing
from annotator.languages import ANSWER_CLASSES, language_name, query_language_class
from pages._common import (
    ANSWER_TEXT,
    ANSWERS,
    ALL_ROLES,
    class_label,
    engine,
    flash,
    require_role,
    show_error,
    show_flash,
    show_image,
    show_untrusted,
)

user = require_role(ALL_ROLES)
db = engine()

#: Question (its session key) -> (title, shortcut per answer).
QUESTIONS = {
    "matches_gold": ("2. Does the answer match the gold answer?", {"yes": "1", "no": "2", "na": "3"}),
    "correct": ("3. Is the answer correct?", {"yes": "4", "no": "5", "na": "6"}),
}
FORM_KEYS = ("answer_language", "matches_gold", "correct", "comment")


def clear_form() -> None:
    for key in FORM_KEYS:
        st.session_state.pop(key, None)


def choose(key: str, value: str) -> None:
    st.session_state[key] = value


def submit() -> None:
    """Submit (or, when correcting, revise) the label; then the next item comes."""
    missing = [str(number) for number, key in enumerate(("answer_language", "matches_gold", "correct"), start=1)
               if st.session_state.get(key) is None]
    if missing:
        flash("warning", f"Please answer every question first; still open: {', '.join(missing)}. "
                         "(Can't tell is an answer too.)")
        return
    revising = st.session_state.get("revising")
    target = revising if revising is not None else st.session_state["item"]
    label = {
        "answer_language": st.session_state["answer_language"],
        "matches_gold": ANSWERS[st.session_state["matches_gold"]],
        "correct": ANSWERS[st.session_state["correct"]],
        "comment": st.session_state.get("comment") or None,
        "seconds_spent": time.monotonic() - st.session_state["shown_at"],
    }
    try:
        if revising is not None:
            routing.revise(db, user.id, target.completion_id, **label)
        else:
            routing.submit(db, user.id, target.completion_id, **label)
    except routing.NotHeldError as error:
        st.session_state["item"] = None  # taken over: claim the next one
        flash("error", str(error))
        clear_form()
        return
    except routing.RoutingError as error:
        flash("error", str(error))
        return
    flash("toast", "Correction saved." if revising is not None else "Label saved.")
    clear_form()
    if revising is not None:
        st.session_state["revising"] = None
        st.session_state["shown_at"] = time.monotonic()
    else:
        st.session_state["item"] = None


def skip() -> None:
    try:
        routing.skip(db, user.id, st.session_state["item"].completion_id)
    except routing.RoutingError as error:
        flash("error", str(error))
    else:
        flash("info", "Skipped; the item goes to someone else.")
    st.session_state["item"] = None
    clear_form()


def undo() -> None:
    """Reopen my most recent label for correction (nothing is deleted)."""
    try:
        last = routing.undo_last(db, user.id)
    except routing.RoutingError as error:
        flash("error", str(error))
        return
    if last is None:
        flash("info", "You have no label to undo yet.")
        return
    reverse = {value: key for key, value in ANSWERS.items()}
    st.session_state.update(
        revising=last, shown_at=time.monotonic(), answer_language=last.answer_language,
        matches_gold=reverse[last.matches_gold], correct=reverse[last.correct], comment=last.comment or "",
    )


def back_to_queue() -> None:
    st.session_state["revising"] = None
    st.session_state["shown_at"] = time.monotonic()
    clear_form()


st.title("Annotate")
revising = st.session_state.get("revising")
item = revising
if revising is None:
    item = st.session_state.get("item")
    if item is None:
        try:
            item = routing.claim_next(db, user.id)
        except routing.RoutingError as error:
            show_error(error)
            st.stop()
        st.session_state["item"] = item
        st.session_state["shown_at"] = time.monotonic()

try:
    progress = routing.progress(db, user.id)
except routing.RoutingError as error:
    show_error(error)
    st.stop()
today, total, left = st.columns(3)
today.metric("Labeled by me today", progress.labeled_today)
total.metric("Labeled by me in total", progress.labeled_total)
left.metric("Left in my languages", progress.left_in_my_languages,
            help="Items (and second labels) of the sample in " + ", ".join(progress.languages) + " still to do.")

show_flash()

if item is None:
    st.info(progress.message)
    st.button("Undo last", key="undo", on_click=undo, shortcut="U", icon=":material/undo:")
    st.stop()

if revising is not None:
    st.warning(f"Correcting your label of {revising.labeled_at:%Y-%m-%d %H:%M} UTC. "
               "Save the correction, or go back to your current item.")

query_class = query_language_class(item.query_language)
content, questions = st.columns([3, 2], gap="large")
with content:
    with st.container(border=True):
        st.caption(f"Query language: {language_name(item.query_language)} ({item.query_language})")
        show_untrusted("Query", item.prompt)
        show_image(item.image_path, item.image_url)
        show_untrusted("Gold answer", item.gold_answer, empty="(no gold answer)")
    with st.container(border=True):
        show_untrusted("The model's answer", item.completion, empty="(empty answer)")

with questions:
    st.markdown("**1. In which language is the answer?**")
    chosen = st.session_state.get("answer_language")
    with st.container(horizontal=True):
        st.button(class_label(query_class), key="lang_query", shortcut="Q", on_click=choose,
                  args=("answer_language", query_class), type="primary" if chosen == query_class else "secondary")
        st.button("English", key="lang_english", shortcut="E", on_click=choose, args=("answer_language", "english"),
                  type="primary" if chosen == "english" else "secondary")
    # index=None: the browser must never believe a first option is chosen (it would send it back).
    st.selectbox("Answer language", ANSWER_CLASSES, index=None, key="answer_language", format_func=class_label,
                 placeholder="Another language…", label_visibility="collapsed")
    for key, (title, shortcuts) in QUESTIONS.items():
        st.markdown(f"**{title}**")
        with st.container(horizontal=True):
            for value, shortcut in shortcuts.items():
                st.button(ANSWER_TEXT[value], key=f"{key}_{value}", shortcut=shortcut, on_click=choose,
                          args=(key, value), type="primary" if st.session_state.get(key) == value else "secondary")
    st.text_input("Comment (optional)", key="comment", max_chars=2000)
    with st.container(horizontal=True):
        if revising is None:
            st.button("Submit and next", key="submit", type="primary", shortcut="Ctrl+Enter", on_click=submit,
                      icon=":material/send:")
            st.button("Skip", key="skip", shortcut="S", on_click=skip, icon=":material/skip_next:")
            st.button("Undo last", key="undo", shortcut="U", on_click=undo, icon=":material/undo:")
        else:
            st.button("Save correction", key="submit", type="primary", shortcut="Ctrl+Enter", on_click=submit,
                      icon=":material/save:")
            st.button("Back to my item", key="back", shortcut="Esc", on_click=back_to_queue)
    st.caption("Keys: Q query language, E English, 1/2/3 and 4/5/6 answer questions 2 and 3, "
               "Ctrl+Enter submit, S skip, U undo.")
