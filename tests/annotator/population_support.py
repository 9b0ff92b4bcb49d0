"""Shared by the population-cache tests (in memory, on disk, warmed by the CLI): a small study's
strata, a counter of the population's reads from the database, and the frame to compare with."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from annotator.analysis import frame as analysis
from db.models import SampleItem

#: (benchmark, query language) -> completions of the small study these tests draw from.
COUNTS = {("MaXM", "deu"): 6, ("MaXM", "hin"): 4, ("XM3600", "eng"): 10}


class Reads:
    """Counts the population's reads from the database."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        read = analysis.population_frame

        def counted(*args, **kwargs):
            self.count += 1
            return read(*args, **kwargs)

        monkeypatch.setattr(analysis, "population_frame", counted)


def fresh_frame(engine: Engine) -> pd.DataFrame:
    """The analysis frame read entirely from the database (no cache), to compare against."""
    population = analysis.population_frame(engine)
    with analysis.session_scope(engine) as session:
        return population.with_labels(analysis.resolved_labels(session, population.sample_id))


def sampled(engine: Engine) -> list[str]:
    """The ids of the current sample's items, in order."""
    with engine.connect() as connection:
        return list(connection.scalars(select(SampleItem.completion_id).order_by(SampleItem.completion_id)))
