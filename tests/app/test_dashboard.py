"""The dashboard a researcher can read and trust: words instead of codes, names that cannot
inject markup into a chart, not-estimable cells listed instead of drawn, figures that work offline.

The figure tests build every figure of ``pages._figures.FIGURES`` from the small demo's estimates
with hostile model and benchmark names put in; the browser tests open those figures' exported
HTML and the dashboard itself in Debian's chromium. The dashboard screenshot replaces the
README's (``docs/screenshots/dashboard.png``) when ``IFL_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser_support import (  # noqa: F401  (fixtures)
    README_SCREENSHOTS,
    VIEWPORT,
    WAIT_MS,
    browser,
    server,
)
from browser_support import sign_in as sign_in_browser
from live_app import CHROMIUM, CHROMIUM_ARGS

from annotator.analysis import estimates as estimates_module
from annotator.analysis.estimates import StudyEstimates, study_estimates
from annotator.analysis.export import BOM
from annotator.analysis.wording import language_in_words, readable_agreement, term_in_words
from annotator.storage import make_engine
from pages import _figures
from pages._common import escape_markdown
from pages._figures import FIGURES, figure_html, inert, not_estimable


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (``conftest`` is not importable by name when the
    whole suite runs: tests/annotator has one too)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


HOSTILE_MODEL = '<b>x</b><a href="http://evil.example">y</a>'
HOSTILE_BENCHMARK = '<a href="http://evil.example">bench</a> %{x} &amp;'
#: Live markup plotly would render: a bold, italic or link tag, or a style span.
LIVE_MARKUP = re.compile(r"<\s*/?\s*(a|b|i|span|sub|sup)\b", re.IGNORECASE)
NEEDS = "not yet estimable: needs about 4 more labels in MaXM|deu (image arm)"


# --------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    ("term", "words"),
    [
        ("image", "image"),
        ("image:llm[T.leo]", "image x LLM: Leo"),
        ("image:llm[T.yi]", "image x LLM: Yi"),
        ("image:vision[T.dinov2]", "image x vision encoder: DINOv2"),
        ("image:data[T.de]", "image x training data: German"),
        ("image:data[T.zh]", "image x training data: Chinese"),
        ("Intercept", "intercept"),
        ("image:C(query_language)[T.deu]", "image x query language: German"),
        ("image[T.True]:benchmark[T.MaXM]", "image x benchmark: MaXM"),
        ("log_chars", "log chars"),
    ],
)
def test_regression_terms_read_as_words(term: str, words: str) -> None:
    assert term_in_words(term) == words


def test_languages_read_by_name() -> None:
    assert [language_in_words(code) for code in ("deu", "zho", "de", "msa", "all")] == [
        "German",
        "Chinese",
        "German",
        "Malay",
        "All languages",
    ]
    assert language_in_words("not-a-code") == "not-a-code" and language_in_words(None) == ""


def test_agreement_table_in_words_keeps_undefined_kappa_missing() -> None:
    pairs = pd.DataFrame(
        {
            "question": ["answer_language", "correct"],
            "query_language": ["all", "heb"],
            "n_items": [3, 1],
            "percent_agreement": [100.0, 100.0],
            "cohen_kappa": [0.5, np.nan],
            "krippendorff_alpha": [0.5, np.nan],
        }
    )
    readable = readable_agreement(pairs)
    assert readable[["question", "query_language"]].values.tolist() == [
        ["Answer language", "All languages"],
        ["Correct", "Hebrew"],
    ]
    assert readable["cohen_kappa"].isna().tolist() == [False, True]  # shown as "—", never as 0


# --------------------------------------------------------------------------- figures


@pytest.fixture(scope="module")
def demo_estimates(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> StudyEstimates:
    path = tmp_path_factory.mktemp("estimates") / "study.sqlite"
    copy_database(demo_template, path)
    engine = make_engine(f"sqlite:///{path}")
    try:
        return study_estimates(engine)
    finally:
        engine.dispose()


def renamed(study: StudyEstimates, model: str, benchmark: str) -> StudyEstimates:
    """The estimates with one model and one benchmark given hostile names."""

    def rename(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        if "model" in frame:
            frame["model"] = frame["model"].replace(model, HOSTILE_MODEL)
        if "benchmark" in frame:
            frame["benchmark"] = frame["benchmark"].replace(benchmark, HOSTILE_BENCHMARK)
        return frame

    return dataclasses.replace(
        study,
        **{name: rename(frame) for name, frame in study.tables().items()},
        all_estimates=rename(study.all_estimates),
    )


def strings(value: object) -> Iterator[str]:
    """Every string in a figure's JSON (keys aside)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


