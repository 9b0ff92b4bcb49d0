"""Time the study's statistics at full scale: ``python benchmarks/bench_stats.py [--rows N ...] [--labels n]``.

Parts (cross_fit=5, sample_split=10 unless changed): cross-fitted g-hat for fidelity and for
correctness (once each over the whole frame), the 12 model x benchmark image effects (IFL) by
each of the three estimators, both interaction regressions, and the same estimands for accuracy.
The synthetic frame comes from :func:`stats.simulate_study`; its generation is timed but not part
of the total. Target: the total within 30 s for 730k rows and 1000 labels on a 2-core machine.

Several ``--rows`` (``--rows 730000 3000000 10000000``) measure growth instead: each size runs
in a fresh process, which times one full estimation from nothing (:func:`stats.analyse_study`:
every estimand, both outcomes, power), then the recompute after one label changed (with the
estimation's ``AnalysisCache``, as the dashboard recomputes), and reports its peak resident
memory; the table gives seconds per million rows, which stays flat when the work grows linearly.

``--compare-learners`` instead measures candidate g-hat learners (accuracy against the true
labels, resulting DSL standard errors, time): the measurement behind the default learner
(docs/stats.md, "Choice of learner").
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import stats
from stats.cache import AnalysisCache


def _timed(
    label: str, timings: dict[str, tuple[float, float]], action: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """Call ``action(*args, **kwargs)``; record and print its wall and CPU time under ``label``.

    CPU time (this process, all threads) is printed too because the machine may be shared: wall
    time then includes waiting for a core, CPU time does not.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    value = action(*args, **kwargs)
    timings[label] = (time.perf_counter() - wall, time.process_time() - cpu)
    print(f"{label}: {timings[label][0]:.1f} s (cpu {timings[label][1]:.1f} s)", flush=True)
    return value


def time_study(rows: int, labels: int, cross_fit: int, sample_split: int, seed: int) -> None:
    """Print the time of each part of the study's analysis and the total."""
    setup: dict[str, tuple[float, float]] = {}
    frame = _timed(
        f"simulate_study({rows} rows, {labels} labels) [not in total]",
        setup,
        stats.simulate_study,
        rows,
        labels,
        seed=seed,
    )
    crossfit = dict(cross_fit=cross_fit, sample_split=sample_split)
    timings: dict[str, tuple[float, float]] = {}
    for outcome, name in (("fidelity", "IFL"), ("correct", "accuracy")):
        g_hat = _timed(
            f"g-hat {outcome} ({cross_fit} folds x {sample_split} splits)",
            timings,
            stats.study_predictions,
            frame,
            outcome,
            seed=seed,
            **crossfit,
        )
        formula = f"{outcome} ~{stats.INTERACTION_FORMULA.split('~', 1)[1]}"
        for estimator in stats.ESTIMATORS:
            fits = _timed(
                f"{estimator} {name} x12",
                timings,
                stats.image_effect_fits,
                frame,
                outcome,
                estimators=[estimator],
                g_hat=g_hat,
            )
            if len(fits) != 12:
                raise RuntimeError(f"expected 12 model x benchmark cells, got {len(fits)}")
            _timed(
                f"{estimator} {name} interaction x2",
                timings,
                stats.interaction_fits,
                frame,
                formula,
                estimators=[estimator],
                g_hat=g_hat,
            )
    wall, cpu = (sum(t[i] for t in timings.values()) for i in (0, 1))
    print(f"total: {wall:.1f} s (cpu {cpu:.1f} s)")
    _timed(
        "analyse_study, everything in one call incl. tables and power [not in total]",
        setup,
        stats.analyse_study,
        frame,
        seed=seed,
        **crossfit,
    )


