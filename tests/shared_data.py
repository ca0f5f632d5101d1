"""Real public data for the tests, located through the registry.

Where ``TPFLUX_DATA`` names the data folder (as ``.ci/run`` does) a missing dataset or file fails
the test: a broken registry must not pass as skipped tests. Without it (a checkout with no data
beside it) the real-data tests are skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data.errors import DataError


def _unavailable(reason: str):
    if os.environ.get("TPFLUX_DATA"):
        pytest.fail(f"{reason} (TPFLUX_DATA={os.environ['TPFLUX_DATA']})")
    pytest.skip(reason)


def require_data(load, *args, **kwargs):
    """``load(*args, **kwargs)`` on the shared data (e.g. ``dataset_folder``, ``load_budget_inputs``)."""
    try:
        return load(*args, **kwargs)
    except DataError as exc:
        _unavailable(f"shared data not available: {exc}")


def require_file(path: Path) -> Path:
    """``path`` inside the shared data, which must exist."""
    if not Path(path).exists():
        _unavailable(f"shared data file not available: {path}")
    return Path(path)


def require_files(folder: Path, pattern: str) -> list[Path]:
    """The files matching ``pattern`` in a shared-data folder; at least one must exist."""
    files = sorted(Path(folder).glob(pattern))
    if not files:
        _unavailable(f"no shared data file {pattern} in {folder}")
    return files