@pytest.fixture(scope="module")
def hostile(demo_estimates: StudyEstimates) -> StudyEstimates:
    return renamed(demo_estimates, "llava-v1.5-7b", "MaXM")


def test_hostile_names_reach_no_figure_as_markup(hostile: StudyEstimates) -> None:
    for name, draw in FIGURES.items():
        figure = json.loads(draw(hostile).to_json())
        texts = list(strings(figure))
        live = [text for text in texts if LIVE_MARKUP.search(text)]
        assert not live, f"{name}: live markup {live[:3]}"
        # Names never become part of a hover template, where %{...} would be evaluated.
        templates = [trace.get("hovertemplate", "") for trace in figure["data"]]
        assert not any("evil" in str(template) for template in templates), name
    ifl = json.loads(FIGURES["ifl"](hostile).to_json())
    shown = set(strings(ifl))
    assert f"{inert(HOSTILE_MODEL)} · {inert(HOSTILE_BENCHMARK)}" in shown  # escaped, so shown as typed
    power = json.loads(FIGURES["power"](hostile).to_json())
    assert inert(HOSTILE_BENCHMARK) in {trace["name"] for trace in power["data"]}


def test_the_interaction_panels_are_stacked_in_words(demo_estimates: StudyEstimates) -> None:
    figure = FIGURES["interaction"](demo_estimates)
    ticks = {value for trace in figure.data for value in trace.y}
    assert "image x LLM: Leo" in ticks and "image x training data: German" in ticks
    assert not any("[T." in tick for tick in ticks)
    titles = sorted(note.text for note in figure.layout.annotations)
    assert titles == ["Chinese", "German"]
    # One panel above the other, each with the full width: labels cannot run into a neighbour.
    lower, upper = sorted(tuple(figure.layout[name].domain) for name in ("yaxis", "yaxis2"))
    assert lower[1] < upper[0]
    widths = {tuple(figure.layout[name].domain) for name in ("xaxis", "xaxis2")}
    assert len(widths) == 1 and next(iter(widths))[0] == 0 and next(iter(widths))[1] > 0.95


def test_labels_per_language_by_name_add_up() -> None:
    strata = pd.DataFrame(
        {
            "stratum": ["A|deu", "B|deu", "A|zho", "A|heb"],
            "query_language": ["deu", "deu", "zho", "heb"],
            "n_sampled": [5, 7, 3, 2],
            "n_labeled": [1, 2, 3, 0],
        }
    )
    figure = FIGURES["languages"](StudyEstimates(*[pd.DataFrame()] * 3, strata, *[pd.DataFrame()] * 2, labels=None))
    drawn = {trace.name: dict(zip(trace.x, trace.y, strict=True)) for trace in figure.data}
    assert drawn == {
        "sampled": {"Chinese": 3, "German": 12, "Hebrew": 2},
        "labeled": {"Chinese": 3, "German": 3, "Hebrew": 0},
    }


