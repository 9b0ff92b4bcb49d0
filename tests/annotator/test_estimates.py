"""End to end on the demo study: debiased estimates from the database against the truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from annotator.analysis.estimates import study_estimates, study_version
from annotator.annotation.reads import current_sample_id
from annotator.cli import main as cli_main
from annotator.demo.setup import set_up_demo
from annotator.design.draws import top_up
from annotator.languages import query_language_class
from annotator.storage import make_engine, upgrade_database

FAST = dict(cross_fit=5, sample_split=2)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small demo with its whole sample labeled by the simulated annotators."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    for _ in set_up_demo(engine, size="small", seed=3, labeled_share=1.0):
        pass
    engine.dispose()
    return path


@pytest.fixture
def demo(demo_file: Path, tmp_path: Path) -> Engine:
    """A private copy of the demo database, for tests that write."""
    copy = tmp_path / "demo.sqlite"
    shutil.copy(demo_file, copy)
    return make_engine(f"sqlite:///{copy}")


def true_ifl(engine: Engine) -> pd.Series:
    """Image effect on fidelity per model x benchmark over all completions, from the oracle."""
    with engine.connect() as connection:
        frame = pd.read_sql(
            text(
                "SELECT c.model, c.benchmark, c.query_language, c.image, o.answer_language "
                "FROM completions c JOIN demo_oracle o ON o.completion_id = c.id"
            ),
            connection,
        )
    frame["fidelity"] = frame["answer_language"] == frame["query_language"].map(query_language_class)
    means = frame.groupby(["model", "benchmark", "image"])["fidelity"].mean().unstack("image")
    return means[1] - means[0]


def test_dsl_estimates_cover_the_truth_where_the_surrogate_misses(demo_file: Path) -> None:
    engine = make_engine(f"sqlite:///{demo_file}")
    estimates = study_estimates(engine, seed=5, **FAST)
    ifl = estimates.ifl[~estimates.ifl["ablation"]].set_index(["model", "benchmark", "estimator"])
    assert len(ifl) == 4 * 3 * 3  # the paper's models x benchmarks x estimators
    truth = true_ifl(engine)
    dsl = ifl.xs("dsl", level="estimator")
    z = (dsl["estimate"] - truth.reindex(dsl.index)) / dsl["se"]
    assert z.abs().max() < 3.5, z
    surrogate_error = (ifl.xs("surrogate", level="estimator")["estimate"] - truth.reindex(dsl.index)).abs()
    # The language-ID surrogate's real errors bias some cells by several points.
    assert surrogate_error.max() > 0.02
    assert set(estimates.interaction["language"]) == {"zho", "deu"}
    assert estimates.labels.annotations > 0
    assert not estimates.strata["empty"].any()
    assert set(estimates.accuracy["outcome"]) == {"correct"}


def test_study_version_changes_with_labels_and_top_ups(demo: Engine) -> None:
    before = study_version(demo)
    with demo.begin() as connection:
        connection.execute(
            text("UPDATE annotations SET comment = 'edited', updated_at = '2100-01-01 00:00:00' WHERE id = 1")
        )
    after_label = study_version(demo)
    assert after_label.labels != before.labels
    sample_id = current_sample_id(demo)
    top_up(demo, sample_id, n_more=20, seed=9)
    after_top_up = study_version(demo)
    assert after_top_up.sample_updated_at != after_label.sample_updated_at
    assert after_top_up.labels == after_label.labels


def test_cli_runs_the_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    cli_main(["--db", url, "demo", "--labeled-share", "0.5"])
    out = capsys.readouterr().out
    assert "demo accounts: anna" in out and "simulated annotators labeled" in out
    with pytest.raises(SystemExit) as exited:
        cli_main(["--db", url, "demo"])
    assert "already holds completions" in str(exited.value.code)

    estimates_csv = tmp_path / "estimates.csv"
    cli_main(["--db", url, "export", "estimates", "--out", str(estimates_csv)])
    table = pd.read_csv(estimates_csv)
    assert {"dsl", "surrogate", "labeled"} == set(table["estimator"])
    assert np.isfinite(table.loc[table["estimator"] == "surrogate", "estimate"]).all()

    gold_csv = tmp_path / "gold.csv"
    cli_main(["--db", url, "export", "gold", "--out", str(gold_csv)])
    assert len(pd.read_csv(gold_csv)) == 600

    capsys.readouterr()
    cli_main(["--db", url, "estimate", "--per-language", "--formula", "fidelity ~ image + image:llm"])
    out = capsys.readouterr().out
    assert "image:llm[T.leo]" in out and "image:vision" not in out
    ifl_section = out.split("== ifl")[1].split("== interaction")[0]
    assert " deu " in ifl_section  # per-language rows

    cli_main(["--db", url, "sample", "--n", "650", "--seed", "4", "--top-up", "--report"])
    out = capsys.readouterr().out
    assert "added in round 2" in out and "n_total" in out


def test_nothing_to_estimate_says_why(tmp_path: Path) -> None:
    from annotator.analysis.estimates import NotEstimableError
    from annotator.demo.loading import load_demo

    engine = make_engine(f"sqlite:///{tmp_path / 'bare.sqlite'}")
    upgrade_database(engine)
    load_demo(engine, size="small", seed=0)
    with pytest.raises(NotEstimableError, match="no sample has been drawn yet"):
        study_estimates(engine)


def test_the_first_label_gives_estimates_not_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One label: cross-fitting has a fold that trains on nothing; ``ifl estimate`` still shows
    the surrogate's estimates and says the label-based cells are not yet estimable."""
    url = f"sqlite:///{tmp_path / 'first.sqlite'}"
    cli_main(["--db", url, "demo", "--size", "small", "--labeled-share", "0", "--no-cache"])
    cli_main(["--db", url, "simulate-annotators", "--error-rate", "0", "--n", "1", "--seed", "1"])
    capsys.readouterr()
    cli_main(["--db", url, "estimate", "--no-cache"])
    assert "== ifl" in capsys.readouterr().out
    table = study_estimates(make_engine(url), **FAST).all_estimates
    assert (table.loc[table["estimator"] != "surrogate", "status"] == "not_estimable").all()
    shown = table.loc[(table["estimator"] == "surrogate") & (table["status"] == "ok")]
    assert len(shown) and np.isfinite(shown["estimate"]).all()
