"""Global GPP / soil-respiration consistency (Jian et al. 2022): resampling, Bayesian, RF upscaling.

    python -m inference.budget [--dataset jian2022 | --data FOLDER] [--variant NAME ...]
        [--sd-fill max-cv|median-cv|ignore|zero] [--n-draws 10000] [--bayes/--no-bayes]
        [--rf/--no-rf] [--rf-records monthly|annual] [--rf-trees 200]
        [--chains 2 --draws 2000 --tune 1000 --target-accept 0.9] [--out DIR] [--overwrite] [--seed N]

Writes to the run folder:
- ``budget_summary.csv``: ``quantity`` (GPP_direct, GPP_implied, RS_direct, RS_implied, p_agree_GPP,
  p_agree_RS, RS_rf_global, and differences, overlaps, variance shares, Bayesian posteriors, the
  forest's skill: rf_oob_r2 and, for monthly records, rf_cv_r2_spatial / rf_cv_rmse_spatial
  (g C m⁻² d⁻¹, leave-site-cluster-out), for annual ones rf_cv_r2_by_study),
  ``variant``, ``method`` (resampling | bayes | rf), ``term``, ``median``, ``ci_low``, ``ci_high``,
  ``mean``, ``sd``, ``published``, ``published_low``, ``published_high``;
- ``budget_comparison.csv``: reproduced vs published numbers for every variant;
- ``budget_draws.nc``: draws for figures (groups ``resampling`` variant × draw, ``bayes`` flattened
  posterior draws, ``rf`` per-tree global totals and ``rf_map`` the upscaled map);
- with ``--bayes``: ``budget_posterior.nc`` (ArviZ DataTree with provenance attrs) and
  ``diagnostics.json``; exit code 3 when the convergence gate fails.

The same run from Python: ``tpflux.budget(...)``; at the same seed both give identical tables and
draws.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from inference import runio
from models.conventions import CI_LABEL

JOB = "budget"
CONTRACT = ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied", "p_agree_GPP", "p_agree_RS",
            "RS_rf_global")


def parser() -> argparse.ArgumentParser:
    from data.jian2022 import RATIO_SOURCES
    from models.budget import (DEFAULT_GPP_SET, DEFAULT_RATIO_SOURCE, DEFAULT_VARIANT, GPP_SETS,
                               N_DRAWS, SAMPLE_SIZE, SD_FILLS, VARIANTS)
    from tpflux.carbon_budget import BAYES_DRAWS, DATASETS, RF_RECORDS, SAMPLERS, TARGET_ACCEPT

    p = runio.base_parser(JOB, __doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=DATASETS[0], choices=DATASETS,
                     help="registered dataset with the GlobalC tables")
    src.add_argument("--data", type=Path, default=None,
                     help="folder with the GlobalC tables (GlobalRs.csv, GlobalGPP_Sum.csv, …)")
    p.add_argument("--variant", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                   metavar="NAME",
                   help=f"variants to run, the first is the headline ({DEFAULT_VARIANT} = published "
                        f"Fig. 1); choices: " + "; ".join(f"{k}: {v.description}"
                                                          for k, v in VARIANTS.items()))
    p.add_argument("--sd-fill", default="max-cv", choices=SD_FILLS,
                   help="missing SDs of literature estimates: max-cv (published 'method 3'), "
                        "median-cv, zero, or ignore SDs")
    p.add_argument("--n-draws", type=int, default=N_DRAWS, help="resampling draws")
    p.add_argument("--sample-size", type=int, default=SAMPLE_SIZE,
                   help="values averaged per draw")
    p.add_argument("--gpp-set", default=DEFAULT_GPP_SET, choices=GPP_SETS,
                   help="literature GPP estimates taken as direct GPP (non-model: as the R code)")
    p.add_argument("--ratio-source", default=DEFAULT_RATIO_SOURCE, choices=list(RATIO_SOURCES),
                   help="Froot and Ra:GPP records: the literature tables alone, or those plus the "
                        "SRDB-derived records (as cal_Froot / prep_RaGpp of the R code)")
    p.add_argument("--area-shares", type=Path, default=None,
                   help="CSV IGBP_group,share overriding the land-area shares of the ecosystem groups "
                        "(default: computed from the dataset's IGBP.txt as the R code does)")
    p.add_argument("--bayes", action=argparse.BooleanOptionalAction, default=True,
                   help="also fit the Bayesian pooling model")
    p.add_argument("--rf", action=argparse.BooleanOptionalAction, default=True,
                   help="also upscale soil respiration with a random forest (see --rf-records)")
    p.add_argument("--rf-trees", type=int, default=200, help="trees of the random forest")
    p.add_argument("--rf-records", default=RF_RECORDS[0], choices=RF_RECORDS,
                   help="records the forest learns: monthly MGRsD (as the study; about a minute at "
                        "200 trees) or annual SRDB-V5")
    runio.add_sampling_args(p, chains=2, draws=BAYES_DRAWS, tune=1000)
    p.add_argument("--sampler", default="auto", choices=SAMPLERS,
                   help="NUTS implementation (auto: nutpie when installed)")
    p.add_argument("--target-accept", type=float, default=TARGET_ACCEPT,
                   help="NUTS target acceptance rate of the Bayesian model (higher: smaller steps, "
                        "fewer divergent transitions)")
    return p


# ---------------------------------------------------------------- steps
SUMMARY_COLUMNS = ("quantity", "variant", "method", "term", "median", "ci_low", "ci_high", "mean",
                   "sd", "published", "published_low", "published_high")


def sampler_name(choice: str) -> str:
    """``auto``: nutpie when installed, else PyMC's own NUTS."""
    if choice != "auto":
        return choice
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return "pymc"
    return "nutpie"


