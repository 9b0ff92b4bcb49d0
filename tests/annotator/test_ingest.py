"""Ingest: schema, canonical values, idempotent upserts and all-or-nothing errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from annotator.cli import main as cli_main
from annotator.ingest import IngestError, import_file, import_frame

HEADER = "id,model,benchmark,query_language,image,completion,prompt,judge_correct,run\n"
GOOD_ROWS = [
    "c1,llava-v1.5-7b,MaXM,de,true,Das ist ein Hund.,Was ist das?,1,r1\n",
    "c2,llava-v1.5-7b,MaXM,deu,0,This is a dog.,Was ist das?,0,r1\n",
    "c3,bakllava,ViSIT,German,yes,Ein Hund,,,r2\n",
    "c4,bakllava,ViSIT,Chinese,No,这是一只狗,这是什么？,true,r2\n",
]


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of the tables an import writes, to prove a failed import changed nothing."""
    with engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
            for table in ("completions", "predictions")
        }


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    return write(tmp_path / "good.csv", HEADER + "".join(GOOD_ROWS))


def test_import_csv_stores_canonical_values(engine: Engine, good_csv: Path) -> None:
    report = import_file(engine, good_csv)
    assert (report.rows, report.inserted, report.updated, report.unchanged) == (4, 4, 0, 0)
    assert report.surrogates == ["judge"] and report.covariates == ["run"]
    with engine.connect() as connection:
        rows = {
            row.id: row
            for row in connection.execute(text("SELECT id, query_language, image, completion, prompt, covariates FROM completions"))
        }
        judge = dict(connection.execute(text("SELECT completion_id, predicted_correct FROM predictions WHERE source='judge'")).all())
    assert {rows[i].query_language for i in ("c1", "c2", "c3")} == {"deu"}
    assert rows["c4"].query_language == "zho"
    assert [bool(rows[i].image) for i in ("c1", "c2", "c3", "c4")] == [True, False, True, False]
    assert rows["c4"].completion == "这是一只狗"
    assert rows["c3"].prompt is None
    covariates = rows["c1"].covariates
    assert (json.loads(covariates) if isinstance(covariates, str) else covariates) == {"run": "r1"}
    assert {k: (None if v is None else bool(v)) for k, v in judge.items()} == {"c1": True, "c2": False, "c3": None, "c4": True}


def test_reimport_changes_nothing_and_updates_what_changed(engine: Engine, good_csv: Path, tmp_path: Path) -> None:
    import_file(engine, good_csv)
    before = snapshot(engine)
    again = import_file(engine, good_csv)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    assert snapshot(engine) == before

    edited = write(tmp_path / "edited.csv", HEADER + "".join(GOOD_ROWS).replace("Ein Hund", "Eine Katze"))
    report = import_file(engine, edited)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 3)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT completion FROM completions WHERE id='c3'")).scalar_one() == "Eine Katze"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_import_jsonl_and_parquet(sqlite_engine: Engine, tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame(
        {
            "id": ["j1", "j2"],
            "model": ["m", "m"],
            "benchmark": ["LLaVA-W", "LLaVA-W"],
            "query_language": ["hi", "Hebrew"],
            "image": [True, False],
            "completion": ["यह एक कुत्ता है", "זה כלב"],
            "llm": ["vicuna", "vicuna"],
            "score": [0.5, 1.5],
        }
    )
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path)
    report = import_file(sqlite_engine, path)
    assert report.inserted == 2 and report.covariates == ["score"]
    with sqlite_engine.connect() as connection:
        rows = connection.execute(text("SELECT query_language, llm, covariates FROM completions ORDER BY id")).all()
    assert [row.query_language for row in rows] == ["hin", "heb"]
    assert rows[0].llm == "vicuna" and json.loads(rows[1].covariates) == {"score": 1.5}


