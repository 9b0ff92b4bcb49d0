"""Annotate: one item at a time from my queue, three questions, every action on a key.

Every answer belongs to the item on screen: its widgets and session keys carry the item's
*form id* (the completion id; ``revise-<id>`` when correcting), so each item starts empty, the
browser cannot send an earlier item's answer back, and a submit reads only the answers given
under the form id it was pressed for. Prompts, gold answers and completions are untrusted text,
shown escaped in their own writing direction. The page shows only what
:class:`annotator.annotation.routing.ClaimedItem` carries: never a surrogate prediction, nor anybody
else's label.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from annotator.annotation import reporting, revisions, routing
from annotator.annotation.errors import NotHeldError, RoutingError
from annotator.annotation.guidelines import get_guidelines
from annotator.errors import STORAGE_ERRORS
from annotator.languages import language_name, query_language_class
from db.vocabulary import ANSWER_CLASSES, ANSWERS, ROLES
from pages._common import (
    ANSWER_TEXT,
    class_label,
    engine,
    flash,
    require_role,
    show_error,
    show_flash,
    show_image,
    show_untrusted,
)

user = require_role(ROLES)
db = engine()

#: The three questions: session key -> (title, help).
QUESTIONS = {
    "answer_language": (
        "1. In which language is the answer?",
        (
            "The language most of the answer's words are in (names, numbers and code do not count); a mixed "
            "answer takes its larger part. No words at all (empty, only a number or a letter choice): No language."
        ),
    ),
    "matches_gold": (
        "2. Does the answer match the gold answer?",
        (
            "Same content as the gold answer, in any language or wording. Can't tell when there is no gold "
            "answer or the answer is too vague to compare."
        ),
    ),
    "correct": (
        "3. Is the answer correct?",
        (
            "Right about the query, judged on your own knowledge and the image, not only on the gold answer. "
            "Can't tell when you cannot judge it."
        ),
    ),
}
#: Shortcut per answer of questions 2 and 3 (the README documents them: 1/2/3 and 4/5/6).
SHORTCUTS = {"matches_gold": {"yes": "1", "no": "2", "na": "3"}, "correct": {"yes": "4", "no": "5", "na": "6"}}
#: What a form holds; each is stored under ``<name>_<form id>``.
FIELDS = ("answer_language", "matches_gold", "correct", "comment", "shown_at", "box")
SAVE_FAILED = "Could not save, please retry: the database did not answer ({error}). Your answers are still on screen."


def field(name: str, form: str) -> str:
    """The session key of one of the form's inputs."""
    return f"{name}_{form}"


def clear_form(form: str | None) -> None:
    """Forget everything entered under ``form`` (after it was saved, skipped or left)."""
    if form is not None:
        for name in FIELDS:
            st.session_state.pop(field(name, form), None)


def storage_failure(error: Exception) -> str:
    return SAVE_FAILED.format(error=type(error).__name__)


def box_key(form: str) -> str:
    """The "Another language…" box's widget key. The answers themselves live in plain session keys
    that only callbacks write: a widget's value set from the server can be overwritten by the
    browser's older value when keys come fast, so no button ever writes into the box. A button
    gives the form a new, empty box instead (a new key), so the box never shows a stale choice."""
    return f"language_box_{form}_{st.session_state.get(field('box', form), 0)}"


def choose(form: str, name: str, value: str) -> None:
    if form != st.session_state.get("form"):  # a key pressed while the page was changing items
        return
    st.session_state[field(name, form)] = value
    if name == "answer_language":
        st.session_state[field("box", form)] = st.session_state.get(field("box", form), 0) + 1


def choose_from_box(form: str) -> None:
    if form == st.session_state.get("form"):
        st.session_state[field("answer_language", form)] = st.session_state.get(box_key(form))


