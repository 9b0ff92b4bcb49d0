"""The ``ifl`` command: every pipeline step from a shell, on any SQLAlchemy URL.

Each sub-command is a thin shell over a service function in ``annotator`` or ``stats``;
the Streamlit pages call the same functions. Errors a user can fix (a bad file, an unknown
annotator) print one clear line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import Engine

from annotator.storage import database_url, is_empty, make_engine, upgrade_database
from stats import INTERACTION_FORMULA

__all__ = ["build_parser", "main"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _engine(args: argparse.Namespace) -> Engine:
    engine = make_engine(database_url(args.db))
    upgrade_database(engine)
    return engine


def _progress_bar(total_label: str) -> Callable[[int, int], None]:
    """A tqdm bar driven by the services' ``progress(done, total)`` callbacks."""
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit=total_label, file=sys.stderr)
        bar["bar"].update(done - bar["bar"].n)  # increments, so tqdm's rate is right
        if done >= total:
            bar["bar"].close()

    return update


def _prepare_analysis_cache(engine: Engine, args: argparse.Namespace) -> None:
    """After a change to the population (an import, language ID, a sample), read it once and
    keep it on disk, so the next ``ifl estimate`` loads it instead of reading it (issue 10).

    Skipped with ``--no-cache`` or where there is no disk cache (``IFL_CACHE_DIR=off``, in-memory
    SQLite). Never fails the command: its change is committed; a failure only warns.
    """
    from annotator.analysis.frame import cached_population, keep_population_on_disk
    from annotator.analysis.population_store import population_file, population_key

    if args.no_cache:
        return
    folder = keep_population_on_disk(engine)
    if folder is None:  # IFL_CACHE_DIR=off, or an in-memory database
        return
    print("preparing the analysis cache for ifl estimate...", end="", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        population = cached_population(engine)  # ifl estimate's: the current sample, the default surrogate
        kept = population_file(folder, population_key(population.version, None, None)).exists()
    except KeyboardInterrupt:
        print(" interrupted; the change is saved, ifl estimate will read the data itself", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:  # only a head start for ifl estimate: the change is already committed
        print(
            f" failed\nwarning: the analysis cache was not prepared ({error!r}); the change is saved, "
            "ifl estimate will read the data itself",
            file=sys.stderr,
        )
        return
    if kept:
        print(f" done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    else:
        print(
            f" not written\nwarning: could not write the analysis cache in {folder}; ifl estimate will read "
            "the data itself",
            file=sys.stderr,
        )


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    _engine(args)
    print(f"database at head: {database_url(args.db)}")


def cmd_import(args: argparse.Namespace) -> None:
    from annotator.ingest.completions import default_import_root, import_file

    engine = _engine(args)
    report = import_file(engine, args.file, args.format, image_root=default_import_root(args.file))
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(report)
    _prepare_analysis_cache(engine, args)


def cmd_lid(args: argparse.Namespace) -> None:
    from annotator.ingest.langid import run_language_id

    engine = _engine(args)
    report = run_language_id(engine, model_path=args.model, source=args.source, progress=_progress_bar("completions"))
    print(report)
    _prepare_analysis_cache(engine, args)


def cmd_demo(args: argparse.Namespace) -> None:
    from annotator.demo.setup import set_up_demo

    engine = _engine(args)
    if not is_empty(engine) and not args.force:
        raise SystemExit("error: the database already holds completions; pass --force to add the demo anyway")
    for line in set_up_demo(engine, size=args.size, seed=args.seed, labeled_share=args.labeled_share):
        print(line)
    _prepare_analysis_cache(engine, args)


def cmd_simulate_annotators(args: argparse.Namespace) -> None:
    from annotator.demo.annotators import SimulationError, simulate_annotators

    try:
        labeled = simulate_annotators(_engine(args), n=args.n, error_rate=args.error_rate, seed=args.seed)
    except SimulationError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"simulated annotators labeled {labeled} items")


def cmd_sample(args: argparse.Namespace) -> None:
    from annotator.annotation.reads import current_sample_id
    from annotator.annotation.reporting import unroutable_languages
    from annotator.design.draws import draw_sample, top_up
    from annotator.design.report import design_report, sample_rounds
    from annotator.design.weights import load_weights

    engine = _engine(args)
    weights = load_weights(args.weights) if args.weights else None
    if args.top_up:
        sample_id = current_sample_id(engine)
        if sample_id is None:
            raise SystemExit("error: there is no sample to top up; draw one first (ifl sample --n N --seed S)")
        summary = top_up(engine, sample_id, n_total=args.n, seed=args.seed)
    else:
        summary = draw_sample(
            engine,
            n=args.n,
            seed=args.seed,
            weights=weights,
            overlap_share=args.overlap,
            allocation=args.allocation,
            balance=args.balance,
        )
    print(summary)
    if args.report:
        report = design_report(engine)
        print(report.to_string(index=False))
        levels = report.groupby("level").agg(strata=("stratum", "size"), drawn=("drawn", "sum"))
        print(f"strata by level:\n{levels.to_string()}")
        print(sample_rounds(engine).to_string(index=False))
        unroutable = unroutable_languages(engine)
        if len(unroutable):
            print("sampled languages that no active annotator reads:")
            print(unroutable.to_string(index=False))
    _prepare_analysis_cache(engine, args)


def _read_password(name: str, from_stdin: bool) -> str:
    """The new password of ``name``: one line of stdin, or asked twice at a terminal."""
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass(f"password for {name}: ")
    if getpass.getpass(f"password for {name} (again): ") != password:
        from annotator.access.accounts import AccountError

        raise AccountError("the two passwords differ; nothing was changed")
    return password


def cmd_annotators_add(args: argparse.Namespace) -> None:
    from annotator.access.accounts import add_annotator

    password = _read_password(args.name, args.password_stdin)
    languages = [language for language in args.languages.split(",") if language.strip()]
    annotator_id = add_annotator(_engine(args), args.name, languages, role=args.role, password=password)
    print(f"added {args.role} {args.name} (id {annotator_id}) reading {', '.join(languages)}")


def cmd_annotators_passwd(args: argparse.Namespace) -> None:
    from annotator.access.accounts import change_password

    engine = _engine(args)
    change_password(engine, args.name, _read_password(args.name, args.password_stdin))
    print(f"new password set for {args.name}; its sign-in sessions have ended")


def cmd_annotators_list(args: argparse.Namespace) -> None:
    from annotator.access.accounts import list_annotators

    print(list_annotators(_engine(args)).to_string(index=False))


def cmd_export(args: argparse.Namespace) -> None:
    from annotator.analysis.export import export

    rows = export(_engine(args), args.kind, args.out, excel=args.excel)
    print(f"wrote {rows} rows to {args.out}" + (" (UTF-8 with a byte-order mark, for Excel)" if args.excel else ""))


def cmd_estimate(args: argparse.Namespace) -> None:
    from annotator.analysis.estimates import study_estimates
    from annotator.analysis.frame import keep_population_on_disk

    engine = _engine(args)
    if not args.no_cache:
        keep_population_on_disk(engine)  # read once per population version, then loaded in a fraction of a second
    estimates = study_estimates(
        engine,
        seed=args.seed,
        per_language=args.per_language,
        interaction_formula=args.formula,
        variance=args.variance,
    )
    for name, table in estimates.tables().items():
        shown = table.drop(columns=["needs"], errors="ignore")  # listed below, one line per cell
        print(f"\n== {name}\n{shown.to_string(index=False, float_format=lambda v: f'{v:.4g}')}")
    blocked = estimates.not_estimable()
    if len(blocked):
        print("\n== not yet estimable (no interval is shown for these cells)")
        for row in blocked.itertuples():
            cell = " ".join(str(v) for v in (row.model, row.benchmark, row.language) if isinstance(v, str))
            print(f"{row.estimand}/{row.outcome} {cell}: {row.needs}")
    for note in estimates.notes:
        print(f"note: {note}")


def cmd_app(args: argparse.Namespace) -> None:
    """Become the Streamlit server (``exec``), so a SIGTERM to ``ifl app`` stops the server.

    Only ``--demo`` sets up the demo study (on an empty database): its accounts have a known
    password, so a team's server never gets them by default.
    """
    engine = _engine(args)
    if args.demo and is_empty(engine):
        from annotator.demo.setup import set_up_demo

        for line in set_up_demo(engine, size="small", seed=0):
            print(line)
    engine.dispose()
    env = dict(os.environ, IFL_DATABASE_URL=database_url(args.db))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, streamlit_command(args.port), env)


def streamlit_command(port: int, *options: str) -> list[str]:
    """The server ``ifl app`` becomes: Streamlit running ``app.py`` on ``port``, out of its legacy
    ``pages/`` mode (below). ``options`` are further Streamlit options; the browser tests and
    ``benchmarks/bench_pages.py`` start the app with this command too (tests/app/live_app.py)."""
    return [
        sys.executable,
        "-c",
        _STREAMLIT_WITHOUT_LEGACY_PAGES,
        "run",
        str(PROJECT_ROOT / "app.py"),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        *options,
    ]


#: ``streamlit run``, told up front that the app navigates with ``st.navigation``. A ``pages/``
#: folder beside the entry script otherwise puts the process in Streamlit's legacy multipage mode
#: until the first run reaches ``st.navigation``: that first visitor's deep link got a "Page not
#: found" dialog over the sign-in form, and the sidebar listed the helper modules as pages.
#: (``PagesManager.uses_pages_directory`` is the flag ``st.navigation`` itself clears.)
_STREAMLIT_WITHOUT_LEGACY_PAGES = (
    "import sys\n"
    "from streamlit.runtime.pages_manager import PagesManager\n"
    "from streamlit.web.cli import main\n"
    "PagesManager.uses_pages_directory = False\n"
    "sys.argv[0] = 'streamlit'\n"
    "sys.exit(main())\n"
)


def _no_cache_option(command: argparse.ArgumentParser) -> None:
    """``--no-cache`` for a command that changes the population (see :func:`_prepare_analysis_cache`)."""
    command.add_argument(
        "--no-cache",
        action="store_true",
        help="do not prepare the analysis cache for ifl estimate afterwards (a few seconds at 775k completions; "
        "IFL_CACHE_DIR=off: never)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ifl", description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLAlchemy URL (default: $IFL_DATABASE_URL or sqlite:///db/ifl.sqlite)")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="schema migrations").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="create or upgrade the schema (Alembic)").set_defaults(handler=cmd_db_upgrade)

    imp = commands.add_parser(
        "import",
        help="import completions (CSV, JSON Lines or Parquet); image_path must lie inside "
        "$IFL_IMAGE_ROOT, or without it the file's own folder",
    )
    imp.add_argument("file")
    imp.add_argument("--format", choices=["csv", "jsonl", "parquet"])
    _no_cache_option(imp)
    imp.set_defaults(handler=cmd_import)

    lid = commands.add_parser("lid", help="predict each completion's language with fastText")
    lid.add_argument("--model", help="a GlotLID .bin/.ftz on disk (default: the lid.176 model that ships with the app)")
    lid.add_argument("--source", help="name the predictions are stored under (default: lid176 or glotlid)")
    _no_cache_option(lid)
    lid.set_defaults(handler=cmd_lid)

    demo = commands.add_parser("demo", help="set up the realistic demo study")
    demo.add_argument("--size", choices=["small", "paper"], default="small")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--labeled-share",
        type=float,
        default=0.5,
        help="share of the sample the simulated annotators label (default 0.5)",
    )
    demo.add_argument("--force", action="store_true", help="add the demo to a database that is not empty")
    _no_cache_option(demo)
    demo.set_defaults(handler=cmd_demo)

    sim = commands.add_parser("simulate-annotators", help="label sampled demo items from the oracle")
    sim.add_argument("--n", type=int, help="how many items (default: all that are left)")
    sim.add_argument("--error-rate", type=float, default=0.03)
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(handler=cmd_simulate_annotators)

    sample = commands.add_parser("sample", help="draw (or top up) the stratified gold-standard sample")
    sample.add_argument("--n", type=int, required=True, help="sample size (with --top-up: the new total)")
    sample.add_argument("--seed", type=int, required=True)
    sample.add_argument("--weights", help="a TOML file of weights (default: the paper's)")
    sample.add_argument("--overlap", type=float, default=0.1, help="share of items annotated twice")
    sample.add_argument("--top-up", action="store_true", help="grow the current sample to --n items")
    sample.add_argument(
        "--allocation",
        choices=["paper", "surrogate"],
        default="paper",
        help="paper: the weights decide (default); surrogate: minimise the predicted width of the "
        "main IFL intervals from the language ID's confidence (a top-up keeps the sample's)",
    )
    sample.add_argument(
        "--balance",
        choices=["implicit", "arms", "none"],
        help="how the model x image arms share each benchmark x language stratum's labels: implicit "
        "(sorted, systematic, nested queue; default of --allocation paper), arms (each its own stratum; "
        "surrogate's default) or none (simple random sample)",
    )
    sample.add_argument("--report", action="store_true", help="print the design report")
    _no_cache_option(sample)
    sample.set_defaults(handler=cmd_sample)

    annotators = commands.add_parser("annotators", help="manage annotator accounts").add_subparsers(
        dest="annotators_command", required=True
    )
    add = annotators.add_parser("add", help="add an account (password asked, or read from stdin)")
    add.add_argument("name")
    add.add_argument("--languages", required=True, help="comma-separated, e.g. de,en")
    add.add_argument("--role", choices=["annotator", "researcher", "admin"], default="annotator")
    add.add_argument("--password-stdin", action="store_true")
    add.set_defaults(handler=cmd_annotators_add)
    passwd = annotators.add_parser("passwd", help="set an account's password (asked twice, or read from stdin)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(handler=cmd_annotators_passwd)
    annotators.add_parser("list", help="list accounts").set_defaults(handler=cmd_annotators_list)

    export = commands.add_parser("export", help="write the gold standard, DSL input or estimates as CSV")
    export.add_argument("kind", choices=["gold", "dsl", "estimates"])
    export.add_argument("--out", required=True)
    export.add_argument(
        "--excel",
        action="store_true",
        help="start the file with a UTF-8 byte-order mark, so Excel shows CJK and other non-Latin "
        'text correctly (R\'s read.csv then needs fileEncoding = "UTF-8-BOM")',
    )
    export.set_defaults(handler=cmd_export)

    estimate = commands.add_parser("estimate", help="print the study's debiased estimates")
    estimate.add_argument("--seed", type=int, default=1234)
    estimate.add_argument("--per-language", action="store_true", help="also IFL per query language")
    estimate.add_argument(
        "--formula", default=INTERACTION_FORMULA, help=f"the interaction regression (default: {INTERACTION_FORMULA!r})"
    )
    estimate.add_argument(
        "--variance",
        choices=["design", "sandwich"],
        default="design",
        help="design: finite-population, small-sample t intervals (default); sandwich: R dsl's, for comparison with R",
    )
    estimate.add_argument(
        "--no-cache",
        action="store_true",
        help="read the population from the database, not from the copy kept on disk per population version "
        "(beside a SQLite file, else in the user cache folder; IFL_CACHE_DIR sets the folder, 'off' none)",
    )
    estimate.set_defaults(handler=cmd_estimate)

    app = commands.add_parser("app", help="run the web app (with --demo: the demo study on an empty database)")
    app.add_argument("--port", type=int, default=8501)
    demo_mode = app.add_mutually_exclusive_group()
    demo_mode.add_argument(
        "--demo", action="store_true", help="set up the demo study (accounts with password 'demo') on an empty database"
    )
    demo_mode.add_argument("--no-demo", action="store_true", help="never set up the demo (the default)")
    app.set_defaults(handler=cmd_app)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    from annotator.errors import USER_ERRORS

    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
