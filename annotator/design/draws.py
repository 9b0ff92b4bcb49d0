"""Draw a sample and top it up: the selection inside each stratum, the queue order, the recorded rows.

The design (strata, their allocation, how the arms are balanced) is planned by
:mod:`annotator.design.sampling`, whose notes say why each probability is exact; here it is
drawn. Items get a ``queue_position`` (0, 1, ... within their stratum; random order for an SRS,
nested for a systematic draw, :func:`nested_order`), fixed when drawn; routing offers them in
that order. A top-up (:func:`top_up`) keeps the strata, draws the new items from the
not-yet-sampled completions in the same way (so each has probability
``n_h / N_h + (1 - n_h / N_h) m_h / (N_h - n_h) = (n_h + m_h) / N_h``) and queues them after the
existing positions. A seeded random ``overlap_share`` of items is marked for a second annotation.

Everything is seeded (``numpy.random.default_rng(seed)``), and the population is put in
code-point order of ids before drawing, so the same seed on the same completions gives the same
sample on every backend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sqlalchemy import Engine, bindparam, func, insert, select, update

from annotator.design.sampling import (
    STRATUM_COLUMNS,
    SamplingError,
    allocate_nested,
    min_draws,
    new_design,
    plan_design,
    recorded_population,
    resolve_sample,
    strata_of,
    with_stratum_codes,
)
from annotator.design.weights import SamplingWeights, as_weights
from annotator.storage import session_scope
from db.models import Sample, SampleItem, SampleRound, SampleStratum, table_of, utcnow

__all__ = ["SampleSummary", "draw_sample", "nested_order", "top_up"]

#: The golden ratio's fractional part: the shift between the systematic starts of two strata.
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


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
    allocation: str = "paper"

    def __str__(self) -> str:
        return (
            f"sample {self.sample_id} ({self.name}): {self.n} of {self.population} completions in "
            f"{self.strata} strata ({self.allocation} allocation), {self.added} added in round {self.rounds}, "
            f"{self.double_annotate} for double annotation ({self.seconds:.1f} s)"
        )


def nested_order(n: int) -> NDArray[np.int64]:
    """The queue rank of each of ``n`` systematic points: bit-reversed order, so the first ``l``
    points of the queue lie about ``n / l`` apart on the circle, for every ``l``.

    ``nested_order(6)`` is ``[0, 3, 2, 5, 1, 4]``: the queue is points 0, 4, 2, 1, 5, 3 (at 0,
    2/3, 1/3, 1/6, 5/6 and 1/2 of the way round). Any fixed order keeps every prefix's
    probabilities exact; this one keeps every prefix balanced.
    """
    if n <= 1:
        return np.zeros(max(n, 0), dtype=np.int64)
    bits = int(n - 1).bit_length()
    points = np.arange(1 << bits)
    reversed_ = np.zeros_like(points)
    for bit in range(bits):
        reversed_ |= ((points >> bit) & 1) << (bits - 1 - bit)
    queue = points[np.argsort(reversed_, kind="stable")]
    queue = queue[queue < n]  # the points in queue order
    rank = np.empty(n, dtype=np.int64)
    rank[queue] = np.arange(n)
    return rank


def _draw(
    population: pd.DataFrame,
    need: NDArray[np.int64],
    offset: NDArray[np.int64],
    rng: np.random.Generator,
    systematic: bool = False,
) -> pd.DataFrame:
    """``need[code]`` rows per stratum, queued after ``offset[code]`` (the stratum's existing items).

    Every row gets a uniform random key. SRS: within a stratum the rows with the ``need``
    smallest keys are an SRS, and their key order is a uniformly random order of it.
    Systematic: the stratum's rows in ``order`` (the sort of the design), random within it,
    are a circle of ``N`` places; ``need`` points ``N / need`` apart from a uniform start each
    take the row they fall on, queued in :func:`nested_order`. The starts are coordinated: one
    uniform number, shifted by the golden ratio for each further stratum (mod 1), so each start
    is uniform on its own (every probability stays exact) while the strata's first points fall
    on different arms, and the arms' labels balance across strata, not only inside each.
    """
    codes = population["code"].to_numpy()
    keys = rng.random(len(population))
    sort = (keys, population["order"].to_numpy(), codes) if systematic else (keys, codes)
    order = np.lexsort(sort)
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(len(need)))
    rank = np.arange(len(order)) - starts[sorted_codes]
    if not systematic:
        take = rank < need[sorted_codes]
        picks = population.iloc[order[take]].reset_index(drop=True)
        picks["queue_position"] = offset[sorted_codes[take]] + rank[take]
        return picks
    sizes = np.bincount(codes, minlength=len(need))
    rows: list[NDArray[np.int64]] = []
    positions: list[NDArray[np.int64]] = []
    start = (rng.random() + np.arange(len(need)) * _GOLDEN) % 1.0
    for code in np.flatnonzero(need > 0):
        size, count = int(sizes[code]), int(need[code])
        places = np.floor((start[code] * size + np.arange(count) * size / count) % size).astype(np.int64)
        rows.append(order[starts[code] + places])
        positions.append(offset[code] + nested_order(count))
    taken = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    picks = population.iloc[taken].reset_index(drop=True)
    picks["queue_position"] = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    return picks


def _item_rows(
    picks: pd.DataFrame, sample_id: int, probability: NDArray[np.float64], round_: int, double: NDArray[np.bool_]
) -> list[dict[str, Any]]:
    return [
        {
            "sample_id": sample_id,
            "completion_id": cid,
            "stratum": stratum,
            "query_language": language,
            "inclusion_probability": float(probability[code]),
            "queue_position": int(position),
            "round": round_,
            "double_annotate": bool(flag),
        }
        for cid, stratum, language, code, position, flag in zip(
            picks["id"],
            picks["stratum"],
            picks["query_language"],
            picks["code"],
            picks["queue_position"],
            double,
            strict=True,
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
    allocation: str = "paper",
    balance: str | None = None,
) -> SampleSummary:
    """Draw a new sample of ``n`` completions and record it, all in one transaction.

    ``weights``: a :class:`SamplingWeights`, a TOML-shaped mapping, or ``None`` for
    :data:`PAPER_WEIGHTS`. ``allocation``: ``"paper"`` (the weights decide each benchmark x
    language stratum's share, split in proportion over model x image inside) or ``"surrogate"``
    (shares that minimise the predicted mean width of the main IFL intervals, with confidence
    bands as extra strata; the ablation models keep the paper's share). ``balance``: how the
    model x image arms are balanced inside benchmark x language (:data:`BALANCES`; default
    ``"implicit"`` for the paper allocation, ``"arms"`` for the surrogate one).
    The new sample becomes the current one (:func:`current_sample_id`).
    """
    if not 0 <= overlap_share <= 1:
        raise SamplingError(f"overlap_share = {overlap_share} must lie between 0 and 1")
    if n <= 0:
        raise SamplingError(f"n = {n} must be positive")
    scheme = as_weights(weights)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with session_scope(engine, write=True) as session:
        population, design = new_design(session.connection(), allocation, balance)
        strata, design = plan_design(population, scheme, n, allocation, design)
        population = with_stratum_codes(population, design)
        drawn = strata["drawn"].to_numpy()
        picks = _draw(population, drawn, np.zeros_like(drawn), rng, design["selection"] == "systematic")
        double = _mark_double(rng, len(picks), round(overlap_share * n))
        if name is None:
            # No size in the name: a top-up changes the size, and a stale "n=600" misleads.
            name = f"seed {seed}, drawn {utcnow():%Y-%m-%d %H:%M:%S} UTC"
        if session.scalar(select(Sample.id).where(Sample.name == name)) is not None:
            raise SamplingError(f"a sample named {name!r} exists already")
        sample = Sample(
            name=name,
            seed=seed,
            n_target=n,
            weights=scheme.to_dict(),
            design=design,
            overlap_share=overlap_share,
            rounds=1,
        )
        session.add(sample)
        session.flush()
        session.execute(insert(SampleStratum), strata.assign(sample_id=sample.id).to_dict("records"))
        probability = drawn / strata["population"].to_numpy()
        session.execute(insert(SampleItem), _item_rows(picks, sample.id, probability, 1, double))
        session.add(SampleRound(sample_id=sample.id, round=1, seed=seed, n_total=n, added=n))
        return SampleSummary(
            sample_id=sample.id,
            name=name,
            seed=seed,
            n=n,
            added=n,
            strata=len(strata),
            population=len(population),
            double_annotate=int(double.sum()),
            rounds=1,
            seconds=time.perf_counter() - started,
            allocation=allocation,
        )


def top_up(
    engine: Engine,
    sample_id: int | None,
    *,
    n_total: int | None = None,
    n_more: int | None = None,
    seed: int,
) -> SampleSummary:
    """Enlarge a sample to ``n_total`` (or by ``n_more``) items, keeping the design exact.

    The strata stay those recorded at the draw (``samples.design``). The new allocation is
    :func:`allocate` of the recorded weights with ``n'_h >= n_h``; each stratum's extra items
    are drawn from its not-yet-sampled completions as the first were (an SRS, so all its items
    are an SRS of size ``n'_h``; or a systematic selection over the same sort), queued after its
    existing items. Every item's probability becomes ``n'_h / N_h``.
    Refused if the completions (or, for confidence bands, the predictions) changed since the
    draw: the old items would then not be a random sample of the new strata, so draw a new
    sample instead.
    """
    if (n_total is None) == (n_more is None):
        raise SamplingError("give exactly one of n_total and n_more")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with session_scope(engine, write=True) as session:
        sample = resolve_sample(session, sample_id, lock=True)
        connection = session.connection()
        recorded = pd.read_sql(
            select(*(getattr(SampleStratum, c) for c in STRATUM_COLUMNS)).where(SampleStratum.sample_id == sample.id),
            connection,
        )
        population = recorded_population(connection, sample.design)
        strata = strata_of(population)
        current = strata.merge(
            recorded, on=["stratum", "benchmark", "query_language"], how="left", suffixes=("", "_recorded")
        )
        changed = current["population_recorded"].ne(current["population"])
        bands = (sample.design or {}).get("confidence_cuts") is not None
        if changed.any() or len(recorded) != len(strata):
            where = f"stratum {current.loc[changed, 'stratum'].iloc[0]!r}" if changed.any() else "a stratum"
            raise SamplingError(
                f"the completions{' or the predictions its confidence bands use' if bands else ''} changed "
                f"since sample {sample.id} was drawn ({where} differs); a top-up would not keep the design "
                "exact: draw a new sample instead"
            )
        have = current["drawn"].to_numpy(dtype=np.int64)
        target = int(have.sum()) + (n_more or 0) if n_total is None else n_total  # n_more is given then
        if target <= have.sum():
            raise SamplingError(f"sample {sample.id} has {int(have.sum())} items already; ask for more")
        drawn = allocate_nested(current, target, lower=np.maximum(have, min_draws(current["population"])))
        sampled = set(session.scalars(select(SampleItem.completion_id).where(SampleItem.sample_id == sample.id)))
        remaining = population[~population["id"].isin(sampled)].reset_index(drop=True)
        systematic = (sample.design or {}).get("selection") == "systematic"
        picks = _draw(remaining, drawn - have, have, rng, systematic)
        n_double = session.execute(
            select(func.count()).where(SampleItem.sample_id == sample.id, SampleItem.double_annotate.is_(True))
        ).scalar_one()
        double = _mark_double(rng, len(picks), round(sample.overlap_share * target) - n_double)
        probability = drawn / current["population"].to_numpy()
        round_ = sample.rounds + 1
        session.execute(insert(SampleItem), _item_rows(picks, sample.id, probability, round_, double))
        grown = np.flatnonzero(drawn > have)
        expected = target * current["weight_sum"] / current["weight_sum"].sum()
        session.execute(
            update(SampleStratum),
            [
                {
                    "sample_id": sample.id,
                    "stratum": current["stratum"].iat[h],
                    "drawn": int(drawn[h]),
                    "expected": float(expected.iat[h]),
                }
                for h in range(len(current))
            ],
        )
        connection.execute(
            update(table_of(SampleItem))
            .where(SampleItem.sample_id == bindparam("s_id"), SampleItem.stratum == bindparam("s_key"))
            .values(inclusion_probability=bindparam("s_pi")),
            [{"s_id": sample.id, "s_key": current["stratum"].iat[h], "s_pi": float(probability[h])} for h in grown],
        )
        sample.n_target, sample.rounds, sample.updated_at = target, round_, utcnow()
        session.add(SampleRound(sample_id=sample.id, round=round_, seed=seed, n_total=target, added=len(picks)))
        return SampleSummary(
            sample_id=sample.id,
            name=sample.name,
            seed=seed,
            n=target,
            added=len(picks),
            strata=len(current),
            population=len(population),
            double_annotate=int(n_double + double.sum()),
            rounds=round_,
            seconds=time.perf_counter() - started,
            allocation=(sample.design or {}).get("allocation", "paper"),
        )
