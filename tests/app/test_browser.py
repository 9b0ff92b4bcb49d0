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
import re
import time
from pathlib import Path

import pandas as pd
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
from sqlalchemy import select, update

from annotator.access import accounts
from annotator.analysis.estimates import study_estimates
from annotator.annotation import reporting, revisions, routing
from annotator.annotation.agreement import adjudication_queue
from annotator.demo.generator import build_demo
from annotator.design.report import design_report
from annotator.ingest.images import record_image_root
from annotator.languages import query_language_class
from annotator.storage import make_engine
from db.models import (
    Adjudication,
    Annotation,
    AnnotationEvent,
    Assignment,
    Completion,
    SampleItem,
)
from pages._common import class_label

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
        held = reporting.progress(engine, annotator_id).holding
        if held is not None and held != after:
            return held
        time.sleep(0.2)
    raise AssertionError(f"the app claimed no new item after {after!r}")


def test_label_with_the_keyboard_then_see_the_dashboard(
    server: str, browser, module_demo: Path, tmp_path: Path
) -> None:
    shots = README_SCREENSHOTS if os.environ.get("IFL_UPDATE_SCREENSHOTS") == "1" else tmp_path
    from playwright.sync_api import expect

    engine = make_engine(f"sqlite:///{module_demo}")
    anna = accounts.authenticate(engine, "anna", "demo")
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)

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
        shows_item(page, snippet(shown.loc[held, "completion"]))
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()  # the run that shows it has finished
        label = truth.loc[held]
        page.evaluate("document.activeElement && document.activeElement.blur()")  # keys go to the page
        language = query_language_class(shown.loc[held, "query_language"])
        language_key = {language: "q", "english": "e"}.get(label["answer_language"])
        if language_key is None:
            skips = reporting.progress(engine, anna.id).skipped_by_me
            press_until(
                page,
                "s",
                lambda skips=skips: reporting.progress(engine, anna.id).skipped_by_me > skips,
                "the skip is stored",
            )
            skipped += 1
            continue
        for key, button in keys_for(label, language_key):
            press_answer(page, key, button)
        if labeled == 2:
            expect(page.get_by_test_id("stToast")).to_have_count(0)  # the last save's toast has gone
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "annotate.png"))
        submit(
            page,
            lambda labeled=labeled: reporting.progress(engine, anna.id).labeled_total == labeled + 1,
            "the label is stored",
        )
        labeled += 1
        expect(total).to_have_text(str(labeled))
        stored = revisions.undo_last(engine, anna.id)
        assert (stored.completion_id, stored.answer_language) == (held, label["answer_language"])
    assert reporting.progress(engine, anna.id).labeled_total == 3

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


# --------------------------------------------------------------------------- labels exactly as given

#: The box's choices in the plan: neither English nor (normally) anyone's query language.
BOX_CHOICES = ["romanian", "other_latin", "none", "french", "chinese"]
QUESTION_KEYS = {"matches_gold": {"1": True, "2": False, "3": None}, "correct": {"4": True, "5": False, "6": None}}
#: Shortcut -> the key of the button it presses.
BUTTONS = {
    "1": "matches_gold_yes",
    "2": "matches_gold_no",
    "3": "matches_gold_na",
    "4": "correct_yes",
    "5": "correct_no",
    "6": "correct_na",
}
PASSWORD = "browser-test-password"


def css_key(key: str) -> str:
    """The class Streamlit gives a keyed element (``st-key-`` and the key, odd characters as -)."""
    return "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())


def sign_in_as(page, server: str, name: str, password: str = PASSWORD) -> None:
    from playwright.sync_api import expect

    page.goto(server)
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=WAIT_MS)


def eventually(check, what: str, timeout: float = 60):
    """``check()``'s first truthy value, polling: the page writes after the key press returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


def snippet(text: str | None) -> str:
    """A piece of an item's text to recognise it on the page by."""
    return (str(text or "").strip().splitlines() or ["(empty answer)"])[0][:40]


