"""Benchmark: import throughput of `ifl import` at the paper's scale (~730k completions).

Writes a CSV of synthetic completions (realistic columns and text lengths), then imports it
into a fresh database twice: the first import inserts every row, the second finds every row
unchanged. Prints rows/s for both. Usage:

    python benchmarks/bench_ingest.py [--rows 730000] [--db URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from annotator.ingest.completions import import_file
from annotator.storage import make_engine, upgrade_database

WORDS = {
    "de": ["Das", "Bild", "zeigt", "einen", "Hund", "der", "auf", "einer", "Wiese", "neben", "dem", "Haus", "spielt"],
    "en": ["The", "image", "shows", "a", "dog", "playing", "on", "the", "grass", "next", "to", "the", "house"],
    "zh": list("图片显示一只狗在房子旁边的草地上玩耍"),
    "hi": ["तस्वीर", "में", "एक", "कुत्ता", "घर", "के", "पास", "घास", "पर", "खेल", "रहा", "है"],
    "ar": ["تظهر", "الصورة", "كلبا", "يلعب", "على", "العشب", "بجانب", "المنزل"],
}


def synthetic_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    languages = rng.choice(list(WORDS), rows)
    lengths = rng.integers(1, 40, rows)
    texts = [" ".join(rng.choice(WORDS[lang], n)) for lang, n in zip(languages, lengths, strict=True)]
    return pd.DataFrame(
        {
            "id": [f"c{i:07d}" for i in range(rows)],
            "model": rng.choice(["llava-v1.5-7b", "llava-v1.5-13b", "bakllava", "llava-gemma-2b"], rows),
            "benchmark": rng.choice(["LLaVA-W", "MaXM", "ViSIT"], rows, p=[0.07, 0.25, 0.68]),
            "query_language": languages,
            "image": rng.choice(["true", "false"], rows),
            "completion": texts,
            "prompt": "What is shown in the image?",
            "gold_answer": "a dog",
            "judge_correct": rng.choice(["1", "0"], rows),
            "run": rng.choice(["r1", "r2"], rows),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=730_000)
    parser.add_argument("--db", help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "completions.csv"
        synthetic_frame(args.rows).to_csv(path, index=False)
        size_mb = path.stat().st_size / 1e6
        engine = make_engine(args.db or f"sqlite:///{Path(folder) / 'bench.sqlite'}")
        upgrade_database(engine)
        for label in ("first import (all new)", "re-import (all unchanged)"):
            started = time.perf_counter()
            report = import_file(engine, path)
            seconds = time.perf_counter() - started
            print(
                f"{label}: {report.rows} rows, {size_mb:.0f} MB CSV, {seconds:.1f} s, "
                f"{report.rows / seconds:,.0f} rows/s"
            )
            print(f"  {report}")


if __name__ == "__main__":
    main()
