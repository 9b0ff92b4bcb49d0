"""Fixtures for the stats tests: the R reference directory and seeded generators."""

from __future__ import annotations

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
    if not (REFERENCE / "r_outputs").is_dir():
        pytest.skip("R reference outputs (../shared/reference/dsl) are not available")
    return REFERENCE.resolve()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20231120)
