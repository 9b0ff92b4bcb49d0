"""The app served as users start it, and the browser that drives it: shared by the browser tests
(through ``browser_support``) and ``benchmarks/bench_pages.py``, so it holds no pytest.

The server is ``ifl --db URL app --port PORT``, the command users run (Streamlit told up front
that the app navigates with ``st.navigation``), on a free port of 127.0.0.1 and without
Streamlit's file watcher (without ``watchdog`` installed it polls every module): both through
Streamlit's own environment settings, so the command is the users' own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Streamlit's settings from the environment (``STREAMLIT_<SECTION>_<OPTION>``) for a served app.
STREAMLIT_SETTINGS = {"STREAMLIT_SERVER_ADDRESS": "127.0.0.1", "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}


class ServedApp(NamedTuple):
    url: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_healthy(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the app did not answer within {timeout} s:\n{log.read_text()}")


@contextmanager
def served_app(
    db_url: str, log: Path, *, timeout: float = 90, env: Mapping[str, str] | None = None
) -> Iterator[ServedApp]:
    """``ifl app`` on the database ``db_url`` and a free localhost port, once it answers; stopped
    after. ``env`` replaces the environment (default: this process's); its output goes to ``log``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**(os.environ if env is None else env), **STREAMLIT_SETTINGS}
    command = [str(Path(sys.executable).with_name("ifl")), "--db", db_url, "app", "--port", str(port)]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(url, process, log, timeout)
        yield ServedApp(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
