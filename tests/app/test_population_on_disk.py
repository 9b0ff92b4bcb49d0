"""The app keeps the population on disk too (issue 10): after a restart (or in another app
process) the dashboard's first visit loads it instead of reading it from the database."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from annotator.analysis import frame as analysis
from annotator.analysis import population_store as store
from annotator.analysis.estimates import study_estimates
from annotator.storage import get_engine
from pages import _study

DASHBOARD = "pages/study/dashboard.py"


def dsl_ifl(at: AppTest) -> pd.Series:
    """The DSL IFL estimates the dashboard shows."""
    shown = at.get_by_key("table_ifl").dataframe[0].value
    return shown.loc[shown["estimator"].str.lower().str.startswith("dsl"), "estimate"].reset_index(drop=True)


def test_the_first_visit_after_a_restart_loads_the_population(
    sign_in, study: Engine, demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(store.CACHE_DIR_SETTING, str(tmp_path / "cache"))
    _study.warm_population(demo_url).join()  # as the Data page does after an import
    app_engine = _study._engine(demo_url)
    folder = analysis.population_disk_folder(app_engine)
    assert folder is not None and folder.parent == tmp_path / "cache"
    assert len(list(folder.glob("population-*.arrow"))) == 1

    # A restart: a new process has new engines and empty in-memory caches.
    st.cache_resource.clear()
    get_engine.cache_clear()
    assert _study._engine(demo_url) is not app_engine
    reads: list[int] = []
    read = analysis.population_frame

    def counted(*args, **kwargs):
        reads.append(1)
        return read(*args, **kwargs)

    monkeypatch.setattr(analysis, "population_frame", counted)
    at = sign_in("rosa").switch_page(DASHBOARD).run()
    assert not at.exception
    assert reads == [], "the dashboard's first visit loads the kept population; it reads none"
    monkeypatch.setattr(analysis, "population_frame", read)
    expected = study_estimates(study).ifl  # read from the database, kept nowhere
    assert dsl_ifl(at).tolist() == pytest.approx(
        expected.loc[expected["estimator"] == "dsl", "estimate"].tolist(), nan_ok=True
    )