def submit(form: str, completion_id: str, revising: bool) -> None:
    """Submit (or, when correcting, revise) what was entered under ``form``; then the next item comes."""
    if form != st.session_state.get("form"):
        return  # pressed for an item no longer on screen: nothing of it may be sent
    answers: dict[str, Any] = {name: st.session_state.get(field(name, form)) for name in FIELDS}
    missing = [str(number) for number, name in enumerate(QUESTIONS, start=1) if answers[name] is None]
    if missing:
        flash(
            "warning",
            f"Please answer every question first; still open: {', '.join(missing)}. (Can't tell is an answer too.)",
        )
        return
    label: dict[str, Any] = {
        "answer_language": answers["answer_language"],
        "matches_gold": ANSWERS[answers["matches_gold"]],
        "correct": ANSWERS[answers["correct"]],
        "comment": (answers["comment"] or "").strip() or None,
        "seconds_spent": time.monotonic() - answers["shown_at"],
    }
    try:
        if revising:
            revisions.revise(db, user.id, completion_id, **label)
        else:
            routing.submit(db, user.id, completion_id, **label)
    except NotHeldError as error:
        if not revising:
            st.session_state["item"] = None  # taken over: claim the next one
            clear_form(form)
        flash("error", error)
        return
    except RoutingError as error:
        flash("error", error)
        return
    except STORAGE_ERRORS as error:
        flash("error", storage_failure(error))
        return
    flash("toast", "Correction saved." if revising else "Label saved.")
    clear_form(form)
    if revising:
        st.session_state["revising"] = None
    else:
        st.session_state["item"] = None


def skip(form: str, completion_id: str) -> None:
    if form != st.session_state.get("form"):
        return
    try:
        routing.skip(db, user.id, completion_id)
    except RoutingError as error:
        flash("error", error)
    except STORAGE_ERRORS as error:
        flash("error", storage_failure(error))
        return  # the item is still mine: keep it and what was entered
    else:
        flash("info", "Skipped; the item goes to someone else.")
    st.session_state["item"] = None
    clear_form(form)


def undo() -> None:
    """Reopen my most recent label for correction (nothing is deleted); the item on screen
    starts over afterwards."""
    try:
        last = revisions.undo_last(db, user.id)
    except RoutingError as error:
        flash("error", error)
        return
    except STORAGE_ERRORS as error:
        flash("error", storage_failure(error))
        return
    if last is None:
        flash("info", "You have no label to undo yet.")
        return
    clear_form(st.session_state.get("form"))
    form = f"revise-{last.completion_id}"
    clear_form(form)
    reverse = {value: key for key, value in ANSWERS.items()}
    st.session_state.update(
        {
            "revising": last,
            field("answer_language", form): last.answer_language,
            field("matches_gold", form): reverse[last.matches_gold],
            field("correct", form): reverse[last.correct],
            field("comment", form): last.comment or "",
            field("box", form): st.session_state.get("boxes", 0),
        }
    )
    st.session_state["boxes"] = st.session_state.get("boxes", 0) + 1  # a box key this browser never saw
    st.session_state[box_key(form)] = last.answer_language


def back_to_queue() -> None:
    clear_form(st.session_state.get("form"))
    st.session_state["revising"] = None


def storage_stop(error: Exception) -> None:
    """A read failed (the database is busy): say so, offer a retry, and stop the page."""
    st.error(f"Could not load your work, please retry: the database did not answer ({type(error).__name__}).")
    st.button("Retry", key="retry", icon=":material/refresh:")
    st.stop()


st.title("Annotate")
revising = st.session_state.get("revising")
item = revising
try:
    if revising is None:
        item = st.session_state.get("item")
        if item is None:
            item = routing.claim_next(db, user.id)
            st.session_state["item"] = item
    progress = reporting.progress(db, user.id)
    guidelines = get_guidelines(db)
except RoutingError as error:
    show_error(error)
    st.stop()
except STORAGE_ERRORS as error:
    storage_stop(error)

today, total, left = st.columns(3)
today.metric("Labeled by me today", progress.labeled_today)
total.metric("Labeled by me in total", progress.labeled_total)
my_languages = ", ".join(map(language_name, progress.languages)) or "none"
left.metric(
    "Left in my languages",
    progress.left_for_me,
    help=f"Items in {my_languages} that you can still label: the one on screen and those waiting for you. "
    "Second labels that others must give, items you skipped and items others hold are not counted.",
)
# Open on an annotator's first visit (no label yet), so the guidelines are read before labeling.
with st.expander("Guidelines", expanded=progress.labeled_total == 0, icon=":material/menu_book:"):
    st.markdown(guidelines)

