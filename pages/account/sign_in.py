"""Sign in with an account's name and password.

Nothing here creates an account or a study: on a database without accounts the page only says
how an administrator adds the first one from a shell. Failed attempts are throttled per name and
per client (``annotator.access.sessions``), with the same answer whether or not the name exists.
"""

from __future__ import annotations

import math

import streamlit as st

from annotator.access.accounts import list_annotators
from annotator.access.sessions import create_session, sign_in
from pages._common import SESSION_TOKEN, engine
from pages._session import client_address, keep_in_browser

db = engine()
st.title("ifl-studio")
st.caption("Language fidelity of vision-language models: annotation and debiased estimates.")

if list_annotators(db).empty:
    st.info(
        "This study has no accounts yet. An administrator adds the first one from a shell on the server:\n\n"
        "1. import the completions: `ifl import completions.csv`\n"
        "2. add the first admin (the password is asked): `ifl annotators add NAME --role admin --languages en`\n\n"
        "To try the app on the demo study instead, start it with `ifl app --demo` (or run `ifl demo`)."
    )
    st.stop()

with st.form("sign_in", border=True, width=420):
    name = st.text_input("Name", key="sign_in_name", autocomplete="username")
    password = st.text_input("Password", type="password", key="sign_in_password", autocomplete="current-password")
    submitted = st.form_submit_button("Sign in", key="sign_in_submit", type="primary")
if submitted:
    attempt = sign_in(db, name, password, client=client_address())
    if attempt.retry_after is not None:
        seconds = math.ceil(attempt.retry_after.total_seconds())
        st.error(f"Too many failed sign-ins for this name or from this computer. Try again in {seconds} s.")
    elif attempt.account is None:
        st.error("Wrong name or password, or the account is deactivated.")
    else:
        token = create_session(db, attempt.account.id)
        st.session_state.update({"user": attempt.account, SESSION_TOKEN: token})
        keep_in_browser(token)
        st.rerun()
