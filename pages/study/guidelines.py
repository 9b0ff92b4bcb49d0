"""Guidelines (researchers): the annotation guidelines annotators read on the Annotate page.

Markdown, kept in the database; a save applies at every annotator's next page run.
"""

from __future__ import annotations

import streamlit as st

from annotator.annotation.guidelines import (
    DEFAULT_GUIDELINES,
    MAX_GUIDELINES_CHARS,
    GuidelinesError,
    get_guidelines,
    set_guidelines,
)
from annotator.errors import STORAGE_ERRORS
from db.vocabulary import RESEARCH_ROLES
from pages._common import engine, flash, require_role, show_flash

user = require_role(RESEARCH_ROLES)
db = engine()


def save() -> None:
    try:
        set_guidelines(db, st.session_state["guidelines_text"], user.id)
    except GuidelinesError as error:
        flash("error", error)
    except STORAGE_ERRORS as error:
        flash(
            "error",
            f"Could not save, please retry: the database did not answer ({type(error).__name__}). "
            "Your text is still in the box.",
        )
    else:
        flash("success", "Saved: annotators see the new guidelines from their next page on.")


def restore_default() -> None:
    st.session_state["guidelines_text"] = DEFAULT_GUIDELINES
    flash("info", "The default guidelines are in the box; save to use them.")


st.title("Guidelines")
st.caption(
    "What annotators read on the Annotate page (opened on their first visit). Markdown: **bold**, "
    "lists with -, headings with ###."
)
show_flash()
st.session_state.setdefault("guidelines_text", get_guidelines(db))
edit, preview = st.columns(2, gap="large")
with edit:
    st.text_area("Guidelines (Markdown)", key="guidelines_text", height=520, max_chars=MAX_GUIDELINES_CHARS)
    with st.container(horizontal=True):
        st.button("Save", key="guidelines_save", type="primary", on_click=save, icon=":material/save:")
        st.button("Restore the default", key="guidelines_default", on_click=restore_default)
with preview:
    st.caption("Preview, as annotators see it")
    with st.container(border=True, key="guidelines_preview"):
        st.markdown(st.session_state["guidelines_text"])
