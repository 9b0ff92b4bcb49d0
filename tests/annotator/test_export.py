"""CSV exports: formula neutralisation, types, and the gold and DSL tables."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, select

from annotator.analysis.export import (
    ANNOTATOR_FIELDS,
    BOM,
    DSL_COLUMNS,
    csv_bytes,
    export,
    export_frame,
    write_csv,
)
from annotator.analysis.wording import with_term_words
from annotator.design.draws import draw_sample
from annotator.design.sampling import NoSampleError
from db.models import SampleItem


def cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_text_that_a_spreadsheet_would_run_is_quoted_but_numbers_stay(tmp_path):
    frame = pd.DataFrame(
        {
            "text": ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain", "-0.5", "a=b", None],
            "number": [-1.5, -2.0, 3.0, -4e-3, 0.0, 1.0, 2.0, -7.0, 8.0, np.nan],
            "count": [-1, -2, 3, 4, 5, 6, 7, 8, 9, 10],
            "mixed": [-3, "=x", 2.5, "-y", None, "ok", True, "-1", "@", "+1e5"],
        }
    )
    out = tmp_path / "out.csv"
    assert write_csv(frame, out) == 10
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and raw.startswith(b'"text","number","count","mixed"\r\n')
    rows = cells(raw.decode("utf-8"))
    assert [row["text"] for row in rows] == [
        "'=1+2",
        "'+cmd",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "plain",
        "-0.5",
        "a=b",
        "",
    ]
    assert [row["number"] for row in rows][:4] == ["-1.5", "-2", "3", "-0.004"]
    assert raw.split(b"\r\n")[1] == b'"\'=1+2",-1.5,-1,"-3"'  # text quoted, numbers not
    assert [row["count"] for row in rows][:2] == ["-1", "-2"]
    assert [row["mixed"] for row in rows] == ["-3", "'=x", "2.5", "'-y", "", "ok", "True", "-1", "'@", "+1e5"]
    back = pd.read_csv(out)
    assert back["number"].dtype == np.float64 and back["number"].iat[0] == -1.5
    assert back["count"].dtype == np.int64


def test_booleans_na_timestamps_and_index():
    stamps = pd.to_datetime(["2026-05-01 12:00:00+02:00", None], utc=True)
    frame = pd.DataFrame(
        {
            "flag": [True, False],
            "maybe": pd.array([True, None], dtype="boolean"),
            "object_flag": [False, None],
            "at": stamps,
            "=name": ["a", "b"],
        },
        index=pd.Index(["x", "y"], name="term"),
    )
    rows = cells(csv_bytes(frame).decode("utf-8"))
    assert list(rows[0]) == ["term", "flag", "maybe", "object_flag", "at", "'=name"]
    assert [(r["flag"], r["maybe"], r["object_flag"]) for r in rows] == [("1", "1", "0"), ("0", "", "")]
    assert [r["at"] for r in rows] == ["2026-05-01T10:00:00.000000Z", ""]
    unnamed = cells(csv_bytes(frame.reset_index(drop=True).iloc[[1]]).decode("utf-8"))
    assert next(iter(unnamed[0])) == "flag"


@pytest.fixture
def labeled_study(
    engine: Engine, completion_frame, insert_completions, annotate, adjudicate
) -> tuple[Engine, str, str]:
    """Two 6-completion strata, 3 sampled from each; the first item of each labeled."""
    insert_completions(engine, completion_frame({("MaXM", "deu"): 6, ("XM3600", "eng"): 6}))
    draw_sample(engine, 6, seed=4, weights={"language": {}})
    with engine.connect() as connection:
        items = pd.read_sql(
            select(SampleItem.completion_id, SampleItem.stratum, SampleItem.queue_position).order_by(
                SampleItem.stratum, SampleItem.queue_position
            ),
            connection,
        )
    first = items.groupby("stratum")["completion_id"].first()
    deu, eng = first["MaXM|deu"], first["XM3600|eng"]
    annotate(engine, deu, "ann", "german", matches_gold=True, correct=True, comment='=HYPERLINK("x")', slot=1)
    annotate(engine, deu, "bob", "english", matches_gold=None, correct=False, slot=2)
    annotate(engine, eng, "bob", "english", correct=None, slot=1)
    adjudicate(engine, deu, "res", "german", matches_gold=True, correct=True, comment="agreed")
    return engine, deu, eng


def test_gold_export_is_wide_per_annotator(labeled_study, tmp_path):
    labeled_study, deu, eng = labeled_study
    frame = export_frame(labeled_study, "gold").set_index("completion_id")
    assert len(frame) == 6
    for k in (1, 2):
        assert all(f"annotator_{k}_{field}" in frame.columns for field in ANNOTATOR_FIELDS)
    row = frame.loc[deu]
    assert (row["annotator_1_name"], row["annotator_2_name"]) == ("ann", "bob")
    assert (row["annotator_1_answer_language"], row["annotator_2_answer_language"]) == ("german", "english")
    assert row["annotator_2_matches_gold"] is pd.NA and bool(row["annotator_2_correct"]) is False
    assert bool(row["adjudicated"]) and bool(row["disagreement"]) and row["adjudicator_name"] == "res"
    assert (row["answer_language"], bool(row["fidelity"]), row["n_annotations"]) == ("german", True, 2)
    assert frame.loc[eng, "annotator_1_name"] == "bob" and pd.isna(frame.loc[eng, "annotator_2_name"])
    assert frame.loc[eng, "correct"] is pd.NA and not frame.loc[eng, "adjudicated"]
    unlabeled = frame.drop(index=[deu, eng])
    assert unlabeled["answer_language"].isna().all() and (unlabeled["n_annotations"] == 0).all()
    assert frame["inclusion_probability"].tolist() == pytest.approx([0.5] * 6)

    out = tmp_path / "gold.csv"
    assert export(labeled_study, "gold", out) == 6
    rows = {row["completion_id"]: row for row in cells(out.read_bytes().decode("utf-8"))}
    assert rows[deu]["annotator_1_comment"] == '\'=HYPERLINK("x")'
    assert (rows[deu]["adjudicated"], rows[deu]["fidelity"], rows[deu]["annotator_2_matches_gold"]) == ("1", "1", "")
    assert rows[deu]["annotator_1_labeled_at"].endswith("Z")
    assert rows[eng]["correct"] == "" and rows[eng]["annotator_2_id"] == ""


def test_dsl_export_reads_back_with_na_where_unlabeled(labeled_study, tmp_path):
    labeled_study, _, _ = labeled_study
    out = tmp_path / "dsl.csv"
    assert export(labeled_study, "dsl", out) == 12
    back = pd.read_csv(out)
    assert tuple(back.columns) == DSL_COLUMNS
    assert set(back["labeled"]) == {0, 1} and set(back["sampled"]) == {0, 1} and set(back["image"]) == {0, 1}
    assert back["labeled"].sum() == 2 and back["sampled"].sum() == 6
    unlabeled = back[back["labeled"] == 0]
    assert unlabeled[["fidelity", "correct", "answer_language"]].isna().all().all()
    labeled = back[back["labeled"] == 1].set_index("stratum")
    assert labeled.loc["MaXM|deu", "fidelity"] == 1.0 and labeled.loc["XM3600|eng", "fidelity"] == 1.0
    assert np.isnan(labeled.loc["XM3600|eng", "correct"])
    # One labeled item in each 6-item stratum: label_prob 1/6 and it sums to the labeled count.
    assert back["label_prob"].tolist() == pytest.approx([1 / 6] * 12)
    assert back["sample_prob"].sum() == pytest.approx(6) and back["label_prob"].sum() == pytest.approx(2)


def test_unknown_kind_and_missing_sample(engine: Engine, tmp_path):
    with pytest.raises(ValueError, match="unknown export 'summary'"):
        export_frame(engine, "summary")
    with pytest.raises(NoSampleError):
        export(engine, "gold", tmp_path / "gold.csv")


def test_gold_export_carries_the_texts_and_has_an_excel_variant(
    engine: Engine, completion_frame, insert_completions, annotate, tmp_path
):
    """Prompt, gold answer and completion beside the labels; ``excel=True`` is the same CSV after a BOM."""
    frame = completion_frame({("MaXM", "zho"): 4})
    texts = {
        "prompt": ["图片里有什么？", "这是什么颜色？", None, "問題は何ですか"],
        "gold_answer": ["一只猫", "红色", "答案", None],
        "completion": ["一只猫在沙发上。", "=1+1", 'line one\nline two, with "quotes"', ""],
    }
    insert_completions(engine, frame.assign(**texts))
    draw_sample(engine, 4, seed=1, weights={"language": {}})
    annotate(engine, frame["id"].iloc[0], "li", "chinese", matches_gold=True, correct=True, slot=1)

    gold = export_frame(engine, "gold").set_index("completion_id").loc[frame["id"]]
    columns = list(gold.reset_index().columns)
    assert (
        columns.index("double_annotate")
        < columns.index("prompt")
        < columns.index("gold_answer")
        < columns.index("completion")
        < columns.index("annotator_1_id")
    )
    for column, expected in texts.items():
        assert [None if pd.isna(value) else value for value in gold[column]] == expected
    assert gold["annotator_1_answer_language"].iloc[0] == "chinese"

    plain, excel = tmp_path / "gold.csv", tmp_path / "gold-excel.csv"
    assert export(engine, "gold", plain) == export(engine, "gold", excel, excel=True) == 4
    assert not plain.read_bytes().startswith(BOM)
    assert excel.read_bytes() == BOM + plain.read_bytes()
    assert csv_bytes(export_frame(engine, "gold"), excel=True) == excel.read_bytes()
    rows = {row["completion_id"]: row for row in cells(excel.read_bytes().decode("utf-8-sig"))}
    shown = [rows[completion_id] for completion_id in frame["id"]]
    assert [row["prompt"] for row in shown] == ["图片里有什么？", "这是什么颜色？", "", "問題は何ですか"]
    assert [row["gold_answer"] for row in shown] == ["一只猫", "红色", "答案", ""]
    # Formula neutralisation holds for the texts too; newlines and quotes survive the round trip.
    assert [row["completion"] for row in shown] == [
        "一只猫在沙发上。",
        "'=1+1",
        'line one\nline two, with "quotes"',
        "",
    ]
    assert next(iter(pd.read_csv(excel).columns)) == "completion_id"  # readers that know the BOM skip it
    stream = io.StringIO()
    write_csv(export_frame(engine, "gold"), stream, excel=True)
    assert stream.getvalue().encode("utf-8") == excel.read_bytes()


def test_estimate_terms_also_in_words():
    frame = pd.DataFrame(
        {
            "estimand": ["interaction"] * 3,
            "term": ["image", "image:llm[T.leo]", "image:data[T.de]"],
            "estimate": [0.1, -0.2, np.nan],
        }
    )
    rows = cells(csv_bytes(with_term_words(frame)).decode("utf-8"))
    assert list(rows[0]) == ["estimand", "term", "term_words", "estimate"]
    assert [(row["term"], row["term_words"]) for row in rows] == [
        ("image", "image"),
        ("image:llm[T.leo]", "image x LLM: Leo"),
        ("image:data[T.de]", "image x training data: German"),
    ]
    assert with_term_words(frame.drop(columns="term")).columns.tolist() == ["estimand", "estimate"]
