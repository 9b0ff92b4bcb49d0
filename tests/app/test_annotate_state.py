"""The labeling pages keep no state across items, refuse what was not given, and fail kindly.

AppTest runs the pages' scripts (not a browser: tests/app/test_browser.py covers what the
browser itself keeps); what was stored is read back from the database.
"""

from __future__ import annotations

import html
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from streamlit.testing.v1 import AppTest

from annotator.access import accounts
from annotator.annotation import reporting, routing
from annotator.annotation.agreement import adjudication_queue
from annotator.annotation.guidelines import DEFAULT_GUIDELINES, get_guidelines
from annotator.ingest.images import record_image_root
from annotator.languages import query_language_class
from db.models import Adjudication, Annotation, Annotator, Completion

HOSTILE = "<b>bold</b> <img src=x onerror=alert(1)> **stars** [link](http://x.test)\n# heading\nשלום, עולם."


def open_page(at: AppTest, page: str) -> AppTest:
    return at.switch_page(page).run()


def messages(at: AppTest, kind: str) -> str:
    """The text of the page's ``kind`` messages (warning, error, ...) without Markdown escapes."""
    return "\n".join(str(message.value) for message in getattr(at, kind)).replace("\\", "")


def form_of(at: AppTest) -> str:
    return at.session_state["item"].completion_id


def box_of(at: AppTest) -> str:
    """The key of the item's "Another language…" box."""
    return next(box.key for box in at.selectbox if box.key.startswith(f"language_box_{form_of(at)}_"))


def query_button(at: AppTest) -> str:
    english = query_language_class(at.session_state["item"].query_language) == "english"
    return "lang_english" if english else "lang_query"


def selected(at: AppTest) -> set[str]:
    """Keys of the answer buttons shown as chosen."""
    return {
        button.key
        for button in at.button
        if button.key and button.key.startswith(("lang_", "matches_", "correct_")) and button.proto.type == "primary"
    }


def labels_of(engine: Engine, name: str) -> dict[str, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Annotation.completion_id,
                Annotation.answer_language,
                Annotation.matches_gold,
                Annotation.correct,
                Annotation.comment,
            )
            .join(Annotator, Annotator.id == Annotation.annotator_id)
            .where(Annotator.name == name)
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def account_id(engine: Engine, name: str) -> int:
    return int(accounts.list_annotators(engine).set_index("name").loc[name, "id"])