show_flash()

if item is None:
    st.session_state["form"] = None
    st.info(progress.message)
    st.button("Undo last", key="undo", on_click=undo, shortcut="U", icon=":material/undo:")
    st.stop()

form = f"revise-{item.completion_id}" if revising is not None else item.completion_id
st.session_state["form"] = form
if revising is not None:
    st.warning(
        f"Correcting your label of {revising.labeled_at:%Y-%m-%d %H:%M} UTC. "
        "Save the correction, or go back to your current item."
    )
st.session_state.setdefault(field("shown_at", form), time.monotonic())

query_class = query_language_class(item.query_language)
content, questions = st.columns([3, 2], gap="large")
# The answer being labeled comes first and the image (in a bounded box) beside the query and the
# gold answer, so all of them and the questions are on screen together.
with content:
    with st.container(border=True, key="model_answer"):
        show_untrusted("The model's answer", item.completion, empty="(empty answer)")
    with st.container(border=True):
        texts, picture = st.columns([3, 2]) if item.image_path or item.image_url else (st.container(), None)
        with texts:
            st.caption(f"Query language: {language_name(item.query_language)} ({item.query_language})")
            show_untrusted("Query", item.prompt)
            show_untrusted("Gold answer", item.gold_answer, empty="(no gold answer)")
        if picture is not None:
            with picture:
                show_image(item.image_path, item.image_url)


def question_title(name: str) -> None:
    title, help_text = QUESTIONS[name]
    st.markdown(f"**{title}**", help=help_text)


with questions:
    question_title("answer_language")
    chosen = st.session_state.get(field("answer_language", form))
    with st.container(horizontal=True):
        # One button per distinct language: for an English query, "English" is the query language.
        if query_class != "english":
            st.button(
                class_label(query_class),
                key="lang_query",
                shortcut="Q",
                on_click=choose,
                args=(form, "answer_language", query_class),
                type="primary" if chosen == query_class else "secondary",
            )
        st.button(
            "English",
            key="lang_english",
            shortcut="E",
            on_click=choose,
            args=(form, "answer_language", "english"),
            type="primary" if chosen == "english" else "secondary",
        )
    # index=None: the browser must never believe a first option is chosen (it would send it back).
    st.selectbox(
        "Answer language",
        ANSWER_CLASSES,
        index=None,
        key=box_key(form),
        on_change=choose_from_box,
        args=(form,),
        format_func=class_label,
        placeholder="Another language…",
        label_visibility="collapsed",
    )
    for name, shortcuts in SHORTCUTS.items():
        question_title(name)
        chosen = st.session_state.get(field(name, form))
        with st.container(horizontal=True):
            for value, shortcut in shortcuts.items():
                st.button(
                    ANSWER_TEXT[value],
                    key=f"{name}_{value}",
                    shortcut=shortcut,
                    on_click=choose,
                    args=(form, name, value),
                    type="primary" if chosen == value else "secondary",
                )
    st.text_input("Comment (optional)", key=field("comment", form), max_chars=2000)
    with st.container(horizontal=True):
        if revising is None:
            st.button(
                "Submit and next",
                key="submit",
                type="primary",
                shortcut="Ctrl+Enter",
                on_click=submit,
                args=(form, item.completion_id, False),
                icon=":material/send:",
            )
            st.button(
                "Skip",
                key="skip",
                shortcut="S",
                on_click=skip,
                args=(form, item.completion_id),
                icon=":material/skip_next:",
            )
            st.button("Undo last", key="undo", shortcut="U", on_click=undo, icon=":material/undo:")
        else:
            st.button(
                "Save correction",
                key="submit",
                type="primary",
                shortcut="Ctrl+Enter",
                on_click=submit,
                args=(form, item.completion_id, True),
                icon=":material/save:",
            )
            st.button("Back to my item", key="back", shortcut="Esc", on_click=back_to_queue)
    query_key = "E English (the query language)" if query_class == "english" else "Q query language, E English"
    st.caption(f"Keys: {query_key}, 1/2/3 and 4/5/6 answer questions 2 and 3, Ctrl+Enter submit, S skip, U undo.")
