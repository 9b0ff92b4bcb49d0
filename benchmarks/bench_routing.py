"""Next-item latency of routing at the paper's scale: claim_next + submit, target < 50 ms.

Inserts ~730k synthetic completions (plain executemany), a 1000-item stratified sample with
10% double annotation (written directly, so this measures routing only), and annotators who
read two or three languages each. Then annotators take turns claiming and labeling, and the
latency of every claim_next, submit and of the pair is recorded. Prints median and p95 ms.

    python benchmarks/bench_routing.py [--completions 730000] [--sample 1000] [--labels 400] [--db URL]

Without ``--db`` a temporary SQLite file is used. A PostgreSQL URL gets a schema of its own,
dropped afterwards. Exits 1 when the median of the pair misses the target.

``--workers N`` measures under contention instead: N processes, one annotator each, claim and
label at once until ``--labels`` labels are in; it prints the latency of the pair and counts
empty claims that :func:`progress` contradicted right after (a race the claim should have
retried past, or an item that opened in between; expected to be rare or none).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratch import scratch_database
from sqlalchemy import Engine, insert

from annotator.access.accounts import add_annotator
from annotator.annotation.reporting import progress
from annotator.annotation.routing import claim_next, submit
from annotator.storage import make_engine, upgrade_database
from db.models import Completion, Sample, SampleItem, SampleStratum, utcnow
from db.vocabulary import STUDY_LANGUAGES

TARGET_MS = 50.0
BENCHMARKS = ("LLaVA-W", "MaXM", "ViSIT")
BATCH = 50_000


def insert_completions(engine: Engine, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` completions over benchmarks x study languages; returns their benchmarks and languages."""
    benchmarks = rng.choice(BENCHMARKS, n, p=[0.07, 0.25, 0.68])
    languages = rng.choice(list(STUDY_LANGUAGES), n)
    now = utcnow()
    with engine.begin() as connection:
        for start in range(0, n, BATCH):
            connection.execute(
                insert(Completion),
                [
                    {
                        "id": f"c{i:07d}",
                        "model": f"model-{i % 4}",
                        "benchmark": benchmarks[i],
                        "query_language": languages[i],
                        "image": bool(i % 2),
                        "completion": f"answer number {i}",
                        "prompt": "What is shown in the image?",
                        "gold_answer": "a dog",
                        "imported_at": now,
                    }
                    for i in range(start, min(start + BATCH, n))
                ],
            )
    return benchmarks, languages


def insert_sample(
    engine: Engine, benchmarks: np.ndarray, languages: np.ndarray, size: int, rng: np.random.Generator
) -> None:
    """A simple random sample of ``size``, stratified after the fact, with random queue positions."""
    chosen = rng.choice(len(benchmarks), size, replace=False)
    strata: dict[tuple[str, str], list[int]] = {}
    for index in chosen:
        strata.setdefault((str(benchmarks[index]), str(languages[index])), []).append(int(index))
    population = {key: 0 for key in strata}
    for key in zip(benchmarks, languages, strict=True):
        if key in population:
            population[key] += 1
    with engine.begin() as connection:
        sample_id = connection.execute(
            insert(Sample).returning(Sample.id),
            {
                "name": "bench",
                "seed": 0,
                "n_target": size,
                "weights": {"scheme": "srs"},
                "overlap_share": 0.1,
                "rounds": 1,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            },
        ).scalar_one()
        strata_rows, item_rows = [], []
        for (benchmark, language), members in strata.items():
            stratum = f"{benchmark}|{language}"
            strata_rows.append(
                {
                    "sample_id": sample_id,
                    "stratum": stratum,
                    "benchmark": benchmark,
                    "query_language": language,
                    "population": population[(benchmark, language)],
                    "weight_sum": float(len(members)),
                    "expected": float(len(members)),
                    "drawn": len(members),
                }
            )
            for position, index in enumerate(rng.permutation(members)):
                item_rows.append(
                    {
                        "sample_id": sample_id,
                        "completion_id": f"c{index:07d}",
                        "stratum": stratum,
                        "query_language": language,
                        "queue_position": position,
                        "round": 1,
                        "inclusion_probability": len(members) / population[(benchmark, language)],
                        "double_annotate": bool(rng.random() < 0.1),
                    }
                )
        connection.execute(insert(SampleStratum), strata_rows)
        connection.execute(insert(SampleItem), item_rows)


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100))


