"""ifl-studio web app: sign in, then the pages your role may use.

Run with ``ifl app`` (or ``streamlit run app.py``); the database is ``IFL_DATABASE_URL``, else
the embedded SQLite file. Navigation lists only the pages of the signed-in role, so a page
of another role is not even routable; each page checks the role again as well.

Signed out, every page's address shows the sign-in form, so a deep link (``/dashboard``) or a
reload lands on its page once signed in; the sign-in itself is a server-side session whose
token the browser keeps in a cookie (``annotator.access.sessions``, ``pages._session``). Researchers
and admins start on the Dashboard: only the Annotate page claims items, and leaving it (or
signing out) gives the held item back at once.

The pages live in section folders (``pages/study/dashboard.py``), never directly in ``pages/``:
Streamlit's legacy multipage mode, active in a process until ``st.navigation`` first runs,
would otherwise serve ``pages/*.py`` by URL without running this script.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

import streamlit as st

from annotator.access.sessions import revoke_session, session_hours
from annotator.annotation.errors import RoutingError
from annotator.annotation.routing import release
from db.vocabulary import ADMIN_ROLES, RESEARCH_ROLES, ROLES
from pages._common import (
    SESSION_TOKEN,
    current_user,
    engine,
    escape_markdown,
)
from pages._session import keep_in_browser, write_pending_cookie

#: Served by this server, so no page asks an icon font CDN for the favicon.
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"
st.set_page_config(page_title="ifl-studio", page_icon=str(FAVICON), layout="wide")

SIGN_IN = "pages/account/sign_in.py"
ANNOTATE = "pages/label/annotate.py"
DASHBOARD = "pages/study/dashboard.py"
# (section, script, title, icon, roles)
PAGES = [
    ("Label", ANNOTATE, "Annotate", ":material/edit_note:", ROLES),
    ("Study", DASHBOARD, "Dashboard", ":material/monitoring:", RESEARCH_ROLES),
    ("Study", "pages/study/adjudicate.py", "Adjudicate", ":material/gavel:", RESEARCH_ROLES),
    ("Study", "pages/study/design.py", "Sample design", ":material/grid_view:", RESEARCH_ROLES),
    ("Study", "pages/study/data.py", "Data", ":material/upload_file:", RESEARCH_ROLES),
    ("Study", "pages/study/export.py", "Export", ":material/download:", RESEARCH_ROLES),
    ("Study", "pages/study/guidelines.py", "Guidelines", ":material/menu_book:", RESEARCH_ROLES),
    ("Admin", "pages/admin/annotators.py", "Annotators", ":material/group:", ADMIN_ROLES),
]
#: Session-state key of the page shown last (leaving Annotate gives its item back).
LAST_PAGE = "last_page"


def url_path(script: str) -> str:
    """The address Streamlit gives a page script (``pages/study/dashboard.py`` -> ``dashboard``)."""
    return Path(script).stem


def give_back_claims(annotator_id: int) -> None:
    """Release held items at once instead of at lease expiry, and forget the one on screen."""
    with suppress(RoutingError):  # a deactivated account holds nothing it could give back
        release(engine(), annotator_id)
    st.session_state.pop("item", None)


def sign_out() -> None:
    user = current_user()
    if user is not None:
        give_back_claims(user.id)
    revoke_session(engine(), st.session_state.get(SESSION_TOKEN))
    st.session_state.clear()
    keep_in_browser(None)  # the browser's cookie names a revoked session now: delete it


user = current_user()
if user is None:
    # Every page's address runs the sign-in form, so a deep link is still the address after
    # signing in, and the page it names opens (when the role may see it).
    sign_in_pages = [st.Page(SIGN_IN, title="Sign in", icon=":material/login:", default=True)]
    sign_in_pages += [
        st.Page(SIGN_IN, title="Sign in", icon=":material/login:", url_path=url_path(script))
        for _, script, _, _, _ in PAGES
    ]
    navigation = st.navigation(sign_in_pages, position="hidden")
    write_pending_cookie(0)
else:
    sections: dict[str, list[st.Page]] = {}
    pages_by_script: dict[str, st.Page] = {}
    for section, script, title, icon, roles in PAGES:
        if user.role in roles:
            pages_by_script[script] = st.Page(script, title=title, icon=icon)
            sections.setdefault(section, []).append(pages_by_script[script])
    start = pages_by_script[DASHBOARD if user.role in RESEARCH_ROLES else ANNOTATE]
    # The root address forwards to the role's start page, which so keeps its own address
    # (a default page has none, and a bookmark of it would find no page).
    home = st.Page(lambda: st.switch_page(start), title=start.title, url_path="home", default=True, visibility="hidden")
    next(iter(sections.values())).insert(0, home)
    navigation = st.navigation(sections)
    if st.session_state.get(LAST_PAGE) == url_path(ANNOTATE) and navigation.url_path != url_path(ANNOTATE):
        give_back_claims(user.id)
    st.session_state[LAST_PAGE] = navigation.url_path
    with st.sidebar:
        st.caption(f"Signed in as **{escape_markdown(user.name)}** ({user.role})")
        st.button("Sign out", key="sign_out", on_click=sign_out, icon=":material/logout:")
        write_pending_cookie(int(session_hours() * 3600))
navigation.run()
