"""ifl-studio web app: sign in, then the pages your role may use.

Run with ``ifl app`` (or ``streamlit run app.py``); the database is ``IFL_DATABASE_URL``, else
the embedded SQLite file. Navigation lists only the pages of the signed-in role, so a page
of another role is not even routable; each page checks the role again as well.

The pages live in section folders (``pages/study/dashboard.py``), never directly in ``pages/``:
Streamlit's legacy multipage mode, active in a process until ``st.navigation`` first runs,
would otherwise serve ``pages/*.py`` by URL without running this script.
"""

from __future__ import annotations

import streamlit as st

from annotator.routing import RoutingError, release
from pages._common import ADMIN_ROLES, ALL_ROLES, RESEARCH_ROLES, current_user, engine, escape_markdown

st.set_page_config(page_title="ifl-studio", page_icon=":material/translate:", layout="wide")

# (section, script, title, icon, roles)
PAGES = [
    ("Label", "pages/label/annotate.py", "Annotate", ":material/edit_note:", ALL_ROLES),
    ("Study", "pages/study/dashboard.py", "Dashboard", ":material/monitoring:", RESEARCH_ROLES),
    ("Study", "pages/study/adjudicate.py", "Adjudicate", ":material/gavel:", RESEARCH_ROLES),
    ("Study", "pages/study/design.py", "Sample design", ":material/grid_view:", RESEARCH_ROLES),
    ("Study", "pages/study/data.py", "Data", ":material/upload_file:", RESEARCH_ROLES),
    ("Study", "pages/study/export.py", "Export", ":material/download:", RESEARCH_ROLES),
    ("Admin", "pages/admin/annotators.py", "Annotators", ":material/group:", ADMIN_ROLES),
]


def sign_out() -> None:
    user = current_user()
    if user is not None:
        try:
            release(engine(), user.id)  # give held items back at once instead of at lease expiry
        except RoutingError:
            pass  # a deactivated account holds nothing it could give back
    st.session_state.clear()


user = current_user()
if user is None:
    navigation = st.navigation([st.Page("pages/account/sign_in.py", title="Sign in", icon=":material/login:")])
else:
    sections: dict[str, list[st.Page]] = {}
    for section, script, title, icon, roles in PAGES:
        if user.role in roles:
            sections.setdefault(section, []).append(st.Page(script, title=title, icon=icon))
    navigation = st.navigation(sections)
    with st.sidebar:
        st.caption(f"Signed in as **{escape_markdown(user.name)}** ({user.role})")
        st.button("Sign out", key="sign_out", on_click=sign_out, icon=":material/logout:")
navigation.run()
