"""Draw the gold-standard sample: a stratified design with exact, recorded inclusion probabilities.

The paper (Appendix B) weights every completion by the inverse of its benchmark's share of
the data, so that each benchmark counts equally, then multiplies German by 4, Chinese and
Hindi by 2 and Romanian, Russian and Urdu by 0.5, and draws 1000 completions without
replacement. A weighted draw without replacement has inclusion probabilities that have no
closed form, yet DSL needs them exactly; so the same weights drive a *stratified* design
whose probabilities are exact by construction:

* strata are benchmark x query language (key ``"MaXM|deu"``, see :func:`stratum_key`); every
  completion of a stratum has the same weight, so the stratum's weight is ``W_h = N_h * w_h``;
* ``n`` is allocated in proportion to ``W_h``, bounded by ``[1, N_h]``: every allocation is
  ``clip(lambda * W_h, 1, N_h)`` for the one ``lambda`` that makes them sum to ``n``, then
  rounded by largest remainder. A stratum too small for its share takes all its completions
  and the excess goes to the others, in proportion to their weights;
* **deviation from the paper:** a stratum whose share is below one draw still gets one, because
  DSL needs ``pi > 0`` for every completion. The units it needs come from the strata that are
  neither capped nor raised, in proportion to their weights (the ``lambda`` above shrinks);
  ``expected`` in :func:`design_report` keeps the unbounded share ``n * W_h / sum(W)``;
* within a stratum, a simple random sample of ``n_h``, so every member has probability
  ``n_h / N_h`` (and the probabilities of all completions sum to ``n``).

Items get a random ``queue_position`` (0, 1, ... within their stratum), fixed when drawn; routing offers
them in that order, so the labels collected so far are a simple random sample of each stratum
at any time. A top-up (:func:`top_up`) appends after the existing positions, which keeps
that true. A seeded random ``overlap_share`` of items is marked for a second annotation.

Everything is seeded (``numpy.random.default_rng(seed)``), and the population is put in
code-point order of ids before drawing, so the same seed on the same completions
gives the same sample on every backend.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from annotator.labels import resolved_labels
from annotator.languages import UnknownLanguageError, canonical_language
from annotator.storage import fetch_frame, session_scope
from db.models import Completion, Sample, SampleItem, SampleRound, SampleStratum, utcnow

__all__ = [
    "PAPER_WEIGHTS",
    "STRATUM_COLUMNS",
    "STRATUM_SEPARATOR",
    "NoSampleError",
    "SampleSummary",
    "SamplingError",
    "SamplingWeights",
    "WeightsError",
    "allocate",
    "current_sample_id",
    "sample_rounds",
    "design_report",
    "draw_sample",
    "load_weights",
    "plan_allocation",
    "stratum_key",
    "top_up",
]

STRATUM_SEPARATOR = "|"
#: Columns of :func:`plan_allocation` (and of the ``sample_strata`` rows it becomes).
STRATUM_COLUMNS = ("stratum", "benchmark", "query_language", "population", "weight_sum", "expected", "drawn")


class SamplingError(ValueError):
    """A sample that cannot be drawn or topped up as asked."""


class NoSampleError(LookupError):
    """The database has no sample (or not the one asked for)."""


class WeightsError(ValueError):
    """A weighting scheme that is not valid; the message names the file (or source) and key."""


def stratum_key(benchmark: Any, query_language: Any) -> Any:
    """The stratum of a benchmark and query language, ``"MaXM|deu"``; works on scalars and Series.

    Query languages are three-letter codes, so the key is unambiguous read from the right
    even if a benchmark name contains the separator.
    """
    return benchmark + STRATUM_SEPARATOR + query_language


@dataclass(frozen=True)
class SamplingWeights:
    """How much each completion counts when the sample is allocated to strata.

    A completion's weight is ``(N / N_benchmark if balance_benchmarks else 1)
    * benchmarks.get(benchmark, 1) * languages.get(query_language, 1)``. Only ratios matter.

    The TOML form (:func:`load_weights`; :meth:`from_mapping` takes the same shape)::

        [benchmark]
        balance = true        # weight by 1 / the benchmark's share, so benchmarks count equally
        [benchmark.multipliers]
        MaXM = 1.5            # optional, per benchmark name
        [language]            # ISO 639-1/639-3 codes or English names
        German = 4.0
        zh = 2
        hin = 2
        ron = 0.5
    """

    balance_benchmarks: bool = True
    languages: Mapping[str, float] = field(default_factory=dict)
    benchmarks: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only copies, so that nobody changes PAPER_WEIGHTS (or a recorded scheme) in place.
        object.__setattr__(self, "languages", MappingProxyType(dict(self.languages)))
        object.__setattr__(self, "benchmarks", MappingProxyType(dict(self.benchmarks)))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], source: str = "<weights>") -> SamplingWeights:
        """Validate a TOML-shaped mapping; errors name ``source`` and the offending key."""

        def fail(key: str, problem: str) -> WeightsError:
            return WeightsError(f"{source}: {key}: {problem}")

        if not isinstance(mapping, Mapping):
            raise WeightsError(f"{source}: expected a table with [benchmark] and [language]")
        for key in mapping:
            if key not in ("benchmark", "language"):
                raise fail(str(key), "unknown section (use [benchmark] and [language])")
        benchmark = _table(mapping.get("benchmark", {}), "benchmark", fail)
        for key in benchmark:
            if key not in ("balance", "multipliers"):
                raise fail(f"benchmark.{key}", "unknown key (use balance and [benchmark.multipliers])")
        balance = benchmark.get("balance", True)
        if not isinstance(balance, bool):
            raise fail("benchmark.balance", f"{balance!r} is not true or false")
        multipliers = _table(benchmark.get("multipliers", {}), "benchmark.multipliers", fail)
        benchmarks = {
            str(name): _multiplier(value, f"benchmark.multipliers.{name}", fail)
            for name, value in multipliers.items()
        }
        languages: dict[str, float] = {}
        for name, value in _table(mapping.get("language", {}), "language", fail).items():
            key = f"language.{name}"
            try:
                code = canonical_language(str(name))
            except UnknownLanguageError as error:
                raise fail(key, str(error)) from None
            if code in languages:
                raise fail(key, f"names {code!r} a second time")
            languages[code] = _multiplier(value, key, fail)
        return cls(balance_benchmarks=balance, languages=languages, benchmarks=benchmarks)

    def to_dict(self) -> dict[str, Any]:
        """The TOML-shaped form, as recorded in ``samples.weights``."""
        benchmark: dict[str, Any] = {"balance": self.balance_benchmarks}
        if self.benchmarks:
            benchmark["multipliers"] = dict(self.benchmarks)
        return {"benchmark": benchmark, "language": dict(self.languages)}

    def stratum_weights(self, strata: pd.DataFrame) -> NDArray[np.float64]:
        """``W_h`` for a frame with ``benchmark``, ``query_language`` and ``population`` per stratum."""
        population = strata["population"].to_numpy(dtype=np.float64)
        unit = np.ones(len(strata))
        if self.balance_benchmarks:
            per_benchmark = strata.groupby("benchmark")["population"].transform("sum").to_numpy(dtype=np.float64)
            unit *= population.sum() / per_benchmark
        unit *= strata["benchmark"].map(lambda name: self.benchmarks.get(name, 1.0)).to_numpy(dtype=np.float64)
        unit *= strata["query_language"].map(lambda code: self.languages.get(code, 1.0)).to_numpy(dtype=np.float64)
        return population * unit


def _table(value: Any, key: str, fail) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(key, "expected a table")
    return value


def _multiplier(value: Any, key: str, fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(key, f"{value!r} is not a number")
    if not math.isfinite(value) or value <= 0:
        raise fail(key, f"{value!r} must be a positive number")
    return float(value)


#: The paper's scheme (Appendix B): benchmarks balanced; German x4; Chinese, Hindi x2;
#: Romanian, Russian, Urdu x0.5.
PAPER_WEIGHTS = SamplingWeights(
    balance_benchmarks=True,
    languages={"deu": 4.0, "zho": 2.0, "hin": 2.0, "ron": 0.5, "rus": 0.5, "urd": 0.5},
)


def load_weights(path: str | Path) -> SamplingWeights:
    """Read a TOML weighting scheme (format: :class:`SamplingWeights`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise WeightsError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise WeightsError(f"{path}: not valid TOML ({error})") from None
    return SamplingWeights.from_mapping(data, source=str(path))


def _weights(weights: SamplingWeights | Mapping[str, Any] | None) -> SamplingWeights:
    if weights is None:
        return PAPER_WEIGHTS
    if isinstance(weights, SamplingWeights):
        return weights
    return SamplingWeights.from_mapping(weights)


def allocate(
    weight_sum: ArrayLike, population: ArrayLike, n: int, lower: ArrayLike | None = None
) -> NDArray[np.int64]:
    """Allocate ``n`` draws to strata in proportion to ``weight_sum``, within ``[lower, population]``.

    The continuous allocation is ``clip(lambda * W_h, lower_h, N_h)`` with the ``lambda`` that
    makes it sum to ``n`` (found exactly: the sum is piecewise linear in ``lambda``), so capped
    strata pass their excess, and raised strata take their shortfall, to the free strata in
    proportion to their weights. Integers by largest remainder (ties: first stratum first).
    ``lower`` defaults to 1 everywhere (DSL needs ``pi > 0``); a top-up passes the current ``n_h``.
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
            f"n = {n} is below the {int(low.sum())} draws the strata need at least "
            f"({len(cap)} strata; each needs a draw so that every completion has pi > 0)"
        )
    if n > cap.sum():
        raise SamplingError(f"n = {n} is more than the {int(cap.sum())} completions there are")
    # f(lambda) = sum clip(lambda * w, low, cap) is continuous, nondecreasing and linear between
    # the breakpoints low/w and cap/w: find the segment that holds n and interpolate.
    breaks = np.unique(np.concatenate([low / w, cap / w]))
    totals = np.clip(np.outer(breaks, w), low, cap).sum(axis=1)
    k = int(np.searchsorted(totals, n, side="right")) - 1
    if k >= len(breaks) - 1 or totals[k] == n:
        lam = breaks[min(k, len(breaks) - 1)]
    else:
        lam = breaks[k] + (n - totals[k]) * (breaks[k + 1] - breaks[k]) / (totals[k + 1] - totals[k])
    quota = np.clip(lam * w, low, cap)
    drawn = np.clip(np.floor(quota).astype(np.int64), low, cap)
    remainder = np.where(drawn < cap, quota - drawn, -1.0)
    order = np.argsort(-remainder, kind="stable")
    drawn[order[: n - int(drawn.sum())]] += 1
    return drawn


@dataclass(frozen=True)
class SampleSummary:
    """What a draw or top-up did; ``added`` items were drawn by this call, ``n`` is the total."""

    sample_id: int
    name: str
    seed: int
    n: int
    added: int
    strata: int
    population: int
    double_annotate: int
    rounds: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"sample {self.sample_id} ({self.name}): {self.n} of {self.population} completions in "
            f"{self.strata} strata, {self.added} added in round {self.rounds}, "
            f"{self.double_annotate} for double annotation ({self.seconds:.1f} s)"
        )


def _population(connection: Connection) -> pd.DataFrame:
    """(id, benchmark, query_language, stratum, code) of every completion, in id order.

    ``code`` numbers the strata in key order. Sorting in pandas (code-point order), not in SQL
    (collation-dependent), makes draws the same on every backend.
    """
    frame = fetch_frame(connection, select(Completion.id, Completion.benchmark, Completion.query_language))
    frame = frame.sort_values("id", ignore_index=True)
    frame["stratum"] = stratum_key(frame["benchmark"], frame["query_language"])
    frame["code"] = frame.groupby("stratum", sort=True).ngroup()
    return frame


def _strata_of(population: pd.DataFrame) -> pd.DataFrame:
    """One row per stratum (in code order) with its population."""
    return (
        population.groupby("code", sort=True)
        .agg(stratum=("stratum", "first"), benchmark=("benchmark", "first"),
             query_language=("query_language", "first"), population=("id", "size"))
        .reset_index(drop=True)
    )


def _plan(population: pd.DataFrame, weights: SamplingWeights, n: int) -> pd.DataFrame:
    strata = _strata_of(population)
    if strata.empty:
        raise SamplingError("there are no completions to sample from: import some first")
    strata["weight_sum"] = weights.stratum_weights(strata)
    strata["expected"] = n * strata["weight_sum"] / strata["weight_sum"].sum()
    strata["drawn"] = allocate(strata["weight_sum"], strata["population"], n)
    return strata[list(STRATUM_COLUMNS)]


def plan_allocation(
    engine: Engine, n: int, weights: SamplingWeights | Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """The allocation :func:`draw_sample` would make, without drawing (for a preview).

    Columns: stratum, benchmark, query_language, population (``N_h``), weight_sum (``W_h``),
    expected (``n * W_h / sum W``), drawn (``n_h``), probability (``n_h / N_h``).
    """
    with engine.connect() as connection:
        strata = _plan(_population(connection), _weights(weights), n)
    return strata.assign(probability=strata["drawn"] / strata["population"])


def _draw(
    population: pd.DataFrame, need: NDArray[np.int64], offset: NDArray[np.int64], rng: np.random.Generator
) -> pd.DataFrame:
    """Simple random samples of ``need[code]`` rows per stratum, in random queue order.

    Every row gets a uniform random key; within a stratum the rows with the ``need`` smallest
    keys are an SRS, and their key order is a uniformly random order of it. Queue positions
    continue after ``offset[code]`` (the stratum's existing items).
    """
    codes = population["code"].to_numpy()
    keys = rng.random(len(population))
    order = np.lexsort((keys, codes))
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(len(need)))
    rank = np.arange(len(order)) - starts[sorted_codes]
    take = rank < need[sorted_codes]
    picks = population.iloc[order[take]].reset_index(drop=True)
    picks["queue_position"] = offset[sorted_codes[take]] + rank[take]
    return picks


def _item_rows(
    picks: pd.DataFrame, sample_id: int, probability: NDArray[np.float64], round_: int, double: NDArray[np.bool_]
) -> list[dict[str, Any]]:
    return [
        {"sample_id": sample_id, "completion_id": cid, "stratum": stratum, "query_language": language,
         "inclusion_probability": float(probability[code]), "queue_position": int(position),
         "round": round_, "double_annotate": bool(flag)}
        for cid, stratum, language, code, position, flag in zip(
            picks["id"], picks["stratum"], picks["query_language"], picks["code"],
            picks["queue_position"], double, strict=True,
        )
    ]


def _mark_double(rng: np.random.Generator, size: int, count: int) -> NDArray[np.bool_]:
    flags = np.zeros(size, dtype=bool)
    flags[rng.choice(size, size=min(max(count, 0), size), replace=False)] = True
    return flags


def draw_sample(
    engine: Engine,
    n: int,
    seed: int,
    weights: SamplingWeights | Mapping[str, Any] | None = None,
    name: str | None = None,
    overlap_share: float = 0.1,
) -> SampleSummary:
    """Draw a new sample of ``n`` completions and record it, all in one transaction.

    ``weights``: a :class:`SamplingWeights`, a TOML-shaped mapping, or ``None`` for
    :data:`PAPER_WEIGHTS`. The new sample becomes the current one (:func:`current_sample_id`).
    """
    if not 0 <= overlap_share <= 1:
        raise SamplingError(f"overlap_share = {overlap_share} must lie between 0 and 1")
    if n <= 0:
        raise SamplingError(f"n = {n} must be positive")
    scheme = _weights(weights)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with session_scope(engine, write=True) as session:
        population = _population(session.connection())
        strata = _plan(population, scheme, n)
        drawn = strata["drawn"].to_numpy()
        picks = _draw(population, drawn, np.zeros_like(drawn), rng)
        double = _mark_double(rng, len(picks), round(overlap_share * n))
        if name is None:
            name = f"n={n}, seed={seed}, {utcnow():%Y-%m-%d %H:%M:%S} UTC"
        if session.scalar(select(Sample.id).where(Sample.name == name)) is not None:
            raise SamplingError(f"a sample named {name!r} exists already")
        sample = Sample(name=name, seed=seed, n_target=n, weights=scheme.to_dict(),
                        overlap_share=overlap_share, rounds=1)
        session.add(sample)
        session.flush()
        session.execute(insert(SampleStratum), strata.assign(sample_id=sample.id).to_dict("records"))
        probability = drawn / strata["population"].to_numpy()
        session.execute(insert(SampleItem), _item_rows(picks, sample.id, probability, 1, double))
        session.add(SampleRound(sample_id=sample.id, round=1, seed=seed, n_total=n, added=n))
        return SampleSummary(
            sample_id=sample.id, name=name, seed=seed, n=n, added=n, strata=len(strata),
            population=len(population), double_annotate=int(double.sum()), rounds=1,
            seconds=time.perf_counter() - started,
        )


def _resolve_sample(session: Session, sample_id: int | None, *, lock: bool = False) -> Sample:
    if sample_id is None:
        sample_id = session.scalar(select(func.max(Sample.id)))
        if sample_id is None:
            raise NoSampleError("no sample has been drawn yet: run `ifl sample` first")
    sample = session.get(Sample, sample_id, with_for_update=lock)
    if sample is None:
        raise NoSampleError(f"there is no sample {sample_id}")
    return sample


def top_up(
    engine: Engine,
    sample_id: int | None,
    *,
    n_total: int | None = None,
    n_more: int | None = None,
    seed: int,
) -> SampleSummary:
    """Enlarge a sample to ``n_total`` (or by ``n_more``) items, keeping the design exact.

    The new allocation is :func:`allocate` of the recorded weights with ``n'_h >= n_h``; each
    stratum's extra items are an SRS of its not-yet-sampled completions (so all its items are
    an SRS of size ``n'_h``), queued after its existing items. Every item's probability becomes
    ``n'_h / N_h``. Refused if the completions changed since the draw: the old items would then
    not be a random sample of the new strata, so draw a new sample instead.
    """
    if (n_total is None) == (n_more is None):
        raise SamplingError("give exactly one of n_total and n_more")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with session_scope(engine, write=True) as session:
        sample = _resolve_sample(session, sample_id, lock=True)
        connection = session.connection()
        recorded = pd.read_sql(
            select(*(getattr(SampleStratum, c) for c in STRATUM_COLUMNS)).where(SampleStratum.sample_id == sample.id),
            connection,
        )
        population = _population(connection)
        strata = _strata_of(population)
        current = strata.merge(recorded, on=["stratum", "benchmark", "query_language"], how="left",
                               suffixes=("", "_recorded"))
        changed = current["population_recorded"].ne(current["population"])
        if changed.any() or len(recorded) != len(strata):
            where = f"stratum {current.loc[changed, 'stratum'].iloc[0]!r}" if changed.any() else "a stratum"
            raise SamplingError(
                f"the completions changed since sample {sample.id} was drawn ({where} differs); a top-up "
                "would not keep the design exact: draw a new sample instead"
            )
        have = current["drawn"].to_numpy(dtype=np.int64)
        target = int(have.sum()) + n_more if n_total is None else n_total
        if target <= have.sum():
            raise SamplingError(f"sample {sample.id} has {int(have.sum())} items already; ask for more")
        drawn = allocate(current["weight_sum"], current["population"], target, lower=have)
        sampled = set(session.scalars(select(SampleItem.completion_id).where(SampleItem.sample_id == sample.id)))
        remaining = population[~population["id"].isin(sampled)].reset_index(drop=True)
        picks = _draw(remaining, drawn - have, have, rng)
        n_double = session.scalar(
            select(func.count()).where(SampleItem.sample_id == sample.id, SampleItem.double_annotate.is_(True))
        )
        double = _mark_double(rng, len(picks), round(sample.overlap_share * target) - n_double)
        probability = drawn / current["population"].to_numpy()
        round_ = sample.rounds + 1
        session.execute(insert(SampleItem), _item_rows(picks, sample.id, probability, round_, double))
        grown = np.flatnonzero(drawn > have)
        expected = target * current["weight_sum"] / current["weight_sum"].sum()
        session.execute(
            update(SampleStratum),
            [{"sample_id": sample.id, "stratum": current["stratum"].iat[h], "drawn": int(drawn[h]),
              "expected": float(expected.iat[h])} for h in range(len(current))],
        )
        connection.execute(
            update(SampleItem.__table__)
            .where(SampleItem.sample_id == bindparam("s_id"), SampleItem.stratum == bindparam("s_key"))
            .values(inclusion_probability=bindparam("s_pi")),
            [{"s_id": sample.id, "s_key": current["stratum"].iat[h], "s_pi": float(probability[h])} for h in grown],
        )
        sample.n_target, sample.rounds, sample.updated_at = target, round_, utcnow()
        session.add(SampleRound(sample_id=sample.id, round=round_, seed=seed, n_total=target, added=len(picks)))
        return SampleSummary(
            sample_id=sample.id, name=sample.name, seed=seed, n=target, added=len(picks),
            strata=len(current), population=len(population), double_annotate=int(n_double + double.sum()),
            rounds=round_, seconds=time.perf_counter() - started,
        )


def sample_rounds(engine: Engine, sample_id: int | None = None) -> pd.DataFrame:
    """The rounds of a sample (default: the newest): round, seed, n_total, added, created_at.

    Drawing with round 1's seed and topping up with each later round's seed and ``n_total``,
    on the same completions, gives the same sample.
    """
    with session_scope(engine) as session:
        sample = _resolve_sample(session, sample_id)
        rows = session.execute(
            select(SampleRound.round, SampleRound.seed, SampleRound.n_total, SampleRound.added, SampleRound.created_at)
            .where(SampleRound.sample_id == sample.id)
            .order_by(SampleRound.round)
        ).all()
    return pd.DataFrame(rows, columns=["round", "seed", "n_total", "added", "created_at"])


def current_sample_id(engine: Engine) -> int | None:
    """The newest sample (one database is one study; estimation uses the newest), or None."""
    with engine.connect() as connection:
        return connection.scalar(select(func.max(Sample.id)))


def design_report(engine: Engine, sample_id: int | None = None) -> pd.DataFrame:
    """Per stratum of a sample (default: the newest): the design figures and labels so far.

    Columns: stratum, benchmark, query_language, population (``N_h``), weight_sum (``W_h``),
    expected (``n * W_h / sum W``, before bounds and rounding), drawn (``n_h``), probability
    (``n_h / N_h``), double_annotate (items planned for a second label), labeled (items with a
    resolved gold label).
    """
    with session_scope(engine) as session:
        sample = _resolve_sample(session, sample_id)
        connection = session.connection()
        strata = pd.read_sql(
            select(*(getattr(SampleStratum, c) for c in STRATUM_COLUMNS))
            .where(SampleStratum.sample_id == sample.id)
            .order_by(SampleStratum.stratum),
            connection,
        )
        items = pd.read_sql(
            select(SampleItem.completion_id, SampleItem.stratum, SampleItem.double_annotate)
            .where(SampleItem.sample_id == sample.id),
            connection,
        )
        labeled = resolved_labels(session, sample.id)["completion_id"]
    items["labeled"] = items["completion_id"].isin(labeled)
    items["double_annotate"] = items["double_annotate"].astype(bool)
    counts = items.groupby("stratum")[["double_annotate", "labeled"]].sum()
    report = strata.assign(probability=strata["drawn"] / strata["population"]).join(counts, on="stratum")
    report[["double_annotate", "labeled"]] = report[["double_annotate", "labeled"]].fillna(0).astype(np.int64)
    return report
