"""Sign in with an account's name and password; on a new, empty database, set up the demo study."""

from __future__ import annotations

import streamlit as st

from annotator.accounts import authenticate, list_annotators
from annotator.setup_demo import DEMO_PASSWORD, set_up_demo
from annotator.storage import is_empty
from pages._common import engine

db = engine()
st.title("ifl-studio")
st.caption("Language fidelity of vision-language models: annotation and debiased estimates.")

if list_annotators(db).empty:
    if is_empty(db):
        st.info("This database holds no study yet. Set up the demo study to try everything, "
                "or import your completions with `ifl import` and add an admin with `ifl annotators add`.")
        if st.button("Set up the demo study", key="setup_demo", type="primary"):
            with st.status("Setting up the demo study…", expanded=True) as status:
                for line in set_up_demo(db):
                    st.text(line)
                status.update(label="The demo study is ready.", state="complete")
            st.success(f"Sign in as admin, rosa (researcher) or anna (annotator), password {DEMO_PASSWORD!r}.")
            st.button("Continue to sign in", key="setup_done")
    else:
        st.warning("The study has no accounts yet. Add an admin from a shell: "
                   "`ifl annotators add NAME --role admin --languages en`.")
    st.stop()

with st.form("sign_in", border=True, width=420):
    name = st.text_input("Name", key="sign_in_name", autocomplete="username")
    password = st.text_input("Password", type="password", key="sign_in_password", autocomplete="current-password")
    submitted = st.form_submit_button("Sign in", key="sign_in_submit", type="primary")
if submitted:
    account = authenticate(db, name, password)
    if account is None:
        st.error("Wrong name or password, or the account is deactivated.")
    else:
        st.session_state["user"] = account
        st.rerun()
