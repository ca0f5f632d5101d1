"""Helpers shared by the test modules: paths, subprocesses, mock sampling, small fits, tables.

Test modules import from here (``from tests.helpers import ...``), never from one another. Fixtures
stay in ``conftest.py``; real shared data are located by ``tests/shared_data.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
EXAMPLES = REPO / "examples"

# NUTS settings small enough for plumbing tests (the convergence gate fails; that is not under test).
SMALL_FIT = dict(dataset="synthetic", chains=2, draws=30, tune=30, ppc_draws=5, seed=5, progress=False)


# ---------------------------------------------------------------- subprocesses
def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: this one's, with the non-interactive matplotlib backend,
    ``TPFLUX_DATA`` passed on where it is set, and no ``PYTHONPATH`` (the installed packages are
    found as a user finds them, not through the checkout). ``extra`` adds or replaces variables."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def run_python(*argv: str | Path, cwd: str | Path, timeout: float = 600,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python ARGV…`` with this interpreter; stdout and stderr captured as text. Never raises on
    a non-zero exit: the caller asserts on ``returncode`` (and shows ``stderr``)."""
    return subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, env=env or subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def run_module(module: str, *args: str | Path, cwd: str | Path, timeout: float = 600,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS…`` (e.g. ``run_module("inference.fit_ea", "--dataset", "synthetic",
    cwd=tmp_path)``)."""
    return run_python("-m", module, *args, cwd=cwd, timeout=timeout, env=env)


def run_script(path: str | Path, *args: str | Path, cwd: str | Path, timeout: float = 600,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python PATH ARGS…``, a script run as a user runs it (e.g. ``examples/quickstart.py``)."""
    return run_python(Path(path), *args, cwd=cwd, timeout=timeout, env=env)


# ---------------------------------------------------------------- sampling
def mock_sample_stats(*, energy: bool = False, seed=5) -> dict:
    """Sample statistics for ``pymc.testing.mock_sample``: no divergences, tree depth 3, and
    (``energy``) normal energies from ``seed``, for code that computes BFMI."""
    stats = {"diverging": lambda size: np.zeros(size, dtype=bool),
             "tree_depth": lambda size: np.full(size, 3)}
    if energy:
        rng = np.random.default_rng(seed)
        stats["energy"] = lambda size: rng.normal(size=size)
    return stats


def mock_sampling(monkeypatch=None, *, energy: bool = False, stats: dict | None = None) -> None:
    """Replace NUTS (``pm.sample``, whichever ``nuts_sampler`` is asked for, and the cached nutpie
    path ``inference.nutpie_compile.sample``) by prior draws of the
    model's free variables and deterministics, with ``mock_sample_stats`` (or ``stats``): seconds,
    not minutes. The same ``random_seed`` gives the same draws and statistics.

    With a ``pytest.MonkeyPatch`` (the ``monkeypatch`` fixture, or ``MonkeyPatch.context()``) the
    patch is undone after the test; without one ``pm.sample`` is replaced for the rest of the
    process (for a child process: ``from tests.helpers import mock_sampling; mock_sampling()``).
    """
    import pymc as pm
    from pymc.testing import mock_sample

    def sample(*args, **kwargs):
        model = pm.modelcontext(kwargs.get("model"))
        names = [v.name for v in [*model.free_RVs, *model.deterministics]]
        # Statistics made afresh for each call from its seed: the same seed, the same tree.
        sample_stats = stats if stats is not None else mock_sample_stats(
            energy=energy, seed=kwargs.get("random_seed"))
        return mock_sample(*args, **{**kwargs, "var_names": names}, sample_stats=sample_stats)

    def nutpie_sample(model, *, draws, tune, chains, seed, **_):
        with model:
            return sample(draws=draws, tune=tune, chains=chains, random_seed=seed)

    from inference import nutpie_compile

    if monkeypatch is None:
        pm.sample = sample
        nutpie_compile.sample = nutpie_sample
    else:
        monkeypatch.setattr(pm, "sample", sample)
        monkeypatch.setattr(nutpie_compile, "sample", nutpie_sample)


def small_fit_ea(**options):
    """``tpflux.fit_ea`` on the simulator with tiny sampling (``SMALL_FIT``); ``options`` replace
    or add keyword options. Combine with ``mock_sampling`` where NUTS itself is not under test."""
    import tpflux

    return tpflux.fit_ea(**{**SMALL_FIT, **options})


# ---------------------------------------------------------------- comparisons
def assert_trees_equal(a, b) -> None:
    """Two DataTrees with the same groups, values, coordinates and dims; attributes may differ
    (creation time stamps, run ids)."""
    import xarray as xr

    assert set(a.children) == set(b.children)
    for group in a.children:
        xr.testing.assert_equal(a[group].to_dataset(), b[group].to_dataset())


# ---------------------------------------------------------------- tables with known structure
def make_sites(n_days: int = 365, sites=(("W1", "wetland"), ("W2", "wetland"), ("W3", "wetland"),
                                         ("G1", "grassland")), seed: int = 0,
               start: str = "2015-01-01", latitude: float = 33.0) -> pd.DataFrame:
    """A canonical daily table with known structure: wetland emission grows exponentially with
    soil temperature (and with soil water), the grassland is a sink that also grows with
    temperature; ``le`` is a driver with no effect."""
    rng = np.random.default_rng(seed)
    frames = []
    for site, eco in sites:
        date = pd.date_range(start, periods=n_days, freq="D")
        doy = date.day_of_year.to_numpy(dtype=float)
        temp = 4.0 + 10.0 * np.cos(2 * np.pi * (doy - 205) / 365.25) + rng.normal(0, 1.5, n_days)
        swc = 0.4 + 0.1 * np.sin(2 * np.pi * doy / 365.25) + rng.normal(0, 0.03, n_days)
        noise = rng.normal(0, 1, n_days)
        if eco == "wetland":
            flux = 20 * np.exp(0.09 * (temp - 15) + 2.0 * (swc - 0.4)) * np.exp(rng.normal(0, 0.1, n_days))
        else:
            flux = -2 * np.exp(0.05 * (temp - 15)) * np.exp(rng.normal(0, 0.1, n_days))
        frames.append(pd.DataFrame({
            "site": site, "date": date, "days": 1, "flux": flux, "soil_temp_c": temp,
            "ecosystem": eco, "method": "eddy_covariance", "latitude": latitude,
            "longitude": 100.0, "n_sub": 1, "swc": swc, "le": noise}))
    return pd.concat(frames, ignore_index=True)
