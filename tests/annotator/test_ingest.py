"""Ingest: schema, canonical values, idempotent upserts and all-or-nothing errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from annotator.cli import main as cli_main
from annotator.ingest.completions import MAX_TEXT_BYTES, import_file, import_frame
from annotator.ingest.reading import IngestError
from db.models import Completion

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
            for row in connection.execute(
                text("SELECT id, query_language, image, completion, prompt, covariates FROM completions")
            )
        }
        judge = dict(
            connection.execute(
                text("SELECT completion_id, predicted_correct FROM predictions WHERE source='judge'")
            ).all()
        )
    assert {rows[i].query_language for i in ("c1", "c2", "c3")} == {"deu"}
    assert rows["c4"].query_language == "zho"
    assert [bool(rows[i].image) for i in ("c1", "c2", "c3", "c4")] == [True, False, True, False]
    assert rows["c4"].completion == "这是一只狗"
    assert rows["c3"].prompt is None
    covariates = rows["c1"].covariates
    assert (json.loads(covariates) if isinstance(covariates, str) else covariates) == {"run": "r1"}
    assert {k: (None if v is None else bool(v)) for k, v in judge.items()} == {
        "c1": True,
        "c2": False,
        "c3": None,
        "c4": True,
    }


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
    "unknown language": (
        HEADER + GOOD_ROWS[0] + GOOD_ROWS[1] + "c9,m,MaXM,Elvish,1,text,,,\n",
        3,
        "query_language",
        "unknown language 'Elvish'",
    ),
    "duplicate id": (HEADER + "".join(GOOD_ROWS) + GOOD_ROWS[1], 5, "id", "duplicate id 'c2' (first at row 2)"),
    "missing id": (HEADER + GOOD_ROWS[0] + ",m,MaXM,de,1,text,,,\n", 2, "id", "a value is required"),
    "bad surrogate": (HEADER + GOOD_ROWS[0] + "c9,m,MaXM,de,1,text,,perhaps,\n", 2, "judge_correct", "not a boolean"),
    "header only": (HEADER, None, None, "no rows"),
    "empty file": ("", None, None, "the file is empty"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_names_row_and_column_and_changes_nothing(
    engine: Engine, good_csv: Path, tmp_path: Path, case: str
) -> None:
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
    path = write(
        tmp_path / "latin1.csv", (HEADER + GOOD_ROWS[0]).encode() + "c9,m,MaXM,de,1,Übel,,,\n".encode("latin-1")
    )
    with pytest.raises(IngestError, match=r"not UTF-8 at line 3"):
        import_file(sqlite_engine, path)
    assert snapshot(sqlite_engine) == {"completions": [], "predictions": []}


def test_failure_mid_write_rolls_back(sqlite_engine: Engine, good_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database error after the completions were written leaves nothing behind."""
    import annotator.ingest.completions as ingest

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
    """More rows than one executemany batch, and a remainder short of a many-row statement
    (100 rows on SQLite): counts and stored rows stay exact."""
    n = 45_123
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


# ----------------------------------------------------------------------------- issue 11: hostile and broken input

ID_LIMIT = Completion.__table__.c["id"].type.length
MODEL_LIMIT = Completion.__table__.c["model"].type.length
JSONL_GOOD = [
    {"id": "c1", "model": "m", "benchmark": "MaXM", "query_language": "de", "image": True, "completion": "Hund"},
    {"id": "c2", "model": "m", "benchmark": "MaXM", "query_language": "de", "image": False, "completion": "Katze"},
]


def jsonl(*records: dict | str) -> str:
    return "".join((record if isinstance(record, str) else json.dumps(record)) + "\n" for record in records)


def full_snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """:func:`snapshot` plus the settings an import may record (image roots)."""
    state = snapshot(engine)
    with engine.connect() as connection:
        state["study_settings"] = [
            tuple(row) for row in connection.execute(text("SELECT key, value FROM study_settings"))
        ]
    return state


