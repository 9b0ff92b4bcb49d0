"""What a sample is, for people: its rounds (the seed and size of every draw) and the design
report (per stratum: sizes, weights, draws, probability, level, and the labels so far), as
``ifl sample --report``, the design page and its CSV download show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from annotator.annotation.labels import resolved_labels
from annotator.design.sampling import CELL_COLUMNS, STRATUM_COLUMNS, is_coarse_design, resolve_sample
from annotator.storage import session_scope
from db.models import SampleItem, SampleRound, SampleStratum

__all__ = ["design_report", "sample_rounds"]


def sample_rounds(engine: Engine, sample_id: int | None = None) -> pd.DataFrame:
    """The rounds of a sample (default: the newest): round, seed, n_total, added, created_at.

    Drawing with round 1's seed and topping up with each later round's seed and ``n_total``,
    on the same completions, gives the same sample.
    """
    with session_scope(engine) as session:
        sample = resolve_sample(session, sample_id)
        rows = session.execute(
            select(SampleRound.round, SampleRound.seed, SampleRound.n_total, SampleRound.added, SampleRound.created_at)
            .where(SampleRound.sample_id == sample.id)
            .order_by(SampleRound.round)
        ).all()
    return pd.DataFrame(rows, columns=["round", "seed", "n_total", "added", "created_at"])


def design_report(engine: Engine, sample_id: int | None = None) -> pd.DataFrame:
    """Per stratum of a sample (default: the newest): the design figures and labels so far.

    Columns: stratum, benchmark, query_language, population (``N_h``), weight_sum (``W_h``),
    expected (``n * W_h / sum W``, before bounds and rounding), drawn (``n_h``), probability
    (``n_h / N_h``), level (what the stratum is: a benchmark x language, one model x image arm
    of it, or arms merged), cells (model x image [x confidence band] cells in it),
    double_annotate (items planned for a second label), labeled (items with a resolved gold label).
    """
    with session_scope(engine) as session:
        sample = resolve_sample(session, sample_id)
        levels = _stratum_levels(sample.design)
        connection = session.connection()
        strata = pd.read_sql(
            select(*(getattr(SampleStratum, c) for c in STRATUM_COLUMNS))
            .where(SampleStratum.sample_id == sample.id)
            .order_by(SampleStratum.stratum),
            connection,
        )
        items = pd.read_sql(
            select(SampleItem.completion_id, SampleItem.stratum, SampleItem.double_annotate).where(
                SampleItem.sample_id == sample.id
            ),
            connection,
        )
        labeled = resolved_labels(session, sample.id)["completion_id"]
    items["labeled"] = items["completion_id"].isin(labeled)
    items["double_annotate"] = items["double_annotate"].astype(bool)
    counts = items.groupby("stratum")[["double_annotate", "labeled"]].sum()
    report = (
        strata.assign(probability=strata["drawn"] / strata["population"])
        .join(levels, on="stratum")
        .join(counts, on="stratum")
    )
    coarse = "benchmark x language" + (
        ", systematic by arm" if (sample.design or {}).get("selection") == "systematic" else ""
    )
    report["level"] = report["level"].fillna(coarse)
    report["cells"] = report["cells"].fillna(1).astype(np.int64)
    report[["double_annotate", "labeled"]] = report[["double_annotate", "labeled"]].fillna(0).astype(np.int64)
    return report


def _stratum_levels(design: Mapping[str, Any] | None) -> pd.DataFrame:
    """Per stratum of a recorded design: its level in words and how many cells it holds."""
    if design is None or is_coarse_design(design):
        return pd.DataFrame({"level": pd.Series(dtype=object), "cells": pd.Series(dtype=np.int64)})
    cells = pd.DataFrame(design["cells"], columns=[*CELL_COLUMNS, "stratum"])
    arm = "model x image x confidence band" if design.get("confidence_cuts") else "model x image"
    per_stratum = cells.groupby("stratum").size().rename("cells").to_frame()
    whole = cells.groupby(["benchmark", "query_language"])["stratum"].transform("nunique").eq(1)
    per_stratum["level"] = np.where(per_stratum["cells"].eq(1), arm, "merged " + arm + " cells")
    per_stratum.loc[cells.loc[whole, "stratum"].unique(), "level"] = "benchmark x language"
    return per_stratum[["level", "cells"]]
