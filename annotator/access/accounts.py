"""Annotator accounts: who may label, in which languages, with which role.

Routing sends an annotator only items whose query language they read, so the languages
are stored canonically (ISO 639-3, whatever form was typed) as one row each. Passwords are
kept as salted ``hashlib.scrypt`` hashes whose string records the cost parameters
(``scrypt$n$r$p$salt$hash``), so the parameters can be raised later without breaking old
hashes. Accounts that must never log in (the simulated annotators) get no password at all:
their hash is a marker no password verifies against. New passwords have at least
``MIN_PASSWORD_LENGTH`` characters (the demo study's accounts, made only in demo mode, are the
one documented exception); setting a password or deactivating an account revokes the account's
sign-in sessions, so a reset after a leak locks the old holder out at once.

Functions that manage an account take it by id or by name, because the CLI speaks names and
the pages ids.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from annotator.languages import UnknownLanguageError, canonical_language
from annotator.storage import session_scope
from db.models import (
    Annotation,
    Annotator,
    AnnotatorLanguage,
    Assignment,
    SampleItem,
    SignInSession,
    utcnow,
)
from db.vocabulary import ROLES

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "AccountError",
    "AnnotatorInfo",
    "add_annotator",
    "authenticate",
    "change_password",
    "get_account",
    "hash_password",
    "list_annotators",
    "set_active",
    "set_languages",
    "set_password",
    "set_role",
    "verify_password",
]

# 2**14 x 8 x 1 is the interactive-login cost the scrypt paper and OWASP suggest (16 MiB, ~50 ms).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SALT_BYTES, _KEY_BYTES = 16, 32
#: Stored for accounts without a password; it cannot parse as a scrypt hash, so nothing verifies.
NO_PASSWORD = "!"
#: Shortest new password: guessing is throttled, but a 1-character password falls to a few tries.
MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """An account operation was refused; the message says why and what to do."""


@dataclass(frozen=True)
class AnnotatorInfo:
    """What the app needs to know about a logged-in person (never the password hash)."""

    id: int
    name: str
    role: str
    languages: tuple[str, ...]
    active: bool


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash of ``password`` as ``scrypt$n$r$p$salt$hash`` (base64 fields)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_KEY_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; compares in constant time.

    The cost parameters come from the stored string, so hashes made with other parameters
    still verify. A malformed hash (or the no-password marker) verifies nothing.
    """
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        salt_bytes, expected_bytes = base64.b64decode(salt), base64.b64decode(expected)
        n_, r_, p_ = int(n), int(r), int(p)
    except ValueError:
        return False
    key = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt_bytes,
        n=n_,
        r=r_,
        p=p_,
        dklen=len(expected_bytes),
        maxmem=256 * n_ * r_ + 2**20,
    )
    return hmac.compare_digest(key, expected_bytes)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verified against when the user is unknown, so "no such user" takes as long as "wrong password".
    return hash_password(secrets.token_hex(16))


