"""Time every researcher page in a real browser: ``python benchmarks/bench_pages.py --db URL``.

Starts ``ifl app`` on the study (default: the paper-size demo, built as ``bench_dashboard.py``
builds it) as the browser tests do (``tests/app/live_app.py``), signs in through Debian's
chromium (Playwright, headless) and opens each researcher page from the sidebar, several
rounds. A page counts as open when its title is on screen and the script run has ended
(Streamlit's ``data-test-script-state`` is ``notRunning``): what a researcher waits for. The
first visit to the dashboard (sign-in to figures) is printed apart, with when its progress bar
appeared; after it every page should open within ``--target`` seconds.
The server's peak resident memory (``VmHWM``) is printed at the end. Screenshots of the
last round go to ``--screenshots`` when given.
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
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "app"))

from bench_dashboard import build_demo  # noqa: E402 - importable once sys.path holds the repository
from live_app import CHROMIUM, CHROMIUM_ARGS, served_app  # noqa: E402 - the tests' way of serving the app

from annotator.demo.setup import DEMO_PASSWORD  # noqa: E402 - importable once sys.path holds the repository

#: Sidebar link -> the page's title.
PAGES = {
    "Dashboard": "Dashboard",
    "Sample design": "Sample design",
    "Data": "Data",
    "Export": "Export",
    "Adjudicate": "Adjudicate",
}
IDLE = "document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'"


def peak_memory_mb(pid: int) -> float:
    """Peak resident memory of a running process (Linux ``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_page(page, link: str, title: str, timeout_ms: float) -> float:
    """Seconds from clicking ``link`` in the sidebar until ``title`` shows and the run has ended."""
    started = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=timeout_ms)
    page.wait_for_function(IDLE, timeout=timeout_ms)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLAlchemy URL of a study (default: build the paper-size demo)")
    parser.add_argument("--user", default="rosa")
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument("--rounds", type=int, default=3, help="times every page is opened (default 3)")
    parser.add_argument("--target", type=float, default=2.0)
    parser.add_argument("--screenshots", type=Path, help="folder for a screenshot of every page (last round)")
    args = parser.parse_args()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="ifl-bench-pages-") as folder:
        db_url = args.db or build_demo(Path(folder) / "demo.sqlite", "paper")
        environment = {name: value for name, value in os.environ.items() if name != "IFL_DASHBOARD_RECOMPUTE_SECONDS"}
        timeout_ms = 600_000
        with served_app(db_url, Path(folder) / "streamlit.log", timeout=120, env=environment) as (url, server):
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.goto(url)
                page.get_by_role("textbox", name="Name").fill(args.user)
                page.get_by_role("textbox", name="Password").fill(args.password)
                started = time.perf_counter()
                page.get_by_role("button", name="Sign in").click()
                progress = page.get_by_test_id("stProgress").first
                try:  # the first visit's progress bar, if the estimates are not ready yet
                    progress.wait_for(timeout=30_000)
                    progress_after = time.perf_counter() - started
                    if args.screenshots:
                        args.screenshots.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=args.screenshots / "first-visit-progress.png")
                except PlaywrightTimeout:
                    progress_after = None
                page.get_by_test_id("stMetric").filter(has_text="Labels so far").first.wait_for(timeout=timeout_ms)
                page.wait_for_function(IDLE, timeout=timeout_ms)
                first = time.perf_counter() - started
                times: dict[str, list[float]] = {link: [] for link in PAGES}
                for round_ in range(args.rounds):
                    for link, title in PAGES.items():
                        times[link].append(open_page(page, link, title, timeout_ms))
                        if args.screenshots and round_ == args.rounds - 1:
                            args.screenshots.mkdir(parents=True, exist_ok=True)
                            page.screenshot(
                                path=args.screenshots / f"{link.lower().replace(' ', '-')}.png", full_page=True
                            )
                browser.close()
            peak = peak_memory_mb(server.pid)
    print(
        f"first visit (sign in to the dashboard's figures, estimates computed): {first:.2f} s; "
        + (
            f"progress bar shown after {progress_after:.2f} s"
            if progress_after is not None
            else "no progress bar seen within 30 s"
        )
    )
    print(f"{'page':16} {'median s':>9} {'max s':>7}  ({args.rounds} rounds, from the sidebar click)")
    over = []
    for link, runs in times.items():
        print(f"{link:16} {statistics.median(runs):>9.2f} {max(runs):>7.2f}")
        if statistics.median(runs) > args.target:
            over.append(link)
    print(f"peak resident memory of the app process: {peak:,.0f} MB")
    print("every page within the target" if not over else f"over the {args.target:.1f} s target: {', '.join(over)}")


if __name__ == "__main__":
    main()
