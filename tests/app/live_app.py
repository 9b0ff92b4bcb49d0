"""The app served as ``ifl app`` serves it, and the browser that drives it: shared by the browser
tests (through ``browser_support``) and ``benchmarks/bench_pages.py``, so it holds no pytest.

The server runs ``annotator.cli.streamlit_command``, the command ``ifl app`` becomes once it has
upgraded the database (Streamlit told up front that the app navigates with ``st.navigation``),
on a free port of 127.0.0.1 and without Streamlit's file watcher (without ``watchdog`` installed
it polls every module). It is started directly, not through ``ifl app``: that would first import
the ``ifl`` command and check the schema, two seconds more for each server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from annotator.cli import streamlit_command

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
#: Streamlit options of a served app: localhost only, no file watcher.
SERVED_OPTIONS = ("--server.address", "127.0.0.1", "--server.fileWatcherType", "none")


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
    """The app on the database ``db_url`` (at head) and a free localhost port, once it answers;
    stopped after. ``env`` replaces the environment (default: this process's); output goes to ``log``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**(os.environ if env is None else env), "IFL_DATABASE_URL": db_url}
    command = streamlit_command(port, *SERVED_OPTIONS)
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
