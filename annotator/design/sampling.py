"""Draw the gold-standard sample: a stratified design with exact, recorded inclusion probabilities.

The paper (Appendix B) weights every completion by the inverse of its benchmark's share of
the data, so that each benchmark counts equally, then multiplies German by 4, Chinese and
Hindi by 2 and Romanian, Russian and Urdu by 0.5, and draws 1000 completions without
replacement. A weighted draw without replacement has inclusion probabilities that have no
closed form, yet DSL needs them exactly; so the same weights drive a *stratified* design
whose probabilities are exact by construction:

* the weights act on benchmark x query language (key ``"MaXM|deu"``, see :func:`stratum_key`):
  every completion of one has the same weight, so its weight is ``W_h = N_h * w_h``, and ``n``
  is allocated in proportion to ``W_h`` within ``[1, N_h]`` (:func:`allocate`: the excess of a
  stratum too small for its share goes to the others in proportion to their weights);
* **balanced inside** (issue 9.3): the estimands are IFL per model x benchmark, so every
  model x image *arm* should get its proportional share of the labels at every point of
  annotation. ``balance`` says how (:data:`BALANCES`):

  - ``"implicit"`` (the default of the paper allocation): *implicit stratification*. The
    strata stay benchmark x language; inside each, the completions are sorted by model and
    image (random order within an arm) and drawn by *circular systematic selection* with a
    continuous random start, ``n_h`` points ``N_h / n_h`` apart. The queue order is *nested*:
    the points are queued in bit-reversed order (:func:`annotator.design.draws.nested_order`), so every prefix of
    the queue is spread evenly over the sorted list, i.e. over the arms. Each point on its own
    is uniform on the circle, so a completion is the item at queue position ``q`` with
    probability exactly ``1 / N_h``, and the first ``l`` items of the queue hold it with
    probability exactly ``l / N_h``: the labels so far have exact inclusion probabilities at
    every point, as the full sample has. Few strata, so every stratum has labels early.
  - ``"arms"``: each arm its own stratum (``"MaXM|deu|3"``), merging neighbouring arms where a
    share is too small to give every one :data:`MIN_PER_STRATUM` labels
    (:func:`stats.allocation.collapse_cells`; a small stratum stays whole), an SRS in each.
    Exact arm counts, but many small strata (178 for ``n = 600`` on the small demo): a cell
    is estimable only once each of its strata has a label, which takes a third of the sample.
  - ``"none"``: an SRS in each benchmark x language stratum (arms get labels by chance).

  Routing serves the stratum with the lowest labeled share first and, inside a stratum, by
  queue position, so the labels so far are the first ``l_h`` of each stratum's queue, with
  exact probability (labels so far) / ``N_h``;
* **surrogate-informed allocation** (``allocation="surrogate"``, issue 9.4): the language ID's
  confidence band is a further level, and the main models' cells get the Neyman-style shares
  that minimise the predicted mean width of their IFL intervals (:mod:`stats.allocation`);
  the ablation models keep the paper's share. Only sizes and predictions known before any
  label enter, so the design is fixed in advance and stays exact;
* **deviation from the paper:** every stratum gets at least two draws (one if it has only one
  completion): DSL needs ``pi > 0`` for every completion, and the design variance needs two
  labels to see a stratum's spread (a lone label is counted conservatively, which made the
  intervals of the surrogate-informed design 1.5-2 times wider on the demo); ``expected``
  keeps the unbounded share ``n * W_h / sum(W)``;
* within a stratum, every member has probability ``n_h / N_h`` (an SRS, or the systematic
  selection above), and the probabilities of all completions sum to ``n``.

The design (allocation, levels, and the map from cells to strata) is recorded in
``samples.design``; :func:`strata_for_sample` is the one function that puts a completion in
its stratum, for the analysis and for top-ups. This module plans the design (strata and their
allocation, :func:`plan_allocation`, :func:`predicted_widths`); :mod:`annotator.design.draws`
draws it, tops it up and queues the items.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sqlalchemy import (
    Connection,
    Engine,
    select,
)
from sqlalchemy.orm import Session

from annotator.annotation.reads import current_sample_id
from annotator.design.weights import SamplingWeights, as_weights
from annotator.ingest.langid import LANGUAGE_ID_SOURCES
from annotator.storage import fetch_frame, session_scope
from db.models import (
    Completion,
    Prediction,
    Sample,
)
from stats.allocation import (
    CONFIDENCE_CUTS,
    collapse_cells,
    confidence_band,
    expected_widths,
    neyman_allocation,
    proportional_quota,
    residual_variance,
)

__all__ = [
    "ALLOCATIONS",
    "BALANCES",
    "MIN_PER_STRATUM",
    "STRATUM_COLUMNS",
    "STRATUM_SEPARATOR",
    "NoSampleError",
    "SamplingError",
    "allocate",
    "allocate_nested",
    "assign_strata",
    "is_coarse_design",
    "min_draws",
    "new_design",
    "plan_allocation",
    "plan_design",
    "predicted_widths",
    "recorded_population",
    "resolve_sample",
    "strata_for_sample",
    "strata_of",
    "stratum_key",
    "with_stratum_codes",
]

STRATUM_SEPARATOR = "|"
#: Columns of :func:`plan_allocation` (and of the ``sample_strata`` rows it becomes).
STRATUM_COLUMNS = ("stratum", "benchmark", "query_language", "population", "weight_sum", "expected", "drawn")
#: The cell of a completion in a recorded design (``samples.design["cells"]``).
CELL_COLUMNS = ("benchmark", "query_language", "model", "image", "band")
#: ``paper``: the weights decide; ``surrogate``: minimise the predicted width of the main IFL intervals.
ALLOCATIONS = ("paper", "surrogate")
#: How the arms are balanced inside benchmark x language (module docstring); None picks
#: ``"implicit"`` for the paper allocation and ``"arms"`` for the surrogate one (it needs them).
BALANCES = ("implicit", "arms", "none")
#: The fewest draws a stratum gets (all of it if it is smaller), and the expected labels a
#: cell must have to be a stratum of its own: two, so that a labeled stratum shows its spread.
MIN_PER_STRATUM = 2
#: The confidence band of every completion when the design has no bands.
ALL_CONFIDENCE = "all"


class SamplingError(ValueError):
    """A sample that cannot be drawn or topped up as asked."""


class NoSampleError(LookupError):
    """The database has no sample (or not the one asked for)."""


def stratum_key(benchmark: Any, query_language: Any) -> Any:
    """The stratum of a benchmark and query language, ``"MaXM|deu"``; works on scalars and Series.

    Query languages are three-letter codes, so the key is unambiguous read from the right
    even if a benchmark name contains the separator.
    """
    return benchmark + STRATUM_SEPARATOR + query_language


def allocate(weight_sum: ArrayLike, population: ArrayLike, n: int, lower: ArrayLike | None = None) -> NDArray[np.int64]:
    """Allocate ``n`` draws to strata in proportion to ``weight_sum``, within ``[lower, population]``.

    The continuous allocation is ``clip(lambda * W_h, lower_h, N_h)`` with the ``lambda`` that
    makes it sum to ``n`` (:func:`stats.allocation.proportional_quota`), so capped strata pass
    their excess, and raised strata take their shortfall, to the free strata in proportion to
    their weights. Integers by largest remainder (ties: first stratum first). ``lower``
    defaults to 1 everywhere (DSL needs ``pi > 0``); a top-up passes the current ``n_h``.
    """
    w = np.asarray(weight_sum, dtype=np.float64)
    cap = np.asarray(population, dtype=np.int64)
    low = np.ones_like(cap) if lower is None else np.asarray(lower, dtype=np.int64)
    if not (w.shape == cap.shape == low.shape) or w.ndim != 1:
        raise SamplingError("weight_sum, population and lower must be 1-d and of equal length")
    if np.any(cap <= 0) or np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise SamplingError("every stratum needs a positive population and a positive weight")
    if np.any(low < 0) or np.any(low > cap):
        raise SamplingError("lower bounds must lie between 0 and the stratum's population")
    if n < low.sum():
        raise SamplingError(
            f"n = {n} is below the {int(low.sum())} draws the {len(cap)} strata need at least (every "
            "completion needs pi > 0, and a stratum two labels to show its spread)"
        )
    if n > cap.sum():
        raise SamplingError(f"n = {n} is more than the {int(cap.sum())} completions there are")
    quota = proportional_quota(w, cap, n, low)
    drawn = np.clip(np.floor(quota + 1e-9).astype(np.int64), low, cap)
    remainder = np.where(drawn < cap, quota - drawn, -1.0)
    order = np.argsort(-remainder, kind="stable")
    drawn[order[: n - int(drawn.sum())]] += 1
    return drawn


def _population(connection: Connection, confidence_source: str | None = None) -> pd.DataFrame:
    """Every completion with its design cell: id, benchmark, query_language, model, image,
    ablation (all three ablation components set) and, if a source is named, its ``probability``.

    In id order, sorted in pandas (code-point order), not in SQL (collation-dependent), so that
    draws are the same on every backend.
    """
    frame = fetch_frame(
        connection,
        select(
            Completion.id,
            Completion.benchmark,
            Completion.query_language,
            Completion.model,
            Completion.image,
            (
                Completion.llm.is_not(None)
                & Completion.vision_encoder.is_not(None)
                & Completion.train_language.is_not(None)
            ).label("ablation"),
        ),
    )
    frame["image"] = frame["image"].astype(np.int64)
    frame["ablation"] = frame["ablation"].astype(bool)
    if confidence_source is not None:
        confidence = fetch_frame(
            connection,
            select(Prediction.completion_id.label("id"), Prediction.probability).where(
                Prediction.source == confidence_source
            ),
        )
        frame = frame.merge(confidence, on="id", how="left")
        frame["probability"] = frame["probability"].astype(np.float64)
    return frame.sort_values("id", ignore_index=True)


def _confidence_source(connection: Connection) -> str:
    """The language-ID source whose confidence the surrogate allocation uses (the analysis's choice)."""
    present = set(connection.scalars(select(Prediction.source).distinct()))
    source = next((source for source in LANGUAGE_ID_SOURCES if source in present), None)
    if source is None:
        raise SamplingError("the surrogate allocation needs language-ID predictions: run `ifl lid` first")
    return source


def _cell_bands(population: pd.DataFrame, design: Mapping[str, Any] | None) -> pd.Series:
    cuts = None if design is None else design.get("confidence_cuts")
    if cuts is None:
        return pd.Series(ALL_CONFIDENCE, index=population.index, dtype=object)
    return confidence_band(population["probability"], tuple(cuts))


def assign_strata(population: pd.DataFrame, design: Mapping[str, Any] | None) -> pd.Series:
    """The stratum of each row under a recorded design (``samples.design``; None: benchmark x language).

    ``population`` needs benchmark, query_language, model and image (and ``probability``, the
    recorded source's confidence, if the design has confidence bands). A row whose cell the
    design does not know (a completion imported after the draw) gets ``"<benchmark>|<language>|new"``,
    a stratum with no draws, so estimation leaves it out and says so.
    """
    coarse = stratum_key(population["benchmark"].astype(object), population["query_language"].astype(object))
    if design is None:
        return coarse.rename("stratum")
    cells = pd.DataFrame(design["cells"], columns=[*CELL_COLUMNS, "stratum"])
    keys = population[["benchmark", "query_language", "model", "image"]].assign(
        image=population["image"].astype(np.int64), band=_cell_bands(population, design)
    )
    stratum = keys.merge(cells, on=list(CELL_COLUMNS), how="left")["stratum"].to_numpy()
    return pd.Series(
        np.where(pd.isna(stratum), coarse + STRATUM_SEPARATOR + "new", stratum),
        index=population.index,
        name="stratum",
        dtype=object,
    )


def with_stratum_codes(population: pd.DataFrame, design: Mapping[str, Any] | None) -> pd.DataFrame:
    """``population`` with its ``stratum`` and ``code`` (strata numbered in key order)."""
    frame = population.assign(stratum=assign_strata(population, design))
    frame["code"] = frame.groupby("stratum", sort=True).ngroup()
    return frame


def strata_of(population: pd.DataFrame) -> pd.DataFrame:
    """One row per stratum (in code order) with its population."""
    return (
        population.groupby("code", sort=True)
        .agg(
            stratum=("stratum", "first"),
            benchmark=("benchmark", "first"),
            query_language=("query_language", "first"),
            population=("id", "size"),
        )
        .reset_index(drop=True)
    )


def _cells(
    population: pd.DataFrame, scheme: SamplingWeights, n: int, allocation: str, design: Mapping[str, Any] | None
) -> pd.DataFrame:
    """One row per design cell (benchmark x language x model x image x confidence band) with its
    size, paper weight and the continuous number of labels the allocation gives it at ``n``."""
    frame = population.assign(
        band=_cell_bands(population, design),
        error=1.0 - population["probability"].fillna(0.5) if "probability" in population else 0.0,
    )
    cells = (
        frame.groupby(list(CELL_COLUMNS), sort=True)
        .agg(population=("id", "size"), error=("error", "mean"), ablation=("ablation", "all"))
        .reset_index()
    )
    coarse = cells.groupby(["benchmark", "query_language"], sort=True)["population"].sum().reset_index()
    if coarse.empty:
        raise SamplingError("there are no completions to sample from: import some first")
    coarse["weight"] = scheme.stratum_weights(coarse)
    coarse["drawn"] = allocate(coarse["weight"], coarse["population"], n, lower=min_draws(coarse["population"]))
    cells = cells.merge(coarse, on=["benchmark", "query_language"], suffixes=("", "_coarse"))
    cells["weight"] = cells["weight"] * cells["population"] / cells["population_coarse"]
    cells["share"] = cells["drawn"] * cells["population"] / cells["population_coarse"]
    if allocation == "surrogate":
        target = ~cells["ablation"]
        if not target.any():
            raise SamplingError(
                "the surrogate allocation targets the main models' IFL, and every model here "
                "is an ablation variant: use the paper allocation"
            )
        cells["variance"] = residual_variance(cells["error"])
        cells["arm"] = (
            cells["model"] + STRATUM_SEPARATOR + cells["benchmark"] + STRATUM_SEPARATOR + cells["image"].astype(str)
        )
        cells["contrast"] = (cells["model"] + STRATUM_SEPARATOR + cells["benchmark"]).where(target)
        main = neyman_allocation(cells, n - cells.loc[~target, "share"].sum())
        cells["share"] = np.where(target, main, cells["share"])
        cells["weight"] = cells["share"]
    return cells.drop(columns=["population_coarse", "drawn"])


def _group(cells: pd.DataFrame) -> pd.DataFrame:
    """Collapse each benchmark x language stratum's cells into strata of at least
    :data:`MIN_PER_STRATUM` expected labels; adds ``stratum``.

    Cells are taken in (model, image, confidence band) order, so the confidence bands of one arm
    merge first and a stratum crosses arms only where the arms' shares are too small: a stratum
    inside one arm keeps that arm's label count fixed, where a stratum across arms leaves it to
    chance (and the design variance pays for the domain). A paper design (one band) splits by
    model x image, merging neighbouring arms where a share is too small for each to get two.
    """
    cells = cells.sort_values(["benchmark", "query_language", "model", "image", "band"], ignore_index=True)
    keys: list[str] = []
    for (benchmark, language), rows in cells.groupby(["benchmark", "query_language"], sort=False):
        groups = collapse_cells(rows["share"], MIN_PER_STRATUM)
        base = stratum_key(benchmark, language)
        width = len(str(groups.max() + 1))
        keys.extend(base if groups.max() == 0 else f"{base}{STRATUM_SEPARATOR}{g + 1:0{width}d}" for g in groups)
    return cells.assign(stratum=keys)


def plan_design(
    population: pd.DataFrame, scheme: SamplingWeights, n: int, allocation: str, design: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The strata (:data:`STRATUM_COLUMNS`) of a new design and the design record with its cell map."""
    if allocation not in ALLOCATIONS:
        raise SamplingError(f"allocation {allocation!r} is not one of {', '.join(ALLOCATIONS)}")
    cells = _group(_cells(population, scheme, n, allocation, design))
    design = {**design, "cells": cells[[*CELL_COLUMNS, "stratum"]].astype(object).values.tolist()}
    strata = _strata_of_cells(cells).reset_index()
    strata["expected"] = n * strata["weight_sum"] / strata["weight_sum"].sum()
    strata["drawn"] = allocate_nested(strata, n)
    return strata[list(STRATUM_COLUMNS)], design


def _strata_of_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per stratum of grouped cells (:func:`_group`), indexed by it: its benchmark,
    query language, population and summed weight."""
    return cells.groupby("stratum", sort=True).agg(
        benchmark=("benchmark", "first"),
        query_language=("query_language", "first"),
        population=("population", "sum"),
        weight_sum=("weight", "sum"),
    )


def allocate_nested(strata: pd.DataFrame, n: int, lower: ArrayLike | None = None) -> NDArray[np.int64]:
    """:func:`allocate` in two stages: to benchmark x language strata by their summed weights,
    then within each over its strata, so every benchmark x language gets exactly the integer
    share the weights give it (one largest-remainder rounding over all arms could move several
    labels between them). Every stratum gets at least ``lower`` (default: :func:`min_draws`)."""
    low = min_draws(strata["population"]) if lower is None else np.asarray(lower, dtype=np.int64)
    codes, _ = pd.factorize(stratum_key(strata["benchmark"], strata["query_language"]), sort=True)
    weight = strata["weight_sum"].to_numpy(np.float64)
    population = strata["population"].to_numpy(np.int64)
    coarse = allocate(
        np.bincount(codes, weight),
        np.bincount(codes, population).astype(np.int64),
        n,
        lower=np.bincount(codes, low).astype(np.int64),
    )
    drawn = np.zeros(len(strata), dtype=np.int64)
    for code, total in enumerate(coarse):
        members = np.flatnonzero(codes == code)
        drawn[members] = allocate(weight[members], population[members], int(total), lower=low[members])
    return drawn


def min_draws(population: ArrayLike) -> NDArray[np.int64]:
    """The fewest draws of each stratum: :data:`MIN_PER_STRATUM`, or all of a smaller stratum."""
    return np.minimum(MIN_PER_STRATUM, np.asarray(population, dtype=np.int64))


def _balance(allocation: str, balance: str | None) -> str:
    """The balance a new sample uses: ``balance``, or the allocation's default; checked."""
    if balance is None:
        return "arms" if allocation == "surrogate" else "implicit"
    if balance not in BALANCES:
        raise SamplingError(f"balance {balance!r} is not one of {', '.join(BALANCES)}")
    if allocation == "surrogate" and balance != "arms":
        raise SamplingError("the surrogate allocation needs the arms as strata (balance 'arms')")
    return balance


def is_coarse_design(design: Mapping[str, Any] | None) -> bool:
    """Whether a recorded design's strata are benchmark x language (no model x image cells)."""
    return design is not None and design.get("levels") == ["benchmark", "query_language"]


def _with_sort_order(population: pd.DataFrame, design: Mapping[str, Any] | None) -> pd.DataFrame:
    """``population`` with ``order``, its rank in a systematic design's sort (model, image), before
    a coarse design blanks model and image; an SRS design needs no order (all zero)."""
    systematic = design is not None and design.get("selection") == "systematic"
    order = (
        population.groupby(["model", "image"], sort=True).ngroup().to_numpy(np.int64)
        if systematic and len(population)
        else np.zeros(len(population), dtype=np.int64)
    )
    frame = population.assign(order=order)
    return frame.assign(model="", image=0) if is_coarse_design(design) else frame


def new_design(connection: Connection, allocation: str, balance: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The population and the design record (without its cell map yet) of a new sample."""
    balance = _balance(allocation, balance)
    source = _confidence_source(connection) if allocation == "surrogate" else None
    levels = ["benchmark", "query_language"] + (["model", "image"] if balance == "arms" else [])
    design = {
        "allocation": allocation,
        "balance": balance,
        "levels": levels + (["confidence band"] if source else []),
        "selection": "systematic" if balance == "implicit" else "srs",
        "sort": ["model", "image"] if balance == "implicit" else None,
        "confidence_source": source,
        "confidence_cuts": list(CONFIDENCE_CUTS) if source else None,
        "min_per_stratum": MIN_PER_STRATUM,
    }
    return _with_sort_order(_population(connection, source), design), design


def plan_allocation(
    engine: Engine,
    n: int,
    weights: SamplingWeights | Mapping[str, Any] | None = None,
    allocation: str = "paper",
    balance: str | None = None,
) -> pd.DataFrame:
    """The allocation :func:`draw_sample` would make, without drawing (for a preview).

    Columns: stratum, benchmark, query_language, population (``N_h``), weight_sum (``W_h``),
    expected (``n * W_h / sum W``), drawn (``n_h``), probability (``n_h / N_h``).
    """
    with engine.connect() as connection:
        population, design = new_design(connection, allocation, balance)
    strata, _ = plan_design(population, as_weights(weights), n, allocation, design)
    return strata.assign(probability=strata["drawn"] / strata["population"])


def predicted_widths(
    engine: Engine, n: int, weights: SamplingWeights | Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Predicted width of each main IFL interval at ``n`` labels under both allocations, before drawing.

    One row per model x benchmark of the main (non-ablation) models: ``model``, ``benchmark``,
    ``paper``, ``surrogate`` (width, ``2 x 1.96 SE``) and ``ratio`` (surrogate / paper). The
    variance model and its proxy are :mod:`stats.allocation`'s; both designs are scored by
    the same model, so the ratio is the informative figure.
    """
    scheme = as_weights(weights)
    with engine.connect() as connection:
        population, design = new_design(connection, "surrogate", "arms")
    widths = {}
    for allocation in ALLOCATIONS:
        cells = _group(_cells(population, scheme, n, allocation, design))
        strata = _strata_of_cells(cells)
        drawn = pd.Series(allocate_nested(strata, n), index=strata.index)
        cells["pi"] = cells["stratum"].map(drawn / strata["population"])
        cells["variance"] = residual_variance(cells["error"])
        cells["arm"] = (
            cells["model"] + STRATUM_SEPARATOR + cells["benchmark"] + STRATUM_SEPARATOR + cells["image"].astype(str)
        )
        cells["contrast"] = pd.Series(
            list(zip(cells["model"], cells["benchmark"], strict=True)), index=cells.index, dtype=object
        ).where(~cells["ablation"])
        widths[allocation] = expected_widths(cells, cells["pi"])
    table = pd.DataFrame(widths)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["model", "benchmark"])
    return table.assign(ratio=table["surrogate"] / table["paper"]).reset_index()


def resolve_sample(session: Session, sample_id: int | None, *, lock: bool = False) -> Sample:
    """The sample ``sample_id`` (None: the current one), locked for update if asked; raises
    :class:`NoSampleError` when there is none."""
    if sample_id is None:
        sample_id = current_sample_id(session)
        if sample_id is None:
            raise NoSampleError("no sample has been drawn yet: run `ifl sample` first")
    sample = session.get(Sample, sample_id, with_for_update=lock)
    if sample is None:
        raise NoSampleError(f"there is no sample {sample_id}")
    return sample


def recorded_population(connection: Connection, design: Mapping[str, Any] | None) -> pd.DataFrame:
    """The completions now, coded into a recorded design's strata."""
    source = None if design is None else design.get("confidence_source")
    return with_stratum_codes(_with_sort_order(_population(connection, source), design), design)


def strata_for_sample(engine: Engine, frame: pd.DataFrame, sample_id: int | None = None) -> pd.Series:
    """The sampling stratum of every row of ``frame`` under a sample's design (default: the newest).

    ``frame`` needs ``completion_id`` (or ``id``), benchmark, query_language, model and image.
    This is the one definition the analysis uses, so its strata are always the sample's,
    whatever the design (benchmark x language, split by model x image, confidence bands).
    """
    with session_scope(engine) as session:
        if sample_id is None:
            sample_id = current_sample_id(session)
        design = None if sample_id is None else session.scalar(select(Sample.design).where(Sample.id == sample_id))
        rows = frame.rename(columns={"completion_id": "id"})[["id", "benchmark", "query_language", "model", "image"]]
        if is_coarse_design(design):
            rows = rows.assign(model="", image=0)
        if design is not None and design.get("confidence_source") is not None:
            confidence = fetch_frame(
                session.connection(),
                select(
                    Prediction.completion_id.label("id"),
                    Prediction.probability,
                ).where(Prediction.source == design["confidence_source"]),
            )
            rows = rows.merge(confidence, on="id", how="left").set_axis(rows.index)
            rows["probability"] = rows["probability"].astype(np.float64)
    return assign_strata(rows, design).set_axis(frame.index)
