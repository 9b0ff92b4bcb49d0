"""The Sample design page in a real browser (Debian's Chromium): preview both allocations' predicted
widths, top up, draw a replacement; each message shows where the button was pressed, the page's
numbers are re-read after the action, the inputs of a finished action are emptied, and the
database holds exactly what was asked.

Screenshots go to the test's temporary folder (printed paths) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

from browser_support import (  # noqa: F401  (fixtures)
    BROWSER_MARKS,
    VIEWPORT,
    WAIT_MS,
    browser,
    server,
    sign_in,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.annotation.reads import current_sample_id
from annotator.design.report import design_report, sample_rounds
from annotator.storage import make_engine
from db.models import Sample

pytestmark = BROWSER_MARKS


def settled(page) -> None:
    """Wait until the run the last action started has finished."""
    from playwright.sync_api import expect

    page.wait_for_timeout(300)  # let the rerun start before checking that it has ended
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=WAIT_MS)


def test_preview_top_up_and_draw_show_and_store_what_was_asked(
    server: str, browser, module_demo: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    engine = make_engine(f"sqlite:///{module_demo}")
    first = current_sample_id(engine)
    before = int(design_report(engine)["drawn"].sum())
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server)
    sign_in(page, "rosa")
    page.get_by_role("link", name="Sample design").click()
    expect(page.get_by_role("heading", name="Sample design")).to_be_visible(timeout=WAIT_MS)
    settled(page)

    # Preview: the surrogate-informed allocation, with both allocations' predicted widths side by side.
    page.get_by_text("Surrogate-informed", exact=True).click()
    settled(page)
    page.get_by_role("button", name="Preview the allocation and the predicted interval widths").click()
    widths = page.locator(".st-key-sample_widths")
    expect(widths).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Surrogate-informed:", exact=False).first).to_be_visible(timeout=WAIT_MS)
    widths.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "design-preview.png"))
    print(f"screenshot: {tmp_path / 'design-preview.png'}")

    # Top up: the message shows by the button, the page says the new size, the input starts afresh.
    total = page.get_by_role("spinbutton", name="New total of items")
    total.fill(str(before + 100))  # in a form: sent together when Top up is pressed
    page.get_by_role("spinbutton", name="Seed").first.fill("5")
    page.get_by_role("button", name="Top up").click()
    settled(page)
    message = page.get_by_test_id("stAlertContentSuccess").filter(has_text=f"{before + 100} of")
    expect(message).to_be_attached(timeout=WAIT_MS)  # under the button
    expect(page.get_by_test_id("stToast").filter(has_text=f"{before + 100} of")).to_be_in_viewport(timeout=WAIT_MS)
    expect(page.get_by_text(f"now {before + 100:,} items")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text(f"Sample {first}: {before + 100:,} items")).to_be_visible(timeout=WAIT_MS)
    expect(total).to_have_value(str(before + 200), timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / "design-top-up.png"))
    print(f"screenshot: {tmp_path / 'design-top-up.png'}")
    assert int(design_report(engine)["drawn"].sum()) == before + 100
    rounds = sample_rounds(engine)
    assert rounds[["round", "seed", "n_total"]].values.tolist()[-1] == [2, 5, before + 100]

    # Draw a replacement: refused until confirmed; the numbers typed (no Enter: the form sends
    # them with the button) are the ones used; afterwards the confirmation is cleared.
    draw = page.get_by_role("button", name="Draw the sample")
    page.get_by_role("spinbutton", name="Sample size").fill("650")
    page.get_by_role("spinbutton", name="Seed").nth(1).fill("3")
    draw.click()
    settled(page)
    expect(page.get_by_test_id("stAlertContentError").filter(has_text="Nothing was drawn")).to_be_visible(
        timeout=WAIT_MS
    )
    assert len(sample_rounds(engine)) == 2  # still the first sample, topped up once
    page.get_by_test_id("stCheckbox").filter(has_text="Replace the current sample").click()
    draw.click()
    settled(page)
    message = page.get_by_test_id("stAlertContentSuccess").filter(has_text="650 of")
    expect(message).to_be_attached(timeout=WAIT_MS)
    # The preview above the button closes with the rerun, so the page shortens: the toast is
    # what stays in view (the message under the button can land above the window).
    expect(page.get_by_test_id("stToast").filter(has_text="650 of")).to_be_in_viewport(timeout=WAIT_MS)
    confirm = page.get_by_role("checkbox", name="Replace the current sample", exact=False)
    expect(confirm).not_to_be_checked(timeout=WAIT_MS)
    expect(page.get_by_text(f"Sample {first + 1}: 650 items")).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / "design-draw.png"))
    print(f"screenshot: {tmp_path / 'design-draw.png'}")

    with Session(engine) as session:
        samples = session.execute(
            select(Sample.id, Sample.n_target, Sample.seed, Sample.rounds).order_by(Sample.id)
        ).all()
        design = session.get(Sample, first + 1).design
    assert [tuple(row) for row in samples] == [(first, before + 100, 0, 2), (first + 1, 650, 3, 1)]
    assert design["allocation"] == "surrogate" and design["confidence_source"] == "lid176"
    assert int(design_report(engine)["drawn"].sum()) == 650
    page.close()
    engine.dispose()
