"""Measure the sampling designs on the demo: ``python benchmarks/bench_allocation.py [--db URL] [--size paper]``.

Measurements from the demo's true labels (``demo_oracle``), seeded, printed as tables:

1. **Labels per arm while annotation is under way** (issue 9.3). For each design option, over
   ``--reps`` seeds, the labels each model x benchmark x image arm holds after 10 %, 30 % and
   100 % of the sample is labeled: share of arms with none, with fewer than three, and the
   mean relative deviation from the arm's proportional share. Routing is simulated as the app
   does it for one annotator who reads every language (:func:`annotator.annotation.queue.stratum_priority`:
   every stratum's first item first, then Sainte-Lague), in queue order. Options:
   ``benchmark x language`` (the design before issue 9), ``arms as strata`` (``--balance arms``),
   ``implicit stratification`` (systematic selection from each benchmark x language list sorted
   by model and image, random start) with a random queue, or with the nested queue of the app's
   own draw (the default now), and ``balanced queue`` (SRS of each benchmark x language, queue
   interleaving the arms).
2. **Labels for equal width** (issue 9.4): the mean width of the 12 main IFL intervals under
   the paper and the surrogate-informed allocation at several ``n``, and the ``n`` each needs
   to match the paper allocation's width at ``--n``. The width is the exact design-based one
   for the difference estimator with the surrogate fixed: ``2 x 1.96 sqrt(sum_h N_h^2 (1 - f_h)
   S_h^2(z) / n_h)`` with ``z`` the contrast's residual ``Y - Yhat`` (Cochran 1977, 5.3), from
   the oracle's ``Y`` over the whole population, and the designs the app draws
   (:func:`annotator.design.draws.draw_sample`). The app's DSL uses a learned ``g-hat`` and its own
   variance estimate, so absolute widths differ; 3 measures those. The
   widths each design *predicts* before any label (:func:`annotator.design.sampling.predicted_widths`)
   are printed beside them.
3. **End to end** (``--end-to-end SEEDS``): the paper allocation at ``--n``, the surrogate-informed
   one at ``--n`` and at its equal-width size from 2, each sample labeled in full from the oracle
   through routing (no annotator error), and the app's estimates (cross-fitted g-hat): the mean
   width of the 12 main DSL intervals with the app's design variance and with R's sandwich.

Without ``--db`` the demo is built into a temporary SQLite file first (paper size: ~1 min).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotator.analysis.frame import faithful_class
from annotator.annotation.queue import stratum_priority
from annotator.demo.setup import set_up_demo
from annotator.design.draws import draw_sample
from annotator.design.report import design_report
from annotator.design.sampling import predicted_widths, strata_for_sample
from annotator.storage import fetch_frame, make_engine, upgrade_database
from db.models import Completion, DemoOracle, Prediction
from stats.allocation import Z_95

POINTS = (0.1, 0.3, 1.0)


def population(engine) -> pd.DataFrame:
    """Every completion with its arm, the surrogate's fidelity and the true fidelity."""
    with engine.connect() as connection:
        frame = fetch_frame(
            connection,
            select(
                Completion.id.label("completion_id"),
                Completion.benchmark,
                Completion.query_language,
                Completion.model,
                Completion.image,
                Completion.llm,
            ),
        )
        lid = fetch_frame(
            connection, select(Prediction.completion_id, Prediction.language_class).where(Prediction.source == "lid176")
        )
        oracle = fetch_frame(connection, select(DemoOracle.completion_id, DemoOracle.answer_language))
    frame = frame.merge(lid, on="completion_id", how="left").merge(oracle, on="completion_id", how="left")
    frame = frame.sort_values("completion_id", ignore_index=True)
    frame["image"] = frame["image"].astype(np.int64)
    faithful = faithful_class(frame["query_language"])
    frame["y"] = (frame["answer_language"] == faithful).astype(float)
    frame["yhat"] = (frame["language_class"] == faithful).astype(float)
    frame["main"] = frame["llm"].isna()
    frame["arm"] = frame["model"] + "|" + frame["benchmark"] + "|" + frame["image"].astype(str)
    frame["coarse"] = frame["benchmark"] + "|" + frame["query_language"]
    return frame


def drawn_design(engine, frame: pd.DataFrame, n: int, seed: int = 0, **options) -> tuple[pd.Series, pd.Series]:
    """Draw with the app's sampler; each row's stratum and each stratum's ``n_h``."""
    name = f"bench {options} n={n} seed={seed} at {time.time_ns()}"
    sample_id = draw_sample(engine, n, seed=seed, name=name, **options).sample_id
    strata = strata_for_sample(engine, frame, sample_id)
    drawn = design_report(engine, sample_id).set_index("stratum")["drawn"]
    return strata, drawn