def _worker(url: str, annotator_id: int, quota: int, start, results) -> None:
    """One annotator labeling ``quota`` items as fast as the database lets them."""
    engine = make_engine(url)
    start.wait()
    pairs, contradicted = [], 0
    while len(pairs) < quota:
        began = time.perf_counter()
        item = claim_next(engine, annotator_id)
        if item is None:
            if progress(engine, annotator_id).available_to_me == 0:
                break
            contradicted += 1
            continue
        submit(engine, annotator_id, item.completion_id, "german", True, None, seconds_spent=12.0)
        pairs.append((time.perf_counter() - began) * 1000)
    engine.dispose()
    results.put((pairs, contradicted))


def run_concurrent(engine: Engine, annotators: list[int], workers: int, labels: int) -> float:
    """``workers`` processes label at once; the pair's median under contention."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["annotator.annotation.routing", "annotator.storage"])
    url = engine.url.render_as_string(hide_password=False)
    codes = list(STUDY_LANGUAGES)
    extra = [
        add_annotator(engine, f"bench-w{k}", [codes[k % 14], codes[(k + 5) % 14], codes[(k + 9) % 14]], password=None)
        for k in range(max(0, workers - len(annotators)))
    ]
    chosen = (annotators + extra)[:workers]
    start, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=_worker, args=(url, annotator_id, -(-labels // workers), start, results))
        for annotator_id in chosen
    ]
    began = time.perf_counter()
    for process in processes:
        process.start()
    reports = [results.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - began
    pairs = [value for values, _ in reports for value in values]
    contradicted = sum(count for _, count in reports)
    print(f"{workers} workers: {len(pairs)} labels in {elapsed:.1f} s ({len(pairs) / elapsed:.0f} labels/s)")
    print(f"claim_next + submit: median {statistics.median(pairs):6.1f} ms   p95 {percentile(pairs, 0.95):6.1f} ms")
    print(f"empty claims that progress() contradicted right after: {contradicted}")
    return statistics.median(pairs)


def run(engine: Engine, completions: int, sample: int, labels: int, workers: int = 0) -> float:
    rng = np.random.default_rng(0)
    upgrade_database(engine)
    began = time.perf_counter()
    benchmarks, languages = insert_completions(engine, completions, rng)
    print(f"inserted {completions:,} completions in {time.perf_counter() - began:.1f} s")
    insert_sample(engine, benchmarks, languages, sample, rng)
    codes = list(STUDY_LANGUAGES)
    annotators = [
        add_annotator(engine, f"bench-{k}", [codes[k % 14], codes[(k + 5) % 14], codes[(k + 9) % 14]], password=None)
        for k in range(14)
    ]
    if workers:
        return run_concurrent(engine, annotators, workers, labels)
    claims, submits, pairs = [], [], []
    turn = 0
    while len(pairs) < labels:
        annotator_id = annotators[turn % len(annotators)]
        turn += 1
        started = time.perf_counter()
        item = claim_next(engine, annotator_id)
        claimed = time.perf_counter()
        if item is None:
            if turn > 10 * labels:
                break
            continue
        submit(engine, annotator_id, item.completion_id, "german", True, None, seconds_spent=12.0)
        done = time.perf_counter()
        claims.append((claimed - started) * 1000)
        submits.append((done - claimed) * 1000)
        pairs.append((done - started) * 1000)
    for name, values in (("claim_next", claims), ("submit", submits), ("claim_next + submit", pairs)):
        print(
            f"{name:>20}: median {statistics.median(values):6.1f} ms   p95 {percentile(values, 0.95):6.1f} ms"
            f"   ({len(values)} labels)"
        )
    return statistics.median(pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=730_000)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--labels", type=int, default=400, help="labels to time")
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--workers", type=int, default=0, help="label from this many processes at once")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with scratch_database(args.db, "bench_routing") as engine:
        median = run(engine, args.completions, args.sample, args.labels, args.workers)
    verdict = "meets" if median < TARGET_MS else "MISSES"
    print(f"median next-item latency {median:.1f} ms {verdict} the {TARGET_MS:.0f} ms target")
    return 0 if median < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
