"""The app as a user meets it, page by page, through Streamlit's AppTest.

Widgets are found by their ``key``; what a test did is checked in the database through the
services, and every run must end without an exception.
"""

from __future__ import annotations

import html

import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from annotator.access import accounts
from annotator.analysis.estimates import label_count, study_estimates
from annotator.analysis.wording import readable_estimates
from annotator.annotation import reporting, revisions, routing
from annotator.annotation.agreement import adjudication_queue
from annotator.annotation.reads import current_sample_id
from annotator.design.report import design_report
from annotator.languages import query_language_class
from annotator.storage import make_engine
from db.models import Sample

RESEARCH_PAGES = [
    "pages/study/dashboard.py",
    "pages/study/adjudicate.py",
    "pages/study/design.py",
    "pages/study/data.py",
    "pages/study/export.py",
    "pages/study/guidelines.py",
]
ADMIN_PAGES = ["pages/admin/annotators.py"]


def titles(at: AppTest) -> list[str]:
    return [title.value for title in at.title]


def texts(at: AppTest, element: str) -> str:
    return "\n".join(str(item.value) for item in getattr(at, element))


def open_page(at: AppTest, page: str) -> AppTest:
    return at.switch_page(page).run()


# --------------------------------------------------------------------------- signing in


def test_wrong_password_is_refused(app: AppTest) -> None:
    app.text_input(key="sign_in_name").input("anna")
    app.text_input(key="sign_in_password").input("not-the-password")
    app.button(key="sign_in_submit").click().run()
    assert not app.exception
    assert "Wrong name or password" in texts(app, "error")
    assert "user" not in app.session_state
    assert "ifl-studio" in titles(app)


def test_unknown_name_gets_the_same_message(app: AppTest) -> None:
    app.text_input(key="sign_in_name").input("nobody")
    app.text_input(key="sign_in_password").input("demo")
    app.button(key="sign_in_submit").click().run()
    assert not app.exception
    assert "Wrong name or password" in texts(app, "error")


def test_sign_in_and_out(sign_in) -> None:
    at = sign_in("anna")
    assert not at.exception
    assert titles(at) == ["Annotate"]
    assert at.session_state["user"].name == "anna"
    at.button(key="sign_out").click().run()
    assert not at.exception
    assert "user" not in at.session_state
    assert "ifl-studio" in titles(at)


# --------------------------------------------------------------------------- role gating


@pytest.mark.parametrize("page", RESEARCH_PAGES + ADMIN_PAGES)
def test_annotator_cannot_route_to_other_pages(sign_in, page: str) -> None:
    at = sign_in("anna")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(page)
    at.run()
    assert not at.exception
    assert titles(at) == ["Annotate"]


@pytest.mark.parametrize("page", RESEARCH_PAGES + ADMIN_PAGES)
def test_pages_check_the_role_themselves(run_page, study: Engine, page: str) -> None:
    anna = accounts.authenticate(study, "anna", "demo")
    at = run_page(page, anna)
    assert not at.exception
    assert "you are signed in as annotator" in texts(at, "error")
    assert not at.title and not at.dataframe and not at.button


@pytest.mark.parametrize("page", ["pages/label/annotate.py", *RESEARCH_PAGES, *ADMIN_PAGES])
def test_pages_refuse_when_signed_out(run_page, page: str) -> None:
    at = run_page(page, None)
    assert not at.exception
    assert "Please sign in first" in texts(at, "error")
    assert not at.title


def test_researcher_sees_study_pages_but_not_admin(sign_in) -> None:
    at = sign_in("rosa")
    for page in RESEARCH_PAGES:
        open_page(at, page)
        assert not at.exception, page
        assert not at.error, page
    with pytest.raises(ValueError):
        at.switch_page("pages/admin/annotators.py")


# --------------------------------------------------------------------------- annotate


def shown_texts(at: AppTest) -> str:
    """The untrusted texts on the page as shown: escaped HTML blocks (see ``show_untrusted``)."""
    return "\n".join(html.unescape(block.value) for block in at.html)


def query_button(at: AppTest) -> str:
    """The key of the query-language button (for an English query, the one English button)."""
    english = query_language_class(at.session_state["item"].query_language) == "english"
    return "lang_english" if english else "lang_query"


def answer(at: AppTest, language_key: str | None = None, matches: str = "yes", correct: str = "yes") -> AppTest:
    at.button(key=language_key or query_button(at)).click().run()
    at.button(key=f"matches_gold_{matches}").click().run()
    return at.button(key=f"correct_{correct}").click().run()


