"""Fixtures for the stats tests: the R reference directory and seeded generators."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
# Import the working tree's `stats` package even where the project is not (or is stale-ly)
# installed: a regular package on sys.path wins over an editable-install finder.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: R package dsl outputs and example data; present beside the repo on CI and team machines only.
REFERENCE = REPO / ".." / "shared" / "reference" / "dsl"


@pytest.fixture
def reference_dir() -> Path:
    """The R outputs. A user's clone has none and skips; CI (``CI=true``) always has them beside
    the checkout, so there their absence fails instead of passing the R parity silently."""
    if not (REFERENCE / "r_outputs").is_dir():
        message = f"R reference outputs ({REFERENCE}) are not available"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " on CI, where ../shared must be beside the checkout")
        pytest.skip(message)
    return REFERENCE.resolve()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20231120)
