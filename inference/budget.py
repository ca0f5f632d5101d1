"""Global GPP / soil-respiration consistency (Jian et al. 2022): resampling, Bayesian, RF upscaling.

    python -m inference.budget [--dataset jian2022 | --data FOLDER] [--variant NAME ...]
        [--sd-fill max-cv|median-cv|ignore|zero] [--n-draws 10000] [--bayes/--no-bayes]
        [--rf/--no-rf] [--out DIR] [--seed N]

Writes to the run folder:
- ``budget_summary.csv``: ``quantity`` (GPP_direct, GPP_implied, RS_direct, RS_implied, p_agree_GPP,
  p_agree_RS, RS_rf_global, and differences, overlaps, variance shares, Bayesian posteriors),
  ``variant``, ``method`` (resampling | bayes | rf), ``term``, ``median``, ``ci_low``, ``ci_high``,
  ``mean``, ``sd``, ``published``, ``published_low``, ``published_high``;
- ``budget_comparison.csv``: reproduced vs published numbers for every variant;
- ``budget_draws.nc``: draws for figures (groups ``resampling`` variant × draw, ``bayes`` flattened
  posterior draws, ``rf`` per-tree global totals and ``rf_map`` the upscaled map);
- with ``--bayes``: ``budget_posterior.nc`` (ArviZ DataTree with provenance attrs) and
  ``diagnostics.json``; exit code 3 when the convergence gate fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data.errors import DataError
from inference import runio
from models.conventions import CI_LABEL

JOB = "budget"
CONTRACT = ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied", "p_agree_GPP", "p_agree_RS",
            "RS_rf_global")


def parser() -> argparse.ArgumentParser:
    from data.jian2022 import RATIO_SOURCES
    from models.budget import DEFAULT_VARIANT, GPP_SETS, N_DRAWS, SAMPLE_SIZE, SD_FILLS, VARIANTS

    p = runio.base_parser(JOB, __doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default="jian2022", choices=["jian2022"],
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
    p.add_argument("--gpp-set", default="remote-sensing", choices=GPP_SETS,
                   help="literature GPP estimates taken as direct GPP")
    p.add_argument("--ratio-source", default="literature", choices=list(RATIO_SOURCES),
                   help="Froot and Ra:GPP records: the literature tables (reproduces the published "
                        "numbers) or those plus SRDB-derived records (an earlier GlobalC version)")
    p.add_argument("--area-shares", type=Path, default=None,
                   help="CSV IGBP_group,share overriding the land-area shares of the ecosystem groups")
    p.add_argument("--bayes", action=argparse.BooleanOptionalAction, default=True,
                   help="also fit the Bayesian pooling model")
    p.add_argument("--rf", action=argparse.BooleanOptionalAction, default=True,
                   help="also upscale SRDB annual soil respiration with a random forest")
    p.add_argument("--rf-trees", type=int, default=200, help="trees of the random forest")
    runio.add_sampling_args(p, chains=2, draws=1000, tune=1000)
    p.add_argument("--sampler", default="auto", choices=["auto", "nutpie", "pymc"],
                   help="NUTS implementation (auto: nutpie when installed)")
    return p


def _published_columns(summary: pd.DataFrame) -> pd.DataFrame:
    from models.budget import PUBLISHED

    pub = pd.DataFrame([(q, *v) for q, v in PUBLISHED.items()],
                       columns=["quantity", "published", "published_low", "published_high"])
    return summary.merge(pub, on="quantity", how="left")


def _sampler(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return "pymc"
    return "nutpie"


def run_bayes(inputs, config, args, seed: int, argv) -> tuple[xr.DataTree, dict, list[dict]]:
    import pymc as pm

    from models.budget import bayes_data, build_bayes_model, summarise_bayes

    model = build_bayes_model(inputs, config)
    runio.progress(f"Bayesian pooling model: {args.chains} chains × ({args.tune} tune + "
                   f"{args.draws} draws)")
    with model:
        dt = pm.sample(draws=args.draws, tune=args.tune, chains=args.chains,
                       cores=min(args.chains, os.cpu_count() or 1), random_seed=seed,
                       nuts_sampler=_sampler(args.sampler), target_accept=0.9, progressbar=False)
    data = bayes_data(inputs, config)
    model_config = {"model": "budget pooling", "gpp_method_groups": data["gpp_levels"],
                    "rs_method_groups": data["rs_levels"], "area_shares": inputs.area_shares,
                    "ratio_groups": {r: data[r]["levels"] for r in ("RC", "Froot", "RaGPP")},
                    "chains": args.chains, "draws": args.draws, "tune": args.tune}
    dt.attrs.update(runio.provenance(model_config, inputs.sha256, seed, argv))
    diag = runio.diagnose(dt)
    rows = summarise_bayes(dt["posterior"].to_dataset())
    return dt, diag, rows


def run_rf(args, seed: int):
    from data.jian2022 import FILES, read_srdb
    from data.rc_grid import GRID_COVARIATES, attach_covariates, land_cells, read_rc_grid, srdb_rs_sites
    from data.registry import dataset_folder
    from models.rs_upscaling import upscale_rs

    folder = args.data if args.data is not None else dataset_folder(args.dataset)
    grid = read_rc_grid()
    cells = land_cells(grid)
    sites, dropped = srdb_rs_sites(read_srdb(Path(folder) / FILES["srdb"]))
    sites, no_cell = attach_covariates(sites, grid)
    if no_cell:
        dropped["no land cell within 1 grid cell"] = no_cell
    runio.progress(f"random forest: {len(sites)} SRDB annual RS records, {len(cells)} land cells, "
                   f"{args.rf_trees} trees")
    result = upscale_rs(sites, cells, tuple(GRID_COVARIATES), n_trees=args.rf_trees, seed=seed)
    rf_map = np.full((grid.sizes["lat"], grid.sizes["lon"]), np.nan, dtype=np.float32)
    i = np.searchsorted(grid["lat"].values, cells["lat"].to_numpy())
    j = np.searchsorted(grid["lon"].values, cells["lon"].to_numpy())
    rf_map[i, j] = result.cell_rs
    map_ds = xr.Dataset({"rs_annual": (("lat", "lon"), rf_map, {"units": "g C m-2 yr-1"})},
                        coords={"lat": grid["lat"], "lon": grid["lon"]})
    return result, dropped, map_ds


def _print_tables(summary: pd.DataFrame, comparison: pd.DataFrame, headline: str) -> None:
    fmt = lambda x: "" if pd.isna(x) else f"{x:.4f}" if abs(x) < 1 else f"{x:.1f}"  # noqa: E731
    print(f"\nGlobal carbon-budget consistency — headline variant '{headline}' ({CI_LABEL})")
    head = summary[summary["quantity"].isin(CONTRACT)
                   & (((summary["variant"] == headline) & (summary["method"] == "resampling"))
                      | (summary["method"] == "rf"))]
    bayes = summary[(summary["method"] == "bayes") & summary["quantity"].isin(CONTRACT)]
    table = pd.concat([head, bayes])[["quantity", "method", "median", "ci_low", "ci_high", "published"]]
    print(table.to_string(index=False, formatters={c: fmt for c in ("median", "ci_low", "ci_high",
                                                                    "published")}))
    print("\nReproduced vs published (Jian et al. 2022), all variants:")
    wide = comparison.pivot(index="quantity", columns="variant", values="median")
    wide["published"] = comparison.groupby("quantity")["published"].first()
    order = [q for q in CONTRACT if q in wide.index]
    print(wide.loc[order].to_string(float_format=lambda x: f"{x:.4f}" if abs(x) < 1 else f"{x:.1f}"))


@runio.cli
def main(argv: list[str] | None = None) -> int:
    from data.jian2022 import load_budget_inputs, read_area_shares
    from models.budget import BudgetConfig, comparison_table, run_resampling

    args = parser().parse_args(argv)
    if args.n_draws < 10 or args.sample_size < 1 or args.rf_trees < 1 or args.rf_trees > 1000:
        raise DataError(None, None, None, "--n-draws must be ≥ 10, --sample-size ≥ 1, "
                        "--rf-trees in 1…1000", "use the published settings (10000 draws of 10)")
    folder = args.data
    shares = read_area_shares(args.area_shares) if args.area_shares is not None else None
    inputs = load_budget_inputs(folder, ratio_source=args.ratio_source, area_shares=shares)
    config = BudgetConfig(n_draws=args.n_draws, sample_size=args.sample_size, sd_fill=args.sd_fill,
                          gpp_set=args.gpp_set, variants=tuple(dict.fromkeys(args.variant)))
    headline = config.variants[0]
    out = runio.out_dir(JOB, args.out)

    runio.progress(f"resampling {len(config.variants)} variant(s) × {config.n_draws} draws")
    result = run_resampling(inputs, config, seed=args.seed)
    rows = [result.summary]
    groups: dict[str, xr.Dataset] = {"resampling": result.draws}

    dt, diag = None, None
    if args.bayes:
        dt, diag, bayes_rows = run_bayes(inputs, config, args, args.seed, argv)
        rows.append(pd.DataFrame(bayes_rows))
        post = dt["posterior"].to_dataset()
        flat = {k: ("sample", post[k].values.reshape(-1)) for k in
                ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied")}
        groups["bayes"] = xr.Dataset(flat)

    rf_note = {}
    if args.rf:
        rf, dropped, rf_map = run_rf(args, args.seed)
        lo, mid, hi = rf.interval
        rows.append(pd.DataFrame([
            {"quantity": "RS_rf_global", "variant": "", "method": "rf", "term": "", "median": rf.total,
             "ci_low": lo, "ci_high": hi, "mean": float(rf.tree_totals.mean()),
             "sd": float(rf.tree_totals.std(ddof=1))},
            *({"quantity": q, "variant": "", "method": "rf", "term": "", "median": v}
              for q, v in (("rf_oob_r2", rf.oob_r2), ("rf_cv_r2_by_study", rf.cv_r2),
                           ("rf_n_records", rf.n_records), ("rf_n_studies", rf.n_studies),
                           ("rf_land_area_Mkm2", rf.land_area_m2 / 1e12))),
            *({"quantity": "rf_importance", "variant": "", "method": "rf", "term": k, "median": v}
              for k, v in rf.importance.items()),
        ]))
        groups["rf"] = xr.Dataset({"tree_total": ("tree", rf.tree_totals, {"units": "Pg C yr-1"})})
        groups["rf_map"] = rf_map
        rf_note = {"dropped": dropped, "n_records": rf.n_records}

    summary = _published_columns(pd.concat(rows, ignore_index=True))
    cols = ["quantity", "variant", "method", "term", "median", "ci_low", "ci_high", "mean", "sd",
            "published", "published_low", "published_high"]
    summary = summary[cols]
    comparison = pd.concat([comparison_table(summary, v) for v in config.variants], ignore_index=True)
    bayes_cmp = summary[(summary["method"] == "bayes") & summary["quantity"].isin(CONTRACT)]
    if not bayes_cmp.empty:
        comparison = pd.concat([comparison, bayes_cmp.assign(
            variant="bayes", rel_diff_median=bayes_cmp["median"] / bayes_cmp["published"] - 1
        )[comparison.columns]], ignore_index=True)

    config_record = {"variants": list(config.variants), "headline": headline,
                     "sd_fill": config.sd_fill, "n_draws": config.n_draws,
                     "sample_size": config.sample_size, "gpp_set": config.gpp_set,
                     "min_pub_year": config.min_pub_year, "ratio_source": args.ratio_source,
                     "area_shares": inputs.area_shares, "rf": rf_note, "bayes": bool(args.bayes)}
    tree = xr.DataTree.from_dict({"/": xr.Dataset(), **{f"/{k}": v for k, v in groups.items()}})
    tree.attrs.update(runio.provenance(config_record, inputs.sha256, args.seed, argv))
    runio.write_csv(out / "budget_summary.csv", summary)
    runio.write_csv(out / "budget_comparison.csv", comparison)
    runio.write_datatree(out / "budget_draws.nc", tree)
    code = runio.EXIT_OK
    if dt is not None:
        runio.write_datatree(out / "budget_posterior.nc", dt)
        runio.write_json(out / "diagnostics.json", diag)
        code = runio.gate_exit(diag, args.allow_unconverged,
                               "more --tune/--draws, or --chains 4")
    _print_tables(summary, comparison, headline)
    runio.progress(f"wrote {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
