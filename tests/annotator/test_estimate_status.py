"""Cells the labels cannot identify are reported as such, never as a number (issue 9.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from annotator.cli import main as cli_main


def test_export_and_cli_say_which_cells_need_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'few.sqlite'}"
    cli_main(["--db", url, "demo", "--labeled-share", "0.05"])  # 30 of 600 labeled
    estimates_csv = tmp_path / "estimates.csv"
    cli_main(["--db", url, "export", "estimates", "--out", str(estimates_csv)])
    table = pd.read_csv(estimates_csv)
    assert {"status", "needs", "df", "bound_low", "bound_high"} <= set(table.columns)
    assert set(table["status"]) == {"ok", "not_estimable"}
    blocked = table.loc[table["status"] == "not_estimable"]
    assert blocked[["estimate", "se", "ci_low", "ci_high"]].isna().all().all()
    assert blocked["needs"].str.match(r"not yet estimable: needs about \d+ more labels? in \S").all()
    shown = table.loc[table["status"] == "ok"]
    assert np.isfinite(shown[["estimate", "ci_low", "ci_high"]]).all().all()
    assert (shown["ci_high"] > shown["ci_low"]).all()  # no zero-width interval

    capsys.readouterr()
    cli_main(["--db", url, "estimate"])
    out = capsys.readouterr().out
    section = out.split("== not yet estimable")[1]
    first = blocked.iloc[0]
    assert f"{first['model']} {first['benchmark']}: {first['needs']}" in section
