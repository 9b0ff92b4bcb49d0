"""Helpers for column-name arguments and formula strings (which columns a formula uses, its outcome)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["as_list", "formula_names", "formula_outcome", "with_outcome"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def formula_names(text: str, columns: Iterable[str]) -> list[str]:
    """Column names that occur as identifiers in (part of) a formula, like R's ``all.vars``."""
    known = set(columns)
    return [name for name in dict.fromkeys(_NAME.findall(text)) if name in known]


def formula_outcome(formula: str) -> str:
    """The left-hand side of ``"y ~ x"``, stripped (expected to be a plain column name)."""
    if "~" not in formula:
        raise ValueError(f"formula {formula!r} has no '~'")
    return formula.split("~", 1)[0].strip()


def with_outcome(formula: str, outcome: str) -> str:
    """The formula with its left-hand side replaced by ``outcome``."""
    formula_outcome(formula)
    return f"{outcome} ~{formula.split('~', 1)[1]}"


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """A column-name argument (one name, several, or None) as a list of names."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
