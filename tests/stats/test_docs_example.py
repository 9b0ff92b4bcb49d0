"""The worked example in docs/stats.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "stats.md"


def test_worked_example_runs(capsys) -> None:
    text = DOCS.read_text()
    section = text.split("## Worked example", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "DSL regression (lm): fidelity ~ image" in printed
    assert namespace["fit"].n_labeled > 0
    assert set(namespace["table4"]["language"]) == {"zho", "deu"}
