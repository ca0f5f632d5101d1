"""tpflux's budget variants side by side with the authors' R code (PNNL-TES/GlobalC @9d43778d).

    .venv/bin/python -m benchmarks.globalc_reference [--csv benchmarks/globalc_reference.csv]
        [--rerun-r] [--seed 20190827] [--run BUDGET_RUN_DIR]

The R side is ``benchmarks/globalc_reference.R`` run on the same input files: read from ``--csv``
when that file exists, else produced by ``Rscript`` when R is installed (``--rerun-r`` forces it),
else left out with a message. The tpflux side is ``tpflux.budget`` with its defaults (resampling
only) at the same seed. Each variant is compared with its ``Variant.r_counterpart``: medians within
2 %, interval bounds within 5 % (relative), agreement probabilities within 0.01 (absolute).
The two sides use different random streams (numpy vs R's Mersenne-Twister), so they agree as two
Monte Carlo runs of 10,000 draws do, not draw for draw: one run's agreement probability has a Monte
Carlo SD of 0.008–0.015 in the resampled variants, so single-seed differences up to ≈ 0.02 are
noise; tests/test_budget.py holds 5-seed means of the R script (R_PROBABILITIES) for that reason.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
R_SCRIPT = ROOT / "benchmarks" / "globalc_reference.R"
R_CSV = ROOT / "benchmarks" / "globalc_reference.csv"
R_SEED = 20190827   # set.seed of Topdown_GlobalRs.Rmd

FLUXES = ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied")
PROBABILITIES = ("p_agree_GPP", "p_agree_RS", "overlap_GPP_direct_share",
                 "overlap_GPP_implied_share", "overlap_RS_direct_share", "overlap_RS_implied_share")
# (statistic, kind, tolerance): "rel" |tpflux / R − 1|, "abs" |tpflux − R| (the criteria).
TOLERANCES = {"median": ("rel", 0.02), "ci_low": ("rel", 0.05), "ci_high": ("rel", 0.05),
              "probability": ("abs", 0.01)}


def run_r(csv: Path, data_folder: Path, seed: int = R_SEED) -> pd.DataFrame | None:
    """Run the R reference (None, with a message, when Rscript is not installed)."""
    if shutil.which("Rscript") is None:
        print("Rscript not found: the R side is left out (install R with dplyr, tidyr, tibble).")
        return None
    subprocess.run(["Rscript", str(R_SCRIPT), str(data_folder), str(csv), str(seed)], check=True,
                   cwd=ROOT, capture_output=True, text=True)
    return pd.read_csv(csv)


def r_reference(csv: Path = R_CSV, *, rerun: bool = False, data_folder: Path | None = None,
                seed: int = R_SEED) -> pd.DataFrame | None:
    """The R numbers: the CSV when present (and not ``rerun``), else a fresh Rscript run."""
    if csv.exists() and not rerun:
        return pd.read_csv(csv)
    if data_folder is None:
        from data.registry import dataset_folder

        data_folder = dataset_folder("jian2022")
    return run_r(csv, data_folder, seed)


def tpflux_summary(seed: int = R_SEED) -> pd.DataFrame:
    """tpflux's resampling summary, every variant, defaults otherwise."""
    from models.budget import VARIANTS
    from tpflux.carbon_budget import budget

    return budget(variants=tuple(VARIANTS), bayes=False, rf=False, seed=seed, progress=False).table


def _value(table: pd.DataFrame, variant_col: str, variant: str, quantity: str, stat: str):
    row = table[(table[variant_col] == variant) & (table["quantity"] == quantity)]
    return float(row.iloc[0][stat]) if len(row) else float("nan")


def side_by_side(tp: pd.DataFrame, r: pd.DataFrame | None) -> pd.DataFrame:
    """One row per variant × quantity × statistic: tpflux, R, difference, tolerance, within."""
    from models.budget import VARIANTS

    rows = []
    for name, variant in VARIANTS.items():
        cases = [(q, s) for q in FLUXES for s in ("median", "ci_low", "ci_high")]
        cases += [(q, "median") for q in PROBABILITIES]
        for quantity, stat in cases:
            ours = _value(tp, "variant", name, quantity, stat)
            theirs = (_value(r, "r_variant", variant.r_counterpart, quantity, stat)
                      if r is not None and variant.r_counterpart else float("nan"))
            kind, tol = TOLERANCES["probability" if quantity in PROBABILITIES else stat]
            diff = ours / theirs - 1 if kind == "rel" else ours - theirs
            rows.append({"variant": name, "r_variant": variant.r_counterpart or "",
                         "quantity": quantity, "stat": stat if quantity in FLUXES else "",
                         "tpflux": ours, "R": theirs, "diff": diff, "kind": kind,
                         "tolerance": tol, "within": bool(abs(diff) <= tol) if diff == diff else None})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.globalc_reference",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", type=Path, default=R_CSV, help="the R reference CSV (read or written)")
    p.add_argument("--rerun-r", action="store_true", help="run Rscript even when the CSV exists")
    p.add_argument("--seed", type=int, default=R_SEED)
    p.add_argument("--run", type=Path, default=None,
                   help="a budget run folder (all variants): compare its budget_summary.csv and write "
                        "budget_vs_rcode.csv there, which reports.build shows")
    args = p.parse_args(argv)
    r = r_reference(args.csv, rerun=args.rerun_r, seed=args.seed)
    tp = (pd.read_csv(args.run / "budget_summary.csv") if args.run is not None
          else tpflux_summary(args.seed))
    table = side_by_side(tp, r)
    if args.run is not None:
        from reports.build import RCODE_COMPARISON

        table.to_csv(args.run / RCODE_COMPARISON, index=False)
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if r is not None:
        judged = table[table["within"].notna()]
        print(f"\n{int(judged['within'].sum())} of {len(judged)} comparisons within tolerance; "
              "outside: " + (", ".join(f"{v}/{q}/{s}".rstrip("/") for v, q, s in judged.loc[
                  ~judged["within"].astype(bool), ["variant", "quantity", "stat"]].to_numpy())
                  or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