def test_labeling_an_item_stores_it(sign_in, study: Engine) -> None:
    at = sign_in("anna")
    item = at.session_state["item"]
    anna = at.session_state["user"]
    assert item.completion in shown_texts(at)
    answer(at, matches="no", correct="na")
    at.text_input(key=f"comment_{item.completion_id}").input("hedged answer")
    at.button(key="submit").click().run()
    assert not at.exception
    stored = revisions.undo_last(study, anna.id)
    assert stored.completion_id == item.completion_id
    assert stored.answer_language == query_language_class(item.query_language)
    assert (stored.matches_gold, stored.correct, stored.comment) == (False, None, "hedged answer")
    assert stored.seconds_spent > 0
    assert reporting.progress(study, anna.id).labeled_total == 1
    assert at.metric[1].value == "1"
    assert at.session_state["item"].completion_id != item.completion_id


def test_english_and_other_languages(sign_in, study: Engine) -> None:
    at = sign_in("anna")
    answer(at, language_key="lang_english")
    item = at.session_state["item"].completion_id
    assert at.session_state[f"answer_language_{item}"] == "english"
    box = next(box.key for box in at.selectbox if box.key.startswith(f"language_box_{item}_"))
    at.selectbox(key=box).select("other_latin").run()
    at.button(key="submit").click().run()
    assert revisions.undo_last(study, at.session_state["user"].id).answer_language == "other_latin"


def test_every_question_must_be_answered(sign_in, study: Engine) -> None:
    at = sign_in("anna")
    item = at.session_state["item"]
    at.button(key=query_button(at)).click().run()
    at.button(key="submit").click().run()
    assert not at.exception
    assert "still open: 2, 3" in texts(at, "warning").replace("\\", "")
    assert revisions.undo_last(study, at.session_state["user"].id) is None
    assert at.session_state["item"] == item


def test_skip_then_undo_and_revise(sign_in, study: Engine) -> None:
    at = sign_in("anna")
    anna = at.session_state["user"]
    first = at.session_state["item"]
    answer(at)
    at.button(key="submit").click().run()
    second = at.session_state["item"]
    at.button(key="skip").click().run()
    assert not at.exception
    assert at.session_state["item"].completion_id not in (first.completion_id, second.completion_id)
    assert reporting.progress(study, anna.id).skipped_by_me == 1

    at.button(key="undo").click().run()
    assert not at.exception
    assert [warning.value.startswith("Correcting your label") for warning in at.warning] == [True]
    assert first.completion in shown_texts(at)
    at.button(key="matches_gold_no").click().run()
    at.button(key="submit").click().run()
    assert not at.exception
    revised = revisions.undo_last(study, anna.id)
    assert (revised.completion_id, revised.matches_gold) == (first.completion_id, False)
    assert reporting.progress(study, anna.id).labeled_total == 1


def test_an_empty_queue_says_why(sign_in, study: Engine) -> None:
    accounts.add_annotator(study, "marta", ["it"], password="pw-marta-2026")
    at = sign_in("marta", "pw-marta-2026")
    assert not at.exception
    assert "no items in your languages (ita)" in texts(at, "info")
    assert not at.button(key="undo").disabled


def test_annotate_shows_no_surrogate_and_no_markdown(sign_in) -> None:
    at = sign_in("anna")
    item = at.session_state["item"]
    shown = texts(at, "markdown") + texts(at, "caption")
    assert item.completion not in shown and (not item.prompt or item.prompt not in shown)
    assert "surrogate" not in shown.lower() and "predict" not in shown.lower()


# --------------------------------------------------------------------------- dashboard and study pages


def test_dashboard_shows_the_estimates(sign_in, study: Engine) -> None:
    at = open_page(sign_in("rosa"), "pages/study/dashboard.py")
    assert not at.exception
    expected = study_estimates(study)
    assert at.metric[0].value == str(expected.labels.annotations)
    shown = at.get_by_key("table_ifl").dataframe[0].value
    pd.testing.assert_frame_equal(
        shown.reset_index(drop=True), readable_estimates(expected.ifl).reset_index(drop=True), check_dtype=False
    )
    shown = at.get_by_key("table_interaction").dataframe[0].value
    assert shown["estimate"].tolist() == pytest.approx(expected.interaction["estimate"].tolist(), nan_ok=True)
    charts = {chart.key for chart in at.get("plotly_chart")}
    assert {"chart_ifl", "chart_interaction", "chart_accuracy", "chart_power", "chart_languages"} <= charts
    # The demo's ablation variants are drawn apart from the studied models (the paper's Figure 1).
    assert ("chart_ifl_ablation" in charts) == bool(expected.ifl["ablation"].any())