def shows_item(page, text: str) -> None:
    """Wait until the page shows the model's answer containing ``text``, and only that one
    (while a run replaces an item, the old one lingers for a moment)."""
    from playwright.sync_api import expect

    shown = page.locator(".st-key-model_answer .ifl-untrusted")
    expect(shown).to_have_count(1)
    expect(shown).to_contain_text(text)


def values(inputs) -> list[str]:
    """The values of every element ``inputs`` matches now (old and new while a run replaces them)."""
    return inputs.evaluate_all("elements => elements.map(element => element.value)")


def wait_idle(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()


def blur(page) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")  # keys go to the page


def stored_labels(engine, annotator_id: int) -> dict[str, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Annotation.completion_id,
                Annotation.answer_language,
                Annotation.matches_gold,
                Annotation.correct,
                Annotation.comment,
            ).where(Annotation.annotator_id == annotator_id)
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def plan(n: int) -> list[dict]:
    """Item by item: how the language is given (q, e or a class for the box) and the keys of
    questions 2 and 3; every answer occurs, and the combinations vary."""
    steps = []
    for i in range(n):
        language = ("q", "e", BOX_CHOICES[(i // 3) % len(BOX_CHOICES)])[i % 3]
        steps.append({"language": language, "matches": "123"[i % 3 - (i // 3) % 2], "correct": "456"[(i // 3) % 3]})
    return steps


def pick(page, box, label: str) -> None:
    """Choose ``label`` in the select box ``box`` (its input) by typing it. A run that replaces the
    page's elements can swallow the typing, so the choice is checked and, if lost, made again."""
    from playwright.sync_api import expect

    for attempt in range(3):
        wait_idle(page)
        box.click()
        page.keyboard.type(label)
        page.keyboard.press("Enter")
        try:
            expect(box).to_have_value(label, timeout=10_000)
            return
        except AssertionError:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")


def language_box(page, form: str):
    """The input of the item's "Another language…" box (its key ends in a version number)."""
    return page.locator(f"[class*='{css_key(f'language_box_{form}_')}'] input")


def choose_in_box(page, form: str, answer_class: str) -> None:
    pick(page, language_box(page, form), class_label(answer_class))
    blur(page)
    wait_idle(page)


def press_until(page, key: str, done, what: str) -> None:
    """Press ``key`` until ``done()``: on a loaded machine a key pressed while a run replaces the
    page can be lost, so it is pressed again if nothing happened within 20 s."""
    for attempt in range(3):
        wait_idle(page)
        blur(page)
        page.keyboard.press(key)
        try:
            eventually(done, what, timeout=20)
            return
        except AssertionError:
            if attempt == 2:
                raise


def submit(page, stored, what: str) -> None:
    """Ctrl+Enter until ``stored()``. A repeated press that lands on the next item is refused
    there, as that item has no answers yet."""
    press_until(page, "Control+Enter", stored, what)


def press_answer(page, key: str, button: str | None = None) -> None:
    """Press ``key`` and wait until its button shows as chosen. A key pressed while a run replaces
    the page can be lost; choosing is idempotent, so it is pressed again then."""
    from playwright.sync_api import expect

    chosen = page.locator(f".{css_key(button or BUTTONS[key])} [data-testid='stBaseButton-primary']")
    for attempt in range(3):
        blur(page)
        page.keyboard.press(key)
        try:
            expect(chosen).to_be_visible(timeout=15_000)
            return
        except AssertionError:
            if attempt == 2:
                raise


def test_labels_are_stored_exactly_as_given_by_keyboard(
    server: str, browser, module_demo: Path, tmp_path: Path
) -> None:
    """Twenty-odd items by keyboard following a plan; the database must hold the plan, nothing else."""
    from playwright.sync_api import expect

    engine = make_engine(f"sqlite:///{module_demo}")
    kai = accounts.add_annotator(engine, "kai", ["de", "en", "fr", "es", "ro"], password=PASSWORD)
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    sign_in_as(page, server, "kai")
    expect(page.get_by_role("heading", name="Annotate")).to_be_visible()
    with engine.connect() as connection:
        rows = connection.execute(select(Completion.id, Completion.query_language, Completion.completion)).all()
    languages = {row[0]: row[1] for row in rows}
    completions = {row[0]: row[2] for row in rows}

    steps = plan(22)
    refuse_at, comment_at, skip_at, revise_at = 3, 7, 11, 16  # refuse_at follows a box answer
    assert isinstance(steps[refuse_at - 1]["language"], str) and steps[refuse_at - 1]["language"] not in ("q", "e")
    expected: dict[str, tuple] = {}
    order: list[str] = []
    skipped = revised_id = held = None
    for number, step in enumerate(steps):
        held = next_item(engine, kai, after=held)
        form = held
        shows_item(page, snippet(completions[held]))
        wait_idle(page)
        blur(page)
        # A fresh item shows nothing chosen: no answer button highlighted, the box empty.
        expect(
            page.locator(
                "[class*='st-key-lang_'] [data-testid='stBaseButton-primary'], "
                "[class*='st-key-matches_gold_'] [data-testid='stBaseButton-primary'], "
                "[class*='st-key-correct_'] [data-testid='stBaseButton-primary']"
            )
        ).to_have_count(0)
        expect(language_box(page, form)).to_have_value("")

        if number == skip_at:
            press_until(page, "s", lambda: reporting.progress(engine, kai).skipped_by_me == 1, "the skip is stored")
            skipped = held
            continue
        if number == revise_at:  # reopen the last label, change question 2, save; then this item
            last = order[-1]
            press_until(page, "u", page.get_by_text("Correcting your label").is_visible, "the last label reopens")
            wait_idle(page)
            old = expected[last]
            new_key = next(key for key, value in QUESTION_KEYS["matches_gold"].items() if value != old[1])
            press_answer(page, new_key)
            revised = (old[0], QUESTION_KEYS["matches_gold"][new_key], *old[2:])
            submit(
                page,
                lambda last=last, revised=revised: stored_labels(engine, kai).get(last) == revised,
                "the correction is stored",
            )
            expected[last] = revised
            revised_id = last
            expect(page.get_by_text("Correcting your label")).to_have_count(0)
            shows_item(page, snippet(completions[held]))
            wait_idle(page)
            blur(page)

        query_class = query_language_class(languages[held])
        language = step["language"]
        if language == "q" and query_class == "english":
            language = "e"  # an English query has one English button, on E
        if number == refuse_at:  # questions 2 and 3 only: refused, nothing stored
            press_answer(page, step["matches"])
            press_answer(page, step["correct"])
            refused = page.get_by_test_id("stAlert").filter(has_text="still open: 1")
            submit(page, refused.is_visible, "the submit is refused")
            wait_idle(page)
            assert held not in stored_labels(engine, kai)
            assert reporting.progress(engine, kai).holding == held
        if language == "q":
            press_answer(page, "q", "lang_query")
            answer_class = query_class
        elif language == "e":
            press_answer(page, "e", "lang_english")
            answer_class = "english"
        else:
            answer_class = language if language != query_class else "other"
            choose_in_box(page, form, answer_class)
        if number != refuse_at:
            press_answer(page, step["matches"])
            press_answer(page, step["correct"])
        comment = None
        if number == comment_at:
            comment = "the answer switches to English half-way"
            field = page.locator(f".{css_key(f'comment_{form}')} input")
            field.fill(comment)
            field.press("Enter")
            wait_idle(page)
            blur(page)
        submit(page, lambda held=held: held in stored_labels(engine, kai), f"label {number} is stored")
        expected[held] = (
            answer_class,
            QUESTION_KEYS["matches_gold"][step["matches"]],
            QUESTION_KEYS["correct"][step["correct"]],
            comment,
        )
        order.append(held)

    eventually(lambda: len(stored_labels(engine, kai)) == len(expected), "every label is stored")
    assert stored_labels(engine, kai) == expected
    answers = {value for label in expected.values() for value in label[1:3]}
    assert answers == {True, False, None}
    assert {label[0] for label in expected.values()} >= {"english", "other_latin", "none"}
    assert [label[3] for label in expected.values()].count(None) == len(expected) - 1
    assert skipped is not None and skipped not in expected
    with engine.connect() as connection:
        events = connection.execute(
            select(AnnotationEvent.completion_id, AnnotationEvent.action, AnnotationEvent.after)
            .where(AnnotationEvent.actor_id == kai)
            .order_by(AnnotationEvent.id)
        ).all()
        skip_status = connection.execute(
            select(Assignment.status)
            .join(SampleItem, SampleItem.id == Assignment.sample_item_id)
            .where(SampleItem.completion_id == skipped, Assignment.annotator_id == kai)
        ).scalar_one()
    assert skip_status == "skipped"
    assert sorted(cid for cid, action, _ in events if action == "create") == sorted(expected)
    updates = [(cid, after) for cid, action, after in events if action == "update"]
    assert [cid for cid, _ in updates] == [revised_id]
    assert updates[0][1]["matches_gold"] == expected[revised_id][1]
    page.close()
    engine.dispose()


def adjudications(engine) -> dict[str, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Adjudication.completion_id,
                Adjudication.answer_language,
                Adjudication.matches_gold,
                Adjudication.correct,
                Adjudication.comment,
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_adjudication_stores_each_ruling_and_empties_the_form(server: str, browser, module_demo: Path) -> None:
    from playwright.sync_api import expect

    engine = make_engine(f"sqlite:///{module_demo}")
    before = adjudications(engine)
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    sign_in_as(page, server, "rosa", "demo")
    page.get_by_role("link", name="Adjudicate").click()
    rulings = [("none", "Can't tell", "No", "an empty answer"), ("german", "Yes", "Yes", None)]
    expected = dict(before)
    for round_, (language, matches, correct, comment) in enumerate(rulings):
        item = adjudication_queue(engine)["completion_id"].iloc[0]
        form = page.get_by_test_id("stForm")
        expect(form).to_contain_text(f"Resolution of item {item}")
        # Empty for every item: no language, no answer chosen, no comment.
        box = page.locator(f".{css_key(f'adj_answer_language_{item}')} input")
        expect(box).to_have_value("")
        expect(form.get_by_test_id("stBaseButton-segmented_controlActive")).to_have_count(0)
        expect(page.locator(f".{css_key(f'adj_comment_{item}')} input")).to_have_value("")
        if round_ == 0:  # recording with no input is refused
            page.get_by_role("button", name="Record the resolution").click()
            expect(page.get_by_test_id("stAlert").filter(has_text="still open")).to_be_visible()
            assert adjudications(engine) == before
        pick(page, box, class_label(language))
        for question, choice in (("matches_gold", matches), ("correct", correct)):
            options = page.locator(f".{css_key(f'adj_{question}_{item}')} button")
            options.filter(has_text=re.compile(f"^{re.escape(choice)}$")).click()
        if comment:
            page.locator(f".{css_key(f'adj_comment_{item}')} input").fill(comment)
        page.get_by_role("button", name="Record the resolution").click()
        answer = {"Yes": True, "No": False, "Can't tell": None}
        expected[item] = (language, answer[matches], answer[correct], comment)
        eventually(lambda item=item: item in adjudications(engine), f"ruling {round_} is stored")
        expect(page.get_by_test_id("stAlert").filter(has_text=f"Resolved {item}")).to_be_visible()
    assert adjudications(engine) == expected
    page.close()
    engine.dispose()


def test_adding_two_accounts_in_a_row(server: str, browser, module_demo: Path) -> None:
    from playwright.sync_api import expect

    engine = make_engine(f"sqlite:///{module_demo}")
    before = set(accounts.list_annotators(engine)["name"])
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    sign_in_as(page, server, "admin", "demo")
    page.get_by_role("link", name="Annotators").click()
    name, password = page.locator(".st-key-new_name input"), page.locator(".st-key-new_password input")
    languages = page.locator(".st-key-new_languages")
    for person, language in (("marta", "Spanish"), ("jonas", "German")):
        # The run after a save replaces the form's elements; wait for the new ones alone.
        eventually(lambda: [*values(name), *values(password)] == ["", ""], "the form is empty")
        expect(languages.get_by_role("button", name=re.compile("^Remove "))).to_have_count(0)
        name.fill(person)
        languages.locator("input").click()
        page.keyboard.type(language)
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        expect(languages.get_by_test_id("stMultiSelectTagsContainer")).to_contain_text(language)
        password.fill(f"{person}-password-1")
        page.get_by_role("button", name="Add account").click()
        eventually(lambda person=person: person in set(accounts.list_annotators(engine)["name"]), f"{person} is added")
        expect(page.get_by_test_id("stAlert").filter(has_text=f"Added {person}")).to_be_visible()
    page.get_by_role("button", name="Add account").click()  # once more on the emptied form: refused kindly
    expect(page.get_by_test_id("stAlert").filter(has_text="name first")).to_be_visible()
    people = accounts.list_annotators(engine).set_index("name")
    assert set(people.index) == before | {"marta", "jonas"}
    assert (people.loc["marta", "languages"], people.loc["jonas", "languages"]) == ("spa", "deu")
    assert accounts.authenticate(engine, "jonas", "jonas-password-1") is not None
    page.close()
    engine.dispose()


def test_right_to_left_text_and_an_image_fit_above_the_fold(
    server: str, browser, module_demo: Path, tmp_path: Path
) -> None:
    """A Hebrew answer is laid out right to left, an English gold answer left to right, and with a
    tall image the questions and Submit still fit a 1400x900 screen."""
    from PIL import Image
    from playwright.sync_api import expect

    engine = make_engine(f"sqlite:///{module_demo}")
    dana = accounts.add_annotator(engine, "dana", ["he"], password=PASSWORD)
    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (600, 1200), (30, 120, 200)).save(root / "tall.png")
    held = routing.claim_next(engine, dana)
    hebrew = "הכלב יושב ליד הבעלים שלו.\nהתמונה צולמה אחר הצהריים."
    with engine.begin() as connection:
        record_image_root(connection, root)
        connection.execute(
            update(Completion)
            .where(Completion.id == held.completion_id)
            .values(
                completion=hebrew,
                prompt="מה קורה בתמונה?",
                gold_answer="A dog sits next to its owner.",
                image_path=str(root / "tall.png"),
            )
        )
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(WAIT_MS)
    sign_in_as(page, server, "dana")
    shows_item(page, hebrew.splitlines()[0])
    page.get_by_text("Guidelines").first.click()  # first visit: they are open; close them
    expect(page.get_by_role("heading", name="What you label")).to_be_hidden()
    wait_idle(page)

    def direction(text: str) -> str:
        element = page.locator(".ifl-untrusted").filter(has_text=text)
        return element.evaluate("element => getComputedStyle(element).direction")

    assert direction(hebrew.splitlines()[0]) == "rtl"
    assert direction("מה קורה בתמונה?") == "rtl"
    assert direction("A dog sits next to its owner.") == "ltr"
    image = page.get_by_test_id("stImage").locator("img").first
    expect(image).to_be_visible()
    assert image.bounding_box()["height"] <= 281

    def bottom(button: str) -> float:
        box = page.get_by_role("button", name=button).bounding_box()
        return box["y"] + box["height"]

    # (polled: the guidelines fold away with an animation)
    eventually(lambda: max(bottom("Submit and next"), bottom("Skip")) <= 900, "Submit and Skip are above the fold")
    page.screenshot(path=str(tmp_path / "annotate_rtl.png"))
    page.get_by_text("Enlarge image").click()
    expect(page.get_by_test_id("stImage").locator("img").nth(1)).to_be_visible()
    assert page.get_by_test_id("stImage").locator("img").nth(1).bounding_box()["height"] > 281

    blur(page)
    for key in ("q", "1", "4"):
        press_answer(page, key, "lang_query" if key == "q" else None)
    submit(page, lambda: held.completion_id in stored_labels(engine, dana), "dana's label is stored")
    assert stored_labels(engine, dana) == {held.completion_id: ("hebrew", True, True, None)}
    page.close()
    engine.dispose()