def compare_learners(rows: int, labels: int, seeds: list[int]) -> pd.DataFrame:
    """Log-loss, Brier, seconds per fold and DSL SEs of candidate g-hat learners for fidelity."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression

    candidates: dict[str, Any] = {
        "surrogate as g-hat (no learning)": None,
        "logistic regression, main effects": LogisticRegression(C=1.0, solver="newton-cholesky"),
        "BinnedInteraction C=0.3 (default)": stats.BinnedInteractionLearner(C=0.3),
        "BinnedInteraction C=1": stats.BinnedInteractionLearner(C=1.0),
        "BinnedInteraction C=0.1": stats.BinnedInteractionLearner(C=0.1),
        "HistGradientBoosting (50 trees, 8 leaves)": HistGradientBoostingClassifier(
            max_iter=50, max_leaf_nodes=8, min_samples_leaf=20
        ),
        "random forest (200 trees, leaf 5)": RandomForestRegressor(
            n_estimators=200, min_samples_leaf=5, max_features=0.5, n_jobs=1
        ),
    }
    prediction, features = stats.LEARNER_INPUTS["fidelity"]
    records = []
    for seed in seeds:
        frame = stats.simulate_study(rows, labels, seed=seed, include_truth=True)
        inputs = frame.assign(log_chars=np.log(frame["completion_chars"]))
        unlabeled = frame["fidelity"].isna().to_numpy()
        truth = frame["fidelity_true"].to_numpy()[unlabeled]
        cell = ((frame["model"] == "llava-1.5") & (frame["benchmark"] == "xgqa")).to_numpy()
        for name, learner in candidates.items():
            start = time.perf_counter()
            if learner is None:
                g_hat = np.tile(frame[prediction].to_numpy(), (2, 1))
            else:
                g_hat = stats.cross_fit_predictions(
                    inputs,
                    "fidelity",
                    prediction,
                    list(features),
                    cross_fit=5,
                    sample_split=2,
                    seed=seed,
                    learner=learner,
                )
            seconds = (time.perf_counter() - start) / 10
            p = np.clip(g_hat[0][unlabeled], 1e-3, 1 - 1e-3)
            pooled = stats.dsl("lm", "fidelity ~ image", frame, "fidelity", sample_prob="sample_prob", g_hat=g_hat)
            one_cell = stats.dsl(
                "lm", "fidelity ~ image", frame[cell], "fidelity", sample_prob="sample_prob", g_hat=g_hat[:, cell]
            )
            records.append(
                {
                    "learner": name,
                    "log-loss": -np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)),
                    "Brier": np.mean((np.clip(g_hat[0][unlabeled], 0, 1) - truth) ** 2),
                    "s/fold": seconds,
                    "SE pooled IFL": pooled.bse["image"],
                    "SE one cell": one_cell.bse["image"],
                }
            )
            print(records[-1], flush=True)
    table = pd.DataFrame(records).groupby("learner", sort=False).mean()
    print(table.round(4).to_string())
    return table


def full_estimation(rows: int, labels: int, cross_fit: int, sample_split: int, seed: int) -> None:
    """One :func:`stats.analyse_study` on a simulated frame from nothing, then the recompute after
    one label changed (with the :class:`stats.estimands.AnalysisCache` of the first, as the
    dashboard keeps it); prints a parsable line with rows, wall and CPU seconds of each and
    this process's peak resident memory (MB)."""
    frame = stats.simulate_study(rows, labels, seed=seed)
    cache = AnalysisCache()
    args: dict[str, Any] = dict(cross_fit=cross_fit, sample_split=sample_split, seed=seed)
    wall, cpu = time.perf_counter(), time.process_time()
    stats.analyse_study(frame, cache=cache, **args)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # The same population with one label less: what a recompute after a label change does.
    changed = frame.copy(deep=False)
    row = int(np.flatnonzero(frame["labeled"].to_numpy())[0])
    for column, value in (("fidelity", np.nan), ("correct", np.nan), ("labeled", False)):
        values = frame[column].to_numpy().copy()
        values[row] = value
        changed[column] = values
    again_wall, again_cpu = time.perf_counter(), time.process_time()
    stats.analyse_study(changed, cache=cache, **args)
    again_wall, again_cpu = time.perf_counter() - again_wall, time.process_time() - again_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT {rows} {wall:.3f} {cpu:.3f} {again_wall:.3f} {again_cpu:.3f} {peak:.0f}", flush=True)


def available_mb() -> float | None:
    """MemAvailable of /proc/meminfo in MB (None where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def growth(sizes: list[int], labels: int, cross_fit: int, sample_split: int, seed: int, *, force: bool = False) -> None:
    """Time and peak memory of a full estimation and of a recompute after a label, per size,
    each size in a fresh process, with the load average after it (on a shared machine wall
    time includes waiting for a core). A size whose peak memory, by the line through the previous
    size's, would take more than 80% of the memory available now is skipped unless ``force``:
    on a shared machine the out-of-memory killer would pick someone else's process."""
    print(
        f"{'rows':>12} {'wall s':>8} {'cpu s':>8} {'cpu s / M rows':>15} "
        f"{'recompute wall s':>17} {'recompute cpu s':>16} {'peak MB':>9} {'load':>5}"
    )
    mb_per_row: float | None = None
    for rows in sizes:
        available = available_mb()
        if not force and mb_per_row is not None and available is not None and mb_per_row * rows > 0.8 * available:
            print(
                f"{rows:>12,} skipped: needs about {mb_per_row * rows:,.0f} MB by the line, "
                f"{available:,.0f} MB available (--force runs it anyway)",
                flush=True,
            )
            continue
        command = [
            sys.executable,
            __file__,
            "--rows",
            str(rows),
            "--labels",
            str(labels),
            "--cross-fit",
            str(cross_fit),
            "--sample-split",
            str(sample_split),
            "--seed",
            str(seed),
            "--one-estimation",
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=False)
        result = [line.split() for line in output.stdout.splitlines() if line.startswith("RESULT ")]
        if output.returncode != 0 or not result:
            print(f"{rows:>12,} failed (exit {output.returncode}): {output.stderr.strip().splitlines()[-1:]}")
            continue
        _, _, wall, cpu, again_wall, again_cpu, peak = result[0]
        mb_per_row = float(peak) / rows
        print(
            f"{rows:>12,} {float(wall):>8.1f} {float(cpu):>8.1f} {float(cpu) / rows * 1e6:>15.2f} "
            f"{float(again_wall):>17.1f} {float(again_cpu):>16.1f} {float(peak):>9,.0f} {os.getloadavg()[0]:>5.1f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[730_000],
        help="simulated rows; several sizes measure growth (time and peak memory)",
    )
    parser.add_argument("--labels", type=int, default=1_000)
    parser.add_argument("--cross-fit", type=int, default=5)
    parser.add_argument("--sample-split", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compare-learners",
        action="store_true",
        help="measure g-hat learners on 100k rows, seeds 1-3, instead of timing",
    )
    parser.add_argument(
        "--force", action="store_true", help="with several --rows: run a size even if it may not fit in memory"
    )
    parser.add_argument("--one-estimation", action="store_true", help=argparse.SUPPRESS)  # growth's child
    args = parser.parse_args(argv)
    if args.compare_learners:
        compare_learners(min(args.rows[0], 100_000), args.labels, seeds=[1, 2, 3])
    elif args.one_estimation:
        full_estimation(args.rows[0], args.labels, args.cross_fit, args.sample_split, args.seed)
    elif len(args.rows) > 1:
        growth(args.rows, args.labels, args.cross_fit, args.sample_split, args.seed, force=args.force)
    else:
        time_study(args.rows[0], args.labels, args.cross_fit, args.sample_split, args.seed)


if __name__ == "__main__":
    main()
