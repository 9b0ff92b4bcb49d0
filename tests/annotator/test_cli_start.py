"""``ifl`` loads only what its command needs: the demo is imported by the demo's commands alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from annotator.cli import main as cli_main


def test_a_command_that_is_not_the_demo_does_not_import_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ifl.sqlite'}"
    script = (
        "import sys\n"
        "from annotator.cli import main\n"
        f"main(['--db', {url!r}, 'db', 'upgrade'])\n"
        "print(sorted(name for name in sys.modules if name.startswith('annotator.demo')))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines()[-1] == "[]"


def test_simulating_annotators_without_a_sample_is_a_user_error(sqlite_engine, capsys) -> None:
    url = sqlite_engine.url.render_as_string(hide_password=False)
    with pytest.raises(SystemExit) as exited:
        cli_main(["--db", url, "simulate-annotators"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("error: no sample has been drawn yet")
