"""The errors a user can act on: the CLI prints them as one line, the pages as a message.

Programming errors are deliberately not here: they should show their traceback.
"""

from __future__ import annotations

from annotator.accounts import AccountError
from annotator.agreement import AdjudicationError
from annotator.estimates import NotEstimableError
from annotator.ingest import IngestError
from annotator.languages import UnknownLanguageError
from annotator.routing import RoutingError
from annotator.sampling import NoSampleError, SamplingError, WeightsError
from annotator.simulate import SimulationError

__all__ = ["USER_ERRORS"]

USER_ERRORS: tuple[type[Exception], ...] = (
    AccountError,
    AdjudicationError,
    FileNotFoundError,  # includes langid.ModelNotFoundError, which names the path
    IngestError,
    NoSampleError,
    NotEstimableError,
    RoutingError,
    SamplingError,
    SimulationError,
    UnknownLanguageError,
    WeightsError,
)