def test_dashboard_follows_new_labels(sign_in, study: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IFL_DASHBOARD_RECOMPUTE_SECONDS", "0")
    at = open_page(sign_in("rosa"), "pages/study/dashboard.py")
    before = label_count(study)
    anna = accounts.authenticate(study, "anna", "demo")
    item = routing.claim_next(study, anna.id)
    routing.submit(study, anna.id, item.completion_id, "english", True, True)
    assert label_count(study) != before
    at.run()
    assert not at.exception
    assert at.metric[0].value == str(label_count(study).annotations)


def test_dashboard_recomputes_at_most_once_a_minute(sign_in, study: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """New labels show as waiting until the interval has passed, then in the estimates."""
    monkeypatch.setenv("IFL_DASHBOARD_RECOMPUTE_SECONDS", "3600")
    at = open_page(sign_in("rosa"), "pages/study/dashboard.py")
    before = label_count(study).annotations
    anna = accounts.authenticate(study, "anna", "demo")
    item = routing.claim_next(study, anna.id)
    routing.submit(study, anna.id, item.completion_id, "english", True, True)
    at.run()
    assert not at.exception
    assert at.metric[0].value == str(before)
    assert any("1 newer label(s) will be included" in caption.value for caption in at.caption)
    monkeypatch.setenv("IFL_DASHBOARD_RECOMPUTE_SECONDS", "0")
    at.run()
    assert at.metric[0].value == str(before + 1)


def test_adjudicating_resolves_a_disagreement(sign_in, study: Engine) -> None:
    at = open_page(sign_in("rosa"), "pages/study/adjudicate.py")
    assert not at.exception
    waiting = adjudication_queue(study)
    chosen = at.selectbox(key="adjudicate_item_0").value
    assert chosen == waiting["completion_id"].iloc[0]
    at.selectbox(key=f"adj_answer_language_{chosen}").select("chinese")
    at.segmented_control(key=f"adj_matches_gold_{chosen}").set_value("yes")
    at.segmented_control(key=f"adj_correct_{chosen}").set_value("no")
    at.button(key="adj_submit").click().run()
    assert not at.exception
    assert chosen not in set(adjudication_queue(study)["completion_id"])
    assert len(adjudication_queue(study)) == len(waiting) - 1


def test_design_page_tops_up_the_sample(sign_in, study: Engine) -> None:
    at = open_page(sign_in("rosa"), "pages/study/design.py")
    assert not at.exception
    before = int(design_report(study)["drawn"].sum())
    at.button(key="sample_preview").click().run()
    assert not at.exception and not at.error
    assert at.get_by_key("sample_plan").dataframe[0].value["drawn"].sum() == 1000
    at.number_input(key="topup_n").set_value(before + 50)
    at.button(key="topup_run").click().run()
    assert not at.exception and not at.error
    assert int(design_report(study)["drawn"].sum()) == before + 50
    at.run()
    rounds = at.get_by_key("sample_rounds").dataframe[0].value
    assert rounds["round"].tolist() == [1, 2] and rounds["n_total"].iat[-1] == before + 50


def test_design_page_draws_a_replacement_only_once_confirmed(sign_in, study: Engine) -> None:
    at = open_page(sign_in("rosa"), "pages/study/design.py")
    first = current_sample_id(study)
    at.number_input(key="sample_n").set_value(300)
    at.number_input(key="sample_seed").set_value(3)
    at.button(key="sample_draw").click().run()
    assert not at.exception and "Nothing was drawn" in texts(at, "error")
    assert current_sample_id(study) == first
    at.checkbox(key="sample_confirm").check()
    at.button(key="sample_draw").click().run()
    assert not at.exception and not at.error
    with Session(study) as session:
        drawn = session.get(Sample, current_sample_id(study))
        assert drawn is not None and drawn.id != first and (drawn.n_target, drawn.seed) == (300, 3)
    assert at.checkbox(key="sample_confirm").value is False  # cleared for the next draw


def test_design_page_rejects_bad_weights(sign_in) -> None:
    at = open_page(sign_in("rosa"), "pages/study/design.py")
    at.session_state["weights_languages"] = {
        "edited_rows": {0: {"language": "Atlantean"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.button(key="sample_preview").click().run()
    assert not at.exception
    assert "Atlantean" in texts(at, "error")


def test_import_errors_name_the_uploaded_file(sign_in) -> None:
    at = open_page(sign_in("rosa"), "pages/study/data.py")
    at.file_uploader(key="import_file").upload("my-completions.csv", b"id,model\nx,m\n", "text/csv").run()
    at.button(key="import_run").click().run()
    assert not at.exception
    message = texts(at, "error").replace("\\", "")
    assert message.startswith("my-completions.csv, column 'benchmark': missing required column")
    assert "ifl-upload" not in message


def test_import_and_language_id(sign_in, study: Engine) -> None:
    at = open_page(sign_in("rosa"), "pages/study/data.py")
    rows = (
        "id,model,benchmark,query_language,image,completion\n"
        "new-1,m,extra,de,true,Das ist ein Hund.\nnew-2,m,extra,de,false,=cmd()\n"
    )
    at.file_uploader(key="import_file").upload("new.csv", rows.encode(), "text/csv").run()
    at.button(key="import_run").click().run()
    assert not at.exception and not at.error
    assert "2 new" in texts(at, "success")
    at.button(key="lid_run").click().run()
    assert not at.exception and not at.error
    assert "completions labelled" in texts(at, "code")


def test_admin_adds_and_changes_accounts(sign_in, study: Engine) -> None:
    at = open_page(sign_in("admin"), "pages/admin/annotators.py")
    assert not at.exception
    at.text_input(key="new_name").input("marta")
    at.multiselect(key="new_languages").select("spa")
    at.text_input(key="new_password").input("pw-marta-2026")
    at.button(key="new_submit").click().run()
    assert not at.exception and not at.error
    people = accounts.list_annotators(study).set_index("name")
    assert people.loc["marta", "languages"] == "spa"
    assert accounts.authenticate(study, "marta", "pw-marta-2026") is not None
    assert (at.text_input(key="new_name").value, at.multiselect(key="new_languages").value) == ("", [])

    at.selectbox(key="account").select("anna").run()
    at.multiselect(key="account_languages").unselect("fra")
    at.selectbox(key="account_role").select("researcher")
    at.button(key="account_save").click().run()
    assert not at.exception and not at.error
    anna = accounts.list_annotators(study).set_index("name").loc["anna"]
    assert "fra" not in anna["languages"].split(",") and anna["role"] == "researcher"


def test_admin_sees_refusals(sign_in) -> None:
    at = open_page(sign_in("admin"), "pages/admin/annotators.py")
    at.text_input(key="new_name").input("anna")
    at.multiselect(key="new_languages").select("deu")
    at.text_input(key="new_password").input("a long enough password")
    at.button(key="new_submit").click().run()
    assert not at.exception and not at.error
    assert "already exists" in texts(at, "warning")


def test_export_page_offers_every_download(sign_in) -> None:
    at = open_page(sign_in("rosa"), "pages/study/export.py")
    assert not at.exception and not at.error
    keys = {button.key for button in at.download_button}
    assert {"download_gold", "download_dsl", "download_estimates_ifl", "download_figure_ifl"} <= keys


def test_every_page_copes_with_a_study_without_data(empty_url: str, empty_app: AppTest) -> None:
    engine = make_engine(empty_url)
    accounts.add_annotator(engine, "boss", ["en"], role="admin", password="boss-password")
    engine.dispose()
    at = empty_app.run()
    at.text_input(key="sign_in_name").input("boss")
    at.text_input(key="sign_in_password").input("boss-password")
    at.button(key="sign_in_submit").click().run()
    assert "No sample has been drawn yet" in texts(at, "info")
    for page in RESEARCH_PAGES + ADMIN_PAGES:
        open_page(at, page)
        assert not at.exception, page
    open_page(at, "pages/study/dashboard.py")
    assert "No sample has been drawn yet" in texts(at, "info")


def test_an_empty_database_offers_no_demo_and_no_account(empty_url: str, empty_app: AppTest) -> None:
    """Issue 11.1: an unauthenticated page never sets up the demo (whose admin password is known)."""
    at = empty_app
    assert not at.exception
    assert not at.button and not at.text_input, "nothing to click or type before an admin exists"
    assert "ifl annotators add NAME --role admin" in texts(at, "info")
    engine = make_engine(empty_url)
    assert accounts.list_annotators(engine).empty
    engine.dispose()


def test_dashboard_reads_out_one_cell(sign_in, study: Engine) -> None:
    at = open_page(sign_in("rosa"), "pages/study/dashboard.py")
    ifl = study_estimates(study).ifl
    model, benchmark = "llava-v1.5-7b", "MaXM"
    at.selectbox(key="dashboard_cell").select(f"{model} · {benchmark}").run()
    assert not at.exception
    dsl = ifl[(ifl["model"] == model) & (ifl["benchmark"] == benchmark) & (ifl["estimator"] == "dsl")]
    shown = {metric.label: metric.value for metric in at.metric}
    assert shown["DSL (debiased)"] == f"{dsl['estimate'].iloc[0]:+.3f}"