def _canonical_languages(languages: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(languages, str):
        languages = languages.split(",")
    codes: set[str] = set()
    for value in languages:
        if not str(value).strip():
            continue
        try:
            codes.add(canonical_language(value))
        except UnknownLanguageError as error:
            raise AccountError(f"{error}: give ISO 639-1/639-3 codes or English names (de, deu, German)") from None
    return tuple(sorted(codes))


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def _check_languages_for_role(role: str, languages: tuple[str, ...]) -> None:
    # An annotator without languages would only ever see an empty queue.
    if role == "annotator" and not languages:
        raise AccountError("an annotator needs at least one language they read (e.g. --languages de,en)")


def _check_password(password: str | None, min_length: int = MIN_PASSWORD_LENGTH) -> str:
    if password is None:
        return NO_PASSWORD
    if not isinstance(password, str) or not password:
        raise AccountError("the password must not be empty")
    if len(password) < min_length:
        raise AccountError(f"the password must have at least {min_length} characters; nothing was changed")
    return hash_password(password)


def _revoke_sessions(session: Session, annotator_id: int) -> None:
    """End every open sign-in session of the account (see ``annotator.access.sessions``)."""
    session.execute(
        update(SignInSession)
        .where((SignInSession.annotator_id == annotator_id) & SignInSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _get(session: Session, annotator: int | str) -> Annotator:
    condition = Annotator.name == annotator.strip() if isinstance(annotator, str) else Annotator.id == int(annotator)
    row = session.scalars(select(Annotator).where(condition)).one_or_none()
    if row is None:
        raise AccountError(f"no annotator {annotator!r}; `ifl annotators list` shows who exists")
    return row


def _release_claims(session: Session, annotator_id: int, keep_languages: tuple[str, ...] | None) -> None:
    """Give back open claims at once instead of waiting for their leases to run out."""
    condition = (Assignment.annotator_id == annotator_id) & (Assignment.status == "claimed")
    if keep_languages is not None:
        dropped = select(SampleItem.id).where(SampleItem.query_language.not_in(keep_languages))
        condition = condition & Assignment.sample_item_id.in_(dropped)
    session.execute(update(Assignment).where(condition).values(status="released", finished_at=utcnow()))


def add_annotator(
    engine: Engine,
    name: str,
    languages: Iterable[str] | str,
    role: str = "annotator",
    *,
    password: str | None,
    min_password_length: int = MIN_PASSWORD_LENGTH,
) -> int:
    """Create an account and return its id.

    ``languages`` may be codes or names in any form :func:`canonical_language` accepts (a
    comma-separated string too). ``password=None`` makes an account that cannot log in
    (simulated annotators, service accounts). Only the demo set-up lowers
    ``min_password_length``, for its documented ``demo`` password.
    """
    name = str(name).strip()
    if not name or len(name) > 200:
        raise AccountError("the name must have 1 to 200 characters")
    role = _check_role(role)
    codes = _canonical_languages(languages)
    _check_languages_for_role(role, codes)
    password_hash = _check_password(password, min_password_length)
    with session_scope(engine, write=True) as session:
        if session.scalar(select(Annotator.id).where(Annotator.name == name)) is not None:
            raise AccountError(f"an annotator named {name!r} already exists")
        annotator = Annotator(name=name, role=role, password_hash=password_hash, active=True)
        annotator.languages = [AnnotatorLanguage(language=code) for code in codes]
        session.add(annotator)
        try:
            session.flush()
        except IntegrityError:  # added by someone else since the check
            raise AccountError(f"an annotator named {name!r} already exists") from None
        return annotator.id


def set_languages(engine: Engine, annotator: int | str, languages: Iterable[str] | str) -> tuple[str, ...]:
    """Replace the languages an annotator reads; returns the stored ISO 639-3 codes.

    Claims on items in a dropped language are released, so they go to someone who reads it.
    """
    codes = _canonical_languages(languages)
    with session_scope(engine, write=True) as session:
        row = _get(session, annotator)
        _check_languages_for_role(row.role, codes)
        row.languages = [AnnotatorLanguage(language=code) for code in codes]
        _release_claims(session, row.id, keep_languages=codes)
    return codes


def set_role(engine: Engine, annotator: int | str, role: str) -> None:
    """Change the role (``annotator``, ``researcher`` or ``admin``)."""
    role = _check_role(role)
    with session_scope(engine, write=True) as session:
        row = _get(session, annotator)
        _check_languages_for_role(role, tuple(language.language for language in row.languages))
        row.role = role


def set_active(engine: Engine, annotator: int | str, active: bool) -> None:
    """Activate or deactivate an account; deactivating releases its open claims and ends its
    sign-in sessions at once."""
    with session_scope(engine, write=True) as session:
        row = _get(session, annotator)
        row.active = bool(active)
        if not active:
            _release_claims(session, row.id, keep_languages=None)
            _revoke_sessions(session, row.id)


def change_password(
    engine: Engine, annotator: int | str, new_password: str, *, old_password: str | None = None
) -> None:
    """Set a new password; when ``old_password`` is given (self-service) it must match first.

    Every sign-in session of the account ends: whoever knew the old password is signed out.
    """
    new_hash = _check_password(new_password)
    with session_scope(engine, write=True) as session:
        row = _get(session, annotator)
        if old_password is not None and not verify_password(old_password, row.password_hash):
            raise AccountError("the current password is wrong; nothing was changed")
        row.password_hash = new_hash
        _revoke_sessions(session, row.id)


def set_password(engine: Engine, annotator_id: int, password: str) -> None:
    """An admin's reset: the account's new password, without the old one.

    Raises :class:`AccountError` for a password shorter than ``MIN_PASSWORD_LENGTH`` or an
    unknown account; the account's sign-in sessions end.
    """
    change_password(engine, int(annotator_id), password)


def authenticate(engine: Engine, name: str, password: str) -> AnnotatorInfo | None:
    """The account for ``name`` when ``password`` matches and it is active, else None.

    Unknown names are verified against a dummy hash, so the response time does not tell an
    attacker which names exist.
    """
    with session_scope(engine) as session:
        row = session.scalars(select(Annotator).where(Annotator.name == str(name).strip())).one_or_none()
        stored = row.password_hash if row is not None and row.password_hash != NO_PASSWORD else None
        matches = verify_password(password, stored if stored is not None else _dummy_hash())
        if row is None or stored is None or not matches or not row.active:
            return None
        return _info(row)


def _info(row: Annotator) -> AnnotatorInfo:
    return AnnotatorInfo(
        id=row.id,
        name=row.name,
        role=row.role,
        languages=tuple(sorted(language.language for language in row.languages)),
        active=row.active,
    )


def get_account(engine: Engine, annotator_id: int) -> AnnotatorInfo | None:
    """The account as stored now (None if it is gone), so a signed-in session sees role,
    language and deactivation changes on its next page run rather than at its next sign-in."""
    with session_scope(engine) as session:
        row = session.get(Annotator, annotator_id)
        return _info(row) if row is not None else None


def list_annotators(engine: Engine) -> pd.DataFrame:
    """One row per account: id, name, role, languages (comma-separated), active, created_at,
    n_annotations. Never the password hash."""
    with session_scope(engine) as session:
        languages = session.execute(
            select(AnnotatorLanguage.annotator_id, AnnotatorLanguage.language).order_by(AnnotatorLanguage.language)
        ).all()
        counts = dict(
            session.execute(select(Annotation.annotator_id, func.count()).group_by(Annotation.annotator_id)).all()
        )
        rows = session.execute(
            select(Annotator.id, Annotator.name, Annotator.role, Annotator.active, Annotator.created_at).order_by(
                Annotator.name
            )
        ).all()
    by_annotator: dict[int, list[str]] = {}
    for annotator_id, language in languages:
        by_annotator.setdefault(annotator_id, []).append(language)
    return pd.DataFrame(
        [
            {
                "id": row.id,
                "name": row.name,
                "role": row.role,
                "languages": ",".join(by_annotator.get(row.id, [])),
                "active": bool(row.active),
                "created_at": row.created_at,
                "n_annotations": int(counts.get(row.id, 0)),
            }
            for row in rows
        ],
        columns=["id", "name", "role", "languages", "active", "created_at", "n_annotations"],
    )
