"""The study's vocabulary: the fixed sets of values that the schema's CHECK constraints, the
services and the pages all name. Defined once here, at the lowest layer, so ``db`` depends on
nothing above it and a new class or role is one edit (plus a migration for the constraints).

Pure constants: no database code, so the pages may import it too.
"""

from __future__ import annotations

__all__ = [
    "ADMIN_ROLES",
    "ANSWERS",
    "ANSWER_CLASSES",
    "QUESTIONS",
    "RESEARCH_ROLES",
    "ROLES",
    "STUDY_LANGUAGES",
]

#: The paper's 14 query languages: ISO 639-3 code -> answer-language class.
STUDY_LANGUAGES: dict[str, str] = {
    "zho": "chinese",
    "hin": "hindi",
    "eng": "english",
    "heb": "hebrew",
    "tha": "thai",
    "ara": "arabic",
    "ben": "bengali",
    "jpn": "japanese",
    "spa": "spanish",
    "deu": "german",
    "fra": "french",
    "ron": "romanian",
    "rus": "russian",
    "urd": "urdu",
}

#: Every label an answer can get (annotators and surrogates alike).
ANSWER_CLASSES: tuple[str, ...] = (*STUDY_LANGUAGES.values(), "other_latin", "other", "none")

#: Account roles, least privileged first.
ROLES: tuple[str, ...] = ("annotator", "researcher", "admin")
#: Roles that see the study pages (dashboard, design, data, export) and may adjudicate.
RESEARCH_ROLES: tuple[str, ...] = ("researcher", "admin")
#: Roles that manage accounts.
ADMIN_ROLES: tuple[str, ...] = ("admin",)

#: The three questions every label answers, in the order annotators see them.
QUESTIONS: tuple[str, ...] = ("answer_language", "matches_gold", "correct")
#: Answer -> stored value of the yes/no/can't-tell questions (matches gold, correct); NA is None.
ANSWERS: dict[str, bool | None] = {"yes": True, "no": False, "na": None}
