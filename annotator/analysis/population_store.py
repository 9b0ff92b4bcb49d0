"""The population part of the analysis frame kept on disk, per :class:`PopulationVersion` (issue 10).

``ifl estimate`` is a fresh process each time: reading the population of the paper demo (775k
completions joined with their surrogate and sample) from SQLite costs about 3-5 s, more than
half of its budget. The population changes only with an import, a language-ID run or a sample,
so a process that reads it writes it here too (the commands that change it read it at their
end to do so, and the app keeps it here as well), and the next process whose database shows the
same version loads it in a fraction of a second (Arrow IPC, memory-mapped; no pickle, so a
file planted in the folder can hold data but never run code).

Where: ``IFL_CACHE_DIR`` if set (empty or ``off``: no disk cache), else beside a SQLite file
(``db/ifl.sqlite-cache/``, which ``.gitignore``'s ``db/*.sqlite-*`` already covers), else, for
other databases (PostgreSQL), ``$XDG_CACHE_HOME/ifl-studio`` (``~/.cache/ifl-studio``); in every
case in a folder named by a hash of the database URL (password hidden), or of a SQLite file's
absolute path. In-memory SQLite has none.

The file is named by a hash of its key and holds the key in its metadata, which must match on
load: the :class:`PopulationVersion` read *before* the population was read (so a change made
while reading makes the next version differ and the cache miss), the requested sample and
surrogate source, a format number, the pandas and pyarrow versions, and a hash of the source of
the modules that define the population (this one, :mod:`annotator.analysis.frame`, the strata
and the language classes), so that a code change never meets a frame built by older code. One
population per database is kept: writing one removes the others.

Beside it, what the estimators derive from the population alone and cheaply keep as arrays:
the learner inputs of g-hat (:func:`save_derived`, a NumPy file without pickle), under the
population's key and a hash of the code that derives them; ``ifl estimate`` then starts its
first ``analyse_study`` with them (0.3-0.6 s of CPU on the paper demo).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import os
import tempfile
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine

from stats.crossfit import DistinctInputs

__all__ = [
    "CACHE_DIR_SETTING",
    "derived_key",
    "load_derived",
    "load_population",
    "population_cache_dir",
    "population_file",
    "population_key",
    "save_derived",
    "save_population",
]

CACHE_DIR_SETTING = "IFL_CACHE_DIR"
_FORMAT = 1
_PREFIX = "population-"
_DERIVED = "derived-"
_SUFFIX = ".arrow"
#: The modules whose code decides what a population frame holds: a change to any of them is a miss.
_DEFINING_MODULES = (
    "annotator.analysis.population_store",
    "annotator.analysis.frame",
    "annotator.design.sampling",
    "annotator.languages",
    "annotator.storage",
)


def population_cache_dir(engine: Engine) -> Path | None:
    """The folder for ``engine``'s kept population, or None where there is none (see the module)."""
    setting = os.environ.get(CACHE_DIR_SETTING)
    url = engine.url
    identity = url.render_as_string(hide_password=True)
    beside: Path | None = None
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:") or url.query.get("mode") == "memory":
            return None  # in memory: nothing outlives the process (and every such URL is the same)
        path = Path(database).expanduser().resolve()
        identity, beside = str(path), path.with_name(path.name + "-cache")  # a relative URL names the file by cwd
    if setting is not None:
        if setting.strip().lower() in {"", "0", "off", "none", "false"}:
            return None
        root = Path(setting).expanduser()
    elif beside is not None:
        root = beside
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ifl-studio"
    return root / hashlib.sha256(identity.encode()).hexdigest()[:16]


#: The modules whose code decides what the estimators derive from a population and what
#: :func:`save_derived` keeps of it (the learner inputs, their cache keys).
_DERIVING_MODULES = ("stats.cache", "stats.crossfit", "stats.learners", "stats.ghat", "stats.estimands")


@functools.cache
def _source_hash(modules: tuple[str, ...] = _DEFINING_MODULES) -> str:
    """A hash of the source of ``modules`` (read once per process). Each is imported, so that a
    module not loaded yet is hashed by its code too, never by a placeholder two versions share."""
    digest = hashlib.sha256()
    for name in modules:
        file = importlib.import_module(name).__file__
        digest.update(name.encode())
        digest.update(Path(file).read_bytes() if file else b"?")
    return digest.hexdigest()[:16]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def population_key(version: Sequence[Any], sample_id: int | None, surrogate_source: str | None) -> str:
    """The key of a population: everything its frame is a function of (see the module)."""
    return json.dumps(
        {
            "format": _FORMAT,
            "code": _source_hash(),
            "pandas": pd.__version__,
            "pyarrow": pa.__version__,
            "version": [_plain(value) for value in version],
            "sample_id": sample_id,
            "surrogate_source": surrogate_source,
        },
        sort_keys=True,
    )


def population_file(directory: Path, key: str) -> Path:
    """The file in ``directory`` that holds (or would hold) the population of ``key``."""
    return directory / f"{_PREFIX}{hashlib.sha256(key.encode()).hexdigest()[:24]}{_SUFFIX}"


