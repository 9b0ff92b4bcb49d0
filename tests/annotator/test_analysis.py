"""The analysis frame: the columns and values ``stats/`` relies on, and the label cache key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert, select, update

from annotator.analysis.frame import ANALYSIS_COLUMNS, analysis_frame, label_count
from annotator.design.draws import draw_sample
from db.models import Annotation, Prediction, SampleItem

COUNTS = {("MaXM", "deu"): 6, ("MaXM", "hin"): 4, ("XM3600", "eng"): 10}


@pytest.fixture
def study(engine: Engine, completion_frame, insert_completions) -> Engine:
    frame = completion_frame(COUNTS)
    frame.loc[frame["benchmark"] == "MaXM", "llm"] = "vicuna"
    insert_completions(engine, frame)
    draw_sample(engine, 8, seed=1, weights={"benchmark": {"balance": False}}, balance="none")
    return engine


def sampled_ids(engine: Engine) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.read_sql(
            select(SampleItem.completion_id, SampleItem.stratum, SampleItem.queue_position).order_by(
                SampleItem.stratum, SampleItem.queue_position
            ),
            connection,
        )


def predict(engine: Engine, source: str, rows: list[dict]) -> None:
    with engine.begin() as connection:
        for row in rows:
            connection.execute(insert(Prediction).values(source=source, **row))


def test_frame_has_the_contract_columns_and_design(study: Engine):
    frame = analysis_frame(study)
    assert tuple(frame.columns) == ANALYSIS_COLUMNS
    assert len(frame) == 20 and frame["completion_id"].is_unique
    assert frame["image"].dtype == np.int64 and set(frame["image"]) == {0, 1}
    assert frame["completion_chars"].tolist() == [len(f"answer {i}") for i in [*range(6), *range(4), *range(10)]]
    assert frame.loc[frame["benchmark"] == "MaXM", "llm"].eq("vicuna").all()
    missing = [*frame.loc[frame["benchmark"] == "XM3600", "llm"], *frame["train_language"]]
    assert all(isinstance(value, float) and np.isnan(value) for value in missing)  # NaN, not None
    assert set(frame["stratum"]) == {"MaXM|deu", "MaXM|hin", "XM3600|eng"}
    # Unweighted: 8 of 20 -> 2.4, 1.6, 4 -> (2, 2, 4) by largest remainder (ties to the first).
    prob = frame.groupby("stratum")["sample_prob"].agg(["min", "max"])
    assert prob["min"].tolist() == prob["max"].tolist() == pytest.approx([2 / 6, 2 / 4, 4 / 10])
    assert frame["sample_prob"].sum() == pytest.approx(8)
    assert frame["sampled"].sum() == 8 and frame["sampled"].dtype == bool
    assert not frame["labeled"].any()
    assert frame[["fidelity", "correct", "pred_fidelity", "pred_probability", "pred_correct"]].isna().all().all()
    assert frame["answer_language"].isna().all()


def test_labels_and_predictions_are_joined(study: Engine, annotate, adjudicate, completion_frame):
    items = sampled_ids(study)
    deu = items[items["stratum"] == "MaXM|deu"]["completion_id"].tolist()
    eng = items[items["stratum"] == "XM3600|eng"]["completion_id"].tolist()
    annotate(study, deu[0], "ann", "german", correct=True, slot=1)
    annotate(study, deu[1], "ann", "english", correct=None, slot=1)  # unfaithful, correctness NA
    annotate(study, eng[0], "ann", "english", correct=False, slot=1)
    annotate(study, eng[0], "bob", "other_latin", correct=True, slot=2)  # primary (slot 1) wins
    annotate(study, eng[1], "ann", "german", correct=False, slot=1)
    adjudicate(study, eng[1], "res", "english", correct=True)  # the adjudication wins
    unsampled = min(set(completion_frame(COUNTS)["id"]) - set(items["completion_id"]))
    annotate(study, unsampled, "ann", "german")  # outside the sample: not a gold label
    predict(study, "lid176", [{"completion_id": deu[0], "language_class": "english", "predicted_fidelity": False}])
    predict(
        study,
        "glotlid",
        [
            {"completion_id": deu[0], "language_class": "german", "probability": 0.9, "predicted_fidelity": True},
            {"completion_id": eng[0], "language_class": "german", "probability": 0.6},  # fidelity derived
        ],
    )
    predict(
        study,
        "judge",
        [{"completion_id": deu[0], "predicted_correct": True}, {"completion_id": eng[0], "predicted_correct": False}],
    )

    frame = analysis_frame(study).set_index("completion_id")
    assert frame["labeled"].sum() == 4 and not frame.loc[unsampled, "labeled"]
    assert np.isnan(frame.loc[unsampled, "fidelity"]) and frame.loc[unsampled, "answer_language"] is None
    assert frame.loc[[deu[0], deu[1], eng[0], eng[1]], "fidelity"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert frame.loc[[deu[0], eng[0], eng[1]], "correct"].tolist() == [1.0, 0.0, 1.0]
    assert np.isnan(frame.loc[deu[1], "correct"])
    assert frame.loc[eng[1], "answer_language"] == "english"
    # glotlid is preferred over lid176; a missing stored fidelity is derived from the class.
    assert frame.loc[[deu[0], eng[0]], "pred_fidelity"].tolist() == [1.0, 0.0]
    assert frame.loc[[deu[0], eng[0]], "pred_language"].tolist() == ["german", "german"]
    assert frame.loc[deu[0], "pred_probability"] == pytest.approx(0.9)
    assert frame.loc[[deu[0], eng[0]], "pred_correct"].tolist() == [1.0, 0.0]
    assert frame["pred_fidelity"].notna().sum() == 2 and frame["pred_correct"].notna().sum() == 2

    lid = analysis_frame(study, surrogate_source="lid176").set_index("completion_id")
    assert lid.loc[deu[0], "pred_fidelity"] == 0.0 and lid["pred_language"].notna().sum() == 1
    with pytest.raises(ValueError, match="no predictions from source 'fasttext'"):
        analysis_frame(study, surrogate_source="fasttext")


def test_without_a_sample_nothing_is_sampled(engine: Engine, completion_frame, insert_completions, annotate):
    insert_completions(engine, completion_frame({("MaXM", "deu"): 3}))
    annotate(engine, "MaXM-deu-0000000", "ann", "german")
    frame = analysis_frame(engine)
    assert tuple(frame.columns) == ANALYSIS_COLUMNS
    assert (frame["sample_prob"] == 0.0).all() and not frame["sampled"].any() and not frame["labeled"].any()


def test_changed_completions_warn(study: Engine, completion_frame, insert_completions):
    insert_completions(study, completion_frame({("MaXM", "fra"): 2}))
    with pytest.warns(UserWarning, match="completions changed"):
        frame = analysis_frame(study)
    assert (frame.loc[frame["stratum"] == "MaXM|fra", "sample_prob"] == 0.0).all()


def test_label_count_changes_with_every_label(study: Engine, annotate, adjudicate):
    item = sampled_ids(study)["completion_id"].iat[0]
    empty = label_count(study)
    assert (empty.annotations, empty.adjudications, empty.last_annotation) == (0, 0, None)
    annotation_id = annotate(study, item, "ann", "german", slot=1)
    added = label_count(study)
    assert added.annotations == 1 and added != empty
    with study.begin() as connection:
        connection.execute(
            update(Annotation)
            .where(Annotation.id == annotation_id)
            .values(answer_language="english", updated_at=added.last_annotation + pd.Timedelta(1, "s"))
        )
    revised = label_count(study)
    assert revised.annotations == 1 and revised != added
    adjudicate(study, item, "res", "german")
    assert label_count(study).adjudications == 1
