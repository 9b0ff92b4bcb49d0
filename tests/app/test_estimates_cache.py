"""What the app keeps per engine (the population and the change-stamp connection) is held weakly,
beside the engine rather than written into it (issue 12): it goes when the engine goes."""

from __future__ import annotations

import gc
from pathlib import Path

from annotator.analysis import frame
from annotator.storage import make_engine, upgrade_database


def test_the_population_cache_and_the_change_watch_go_with_their_engine(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ifl.sqlite'}")
    upgrade_database(engine)
    before = set(vars(engine))
    frame.keep_population_cached(engine)
    assert frame.change_stamp(engine) is not None
    population = frame.cached_population(engine)
    assert population.frame.empty
    assert frame.cached_population(engine) is population  # kept
    assert set(vars(engine)) == before  # nothing written into the engine
    assert engine in frame._POPULATIONS and engine in frame._WATCHES
    engine.dispose()
    del engine, population
    gc.collect()
    path = str(tmp_path / "ifl.sqlite")
    assert not any(str(kept.url).endswith(path) for kept in list(frame._POPULATIONS.keys()))
    assert not any(str(kept.url).endswith(path) for kept in list(frame._WATCHES.keys()))
