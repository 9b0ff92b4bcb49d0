"""The population kept on disk per population version (``ifl estimate``, issue 10): loaded as it
was read, and never once the population changed (new predictions, a top-up, an import)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import numpy as np
import pandas as pd
import pytest
from population_support import COUNTS, Reads, fresh_frame, sampled
from sqlalchemy import Engine, insert
from sqlalchemy.engine import make_url

from annotator.analysis import frame as analysis
from annotator.analysis import population_store as store
from annotator.analysis.frame import (
    analysis_frame,
    cached_population,
    keep_population_cached,
    keep_population_on_disk,
    population_version,
)
from annotator.cli import main as cli_main
from annotator.design.draws import draw_sample, top_up
from db.models import Prediction
from stats import ghat, simulate_study
from stats.crossfit import distinct_inputs


@pytest.fixture
def study(engine: Engine, completion_frame, insert_completions) -> Engine:
    insert_completions(engine, completion_frame(COUNTS))
    draw_sample(engine, 8, seed=1, weights={"benchmark": {"balance": False}})
    return engine


def kept_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("population-*.arrow"))


def test_a_kept_population_loads_as_it_was_read(study: Engine, tmp_path: Path, monkeypatch, annotate):
    expected = fresh_frame(study)
    folder = keep_population_on_disk(study, tmp_path / "cache")
    reads = Reads(monkeypatch)
    first = cached_population(study)
    assert reads.count == 1 and len(kept_files(tmp_path / "cache")) == 1 and folder == tmp_path / "cache"
    annotate(study, sampled(study)[0], "ann", "german", correct=True, slot=1)  # a label: same population
    second = cached_population(study)
    assert reads.count == 1 and second is not first
    pd.testing.assert_frame_equal(second.frame, first.frame, check_exact=True)
    assert second.frame["stratum"].dtype == object and second.version == first.version
    assert second.sample_id == first.sample_id
    np.testing.assert_array_equal(second.faithful, first.faithful)
    frame = analysis_frame(study)
    assert reads.count == 1 and frame["labeled"].sum() == 1
    pd.testing.assert_frame_equal(frame, fresh_frame(study), check_exact=True)
    assert not expected["labeled"].any()


def test_a_changed_population_never_loads_the_kept_one(
    study: Engine, tmp_path: Path, monkeypatch, completion_frame, insert_completions
):
    keep_population_on_disk(study, tmp_path / "cache")
    reads = Reads(monkeypatch)
    cached_population(study)
    cached_population(study)
    assert reads.count == 1

    item = sampled(study)[0]
    with study.begin() as connection:  # new predictions (what a language-ID run writes)
        connection.execute(
            insert(Prediction).values(
                source="lid176", completion_id=item, language_class="german", predicted_fidelity=True
            )
        )
    assert cached_population(study).frame["pred_fidelity"].notna().sum() == 1
    assert reads.count == 2

    top_up(study, None, n_more=4, seed=2)
    assert int(cached_population(study).frame["sampled"].sum()) == 12
    assert reads.count == 3

    insert_completions(study, completion_frame({("MaXM", "fra"): 2}))  # an import
    with pytest.warns(UserWarning, match="completions changed"):
        assert len(analysis_frame(study)) == 22
    assert reads.count == 4
    with pytest.warns(UserWarning, match="completions changed"):
        fresh = analysis.population_frame(study).frame
    pd.testing.assert_frame_equal(cached_population(study).frame, fresh, check_exact=True)
    assert len(kept_files(tmp_path / "cache")) == 1  # one population per database


def test_a_file_that_does_not_hold_its_key_is_not_used(tmp_path: Path):
    frame = pd.DataFrame({"completion_id": ["a", "b"], "stratum": pd.Series(["x|y", "x|z"], dtype=object)})
    key, other = store.population_key((1, None), 1, None), store.population_key((2, None), 1, None)
    written = store.save_population(tmp_path, key, frame, {"sample_id": 1})
    assert written is not None
    loaded = store.load_population(tmp_path, key)
    assert loaded is not None and loaded[1] == {"sample_id": 1}
    pd.testing.assert_frame_equal(loaded[0], frame)
    assert store.load_population(tmp_path, other) is None  # no file for that version
    # A file under the other key's name that holds this key's population (as a collision would):
    written.rename(store.population_file(tmp_path, other))
    assert store.load_population(tmp_path, other) is None
    store.population_file(tmp_path, key).write_bytes(b"not an arrow file")
    assert store.load_population(tmp_path, key) is None


def test_the_key_names_the_code_and_everything_the_population_depends_on(study: Engine):
    version = population_version(study)
    key = store.population_key(version, None, None)
    assert key == store.population_key(version, None, None)
    assert key != store.population_key(version, 1, None) != store.population_key(version, None, "glotlid")
    assert key != store.population_key(version._replace(sample_items=version.sample_items + 1), None, None)
    assert store._source_hash() in key


def test_where_the_population_is_kept(tmp_path: Path, monkeypatch):
    from annotator.storage import make_engine

    monkeypatch.delenv(store.CACHE_DIR_SETTING, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    beside = store.population_cache_dir(make_engine(f"sqlite:///{tmp_path / 'ifl.sqlite'}"))
    assert beside is not None and beside.parent == tmp_path / "ifl.sqlite-cache"
    assert store.population_cache_dir(make_engine("sqlite://")) is None
    monkeypatch.chdir(tmp_path)  # a relative URL is the file it names from here
    relative = store.population_cache_dir(make_engine("sqlite:///ifl.sqlite"))
    assert relative == beside
    postgres = make_url("postgresql+psycopg://ifl:secret@dbhost:5432/ifl")
    other = make_url("postgresql+psycopg://ifl:secret@dbhost:5432/other")

    def engine_of(url) -> Engine:  # only the URL is read
        return cast(Engine, SimpleNamespace(url=url))

    folder = store.population_cache_dir(engine_of(postgres))
    assert folder is not None and folder.parent == tmp_path / "xdg" / "ifl-studio"
    assert folder != store.population_cache_dir(engine_of(other))
    monkeypatch.setenv(store.CACHE_DIR_SETTING, str(tmp_path / "mine"))
    mine = store.population_cache_dir(engine_of(postgres))
    assert mine is not None and mine.parent == tmp_path / "mine"
    assert store.population_cache_dir(make_engine("sqlite://")) is None  # not even under IFL_CACHE_DIR
    monkeypatch.setenv(store.CACHE_DIR_SETTING, "off")
    assert store.population_cache_dir(engine_of(postgres)) is None


def test_ifl_estimate_loads_the_kept_population_and_prints_the_same(
    sqlite_engine: Engine, completion_frame, insert_completions, annotate, tmp_path: Path, monkeypatch, capsys
):
    insert_completions(sqlite_engine, completion_frame(COUNTS))
    draw_sample(sqlite_engine, 8, seed=1, weights={"benchmark": {"balance": False}})
    for item in sampled(sqlite_engine)[:6]:
        annotate(sqlite_engine, item, "ann", "german", correct=True, slot=1)
    monkeypatch.setenv(store.CACHE_DIR_SETTING, str(tmp_path / "cache"))
    url = sqlite_engine.url.render_as_string(hide_password=False)
    reads = Reads(monkeypatch)
    derived: list[int] = []  # the learner inputs derived afresh, per run
    prepare = distinct_inputs

    def counted(*args):
        derived.append(1)
        return prepare(*args)

    monkeypatch.setattr(ghat, "distinct_inputs", counted)  # the name g-hat calls
    printed, counts = [], []
    for arguments in (["estimate"], ["estimate"], ["estimate", "--no-cache"]):
        cli_main(["--db", url, *arguments])
        printed.append(capsys.readouterr().out)
        counts.append(len(derived))
    assert reads.count == 2  # the first and the --no-cache run read it; the second loaded it
    assert counts == [2, 2, 4]  # both outcomes' inputs: derived, then loaded, then derived
    assert printed[0] == printed[1] == printed[2] and "== ifl" in printed[0]
    folder = next((tmp_path / "cache").iterdir())
    assert len(kept_files(folder)) == 1 and len(list(folder.glob("derived-*.npz"))) == 1


def test_kept_learner_inputs_come_back_as_they_were(tmp_path: Path):
    frame = simulate_study(3_000, 300, seed=2).assign(log_chars=lambda f: np.log1p(f["completion_chars"]))
    inputs = distinct_inputs(frame, ["pred_fidelity", "pred_probability", "log_chars", "model", "benchmark"])
    key = store.derived_key(store.population_key((1, None), 1, None))
    assert store.save_derived(tmp_path, key, [(("learner inputs", "fidelity"), inputs), (object(), inputs)])
    [(name, loaded)] = store.load_derived(tmp_path, key, len(frame))  # keys JSON cannot give back are not kept
    assert name == ("learner inputs", "fidelity") and loaded.x is None and loaded.columns is not None
    np.testing.assert_array_equal(loaded.inverse, inputs.inverse)
    np.testing.assert_array_equal(loaded.dense(), inputs.dense())
    assert store.load_derived(tmp_path, key, len(frame) + 1) == []  # another population's size
    other = store.derived_key(store.population_key((2, None), 1, None))
    assert store.load_derived(tmp_path, other, len(frame)) == []


def test_a_failed_write_leaves_no_half_written_file(tmp_path: Path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.pa.ipc, "new_file", full)
    assert store.save_population(tmp_path, "key", pd.DataFrame({"a": [1, 2]}), {}) is None
    monkeypatch.setattr(store.np, "savez", full)
    inputs = distinct_inputs(pd.DataFrame({"x": [1.0, 2.0, 1.0]}), ["x"])
    assert store.save_derived(tmp_path, store.derived_key("key"), [("inputs", inputs)]) is None
    assert list(tmp_path.iterdir()) == []  # no .tmp- file stays behind (one per attempt would fill the disk)


def test_a_process_that_holds_the_learner_inputs_does_not_read_or_write_them_again(
    sqlite_engine: Engine, completion_frame, insert_completions, annotate, tmp_path: Path, monkeypatch
):
    """The app between recomputes: the inputs are in the population's memory, so the disk copy
    is neither loaded nor rewritten on every new label."""
    from annotator.analysis import estimates

    insert_completions(sqlite_engine, completion_frame(COUNTS))
    draw_sample(sqlite_engine, 8, seed=1, weights={"benchmark": {"balance": False}})
    items = sampled(sqlite_engine)
    for item in items[:5]:
        annotate(sqlite_engine, item, "ann", "german", correct=True, slot=1)
    keep_population_cached(sqlite_engine)
    keep_population_on_disk(sqlite_engine, tmp_path / "cache")
    loads, saves = [], []
    load, save = estimates.load_derived, estimates.save_derived
    monkeypatch.setattr(estimates, "load_derived", lambda *args: loads.append(1) or load(*args))
    monkeypatch.setattr(estimates, "save_derived", lambda *args: saves.append(1) or save(*args))
    estimates.study_estimates(sqlite_engine, cross_fit=2, sample_split=1)
    annotate(sqlite_engine, items[5], "ann", "german", correct=True, slot=1)  # a new label, same population
    estimates.study_estimates(sqlite_engine, cross_fit=2, sample_split=1)
    assert (len(loads), len(saves)) == (1, 1)  # the first recompute only
    assert len(list((tmp_path / "cache").glob("derived-*.npz"))) == 1
