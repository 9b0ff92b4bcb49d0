"""The browser's half of a sign-in session: a cookie that holds the session token.

A cookie rather than the URL, because URLs get shared, bookmarked and logged. Streamlit reads
cookies (``st.context.cookies``, as sent when the page was loaded) but cannot set them, so a
one-line script in the page writes it: ``SameSite=Strict`` (never sent by another site's
request), ``Secure`` behind https, and no longer-lived than the session row it names. The
server keeps only the token's hash (``annotator.access.sessions``), and a revoked token is refused
there, whatever the browser still holds.
"""

from __future__ import annotations

import json

import streamlit as st

SESSION_COOKIE = "ifl_session"
_PENDING = "session_cookie_pending"


def browser_session_token() -> str | None:
    """The token the browser sent with this page load, if any (only text counts: a session
    without a browser, as in AppTest, has no real cookies)."""
    token = st.context.cookies.get(SESSION_COOKIE)
    return token if isinstance(token, str) and token else None


def client_address() -> str | None:
    """The address the page was loaded from (None: this machine, or unknown); behind a reverse
    proxy it is the proxy's."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else None


def keep_in_browser(token: str | None) -> None:
    """Have the next run hand ``token`` to the browser as its cookie (``None``: delete it)."""
    st.session_state[_PENDING] = token or ""


def write_pending_cookie(max_age_seconds: int) -> None:
    """Set (for ``max_age_seconds``) or delete the cookie a :func:`keep_in_browser` asked for.

    A one-line script sets it; the token comes from ``secrets.token_urlsafe`` and is quoted
    as a JSON string besides, so nothing from outside reaches the script.
    """
    if _PENDING not in st.session_state:
        return
    token = st.session_state.pop(_PENDING)
    age = max(int(max_age_seconds), 0) if token else 0
    script = (
        f"<script>document.cookie = {json.dumps(SESSION_COOKIE + '=')} + {json.dumps(token)}"
        f" + '; Path=/; Max-Age={age}; SameSite=Strict'"
        " + (location.protocol === 'https:' ? '; Secure' : '');</script>"
    )
    st.html(script, unsafe_allow_javascript=True)
