"""The layering the app relies on, checked on the source with ``ast``.

* The services (``annotator``, ``stats``, ``db``) never import Streamlit: the CLI, notebooks
  and tests use them without a UI.
* The app (``app.py``, ``pages/``) holds layout only: no database code (SQLAlchemy beyond the
  ``Engine`` type, ``db`` beyond the constants of ``db.vocabulary``, sessions), every read and
  write goes through ``annotator``; and no raw HTML.
* ``db`` is the lowest layer: it imports nothing of ``annotator`` (the vocabulary they share
  lives in ``db.vocabulary``).
* The demo is an add-on: outside ``annotator/demo/`` only ``annotator/cli.py`` (``ifl demo``),
  the tests and the benchmarks import it, so the study code never depends on demo data.
* Inside ``annotator`` imports go down the rows of ``ANNOTATOR_LAYERS`` (the README's diagram);
  the pages call the services, never the CLI.
* ``stats`` stays pure: tests/stats/test_stats_purity.py. Its estimands stand on the cell
  machinery, g-hat and the tables (``STATS_LAYERS``), never the other way round.
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


def python_files(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]


@pytest.mark.parametrize("path", python_files("db"), ids=lambda path: str(path.relative_to(ROOT)))
def test_db_imports_nothing_of_annotator(path: Path) -> None:
    found = [f"line {line}: {module}" for line, module, _ in imports(path) if top(module) == "annotator"]
    assert not found, f"{path.relative_to(ROOT)} imports annotator ({', '.join(found)}); db is the lowest layer"


#: Who may import ``annotator.demo`` from outside it: the CLI offers ``ifl demo``.
DEMO_USERS = {ROOT / "annotator" / "cli.py"}


def outside_the_demo() -> list[Path]:
    """The production files that must not depend on the demo (tests and benchmarks may)."""
    candidates = [ROOT / "app.py", *python_files("annotator", "pages", "stats", "db")]
    return [
        path for path in candidates if not path.is_relative_to(ROOT / "annotator" / "demo") and path not in DEMO_USERS
    ]


def imports_demo(module: str, names: list[str]) -> bool:
    return (
        module == "annotator.demo"
        or module.startswith("annotator.demo.")
        or (module == "annotator" and "demo" in names)
    )


@pytest.mark.parametrize("path", outside_the_demo(), ids=lambda path: str(path.relative_to(ROOT)))
def test_only_the_cli_knows_the_demo(path: Path) -> None:
    found = [f"line {line}: {module}" for line, module, names in imports(path) if imports_demo(module, names)]
    assert not found, f"{path.relative_to(ROOT)} imports the demo ({', '.join(found)}); only the CLI may"


def test_the_cli_is_the_one_that_offers_the_demo() -> None:
    """The exception above is real: were the CLI to stop importing the demo, drop it."""
    assert any(imports_demo(module, names) for _, module, names in imports(ROOT / "annotator" / "cli.py"))


#: ``annotator``'s parts from the top down (the README's Architecture diagram): a part imports
#: only parts of lower layers, never a sibling or anything above it, so no two depend on each other.
ANNOTATOR_LAYERS = [
    {"cli"},
    {"demo", "errors"},
    {"analysis"},
    {"design"},
    {"annotation", "access", "ingest"},
    {"storage", "languages"},
]


def annotator_part(relative: Path) -> str:
    """``annotator/design/sampling.py`` -> ``design``; ``annotator/cli.py`` -> ``cli``."""
    return relative.parts[1].removesuffix(".py")


def imported_parts(module: str, names: list[str]) -> set[str]:
    if module == "annotator":
        return set(names)
    if module.startswith("annotator."):
        return {module.split(".")[1]}
    return set()


def test_every_annotator_part_has_a_layer() -> None:
    layered = set().union(*ANNOTATOR_LAYERS)
    parts = {
        annotator_part(path.relative_to(ROOT))
        for path in python_files("annotator")
        if path.relative_to(ROOT).parts[1] != "__init__.py"
    }
    assert parts == layered, f"not in ANNOTATOR_LAYERS: {sorted(parts - layered)}; gone: {sorted(layered - parts)}"


@pytest.mark.parametrize(
    "path",
    [path for path in python_files("annotator") if path.name != "__init__.py" or path.parent != ROOT / "annotator"],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_annotator_imports_only_downwards(path: Path) -> None:
    layer = {part: depth for depth, parts in enumerate(ANNOTATOR_LAYERS) for part in parts}
    mine = annotator_part(path.relative_to(ROOT))
    upwards = [
        f"line {line}: {module} ({part})"
        for line, module, names in imports(path)
        for part in imported_parts(module, names)
        if part != mine and layer[part] <= layer[mine]
    ]
    assert not upwards, f"{path.relative_to(ROOT)} ({mine}) imports a sibling or a layer above: {', '.join(upwards)}"


#: ``annotator/annotation/``'s modules from the top down: what annotators do (claims and submits,
#: revisions) and what reports how far they are stand on the shared reads, which stand on the
#: pure queue policy, the label type and the refusals. A module imports only lower rows.
ANNOTATION_LAYERS = [
    {"agreement", "reporting", "revisions"},
    {"routing"},
    {"reads", "labels", "guidelines"},
    {"answers", "queue"},
    {"errors"},
]


ANNOTATION_MODULES = sorted(path for path in (ROOT / "annotator" / "annotation").glob("*.py") if path.stem[0] != "_")


def annotation_modules(module: str, names: list[str]) -> list[str]:
    """The modules of ``annotator.annotation`` an import takes."""
    if module == "annotator.annotation":
        return names
    return [module.removeprefix("annotator.annotation.")] if module.startswith("annotator.annotation.") else []


def test_every_annotation_module_has_a_layer() -> None:
    modules = {path.stem for path in ANNOTATION_MODULES}
    layered = set().union(*ANNOTATION_LAYERS)
    assert modules == layered, f"not layered: {sorted(modules - layered)}; gone: {sorted(layered - modules)}"


@pytest.mark.parametrize("path", ANNOTATION_MODULES, ids=lambda path: path.stem)
def test_annotation_modules_import_only_downwards(path: Path) -> None:
    layer = {module: depth for depth, modules in enumerate(ANNOTATION_LAYERS) for module in modules}
    upwards = [
        f"line {line}: {module}"
        for line, module, names in imports(path)
        for imported in annotation_modules(module, names)
        if layer[imported] <= layer[path.stem]
    ]
    assert not upwards, f"{path.relative_to(ROOT)} imports a sibling or a module above: {', '.join(upwards)}"


#: ``stats``' estimand modules from the top down: the estimands say which formula on which cells
#: and tabulate; the tables read the cells' fits; the cells know no study column; g-hat none of them.
#: Below them DSL: R's estimator (``dsl``) solves a split by design variance (``dsl_design``),
#: and both return the results object (``dsl_results``), which knows neither.
STATS_LAYERS = [{"estimands"}, {"tables", "ghat"}, {"cells"}, {"dsl"}, {"dsl_design"}, {"dsl_results"}]


def stats_modules(module: str, names: list[str]) -> list[str]:
    """The modules of ``stats`` an import takes."""
    if module == "stats":
        return names
    return [module.removeprefix("stats.")] if module.startswith("stats.") else []


def stats_upwards(name: str, found: list[tuple[int, str, list[str]]]) -> list[str]:
    """The imports (``imports()`` rows) of ``stats/<name>.py`` that go to its own row or above."""
    layer = {module: depth for depth, modules in enumerate(STATS_LAYERS) for module in modules}
    return [
        f"line {line}: {module}"
        for line, module, names in found
        for imported in stats_modules(module, names)
        if imported in layer and imported != name and layer[imported] <= layer[name]
    ]


def test_the_stats_layer_check_sees_an_upward_import() -> None:
    assert stats_upwards("cells", [(1, "stats.estimands", ["analyse_study"])]) == ["line 1: stats.estimands"]
    assert stats_upwards("tables", [(2, "stats", ["ghat"])]) == ["line 2: stats"]
    assert stats_upwards("estimands", [(3, "stats.cells", ["fit_cells"])]) == []


@pytest.mark.parametrize("name", sorted(set().union(*STATS_LAYERS)))
def test_stats_estimand_modules_import_only_downwards(name: str) -> None:
    upwards = stats_upwards(name, list(imports(ROOT / "stats" / f"{name}.py")))
    assert not upwards, f"stats/{name}.py imports a sibling or a module above: {', '.join(upwards)}"


def test_the_queue_policy_needs_no_database() -> None:
    """Routing's rules stay readable and testable on their own (tests/annotator/test_queue.py)."""
    path = ROOT / "annotator" / "annotation" / "queue.py"
    found = [
        f"line {line}: {module}"
        for line, module, _ in imports(path)
        if top(module) in ("sqlalchemy", "db", "annotator", "pandas", "streamlit")
    ]
    assert not found, f"the queue policy imports {', '.join(found)}"