def set_item_fields(engine: Engine, completion_id: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(update(Completion).where(Completion.id == completion_id).values(**values))


# --------------------------------------------------------------------------- annotate


def test_each_item_starts_empty_and_a_submit_sends_only_its_own_answers(sign_in, study: Engine) -> None:
    at = sign_in("anna")
    first = form_of(at)
    at.selectbox(key=box_of(at)).select("german").run()
    at.button(key="matches_gold_no").click().run()
    at.button(key="correct_na").click().run()
    at.text_input(key=f"comment_{first}").input("only on the first").run()
    at.button(key="submit").click().run()
    second = form_of(at)
    assert second != first and not at.exception

    assert at.selectbox(key=box_of(at)).value is None and f"answer_language_{second}" not in at.session_state
    assert at.text_input(key=f"comment_{second}").value == ""
    assert selected(at) == set()
    at.button(key="matches_gold_yes").click().run()
    at.button(key="correct_no").click().run()
    at.button(key="submit").click().run()
    assert "still open: 1" in messages(at, "warning")
    assert form_of(at) == second and second not in labels_of(study, "anna")

    at.button(key=query_button(at)).click().run()
    at.button(key="submit").click().run()
    language = query_language_class(
        study.connect().execute(select(Completion.query_language).where(Completion.id == second)).scalar_one()
    )
    assert labels_of(study, "anna") == {
        first: ("german", False, None, "only on the first"),
        second: (language, True, False, None),
    }


def test_after_a_correction_the_item_on_screen_starts_empty_and_saves(sign_in, study: Engine) -> None:
    at = sign_in("anna")
    first = form_of(at)
    at.button(key="lang_english").click().run()
    at.button(key="matches_gold_yes").click().run()
    at.button(key="correct_yes").click().run()
    at.button(key="submit").click().run()
    second = form_of(at)
    at.button(key="matches_gold_no").click().run()  # begun, then left for a correction
    at.button(key="undo").click().run()
    assert selected(at) == {"lang_english", "matches_gold_yes", "correct_yes"}, "the label being corrected"
    at.button(key="correct_na").click().run()
    at.button(key="submit").click().run()
    assert labels_of(study, "anna") == {first: ("english", True, None, None)}
    assert form_of(at) == second and selected(at) == set()
    at.button(key="lang_english").click().run()
    at.button(key="matches_gold_no").click().run()
    at.button(key="correct_no").click().run()
    at.button(key="submit").click().run()
    assert not at.warning and not at.error
    assert labels_of(study, "anna") == {first: ("english", True, None, None), second: ("english", False, False, None)}


def test_an_english_query_has_one_english_button(sign_in, study: Engine) -> None:
    accounts.set_languages(study, "anna", ["en"])
    at = sign_in("anna")
    assert query_language_class(at.session_state["item"].query_language) == "english"
    keys = {button.key for button in at.button}
    assert "lang_english" in keys and "lang_query" not in keys
    assert [button.label for button in at.button if button.key.startswith("lang_")] == ["English"]


def test_left_in_my_languages_is_what_i_can_still_label(sign_in, study: Engine) -> None:
    at = sign_in("anna")
    mine = reporting.progress(study, account_id(study, "anna"))
    left = next(metric for metric in at.metric if metric.label == "Left in my languages")
    assert left.value == str(mine.left_for_me) and mine.left_for_me <= mine.left_in_my_languages
    assert "not counted" in left.proto.help


def test_every_question_has_help_and_the_guidelines_open_on_a_first_visit(sign_in) -> None:
    at = sign_in("anna")
    titles = [markdown for markdown in at.markdown if markdown.value.startswith("**")]
    assert [title.value[:4] for title in titles] == ["**1.", "**2.", "**3."]
    assert all(title.proto.help for title in titles)
    guidelines = next(expander for expander in at.expander if expander.label == "Guidelines")
    assert guidelines.proto.expanded
    assert DEFAULT_GUIDELINES.splitlines()[0].lstrip("# ") in guidelines.markdown[0].value

    at.button(key=query_button(at)).click().run()
    at.button(key="matches_gold_yes").click().run()
    at.button(key="correct_yes").click().run()
    at.button(key="submit").click().run()
    guidelines = next(expander for expander in at.expander if expander.label == "Guidelines")
    assert not guidelines.proto.expanded, "closed once the annotator has labeled"


def test_a_storage_error_on_submit_keeps_the_answers(sign_in, study: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO annotations", {}, sqlite3.OperationalError("database is locked"))

    at = sign_in("anna")
    item = form_of(at)
    monkeypatch.setattr(routing, "submit", locked)
    at.button(key="lang_english").click().run()
    at.button(key="matches_gold_no").click().run()
    at.button(key="correct_na").click().run()
    at.text_input(key=f"comment_{item}").input("typed before the failure").run()
    at.button(key="submit").click().run()
    assert not at.exception
    assert "Could not save, please retry" in messages(at, "error")
    assert form_of(at) == item
    assert selected(at) == {"lang_english", "matches_gold_no", "correct_na"}
    assert at.session_state[f"answer_language_{item}"] == "english"
    assert at.text_input(key=f"comment_{item}").value == "typed before the failure"
    assert labels_of(study, "anna") == {}

    monkeypatch.undo()  # the database answers again: the same answers go through
    at.button(key="submit").click().run()
    assert labels_of(study, "anna") == {item: ("english", False, None, "typed before the failure")}


def test_a_storage_error_while_loading_says_retry(sign_in, monkeypatch: pytest.MonkeyPatch) -> None:
    at = sign_in("anna")
    item = form_of(at)

    def locked(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(reporting, "progress", locked)
    at.run()
    assert not at.exception and "Could not load your work, please retry" in messages(at, "error")
    monkeypatch.undo()
    at.button(key="retry").click().run()
    assert not at.exception and not at.error and form_of(at) == item


def test_untrusted_text_is_shown_verbatim_in_its_own_direction(sign_in, study: Engine) -> None:
    held = routing.claim_next(study, account_id(study, "anna"))
    set_item_fields(study, held.completion_id, completion=HOSTILE, prompt="מה רואים בתמונה?")
    at = sign_in("anna")
    assert form_of(at) == held.completion_id
    blocks = [block.value for block in at.html]
    assert 'dir="auto"' in blocks[0] and all("<b>" not in block and "<img" not in block for block in blocks)
    assert html.escape(HOSTILE) in "\n".join(blocks)
    assert HOSTILE in "\n".join(html.unescape(block) for block in blocks)
    shown_elsewhere = "\n".join(str(element.value) for element in [*at.markdown, *at.caption])
    assert "bold" not in shown_elsewhere and "שלום" not in shown_elsewhere


@pytest.mark.parametrize(
    "content",
    [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, None],
    ids=["not-an-image", "truncated-png", "outside-the-root"],
)
def test_a_broken_image_shows_a_caption_and_skip_still_works(
    sign_in, study: Engine, tmp_path: Path, content: bytes | None
) -> None:
    root = tmp_path / "images"
    root.mkdir()
    with study.begin() as connection:
        record_image_root(connection, root)
    path = root / "broken.png"
    if content is None:
        path = tmp_path / "outside.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n")
    else:
        path.write_bytes(content)
    held = routing.claim_next(study, account_id(study, "anna"))
    set_item_fields(study, held.completion_id, image_path=str(path))
    at = sign_in("anna")
    assert not at.exception and form_of(at) == held.completion_id
    assert "image could not be shown" in [caption.value for caption in at.caption]
    at.button(key="skip").click().run()
    assert not at.exception and form_of(at) != held.completion_id
    assert reporting.progress(study, account_id(study, "anna")).skipped_by_me == 1


# --------------------------------------------------------------------------- guidelines


def test_a_researcher_edits_the_guidelines_annotators_read(sign_in, study: Engine) -> None:
    at = open_page(sign_in("rosa"), "pages/study/guidelines.py")
    assert not at.exception and at.text_area(key="guidelines_text").value == DEFAULT_GUIDELINES
    text = "### Our rules\nMixed answers: the **first** sentence decides."
    at.text_area(key="guidelines_text").input(text)
    at.button(key="guidelines_save").click().run()
    assert not at.exception and get_guidelines(study) == text
    at.text_area(key="guidelines_text").input("   ")
    at.button(key="guidelines_save").click().run()
    assert at.error and get_guidelines(study) == text, "empty guidelines are refused"

    anna = sign_in("anna")
    guidelines = next(expander for expander in anna.expander if expander.label == "Guidelines")
    assert guidelines.markdown[0].value == text


# --------------------------------------------------------------------------- adjudicate


def adjudications(engine: Engine) -> dict[str, tuple]:
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


def test_adjudication_forms_start_empty_and_refuse_no_input(sign_in, study: Engine) -> None:
    before = adjudications(study)
    at = open_page(sign_in("rosa"), "pages/study/adjudicate.py")
    first = at.selectbox(key="adjudicate_item_0").value
    shown = next(frame.value for frame in at.dataframe if "annotator" in frame.value.columns)
    assert set(shown["matches_gold"]) | set(shown["correct"]) <= {"Yes", "No", "Can't tell"}, "No and NA differ"
    at.button(key="adj_submit").click().run()
    assert "still open: 1, 2, 3" in messages(at, "warning")
    assert adjudications(study) == before

    at.selectbox(key=f"adj_answer_language_{first}").select("none")
    at.segmented_control(key=f"adj_matches_gold_{first}").set_value("na")
    at.segmented_control(key=f"adj_correct_{first}").set_value("no")
    at.text_input(key=f"adj_comment_{first}").input("empty answer")
    at.button(key="adj_submit").click().run()
    assert not at.exception
    assert adjudications(study) == {**before, first: ("none", None, False, "empty answer")}

    second = at.selectbox(key="adjudicate_item_1").value
    assert second == adjudication_queue(study)["completion_id"].iloc[0] != first
    assert f"Resolution of item {second}" in "\n".join(markdown.value for markdown in at.markdown).replace("\\", "")
    assert at.selectbox(key=f"adj_answer_language_{second}").value is None
    assert at.segmented_control(key=f"adj_matches_gold_{second}").value is None
    assert at.segmented_control(key=f"adj_correct_{second}").value is None
    at.button(key="adj_submit").click().run()
    assert adjudications(study) == {**before, first: ("none", None, False, "empty answer")}


# --------------------------------------------------------------------------- annotators


def test_adding_two_accounts_in_a_row_empties_the_form_between(sign_in, study: Engine) -> None:
    names_before = set(accounts.list_annotators(study)["name"])
    at = open_page(sign_in("admin"), "pages/admin/annotators.py")
    for name, language in (("marta", "spa"), ("jonas", "deu")):
        at.text_input(key="new_name").input(name)
        at.multiselect(key="new_languages").select(language)
        at.text_input(key="new_password").input(f"{name}-password-1")
        at.button(key="new_submit").click().run()
        assert not at.exception and not at.error
        assert (
            at.text_input(key="new_name").value,
            at.multiselect(key="new_languages").value,
            at.text_input(key="new_password").value,
        ) == ("", [], "")
    at.button(key="new_submit").click().run()  # a second click on the emptied form
    assert not at.exception and not at.error
    assert "name first" in messages(at, "warning")
    people = accounts.list_annotators(study).set_index("name")
    assert set(people.index) == names_before | {"marta", "jonas"}
    assert (people.loc["marta", "languages"], people.loc["jonas", "languages"]) == ("spa", "deu")
    assert accounts.authenticate(study, "jonas", "jonas-password-1") is not None


def test_a_remote_image_comes_from_an_allowed_host_with_no_referrer(
    sign_in, study: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IFL_IMAGE_HOSTS", "images.example.org")
    first, second = routing.claim_batch(study, account_id(study, "anna"), 2)
    allowed = 'https://images.example.org/cat.png?a=1&b="x"'
    set_item_fields(study, first.completion_id, image_url=allowed)
    set_item_fields(study, second.completion_id, image_url="http://127.0.0.1:8080/admin.png")
    at = sign_in("anna")
    assert form_of(at) == first.completion_id
    images = [block.value for block in at.html if "<img" in block.value]
    assert images and all('referrerpolicy="no-referrer"' in image for image in images)
    assert all(f'src="{html.escape(allowed, quote=True)}"' in image for image in images)
    at.button(key="skip").click().run()
    assert form_of(at) == second.completion_id
    assert not [block for block in at.html if "<img" in block.value]
    assert "image could not be shown" in [caption.value for caption in at.caption]
