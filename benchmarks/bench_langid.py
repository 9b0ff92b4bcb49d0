"""Throughput of language ID: pure prediction and the end-to-end ``run_language_id``.

The study has ~730k completions and the target is >= 30,000 completions/s in one process,
so `ifl lid` takes well under a minute (and holds SQLite's write lock that long at most).
Texts are built from a small multilingual phrase list at realistic lengths (one word to a
few sentences), plus some texts without letters, and inserted with plain SQL into a
temporary SQLite database.

    python benchmarks/bench_langid.py [--rows 200000] [--batch-size 20000] [--profile] [--db URL]

Figures are printed as wall-clock and CPU-time rates: CPU time is what one process costs on
an idle core, and is what to compare with the target on a busy machine. The end-to-end run
overlaps prediction with its database writes in a second thread, so with a free core its
wall rate can beat its CPU rate.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import bindparam, text

from annotator.ingest.langid import load_model, predict_languages, run_language_id
from annotator.storage import make_engine, upgrade_database

# A few sentences per study language (a VLM describing an image or picking an option).
PHRASES: dict[str, list[str]] = {
    "zho": ["图片中有一只猫坐在桌子上。", "答案是第三个选项。", "这个问题需要仔细观察图像。", "我认为正确答案是红色。"],
    "hin": ["चित्र में एक बिल्ली मेज़ पर बैठी है।", "उत्तर तीसरा विकल्प है।", "इस प्रश्न के लिए छवि को ध्यान से देखना होगा।"],
    "eng": [
        "The image shows a cat sitting on a table.",
        "The answer is the third option.",
        "Looking closely, the sign is red.",
    ],
    "heb": ["בתמונה יש חתול שיושב על השולחן.", "התשובה היא האפשרות השלישית.", "צריך להסתכל היטב על התמונה."],
    "tha": ["ในภาพมีแมวนั่งอยู่บนโต๊ะ", "คำตอบคือตัวเลือกที่สาม", "ต้องดูภาพอย่างละเอียด"],
    "ara": ["تظهر الصورة قطة تجلس على الطاولة.", "الإجابة هي الخيار الثالث.", "يجب النظر إلى الصورة بعناية."],
    "ben": ["ছবিতে একটি বিড়াল টেবিলের উপর বসে আছে।", "উত্তর হলো তৃতীয় বিকল্প।", "ছবিটি মনোযোগ দিয়ে দেখতে হবে।"],
    "jpn": [
        "画像には机の上に座っている猫が写っています。",
        "答えは三番目の選択肢です。",
        "画像をよく見る必要があります。",
    ],
    "spa": [
        "La imagen muestra un gato sentado en una mesa.",
        "La respuesta es la tercera opción.",
        "Hay que mirar bien la imagen.",
    ],
    "deu": [
        "Das Bild zeigt eine Katze, die auf einem Tisch sitzt.",
        "Die Antwort ist die dritte Option.",
        "Man muss das Bild genau ansehen.",
    ],
    "fra": [
        "L'image montre un chat assis sur une table.",
        "La réponse est la troisième option.",
        "Il faut bien regarder l'image.",
    ],
    "ron": [
        "Imaginea arată o pisică așezată pe o masă.",
        "Răspunsul este a treia opțiune.",
        "Trebuie să privim atent imaginea.",
    ],
    "rus": [
        "На изображении кошка сидит на столе.",
        "Ответ — третий вариант.",
        "Нужно внимательно посмотреть на картинку.",
    ],
    "urd": ["تصویر میں ایک بلی میز پر بیٹھی ہے۔", "جواب تیسرا آپشن ہے۔", "تصویر کو غور سے دیکھنا ہوگا۔"],
}
NO_LETTER_TEXTS = ["", "42", "3.14", "(2)", "😀", "1, 2, 3", "—"]


def make_texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` (query language, text) pairs: 2% without letters, 15% one word, 43% one
    sentence, 40% two to five sentences (some on separate lines); 80% of answers are in the
    query language."""
    rng = random.Random(seed)
    languages = list(PHRASES)
    query_languages, texts = [], []
    for _ in range(n):
        query = rng.choice(languages)
        # 80% answer in the query language, the rest in another one (like a real model).
        answer = query if rng.random() < 0.8 else rng.choice(languages)
        roll = rng.random()
        if roll < 0.02:
            text = rng.choice(NO_LETTER_TEXTS)
        elif roll < 0.17:
            text = rng.choice(PHRASES[answer][0].split() or PHRASES[answer])
        elif roll < 0.6:
            text = rng.choice(PHRASES[answer])
        else:
            sentences = rng.choices(PHRASES[answer], k=rng.randint(2, 5))
            text = " ".join(sentences) if rng.random() < 0.7 else "\n".join(sentences)
        query_languages.append(query)
        texts.append(text)
    return query_languages, texts