@pytest.mark.parametrize("path", APP_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_pages_call_services_not_the_cli(path: Path) -> None:
    found = [f"line {line}" for line, module, names in imports(path) if "cli" in imported_parts(module, names)]
    assert not found, f"{path.relative_to(ROOT)} imports annotator.cli at {', '.join(found)}"


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
    allowed = {
        id(node)
        for function in ast.walk(source)
        if isinstance(function, ast.FunctionDef) and function.name in helpers
        for node in ast.walk(function)
    }
    problems = [
        f"line {node.lineno}"
        for node in ast.walk(source)
        if id(node) not in allowed
        and (
            (isinstance(node, ast.keyword) and node.arg == "unsafe_allow_html")
            or (
                isinstance(node, ast.Attribute)
                and node.attr == "html"
                and isinstance(node.value, ast.Name)
                and node.value.id == "st"
            )
        )
    ]
    assert not problems, f"{path.relative_to(ROOT)} renders raw HTML at {', '.join(problems)}"


def test_pages_live_in_section_folders() -> None:
    """Streamlit's legacy multipage mode serves ``pages/*.py`` by URL without running app.py
    (until st.navigation first runs in the process); only helpers (``_name.py``) sit there."""
    loose = [path.name for path in (ROOT / "pages").glob("*.py") if not path.name.startswith("_")]
    assert not loose, f"page scripts directly in pages/: {loose}; put them in a section folder"
