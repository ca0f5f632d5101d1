"""What every entry point shares: arguments, run folder, atomic writes, provenance, summary, gate.

Exit codes (DESIGN.md): 0 success; 2 bad input (one line on stderr, nothing written);
3 diagnostics gate failed (outputs kept, verdict recorded).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import functools
import importlib.metadata
import json
import os
import shlex
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data.errors import DataError
from data.storage import RunFolder, as_saved, new_run_id, check_out_dir, dumps, write_csv, write_datatree, write_json, write_text
from models.conventions import (CI_QUANTILES, DEFAULT_SEED, EXIT_BAD_INPUT, EXIT_GATE, EXIT_OK, GATE,
                                SUMMARY_STATS)

__all__ = ["RunFolder", "as_saved", "check_out_dir", "write_csv", "write_datatree", "write_json", "write_text",
           "EXIT_OK", "EXIT_BAD_INPUT", "EXIT_GATE", "GATE", "SUMMARY_STATS"]

PACKAGES = ("tpflux", "pymc", "pytensor", "arviz", "numpy", "pandas", "xarray", "scikit-learn",
            "scipy", "matplotlib")


# ---------------------------------------------------------------- command line
def base_parser(job: str, description: str) -> argparse.ArgumentParser:
    """A parser with the contract's ``--out`` and ``--seed``."""
    parser = argparse.ArgumentParser(prog=f"python -m inference.{job}", description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default results/{job}-<timestamp>/)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (same seed, same result)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the --out folder when it already holds a run (as a whole)")
    return parser


def add_sampling_args(parser: argparse.ArgumentParser, chains: int = 4, draws: int = 1000,
                      tune: int = 1000) -> None:
    parser.add_argument("--chains", type=int, default=chains, help="MCMC chains")
    parser.add_argument("--draws", type=int, default=draws, help="posterior draws per chain")
    parser.add_argument("--tune", type=int, default=tune, help="tuning steps per chain")
    parser.add_argument("--allow-unconverged", action="store_true",
                        help="record a failed diagnostics verdict but exit 0")


def out_dir(job: str, out: Path | None) -> Path:
    if out is not None:
        return Path(out)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"{job}-{stamp}"


def cli(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap an entry point: a DataError becomes exit 2 with one line on stderr, no traceback."""

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return wrapped


def progress(message: str) -> None:
    """One line of progress on stderr (stdout stays for results)."""
    print(f"[{_dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- provenance
def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def provenance(config: dict, data_sha256: str, seed: int, argv: Iterable[str] | None,
               job: str = "") -> dict[str, str]:
    """Attrs stored on every saved DataTree (NetCDF attrs must be flat strings or numbers).

    ``argv``: the command line's arguments, or None for a call from Python (recorded as such).
    """
    command = (shlex.join([f"python -m inference.{job}", *argv]) if argv is not None
               else f"tpflux.{job}(...) from Python")
    return {
        "tpflux_job": job,
        "run_id": new_run_id(),
        "tpflux_config": dumps(config, sort_keys=True),
        "data_sha256": data_sha256,
        "package_versions": json.dumps(package_versions(), sort_keys=True),
        "seed": int(seed),
        "command_line": command,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def table_sha256(table: pd.DataFrame) -> str:
    """Content hash of a table (order-sensitive), for the run's attrs."""
    import hashlib

    hashed = pd.util.hash_pandas_object(table, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, table.columns)).encode()).hexdigest()


# ---------------------------------------------------------------- summary and gate
def tidy_summary(draws: xr.Dataset, names: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per scalar of each variable: grouping coordinates as columns + SUMMARY_STATS.

    ``draws`` has dims (chain, draw, …). Intervals use the project's single convention.
    """
    import arviz as az

    names = list(draws.data_vars) if names is None else list(names)
    ds = draws[names]
    lo, mid, hi = CI_QUANTILES
    with warnings.catch_warnings():  # all-NaN cells (e.g. a contrast with itself) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        q = ds.quantile([lo, mid, hi], dim=("chain", "draw"))
    stats = {
        "mean": ds.mean(("chain", "draw")), "sd": ds.std(("chain", "draw"), ddof=1),
        "median": q.sel(quantile=mid, drop=True), "ci_low": q.sel(quantile=lo, drop=True),
        "ci_high": q.sel(quantile=hi, drop=True),
    }
    n_draws = ds.sizes["draw"] * ds.sizes["chain"]
    if ds.sizes["chain"] > 1 or n_draws >= 4:
        stats["ess_bulk"] = az.ess(ds, method="bulk")
        stats["ess_tail"] = az.ess(ds, method="tail")
        stats["r_hat"] = az.rhat(ds) if ds.sizes["chain"] > 1 else ds.mean(("chain", "draw")) * np.nan
    rows = []
    for name in names:
        frame = pd.concat({k: v[name].to_series() if v[name].ndim else pd.Series([float(v[name])])
                           for k, v in stats.items()}, axis=1)
        frame = frame.reset_index() if ds[name].ndim - 2 > 0 else frame.reset_index(drop=True)
        frame.insert(0, "quantity", name)
        rows.append(frame)
    out = pd.concat(rows, ignore_index=True)
    lead = ["quantity"] + [c for c in out.columns if c not in SUMMARY_STATS and c != "quantity"]
    return out[lead + [c for c in SUMMARY_STATS if c in out.columns]]


def diagnose(dt: xr.DataTree, var_names: Iterable[str] | None = None) -> dict:
    """R-hat / ESS / divergence figures and the pass-fail verdict against GATE, with reasons."""
    import arviz as az

    post = dt["posterior"].to_dataset()
    post = post[list(var_names)] if var_names is not None else post
    rhat = float(az.rhat(post).to_array().max())
    ess_b = float(az.ess(post, method="bulk").to_array().min())
    ess_t = float(az.ess(post, method="tail").to_array().min())
    div = 0
    if "sample_stats" in dt.children and "diverging" in dt["sample_stats"]:
        div = int(dt["sample_stats"]["diverging"].sum())
    failed = []
    if not rhat <= GATE["r_hat_max"]:
        failed.append(f"R-hat {rhat:.3f} > {GATE['r_hat_max']}")
    if not ess_b >= GATE["ess_bulk_min"]:
        failed.append(f"bulk ESS {ess_b:.0f} < {GATE['ess_bulk_min']}")
    if not ess_t >= GATE["ess_tail_min"]:
        failed.append(f"tail ESS {ess_t:.0f} < {GATE['ess_tail_min']}")
    if div > GATE["divergences"]:
        failed.append(f"{div} divergent transitions")
    return {"r_hat_max": rhat, "ess_bulk_min": ess_b, "ess_tail_min": ess_t, "divergences": div,
            "gate": GATE, "verdict": "fail" if failed else "pass", "failed": failed}


def gate_exit(diag: dict, allow_unconverged: bool, advice: str) -> int:
    """Print the verdict; exit 3 on failure unless allowed."""
    if diag["verdict"] == "pass":
        progress(f"diagnostics: pass (R-hat ≤ {diag['r_hat_max']:.3f}, "
                 f"ESS bulk ≥ {diag['ess_bulk_min']:.0f}, tail ≥ {diag['ess_tail_min']:.0f}, "
                 f"{diag['divergences']} divergences)")
        return EXIT_OK
    progress("diagnostics: FAIL — " + "; ".join(diag["failed"]) + f". Try: {advice}")
    return EXIT_OK if allow_unconverged else EXIT_GATE