def with_gaps(study: StudyEstimates) -> StudyEstimates:
    """H4's columns as the estimates carry them: one DSL cell not estimable, accuracy bounds."""
    ifl = study.ifl.assign(status="ok", needs=pd.NA)
    gap = (ifl["model"] == "llava-v1.5-7b") & (ifl["benchmark"] == "MaXM") & (ifl["estimator"] == "dsl")
    ifl.loc[gap, ["estimate", "se", "ci_low", "ci_high"]] = np.nan
    ifl.loc[gap, ["status", "needs"]] = ["not_estimable", NEEDS]
    accuracy = study.accuracy.copy()
    bounded = (accuracy["estimand"] == "image_effect") & (accuracy["estimator"] == "dsl")
    accuracy["bound_low"] = (accuracy["estimate"] - 0.25).where(bounded)
    accuracy["bound_high"] = (accuracy["estimate"] + 0.15).where(bounded)
    return dataclasses.replace(study, ifl=ifl, accuracy=accuracy)


def test_a_not_estimable_cell_is_listed_with_its_needs_not_drawn(demo_estimates: StudyEstimates) -> None:
    study = with_gaps(demo_estimates)
    figure = FIGURES["ifl"](study)
    dsl = next(trace for trace in figure.data if trace.name == "DSL (debiased)")
    assert "llava-v1.5-7b · MaXM" not in set(dsl.y)
    assert all(np.isfinite(dsl.x))  # no point, and no zero-width bar, for the gap
    others = [trace for trace in figure.data if trace.name != "DSL (debiased)"]
    assert all("llava-v1.5-7b · MaXM" in set(trace.y) for trace in others)  # its other estimators stay
    listed = not_estimable(study.ifl, _figures.cell_label)
    assert {"what": "llava-v1.5-7b · MaXM", "estimator": "DSL (debiased)", "needs": NEEDS} in listed.to_dict("records")
    assert listed["needs"].notna().all()


def test_accuracy_bounds_are_drawn_beside_the_estimates(demo_estimates: StudyEstimates) -> None:
    study = with_gaps(demo_estimates)
    figure = FIGURES["accuracy"](study)
    bounds = next(trace for trace in figure.data if trace.name == _figures.BOUNDS)
    rows = _figures.estimable(
        study.accuracy[
            (study.accuracy["estimand"] == "image_effect")
            & ~study.accuracy["ablation"]
            & (study.accuracy["estimator"] == "dsl")
        ]
    )
    assert len(rows) > 3
    expected = dict(
        zip(_figures.cell_label(rows), zip(rows["bound_low"], rows["bound_high"], strict=True), strict=True)
    )
    drawn = {
        cell: (x - minus, x + plus)
        for cell, x, plus, minus in zip(
            bounds.y, bounds.x, bounds.error_x.array, bounds.error_x.arrayminus, strict=True
        )
    }
    assert drawn.keys() == expected.keys()
    for cell, (low, high) in expected.items():
        assert drawn[cell] == pytest.approx((low, high))


def test_figure_html_embeds_plotly(demo_estimates: StudyEstimates) -> None:
    page = figure_html(FIGURES["languages"](demo_estimates).to_dict())
    assert not re.search(r"<script[^>]+src=", page)  # nothing to fetch: no CDN, no other host
    assert len(page) > 1_000_000  # plotly.js itself is in the page


# --------------------------------------------------------------------------- the page (AppTest)


def test_dashboard_lists_gaps_and_shows_dashes(sign_in, study, demo_estimates, monkeypatch) -> None:
    gaps = with_gaps(demo_estimates)
    monkeypatch.setattr(estimates_module, "study_estimates", lambda *args, **kwargs: gaps)
    at = sign_in("rosa").switch_page("pages/study/dashboard.py").run()
    assert not at.exception
    at.selectbox(key="dashboard_cell").select("llava-v1.5-7b · MaXM").run()
    shown = {metric.label: metric for metric in at.metric}
    assert shown["DSL (debiased)"].value == "—" and shown["DSL (debiased)"].proto.help == escape_markdown(NEEDS)
    assert shown["Labeled only"].value != "—"
    assert any("not estimable yet" in warning.value for warning in at.warning)
    listed = at.get_by_key("ifl_not_estimable").dataframe[0].value
    assert NEEDS in listed["needs"].tolist()
    for key in ("table_ifl", "table_interaction", "table_agreement"):
        table = at.get_by_key(key).dataframe[0]
        assert table.proto.placeholder == "—", key
    terms = at.get_by_key("table_interaction").dataframe[0].value["term"]
    assert "image x LLM: Leo" in set(terms) and not terms.str.contains(r"\[T\.").any()
    accuracy = at.get_by_key("table_accuracy").dataframe[0].value
    assert {"bound_low", "bound_high"} <= set(accuracy.columns)


