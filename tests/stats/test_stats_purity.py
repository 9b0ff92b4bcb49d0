"""stats/ stays pure: scientific Python only, never the app, the database or Streamlit."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

STATS = Path(__file__).resolve().parents[2] / "stats"
ALLOWED = {"numpy", "scipy", "pandas", "statsmodels", "patsy", "sklearn", "threadpoolctl", "stats"}
FORBIDDEN = ("streamlit", "sqlalchemy", "annotator", "db", "pages")


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_stats_imports_only_scientific_python_and_the_standard_library() -> None:
    files = sorted(STATS.glob("*.py"))
    assert files
    for path in files:
        outside = _imported_roots(path) - ALLOWED - set(sys.stdlib_module_names)
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_importing_stats_loads_no_app_module() -> None:
    check = (
        "import sys, stats; "
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", check], cwd=STATS.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_module_declares_its_public_names() -> None:
    for path in sorted(STATS.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "__all__" in names, f"{path.name} has no __all__"
