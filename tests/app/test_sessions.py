"""Sign-in that lasts, throttled guessing, no account from an unauthenticated page, and a server
process that stops when told (issues 8 and 11).

The throttle and the sessions are checked through the services on SQLite and PostgreSQL with an
explicit clock (``now=``), never by sleeping; the app through AppTest; ``ifl app`` as a process.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from annotator import cli
from annotator.access import accounts, sessions
from annotator.access.accounts import AccountError, add_annotator
from annotator.access.sessions import (
    ThrottlePolicy,
    account_for_token,
    create_session,
    revoke_session,
    sign_in,
)
from annotator.storage import make_engine, upgrade_database
from db.models import Annotator, Assignment, Completion, SignInFailure, SignInSession

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PASSWORD = "right-password"


def texts(at: AppTest, element: str) -> str:
    return "\n".join(str(item.value) for item in getattr(at, element))


# --------------------------------------------------------------------------- sessions


def test_a_session_lasts_until_it_expires_and_only_its_hash_is_stored(engine: Engine) -> None:
    ana = add_annotator(engine, "ana", "de", password=PASSWORD)
    token = create_session(engine, ana, now=T0, hours=12)
    assert account_for_token(engine, token, now=T0 + timedelta(hours=11, minutes=59)).id == ana
    assert account_for_token(engine, token, now=T0 + timedelta(hours=12)) is None
    assert account_for_token(engine, token + "x", now=T0) is None
    assert account_for_token(engine, None, now=T0) is None
    with Session(engine) as session:
        stored = session.scalars(select(SignInSession.token_hash)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()], "the token itself is never stored"


def test_expired_sessions_and_stale_failure_counts_are_cleared_away(engine: Engine) -> None:
    ana = add_annotator(engine, "ana", "de", password=PASSWORD)
    create_session(engine, ana, now=T0, hours=1)
    sign_in(engine, "someone", "wrong-password", client="192.0.2.9", now=T0)
    later = T0 + timedelta(hours=2)
    kept = create_session(engine, ana, now=later)
    sign_in(engine, "ana", "wrong-password", now=later)
    with Session(engine) as session:
        assert session.scalars(select(SignInSession.token_hash)).all() == [hashlib.sha256(kept.encode()).hexdigest()]
        assert sorted(session.scalars(select(SignInFailure.key))) == ["account:ana", "client:local"]


def test_sign_out_revokes_the_token(engine: Engine) -> None:
    ana = add_annotator(engine, "ana", "de", password=PASSWORD)
    kept, revoked = create_session(engine, ana), create_session(engine, ana)
    revoke_session(engine, revoked)
    assert account_for_token(engine, revoked) is None
    assert account_for_token(engine, kept).id == ana, "other browsers stay signed in"


def test_session_hours_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IFL_SESSION_HOURS", raising=False)
    assert sessions.session_hours() == 12
    monkeypatch.setenv("IFL_SESSION_HOURS", "2.5")
    assert sessions.session_hours() == 2.5
    for bad in ("abc", "0", "-1", "inf"):
        monkeypatch.setenv("IFL_SESSION_HOURS", bad)
        with pytest.raises(AccountError, match="IFL_SESSION_HOURS"):
            sessions.session_hours()


# --------------------------------------------------------------------------- throttling


def fail_many(engine: Engine, name: str, n: int, start: datetime, client: str | None = None) -> tuple[datetime, list]:
    """``n`` wrong passwords for ``name``, each after the lock of the one before has passed."""
    now, outcomes = start, []
    for _ in range(n):
        attempt = sign_in(engine, name, "wrong-password", client, now=now)
        assert attempt.account is None and attempt.retry_after is None, "waited out, so counted"
        outcomes.append(attempt)
        with Session(engine) as session:
            locked_until = session.scalar(
                select(SignInFailure.locked_until).where(SignInFailure.key == f"account:{name}")
            )
        now = max(now, sessions._aware(locked_until) if locked_until else now) + timedelta(milliseconds=1)
    return now, outcomes


def test_twenty_wrong_passwords_then_the_right_one_waits_for_the_lock(engine: Engine) -> None:
    ana = add_annotator(engine, "ana", "de", password=PASSWORD)
    now, _ = fail_many(engine, "ana", 19, T0)
    last = sign_in(engine, "ana", "wrong-password", now=now)
    assert last.account is None
    with Session(engine) as session:
        row = session.get(SignInFailure, "account:ana")
        locked_until = sessions._aware(row.locked_until)
        assert row.failures == 20
    assert locked_until - now == ThrottlePolicy().max_lock, "1 s after 5 failures, doubling, at most 15 min"

    right = sign_in(engine, "ana", PASSWORD, now=now + timedelta(seconds=1))
    assert right.account is None and right.retry_after == locked_until - now - timedelta(seconds=1)
    just_before = sign_in(engine, "ana", PASSWORD, now=locked_until - timedelta(milliseconds=1))
    assert just_before.account is None and just_before.retry_after == timedelta(milliseconds=1)
    after = sign_in(engine, "ana", PASSWORD, now=locked_until)
    assert after.account is not None and after.account.id == ana
    with Session(engine) as session:
        assert session.get(SignInFailure, "account:ana") is None, "a success clears the name's count"
    assert sign_in(engine, "ana", "wrong-password", now=locked_until).retry_after is None


def test_the_delay_doubles_after_five_failures(engine: Engine) -> None:
    add_annotator(engine, "ana", "de", password=PASSWORD)
    now, locks = T0, []
    for _ in range(9):
        sign_in(engine, "ana", "wrong-password", now=now)
        with Session(engine) as session:
            until = session.get(SignInFailure, "account:ana").locked_until
        locks.append(sessions._aware(until) - now if until else None)
        now = now + (locks[-1] or timedelta(0)) + timedelta(seconds=1)
    assert locks == [None] * 4 + [timedelta(seconds=s) for s in (1, 2, 4, 8, 16)]


def test_unknown_names_get_the_same_answers_and_delays(engine: Engine) -> None:
    add_annotator(engine, "ana", "de", password=PASSWORD)
    outcomes = {}
    for name in ("ana", "nobody"):
        now, _ = fail_many(engine, name, 7, T0, client=f"10.0.0.{len(name)}")
        outcomes[name] = [
            sign_in(engine, name, PASSWORD, f"10.0.0.{len(name)}", now=now - timedelta(seconds=1)) for _ in range(2)
        ]
    assert [attempt.retry_after for attempt in outcomes["ana"]] == [
        attempt.retry_after for attempt in outcomes["nobody"]
    ]
    assert all(attempt.account is None for attempts in outcomes.values() for attempt in attempts)


def test_one_client_guessing_many_names_is_locked(engine: Engine) -> None:
    add_annotator(engine, "ana", "de", password=PASSWORD)
    for index in range(20):  # 20 names, 1 failure each: no name reaches its limit
        sign_in(engine, f"guess-{index}", "wrong-password", client="203.0.113.7", now=T0)
    refused = sign_in(engine, "ana", PASSWORD, client="203.0.113.7", now=T0)
    assert refused.account is None and refused.retry_after == timedelta(seconds=1)
    assert sign_in(engine, "ana", PASSWORD, client="198.51.100.2", now=T0).account is not None, "other clients may"


def test_a_success_takes_its_own_count_back(engine: Engine) -> None:
    add_annotator(engine, "ana", "de", password=PASSWORD)
    for _ in range(4):
        sign_in(engine, "ana", "wrong-password", now=T0)
    assert sign_in(engine, "ana", PASSWORD, now=T0).account is not None
    with Session(engine) as session:
        assert session.get(SignInFailure, "account:ana") is None
        assert session.get(SignInFailure, "client:local").failures == 4


def test_parallel_guesses_cannot_slip_past_the_count(engine: Engine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    add_annotator(engine, "ana", "de", password=PASSWORD)
    with ThreadPoolExecutor(max_workers=8) as pool:
        attempts = list(pool.map(lambda _: sign_in(engine, "ana", "wrong-password", now=T0), range(12)))
    refused = [attempt for attempt in attempts if attempt.retry_after is not None]
    assert len(refused) == 7, "5 guesses are checked, then the name is locked, however they race"
    with Session(engine) as session:
        assert session.get(SignInFailure, "account:ana").failures == 5


def test_locks_are_logged(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="annotator.access.sessions"):
        fail_many(engine, "mallory", 5, T0)
    locks = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(locks) == 1 and "account:mallory" in locks[0].getMessage()
    assert "wrong-password" not in caplog.text, "passwords are never logged"


# --------------------------------------------------------------------------- the app


def test_signing_in_opens_a_session_and_signing_out_revokes_it(sign_in, study: Engine) -> None:
    at = sign_in("anna")
    token = at.session_state["session_token"]
    assert account_for_token(study, token).name == "anna"
    at.button(key="sign_out").click().run()
    assert not at.exception
    assert "user" not in at.session_state
    assert account_for_token(study, token) is None


def test_a_revoked_or_expired_session_signs_the_page_out(sign_in, study: Engine) -> None:
    at = sign_in("rosa")
    revoke_session(study, at.session_state["session_token"])  # e.g. signed out in another tab
    at.run()
    assert "user" not in at.session_state
    assert at.button(key="sign_in_submit")


def claimed_by(engine: Engine, name: str) -> int:
    with Session(engine) as session:
        return session.scalar(
            select(func.count())
            .select_from(Assignment)
            .join(Annotator, Annotator.id == Assignment.annotator_id)
            .where(Annotator.name == name, Assignment.status == "claimed")
        )


@pytest.mark.parametrize("name", ["rosa", "admin"])
def test_researchers_and_admins_land_on_the_dashboard_holding_nothing(sign_in, study: Engine, name: str) -> None:
    at = sign_in(name)
    assert not at.exception
    assert [title.value for title in at.title] == ["Dashboard"]
    assert claimed_by(study, name) == 0


def test_only_annotate_claims_and_leaving_it_gives_the_item_back(sign_in, study: Engine) -> None:
    at = sign_in("rosa")
    at.switch_page("pages/label/annotate.py").run()
    assert claimed_by(study, "rosa") == 1
    at.switch_page("pages/study/export.py").run()
    assert not at.exception
    assert claimed_by(study, "rosa") == 0
    at.switch_page("pages/label/annotate.py").run()
    assert claimed_by(study, "rosa") == 1
    at.button(key="sign_out").click().run()
    assert claimed_by(study, "rosa") == 0


def seed_lock(engine: Engine, name: str) -> None:
    """Ten failures for ``name``, the last one now: a 32-second lock."""
    now = datetime.now(UTC)
    for index in range(10):
        sign_in(engine, name, "wrong-password", client="192.0.2.1", now=now - timedelta(seconds=70 * (9 - index)))


def test_the_form_refuses_a_locked_name_alike_whether_it_exists(fresh_app, study: Engine) -> None:
    messages = []
    for name, password in (("anna", "demo"), ("nobody", "demo")):
        seed_lock(study, name)
        at = fresh_app()
        at.text_input(key="sign_in_name").input(name)
        at.text_input(key="sign_in_password").input(password)
        at.button(key="sign_in_submit").click().run()
        assert "user" not in at.session_state
        messages.append(texts(at, "error"))
    assert "Too many failed sign-ins" in messages[0]
    assert [message.split("Try again")[0] for message in messages] == [messages[0].split("Try again")[0]] * 2


def test_an_unauthenticated_session_cannot_create_any_account(app: AppTest, study: Engine) -> None:
    before = accounts.list_annotators(study)
    for name, password in (("admin", "demo-demo-demo"), ("newcomer", "a-new-password")):
        app.text_input(key="sign_in_name").input(name)
        app.text_input(key="sign_in_password").input(password)
        app.button(key="sign_in_submit").click().run()
        assert not app.exception
    assert [button.key for button in app.button] == ["sign_in_submit"], "the form is all there is"
    assert accounts.list_annotators(study)[["id", "name", "role"]].equals(before[["id", "name", "role"]])


def test_an_empty_database_gets_instructions_not_a_demo(empty_url: str, empty_app: AppTest) -> None:
    assert not empty_app.exception
    assert not empty_app.button and not empty_app.text_input
    assert "ifl annotators add NAME --role admin" in texts(empty_app, "info")
    engine = make_engine(empty_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Annotator)) == 0
        assert session.scalar(select(func.count()).select_from(Completion)) == 0
    engine.dispose()


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    upgrade_database(make_engine(url))
    return url


@pytest.fixture
def exec_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """What ``ifl app`` would replace its process with, instead of doing it."""
    calls: list[list[str]] = []
    monkeypatch.setattr(cli.os, "execve", lambda path, argv, env: calls.append([path, *argv]))
    return calls


@pytest.mark.parametrize("flags", [[], ["--no-demo"]])
def test_ifl_app_creates_no_account_unless_asked_for_the_demo(
    db_url: str, exec_calls: list, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    monkeypatch.setattr("annotator.demo.setup.set_up_demo", lambda *a, **k: pytest.fail("demo set up"))
    cli.main(["--db", db_url, "app", "--port", "8599", *flags])
    assert accounts.list_annotators(make_engine(db_url)).empty
    assert len(exec_calls) == 1 and "run" in exec_calls[0] and "8599" in exec_calls[0]


def test_ifl_app_demo_sets_up_the_demo_on_an_empty_database(
    db_url: str, exec_calls: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def fake_demo(engine, size="small", seed=0):
        asked.append(size)
        yield "demo ready"

    monkeypatch.setattr("annotator.demo.setup.set_up_demo", fake_demo)
    cli.main(["--db", db_url, "app", "--demo"])
    assert asked == ["small"] and len(exec_calls) == 1


def test_ifl_annotators_passwd(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    engine = make_engine(db_url)
    add_annotator(engine, "ana", "de", password="old-password")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-new-password\n"))
    cli.main(["--db", db_url, "annotators", "passwd", "ana", "--password-stdin"])
    assert accounts.authenticate(engine, "ana", "a-new-password") is not None
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--db", db_url, "annotators", "passwd", "ana", "--password-stdin"])
    assert exit_info.value.code == 2 and "at least 10 characters" in capsys.readouterr().err
    assert accounts.authenticate(engine, "ana", "a-new-password") is not None


def test_ifl_annotators_passwd_asks_twice(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(db_url)
    add_annotator(engine, "ana", "de", password="old-password")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    answers = iter(["typed-password", "typo-password"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: next(answers))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--db", db_url, "annotators", "passwd", "ana"])
    assert exit_info.value.code == 2
    assert accounts.authenticate(engine, "ana", "old-password") is not None, "a mismatch changes nothing"


def port_is_free(port: int) -> bool:
    """Nothing answers on the port, and a new server could listen on it (as a restart would,
    with SO_REUSEADDR: connections the old server closed may linger in TIME_WAIT)."""
    with socket.socket() as client:
        if client.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET6) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(("::", port))
            server.listen()
        except OSError:
            return False
        return True


def test_sigterm_to_ifl_app_stops_the_server(db_url: str, tmp_path: Path) -> None:
    from live_app import free_port

    port = free_port()
    log = tmp_path / "app.log"
    ifl = Path(sys.executable).with_name("ifl")
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(ifl), "--db", db_url, "app", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        deadline = time.monotonic() + 20
        while not port_is_free(port):
            assert time.monotonic() < deadline, f"port {port} still served after SIGTERM:\n{log.read_text()}"
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
