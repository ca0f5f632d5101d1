"""A run killed while writing leaves the previous complete run, or none — never a torn file or a
folder that mixes two runs.

A run is written into a hidden temporary sibling folder and swapped onto the target as a whole
(``data.storage.RunFolder``); these tests kill real processes (SIGKILL: no clean-up runs) at several
moments and read back what is left, run two writers at once, and fill the disk.
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

from tests.helpers import REPO, subprocess_env

OUTPUTS = ("ea_posterior.nc", "ea_summary.csv", "diagnostics.json")

# Writes runs 1, 2, 3, … of three outputs into one run folder through the run writer, forever.
# Each run's NetCDF holds a large array filled with its version number, so a write takes long
# enough to be interrupted and a torn or mixed folder is detectable.
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
    with runio.RunFolder(out, job="test", overwrite=True) as run:
        runio.write_datatree(run.path / "posterior.nc", dt)
        runio.write_csv(run.path / "summary.csv", pd.DataFrame({"version": [version] * n}))
        runio.write_json(run.path / "diagnostics.json", {"version": version, "pad": [version] * n})
    print(version, flush=True)
"""


# fit_ea in its own process with NUTS replaced by prior draws (the writing is what is tested).
MOCK_FIT_EA = r"""
import json, sys
from tests.helpers import mock_sampling
mock_sampling()
from inference import fit_ea
sys.exit(fit_ea.main(json.loads(sys.argv[1])))
"""


def _env() -> dict:
    return subprocess_env(PYTHONWARNINGS="ignore")


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
def test_killed_writer_leaves_one_complete_run_or_none(tmp_path, moment):
    n = 4000  # 32 MB per NetCDF version
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out), str(n)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        parts = lambda: list(tmp_path.glob(".run.*.tmp/.posterior.nc.*.part"))  # noqa: E731
        if moment == "first write":
            assert _wait_for(lambda: bool(parts()), proc, 120), proc.stderr.read()
        elif moment == "a later write":
            assert _wait_for(lambda: (out / "diagnostics.json").exists(), proc, 120), proc.stderr.read()
            assert _wait_for(lambda: bool(parts()), proc, 60)
        else:  # after a first complete run, somewhere in the next writes (also on a busy machine)
            assert _wait_for(lambda: (out / "diagnostics.json").exists(), proc, 120), proc.stderr.read()
            assert _wait_for(lambda: bool(parts()), proc, 60)
            time.sleep(np.random.default_rng(0).uniform(0.0, 1.5))
    finally:
        _kill(proc)
    if moment == "first write":
        assert not out.exists()  # nothing complete yet: no run folder at all
        return
    left = _versions_left(out, n)
    # One run, whole: every output present and of the same version, no temporary file inside.
    assert set(left) == {"posterior.nc", "summary.csv", "diagnostics.json"}
    assert len(set(left.values())) == 1
    assert sorted(p.name for p in out.iterdir()) == ["diagnostics.json", "posterior.nc", "run.json",
                                                     "summary.csv"]


def test_a_new_run_after_a_killed_one_cleans_its_temporary_folder(tmp_path):
    from data import storage

    out = tmp_path / "run"
    stale = tmp_path / ".run.999999999.abc.tmp"  # a pid that cannot be alive
    stale.mkdir()
    (stale / "half.nc").write_bytes(b"x")
    with storage.RunFolder(out, job="test") as run:
        storage.write_text(run.path / "a.txt", "new")
    assert not stale.exists() and (out / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_second_writer_is_refused_at_once(tmp_path, capsys):
    from data import storage
    from data.errors import DataError
    from inference import fit_ea

    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom data import storage\n"
                               f"with storage.run_lock({str(out)!r}):\n    print('locked', flush=True)\n"
                               "    time.sleep(60)"], env=_env(), cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DataError, match=f"process {holder.pid}"):
            with storage.RunFolder(out, job="test"):
                pass
        t0 = time.monotonic()
        code = fit_ea.main(["--dataset", "synthetic", "--out", str(out)])
        assert code == 2 and time.monotonic() - t0 < 30  # refused before any data or sampling
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {out}") and str(holder.pid) in err[0]
    finally:
        _kill(holder)
    assert not out.exists()
    with storage.RunFolder(out, job="test"):  # the dead holder's lock is taken over
        pass
    assert out.is_dir()


def test_a_full_disk_is_one_error_and_keeps_the_previous_run(tmp_path, monkeypatch):
    from data import storage
    from data.errors import DataError

    out = tmp_path / "run"
    with storage.RunFolder(out, job="test") as run:
        storage.write_text(run.path / "a.txt", "first")
    real = Path.write_text

    def full(self, *args, **kwargs):
        if self.name.startswith(".a.txt."):
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(DataError, match="disk filled up"):
        with storage.RunFolder(out, job="test", overwrite=True) as run:
            storage.write_text(run.path / "a.txt", "second")
    monkeypatch.undo()
    assert (out / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_existing_run_is_replaced_only_with_overwrite(tmp_path, mock_pymc_sample, capsys):
    from inference import fit_ea

    out = tmp_path / "run"
    args = ["--dataset", "synthetic", "--out", str(out), "--chains", "1", "--draws", "20",
            "--ppc-draws", "5", "--allow-unconverged"]
    assert fit_ea.main([*args, "--seed", "1"]) == 0
    before = _digest(out)
    capsys.readouterr()
    assert fit_ea.main([*args, "--seed", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0] and "fit_ea run" in err[0]
    assert _digest(out) == before
    (out / "report.html").write_text("old report")  # a report of the previous run goes with it
    assert fit_ea.main([*args, "--seed", "2", "--overwrite"]) == 0
    assert _digest(out) != before and not (out / "report.html").exists()


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
              "--draws", "20", "--ppc-draws", "5", "--allow-unconverged", "--overwrite"]
    proc = subprocess.Popen([sys.executable, "-c", MOCK_FIT_EA, json.dumps(second)], cwd=REPO,
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        caught = _wait_for(lambda: bool(list(tmp_path.glob(".run.*.tmp/.ea_posterior.nc.*.part"))),
                           proc, 300)
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