BAD_FILES = {
    "missing column": (HEADER.replace("image,", "") + "c9,m,MaXM,de,text\n", None, "image", "missing required column"),
    "bad boolean": (HEADER + GOOD_ROWS[0] + "c9,m,MaXM,de,maybe,text,,,\n", 2, "image", "'maybe' is not a boolean"),
    "unknown language": (HEADER + GOOD_ROWS[0] + GOOD_ROWS[1] + "c9,m,MaXM,Elvish,1,text,,,\n", 3, "query_language", "unknown language 'Elvish'"),
    "duplicate id": (HEADER + "".join(GOOD_ROWS) + GOOD_ROWS[1], 5, "id", "duplicate id 'c2' (first at row 2)"),
    "missing id": (HEADER + GOOD_ROWS[0] + ",m,MaXM,de,1,text,,,\n", 2, "id", "a value is required"),
    "bad surrogate": (HEADER + GOOD_ROWS[0] + "c9,m,MaXM,de,1,text,,perhaps,\n", 2, "judge_correct", "not a boolean"),
    "header only": (HEADER, None, None, "no rows"),
    "empty file": ("", None, None, "the file is empty"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_names_row_and_column_and_changes_nothing(engine: Engine, good_csv: Path, tmp_path: Path, case: str) -> None:
    import_file(engine, good_csv)
    before = snapshot(engine)
    content, row, column, message = BAD_FILES[case]
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(IngestError) as raised:
        import_file(engine, path)
    error = raised.value
    assert (error.file, error.row, error.column) == (str(path), row, column)
    assert message in str(error) and str(path) in str(error)
    assert snapshot(engine) == before


def test_undecodable_bytes_name_the_line(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.csv", (HEADER + GOOD_ROWS[0]).encode() + "c9,m,MaXM,de,1,Übel,,,\n".encode("latin-1"))
    with pytest.raises(IngestError, match=r"not UTF-8 at line 3"):
        import_file(sqlite_engine, path)
    assert snapshot(sqlite_engine) == {"completions": [], "predictions": []}


def test_failure_mid_write_rolls_back(sqlite_engine: Engine, good_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database error after the completions were written leaves nothing behind."""
    import annotator.ingest as ingest

    real_upsert = ingest.upsert_rows

    def fail_on_predictions(connection, table, frame, keys, stamp=None):
        if table.name == "predictions":
            raise RuntimeError("disk full")
        return real_upsert(connection, table, frame, keys, stamp)

    monkeypatch.setattr(ingest, "upsert_rows", fail_on_predictions)
    with pytest.raises(RuntimeError):
        import_file(sqlite_engine, good_csv)
    assert snapshot(sqlite_engine) == {"completions": [], "predictions": []}


def test_import_frame_large_batch_counts(sqlite_engine: Engine) -> None:
    """More rows than one executemany batch: counts and stored rows stay exact."""
    n = 45_000
    frame = pd.DataFrame(
        {
            "id": [f"x{i}" for i in range(n)],
            "model": "m",
            "benchmark": "MaXM",
            "query_language": "ro",
            "image": [i % 2 for i in range(n)],
            "completion": "Acesta este un câine.",
        }
    )
    assert import_frame(sqlite_engine, frame).inserted == n
    frame.loc[n - 1, "completion"] = "Altceva"
    report = import_frame(sqlite_engine, frame)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, n - 1)
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM completions WHERE query_language='ron'")).scalar_one() == n


def test_cli_import_reports_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    bad = write(tmp_path / "bad.csv", HEADER + "c1,m,MaXM,de,maybe,t,,,\n")
    with pytest.raises(SystemExit) as exited:
        cli_main(["--db", url, "import", str(bad)])
    assert exited.value.code == 2
    assert "row 1, column 'image'" in capsys.readouterr().err
    good = write(tmp_path / "good.csv", HEADER + "".join(GOOD_ROWS))
    cli_main(["--db", url, "import", str(good), "--format", "csv"])
    assert "4 rows (4 new" in capsys.readouterr().out


def test_display_name_is_what_errors_name(sqlite_engine: Engine, tmp_path: Path) -> None:
    """An upload saved under a temporary path is reported under the user's own file name."""
    saved = write(tmp_path / "upload.csv", HEADER + "c1,m,MaXM,de,maybe,t,,,\n")
    with pytest.raises(IngestError) as raised:
        import_file(sqlite_engine, saved, display_name="my completions.csv")
    assert str(raised.value).startswith("my completions.csv, row 1, column 'image'")
    empty = write(tmp_path / "empty.csv", "")
    with pytest.raises(IngestError, match=r"^my completions.csv: the file is empty"):
        import_file(sqlite_engine, empty, display_name="my completions.csv")
