"""Sign-in that lasts across reloads, and a limit on guessing passwords.

**Sessions.** Signing in creates a random token the browser keeps (a cookie) and a row in
``sign_in_sessions`` that holds only the token's SHA-256, so a copy of the database signs
nobody in. A token is good until it expires (``IFL_SESSION_HOURS``, default 12), the person
signs out, or the account's password is set or the account deactivated (``annotator.access.accounts``).

**Throttling.** Failed sign-ins are counted per account name and per client address in
``sign_in_failures``, whether or not the name exists, so neither the answer nor the delay tells
anyone which names do. After ``free_failures`` failures in a row every further one locks the
name (or client) for an exponentially growing time, up to ``max_lock``; while a lock stands no
password is even checked. A client has more free failures than a name, because a team behind one
proxy or NAT shares an address. Each attempt is counted *before* its password is checked, so
parallel guesses cannot slip past the count; a success then takes its own count back.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from annotator.access.accounts import AccountError, AnnotatorInfo, _info, authenticate
from annotator.storage import session_scope
from db.models import Annotator, SignInFailure, SignInSession, utcnow

__all__ = [
    "SESSION_HOURS_ENV",
    "SignInAttempt",
    "ThrottlePolicy",
    "account_for_token",
    "create_session",
    "revoke_session",
    "session_hours",
    "sign_in",
]

log = logging.getLogger(__name__)

SESSION_HOURS_ENV = "IFL_SESSION_HOURS"
DEFAULT_SESSION_HOURS = 12.0
_TOKEN_BYTES = 32
_KEY_LENGTH = 300  # sign_in_failures.key


def session_hours() -> float:
    """How long a sign-in lasts: ``IFL_SESSION_HOURS`` (a positive number), default 12."""
    raw = os.environ.get(SESSION_HOURS_ENV, "").strip()
    if not raw:
        return DEFAULT_SESSION_HOURS
    try:
        hours = float(raw)
    except ValueError:
        hours = math.nan
    if not (math.isfinite(hours) and hours > 0):
        raise AccountError(f"{SESSION_HOURS_ENV}={raw!r} is not a positive number of hours")
    return hours


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; every stored timestamp is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def create_session(
    engine: Engine, annotator_id: int, *, now: datetime | None = None, hours: float | None = None
) -> str:
    """A new sign-in session of the account; returns the token for the browser (stored only hashed)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    lifetime = timedelta(hours=hours if hours is not None else session_hours())
    with session_scope(engine, write=True) as session:
        session.execute(delete(SignInSession).where(SignInSession.expires_at < now))  # no longer good for anything
        session.add(
            SignInSession(
                token_hash=_token_hash(token), annotator_id=int(annotator_id), created_at=now, expires_at=now + lifetime
            )
        )
    return token


def account_for_token(engine: Engine, token: str | None, *, now: datetime | None = None) -> AnnotatorInfo | None:
    """The account a token signs in, as stored now; None when the token is unknown, expired,
    revoked, or its account deactivated."""
    if not token:
        return None
    now = now or utcnow()
    with session_scope(engine) as session:
        row = session.execute(
            select(SignInSession.expires_at, SignInSession.revoked_at, Annotator)
            .join(Annotator, Annotator.id == SignInSession.annotator_id)
            .where(SignInSession.token_hash == _token_hash(token))
        ).one_or_none()
        if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now or not row.Annotator.active:
            return None
        return _info(row.Annotator)


def revoke_session(engine: Engine, token: str | None, *, now: datetime | None = None) -> None:
    """End the session of ``token`` (sign-out); the token signs nobody in afterwards."""
    if not token:
        return
    with session_scope(engine, write=True) as session:
        session.execute(
            update(SignInSession)
            .where((SignInSession.token_hash == _token_hash(token)) & SignInSession.revoked_at.is_(None))
            .values(revoked_at=now or utcnow())
        )


@dataclass(frozen=True)
class ThrottlePolicy:
    """When failed sign-ins start to lock a name or a client, and for how long."""

    free_failures_per_account: int = 5
    free_failures_per_client: int = 20
    first_lock: timedelta = timedelta(seconds=1)
    max_lock: timedelta = timedelta(minutes=15)
    #: A failure this long after the previous one starts the count afresh.
    forget_after: timedelta = timedelta(hours=1)

    def lock_for(self, failures: int, free: int) -> timedelta | None:
        """The lock after the ``failures``-th failure in a row: none while free, then doubling."""
        if failures < free:
            return None
        doublings = min(failures - free, 30)  # 2**30 s is far past any sensible max_lock
        return min(self.first_lock * 2**doublings, self.max_lock)


