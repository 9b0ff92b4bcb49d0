"""In chromium, against a running server: a label given through the routing service reaches a
researcher's open dashboard by its own refresh (no reload, no throttle), and the export page
offers every download without computing anything to open."""

from __future__ import annotations

from pathlib import Path

from browser_support import (  # noqa: F401  (fixtures)
    BROWSER_MARKS,
    VIEWPORT,
    WAIT_MS,
    browser,
    metric,
    server,
    sign_in,
)

from annotator.access import accounts
from annotator.analysis.estimates import label_count, study_estimates
from annotator.annotation import routing
from annotator.storage import make_engine

pytestmark = BROWSER_MARKS


def test_a_label_reaches_the_open_dashboard_by_itself(server: str, browser, module_demo: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    engine = make_engine(f"sqlite:///{module_demo}")
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page.goto(server)
    sign_in(page, "rosa")
    if page.get_by_role("heading", name="Dashboard").count() == 0:
        page.get_by_role("link", name="Dashboard").click()
    labels = metric(page, "Labels so far")
    expect(labels).to_have_text(str(label_count(engine).annotations))
    page.screenshot(path=str(tmp_path / "before.png"))

    anna = accounts.authenticate(engine, "anna", "demo")
    item = routing.claim_next(engine, anna.id)
    routing.submit(engine, anna.id, item.completion_id, "english", True, True)
    expected = label_count(engine).annotations

    # No reload and no click: the dashboard's fragment refreshes on its own and recomputes.
    expect(labels).to_have_text(str(expected))
    expect(page.get_by_text("newer label(s) will be included")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "after.png"))
    ifl = study_estimates(engine).ifl
    first = ifl.sort_values(["benchmark", "model"]).iloc[0]  # the cell the page shows first
    dsl = ifl[
        (ifl["model"] == first["model"]) & (ifl["benchmark"] == first["benchmark"]) & (ifl["estimator"] == "dsl")
    ]["estimate"].iloc[0]
    expect(metric(page, "DSL (debiased)").first).to_have_text(f"{dsl:+.3f}")

    page.get_by_role("link", name="Export").click()
    expect(page.get_by_role("heading", name="Export")).to_be_visible()
    for name in ("DSL input (CSV)", "All estimates (CSV)", "ifl (HTML)"):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    page.screenshot(path=str(tmp_path / "export.png"))
    page.close()
    engine.dispose()
