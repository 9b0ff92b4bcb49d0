"""The layering the app relies on, checked on the source with ``ast``.

* The services (``annotator``, ``stats``, ``db``) never import Streamlit: the CLI, notebooks
  and tests use them without a UI.
* The app (``app.py``, ``pages/``) holds layout only: no database code (SQLAlchemy beyond the
  ``Engine`` type, ``db``, sessions), every read and write goes through ``annotator``; and no
  raw HTML.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["annotator", "stats", "db"]
APP_FILES = [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py"))]
#: What the app may take from ``annotator.storage``: locating and upgrading the database.
STORAGE_FOR_APP = {"database_url", "get_engine", "upgrade_database", "is_empty"}
#: The one ``db`` module the app may import: the study's vocabulary, pure constants.
VOCABULARY = "db.vocabulary"


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import in a file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def service_files() -> list[Path]:
    return [path for package in SERVICES for path in sorted((ROOT / package).rglob("*.py"))]


def top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("path", service_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_services_never_import_streamlit(path: Path) -> None:
    found = [f"line {line}: {module}" for line, module, _ in imports(path) if top(module) == "streamlit"]
    assert not found, f"{path.relative_to(ROOT)} imports streamlit ({', '.join(found)})"


def test_the_app_files_exist() -> None:
    assert (ROOT / "app.py").is_file() and len(APP_FILES) > 5
    assert service_files()


@pytest.mark.parametrize("path", APP_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_pages_hold_no_database_code(path: Path) -> None:
    problems = []
    for line, module, names in imports(path):
        if module == "sqlalchemy" and names == ["Engine"]:
            continue  # the type, for annotations
        if module == VOCABULARY:
            continue  # constants only: the roles, answer classes and answers the pages offer
        if top(module) in ("sqlalchemy", "db", "sqlite3", "psycopg", "alembic"):
            problems.append(f"line {line}: imports {module}")
        if module == "annotator.storage" and set(names) - STORAGE_FOR_APP:
            problems.append(f"line {line}: takes {sorted(set(names) - STORAGE_FOR_APP)} from annotator.storage")
    source = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(source):
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in ("session_scope", "Session", "sessionmaker", "create_engine"):
                problems.append(f"line {node.lineno}: uses {name}")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


#: The only functions that may hand HTML to Streamlit: they escape every untrusted character
#: (tests/app/test_annotate_state.py checks them with hostile text).
RAW_HTML_HELPERS = {
    "pages/_common.py": {"show_untrusted", "show_image"},
    # The session cookie's one-line script: its only value is a token the server made.
    "pages/_session.py": {"write_pending_cookie"},
}


@pytest.mark.parametrize("path", APP_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_pages_render_no_raw_html(path: Path) -> None:
    source = ast.parse(path.read_text(encoding="utf-8"))
    helpers = RAW_HTML_HELPERS.get(path.relative_to(ROOT).as_posix(), set())
    allowed = {id(node) for function in ast.walk(source)
               if isinstance(function, ast.FunctionDef) and function.name in helpers for node in ast.walk(function)}
    problems = [
        f"line {node.lineno}"
        for node in ast.walk(source)
        if id(node) not in allowed
        and ((isinstance(node, ast.keyword) and node.arg == "unsafe_allow_html")
             or (isinstance(node, ast.Attribute) and node.attr == "html"
                 and isinstance(node.value, ast.Name) and node.value.id == "st"))
    ]
    assert not problems, f"{path.relative_to(ROOT)} renders raw HTML at {', '.join(problems)}"


def test_pages_live_in_section_folders() -> None:
    """Streamlit's legacy multipage mode serves ``pages/*.py`` by URL without running app.py
    (until st.navigation first runs in the process); only helpers (``_name.py``) sit there."""
    loose = [path.name for path in (ROOT / "pages").glob("*.py") if not path.name.startswith("_")]
    assert not loose, f"page scripts directly in pages/: {loose}; put them in a section folder"
