"""Parsed observation tables kept on disk between runs, keyed by their source files.

Reading and validating the 18 FLUXNET-CH4 daily files and the Hongyuan chambers takes about a second
at every run, and the result is the same as long as the files, the reader options and the reader
code are. An entry's key is a digest of:

- every source file's path and the sha256 of its bytes (a file rewritten within the clock's
  resolution, as tests do, still gets a new key; 6.6 MB of default data hash in ~10 ms);
- the reader options (dataset name or path, flux column, per-chamber, …);
- the bytes of every module and table of the ``data`` package (any change of a reader gives a new
  key) and the pandas and pyarrow versions.

An entry is a Parquet table (exact round trip of the canonical dtypes) and a JSON record of what the
reader dropped or skipped and the warnings it gave, which are given again on a hit. Never pickles.
Only successful reads are stored; a damaged entry is read afresh and replaced. Writes are atomic,
so concurrent runs are safe; the 16 most recently used entries are kept. ``TPFLUX_TABLE_CACHE=off``
turns the cache off; any other value is the folder to use (default: the user cache's ``tables/``).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from data.storage import atomic_path, write_text
from data.table import Observations

ENV_VAR = "TPFLUX_TABLE_CACHE"
FORMAT_VERSION = 1
MAX_ENTRIES = 16  # a user's own large files each leave an entry; the oldest go first


def _code_digest() -> str:
    """Digest of the data package's own files: readers, validation and site tables."""
    import pyarrow

    h = hashlib.sha256(f"{FORMAT_VERSION} {pd.__version__} {pyarrow.__version__}".encode())
    for f in sorted(Path(__file__).parent.iterdir()):
        if f.suffix in (".py", ".csv"):
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def _files(paths: Iterable[Path]) -> list[Path]:
    out = []
    for p in paths:
        out.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
    return out


def cache_key(paths: Iterable[Path], options: dict) -> str:
    """The key of a read of ``paths`` (files or folders, read recursively) with ``options``."""
    h = hashlib.sha256(_code_digest().encode())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    for f in _files(paths):
        with open(f, "rb") as fh:
            h.update(f"{f.resolve()}\0{hashlib.file_digest(fh, 'sha256').hexdigest()}\n".encode())
    return h.hexdigest()[:32]


def cached_observations(folder: Path | None, paths: list[Path], options: dict,
                        read: Callable[[], Observations]) -> Observations:
    """``read()``, or its stored result when ``paths`` and ``options`` are unchanged. ``folder``
    None (the cache turned off) always reads."""
    if folder is None or not all(p.exists() for p in paths):
        return read()  # a missing path gets the reader's own error
    key = cache_key(paths, options)
    table_file, record_file = folder / f"{key}.parquet", folder / f"{key}.json"
    hit = _load(table_file, record_file)
    if hit is not None:
        table_file.touch()  # recently used: kept by the pruning below
        return hit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obs = read()
    for w in caught:  # the reader's warnings reach the caller as if uncached
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    record = {"dropped": obs.dropped, "skipped_sites": obs.skipped_sites,
              "sources": [str(s) for s in obs.sources], "synthetic": obs.synthetic,
              "warnings": [str(w.message) for w in caught if issubclass(w.category, UserWarning)]}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(table_file) as tmp:
            obs.table.to_parquet(tmp, index=False)
        write_text(record_file, json.dumps(record))
        _prune(folder)
    except OSError:
        pass  # a read-only or full cache folder only costs the next run a re-read
    return obs


def _prune(folder: Path) -> None:
    """Keep the ``MAX_ENTRIES`` most recently used entries."""
    tables = sorted(folder.glob("*.parquet"), key=lambda f: f.stat().st_mtime, reverse=True)
    for old in tables[MAX_ENTRIES:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def _load(table_file: Path, record_file: Path) -> Observations | None:
    if not (table_file.exists() and record_file.exists()):
        return None
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        obs = Observations(table=pd.read_parquet(table_file), dropped=record["dropped"],
                           skipped_sites=record["skipped_sites"],
                           sources=[Path(s) for s in record["sources"]],
                           synthetic=record["synthetic"])
        messages = list(record["warnings"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # damaged: read afresh, and the new entry replaces it
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=3)
    return obs


def cache_folder(default: Path) -> Path | None:
    """The folder of the table cache: ``$TPFLUX_TABLE_CACHE``, else ``default``; None when off."""
    value = os.environ.get(ENV_VAR, "")
    if value.lower() in ("off", "0", "no", "false"):
        return None
    return Path(value).expanduser() if value else default