def _letters(number: int) -> str:
    """A distinct lowercase tag per number (base 26), so no two texts are the same."""
    tag = ""
    while True:
        number, digit = divmod(number, 26)
        tag += chr(ord("a") + digit)
        if number == 0:
            return tag


def insert_completions(engine, query_languages: list[str], texts: list[str]) -> list[str]:
    """Plain SQL executemany: the benchmark measures language ID, not the ORM's inserts."""
    now = datetime.now(UTC)
    ids = [f"bench-{i:07d}" for i in range(len(texts))]
    rows = [
        {"id": i, "q": q, "image": n % 2 == 1, "text": t, "now": now}
        for n, (i, q, t) in enumerate(zip(ids, query_languages, texts, strict=True))
    ]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO completions (id, model, benchmark, query_language, image, completion, imported_at)"
                " VALUES (:id, 'bench-model', 'bench', :q, :image, :text, :now)"
            ),
            rows,
        )
    return ids


def delete_completions(engine, ids: list[str]) -> None:
    """Remove the benchmark's rows again (their predictions go with them: ON DELETE CASCADE)."""
    with engine.begin() as connection:
        for start in range(0, len(ids), 10_000):
            chunk = ids[start : start + 10_000]
            connection.execute(
                text("DELETE FROM predictions WHERE completion_id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": chunk},
            )
            connection.execute(
                text("DELETE FROM completions WHERE id IN :ids").bindparams(bindparam("ids", expanding=True)),
                {"ids": chunk},
            )


class Timer:
    """Wall and CPU time of a block. CPU time is this process's own (all its threads), so on
    a shared machine it still tells what one process does on an idle core."""

    def __enter__(self) -> Self:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def rates(self, rows: int) -> str:
        return f"{rows / self.wall:10,.0f} rows/s wall {rows / self.cpu:10,.0f} rows/s CPU ({self.wall:5.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the end-to-end run")
    parser.add_argument(
        "--db",
        help="database URL instead of a temporary SQLite file (a scratch database: it must hold "
        "no other completions; the benchmark's own rows are deleted afterwards)",
    )
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="make every text distinct (a tag of letters is appended), the "
        "worst case for predicting each distinct text once; by default texts repeat as short answers do",
    )
    args = parser.parse_args()

    query_languages, texts = make_texts(args.rows)
    if args.distinct:
        texts = [f"{text} {_letters(i)}" for i, text in enumerate(texts)]
    mean_chars = sum(map(len, texts)) / len(texts)
    share = len(set(texts)) / len(texts)
    print(
        f"{args.rows:,} texts ({share:.0%} distinct), mean {mean_chars:.0f} characters, batch size {args.batch_size:,}"
    )
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")

    with Timer() as timer:
        model = load_model()
    print(f"load model:                {timer.wall:6.2f} s")

    # Raw fastText, for reference: the floor no mapping can beat.
    lines = [text.replace("\n", " ") for text in texts]
    with Timer() as timer:
        for start in range(0, len(lines), args.batch_size):
            model.predict(lines[start : start + args.batch_size], k=1)
    print(f"fastText predict only:     {timer.rates(args.rows)}")

    with Timer() as timer:
        for start in range(0, len(texts), args.batch_size):
            stop = start + args.batch_size
            predict_languages(texts[start:stop], model, query_languages[start:stop])
    print(f"predict_languages:         {timer.rates(args.rows)}")

    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(args.db or "sqlite:///" + str(Path(folder) / "bench.sqlite"))
        upgrade_database(engine)
        print(f"database: {engine.dialect.name}")
        with Timer() as timer:
            ids = insert_completions(engine, query_languages, texts)
        print(f"insert completions:        {timer.wall:6.2f} s")
        try:
            results = []
            for label in ("run_language_id (insert)", "run_language_id (replace)"):
                profiler = cProfile.Profile() if args.profile else None
                with Timer() as timer:
                    if profiler:
                        profiler.enable()
                    report = run_language_id(engine, batch_size=args.batch_size)
                    if profiler:
                        profiler.disable()
                if profiler:
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
                results.append(timer)
                print(f"{label + ':':<26} {timer.rates(report.rows)}")
            print(report.summary())
        finally:
            if args.db:
                delete_completions(engine, ids)
            engine.dispose()

    target = 30_000
    worst_cpu = min(args.rows / timer.cpu for timer in results)
    worst_wall = min(args.rows / timer.wall for timer in results)
    print(
        f"end-to-end target {target:,} rows/s: CPU-time rate {worst_cpu:,.0f} "
        f"({'OK' if worst_cpu >= target else 'BELOW'}), wall rate {worst_wall:,.0f} "
        f"({'OK' if worst_wall >= target else 'BELOW'}; depends on the machine's load)"
    )


if __name__ == "__main__":
    main()
