"""Annotation guidelines: stored as given, with who changed them, alike on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from annotator.access.accounts import add_annotator, list_annotators
from annotator.annotation.guidelines import (
    DEFAULT_GUIDELINES,
    MAX_GUIDELINES_CHARS,
    GuidelinesError,
    get_guidelines,
    set_guidelines,
)
from db.models import StudySetting


def editor(engine: Engine, name: str = "rosa") -> int:
    add_annotator(engine, name, ["de"], role="researcher", password="a long password")
    return int(list_annotators(engine).set_index("name").loc[name, "id"])


def test_the_default_explains_the_hard_decisions(engine: Engine) -> None:
    text = get_guidelines(engine)
    assert text == DEFAULT_GUIDELINES
    for topic in ("mixed", "No language", "match", "correct", "Can't tell", "skip"):
        assert topic.lower() in text.lower(), topic


def test_guidelines_are_stored_exactly_and_replaced(engine: Engine) -> None:
    rosa = editor(engine)
    first = "# Ours\n\nעברית first, then *Markdown* <b>kept as typed</b>\n  trailing spaces  "
    set_guidelines(engine, first, rosa)
    assert get_guidelines(engine) == first
    set_guidelines(engine, "second version", None)
    assert get_guidelines(engine) == "second version"
    with Session(engine) as session:
        rows = session.execute(select(StudySetting.key, StudySetting.updated_by)).all()
    assert rows == [("guidelines", None)]


@pytest.mark.parametrize("text", ["", "   \n", "x" * (MAX_GUIDELINES_CHARS + 1), "nul\x00byte"])
def test_bad_guidelines_are_refused_and_nothing_changes(engine: Engine, text: str) -> None:
    rosa = editor(engine)
    set_guidelines(engine, "kept", rosa)
    with pytest.raises(GuidelinesError):
        set_guidelines(engine, text, rosa)
    assert get_guidelines(engine) == "kept"
