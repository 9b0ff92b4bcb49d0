"""Accounts: canonical languages, roles, scrypt passwords, constant-time login, deactivation."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.access import accounts
from annotator.access.accounts import (
    AccountError,
    AnnotatorInfo,
    add_annotator,
    authenticate,
    change_password,
    hash_password,
    list_annotators,
    set_active,
    set_languages,
    set_password,
    set_role,
    verify_password,
)
from annotator.annotation.errors import UnknownAnnotatorError
from annotator.annotation.routing import claim_next
from db.models import Annotator, Assignment

PASSWORD = "ten-chars!"


def test_languages_are_stored_as_iso639_3_in_any_input_form(engine):
    annotator_id = add_annotator(engine, "  ana ", ["de", "English", "fra", "deu"], password="pw-ana-123")
    table = list_annotators(engine)
    assert table.loc[0, "name"] == "ana"
    assert table.loc[0, "languages"] == "deu,eng,fra"
    assert table.loc[0, "id"] == annotator_id
    assert set_languages(engine, annotator_id, "hi, Russian") == ("hin", "rus")
    assert list_annotators(engine).loc[0, "languages"] == "hin,rus"


def test_list_never_shows_the_password_hash(engine):
    add_annotator(engine, "ana", "de", password="secret-ana")
    table = list_annotators(engine)
    assert list(table.columns) == ["id", "name", "role", "languages", "active", "created_at", "n_annotations"]
    assert not table.astype(str).apply(lambda column: column.str.contains("scrypt")).any().any()


def test_password_is_a_salted_scrypt_hash_with_its_parameters(engine):
    first = add_annotator(engine, "ana", "de", password="same-password")
    second = add_annotator(engine, "ben", "de", password="same-password")
    with Session(engine) as session:
        hashes = [session.get(Annotator, annotator_id).password_hash for annotator_id in (first, second)]
    for stored in hashes:
        assert stored.split("$")[:4] == ["scrypt", "16384", "8", "1"]
        assert "same-password" not in stored
    assert hashes[0] != hashes[1], "a salt per password"


def test_hashes_made_with_other_parameters_still_verify():
    stored = hash_password("pw", n=2**10, r=4, p=2)
    assert stored.startswith("scrypt$1024$4$2$")
    assert verify_password("pw", stored)
    assert not verify_password("pW", stored)
    assert not verify_password("pw", "md5$abc")
    assert not verify_password("pw", accounts.NO_PASSWORD)


def test_authenticate(engine):
    annotator_id = add_annotator(engine, "ana", "de,en", role="researcher", password="correct horse")
    info = authenticate(engine, "ana", "correct horse")
    assert info == AnnotatorInfo(id=annotator_id, name="ana", role="researcher", languages=("deu", "eng"), active=True)
    assert authenticate(engine, "ana", "wrong horse") is None
    assert authenticate(engine, "nobody", "correct horse") is None


def test_unknown_user_costs_a_hash_verification_too(engine, monkeypatch):
    add_annotator(engine, "ana", "de", password="pw-ana-1234")
    calls: list[str] = []
    real_verify, real_compare = accounts.verify_password, accounts.hmac.compare_digest
    compared: list[bytes] = []

    def verify(password: str, stored: str) -> bool:
        calls.append(stored)
        return real_verify(password, stored)

    def compare(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real_compare(a, b)

    monkeypatch.setattr(accounts, "verify_password", verify)
    monkeypatch.setattr(accounts.hmac, "compare_digest", compare)
    assert authenticate(engine, "nobody", "pw-ana-1234") is None
    assert authenticate(engine, "ana", "bad") is None
    assert len(calls) == 2 and all(stored.startswith("scrypt$16384$8$1$") for stored in calls)
    assert calls[0] != calls[1], "the unknown user is checked against a dummy hash, not ana's"
    assert len(compared) == 2, "both comparisons run in constant time"


def test_account_without_password_cannot_log_in(engine):
    add_annotator(engine, "sim-deu-1", "de", password=None)
    for attempt in ("", "!", "None"):
        assert authenticate(engine, "sim-deu-1", attempt) is None


def test_refusals(engine):
    add_annotator(engine, "ana", "de", password=PASSWORD)
    cases = [
        (lambda: add_annotator(engine, "ana", "en", password=PASSWORD), "already exists"),
        (lambda: add_annotator(engine, "ben", "klingonish", password=PASSWORD), "klingonish"),
        (lambda: add_annotator(engine, "ben", "de", role="boss", password=PASSWORD), "annotator, researcher, admin"),
        (lambda: add_annotator(engine, "ben", "", password=PASSWORD), "at least one language"),
        (lambda: add_annotator(engine, "", "de", password=PASSWORD), "1 to 200 characters"),
        (lambda: add_annotator(engine, "ben", "de", password=""), "must not be empty"),
        (lambda: add_annotator(engine, "ben", "de", password="9-letters"), "at least 10 characters"),
        (lambda: set_languages(engine, "ana", []), "at least one language"),
        (lambda: set_role(engine, "ana", "boss"), "choose one of"),
        (lambda: set_active(engine, "nobody", False), "no annotator 'nobody'"),
    ]
    for call, message in cases:
        with pytest.raises(AccountError, match=message):
            call()
    table = list_annotators(engine)
    assert table["name"].tolist() == ["ana"] and table.loc[0, "languages"] == "deu"


def test_researchers_may_read_no_language(engine):
    researcher = add_annotator(engine, "rita", [], role="researcher", password=PASSWORD)
    set_role(engine, researcher, "admin")
    assert list_annotators(engine).loc[0, "role"] == "admin"
    with pytest.raises(AccountError, match="at least one language"):
        set_role(engine, researcher, "annotator")


def test_change_password(engine):
    annotator_id = add_annotator(engine, "ana", "de", password="old-password")
    with pytest.raises(AccountError, match="current password is wrong"):
        change_password(engine, annotator_id, "new-password", old_password="not-it")
    assert authenticate(engine, "ana", "old-password") is not None
    change_password(engine, "ana", "new-password", old_password="old-password")
    assert authenticate(engine, "ana", "old-password") is None
    assert authenticate(engine, "ana", "new-password") is not None
    change_password(engine, annotator_id, "admin-reset")  # an admin resets without the old one
    assert authenticate(engine, "ana", "admin-reset") is not None


def test_deactivation_blocks_login_and_routing_and_releases_claims(engine, make_study):
    make_study(engine, {("mmmu", "deu"): 3})
    annotator_id = add_annotator(engine, "ana", "de", password="pw-ana-1234")
    assert claim_next(engine, annotator_id) is not None
    set_active(engine, "ana", False)
    assert authenticate(engine, "ana", "pw-ana-1234") is None
    with pytest.raises(UnknownAnnotatorError, match="deactivated"):
        claim_next(engine, annotator_id)
    with Session(engine) as session:
        assert session.scalars(select(Assignment.status)).all() == ["released"]
    set_active(engine, annotator_id, True)
    assert authenticate(engine, "ana", "pw-ana-1234") is not None


def test_dropping_a_language_releases_its_claims(engine, make_study):
    make_study(engine, {("mmmu", "deu"): 2, ("mmmu", "eng"): 2})
    annotator_id = add_annotator(engine, "ana", "de", password=None)
    other = add_annotator(engine, "ben", "en", password=None)
    claim_next(engine, annotator_id)
    claim_next(engine, other)
    set_languages(engine, annotator_id, "en")
    set_languages(engine, other, "en,de")  # keeps English: ben's claim stays
    with Session(engine) as session:
        statuses = dict(session.execute(select(Assignment.annotator_id, Assignment.status)).all())
    assert statuses == {annotator_id: "released", other: "claimed"}


def test_get_account_sees_changes_made_after_sign_in(engine):
    annotator_id = add_annotator(engine, "eve", ["de"], role="annotator", password="pw-eve-1234")
    signed_in = authenticate(engine, "eve", "pw-eve-1234")
    accounts.set_role(engine, annotator_id, "researcher")
    accounts.set_languages(engine, annotator_id, ["fr", "en"])
    now = accounts.get_account(engine, annotator_id)
    assert (signed_in.role, now.role) == ("annotator", "researcher")
    assert now.languages == ("eng", "fra")
    accounts.set_active(engine, annotator_id, False)
    assert accounts.get_account(engine, annotator_id).active is False
    assert accounts.get_account(engine, 10_000) is None


def test_new_passwords_need_ten_characters_except_the_demo_accounts(engine):
    with pytest.raises(AccountError, match="at least 10 characters"):
        add_annotator(engine, "ana", "de", password="123456789")
    annotator_id = add_annotator(engine, "ana", "de", password="1234567890")
    for short in ("x", "123456789"):
        with pytest.raises(AccountError, match="at least 10 characters"):
            set_password(engine, annotator_id, short)
        with pytest.raises(AccountError, match="at least 10 characters"):
            change_password(engine, "ana", short, old_password="1234567890")
    assert authenticate(engine, "ana", "1234567890") is not None, "a refused change changes nothing"
    add_annotator(engine, "demo-user", "de", password="demo", min_password_length=len("demo"))
    assert authenticate(engine, "demo-user", "demo") is not None


def test_admin_reset_sets_the_password_and_ends_the_sessions(engine):
    from annotator.access.sessions import account_for_token, create_session

    annotator_id = add_annotator(engine, "ana", "de", password="old-password")
    token = create_session(engine, annotator_id)
    assert account_for_token(engine, token).id == annotator_id
    set_password(engine, annotator_id, "new-password")
    assert authenticate(engine, "ana", "old-password") is None
    assert authenticate(engine, "ana", "new-password").id == annotator_id
    assert account_for_token(engine, token) is None, "a reset signs out whoever held the old password"
    with pytest.raises(AccountError, match="no annotator"):
        set_password(engine, 10_000, "long-enough-password")


def test_deactivation_ends_the_sessions(engine):
    from annotator.access.sessions import account_for_token, create_session

    annotator_id = add_annotator(engine, "ana", "de", password=PASSWORD)
    token = create_session(engine, annotator_id)
    set_active(engine, annotator_id, False)
    set_active(engine, annotator_id, True)
    assert account_for_token(engine, token) is None