def run_bayes(inputs, config, *, chains: int, draws: int, tune: int, seed: int,
              sampler: str = "auto", target_accept: float = 0.9
              ) -> tuple[xr.DataTree, pd.DataFrame, dict]:
    """NUTS on the Bayesian pooling model: the DataTree, its summary rows and the groups the model
    was built with (method and ratio groups) for the run record."""
    import pymc as pm

    from models.budget import bayes_data, build_bayes_model, summarise_bayes

    model = build_bayes_model(inputs, config)
    with model:
        dt = pm.sample(draws=draws, tune=tune, chains=chains, cores=min(chains, os.cpu_count() or 1),
                       random_seed=seed, nuts_sampler=sampler_name(sampler),
                       target_accept=target_accept, progressbar=False)
    data = bayes_data(inputs, config)
    record = {"model": "budget pooling", "gpp_method_groups": data["gpp_levels"],
              "rs_method_groups": data["rs_levels"],
              "ratio_groups": {r: data[r]["levels"] for r in ("RC", "Froot", "RaGPP")}}
    return dt, pd.DataFrame(summarise_bayes(dt["posterior"].to_dataset())), record


def bayes_draws(dt: xr.DataTree) -> xr.Dataset:
    """The four fluxes' posterior draws, flattened (the ``bayes`` group of budget_draws.nc)."""
    post = dt["posterior"].to_dataset()
    return xr.Dataset({k: ("sample", post[k].values.reshape(-1))
                       for k in ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied")})


MGRSD_FILE = "MGRsD.csv.gz"
MGRSD_COLUMNS = ("Site_ID", "Study_number", "Meas_Month", "Meas_DOY", "Rs_Norm")


def rf_records(folder: Path, records: str, grid, say=runio.progress):
    """The records the forest learns from, with the grid covariates, and those left out (reason →
    count): "monthly" MGRsD records (placed by their SRDB site coordinates), or "annual" SRDB-V5."""
    from data.jian2022 import FILES, read_srdb, read_table
    from data.rc_grid import attach_covariates, srdb_rs_sites
    from models.rs_upscaling import monthly_rs_records

    srdb = read_srdb(Path(folder) / FILES["srdb"])
    if records == "monthly":
        from data.registry import dataset_folder

        path = dataset_folder("mgrsd") / MGRSD_FILE
        mgrsd = read_table(path, MGRSD_COLUMNS, numeric=("Meas_Month", "Meas_DOY", "Rs_Norm"))
        sites, dropped = monthly_rs_records(mgrsd, srdb)
    else:
        sites, dropped = srdb_rs_sites(srdb)
    sites, no_cell = attach_covariates(sites, grid)
    if no_cell:
        dropped["no land cell within 1 grid cell"] = no_cell
    return sites, dropped


def run_rf(folder: Path, *, n_trees: int, seed: int, records: str = "monthly", say=runio.progress):
    """Random-forest upscaling of soil respiration (monthly MGRsD or annual SRDB records): the
    result, the records left out (reason → count) and the upscaled annual map."""
    from data.rc_grid import GRID_COVARIATES, land_cells, read_rc_grid
    from models.rs_upscaling import upscale_monthly_rs, upscale_rs

    grid = read_rc_grid()
    cells = land_cells(grid)
    sites, dropped = rf_records(folder, records, grid, say)
    say(f"random forest: {len(sites)} {records} RS records, {len(cells)} land cells, {n_trees} trees")
    upscale = upscale_monthly_rs if records == "monthly" else upscale_rs
    result = upscale(sites, cells, tuple(GRID_COVARIATES), n_trees=n_trees, seed=seed)
    rf_map = np.full((grid.sizes["lat"], grid.sizes["lon"]), np.nan, dtype=np.float32)
    i = np.searchsorted(grid["lat"].values, cells["lat"].to_numpy())
    j = np.searchsorted(grid["lon"].values, cells["lon"].to_numpy())
    rf_map[i, j] = result.cell_rs
    map_ds = xr.Dataset({"rs_annual": (("lat", "lon"), rf_map, {"units": "g C m-2 yr-1"})},
                        coords={"lat": grid["lat"], "lon": grid["lon"]})
    return result, dropped, map_ds


def rf_rows(rf) -> pd.DataFrame:
    """Summary rows of the random-forest part: the global total, skill, sizes, importances."""
    lo, _, hi = rf.interval
    blank = {"variant": "", "method": "rf", "term": ""}
    cv = (("rf_cv_r2_by_study", rf.cv_r2),) if rf.cv_scheme == "study" else (
        ("rf_cv_r2_spatial", rf.cv_r2), ("rf_cv_rmse_spatial", rf.cv_rmse))
    return pd.DataFrame([
        {"quantity": "RS_rf_global", **blank, "median": rf.total, "ci_low": lo, "ci_high": hi,
         "mean": float(rf.tree_totals.mean()), "sd": float(rf.tree_totals.std(ddof=1))},
        *({"quantity": q, **blank, "median": v}
          for q, v in (("rf_oob_r2", rf.oob_r2), *cv,
                       ("rf_n_records", rf.n_records), ("rf_n_studies", rf.n_studies),
                       ("rf_n_sites", rf.n_sites), ("rf_land_area_Mkm2", rf.land_area_m2 / 1e12))),
        *({"quantity": "rf_importance", **blank, "term": k, "median": v}
          for k, v in rf.importance.items()),
    ])


def summary_table(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """``budget_summary.csv``: every part's rows with the published numbers beside them."""
    from models.budget import PUBLISHED

    pub = pd.DataFrame([(q, *v) for q, v in PUBLISHED.items()],
                       columns=["quantity", "published", "published_low", "published_high"])
    summary = pd.concat(parts, ignore_index=True).merge(pub, on="quantity", how="left")
    return summary[list(SUMMARY_COLUMNS)]


def comparison_table(summary: pd.DataFrame, variants) -> pd.DataFrame:
    """``budget_comparison.csv``: reproduced vs published numbers per variant (and Bayesian)."""
    from models.budget import comparison_table as one_variant

    comparison = pd.concat([one_variant(summary, v) for v in variants], ignore_index=True)
    bayes = summary[(summary["method"] == "bayes") & summary["quantity"].isin(CONTRACT)]
    if bayes.empty:
        return comparison
    return pd.concat([comparison, bayes.assign(
        variant="bayes", rel_diff_median=bayes["median"] / bayes["published"] - 1
    )[comparison.columns]], ignore_index=True)


def result_text(summary: pd.DataFrame, comparison: pd.DataFrame, headline: str) -> str:
    """The printed result: the headline variant's contract rows (with RF and Bayesian ones), then
    reproduced vs published numbers for every variant."""
    def fmt(x):
        return "" if pd.isna(x) else f"{x:.4f}" if abs(x) < 1 else f"{x:.1f}"

    head = summary[summary["quantity"].isin(CONTRACT)
                   & (((summary["variant"] == headline) & (summary["method"] == "resampling"))
                      | (summary["method"] == "rf"))]
    bayes = summary[(summary["method"] == "bayes") & summary["quantity"].isin(CONTRACT)]
    table = pd.concat([head, bayes])[["quantity", "method", "median", "ci_low", "ci_high", "published"]]
    wide = comparison.pivot(index="quantity", columns="variant", values="median")
    wide["published"] = comparison.groupby("quantity")["published"].first()
    order = [q for q in CONTRACT if q in wide.index]
    return "\n".join([
        f"Global carbon-budget consistency — headline variant '{headline}' ({CI_LABEL})",
        table.to_string(index=False, formatters={c: fmt for c in ("median", "ci_low", "ci_high",
                                                                  "published")}),
        "\nReproduced vs published (Jian et al. 2022), all variants:",
        wide.loc[order].to_string(float_format=fmt)])


# ---------------------------------------------------------------- entry point
@runio.cli
def main(argv: list[str] | None = None) -> int:
    return runio.run_job(JOB, parser(), argv, run, need_bytes=output_bytes)


def output_bytes(args) -> int:
    """The expected size of the run folder, for the free-space check before any work."""
    from models.budget import output_bytes as estimate

    return estimate(args.n_draws, len(args.variant), chains=args.chains if args.bayes else 0,
                    draws=args.draws, rf=args.rf)


def run(args, argv):
    from tpflux.carbon_budget import budget

    return budget(args.data, dataset=args.dataset, variants=args.variant, sd_fill=args.sd_fill,
                  n_draws=args.n_draws, sample_size=args.sample_size, gpp_set=args.gpp_set,
                  ratio_source=args.ratio_source, area_shares=args.area_shares, bayes=args.bayes,
                  rf=args.rf, rf_trees=args.rf_trees, rf_records=args.rf_records,
                  chains=args.chains, draws=args.draws, tune=args.tune, sampler=args.sampler,
                  target_accept=args.target_accept, seed=args.seed, command_line=argv)


if __name__ == "__main__":
    sys.exit(main())