# --- 1. labels per arm while annotation is under way ----------------------------------------------


def _serve_order(codes: np.ndarray, rank: np.ndarray, size: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Positions of sampled rows in routing order: item j of stratum h comes at
    :func:`annotator.annotation.queue.stratum_priority` ``(h, j, n_h)`` (the key routing minimises)."""
    keys = [stratum_priority(name, 0, 1)[2] for name in names]
    return np.lexsort((np.asarray(keys)[codes], (rank + 0.5) / size[codes], rank > 0))


def _labels_at(frame: pd.DataFrame, order: np.ndarray, sampled: np.ndarray, points) -> list[pd.Series]:
    rows = np.flatnonzero(sampled)[order]
    return [frame["arm"].iloc[rows[: round(point * len(rows))]].value_counts() for point in points]


def stratified(
    frame: pd.DataFrame, strata: pd.Series, drawn: pd.Series, rng: np.random.Generator, queue: str = "random"
) -> tuple[np.ndarray, np.ndarray]:
    """SRS of ``n_h`` per stratum; the serve order of the sampled rows (random or arm-balanced queue)."""
    codes, names = pd.factorize(strata, sort=True)
    need = drawn.reindex(names).fillna(0).to_numpy(np.int64)
    keys = rng.random(len(frame))
    order = np.lexsort((keys, codes))
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order] = np.arange(len(frame)) - np.searchsorted(codes[order], codes[order])
    sampled = rank < need[codes]
    position = rank[sampled].astype(np.float64)
    if queue == "balanced":  # interleave the arms of each stratum: arm a's k-th item at (k + u_a) / m_a
        arm_codes = pd.factorize(frame["arm"].to_numpy()[sampled] + "#" + strata.to_numpy()[sampled])[0]
        within = pd.Series(keys[sampled]).groupby(arm_codes).rank(method="first").to_numpy() - 1
        size = np.bincount(arm_codes)
        offset = rng.random(len(size))
        position = (within + offset[arm_codes]) / size[arm_codes]
        position = pd.Series(position).groupby(codes[sampled]).rank(method="first").to_numpy() - 1
    return sampled, _serve_order(codes[sampled], position, need, names)


def implicit(
    frame: pd.DataFrame, strata: pd.Series, drawn: pd.Series, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Systematic selection from each stratum's list sorted by model and image, random start."""
    codes, names = pd.factorize(strata, sort=True)
    need = drawn.reindex(names).to_numpy(np.float64)
    order = np.lexsort((rng.random(len(frame)), frame["image"].to_numpy(), frame["model"].to_numpy(), codes))
    sorted_codes = codes[order]
    size = np.bincount(codes).astype(np.float64)
    index = np.arange(len(frame)) - np.searchsorted(sorted_codes, sorted_codes)
    start = rng.random(len(names)) * size / need
    step = size / need
    # Row i of the sorted list covers [i, i + 1); it is selected if a point start + k * step lands in it.
    first = np.ceil((index - start[sorted_codes]) / step[sorted_codes])
    selected_sorted = (start[sorted_codes] + first * step[sorted_codes]) < index + 1
    sampled = np.zeros(len(frame), dtype=bool)
    sampled[order[selected_sorted]] = True
    ranks = pd.Series(rng.random(int(sampled.sum()))).groupby(codes[sampled]).rank(method="first").to_numpy() - 1
    return sampled, _serve_order(codes[sampled], ranks, need.astype(np.int64), names)


def drawn_by_the_app(engine, frame: pd.DataFrame, n: int, seed: int, balance: str) -> tuple[np.ndarray, np.ndarray]:
    """The app's own draw (:func:`draw_sample`) and its queue: which rows are sampled, and their
    serve order (routing's stratum priority over the recorded queue positions)."""
    from db.models import SampleItem

    name = f"bench {balance} n={n} seed={seed} at {time.time_ns()}"
    sample_id = draw_sample(engine, n, seed=seed, name=name, balance=balance).sample_id
    with engine.connect() as connection:
        items = fetch_frame(
            connection,
            select(SampleItem.completion_id, SampleItem.stratum, SampleItem.queue_position).where(
                SampleItem.sample_id == sample_id
            ),
        )
    row = pd.Series(np.arange(len(frame)), index=frame["completion_id"])
    sampled = np.zeros(len(frame), dtype=bool)
    sampled[row[items["completion_id"]].to_numpy()] = True
    items = items.set_index("completion_id").reindex(frame["completion_id"][sampled])
    codes, names = pd.factorize(items["stratum"], sort=True)
    size = np.bincount(codes)
    return sampled, _serve_order(codes, items["queue_position"].to_numpy(np.float64), size, np.asarray(names))


def balance_table(engine, frame: pd.DataFrame, n: int, reps: int) -> pd.DataFrame:
    coarse_strata, coarse_drawn = drawn_design(engine, frame, n, balance="none")
    arm_strata, arm_drawn = drawn_design(engine, frame, n, balance="arms")
    options = {
        "benchmark x language (before)": lambda rng: stratified(frame, coarse_strata, coarse_drawn, rng),
        "arms as strata": lambda rng: stratified(frame, arm_strata, arm_drawn, rng),
        "implicit stratification, random queue": lambda rng: implicit(frame, coarse_strata, coarse_drawn, rng),
        "implicit stratification, nested queue (now)": lambda rng: drawn_by_the_app(
            engine, frame, n, int(rng.integers(2**31)), "implicit"
        ),
        "balanced queue": lambda rng: stratified(frame, coarse_strata, coarse_drawn, rng, queue="balanced"),
    }
    arms = frame["arm"].unique()
    rows = []
    for option, draw in options.items():
        # The arm's proportional share: its expected labels, sum over strata of n_h N_ha / N_h.
        strata, drawn = (arm_strata, arm_drawn) if option.startswith("arms") else (coarse_strata, coarse_drawn)
        sizes = strata.value_counts()
        share = frame.groupby([strata.rename("stratum"), frame["arm"]]).size().rename("N").reset_index()
        share["expected"] = share["N"] * share["stratum"].map(drawn / sizes)
        expected = share.groupby("arm")["expected"].sum().reindex(arms)
        counts = {point: [] for point in POINTS}
        for seed in range(reps):
            sampled, order = draw(np.random.default_rng(seed))
            for point, labeled in zip(POINTS, _labels_at(frame, order, sampled, POINTS), strict=True):
                counts[point].append(labeled.reindex(arms, fill_value=0).to_numpy())
        for point in POINTS:
            held = np.array(counts[point])
            target = point * expected.to_numpy()
            rows.append(
                {
                    "design": option,
                    "labeled": f"{point:.0%}",
                    "arms with 0 labels": (held == 0).mean(),
                    "arms with < 3": (held < 3).mean(),
                    "mean |labels - share| / share": np.mean(np.abs(held - target) / target),
                    "fewest labels in an arm": int(held.min()),
                }
            )
    return pd.DataFrame(rows)


# --- 2. labels for equal width --------------------------------------------------------------------


def oracle_widths(frame: pd.DataFrame, strata: pd.Series, drawn: pd.Series) -> pd.Series:
    """Exact design-based width of each main IFL contrast (difference estimator, surrogate fixed)."""
    residual = frame["y"] - frame["yhat"]
    main = frame["main"].to_numpy()
    sizes = strata.value_counts()
    n_h = strata.map(drawn).to_numpy(np.float64)
    N_h = strata.map(sizes).to_numpy(np.float64)
    widths = {}
    for (model, benchmark), rows in frame[main].groupby(["model", "benchmark"]):
        arm_size = rows.groupby("image").size()
        z = np.zeros(len(frame))
        for image, sign in ((0, 1.0), (1, -1.0)):
            members = rows.index[rows["image"] == image]
            z[members] = sign * residual.to_numpy()[members] / arm_size[image]
        touched = pd.Series(z != 0).groupby(strata.to_numpy()).any()
        keep = strata.isin(touched[touched].index).to_numpy()
        variance = pd.Series(z[keep]).groupby(strata.to_numpy()[keep]).var(ddof=1).fillna(0.0)
        first = pd.Series(np.arange(keep.sum())).groupby(strata.to_numpy()[keep]).first()
        rows_first = np.flatnonzero(keep)[first.reindex(variance.index).to_numpy()]
        Nh, nh = N_h[rows_first], n_h[rows_first]
        total = np.sum(Nh**2 * (1 - nh / Nh) * variance.to_numpy() / nh)
        widths[(model, benchmark)] = 2 * Z_95 * np.sqrt(total)
    return pd.Series(widths)


def equal_width_table(
    engine, frame: pd.DataFrame, n_reference: int, grid: list[int]
) -> tuple[pd.DataFrame, str, dict[str, float]]:
    rows = []
    for allocation in ("paper", "surrogate"):
        for n in grid:
            strata, drawn = drawn_design(engine, frame, n, allocation=allocation)
            rows.append({"allocation": allocation, "n": n, "mean width": oracle_widths(frame, strata, drawn).mean()})
    table = pd.DataFrame(rows)
    reference = table.query("allocation == 'paper' and n == @n_reference")["mean width"].iat[0]
    needed = {}
    for allocation, part in table.groupby("allocation"):
        # Width ~ c / sqrt(n): interpolate log width on log n between the grid points around it.
        needed[allocation] = float(
            np.exp(np.interp(-np.log(reference), -np.log(part["mean width"]), np.log(part["n"])))
        )
    summary = (
        f"labels for the mean width of the paper allocation at n={n_reference} ({reference:.4f}): "
        f"paper {needed['paper']:.0f}, surrogate-informed {needed['surrogate']:.0f}, "
        f"ratio {needed['surrogate'] / needed['paper']:.2f}"
    )
    return table, summary, needed


def end_to_end(engine, sizes: list[tuple[str, int]], seeds: int) -> pd.DataFrame:
    """Draw each (allocation, n), label the whole sample from the oracle (no annotator error)
    through routing, and run the app's estimates: the mean width of the 12 main DSL IFL
    intervals with the app's default (design) variance and R's sandwich, per seed."""
    from annotator.analysis.estimates import study_estimates
    from annotator.demo.annotators import simulate_annotators

    rows = []
    for seed in range(seeds):
        for allocation, n in sizes:
            draw_sample(
                engine,
                n,
                seed=100 + seed,
                allocation=allocation,
                name=f"end to end {allocation} {n} {seed} at {time.time_ns()}",
            )
            simulate_annotators(engine, error_rate=0.0, seed=seed)
            row = {"allocation": allocation, "n": n, "seed": seed}
            for variance in ("design", "sandwich"):
                ifl = study_estimates(engine, seed=seed, variance=variance).ifl
                main = ifl[(ifl["estimator"] == "dsl") & ~ifl["ablation"].astype(bool)]
                row[f"{variance} width"] = (main["ci_high"] - main["ci_low"]).mean()
            rows.append(row)
            print(row, flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a database holding the demo (default: build one in a temporary file)")
    parser.add_argument("--size", choices=["small", "paper"], default="paper")
    parser.add_argument("--n", type=int, default=None, help="reference sample size (default: 600 small, 1000 paper)")
    parser.add_argument("--reps", type=int, default=50, help="seeds for the labels-per-arm measurement")
    parser.add_argument(
        "--end-to-end",
        type=int,
        default=0,
        metavar="SEEDS",
        help="also label whole samples of both allocations at the equal-width sizes and run the "
        "app's DSL estimates, over this many seeds (slow: minutes per seed at paper size)",
    )
    parser.add_argument("--skip-balance", action="store_true", help="skip measurement 1")
    args = parser.parse_args()
    n = args.n or {"small": 600, "paper": 1000}[args.size]
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'demo.sqlite'}"
        engine = make_engine(url)
        upgrade_database(engine)
        if args.db is None:
            started = time.perf_counter()
            for line in set_up_demo(engine, size=args.size, seed=0, labeled_share=0):
                print(line, flush=True)
            print(f"demo built in {time.perf_counter() - started:.0f} s", flush=True)
        frame = population(engine)
        print(f"\n{len(frame):,} completions, {frame['arm'].nunique()} model x benchmark x image arms, n = {n}")

        pd.set_option("display.width", 200)
        started = time.perf_counter()
        if not args.skip_balance:
            print(f"\n== 1. labels per arm, {args.reps} seeds, one annotator reading every language")
            print(balance_table(engine, frame, n, args.reps).to_string(index=False, float_format=lambda v: f"{v:.3f}"))

        print("\n== 2. mean width of the 12 main IFL intervals (oracle residuals, exact design variance)")
        grid = sorted({int(n * f) for f in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)})
        table, summary, needed = equal_width_table(engine, frame, n, grid)
        widths = table.pivot(index="n", columns="allocation", values="mean width")
        print(widths.to_string(float_format=lambda v: f"{v:.4f}"))
        print(summary)
        if args.end_to_end:
            print(f"\n== 3. end to end: whole samples labeled from the oracle, the app's DSL, {args.end_to_end} seeds")
            sizes = [("paper", n), ("surrogate", n), ("surrogate", round(needed["surrogate"]))]
            result = end_to_end(engine, sizes, args.end_to_end)
            print(
                result.groupby(["allocation", "n"])[["design width", "sandwich width"]]
                .agg(["mean", "count"])
                .to_string(float_format=lambda v: f"{v:.4f}")
            )
        predicted = predicted_widths(engine, n)
        print(
            f"\npredicted before any label at n={n} (proxy 1 - p): mean width paper "
            f"{predicted['paper'].mean():.4f}, surrogate {predicted['surrogate'].mean():.4f}, "
            f"ratio {predicted['surrogate'].mean() / predicted['paper'].mean():.2f}"
        )
        print(f"\nmeasurements took {time.perf_counter() - started:.0f} s")
        engine.dispose()


if __name__ == "__main__":
    main()
