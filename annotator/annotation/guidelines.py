"""The study's annotation guidelines: Markdown kept in the database, edited by researchers.

Annotators read them on the Annotate page. They live in ``study_settings`` under the key
``guidelines`` (one row, with who changed it last), so every annotator sees the same version
and a change applies at their next page run. Until a researcher writes their own, the demo's
default explains the three questions and the decisions annotators ask about most.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from annotator.storage import session_scope
from db.models import StudySetting, utcnow

__all__ = [
    "DEFAULT_GUIDELINES",
    "GUIDELINES_KEY",
    "MAX_GUIDELINES_CHARS",
    "GuidelinesError",
    "get_guidelines",
    "set_guidelines",
]

GUIDELINES_KEY = "guidelines"
#: Generous for a page of instructions, small enough that every Annotate run can show them.
MAX_GUIDELINES_CHARS = 50_000

DEFAULT_GUIDELINES = """\
### What you label
Each item is a query (in one of the study's languages, sometimes with an image), the gold
answer, and a model's answer. You answer three questions about **the model's answer**.

### 1. In which language is the answer?
- Pick the language **most of the answer's words** are in. Names, numbers, code, formulas and
  quoted words from the question do not count.
- A **mixed** answer (for example a German sentence with an English clause) takes the language
  of the larger part; if the parts are even, take the language of the first sentence.
- An answer with **no words** (empty, only a number, a letter choice such as "B", only symbols)
  is **No language**.
- Use the buttons for the query language (Q) and English (E); anything else is in the
  "Another language…" list.

### 2. Does the answer match the gold answer?
Same **content** as the gold answer, whatever its language or wording: "Paris" matches
"La capitale est Paris". A longer answer that contains the gold answer and nothing that
contradicts it matches.

### 3. Is the answer correct?
Is it **right about the query**, judged on your own knowledge and the image, not only on the
gold answer. An answer can be correct without matching a gold answer that is itself wrong or
incomplete; say so in the comment.

### When to use "Can't tell"
When you cannot decide after reading carefully: the gold answer is missing, the image is
missing or unreadable, or the answer is too vague or cut off to judge. "Can't tell" is an
answer, not a failure; do not guess.

### When to skip (S)
Skip only items you cannot read at all: a language or script you do not read well enough, or
an item that does not load. A skipped item goes to someone else. Do not skip hard items; use
"Can't tell" instead.

### Mistakes
Press U (Undo last) to reopen your last label and correct it; the correction is recorded.
"""


class GuidelinesError(ValueError):
    """The guidelines were refused (empty or too long); nothing was changed."""


def get_guidelines(engine: Engine) -> str:
    """The guidelines as stored, or :data:`DEFAULT_GUIDELINES` until a researcher writes some."""
    with session_scope(engine) as session:
        stored = session.scalar(select(StudySetting.value).where(StudySetting.key == GUIDELINES_KEY))
    return stored if stored is not None else DEFAULT_GUIDELINES


def set_guidelines(engine: Engine, text: str, editor_id: int | None) -> None:
    """Store ``text`` as the study's guidelines, recording who changed them (``editor_id``)."""
    if not text.strip():
        raise GuidelinesError("the guidelines are empty; write them, or keep the current ones")
    if len(text) > MAX_GUIDELINES_CHARS:
        raise GuidelinesError(f"the guidelines have {len(text):,} characters; at most {MAX_GUIDELINES_CHARS:,} fit")
    if "\x00" in text:
        raise GuidelinesError("the guidelines contain a NUL character; remove it")
    with session_scope(engine, write=True) as session:
        setting = session.get(StudySetting, GUIDELINES_KEY)
        if setting is None:
            session.add(StudySetting(key=GUIDELINES_KEY, value=text, updated_at=utcnow(), updated_by=editor_id))
        else:
            setting.value, setting.updated_at, setting.updated_by = text, utcnow(), editor_id
