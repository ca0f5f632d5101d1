"""What every entry point shares: arguments, run folder, atomic writes, provenance, summary, gate.

Exit codes (DESIGN.md): 0 success; 2 bad input (one line on stderr, nothing written);
3 diagnostics gate failed (outputs kept, verdict recorded).
"""

from __future__ import annotations

# ArviZ first, from a shallow stack with few modules loaded: its optional back ends (jax, numpyro)
# are looked up with inspect.stack(), whose cost grows with the stack and with sys.modules (0.35 s
# when nutpie imports it mid-run, 0.05 s here).
import arviz_base  # noqa: F401

import argparse
import contextlib
import datetime as _dt
import importlib.metadata
import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from data.storage import RunFolder, as_saved, new_run_id, run_lock, check_out_dir, dumps, write_csv, write_datatree, write_json, write_text
from models.conventions import (DEFAULT_SEED, EXIT_BAD_INPUT, EXIT_GATE, EXIT_OK, GATE, SUMMARY_STATS, cli,
                                progress)
from models.summary import diagnose, gate_failures, mean_tree_depth
from models.summary import posterior_summary as tidy_summary

__all__ = ["RunFolder", "as_saved", "check_out_dir", "write_csv", "write_datatree", "write_json", "write_text",
           "EXIT_OK", "EXIT_BAD_INPUT", "EXIT_GATE", "GATE", "SUMMARY_STATS", "cli", "diagnose", "gate_failures",
           "mean_tree_depth", "progress", "tidy_summary"]

# Expected size of a run folder per job (bytes), checked against the free disk space before any
# work; a job whose outputs grow with its options passes its own estimate to ``run_job``.
OUTPUT_BYTES = {"fit_ea": 20_000_000, "fit_rr": 5_000_000, "project": 50_000_000,
                "budget": 10_000_000, "compare_seasons": 50_000_000,
                "compare_covariate": 50_000_000}
DEFAULT_OUTPUT_BYTES = 20_000_000

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


@contextlib.contextmanager
def output_folder(job: str, out: Path | None, overwrite: bool = False, need_bytes: int | None = None):
    """The run folder of a command-line job, checked before any work (an existing file, an
    unwritable place, a previous run without ``--overwrite``, a disk without room for
    ``need_bytes``, default the job's ``OUTPUT_BYTES``) and locked against a second writer until
    the job has saved."""
    if need_bytes is None:
        need_bytes = OUTPUT_BYTES.get(job, DEFAULT_OUTPUT_BYTES)
    path = check_out_dir(out_dir(job, out), overwrite=overwrite, need_bytes=need_bytes)
    with run_lock(path):
        yield path


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
    command = (shlex.join(["python", "-m", f"inference.{job}", *argv]) if argv is not None
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
def gate_exit(diag: dict, allow_unconverged: bool, advice: str) -> int:
    """Print the verdict; exit 3 on failure unless allowed."""
    if diag["verdict"] == "pass":
        progress(f"diagnostics: pass (R-hat ≤ {diag['r_hat_max']:.3f}, "
                 f"ESS bulk ≥ {diag['ess_bulk_min']:.0f}, tail ≥ {diag['ess_tail_min']:.0f}, "
                 f"{diag['divergences']} divergences)")
        return EXIT_OK
    progress("diagnostics: FAIL — " + "; ".join(diag["failed"]) + f". Try: {advice}")
    return EXIT_OK if allow_unconverged else EXIT_GATE


def run_job(job: str, parser: argparse.ArgumentParser, argv: list[str] | None, call,
            need_bytes=None) -> int:
    """What every entry point does: parse, check and lock ``--out`` before any work, call the
    API (``call(args, argv)`` returns a result object), save the run as a whole, print its
    result, and map the gate verdict to the exit code. ``need_bytes``: the expected size of the
    outputs, a number or a function of the parsed arguments (default the job's ``OUTPUT_BYTES``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    need = need_bytes(args) if callable(need_bytes) else need_bytes
    with output_folder(job, args.out, args.overwrite, need) as out:
        result = call(args, argv)
        result.save(out, overwrite=args.overwrite)
    print(result.result_text())
    progress(f"wrote {out}/: " + ", ".join(result.files))
    if not result.diagnostics or "verdict" not in result.diagnostics:
        return EXIT_OK
    return gate_exit(result.diagnostics, getattr(args, "allow_unconverged", False),
                     result.gate_advice())
