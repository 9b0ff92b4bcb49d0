"""Time the researchers' dashboard: ``python benchmarks/bench_dashboard.py [--db URL | --size paper]``.

Renders ``pages/study/dashboard.py`` through Streamlit's AppTest, signed in as a researcher:
*cold* is the first render (the estimates are computed), *warm* the renders after it, which
is what a researcher sees every refresh while no label changes (the estimates come from the
cache keyed on the label count). Target: warm renders within 2 s.

Without ``--db`` the demo study is built first into a temporary SQLite file (``--size paper``
is the paper's ~730k completions and takes several minutes; ``--keep FILE`` keeps it for the
next run, which can then pass ``--db sqlite:///FILE``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotator.setup_demo import DEMO_PASSWORD, set_up_demo  # noqa: E402
from annotator.storage import is_empty, make_engine, upgrade_database  # noqa: E402


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


def render_times(url: str, user: str, password: str, warm_runs: int, timeout: float) -> tuple[float, list[float]]:
    """Seconds of the cold render and of each warm render of the dashboard."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["IFL_DATABASE_URL"] = url
    st.cache_data.clear()
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout).run()
    app.text_input(key="sign_in_name").input(user)
    app.text_input(key="sign_in_password").input(password)
    app.button(key="sign_in_submit").click().run()
    if "user" not in app.session_state:
        raise SystemExit(f"could not sign in as {user!r}: {[error.value for error in app.error]}")

    def render() -> float:
        started = time.perf_counter()
        app.run()
        elapsed = time.perf_counter() - started
        if app.exception:
            raise SystemExit(f"the dashboard failed: {app.exception[0].message}")
        return elapsed

    app.switch_page("pages/study/dashboard.py")
    cold = render()
    return cold, [render() for _ in range(warm_runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLAlchemy URL of a study (default: build the demo)")
    parser.add_argument("--size", choices=["small", "paper"], default="paper", help="demo size to build (default paper)")
    parser.add_argument("--keep", type=Path, help="build the demo into this SQLite file and keep it")
    parser.add_argument("--user", default="rosa", help="a researcher's account (default: the demo's rosa)")
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--target", type=float, default=2.0, help="seconds a warm render may take (default 2)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a render may take at most")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ifl-bench-") as folder:
        if args.db:
            url = args.db
        else:
            url = build_demo(args.keep or Path(folder) / "demo.sqlite", args.size)
        cold, warm = render_times(url, args.user, args.password, args.warm_runs, args.timeout)
    typical = statistics.median(warm)
    print(f"cold render (estimates computed): {cold:.2f} s")
    print(f"warm renders (cached), {len(warm)} runs: median {typical:.2f} s, max {max(warm):.2f} s")
    verdict = "within" if typical <= args.target else "OVER"
    print(f"warm median {verdict} the {args.target:.1f} s target")
    if typical > args.target:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
