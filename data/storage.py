"""Writing and reading files: one atomic writer for every output, one whole-run folder writer.

Every file the suite writes (run outputs, reports, downloads) goes through ``atomic_path``: it is
written beside its target under a hidden ``.part`` name and renamed into place, so a reader never
sees half a file. A run is atomic as a whole (``RunFolder``): its files are written into a hidden
temporary sibling folder that is renamed into place when complete, so a killed or failed run
leaves the previous run untouched, or nothing. Readers turn every I/O failure into the one-line
``DataError``. No pymc here: reports read through this module too.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError

# Written into every run folder: which job wrote it, and the run id shared by its files.
RUN_MARKER = "run.json"


# ---------------------------------------------------------------- single files
@contextlib.contextmanager
def atomic_path(path: Path | str):
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs are ordinary files
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DataError(path, None, None, "the disk filled up while writing; nothing of this run "
                            "was kept", "free some space, or pass --out a folder on another disk") from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: Path | str, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def strict_json(obj):
    """``obj`` with NaN/inf floats as None and numpy/Path values as plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj, **kwargs) -> str:
    """Strict JSON text (``null`` for NaN, never a bare ``NaN``)."""
    return json.dumps(strict_json(obj), allow_nan=False, **kwargs)


def write_json(path: Path | str, obj) -> Path:
    return write_text(path, dumps(obj, indent=2) + "\n")


