"""The commands that change the population (``ifl import``, ``lid``, ``sample``, ``demo``) leave
it on disk for the next ``ifl estimate`` (issue 10): it then loads instead of reading it. They
skip that with ``--no-cache`` or ``IFL_CACHE_DIR=off``, and a failure only warns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from population_support import COUNTS, Reads
from sqlalchemy import Engine, func, select

from annotator.analysis import frame as analysis
from annotator.analysis import population_store as store
from annotator.analysis.frame import population_version
from annotator.cli import main as cli_main
from annotator.storage import make_engine
from db.models import SampleItem


def kept_now(engine: Engine, folder: Path | None = None) -> pd.DataFrame | None:
    """The population kept on disk for the database's current version (ifl estimate's key), or None."""
    folder = folder or store.population_cache_dir(engine)
    assert folder is not None
    loaded = store.load_population(folder, store.population_key(population_version(engine), None, None))
    return None if loaded is None else loaded[0]


def sample_size(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(SampleItem)) or 0)


def test_ifl_sample_leaves_the_population_for_ifl_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(store.CACHE_DIR_SETTING, raising=False)  # the default: beside the SQLite file
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    engine = make_engine(url)
    cli_main(["--db", url, "demo"])
    assert "preparing the analysis cache for ifl estimate... done in" in capsys.readouterr().err
    after_demo = kept_now(engine)
    assert after_demo is not None

    cli_main(["--db", url, "sample", "--n", "650", "--seed", "4", "--top-up"])
    err = capsys.readouterr().err
    assert err.count("preparing the analysis cache") == 1 and " done in " in err
    kept = kept_now(engine)  # the version after the top-up: the demo's copy no longer matches it
    assert kept is not None and int(kept["sampled"].sum()) == sample_size(engine) == 650
    assert int(after_demo["sampled"].sum()) < 650
    pd.testing.assert_frame_equal(kept, analysis.population_frame(engine).frame, check_exact=True)

    reads = Reads(monkeypatch)
    cli_main(["--db", url, "estimate"])
    assert reads.count == 0, "ifl estimate loads the population the sample left; it reads none"
    assert "== ifl" in capsys.readouterr().out
    engine.dispose()


@pytest.fixture
def study(sqlite_engine: Engine, completion_frame, insert_completions) -> str:
    """A small study without a sample; its URL."""
    insert_completions(sqlite_engine, completion_frame(COUNTS))
    return sqlite_engine.url.render_as_string(hide_password=False)


def test_no_cache_and_cache_dir_off_prepare_nothing(
    study: str, sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv(store.CACHE_DIR_SETTING, str(tmp_path / "cache"))
    reads = Reads(monkeypatch)
    cli_main(["--db", study, "sample", "--n", "8", "--seed", "1", "--no-cache"])
    assert reads.count == 0 and not (tmp_path / "cache").exists()
    assert "analysis cache" not in capsys.readouterr().err
    monkeypatch.setenv(store.CACHE_DIR_SETTING, "off")
    cli_main(["--db", study, "sample", "--n", "10", "--seed", "1", "--top-up"])
    assert reads.count == 0 and not (tmp_path / "cache").exists()
    assert "analysis cache" not in capsys.readouterr().err
    assert sample_size(sqlite_engine) == 10
    monkeypatch.setenv(store.CACHE_DIR_SETTING, str(tmp_path / "cache"))
    cli_main(["--db", study, "sample", "--n", "12", "--seed", "1", "--top-up"])  # on again: prepared
    assert reads.count == 1 and kept_now(sqlite_engine) is not None


def test_a_failure_to_prepare_the_cache_only_warns(
    study: str, sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv(store.CACHE_DIR_SETTING, str(tmp_path / "cache"))

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(analysis, "population_frame", broken)
    cli_main(["--db", study, "sample", "--n", "8", "--seed", "1"])  # no SystemExit: the sample is drawn
    err = capsys.readouterr().err
    assert "preparing the analysis cache for ifl estimate... failed" in err
    assert "warning: the analysis cache was not prepared (RuntimeError('the database went away'))" in err
    assert sample_size(sqlite_engine) == 8
    monkeypatch.undo()

    blocked = tmp_path / "a file"  # IFL_CACHE_DIR names a file: the folder cannot be made
    blocked.write_text("not a folder")
    monkeypatch.setenv(store.CACHE_DIR_SETTING, str(blocked))
    cli_main(["--db", study, "sample", "--n", "10", "--seed", "1", "--top-up"])
    err = capsys.readouterr().err
    assert "... not written\nwarning: could not write the analysis cache in" in err
    assert sample_size(sqlite_engine) == 10


def test_ifl_import_leaves_the_population_for_ifl_estimate(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv(store.CACHE_DIR_SETTING, str(tmp_path / "cache"))
    csv = tmp_path / "completions.csv"
    csv.write_text(
        "id,model,benchmark,query_language,image,completion\na,m,MaXM,deu,true,Ein Hund\nb,m,MaXM,deu,false,A dog\n"
    )
    url = sqlite_engine.url.render_as_string(hide_password=False)
    cli_main(["--db", url, "import", str(csv)])
    assert " done in " in capsys.readouterr().err
    kept = kept_now(sqlite_engine)
    assert kept is not None and sorted(kept["completion_id"]) == ["a", "b"]
