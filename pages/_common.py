"""Layout helpers shared by the app shell and the pages: the engine, who is signed in, role
checks, and showing untrusted text. No study logic: that lives in ``annotator`` and ``stats``."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pandas as pd
import streamlit as st
from PIL import Image, UnidentifiedImageError
from sqlalchemy import Engine

from annotator.access.accounts import AnnotatorInfo, get_account
from annotator.access.sessions import account_for_token
from annotator.analysis.export import csv_bytes
from annotator.ingest.images import image_roots, image_url_allowed, servable_image_path
from annotator.storage import database_url, get_engine, upgrade_database
from pages._session import browser_session_token

#: Session-state key of the signed-in session's token (see ``annotator.access.sessions``).
SESSION_TOKEN = "session_token"

#: How the yes/no/NA answers (``db.vocabulary.ANSWERS``) read on a form.
ANSWER_TEXT = {"yes": "Yes", "no": "No", "na": "Can't tell"}

#: Display names of the answer-language classes that are not one language's name.
_CLASS_NAMES = {"other_latin": "Other (Latin script)", "other": "Other (another script)", "none": "No language"}
# Every ASCII punctuation character can be backslash-escaped in CommonMark.
_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")
#: The image box's height: with an image, the questions still fit on a 1400x900 screen.
IMAGE_MAX_HEIGHT = 280
IMAGE_BROKEN = "image could not be shown"


@st.cache_resource(show_spinner=False)
def engine_for(url: str) -> Engine:
    """The engine of ``url``, schema at head; one per process and URL."""
    engine = get_engine(url)
    upgrade_database(engine)
    return engine


def engine() -> Engine:
    """The study's engine (``IFL_DATABASE_URL``, else the embedded SQLite), schema at head."""
    return engine_for(database_url())


def current_user() -> AnnotatorInfo | None:
    """The signed-in account of this browser session as stored now, or None.

    Re-read on every run through the sign-in session's token (kept in the session state after
    sign-in, or sent by the browser's cookie after a reload or on a deep link), so an expiry, a
    sign-out in another tab, a role or language change or a deactivation applies at once. A
    ``user`` without a token is one a test put there to run a page on its own.
    """
    token = st.session_state.get(SESSION_TOKEN)
    if token is None and "user" not in st.session_state:
        token = browser_session_token()
    if token is not None:
        account = account_for_token(engine(), token)
    else:
        account = get_account(engine(), st.session_state["user"].id) if "user" in st.session_state else None
    if account is None or not account.active:
        st.session_state.pop("user", None)
        st.session_state.pop(SESSION_TOKEN, None)
        return None
    st.session_state["user"] = account
    st.session_state[SESSION_TOKEN] = token
    return account


def require_role(roles: tuple[str, ...]) -> AnnotatorInfo:
    """The signed-in account if its role is one of ``roles``; else a message and the page stops.

    Every page calls this first, so a page opened by its URL is refused like a hidden one.
    """
    user = current_user()
    if user is None:
        st.error("Please sign in first.")
        st.stop()
    if user.role not in roles:
        st.error(f"This page is for {' and '.join(f'{role}s' for role in roles)}; you are signed in as {user.role}.")
        st.stop()
    return user


def escape_markdown(text: object) -> str:
    """``text`` made safe for elements that render Markdown (messages, captions)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("\n", "  \n")


def show_error(error: object) -> None:
    """A refused action's message, as plain text (it may quote user data)."""
    st.error(escape_markdown(error))


def flash(kind: str, message: object) -> None:
    """Keep a message for the next run (``success``, ``info``, ``warning``, ``error`` or ``toast``)."""
    st.session_state["flash"] = (kind, str(message))


def show_flash() -> None:
    """Show the message kept by :func:`flash`, once."""
    if "flash" in st.session_state:
        kind, message = st.session_state.pop("flash")
        if kind == "toast":
            st.toast(escape_markdown(message), icon=":material/check:")
        else:
            getattr(st, kind)(escape_markdown(message))


def untrusted_html(text: str) -> str:
    """``text`` as an HTML block that shows it verbatim: escaped (no Markdown, no markup), line
    breaks kept, and laid out in its own direction (``dir="auto"``; each paragraph by its own
    first strong letter), so Hebrew, Arabic and Urdu read right to left."""
    return (
        '<div class="ifl-untrusted" dir="auto" style="white-space: pre-wrap; unicode-bidi: plaintext">'
        f"{html.escape(text)}</div>"
    )


def show_untrusted(title: str, text: str | None, *, empty: str = "(none)") -> None:
    """Untrusted text (prompts, completions, gold answers) under a caption, never as Markdown."""
    st.caption(title)
    st.html(untrusted_html(text if text else empty))


def _image_size(path: str) -> tuple[int, int] | None:
    """(width, height) of a decodable image file; None for a broken or unreadable one."""
    try:
        with Image.open(path) as image:
            image.verify()
            return image.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


def show_image(image_path: str | None, image_url: str | None) -> None:
    """The item's image in a box at most :data:`IMAGE_MAX_HEIGHT` high, full size in an expander.

    Only a file under an image root (:func:`annotator.ingest.images.servable_image_path`) or a URL of an
    allowed host is shown; remote images are fetched with no referrer. Anything else, or a file
    that does not decode, shows a caption instead, and the page goes on working.
    """
    if image_url and image_url_allowed(image_url):
        source = html.escape(image_url, quote=True)
        image = f'<img src="{source}" referrerpolicy="no-referrer" alt="{IMAGE_BROKEN}" style="max-width: 100%; '
        st.html(f'{image}max-height: {IMAGE_MAX_HEIGHT}px; object-fit: contain">')
        with st.expander("Enlarge image"):
            st.html(f'{image}">')
        return
    local = servable_image_path(image_path, image_roots(engine()))
    size = _image_size(str(local)) if local is not None else None
    if local is None or size is None:
        if image_path or image_url:
            st.caption(IMAGE_BROKEN)
        return
    width, height = size
    st.image(str(local), width=max(1, min(width, round(width * IMAGE_MAX_HEIGHT / max(height, 1)))))
    with st.expander("Enlarge image"):
        st.image(str(local), width="stretch")


def class_label(answer_class: str | None) -> str:
    """Display name of an answer-language class (``german`` -> German)."""
    if answer_class is None:
        return ""
    return _CLASS_NAMES.get(answer_class, answer_class.replace("_", " ").capitalize())


def show_table(frame: pd.DataFrame, key: str, **options) -> None:
    """A table (cells are shown as plain text) in a container tests can find by ``key``."""
    with st.container(key=key):
        st.dataframe(frame, hide_index=True, **options)


def download_csv(label: str, data: pd.DataFrame | Callable[[], pd.DataFrame], file_name: str, key: str) -> None:
    """A download button for a table, in the export's CSV encoding (formula cells neutralised).

    Pass a callable for big tables: it runs only when the button is clicked.
    """
    payload = (lambda: csv_bytes(data())) if callable(data) else csv_bytes(data)
    st.download_button(label, payload, file_name=file_name, mime="text/csv", key=key, on_click="ignore")