def write_csv(path: Path | str, table: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return Path(path)


# Arrays at least this large are written gzip-compressed (with byte shuffling): predictive draws
# and site effects shrink by about a fifth; small arrays are not worth the time.
COMPRESS_MIN_BYTES = 1_000_000


def write_datatree(path: Path | str, dt) -> Path:
    encoding = {}
    for node in dt.subtree:
        # level 1: 0.7 s instead of 1.0 s for the default run, 0.5 % larger
        big = {name: {"compression": "gzip", "compression_opts": 1, "shuffle": True}
               for name, var in node.dataset.data_vars.items()
               if var.dtype.kind in "fiu" and var.nbytes >= COMPRESS_MIN_BYTES}
        if big:
            encoding[node.path] = big
    with atomic_path(path) as tmp:
        dt.to_netcdf(tmp, engine="h5netcdf", encoding=encoding or None)
    return Path(path)


def save_figure(fig, path: Path | str, **kwargs) -> Path:
    """A matplotlib Figure saved atomically (format from the suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), **kwargs)
    return path


def as_saved(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` exactly as reading its saved CSV gives it back (dtypes, missing values), so that
    an in-memory summary and a reloaded one compare equal."""
    return pd.read_csv(io.StringIO(table.to_csv(index=False)))


# ---------------------------------------------------------------- reading
def _one_line(exc: Exception) -> str:
    """An exception's text on one line (parsers put newlines in theirs; an error is one line)."""
    return " ".join(str(exc).split())


def read_csv(path: Path | str, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(path, None, None, f"cannot read the CSV file ({_one_line(exc)})",
                        "re-run the job that wrote it") from None


def read_json(path: Path | str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(path, None, None, f"cannot read the JSON file ({_one_line(exc)})",
                        "re-run the job that wrote it") from None


def read_datatree(path: Path | str):
    """An ArviZ DataTree from NetCDF, loaded into memory (the file is closed afterwards)."""
    import xarray as xr

    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            return tree.load()
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(path, None, None, f"cannot read the NetCDF file ({type(exc).__name__}: {_one_line(exc)})",
                        "re-run the job that wrote it") from None


# ---------------------------------------------------------------- whole runs
def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def read_marker(folder: Path | str) -> dict | None:
    """The run marker of ``folder`` (job, run id), or None when it holds no tpflux run."""
    path = Path(folder) / RUN_MARKER
    if not path.is_file():
        return None
    with contextlib.suppress(OSError, ValueError):
        marker = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(marker, dict):
            return marker
    return None


def format_bytes(n: float) -> str:
    """A byte count for a message: 512 B, 3.4 MB, 16.0 GB (powers of 1000)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def check_out_dir(out: Path | str, *, overwrite: bool = False, need_bytes: int | None = None) -> Path:
    """Refuse an output location before any computation: a file, an unwritable parent, a
    folder that already holds something (unless ``overwrite``, which replaces it whole), or, with
    ``need_bytes`` (the expected size of the outputs), a disk with less free space than that —
    measured on the nearest existing parent, where the run's temporary folder is written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, None, None, "the output path is an existing file",
                        "pass --out a folder path (new, or a previous run with --overwrite)")
    parent = out.parent if str(out.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise DataError(probe, None, None, "the output folder cannot be written here (permission denied)",
                        "pass --out a folder you can write to")
    if need_bytes:
        try:
            free = shutil.disk_usage(probe).free
        except OSError:
            free = None  # no figure for this file system: the writer still turns ENOSPC into a DataError
        if free is not None and free < need_bytes:
            raise DataError(probe, None, None, f"the disk has {format_bytes(free)} free; the outputs "
                            f"need about {format_bytes(need_bytes)}",
                            "free some space, or pass --out a folder on another disk")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        marker = read_marker(out)
        what = (f"a previous {marker.get('job')} run ({marker.get('run_id')})" if marker
                else "files that are not a tpflux run")
        raise DataError(out, None, None, f"the output folder already holds {what}",
                        "pass a new --out folder, or --overwrite to replace the whole folder")
    return out


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a lock or temporary folder of a killed run is stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_HELD_LOCKS: dict[Path, int] = {}


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def run_lock(out: Path | str):
    """Hold the write lock of run folder ``out`` (a hidden ``.NAME.lock`` file beside it).

    A second writer is refused at once with a DataError naming the folder and the holder; a lock
    left by a killed process (its pid is gone) is taken over. Re-entrant within one process.
    """
    target = Path(out).absolute()
    lock = _lock_path(target)
    if _HELD_LOCKS.get(lock):
        _HELD_LOCKS[lock] += 1
        try:
            yield
        finally:
            _HELD_LOCKS[lock] -= 1
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                holder = -1
            if holder > 0 and pid_alive(holder):
                raise DataError(target, None, None, f"the folder is being written by another run "
                                f"(process {holder}, lock {lock.name})",
                                "wait for that run to finish, or pass a different --out") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        break
    else:
        raise DataError(target, None, None, "could not take the folder's write lock",
                        f"remove {lock} if no run is writing there")
    _HELD_LOCKS[lock] = 1
    try:
        yield
    finally:
        del _HELD_LOCKS[lock]
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    ok = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
    return ok


def _remove_stale_temporaries(target: Path) -> None:
    """Temporary folders of killed runs into ``target`` (their pid is gone)."""
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(ValueError, IndexError):
            pid = int(tmp.name[len(target.name) + 2:].split(".")[0])
            if not pid_alive(pid):
                shutil.rmtree(tmp, ignore_errors=True)
    for old in target.parent.glob(f".{target.name}.*.old"):
        shutil.rmtree(old, ignore_errors=True)


class RunFolder:
    """Write a run into a hidden sibling folder; on success it replaces the target as a whole.

        with RunFolder(out, job="fit_ea", overwrite=False) as run:
            write_csv(run.path / "ea_summary.csv", table)
        # complete here; on an exception the temporary folder is removed and ``out`` is untouched

    ``overwrite`` replaces a previous run folder. The previous folder and the new one are swapped
    in one atomic rename where the system allows it (Linux), so a reader, or a kill at any moment,
    sees the old complete run or the new complete run, never a mix. The folder's write lock
    (``run_lock``) is held throughout.
    """

    def __init__(self, out: Path | str, *, job: str, run_id: str | None = None,
                 overwrite: bool = False):
        self.target = check_out_dir(out, overwrite=overwrite)
        self.job = job
        self.run_id = run_id or new_run_id()
        self.path: Path | None = None
        self._lock = run_lock(self.target)

    def __enter__(self) -> "RunFolder":
        self._lock.__enter__()
        try:
            parent = self.target.parent
            parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_temporaries(self.target)
            self.path = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.target.name}.{os.getpid()}.",
                                              suffix=".tmp"))
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.path, 0o777 & ~umask)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            if self.path is not None and self.path.exists():
                shutil.rmtree(self.path, ignore_errors=True)
            self._lock.__exit__(None, None, None)

    def commit(self) -> Path:
        write_json(self.path / RUN_MARKER, {"job": self.job, "run_id": self.run_id})
        if self.target.exists() and _exchange(self.path, self.target):
            shutil.rmtree(self.path, ignore_errors=True)  # now holds the previous run
            return self.target
        if self.target.exists():
            # No atomic swap here: move the previous folder aside, then rename the new one in.
            old = self.target.with_name(f".{self.target.name}.{new_run_id()}.old")
            os.replace(self.target, old)
            try:
                os.replace(self.path, self.target)
            except BaseException:
                os.replace(old, self.target)
                raise
            shutil.rmtree(old, ignore_errors=True)
            return self.target
        os.replace(self.path, self.target)
        return self.target
