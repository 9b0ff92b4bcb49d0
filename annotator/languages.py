"""Languages of the study: canonical codes, answer-language classes and the paper's mapping rule.

Query languages are stored as ISO 639-3 codes (``deu``), whatever form the input used
(``de``, ``deu``, ``German``), because ISO 639-3 is the one standard that names every
language and it is the code GlotLID predicts. Answers are classified into the study's
*answer-language classes* (``german``, ``other_latin``, ``none``...), which is what both
annotators label and the language-ID surrogate predicts, so the two can be compared.
"""

from __future__ import annotations

from functools import lru_cache

import pycountry

from db.vocabulary import STUDY_LANGUAGES

__all__ = [
    "UnknownLanguageError",
    "canonical_language",
    "class_for_script",
    "language_name",
    "query_language_class",
]

# Script -> class for scripts that identify one study language on their own (Appendix C).
_SCRIPT_CLASS = {
    "Hani": "chinese",
    "Hans": "chinese",
    "Hant": "chinese",
    "Jpan": "japanese",
    "Deva": "hindi",
    "Beng": "bengali",
    "Hebr": "hebrew",
    "Thai": "thai",
    "Cyrl": "russian",
    "Zzzz": "none",
}
_LATIN_CLASS = {"deu": "german", "eng": "english", "spa": "spanish", "ron": "romanian", "fra": "french"}

# The usual script of languages whose script is not Latin, for query languages outside the study.
_DEFAULT_SCRIPT = {
    "zho": "Hani",
    "cmn": "Hani",
    "yue": "Hani",
    "wuu": "Hani",
    "jpn": "Jpan",
    "hin": "Deva",
    "mar": "Deva",
    "nep": "Deva",
    "ben": "Beng",
    "heb": "Hebr",
    "tha": "Thai",
    "rus": "Cyrl",
    "ukr": "Cyrl",
    "bul": "Cyrl",
    "ara": "Arab",
    "urd": "Arab",
    "fas": "Arab",
    "pus": "Arab",
    "ell": "Grek",
    "kor": "Kore",
    "hye": "Armn",
    "kat": "Geor",
    "amh": "Ethi",
    "tam": "Taml",
    "tel": "Telu",
    "kan": "Knda",
    "mal": "Mlym",
    "guj": "Gujr",
    "pan": "Guru",
    "khm": "Khmr",
    "lao": "Laoo",
    "mya": "Mymr",
    "sin": "Sinh",
}


class UnknownLanguageError(ValueError):
    """A language given in the input matches no ISO 639 code or English name."""


def class_for_script(iso639_3: str, script: str) -> str:
    """Map an ISO 639-3 code and an ISO 15924 script to the study's answer-language class.

    This is the paper's rule (Appendix C): most scripts identify a class on their own;
    Arabic script is split into Urdu and Arabic by the language code; Latin script keeps
    the five study languages written in it apart and lumps the rest into ``other_latin``;
    any other script is ``other`` and ``Zzzz`` (no script: digits, emoji) is ``none``, as is
    ``zxx`` (no linguistic content) in any script.
    """
    if iso639_3 == "zxx":  # "no linguistic content" (GlotLID's zxx_* labels), whatever the script
        return "none"
    if script in _SCRIPT_CLASS:
        return _SCRIPT_CLASS[script]
    if script == "Arab":
        return "urdu" if iso639_3 == "urd" else "arabic"
    if script == "Latn":
        return _LATIN_CLASS.get(iso639_3, "other_latin")
    return "other"


@lru_cache(maxsize=4096)
def canonical_language(value: str) -> str:
    """Return the ISO 639-3 code for an ISO 639-1 code, ISO 639-3 code or English name.

    Raises :class:`UnknownLanguageError` when nothing matches, so ingest can name the cell.
    """
    text = str(value).strip()
    if not text:
        raise UnknownLanguageError("empty language")
    # Look codes up by their own field: a loose lookup matches "en" to a name ("Enets").
    lowered = text.lower()
    if len(lowered) == 2:
        language = pycountry.languages.get(alpha_2=lowered)
    elif len(lowered) == 3:
        language = pycountry.languages.get(alpha_3=lowered) or pycountry.languages.get(bibliographic=lowered)
    else:
        language = None
    if language is None:
        try:
            language = pycountry.languages.lookup(text)
        except LookupError:
            raise UnknownLanguageError(f"unknown language {value!r}") from None
    return language.alpha_3


def language_name(iso639_3: str) -> str:
    """English name of a canonical code, for display (falls back to the code itself)."""
    language = pycountry.languages.get(alpha_3=iso639_3)
    return language.name if language is not None else iso639_3


def query_language_class(iso639_3: str) -> str:
    """The answer-language class that counts as *faithful* for a query in this language."""
    if iso639_3 in STUDY_LANGUAGES:
        return STUDY_LANGUAGES[iso639_3]
    return class_for_script(iso639_3, _DEFAULT_SCRIPT.get(iso639_3, "Latn"))
