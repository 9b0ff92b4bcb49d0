"""The dashboard's strata table names each stratum's benchmark and query language correctly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import text

from annotator.analysis.estimates import study_estimates
from annotator.demo.setup import set_up_demo
from annotator.storage import make_engine, upgrade_database


def test_strata_keep_their_benchmark_and_language(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    upgrade_database(engine)
    for _ in set_up_demo(engine, size="small", seed=4, labeled_share=0.5):
        pass
    strata = study_estimates(engine, seed=2, cross_fit=5, sample_split=2).strata
    with engine.connect() as connection:
        completions = pd.read_sql(text("SELECT DISTINCT benchmark, query_language FROM completions"), connection)
    # The demo's sample (implicit stratification) keeps benchmark x language strata: "MaXM|deu".
    assert strata["stratum"].str.count("\\|").max() == 1
    pairs = set(completions.itertuples(index=False, name=None))
    assert set(zip(strata["benchmark"], strata["query_language"], strict=True)) <= pairs
    for row in strata.itertuples():
        assert row.stratum.startswith(f"{row.benchmark}|{row.query_language}")