DEFAULT_POLICY = ThrottlePolicy()


@dataclass(frozen=True)
class SignInAttempt:
    """The outcome of one sign-in: the account, or how long to wait (None: just wrong)."""

    account: AnnotatorInfo | None
    retry_after: timedelta | None = None


def _keys(name: str, client: str | None, policy: ThrottlePolicy) -> list[tuple[str, int]]:
    account_key = f"account:{name.strip()}"[:_KEY_LENGTH]
    client_key = f"client:{client or 'local'}"[:_KEY_LENGTH]
    return [(account_key, policy.free_failures_per_account), (client_key, policy.free_failures_per_client)]


def _row(session: Session, key: str, now: datetime) -> SignInFailure:
    row = session.scalars(select(SignInFailure).where(SignInFailure.key == key).with_for_update()).one_or_none()
    if row is None:
        row = SignInFailure(key=key, failures=0, last_failure_at=now, locked_until=None)
        session.add(row)
        session.flush()
    return row


def _count_attempt(
    engine: Engine, keys: list[tuple[str, int]], now: datetime, policy: ThrottlePolicy
) -> timedelta | None:
    """Refuse while a lock stands (returns the wait); else count the attempt as a failure."""
    with session_scope(engine, write=True) as session:
        # Counts that would start afresh anyway, under no lock: kept, they would only pile up.
        session.execute(
            delete(SignInFailure).where(
                (SignInFailure.last_failure_at < now - policy.forget_after)
                & (SignInFailure.locked_until.is_(None) | (SignInFailure.locked_until < now))
                & SignInFailure.key.not_in([key for key, _ in keys])
            )
        )
        rows = [(_row(session, key, now), free) for key, free in keys]
        waits = [_aware(row.locked_until) - now for row, _ in rows if row.locked_until is not None]
        wait = max(waits, default=timedelta(0))
        if wait > timedelta(0):
            return wait
        for row, free in rows:
            if now - _aware(row.last_failure_at) > policy.forget_after:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            lock = policy.lock_for(row.failures, free)
            row.locked_until = now + lock if lock is not None else None
            if lock is not None:
                log.warning("sign-in locked for %r for %s after %d failed attempts", row.key, lock, row.failures)
    return None


def _take_back(engine: Engine, keys: list[tuple[str, int]]) -> None:
    """A success: the name's count is cleared; the client's loses this attempt and the lock the
    attempt itself may have set (its next failure locks it again)."""
    (account_key, _), (client_key, _) = keys
    with session_scope(engine, write=True) as session:
        session.execute(delete(SignInFailure).where(SignInFailure.key == account_key))
        row = session.scalars(select(SignInFailure).where(SignInFailure.key == client_key).with_for_update()).one()
        row.failures = max(row.failures - 1, 0)
        row.locked_until = None


def sign_in(
    engine: Engine,
    name: str,
    password: str,
    client: str | None = None,
    *,
    now: datetime | None = None,
    policy: ThrottlePolicy = DEFAULT_POLICY,
) -> SignInAttempt:
    """Check a sign-in under the throttle.

    ``client`` is the address the attempt came from (None: this machine). The answer is the
    same for a wrong password and an unknown name; a locked name or client gets the wait.
    """
    now = now or utcnow()
    keys = _keys(str(name), client, policy)
    for attempt in range(2):
        try:
            wait = _count_attempt(engine, keys, now, policy)
            break
        except IntegrityError:  # two first failures of a key at once: the row exists now
            if attempt:
                raise
    if wait is not None:
        log.info("sign-in refused while locked: %r", [key for key, _ in keys])
        return SignInAttempt(account=None, retry_after=wait)
    account = authenticate(engine, name, password)
    if account is None:
        log.info("failed sign-in: %r", [key for key, _ in keys])
        return SignInAttempt(account=None)
    _take_back(engine, keys)
    return SignInAttempt(account=account)
