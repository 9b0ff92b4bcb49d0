"""Sign-in in a real browser (Debian's Chromium): a deep link survives signing in, a reload keeps
the session, sign-out revokes the cookie's token, researchers start on the Dashboard holding no
claim, no request leaves the machine on any page, and an empty database offers no way in.

Screenshots go to the test's temporary folder (printed paths) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser_support import (  # noqa: F401  (fixtures)
    BROWSER_MARKS,
    ROOT,
    VIEWPORT,
    WAIT_MS,
    browser,
    server,
    sign_in,
)
from live_app import served_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.storage import make_engine, upgrade_database
from db.models import Annotator, Assignment, SignInSession

pytestmark = BROWSER_MARKS

#: Every page an admin can open, by its navigation title (each page's heading is the same).
ADMIN_PAGES = ["Annotate", "Dashboard", "Adjudicate", "Sample design", "Data", "Export", "Guidelines", "Annotators"]
SESSION_COOKIE = "ifl_session"


def claims(engine, name: str) -> int:
    with Session(engine) as session:
        return session.scalar(
            select(func.count())
            .select_from(Assignment)
            .join(Annotator, Annotator.id == Assignment.annotator_id)
            .where(Annotator.name == name, Assignment.status == "claimed")
        )


def settled(page) -> None:
    """Wait until the run the last action started has finished."""
    from playwright.sync_api import expect

    page.wait_for_timeout(300)  # let the rerun start before checking that it has ended
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()


def test_deep_link_reload_sign_out_and_no_request_leaves_the_machine(
    server: str, browser, module_demo: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    engine = make_engine(f"sqlite:///{module_demo}")
    context = browser.new_context(viewport=VIEWPORT)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)

    # The server's first run is Streamlit's legacy multipage mode (the folder is called pages/),
    # which knows no /dashboard yet; every later session routes it (see the README).
    page.goto(server)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    settled(page)
    # A deep link opened signed out shows the form, not a "Page not found" dialog ...
    page.goto(f"{server}/dashboard")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "deep_link_signed_out.png"))
    # ... and lands on its page after signing in; a researcher holds nothing there.
    sign_in(page, "rosa")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert urlparse(page.url).path == "/dashboard"
    settled(page)
    assert claims(engine, "rosa") == 0

    cookie = next(cookie for cookie in context.cookies() if cookie["name"] == SESSION_COOKIE)
    assert cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    with Session(engine) as session:
        rows = session.execute(select(SignInSession.revoked_at).join(Annotator).where(Annotator.name == "rosa")).all()
    assert len(rows) == 1 and rows[0].revoked_at is None

    # A reload keeps the session and the page.
    page.reload()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "dashboard_after_reload.png"))

    # Sign-out revokes the token: the old cookie, put back, signs nobody in.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    with Session(engine) as session:
        assert session.scalar(select(SignInSession.revoked_at).join(Annotator).where(Annotator.name == "rosa"))
    settled(page)
    assert SESSION_COOKIE not in {c["name"] for c in context.cookies()}, "the dead cookie is deleted too"
    context.add_cookies([cookie])
    page.goto(f"{server}/dashboard")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    # Every page an admin may open; only Annotate claims, and leaving it gives the item back.
    sign_in(page, "admin")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    for title in ADMIN_PAGES:
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        settled(page)
        assert claims(engine, "admin") == (1 if title == "Annotate" else 0), title
        page.screenshot(path=str(tmp_path / f"page_{title.replace(' ', '_').lower()}.png"))
    page.reload()
    expect(page.get_by_role("heading", name="Annotators", exact=True)).to_be_visible()
    settled(page)

    favicon = page.locator("link[rel~='icon']").first.get_attribute("href")
    assert favicon and urlparse(page.url).netloc in f"{server}{favicon}" and "material" not in favicon
    hosts = {urlparse(url).hostname for url in requested if urlparse(url).scheme not in ("data", "blob")}
    assert hosts == {"127.0.0.1"}, sorted(url for url in requested if urlparse(url).hostname != "127.0.0.1")
    print(f"screenshots in {tmp_path}; {len(requested)} requests, all to 127.0.0.1")
    context.close()


@pytest.fixture
def empty_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A server on a new, empty database (what ``ifl app`` on a team's database starts with)."""
    database = tmp_path / "empty.sqlite"
    upgrade_database(make_engine(f"sqlite:///{database}"))
    with served_app(f"sqlite:///{database}", tmp_path / "streamlit.log") as app:
        yield app.url, database


def test_an_empty_database_offers_no_way_to_create_an_account(empty_server, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    url, database = empty_server
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    for address in (url, f"{url}/annotators"):
        page.goto(address)
        expect(page.get_by_text("ifl annotators add NAME --role admin")).to_be_visible()
        settled(page)
        main = page.get_by_test_id("stMain")
        expect(main.get_by_role("button")).to_have_count(0)
        expect(main.get_by_role("textbox")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "empty_database.png"))
    engine = make_engine(f"sqlite:///{database}")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Annotator)) == 0
    page.close()


def test_a_deep_link_as_the_servers_first_request_finds_its_page(browser, tmp_path: Path) -> None:
    """``ifl app`` starts Streamlit out of its legacy ``pages/`` mode: before, the first visitor of a
    fresh server got a "Page not found" dialog over the sign-in form (blocking it) and a sidebar
    that listed the helper modules (``_common``, ``_study``) as pages."""
    from playwright.sync_api import expect

    database = tmp_path / "empty.sqlite"
    upgrade_database(make_engine(f"sqlite:///{database}"))
    with served_app(f"sqlite:///{database}", tmp_path / "ifl_app.log") as app:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{app.url}/dashboard")  # the server's very first page load
        expect(page.get_by_text("ifl annotators add NAME --role admin")).to_be_visible(timeout=WAIT_MS)
        settled(page)
        page.screenshot(path=str(tmp_path / "first_request.png"))
        expect(page.get_by_text("Page not found")).to_have_count(0)
        expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
        page.close()
