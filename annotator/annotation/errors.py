"""Why the annotation API refused a request: :class:`RoutingError` and its kinds.

Every refusal leaves the database unchanged and says what to do; the pages show the message,
the CLI prints it (``annotator.errors.USER_ERRORS``).
"""

from __future__ import annotations

__all__ = [
    "AlreadySubmittedError",
    "InvalidLabelError",
    "LanguageNotReadError",
    "NotHeldError",
    "NotInSampleError",
    "RoutingError",
    "UnknownAnnotatorError",
]


class RoutingError(ValueError):
    """A routing request was refused and nothing was changed; the message says what to do."""


class UnknownAnnotatorError(RoutingError):
    """No such annotator, or the account is deactivated."""


class LanguageNotReadError(RoutingError):
    """The item's query language is not one the annotator reads."""


class NotInSampleError(RoutingError):
    """The completion is not an item of the active sample (or there is no sample)."""


class NotHeldError(RoutingError):
    """The annotator does not hold a claim on the item (never claimed, taken over, skipped)."""


class InvalidLabelError(RoutingError):
    """A label value outside what the form allows."""


class AlreadySubmittedError(RoutingError):
    """The annotator already labeled this completion; revise it instead."""
