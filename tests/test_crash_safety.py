"""A run killed while writing leaves the previous complete outputs, or none — never a torn file.

Outputs are written to a temporary file in the run folder and renamed over the target
(``inference.runio``); these tests kill real processes (SIGKILL: no clean-up runs) at several
moments and read back what is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parent.parent
OUTPUTS = ("ea_posterior.nc", "ea_summary.csv", "diagnostics.json")

# Writes versions 1, 2, 3, … of three outputs through the runio helpers, forever. Each version's
# NetCDF holds a large array filled with its version number, so a write takes long enough to be
# interrupted and a torn or mixed file is detectable.
WRITER = r"""
import sys
from pathlib import Path
import numpy as np, pandas as pd, xarray as xr
from inference import runio
out = Path(sys.argv[1])
n = int(sys.argv[2])
for version in range(1, 10**6):
    values = np.full((n, 1000), float(version))
    dt = xr.DataTree.from_dict({"posterior": xr.Dataset({"x": (("a", "b"), values)})})
    dt.attrs["version"] = version
    runio.write_datatree(out / "posterior.nc", dt)
    runio.write_csv(out / "summary.csv", pd.DataFrame({"version": [version] * n}))
    runio.write_json(out / "diagnostics.json", {"version": version, "pad": [version] * n})
    print(version, flush=True)
"""


# fit_ea in its own process with NUTS replaced by prior draws (the writing is what is tested).
MOCK_FIT_EA = r"""
import functools, json, sys
import numpy as np, pymc as pm
from pymc.testing import mock_sample
pm.sample = functools.partial(mock_sample, sample_stats={
    "diverging": lambda size: np.zeros(size, dtype=bool), "tree_depth": lambda size: np.full(size, 3)})
from inference import fit_ea
sys.exit(fit_ea.main(json.loads(sys.argv[1])))
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}


def _wait_for(predicate, proc: subprocess.Popen, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.001)
    return False


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _versions_left(out: Path, n: int) -> dict[str, int | None]:
    """Version of each complete output; fails on a torn or mixed file."""
    found: dict[str, int | None] = {}
    nc = out / "posterior.nc"
    if nc.exists():
        dt = xr.open_datatree(nc, engine="h5netcdf")
        x = dt["posterior"]["x"].values
        version = int(dt.attrs["version"])
        assert x.shape == (n, 1000) and np.all(x == version)
        found["posterior.nc"] = version
    csv = out / "summary.csv"
    if csv.exists():
        table = pd.read_csv(csv)
        assert len(table) == n and table["version"].nunique() == 1
        found["summary.csv"] = int(table["version"].iloc[0])
    js = out / "diagnostics.json"
    if js.exists():
        obj = json.loads(js.read_text())
        assert len(obj["pad"]) == n and set(obj["pad"]) == {obj["version"]}
        found["diagnostics.json"] = int(obj["version"])
    return found


@pytest.mark.parametrize("moment", ["first write", "a later write", "random"])
def test_killed_writer_leaves_complete_files_or_none(tmp_path, moment):
    n = 4000  # 32 MB per NetCDF version
    out = tmp_path / "run"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out), str(n)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        parts = lambda: list(out.glob(".posterior.nc.*.part"))  # noqa: E731
        if moment == "first write":
            assert _wait_for(lambda: bool(parts()), proc, 120), proc.stderr.read()
        elif moment == "a later write":
            assert _wait_for(lambda: (out / "diagnostics.json").exists(), proc, 120), proc.stderr.read()
            assert _wait_for(lambda: bool(parts()), proc, 60)
        else:
            assert _wait_for(lambda: bool(parts()), proc, 120), proc.stderr.read()
            time.sleep(np.random.default_rng(0).uniform(0.0, 1.5))  # somewhere in the next writes
    finally:
        _kill(proc)
    left = _versions_left(out, n)
    if moment == "first write":
        assert left == {}  # nothing complete yet: nothing at all
    if moment == "a later write":
        assert left.get("posterior.nc", 0) >= 1 and left.get("diagnostics.json", 0) >= 1
    # Files are renamed in order, so they are at most one version apart (never torn).
    if left:
        assert max(left.values()) - min(left.values()) <= 1
    assert not any(p.name in ("posterior.nc", "summary.csv", "diagnostics.json") and p.stat().st_size == 0
                   for p in out.iterdir())


def _digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in OUTPUTS}


def test_fit_ea_killed_while_writing_keeps_the_previous_run(tmp_path, mock_pymc_sample):
    """A complete run, then a second run into the same folder killed as it writes the posterior:
    the first run's files are all still there, complete and unchanged."""
    from inference import fit_ea

    out = tmp_path / "run"
    first = ["--dataset", "synthetic", "--out", str(out), "--seed", "1", "--chains", "1",
             "--draws", "20", "--ppc-draws", "5", "--allow-unconverged"]
    assert fit_ea.main(first) == 0
    before = _digest(out)

    second = ["--dataset", "synthetic", "--out", str(out), "--seed", "2", "--chains", "1",
              "--draws", "20", "--ppc-draws", "5", "--allow-unconverged"]
    proc = subprocess.Popen([sys.executable, "-c", MOCK_FIT_EA, json.dumps(second)], cwd=REPO,
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        caught = _wait_for(lambda: bool(list(out.glob(".ea_posterior.nc.*.part"))), proc, 300)
    finally:
        _kill(proc)
    assert caught, f"the run ended before it was caught writing: {proc.stderr.read()[-2000:]}"
    assert _digest(out) == before
    dt = xr.open_datatree(out / "ea_posterior.nc", engine="h5netcdf")
    assert int(dt.attrs["seed"]) == 1 and "posterior" in dt.children
    assert json.loads((out / "diagnostics.json").read_text())["verdict"] in ("pass", "fail")
    assert len(pd.read_csv(out / "ea_summary.csv")) > 0


def test_fit_ea_killed_before_writing_leaves_no_outputs(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "inference.fit_ea", "--dataset", "synthetic", "--out", str(out),
           "--chains", "1", "--draws", "2000", "--tune", "2000", "--sampler", "pymc"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    line = ""
    try:  # killed while sampling: its progress line says it has started
        end = time.monotonic() + 300
        while "sampling" not in line and time.monotonic() < end and proc.poll() is None:
            line = proc.stderr.readline()
    finally:
        _kill(proc)
    assert "sampling" in line
    assert not out.exists() or not any(p.name in OUTPUTS for p in out.iterdir())
