"""Shared by the browser tests: a Streamlit server on the module's demo copy, Debian's chromium
through Playwright, and the small page actions every browser test needs.

Fixtures here are imported into each browser test module (``from tests.app.browser_support
import *`` is avoided: import the names you use)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no browser at {CHROMIUM} (apt-get install chromium)"),
]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
README_SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1440, "height": 1000}
WAIT_MS = 60_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer within {timeout} s:\n{log.read_text()}")


@contextmanager
def streamlit_server(database: Path, log: Path) -> Iterator[str]:
    """``streamlit run app.py`` on a free localhost port and the SQLite file ``database``; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, IFL_DATABASE_URL=f"sqlite:///{database}")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(module_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the module's demo copy."""
    with streamlit_server(module_demo, tmp_path_factory.mktemp("server") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(server: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def sign_in(page, name: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=WAIT_MS)


def metric(page, label: str):
    """The value element of the ``st.metric`` with ``label``."""
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")
