"""Study names in words for people: regression terms, languages, estimators, questions.

The estimates keep machine names (patsy terms such as ``image:llm[T.leo]``, ISO 639-3 codes)
because R, pandas and the exports match on them; the dashboard and the readable columns of
the exports show these words instead, so a researcher reads "image x LLM: Leo", not a formula.
"""

from __future__ import annotations

import re

import pandas as pd

from annotator.languages import UnknownLanguageError, canonical_language, language_name

__all__ = [
    "ESTIMATOR_WORDS",
    "QUESTION_WORDS",
    "language_in_words",
    "readable_agreement",
    "readable_estimates",
    "readable_strata",
    "term_in_words",
    "with_term_words",
]

#: Estimator code -> what the dashboard calls it.
ESTIMATOR_WORDS = {"dsl": "DSL (debiased)", "surrogate": "Surrogate only", "labeled": "Labeled only"}
#: Annotation question -> its name on the dashboard.
QUESTION_WORDS = {"answer_language": "Answer language", "matches_gold": "Matches gold", "correct": "Correct"}
#: Formula variable (or analysis-frame column) -> its name in words.
_VARIABLE_WORDS = {
    "image": "image",
    "llm": "LLM",
    "vision": "vision encoder",
    "vision_encoder": "vision encoder",
    "data": "training data",
    "train_language": "training data",
    "query_language": "query language",
}
#: Variables whose levels are language codes (shown by the language's name).
_LANGUAGE_VARIABLES = {"data", "train_language", "query_language", "language"}
#: Known design levels as their makers spell them.
_LEVEL_WORDS = {"vicuna": "Vicuna", "yi": "Yi", "leo": "Leo", "clip": "CLIP", "dinov2": "DINOv2", "siglip": "SigLIP"}
# One factor of a patsy term: ``name``, ``name[level]``, ``name[T.level]``, ``C(name)[T.level]``.
_FACTOR = re.compile(r"^(?:C\((?P<wrapped>[^,()]+)\)|(?P<name>[^\[\]()]+))(?:\[(?:T\.)?(?P<level>.*)\])?$")
_QUALIFIER = re.compile(r"\s*\((?:macrolanguage|\d{4}-\d*)\)$")


def language_in_words(code: object) -> str:
    """English name of a language code (``deu`` or ``de`` -> German); anything else as given.

    "all" (the agreement table's pooled row) reads "All languages"; a missing value stays empty.
    """
    if code is None or (not isinstance(code, str) and pd.isna(code)):
        return ""
    text = str(code)
    if text == "all":
        return "All languages"
    try:
        canonical = canonical_language(text) if len(text) in (2, 3) else text
    except UnknownLanguageError:
        return text
    return _QUALIFIER.sub("", language_name(canonical))


def _factor_in_words(factor: str) -> str:
    match = _FACTOR.match(factor.strip())
    if match is None:
        return factor
    variable = (match["wrapped"] or match["name"]).strip()
    words = _VARIABLE_WORDS.get(variable, variable.replace("_", " "))
    level = match["level"]
    if level is None or level in ("True", "1"):
        return words
    if variable in _LANGUAGE_VARIABLES:
        return f"{words}: {language_in_words(level)}"
    return f"{words}: {_LEVEL_WORDS.get(level.lower(), level)}"


def term_in_words(term: object) -> str:
    """A patsy term name in words: ``image:llm[T.leo]`` -> "image x LLM: Leo".

    Interactions join their factors with " x "; a treatment-coded level follows its variable
    after a colon; language levels read as the language's name (``data[T.de]`` -> "training
    data: German"); a name this does not recognise is returned as it is.
    """
    if term is None or (not isinstance(term, str) and pd.isna(term)):
        return ""
    text = str(term)
    if text == "Intercept":
        return "intercept"
    return " x ".join(_factor_in_words(factor) for factor in text.split(":"))


def readable_estimates(frame: pd.DataFrame) -> pd.DataFrame:
    """An estimates table with terms, languages and estimators in words (numbers and missing values untouched)."""
    readable = frame.copy()
    if "term" in readable:
        readable["term"] = readable["term"].map(term_in_words, na_action="ignore")
    if "language" in readable:
        readable["language"] = readable["language"].map(language_in_words, na_action="ignore")
    if "estimator" in readable:
        readable["estimator"] = readable["estimator"].map(
            lambda code: ESTIMATOR_WORDS.get(code, code), na_action="ignore"
        )
    return readable


def readable_strata(frame: pd.DataFrame) -> pd.DataFrame:
    """The strata table with query languages by name."""
    return frame.assign(query_language=frame["query_language"].map(language_in_words, na_action="ignore"))


def readable_agreement(frame: pd.DataFrame) -> pd.DataFrame:
    """The agreement table with questions and languages in words (numbers untouched)."""
    return frame.assign(
        question=frame["question"].map(lambda question: QUESTION_WORDS.get(question, question)),
        query_language=frame["query_language"].map(language_in_words, na_action="ignore"),
    )


def with_term_words(frame: pd.DataFrame) -> pd.DataFrame:
    """A table for a CSV: ``term`` kept as patsy names it (R and pandas match on them), and
    ``term_words`` beside it for people."""
    if "term" not in frame.columns:
        return frame
    words = frame["term"].map(term_in_words, na_action="ignore")
    with_words = frame.copy()
    with_words.insert(list(frame.columns).index("term") + 1, "term_words", words)
    return with_words
