"""Live estimates: a label shows on the dashboard at the next refresh, a new label reads only
the labels, and the export page builds nothing (not even the estimates) until asked."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from annotator.access import accounts
from annotator.analysis.estimates import label_count, study_estimates
from annotator.analysis.frame import cached_population
from annotator.annotation import routing
from annotator.storage import get_engine
from pages import _figures, _study

DASHBOARD = "pages/study/dashboard.py"


def dsl_ifl(at: AppTest) -> pd.Series:
    """The DSL IFL estimates the dashboard shows (the numbers under the IFL figure)."""
    shown = at.get_by_key("table_ifl").dataframe[0].value
    return shown.loc[shown["estimator"].str.lower().str.startswith("dsl"), "estimate"].reset_index(drop=True)


def label_one(study: Engine) -> None:
    """Anna labels the next item routing gives her, as the annotate page would."""
    anna = accounts.authenticate(study, "anna", "demo")
    item = routing.claim_next(study, anna.id)
    routing.submit(study, anna.id, item.completion_id, "english", True, True)


def test_a_routed_label_changes_the_estimates_on_the_next_refresh(
    sign_in, study: Engine, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IFL_DASHBOARD_RECOMPUTE_SECONDS", raising=False)  # the default: no throttle
    at = sign_in("rosa").switch_page(DASHBOARD).run()
    assert not at.exception
    before = dsl_ifl(at)
    population = cached_population(get_engine(demo_url))
    label_one(study)

    at.run()  # what the fragment's next refresh does
    assert not at.exception
    assert at.metric[0].value == str(label_count(study).annotations)
    after = dsl_ifl(at)
    assert not after.equals(before), "the new label must move at least one DSL estimate"
    expected = study_estimates(study).ifl
    assert after.tolist() == pytest.approx(
        expected.loc[expected["estimator"] == "dsl", "estimate"].tolist(), nan_ok=True
    )
    # The label was read on its own: the population part of the frame is the one read before.
    assert cached_population(get_engine(demo_url)) is population
    assert not any("newer label(s)" in caption.value for caption in at.caption)


def test_the_export_page_opens_without_computing_and_computes_when_asked(sign_in, study: Engine) -> None:
    at = sign_in("rosa")  # researchers start on the dashboard, which computes the estimates
    _study._store().computed.clear()  # as if they had not been computed yet
    at.switch_page("pages/study/export.py").run()
    assert not at.exception and not at.error
    assert not _study._store().computed, "opening the export page must not compute the estimates"
    keys = {button.key for button in at.download_button}
    assert {f"download_estimates_{name}" for name in _study.ESTIMATE_TABLES} | {"download_gold", "download_dsl"} <= keys
    assert {f"download_figure_{name}" for name in _figures.FIGURES} <= keys
    assert any("first download computes the estimates" in caption.value for caption in at.caption)

    # What a click on a deferred download runs (outside any page run): the current estimates.
    view = _study.StudyView(_study.database_url(), *(2 * [_study.view_version(study)]))
    computed = view.estimates_when_asked()()
    expected = study_estimates(study)
    assert tuple(computed.tables()) == _study.ESTIMATE_TABLES
    pd.testing.assert_frame_equal(computed.all_estimates, expected.all_estimates)
    assert set(view.figures_when_asked()()) == set(_figures.FIGURES)
    assert view.is_computed()
