"""Fixtures for the app tests: a small demo study built once, copied fresh for every test.

The demo is built through the services (``annotator.demo.setup``), the way ``ifl app`` sets
up an empty database; each test gets its own copy, so tests that label or draw samples never
see each other's writes, and the app under test finds it through ``IFL_DATABASE_URL``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from annotator.access.accounts import AnnotatorInfo
from annotator.demo.setup import DEMO_PASSWORD, set_up_demo
from annotator.storage import make_engine, upgrade_database

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
#: Generous: the first dashboard run computes the estimates (seconds on the small demo).
TIMEOUT = 120


def build_demo(path: Path) -> None:
    """A small demo study (completions, language ID, sample, accounts, half labeled) at ``path``."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    for _ in set_up_demo(engine, size="small", seed=0):
        pass
    engine.dispose()


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (the backup API also copies what is still in the WAL)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    build_demo(path)
    return path


@pytest.fixture(scope="module")
def module_demo(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo study shared by one test module (for a server that runs across tests)."""
    path = tmp_path_factory.mktemp("module-demo") / "study.sqlite"
    copy_database(demo_template, path)
    return path


@pytest.fixture
def demo_url(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh copy of the demo study, named to the app by ``IFL_DATABASE_URL``."""
    path = tmp_path / "study.sqlite"
    copy_database(demo_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("IFL_DATABASE_URL", url)
    yield url
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def study(demo_url: str) -> Iterator[Engine]:
    """An engine on the test's copy of the demo, for preparing and checking through the services."""
    engine = make_engine(demo_url)
    yield engine
    engine.dispose()


def start_app() -> AppTest:
    """The app, run once (the sign-in page)."""
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()


def sign_in_as(name: str, password: str = DEMO_PASSWORD) -> AppTest:
    """The app after signing in as ``name`` through the sign-in form."""
    at = start_app()
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(password)
    return at.button(key="sign_in_submit").click().run()


@pytest.fixture
def fresh_app(demo_url: str) -> Callable[[], AppTest]:
    """``fresh_app()``: the app on the test's demo copy, run once (the sign-in page)."""
    return start_app


@pytest.fixture
def sign_in(demo_url: str) -> Callable[..., AppTest]:
    """``sign_in("anna")``: the app on the test's demo copy, signed in."""
    return sign_in_as


@pytest.fixture
def app(demo_url: str) -> AppTest:
    """The app on the test's demo copy, not signed in."""
    return start_app()


def run_page_as(page: str, user: AnnotatorInfo | None) -> AppTest:
    """A page script run on its own, as if its URL were served with ``user`` signed in."""
    at = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT)
    if user is not None:
        at.session_state["user"] = user
    return at.run()


@pytest.fixture
def run_page(demo_url: str) -> Callable[[str, AnnotatorInfo | None], AppTest]:
    """``run_page("pages/study/dashboard.py", user)``: one page without the app shell."""
    return run_page_as


@pytest.fixture
def empty_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, empty database, named to the app by ``IFL_DATABASE_URL``."""
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    monkeypatch.setenv("IFL_DATABASE_URL", url)
    yield url
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def empty_app(empty_url: str) -> AppTest:
    """The app on a new, empty database."""
    return start_app()