def save_population(directory: Path, key: str, frame: pd.DataFrame, extra: Mapping[str, Any]) -> Path | None:
    """Write ``frame`` under ``key`` (atomically: another process sees the old file or the new
    one, never half of one) and remove the database's other populations. ``extra`` (JSON) is
    returned by :func:`load_population` with the frame. None, and nothing written, if the folder
    cannot be written: the cache is an optimisation only."""
    target = population_file(directory, key)
    # Object columns come back with None where Arrow has a null: note whether they had NaN.
    objects = {column: _missing_marker(frame[column]) for column in frame.columns if frame[column].dtype == object}
    if "mixed" in objects.values():
        return None
    meta = {"key": key, "extra": dict(extra), "objects": objects, "dtypes": [str(t) for t in frame.dtypes]}
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except pa.ArrowException:
        return None
    table = table.replace_schema_metadata({b"ifl": json.dumps(meta).encode()})

    def write(handle: IO[bytes]) -> None:
        with pa.ipc.new_file(handle, table.schema) as writer:
            writer.write_table(table)

    return _replace(target, f"{_PREFIX}*{_SUFFIX}", write)


def _replace(target: Path, siblings: str, write: Callable[[IO[bytes]], None]) -> Path | None:
    """Write ``target`` atomically (``write`` fills a temporary file in its folder, which then
    replaces it: another process sees the old file or the new one, never half of one), then
    remove the folder's other files of the glob ``siblings``. None, and nothing left behind, if
    it cannot be written: the cache is an optimisation only."""
    temporary: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=".tmp-", suffix=target.suffix, delete=False
        ) as handle:
            temporary = Path(handle.name)
            write(handle)
        os.replace(temporary, target)
    except (OSError, pa.ArrowException):
        if temporary is not None:  # a full disk must not fill up with half-written files
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        return None
    # A process reading a removed file keeps reading it on POSIX; where an open file cannot be
    # removed (Windows) it stays for a later writer to remove.
    for other in target.parent.glob(siblings):
        if other != target:
            with contextlib.suppress(OSError):
                other.unlink(missing_ok=True)
    return target


def _missing_marker(values: pd.Series) -> str:
    """How an object column marks a missing value: ``none``, ``nan``, or ``mixed`` (both)."""
    array = values.to_numpy()
    missing = int(pd.isna(array).sum())
    nones = sum(value is None for value in array[pd.isna(array)])
    return "none" if nones == missing else "nan" if nones == 0 else "mixed"


def load_population(directory: Path, key: str) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The frame kept under ``key`` and its ``extra``, or None if there is none (or it does not
    read back as written: wrong key, other column types, a damaged file)."""
    path = population_file(directory, key)
    try:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        meta = json.loads((table.schema.metadata or {}).get(b"ifl", b"{}"))
        if meta.get("key") != key:
            return None
        frame = table.to_pandas()
        for column, marker in meta["objects"].items():
            values = table.column(column).to_numpy(zero_copy_only=False).astype(object)
            if marker == "nan":
                values[pd.isna(values)] = np.nan
            frame[column] = pd.Series(values, index=frame.index, dtype=object)
        if [str(t) for t in frame.dtypes] != meta["dtypes"]:
            return None
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None
    return frame, meta["extra"]


def derived_key(key: str) -> str:
    """The key of what the estimators derived from the population of ``key``: it also names the
    code that derives it, so that a change to it (other learner inputs) never meets old ones."""
    return json.dumps({"population": key, "code": _source_hash(_DERIVING_MODULES)}, sort_keys=True)


def save_derived(directory: Path, key: str, items: list[tuple[Hashable, DistinctInputs]]) -> Path | None:
    """Keep the learner inputs the estimators derived from a population (``AnalysisCache`` keys
    and values; keys of strings and numbers only), as a NumPy file without pickle, under
    ``key`` (:func:`derived_key`). Atomic, one per database, None if it cannot be written."""
    kept = [(key_, inputs) for key_, inputs in items if _plain_key(key_)]
    if not kept:
        return None
    keys = json.dumps([key_ for key_, _ in kept])
    arrays: dict[str, Any] = {"__key__": np.asarray(key), "__keys__": np.asarray(keys)}
    for index, (_, inputs) in enumerate(kept):
        arrays |= {f"{index}.{name}": array for name, array in inputs.to_arrays().items()}
    return _replace(_derived_file(directory, key), f"{_DERIVED}*.npz", lambda handle: np.savez(handle, **arrays))


def _derived_file(directory: Path, key: str) -> Path:
    """The file in ``directory`` that holds (or would hold) what was derived under ``key``."""
    return directory / f"{_DERIVED}{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def load_derived(directory: Path, key: str, n_rows: int) -> list[tuple[Hashable, DistinctInputs]]:
    """What :func:`save_derived` kept under ``key`` (for a population of ``n_rows``), or nothing."""
    try:
        with np.load(_derived_file(directory, key), allow_pickle=False) as data:
            if str(data["__key__"]) != key:
                return []
            keys = [_as_key(key_) for key_ in json.loads(str(data["__keys__"]))]
            fields: dict[int, dict[str, Any]] = {}
            for name in data.files:
                if not name.startswith("__"):
                    index, field = name.split(".", 1)
                    fields.setdefault(int(index), {})[field] = data[name]
        items = [(key_, DistinctInputs.from_arrays(fields[index])) for index, key_ in enumerate(keys)]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if any(len(inputs.inverse) != n_rows for _, inputs in items):
        return []
    return items


def _plain_key(key: Any) -> bool:
    """A key JSON gives back as it was (after :func:`_as_key`): strings, numbers, tuples of them."""
    if isinstance(key, tuple):
        return all(_plain_key(part) for part in key)
    return isinstance(key, (str, int, float)) and not isinstance(key, bool)


def _as_key(value: Any) -> Hashable:
    return tuple(_as_key(part) for part in value) if isinstance(value, list) else value
