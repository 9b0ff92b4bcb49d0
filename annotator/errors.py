"""The errors a user can act on: the CLI prints them as one line, the pages as a message.

Programming errors are deliberately not here: they should show their traceback. The demo's
errors are not here either: only the CLI, which offers the demo, catches them.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from annotator.access.accounts import AccountError
from annotator.analysis.estimates import NotEstimableError
from annotator.annotation.agreement import AdjudicationError
from annotator.annotation.errors import RoutingError
from annotator.design.sampling import NoSampleError, SamplingError
from annotator.design.weights import WeightsError
from annotator.ingest.reading import IngestError
from annotator.languages import UnknownLanguageError
from annotator.storage import DatabaseDriverError

__all__ = ["STORAGE_ERRORS", "USER_ERRORS"]

USER_ERRORS: tuple[type[Exception], ...] = (
    AccountError,
    AdjudicationError,
    DatabaseDriverError,
    FileNotFoundError,  # includes langid.ModelNotFoundError, which names the path
    IngestError,
    NoSampleError,
    NotEstimableError,
    RoutingError,
    SamplingError,
    UnknownLanguageError,
    WeightsError,
)

#: The database failed (busy or locked under load, connection lost): nothing was saved, and the
#: same action may succeed when retried. Pages catch these to say so and keep what was entered.
STORAGE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError,)
