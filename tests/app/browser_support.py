"""Shared by the browser tests: the app served on the module's demo copy (:mod:`live_app`),
Debian's chromium through Playwright, and the small page actions every browser test needs.

Fixtures here are imported into each browser test module (``from tests.app.browser_support
import *`` is avoided: import the names you use)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_app import CHROMIUM, CHROMIUM_ARGS, served_app

ROOT = Path(__file__).resolve().parents[2]
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no browser at {CHROMIUM} (apt-get install chromium)"),
]
README_SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1440, "height": 1000}
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def server(module_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the module's demo copy."""
    with served_app(f"sqlite:///{module_demo}", tmp_path_factory.mktemp("server") / "streamlit.log") as app:
        yield app.url


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
