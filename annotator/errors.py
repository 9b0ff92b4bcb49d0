"""The errors a user can act on: the CLI prints them as one line, the pages as a message."""

from __future__ import annotations

from annotator.ingest import IngestError
from annotator.languages import UnknownLanguageError

__all__ = ["USER_ERRORS"]

USER_ERRORS: tuple[type[Exception], ...] = (IngestError, UnknownLanguageError, FileNotFoundError)
