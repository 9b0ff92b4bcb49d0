"""Annotators (admins): accounts, the languages each reads, roles, activation and passwords."""

from __future__ import annotations

import streamlit as st

from annotator.access import accounts
from annotator.annotation.reporting import unroutable_languages
from annotator.errors import STORAGE_ERRORS
from annotator.languages import language_name
from db.vocabulary import ADMIN_ROLES, ROLES, STUDY_LANGUAGES
from pages._common import (
    engine,
    flash,
    require_role,
    show_flash,
    show_table,
)

require_role(ADMIN_ROLES)
db = engine()


def language_label(code: str) -> str:
    return f"{language_name(code)} ({code})"


def load_account() -> None:
    """Put the selected account's settings into the edit form."""
    row = accounts.list_annotators(db).set_index("name").loc[st.session_state["account"]]
    st.session_state.update(
        account_languages=[code for code in row["languages"].split(",") if code],
        account_role=row["role"],
        account_active=bool(row["active"]),
        account_password="",
    )


def flash_at(form: str, kind: str, message: object) -> None:
    """Keep a message to show under ``form`` (edit or add), where the admin is looking."""
    flash(kind, message)
    st.session_state["flash_form"] = form


def show_flash_at(form: str) -> None:
    if st.session_state.get("flash_form") == form:
        show_flash()


def save_account() -> None:
    name = st.session_state["account"]
    row = accounts.list_annotators(db).set_index("name").loc[name]
    try:
        accounts.set_languages(db, name, st.session_state["account_languages"])
        if st.session_state["account_role"] != row["role"]:
            accounts.set_role(db, name, st.session_state["account_role"])
        if st.session_state["account_active"] != bool(row["active"]):
            accounts.set_active(db, name, st.session_state["account_active"])
        if st.session_state["account_password"]:
            accounts.set_password(db, int(row["id"]), st.session_state["account_password"])
    except accounts.AccountError as error:
        flash_at("edit", "error", error)
    except STORAGE_ERRORS as error:
        flash_at(
            "edit", "error", f"Could not save, please retry: the database did not answer ({type(error).__name__})."
        )
    else:
        flash_at("edit", "success", f"Saved {name}. A new role applies at their next sign-in.")
        load_account()


#: The add form's inputs and what each holds when the form is empty.
NEW_ACCOUNT_EMPTY = {"new_name": "", "new_languages": [], "new_role": ROLES[0], "new_password": ""}


def add_account() -> None:
    """Create the account; on success the form is emptied (by setting each input, so the browser
    shows the empty form too), ready for the next one."""
    name = st.session_state["new_name"].strip()
    if not name:
        flash_at("add", "warning", "Type the new account's name first.")
        return
    if name in set(accounts.list_annotators(db)["name"]):
        flash_at(
            "add",
            "warning",
            f"An account named {name} already exists: choose another name, or change that "
            'account under "Change an account".',
        )
        return
    try:
        accounts.add_annotator(
            db,
            name,
            st.session_state["new_languages"],
            role=st.session_state["new_role"],
            password=st.session_state["new_password"],
        )
    except accounts.AccountError as error:
        flash_at("add", "error", error)
    except STORAGE_ERRORS as error:
        flash_at("add", "error", f"Could not save, please retry: the database did not answer ({type(error).__name__}).")
    else:
        flash_at("add", "success", f"Added {name}.")
        st.session_state.update(NEW_ACCOUNT_EMPTY)


st.title("Annotators")
people = accounts.list_annotators(db)
show_table(people, key="annotators_table", column_config={"n_annotations": st.column_config.NumberColumn("labels")})

stuck = unroutable_languages(db)
if not stuck.empty:
    st.warning("Some open work has nobody who can take it: add the language to an annotator.")
    show_table(stuck, key="unroutable_table")

edit, add = st.columns(2, gap="large")
with edit:
    st.subheader("Change an account")
    if st.session_state.get("account") not in set(people["name"]):
        st.session_state["account"] = people["name"].iloc[0]
        load_account()
    st.selectbox("Account", people["name"], key="account", on_change=load_account)
    options = sorted(set(STUDY_LANGUAGES) | set(st.session_state["account_languages"]))
    with st.form("edit_account"):
        st.multiselect(
            "Languages they read",
            options,
            key="account_languages",
            format_func=language_label,
            accept_new_options=True,
            help="Pick, or type a code or English name (it, ita, Italian).",
        )
        st.selectbox("Role", ROLES, key="account_role")
        st.toggle("Active (may sign in and label)", key="account_active")
        st.text_input(
            "Reset the password (leave empty to keep)",
            type="password",
            key="account_password",
            autocomplete="new-password",
            help=f"At least {accounts.MIN_PASSWORD_LENGTH} characters; the account is signed out everywhere.",
        )
        st.form_submit_button("Save changes", key="account_save", type="primary", on_click=save_account)
    show_flash_at("edit")

with add:
    st.subheader("Add an account")
    with st.form("add_account"):
        st.text_input("Name", key="new_name", max_chars=200)
        st.multiselect(
            "Languages they read",
            sorted(STUDY_LANGUAGES),
            key="new_languages",
            format_func=language_label,
            accept_new_options=True,
        )
        st.selectbox("Role", ROLES, key="new_role")
        st.text_input(
            "Password",
            type="password",
            key="new_password",
            autocomplete="new-password",
            help=f"At least {accounts.MIN_PASSWORD_LENGTH} characters.",
        )
        st.form_submit_button("Add account", key="new_submit", type="primary", on_click=add_account)
    show_flash_at("add")