# --------------------------------------------------------------------------- in chromium


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no browser at {CHROMIUM}")
def test_exported_figures_are_inert_and_offline_in_chromium(hostile: StudyEstimates, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = chromium.new_page(viewport=VIEWPORT)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        for name, draw in FIGURES.items():
            path = tmp_path / f"{name}.html"
            path.write_text(figure_html(draw(hostile).to_dict()), encoding="utf-8")
            page.goto(path.as_uri())
            page.locator(".main-svg").first.wait_for()
            assert page.locator(".main-svg a").count() == 0, name
            assert page.locator(".main-svg b").count() == 0, name
        page.goto((tmp_path / "ifl.html").as_uri())
        ticks = page.locator(".ytick text").all_text_contents()
        assert f"{HOSTILE_MODEL} · {HOSTILE_BENCHMARK}" in ticks  # shown literally, as typed
        page.goto((tmp_path / "power.html").as_uri())
        legend = page.locator(".legendtext").all_text_contents()
        assert HOSTILE_BENCHMARK in legend
        traces = [trace.name for trace in FIGURES["power"](hostile).data]
        hostile_trace = page.locator(".scatterlayer .trace").nth(traces.index(inert(HOSTILE_BENCHMARK)))
        # Hover its points in turn: where another trace's point lies on top, that one is hovered.
        hover = page.locator(".hoverlayer")
        shown = []
        for point in hostile_trace.locator(".points path").all():
            box = point.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            hover.locator("text").first.wait_for()
            shown.append(" ".join(hover.locator("text").all_text_contents()))
            assert hover.locator("a").count() == 0
            if HOSTILE_BENCHMARK in shown[-1]:
                break
        assert HOSTILE_BENCHMARK in shown[-1], shown
        page.screenshot(path=str(tmp_path / "power.png"))
        chromium.close()
    assert requests and all(url.startswith("file://") for url in requests), [
        u for u in requests if not u.startswith("file://")
    ][:3]


HOSTILE_ABLATION = "ablation-de-leo-clip-de"


@pytest.fixture(scope="module")
def module_demo(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, with one ablation model (drawn only in its expander) given a hostile name."""
    path = tmp_path_factory.mktemp("hostile-demo") / "study.sqlite"
    copy_database(demo_template, path)
    with sqlite3.connect(path) as connection:
        changed = connection.execute(
            "UPDATE completions SET model = ? WHERE model = ?", (HOSTILE_MODEL, HOSTILE_ABLATION)
        ).rowcount
    assert changed > 0
    return path


def open_tab(page, name: str) -> None:
    """Click a dashboard tab once the live refresh has replaced the old tab bar: for a moment
    after a rerun both are in the page, and a click on the old one does nothing."""
    from playwright.sync_api import expect

    tab = page.get_by_role("tab", name=name)
    expect(tab).to_have_count(1)
    tab.click()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no browser at {CHROMIUM}")
def test_dashboard_in_chromium(server: str, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shots = README_SCREENSHOTS if os.environ.get("IFL_UPDATE_SCREENSHOTS") == "1" else tmp_path
    page = browser.new_page(viewport={"width": VIEWPORT["width"], "height": 1500})
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page.goto(server)
    sign_in_browser(page, "rosa")
    if page.get_by_role("heading", name="Dashboard").count() == 0:
        page.get_by_role("link", name="Dashboard").click()
    chart = page.locator(".st-key-chart_ifl .main-svg").first
    expect(chart).to_be_visible()
    page.wait_for_timeout(1500)  # let the plot finish drawing
    page.screenshot(path=str(shots / "dashboard.png"))

    # The ablation variants: the hostile model name is a tick label, shown as typed, not a link.
    page.get_by_text("The ablation variants").click()
    ablation = page.locator(".st-key-chart_ifl_ablation")
    expect(ablation.locator(".main-svg").first).to_be_visible()
    ticks = ablation.locator(".ytick text")
    expect(ticks.filter(has_text=" · ablation")).not_to_have_count(0)
    assert f"{HOSTILE_MODEL} · ablation" in ticks.all_text_contents()
    assert page.locator(".js-plotly-plot a").count() == 0
    page.screenshot(path=str(tmp_path / "ablation.png"), full_page=True)

    # The two-panel chart at 1440 px: every term label in words, none over a neighbouring panel.
    open_tab(page, "Per target language")
    panel = page.locator(".st-key-chart_interaction")
    expect(panel.locator(".main-svg").first).to_be_visible()
    # The live refresh keeps the tab the researcher chose (it used to fall back to "IFL" every 10 s).
    refreshed = page.get_by_text("Refreshed at").first
    before = refreshed.inner_text()
    expect(refreshed).not_to_have_text(before)
    expect(page.get_by_role("tab", selected=True)).to_have_text(["Per target language"])
    page.wait_for_timeout(1000)
    labels = panel.locator(".yaxislayer-above text")  # every panel's row labels (.ytick, .y2tick)
    expect(labels.filter(has_text="image x LLM: Leo")).to_have_count(1)  # both panels drawn
    texts = labels.all_text_contents()
    assert "image x LLM: Leo" in texts and not any("[T." in text for text in texts)
    # One snapshot of all boxes (evaluate_all): the live refresh may redraw the chart between
    # two element-by-element reads, and an index read before a redraw can vanish after it.
    rects = "elements => elements.map(e => { const r = e.getBoundingClientRect(); return {x: r.x, width: r.width}; })"
    boxes = labels.evaluate_all(rects)
    plots = [box for box in panel.locator(".nsewdrag").evaluate_all(rects) if box["width"] > 0]
    assert boxes and plots
    for box in boxes:  # each label ends left of every plotting area
        assert all(box["x"] + box["width"] <= plot["x"] + 1 for plot in plots)
    page.screenshot(path=str(tmp_path / "interaction.png"), full_page=True)

    open_tab(page, "Agreement")
    expect(page.locator(".st-key-table_agreement")).to_be_visible()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(tmp_path / "agreement.png"), full_page=True)

    # The gold standard for Excel: a BOM, then the same CSV, with the Chinese prompts and answers.
    page.get_by_role("link", name="Export").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Gold standard for Excel (CSV)").click()
    raw = Path(download.value.path()).read_bytes()
    assert raw.startswith(BOM)
    gold = pd.read_csv(io.BytesIO(raw), na_filter=False)
    assert {"prompt", "gold_answer", "completion"} <= set(gold.columns) and gold.columns[0] == "completion_id"
    chinese = gold[gold["query_language"] == "zho"]
    assert len(chinese) and chinese["prompt"].str.contains(r"[\u4e00-\u9fff]").all()
    page.close()


def test_every_exported_figure_goes_through_figure_html() -> None:
    """The app writes figure HTML in one place, :func:`pages._figures.figure_html` (plotly.js embedded)."""
    root = Path(__file__).resolve().parents[2]
    writers = [
        path.relative_to(root).as_posix()
        for path in sorted((root / "pages").rglob("*.py"))
        if re.search(r"\bto_html\(|write_html\(", path.read_text(encoding="utf-8"))
    ]
    assert writers == ["pages/_figures.py"]
    assert "figure_html" in (root / "pages" / "study" / "export.py").read_text(encoding="utf-8")
