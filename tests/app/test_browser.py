"""End to end in a real browser: ``streamlit run app.py`` on a fresh demo, driven by Chromium.

An annotator signs in and labels three items with the keyboard shortcuts alone, signs out; a
researcher signs in and finds the new labels counted and the estimates on the dashboard.
Screenshots of both pages are taken on every run; they replace the README's in
``docs/screenshots/`` when ``IFL_UPDATE_SCREENSHOTS=1`` (else they go to the test's temporary
folder, so a test run leaves the working tree clean). Needs Debian's ``/usr/bin/chromium``
(``scripts/test`` installs it); skipped where it is missing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest

from annotator import accounts, routing
from annotator.demo import build_demo
from annotator.estimates import study_estimates
from annotator.languages import query_language_class
from annotator.sampling import design_report
from annotator.storage import make_engine

from browser_support import (  # noqa: F401  (fixtures)
    BROWSER_MARKS,
    README_SCREENSHOTS,
    ROOT,
    VIEWPORT,
    WAIT_MS,
    browser,
    metric,
    server,
    sign_in,
)

pytestmark = BROWSER_MARKS


#: Question 2 and 3: answer -> (shortcut, the answer's button key suffix).
ANSWER_KEYS = {
    "matches_gold": {True: ("1", "yes"), False: ("2", "no"), None: ("3", "na")},
    "correct": {True: ("4", "yes"), False: ("5", "no"), None: ("6", "na")},
}


def keys_for(label: pd.Series, language_key: str) -> list[tuple[str, str]]:
    """(key to press, key of the button it selects) for the three questions."""
    keys = [(language_key, "lang_query" if language_key == "q" else "lang_english")]
    for question, answers in ANSWER_KEYS.items():
        value = None if pd.isna(label[question]) else bool(label[question])
        shortcut, name = answers[value]
        keys.append((shortcut, f"{question}_{name}"))
    return keys


def next_item(engine, annotator_id: int, after: str | None, timeout: float = 60) -> str:
    """The completion the annotator holds once it is another than ``after`` (the app claims it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = routing.progress(engine, annotator_id).holding
        if held is not None and held != after:
            return held
        time.sleep(0.2)
    raise AssertionError(f"the app claimed no new item after {after!r}")


def test_label_with_the_keyboard_then_see_the_dashboard(server: str, browser, module_demo: Path, tmp_path: Path) -> None:
    shots = README_SCREENSHOTS if os.environ.get("IFL_UPDATE_SCREENSHOTS") == "1" else tmp_path
    from playwright.sync_api import expect

    engine = make_engine(f"sqlite:///{module_demo}")
    anna = accounts.authenticate(engine, "anna", "demo")
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)

    # A research page's URL, opened before anyone signed in (the server's first run), is not
    # served: Streamlit says so and runs the app, which asks to sign in.
    page.goto(f"{server}/dashboard")
    expect(page.get_by_role("dialog")).to_contain_text("Page not found")
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="Dashboard")).to_have_count(0)

    page.goto(server)
    sign_in(page, "anna")
    expect(page.get_by_role("heading", name="Annotate")).to_be_visible()
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    total = metric(page, "Labeled by me in total")
    expect(total).to_have_text("0")

    # Label three items with keys alone, truthfully (the demo's oracle says what is right);
    # an item whose answer is in a third language would need the list, so it is skipped (S).
    demo = build_demo("small", seed=0)
    truth = demo.oracle.set_index("completion_id")
    shown = demo.completions.set_index("id")
    labeled = skipped = 0
    held = None
    while labeled < 3:
        assert skipped < 15, "the demo should offer items in the query language or English"
        held = next_item(engine, anna.id, after=held)
        text = (str(shown.loc[held, "completion"]).strip().splitlines() or ["(empty answer)"])[0][:40]
        expect(page.get_by_test_id("stText").filter(has_text=text).first).to_be_visible()
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()  # the run that shows it has finished
        label = truth.loc[held]
        page.evaluate("document.activeElement && document.activeElement.blur()")  # keys go to the page
        language = query_language_class(shown.loc[held, "query_language"])
        language_key = {language: "q", "english": "e"}.get(label["answer_language"])
        if language_key is None:
            page.keyboard.press("s")
            skipped += 1
            continue
        for key, button in keys_for(label, language_key):
            page.keyboard.press(key)
            expect(page.locator(f".st-key-{button} [data-testid='stBaseButton-primary']")).to_be_visible()
        if labeled == 2:
            expect(page.get_by_test_id("stToast")).to_have_count(0)  # the last save's toast has gone
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "annotate.png"))
        page.keyboard.press("Control+Enter")
        labeled += 1
        expect(total).to_have_text(str(labeled))
        stored = routing.undo_last(engine, anna.id)
        assert (stored.completion_id, stored.answer_language) == (held, label["answer_language"])
    assert routing.progress(engine, anna.id).labeled_total == 3

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    sign_in(page, "rosa")
    page.get_by_role("link", name="Dashboard").click()
    expected = study_estimates(engine)
    expect(metric(page, "Labels so far")).to_have_text(str(expected.labels.annotations))
    first = expected.ifl.sort_values(["benchmark", "model"]).iloc[0]  # the cell shown first
    cell = expected.ifl[(expected.ifl["model"] == first["model"]) & (expected.ifl["benchmark"] == first["benchmark"])]
    dsl = cell[cell["estimator"] == "dsl"]["estimate"].iloc[0]
    expect(metric(page, "DSL (debiased)").first).to_have_text(f"{dsl:+.3f}")
    expect(page.locator(".st-key-chart_ifl .main-svg").first).to_be_visible()
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1500})  # room for the forest plot
    page.wait_for_timeout(1500)  # let the plot finish drawing
    page.screenshot(path=str(shots / "dashboard.png"))
    assert (shots / "annotate.png").stat().st_size > 10_000 and (shots / "dashboard.png").stat().st_size > 10_000

    # The gold standard downloads with anna's labels in it.
    page.get_by_role("link", name="Export").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Gold standard (CSV)").click()
    gold = pd.read_csv(download.value.path(), na_filter=False)
    assert len(gold) == int(design_report(engine)["drawn"].sum())
    assert (gold["annotator_1_name"] == "anna").sum() + (gold["annotator_2_name"] == "anna").sum() == 3
    page.close()
    engine.dispose()
