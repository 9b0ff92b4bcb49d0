"""Time the researchers' dashboard: ``python benchmarks/bench_dashboard.py [--db URL | --size paper]``.

Renders ``pages/study/dashboard.py`` through Streamlit's AppTest, signed in as a researcher, in
this process (which is therefore the app process whose memory is reported):

* *first visit*: the sign-in run that lands on the dashboard, computing everything from nothing
  (reading the population part of the analysis frame, the labels, every estimand, the figures);
* *recompute after one new label*: an annotator labels one item through ``annotator.annotation.routing``,
  then the dashboard's next refresh (it reads only the labels and re-estimates);
* *warm render*: a refresh with nothing changed (two version queries, everything else cached).

Each is printed beside the figures before issue 10 (baseline commit b10d0c7, README) with wall
and CPU time (this process, all threads; on a shared machine wall time includes waiting for a
core). Peak resident memory of the process is printed at the end.

Without ``--db`` the demo study is built first into a temporary SQLite file (``--size paper``
is 775k completions and takes about a minute; ``--keep FILE`` keeps it for the next run, which
can then pass ``--db sqlite:///FILE``). The labels it adds stay in that database.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotator.demo.setup import DEMO_PASSWORD, set_up_demo  # noqa: E402 - importable once sys.path holds the repository
from annotator.storage import is_empty, make_engine, upgrade_database  # noqa: E402 - importable once sys.path holds the repository


def build_demo(path: Path, size: str) -> str:
    """The demo study at ``path``; returns its URL."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade_database(engine)
    if not is_empty(engine):
        print(f"using the study already at {path}")
        return url
    started = time.perf_counter()
    for line in set_up_demo(engine, size=size, seed=0):
        print(f"  {line}", flush=True)
    print(f"demo ({size}) built in {time.perf_counter() - started:.0f} s", flush=True)
    engine.dispose()
    return url


#: Before issue 10 (commit b10d0c7; README and issue 10, paper-size demo): the first visit showed
#: a blank page for 2-3 s and took 8-10 s once the frame was read (20.0 s measured cold here under
#: load on b39eb13); a recompute took 17-20 s and ran at most once a minute; a warm render 0.36 s.
BASELINE = {
    "first visit": "8-10 s idle, 20.0 s under load; blank for 2-3 s",
    "recompute after one new label": "17-20 s, at most once a minute",
    "warm render": "0.36 s",
}
TARGETS = {"first visit": 10.0, "recompute after one new label": 2.0, "warm render": 0.5}


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``action()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(
    url: str, user: str, password: str, annotator: str, labels: int, warm_runs: int, timeout: float
) -> dict[str, list[tuple[float, float]]]:
    """(wall, cpu) of each first visit, recompute after a label and warm render."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from annotator.access import accounts
    from annotator.annotation import routing
    from annotator.storage import make_engine

    os.environ["IFL_DATABASE_URL"] = url
    os.environ.pop("IFL_DASHBOARD_RECOMPUTE_SECONDS", None)
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout).run()
    app.text_input(key="sign_in_name").input(user)
    app.text_input(key="sign_in_password").input(password)

    def check() -> None:
        if app.exception:
            raise SystemExit(f"the dashboard failed: {app.exception[0].message}")

    def sign_in_to_dashboard() -> None:
        app.button(key="sign_in_submit").click().run()
        check()
        if "user" not in app.session_state:
            raise SystemExit(f"could not sign in as {user!r}: {[error.value for error in app.error]}")
        if "Dashboard" not in [title.value for title in app.title]:
            app.switch_page("pages/study/dashboard.py").run()
            check()

    def refresh() -> None:
        app.run()
        check()

    times: dict[str, list[tuple[float, float]]] = {name: [] for name in TARGETS}
    times["first visit"].append(timed(sign_in_to_dashboard))
    times["warm render"] += [timed(refresh) for _ in range(warm_runs)]
    engine = make_engine(url)
    labeler = accounts.authenticate(engine, annotator, password)
    if labeler is None:
        raise SystemExit(f"could not sign in as the annotator {annotator!r}")
    for _ in range(labels):
        item = routing.claim_next(engine, labeler.id)
        if item is None:
            raise SystemExit(f"{annotator!r} has nothing left to label")
        routing.submit(engine, labeler.id, item.completion_id, "english", True, True)
        times["recompute after one new label"].append(timed(refresh))
    engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLAlchemy URL of a study (default: build the demo)")
    parser.add_argument(
        "--size", choices=["small", "paper"], default="paper", help="demo size to build (default paper)"
    )
    parser.add_argument("--keep", type=Path, help="build the demo into this SQLite file and keep it")
    parser.add_argument("--user", default="rosa", help="a researcher's account (default: the demo's rosa)")
    parser.add_argument("--annotator", default="anna", help="the account that adds the new labels (default anna)")
    parser.add_argument("--password", default=DEMO_PASSWORD, help="both accounts' password (default the demo's)")
    parser.add_argument("--labels", type=int, default=3, help="new labels, one recompute each (default 3)")
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a render may take at most")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ifl-bench-") as folder:
        url = args.db or build_demo(args.keep or Path(folder) / "demo.sqlite", args.size)
        times = measure(url, args.user, args.password, args.annotator, args.labels, args.warm_runs, args.timeout)
    print(f"{'':32} {'now: wall (cpu), median of runs':34} {'target':>7}   before (b10d0c7)")
    over = []
    for name, runs in times.items():
        wall = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        print(
            f"{name:32} {f'{wall:.2f} s ({cpu:.2f} s cpu), {len(runs)} run(s)':34} {TARGETS[name]:>5.1f} s   "
            f"{BASELINE[name]}"
        )
        if wall > TARGETS[name]:
            over.append(name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this (app) process: {peak:,.0f} MB")
    if over:
        print(f"over target (wall): {', '.join(over)}; on a shared machine compare the CPU times")


if __name__ == "__main__":
    main()