REFUSED = {
    # 9: NUL bytes and lengths beyond the schema, the same on both backends
    "NUL in completion": ("csv", HEADER + GOOD_ROWS[0] + "c9,m,MaXM,de,1,te\x00xt,,,\n", 2, "completion", "NUL byte"),
    "NUL in model": ("csv", HEADER + "c9,m\x00x,MaXM,de,1,text,,,\n", 1, "model", "NUL byte"),
    "NUL in prompt (JSON escape)": (
        "jsonl",
        jsonl(JSONL_GOOD[0], {**JSONL_GOOD[1], "prompt": "a\u0000b"}),
        2,
        "prompt",
        "NUL byte",
    ),
    "NUL in a covariate": ("csv", HEADER + "c9,m,MaXM,de,1,text,,,r\x001\n", 1, "run", "NUL byte"),
    "id too long": (
        "csv",
        HEADER + GOOD_ROWS[0] + f"{'i' * (ID_LIMIT + 1)},m,MaXM,de,1,text,,,\n",
        2,
        "id",
        f"{ID_LIMIT + 1} characters long; at most {ID_LIMIT}",
    ),
    "model too long": (
        "jsonl",
        jsonl({**JSONL_GOOD[0], "model": "m" * (MODEL_LIMIT + 1)}),
        1,
        "model",
        f"at most {MODEL_LIMIT}",
    ),
    "surrogate name too long": (
        "csv",
        HEADER.replace("judge_correct", "j" * 101 + "_correct") + GOOD_ROWS[0],
        None,
        "j" * 101 + "_correct",
        "at most 100 characters",
    ),
    # 10: a column named twice
    "duplicate header": (
        "csv",
        "id,model,benchmark,query_language,image,completion,completion\nc1,m,MaXM,de,1,a,b\n",
        None,
        "completion",
        "'completion' 2 times",
    ),
    "duplicate header after stripping": (
        "csv",
        ("id,model,benchmark,query_language,image,completion, completion \nc1,m,MaXM,de,1,a,b\n"),
        None,
        "completion",
        "2 times",
    ),
    "duplicate JSON key": (
        "jsonl",
        jsonl(JSONL_GOOD[0], '{"id": "c2", "completion": "a", "completion": "b"}'),
        None,
        "completion",
        "line 2: the key 'completion' appears twice",
    ),
    # 11: ids are text or integers; no text field takes an object, array or boolean
    "fractional id": (
        "jsonl",
        jsonl(JSONL_GOOD[0], {**JSONL_GOOD[1], "id": 5.5}),
        2,
        "id",
        "5.5 is a number with a fraction",
    ),
    "float id that looks whole": ("jsonl", jsonl({**JSONL_GOOD[0], "id": 1.0}), 1, "id", "fraction"),
    "boolean id": ("jsonl", jsonl({**JSONL_GOOD[0], "id": True}), 1, "id", "True is a boolean"),
    "object id": ("jsonl", jsonl({**JSONL_GOOD[0], "id": {"a": 1}}), 1, "id", "JSON object"),
    "object completion": (
        "jsonl",
        jsonl(JSONL_GOOD[0], {**JSONL_GOOD[1], "completion": {"text": "x"}}),
        2,
        "completion",
        "a JSON object is not text",
    ),
    "array prompt": ("jsonl", jsonl({**JSONL_GOOD[0], "prompt": ["a", "b"]}), 1, "prompt", "a JSON array is not text"),
    # 12: where a broken file breaks
    "broken JSON line": (
        "jsonl",
        jsonl(*JSONL_GOOD) + '{"id": "c3", "model": \n',
        None,
        None,
        "line 3: not valid JSON",
    ),
    "JSON line not an object": ("jsonl", jsonl(JSONL_GOOD[0], "[1, 2]"), None, None, "line 2: not a JSON object"),
    "quote never closed": (
        "csv",
        HEADER + GOOD_ROWS[0] + 'c9,m,MaXM,de,1,"He said hi,,,\n' + GOOD_ROWS[1],
        2,
        "completion",
        "unbalanced quote (line 3): a quote opened here is never closed",
    ),
    "quote closed mid-field": (
        "csv",
        HEADER + GOOD_ROWS[0] + 'c9,m,MaXM,de,1,"He said hi,,,\n' + 'c10,m,MaXM,Elvish,1,"ok" then more,,,\n',
        2,
        "completion",
        "unbalanced quote (line 3): a quoted field is closed and followed by more text",
    ),
    # 13: one text field holds at most 1 MB
    "completion over 1 MB": (
        "csv",
        HEADER + f"c9,m,MaXM,de,1,{'a' * (MAX_TEXT_BYTES + 1)},,,\n",
        1,
        "completion",
        "at most 1,000,000 (1 MB)",
    ),
    "completion over 1 MB in bytes": (
        "jsonl",
        jsonl({**JSONL_GOOD[0], "completion": "ü" * (MAX_TEXT_BYTES // 2 + 1)}),
        1,
        "completion",
        "1,000,002 bytes",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_hostile_input_is_refused_alike_with_row_and_column_and_changes_nothing(
    engine: Engine, good_csv: Path, tmp_path: Path, case: str
) -> None:
    import_file(engine, good_csv)
    before = full_snapshot(engine)
    fmt, content, row, column, message = REFUSED[case]
    path = write(tmp_path / f"bad.{fmt}", content)
    with pytest.raises(IngestError) as raised:
        import_file(engine, path)
    error = raised.value
    assert (error.file, error.row, error.column) == (str(path), row, column)
    assert message in str(error), str(error)
    assert full_snapshot(engine) == before


def test_what_fits_the_limits_is_stored_exactly_on_both_backends(engine: Engine, tmp_path: Path) -> None:
    longest_id, longest_model = "i" * ID_LIMIT, "m" * MODEL_LIMIT
    largest = "ü" * (MAX_TEXT_BYTES // 2)  # exactly 1 MB of UTF-8
    records = [
        {**JSONL_GOOD[0], "id": longest_id, "model": longest_model, "completion": largest},
        {**JSONL_GOOD[1], "id": 7, "completion": 5},
    ]
    import_file(engine, write(tmp_path / "edge.jsonl", jsonl(*records)))
    with engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT id, model FROM completions")).all())
        completions = dict(connection.execute(text("SELECT id, completion FROM completions")).all())
    assert stored == {longest_id: longest_model, "7": "m"}
    assert completions == {longest_id: largest, "7": "5"}


def test_an_integer_id_is_the_same_row_as_its_text(engine: Engine, tmp_path: Path) -> None:
    """Issue 11.11: ``{"id": 1}`` updates the row ``"1"``, it does not add ``"1.0"`` beside it."""
    import_file(engine, write(tmp_path / "text.csv", HEADER + "1,m,MaXM,de,1,first,,,\n"))
    report = import_file(
        engine, write(tmp_path / "int.jsonl", jsonl({**JSONL_GOOD[0], "id": 1, "completion": "second"}))
    )
    assert (report.inserted, report.updated) == (0, 1)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id, completion FROM completions")).all() == [("1", "second")]


def test_a_quote_inside_a_quoted_field_is_fine(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Not every quote is a stray one: doubled quotes and multi-line answers import as they are."""
    content = HEADER + 'c1,m,MaXM,de,1,"Er sagte ""hallo""\nund ging.",,,\n' + GOOD_ROWS[1]
    import_file(sqlite_engine, write(tmp_path / "quoted.csv", content))
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("SELECT completion FROM completions WHERE id='c1'")).scalar_one() == (
            'Er sagte "hallo"\nund ging.'
        )


@pytest.mark.parametrize(
    ("values", "row", "message"),
    [
        ({"id": [1.5, 2.0]}, 1, "1.5 is a number with a fraction"),
        ({"completion": [["a"], ["b"]]}, 1, "a JSON array is not text"),
        ({"model": [True, False]}, 1, "is a boolean"),
    ],
)
def test_parquet_cells_that_are_not_text_are_refused(engine: Engine, tmp_path: Path, values, row, message) -> None:
    frame = pd.DataFrame(
        {
            "id": ["p1", "p2"],
            "model": "m",
            "benchmark": "MaXM",
            "query_language": "de",
            "image": [True, False],
            "completion": ["a", "b"],
        }
    )
    for column, column_values in values.items():
        frame[column] = column_values
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    with pytest.raises(IngestError) as raised:
        import_file(engine, path)
    assert (raised.value.row, raised.value.column) == (row, next(iter(values)))
    assert message in str(raised.value)
    assert full_snapshot(engine)["completions"] == []


# ----------------------------------------------------------------------------- issue 11: images

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
IMAGE_HEADER = "id,model,benchmark,query_language,image,completion,image_path,image_url\n"


@pytest.fixture
def image_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A study folder with images beside the data, a secret image outside it, no configured root or hosts."""
    folder = tmp_path / "study"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "1.png").write_bytes(PNG)
    (folder / "img" / "notes.png").write_text("not an image")
    (tmp_path / "secret.png").write_bytes(PNG)
    monkeypatch.delenv("IFL_IMAGE_ROOT", raising=False)
    monkeypatch.delenv("IFL_IMAGE_HOSTS", raising=False)
    return folder


@pytest.mark.parametrize("outside", ["../secret.png", "img/../../secret.png", "/etc/passwd", "{secret}"])
def test_an_image_path_outside_the_root_is_refused(engine: Engine, image_folder: Path, outside: str) -> None:
    outside = outside.format(secret=image_folder.parent / "secret.png")
    data = write(
        image_folder / "data.csv", IMAGE_HEADER + "c1,m,MaXM,de,1,a,img/1.png,\n" + f"c2,m,MaXM,de,1,b,{outside},\n"
    )
    before = full_snapshot(engine)
    with pytest.raises(IngestError) as raised:
        import_file(engine, data, image_root=image_folder)
    assert (raised.value.row, raised.value.column) == (2, "image_path")
    assert "outside the image root" in str(raised.value) and repr(outside) in str(raised.value)
    assert full_snapshot(engine) == before


def test_a_link_out_of_the_root_is_refused(sqlite_engine: Engine, image_folder: Path) -> None:
    (image_folder / "img" / "link.png").symlink_to(image_folder.parent / "secret.png")
    data = write(image_folder / "data.csv", IMAGE_HEADER + "c1,m,MaXM,de,1,a,img/link.png,\n")
    with pytest.raises(IngestError, match=r"row 1, column 'image_path'.*outside the image root"):
        import_file(sqlite_engine, data, image_root=image_folder)


def test_image_paths_are_stored_resolved_missing_ones_warned_and_the_root_recorded(
    engine: Engine, image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotator.ingest.images import image_roots, servable_image_path

    monkeypatch.setenv("IFL_IMAGE_ROOT", str(tmp_path / "elsewhere"))
    rows = [
        "c1,m,MaXM,de,1,a,img/1.png,\n",
        f"c2,m,MaXM,de,1,b,{image_folder / 'img' / '1.png'},\n",
        "c3,m,MaXM,de,1,c,img/later.png,\n",
        "c4,m,MaXM,de,1,d,img/notes.png,\n",
        "c5,m,MaXM,de,1,e,,\n",
    ]
    data = write(image_folder / "data.csv", IMAGE_HEADER + "".join(rows))
    report = import_file(engine, data, image_root=image_folder)
    assert len(report.warnings) == 2
    assert "no such file (yet) in the image root" in report.warnings[0] and "for 1 row (3)" in report.warnings[0]
    assert "not a PNG, JPEG" in report.warnings[1] and "for 1 row (4)" in report.warnings[1]
    with engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT id, image_path FROM completions")).all())
    image = str(image_folder / "img" / "1.png")
    assert stored == {
        "c1": image,
        "c2": image,
        "c3": str(image_folder / "img" / "later.png"),
        "c4": str(image_folder / "img" / "notes.png"),
        "c5": None,
    }
    assert servable_image_path(stored["c1"]) is None, "outside the configured root"
    assert servable_image_path(stored["c1"], image_roots(engine)) == Path(image), "inside the recorded root"
    assert servable_image_path(str(image_folder.parent / "secret.png"), image_roots(engine)) is None


@pytest.mark.parametrize(
    ("hosts", "url", "message"),
    [
        ("", "javascript:alert(1)", "is not an http(s) URL"),
        ("", "file:///etc/passwd", "is not an http(s) URL"),
        (
            "images.example.org",
            "http://127.0.0.1:8080/admin.png",
            "host '127.0.0.1', which IFL_IMAGE_HOSTS does not allow",
        ),
    ],
)
def test_image_urls_must_be_http_and_from_an_allowed_host(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hosts: str, url: str, message: str
) -> None:
    monkeypatch.setenv("IFL_IMAGE_HOSTS", hosts)
    content = IMAGE_HEADER + "c1,m,MaXM,de,1,a,,https://images.example.org/1.png\n" + f"c2,m,MaXM,de,1,b,,{url}\n"
    with pytest.raises(IngestError) as raised:
        import_file(engine, write(tmp_path / "urls.csv", content))
    assert (raised.value.row, raised.value.column) == (2, "image_url")
    assert message in str(raised.value)
    assert full_snapshot(engine)["completions"] == []


def test_cli_import_confines_images_to_the_files_folder_and_warns(
    image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    good = write(
        image_folder / "data.csv", IMAGE_HEADER + "c1,m,MaXM,de,1,a,img/1.png,\nc2,m,MaXM,de,1,b,img/gone.png,\n"
    )
    cli_main(["--db", url, "import", str(good)])
    captured = capsys.readouterr()
    assert "2 rows (2 new" in captured.out
    assert "warning:" in captured.err and "no such file (yet) in the image root" in captured.err
    bad = write(image_folder / "bad.csv", IMAGE_HEADER + "c3,m,MaXM,de,1,a,../secret.png,\n")
    with pytest.raises(SystemExit) as exited:
        cli_main(["--db", url, "import", str(bad)])
    assert exited.value.code == 2
    assert "row 1, column 'image_path'" in capsys.readouterr().err
