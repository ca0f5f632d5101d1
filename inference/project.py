"""Project CH4 fluxes under soil warming (+0…+2 °C): random forests × Arrhenius posterior.

    python -m inference.project --posterior RUN/ea_posterior.nc [--dataset NAME | --data PATH |
        --drivers CUBE.nc] [--scenarios 0,0.5,1,1.5,2] [--mode both|rf|arrhenius] [--n-draws N]
        [--scheduler ADDRESS] [--out DIR] [--seed N]

Sites (default: the real FLUXNET-CH4 wetlands + Hongyuan meadow) or a gridded driver cube
(``--drivers CUBE.nc``, or ``--dataset synthetic-grid`` for the simulated Tibetan grid; forests
are then trained on ``--train``). Writes ``projection.nc``, ``projection_summary.csv``,
``forest_skill.csv``, ``forest_importance.csv`` and, for grids, ``projection_maps.nc``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data.errors import DataError
from data.registry import OBSERVATION_DATASETS, load_observations
from data.seasons import SCHEMES
from inference import runio
from models import scenarios as sc
from models.conventions import CI_LABEL
from models.forest import (DRIVERS, IMPORTANCE_COLUMNS, SKILL_COLUMNS, ForestSpec,
                           cross_validated_skill, fit_class_forests, with_flux_class)

SYNTHETIC_GRID = "synthetic-grid"
MODE_CHOICES = {"both": sc.MODES, "rf": ("rf",), "arrhenius": ("arrhenius",)}


def parser():
    p = runio.base_parser("project", __doc__.split("\n\n")[0])
    p.add_argument("--posterior", type=Path, default=None,
                   help="RUN/ea_posterior.nc from inference.fit_ea (needed unless --mode rf)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default="ch4-sites",
                     choices=(*OBSERVATION_DATASETS, SYNTHETIC_GRID),
                     help=f"site dataset to project, or {SYNTHETIC_GRID} (simulated Tibetan grid)")
    src.add_argument("--data", type=Path, default=None,
                     help="your own FLUXNET-CH4 file/folder, COSORE folder or chamber CSV")
    src.add_argument("--drivers", type=Path, default=None,
                     help="daily driver cube (NetCDF, lat × lon × time; ERA5-Land names understood)")
    p.add_argument("--train", default="ch4-sites", choices=OBSERVATION_DATASETS,
                   help="sites the forests learn from when projecting a grid")
    p.add_argument("--scenarios", default="0,0.5,1,1.5,2",
                   help="soil warming ΔT in °C, comma-separated (0 = control, always included)")
    p.add_argument("--mode", default="both", choices=tuple(MODE_CHOICES),
                   help="rf: forest at Ts+ΔT (cannot extrapolate); arrhenius: forest × posterior "
                        "Arrhenius factor; both: side by side")
    p.add_argument("--n-draws", type=int, default=200,
                   help="draws per total (tree d mod n_trees paired with posterior draw d)")
    p.add_argument("--n-trees", type=int, default=200, help="trees per class forest")
    p.add_argument("--min-samples-leaf", type=int, default=5, help="forest leaf size")
    p.add_argument("--n-jobs", type=int, default=2, help="cores used to fit forests")
    p.add_argument("--cv-trees", type=int, default=100,
                   help="trees per forest in the leave-one-site-out skill (0: skip the skill)")
    p.add_argument("--flux-column", default="FCH4", choices=("FCH4", "FCH4_F"),
                   help="FLUXNET-CH4 flux: measured (FCH4) or gap-filled (FCH4_F)")
    p.add_argument("--per-chamber", action=argparse.BooleanOptionalAction, default=True,
                   help="COSORE data: each chamber is a plot (else one daily site mean)")
    p.add_argument("--grid-shape", default="10,16",
                   help=f"lat,lon cells of the {SYNTHETIC_GRID} simulator")
    p.add_argument("--chunk", default="8,8", help="lat,lon cells per dask block of a grid")
    p.add_argument("--scheduler", default=None,
                   help="dask.distributed scheduler ADDRESS (needs tpflux[distributed])")
    return p


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise DataError(None, None, option, f"'{text}' is not a comma-separated list of numbers",
                        f"write e.g. {option} 0,0.5,1,1.5,2") from None
    if not values or not all(np.isfinite(values)):
        raise DataError(None, None, option, f"'{text}' gives no finite values",
                        f"write e.g. {option} 0,0.5,1,1.5,2")
    return values


def _pair(text: str, option: str) -> tuple[int, int]:
    values = _floats(text, option)
    if len(values) != 2 or any(v < 1 or v != int(v) for v in values):
        raise DataError(None, None, option, f"'{text}' is not two whole numbers ≥ 1",
                        f"write e.g. {option} 8,8")
    return int(values[0]), int(values[1])


# ---------------------------------------------------------------- posterior
def read_posterior(path: Path) -> tuple[xr.DataArray, str, dict]:
    """E (chain, draw, flux_class, season), the posterior's season scheme and its run config."""
    if not path.is_file():
        raise DataError(path, None, None, "posterior file not found",
                        "run python -m inference.fit_ea first and pass --posterior RUN/ea_posterior.nc")
    try:
        dt = xr.open_datatree(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise DataError(path, None, None, f"cannot be read as a posterior ({type(exc).__name__})",
                        "pass the ea_posterior.nc written by inference.fit_ea") from None
    if "posterior" not in dt.children or "E" not in dt["posterior"].data_vars:
        raise DataError(path, None, "E", "no posterior group with an activation energy E",
                        "pass the ea_posterior.nc written by inference.fit_ea")
    E = dt["posterior"]["E"].load()
    want = {"chain", "draw", "flux_class", "season"}
    if set(E.dims) != want:
        raise DataError(path, None, "E", f"E has dimensions ({', '.join(map(str, E.dims))}), "
                        f"expected (chain, draw, flux_class, season)",
                        "pass the ea_posterior.nc written by inference.fit_ea")
    config = {}
    raw = dt.attrs.get("tpflux_config")
    if raw is not None:
        try:
            config = json.loads(raw)
        except json.JSONDecodeError:
            raise DataError(path, None, "tpflux_config", "run configuration is not valid JSON",
                            "pass the ea_posterior.nc written by inference.fit_ea") from None
    scheme = config.get("season_scheme")
    if scheme is None:
        from data.seasons import season_labels
        seasons = {str(s) for s in E["season"].values}
        scheme = next((s for s in SCHEMES if seasons <= set(season_labels(s))), None)
    if scheme not in SCHEMES:
        raise DataError(path, None, "season_scheme", f"unknown season scheme {scheme!r}",
                        f"the posterior must come from fit_ea with --seasons {'|'.join(SCHEMES)}")
    dt.close()
    return E, scheme, config


# ---------------------------------------------------------------- run
@runio.cli
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    scenarios = _floats(args.scenarios, "--scenarios")
    chunk = _pair(args.chunk, "--chunk")
    grid_shape = _pair(args.grid_shape, "--grid-shape")
    modes = MODE_CHOICES[args.mode]
    for name in ("n_draws", "n_trees", "min_samples_leaf", "n_jobs"):
        if getattr(args, name) < 1:
            raise DataError(None, None, f"--{name.replace('_', '-')}", "must be ≥ 1",
                            "give a positive whole number")
    if "arrhenius" in modes and args.posterior is None:
        raise DataError(None, None, "--posterior", "the arrhenius mode needs a posterior",
                        "pass --posterior RUN/ea_posterior.nc (from inference.fit_ea) or --mode rf")
    client = _connect(args.scheduler) if args.scheduler else None
    try:
        return _run(args, argv, scenarios, chunk, grid_shape, modes, client)
    finally:
        if client is not None:
            client.close()


def _run(args, argv, scenarios, chunk, grid_shape, modes, client) -> int:
    gridded = args.drivers is not None or args.dataset == SYNTHETIC_GRID

    e_draws, post_config = None, {}
    if "arrhenius" in modes:
        runio.progress(f"reading posterior {args.posterior}")
        E, scheme, post_config = read_posterior(args.posterior)
        e_draws = sc.draw_activation_energies(E, args.n_draws, args.seed, scheme)
        runio.progress(f"E: {E.sizes['chain'] * E.sizes['draw']} posterior draws, classes "
                       f"{', '.join(e_draws.classes)}, {scheme} seasons; using {args.n_draws}")

    cube = None
    if gridded:
        cube = _load_grid(args, grid_shape)
        obs_name, obs_path = args.train, None
    else:
        obs_name, obs_path = (None, args.data) if args.data else (args.dataset, None)
    runio.progress(f"loading training sites: {obs_path or obs_name}")
    obs = load_observations(obs_name, obs_path, flux_column=args.flux_column,
                            per_chamber=args.per_chamber, seed=args.seed)
    table = with_flux_class(obs.table)
    n_zero = len(obs.table) - len(table)

    spec = ForestSpec(n_trees=args.n_trees, min_samples_leaf=args.min_samples_leaf, n_jobs=args.n_jobs)
    drivers = DRIVERS if cube is None else tuple(d for d in DRIVERS if d in cube.data_vars)
    runio.progress(f"fitting forests ({args.n_trees} trees) on {len(table)} site-days, "
                   f"drivers {', '.join(drivers)}")
    forests, no_forest = fit_class_forests(table, spec, drivers, seed=args.seed)
    if not forests:
        raise DataError(obs_path or obs_name, None, "flux",
                        f"no flux class has {spec.min_rows} rows for a forest",
                        "give more site-days of data")
    for f in forests.values():
        runio.progress(f"  {f.flux_class}: {f.n_rows} rows, {len(f.sites)} sites, drivers "
                       f"{', '.join(f.drivers)}; dropped {', '.join(f.dropped) or 'none'}; "
                       f"Ts {f.temp_range[0]:.1f}…{f.temp_range[1]:.1f} °C")
    for cls, why in no_forest.items():
        runio.progress(f"  {cls}: no forest ({why})")

    if args.cv_trees > 0:
        runio.progress(f"leave-one-site-out skill ({args.cv_trees} trees per fold)")
        skill, importance = cross_validated_skill(table, spec, drivers, seed=args.seed,
                                                  n_trees=args.cv_trees)
        for r in skill[skill["held_out"] == "pooled"].itertuples():
            runio.progress(f"  {r.flux_class:<20} {r.cv}: R² {r.r2:.2f}, RMSE {r.rmse:.2f} "
                           f"nmol m-2 s-1, NSE {r.nse:.2f} (n = {r.n})")
    else:
        skill, importance = pd.DataFrame(columns=SKILL_COLUMNS), pd.DataFrame(columns=IMPORTANCE_COLUMNS)

    missing_e = {}
    if e_draws is not None:
        missing_e = sc.missing_activation_energies(e_draws, _seasons_needed(table, forests, e_draws,
                                                                            gridded))
        for cls, why in missing_e.items():
            runio.progress(f"  {cls}: left out of the projection ({why})")
        forests = {c: f for c, f in forests.items() if c not in missing_e}
    engine = sc.Engine(forests, scenarios, modes, args.n_draws, e_draws)
    if not engine.classes:
        raise DataError(args.posterior, None, "flux_class", "no flux class of the data has an E "
                        "in the posterior", "fit the posterior on data with the same flux classes")

    synthetic = bool(obs.synthetic)
    if cube is None:
        runio.progress(f"projecting {table['site'].nunique()} sites × {len(engine.scenarios)} "
                       f"scenarios × {len(modes)} modes × {args.n_draws} draws")
        result = sc.project_sites(engine, table)
        summary = site_summary(result)
        region = None
    else:
        synthetic = synthetic or cube.attrs.get("synthetic") == "true"
        setup = sc.GridSetup(engine, sc.class_shares(table, engine.classes),
                             tuple(e for e in _cube_ecosystems(cube) if e in engine.ecosystems),
                             drivers)
        if not setup.ecosystems:
            raise DataError(cube.attrs.get("source_file"), None, "wetland_fraction",
                            "no ecosystem fraction of the cube matches a trained flux class",
                            f"add fractions for {', '.join(engine.ecosystems)}")
        n_cells = cube.sizes["lat"] * cube.sizes["lon"]
        runio.progress(f"projecting {n_cells} cells × {cube.sizes['time']} days × "
                       f"{len(engine.scenarios)} scenarios × {len(modes)} modes × {args.n_draws} draws "
                       f"in {chunk[0]}×{chunk[1]}-cell blocks"
                       + (f" on {args.scheduler}" if client else ""))
        result = sc.project_grid(setup, cube, chunk, compute=_computer(client))
        region = "synthetic_tibetan_grid" if args.drivers is None else Path(args.drivers).stem
        summary = grid_summary(result, region)
    summary.insert(len(summary.columns), "synthetic", synthetic)
    _report_out_of_range(summary)

    config = {"scenarios_c": list(engine.scenarios), "modes": list(modes), "n_draws": args.n_draws,
              "forest": {"n_trees": args.n_trees, "min_samples_leaf": args.min_samples_leaf,
                         "min_coverage": spec.min_coverage, "min_rows": spec.min_rows},
              "cv_trees": args.cv_trees, "dataset": None if gridded else obs_name,
              "data_path": obs_path, "train": obs_name if gridded else None,
              "drivers_path": args.drivers, "posterior_path": args.posterior,
              "posterior_season_scheme": e_draws.scheme if e_draws else None,
              "posterior_config": post_config, "flux_column": args.flux_column,
              "per_chamber": args.per_chamber,
              "forests": {c: f.describe() for c, f in forests.items()},
              "no_forest": no_forest, "no_posterior_E": missing_e,
              "zero_fluxes_dropped": n_zero, "dropped": obs.dropped,
              "skipped_sites": obs.skipped_sites, "synthetic": synthetic,
              "grid_chunk": list(chunk) if gridded else None, "scheduler": args.scheduler}
    attrs = runio.provenance(config, runio.table_sha256(obs.table), args.seed, argv)
    attrs.update(synthetic=str(synthetic).lower(), interval=CI_LABEL,
                 site_unit=sc.SITE_UNIT, region_unit=sc.REGION_UNIT)
    attrs["notes"] = (
        "total: mean over draws (draw d = tree d mod n_trees paired with posterior draw d); "
        "ci_low/ci_high: equal-tailed interval over draws; change_vs_control: paired mean "
        "difference in the row's unit; change_pct: change of the mean (%); P_increase: probability "
        "that a class's flux magnitude (emission or uptake) grows, for *_net rows that the signed "
        "net emission grows. *_net sums the projected classes of an ecosystem: "
        + ", ".join(engine.classes) + ". Periods and posterior seasons come from the control "
        "temperatures. out_of_range_days: days whose Ts + dT left the forest's training range "
        "(RF-direct holds the edge value there).")
    if synthetic:
        attrs["title"] = "SYNTHETIC projection (simulated inputs, not observations)"
    dt = build_tree(result, skill, importance, attrs, gridded)

    out = runio.out_dir("project", args.out)
    runio.write_datatree(out / "projection.nc", dt)
    runio.write_csv(out / "projection_summary.csv", summary)
    runio.write_csv(out / "forest_skill.csv", skill)
    runio.write_csv(out / "forest_importance.csv", importance)
    written = ["projection.nc", "projection_summary.csv", "forest_skill.csv", "forest_importance.csv"]
    if gridded:
        runio.write_datatree(out / "projection_maps.nc", xr.DataTree(maps_dataset(result, attrs)))
        written.append("projection_maps.nc")
    print(result_text(summary, region))
    runio.progress(f"wrote {out}/" + ", ".join(written))
    return runio.EXIT_OK


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise DataError(None, None, "--scheduler", "dask.distributed is not installed",
                        "pip install 'tpflux[distributed]' (or drop --scheduler to run locally)") from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise DataError(None, None, "--scheduler", f"cannot reach scheduler {address} "
                        f"({type(exc).__name__})", "check the address (tcp://HOST:8786) and that "
                        "the scheduler is running") from None


def _computer(client):
    """A compute function with a progress bar, local or on a distributed client."""
    import dask

    def compute(*collections):
        if client is None:
            from dask.diagnostics import ProgressBar
            with ProgressBar(out=sys.stderr) if sys.stderr.isatty() else contextlib.nullcontext():
                return dask.compute(*collections)
        from distributed import progress
        futures = client.compute(list(collections))
        if sys.stderr.isatty():
            progress(futures)
        return tuple(client.gather(futures))

    return compute


def _load_grid(args, grid_shape: tuple[int, int]) -> xr.Dataset:
    from data import grid

    if args.drivers is not None:
        runio.progress(f"reading driver cube {args.drivers}")
        cube = grid.read_driver_grid(args.drivers)
        grid.require_land_cover(cube, args.drivers)
        return cube
    from data.synthetic_grid import simulate_tibetan_grid

    runio.progress(f"simulating a SYNTHETIC Tibetan driver grid ({grid_shape[0]}×{grid_shape[1]} cells)")
    return simulate_tibetan_grid(*grid_shape, seed=args.seed)


def _seasons_needed(table: pd.DataFrame, forests: dict, e_draws: sc.EDraws,
                    gridded: bool) -> dict[str, set[str]]:
    """Seasons (posterior scheme) each class must have an E for: those its site-days fall in, or
    every season of the scheme on a grid."""
    from data.seasons import assign_seasons, season_labels

    if gridded:
        return {c: set(season_labels(e_draws.scheme)) for c in forests}
    season = np.asarray(assign_seasons(table, e_draws.scheme), dtype=object)
    cls = table["flux_class"].to_numpy()
    return {c: set(season[cls == c]) for c in forests}


def _cube_ecosystems(cube: xr.Dataset) -> tuple[str, ...]:
    return tuple(str(n).removesuffix("_fraction") for n in cube.data_vars
                 if str(n).endswith("_fraction"))


# ---------------------------------------------------------------- summaries
def site_summary(result: xr.Dataset) -> pd.DataFrame:
    """Per-site rows (periods without days at a site left out) + the mean over each ecosystem's
    sites (``site`` = ``all_sites_mean``)."""
    per_site = sc.summarise(result["total"], sc.SITE_UNIT, "site")
    n_days = result["n_days"].to_dataframe().reset_index()
    per_site = per_site.merge(n_days, on=["flux_class", "period", "site"], how="left")
    per_site = per_site[per_site["n_days"] > 0]
    oor = result["out_of_range"].to_dataframe().reset_index().assign(mode="rf")
    per_site = per_site.merge(oor.rename(columns={"out_of_range": "out_of_range_days"}),
                              on=["scenario_c", "mode", "flux_class", "period", "site"], how="left")
    means = sc.site_means(result).expand_dims(site=["all_sites_mean"]).transpose(
        "scenario_c", "mode", "flux_class", "period", "site", "draw")
    mean_rows = sc.summarise(means, sc.SITE_UNIT, "site")
    totals_days = result["n_days"].sum("site").to_series().rename("n_days").reset_index()
    mean_rows = mean_rows.merge(totals_days, on=["flux_class", "period"], how="left")
    oor_sum = (result["out_of_range"].sum("site").to_dataframe().reset_index()
               .rename(columns={"out_of_range": "out_of_range_days"}).assign(mode="rf"))
    mean_rows = mean_rows.merge(oor_sum, on=["scenario_c", "mode", "flux_class", "period"], how="left")
    mean_rows = mean_rows[mean_rows["n_days"] > 0]
    out = pd.concat([per_site, mean_rows], ignore_index=True)
    return _ordered(out, "site")


def grid_summary(result: xr.Dataset, region: str) -> pd.DataFrame:
    draws = result["region_total"].expand_dims(region=[region]).transpose(
        "scenario_c", "mode", "flux_class", "period", "region", "draw")
    rows = sc.summarise(draws, sc.REGION_UNIT, "region")
    oor = (result["out_of_range"].to_dataframe().reset_index()
           .rename(columns={"out_of_range": "out_of_range_days"}).assign(mode="rf"))
    rows = rows.merge(oor, on=["scenario_c", "mode", "flux_class", "period"], how="left")
    rows = rows.merge(result["n_days"].to_dataframe().reset_index(), on=["flux_class", "period"],
                      how="left")
    return _ordered(rows, "region")


def _ordered(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    cols = ["scenario_c", "mode", "flux_class", "period", where, "total", "ci_low", "ci_high",
            "change_vs_control", "change_pct", "P_increase", "unit", "n_days", "out_of_range_days"]
    frame = frame[cols].copy()
    frame["out_of_range_days"] = frame["out_of_range_days"].astype("Int64")
    frame["n_days"] = frame["n_days"].round().astype("Int64")
    return frame.sort_values(["flux_class", where, "period", "mode", "scenario_c"],
                             kind="stable").reset_index(drop=True)


def _report_out_of_range(summary: pd.DataFrame) -> None:
    where = "site" if "site" in summary.columns else "region"
    top = summary[(summary["mode"] == "rf") & (summary["period"] == "annual")
                  & ~summary["flux_class"].str.endswith("_net")]
    if where == "site":
        top = top[top["site"] == "all_sites_mean"]
    for r in top[top["scenario_c"] == top["scenario_c"].max()].itertuples():
        runio.progress(f"  RF-direct at +{r.scenario_c:g} °C: {r.out_of_range_days} of {r.n_days} "
                       f"{'site' if where == 'site' else 'cell'}-days of {r.flux_class} outside the "
                       "forest's training temperatures (held at the edge value)")


def result_text(summary: pd.DataFrame, region: str | None) -> str:
    where = "region" if region else "site"
    rows = summary[(summary["period"] == "annual")
                   & (summary[where] == (region or "all_sites_mean"))]
    unit = rows["unit"].iloc[0] if len(rows) else ""
    lines = [f"Annual totals ({unit}; {CI_LABEL}), "
             f"{'region ' + region if region else 'mean over sites'}:"]
    for r in rows.itertuples():
        p = "" if pd.isna(r.P_increase) else f"  P(increase) {r.P_increase:.2f}"
        lines.append(f"  {r.flux_class:<20} {r.mode:<9} +{r.scenario_c:<4g} {r.total:10.4g} "
                     f"[{r.ci_low:.4g}, {r.ci_high:.4g}]  change {r.change_pct:+.1f} %{p}")
    return "\n".join(lines)


# ---------------------------------------------------------------- saved outputs
def _frame_dataset(frame: pd.DataFrame) -> xr.Dataset:
    ds = xr.Dataset.from_dataframe(frame.reset_index(drop=True).rename_axis("row"))
    for name in ds.data_vars:
        if ds[name].dtype == object:
            ds[name] = ds[name].astype(str)
    return ds


def build_tree(result: xr.Dataset, skill: pd.DataFrame, importance: pd.DataFrame, attrs: dict,
               gridded: bool) -> xr.DataTree:
    groups = {"/skill": _frame_dataset(skill), "/importance": _frame_dataset(importance)}
    if gridded:
        groups["/grid"] = result[["region_total", "out_of_range", "n_days", "cells_skipped"]]
        groups["/maps"] = maps_dataset(result, {})
    else:
        groups["/sites"] = result
    dt = xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), **groups})
    return dt


def maps_dataset(result: xr.Dataset, attrs: dict) -> xr.Dataset:
    """CF maps: mean and interval per scenario, mode, flux class and period (g CH4 m⁻² yr⁻¹)."""
    names = ["flux_mean", "flux_ci_low", "flux_ci_high", "cell_area",
             *[n for n in result.data_vars if str(n).endswith("_fraction")]]
    ds = result[names].copy()
    for n in ("flux_mean", "flux_ci_low", "flux_ci_high"):
        ds[n].attrs.update(long_name=f"CH4 flux per m2 of grid cell, {n.removeprefix('flux_')} "
                                     "over draws", units=sc.MAP_UNIT)
    ds["scenario_c"].attrs.update(long_name="soil warming", units="degC")
    ds.attrs = {**attrs, "Conventions": "CF-1.8"}
    return ds


if __name__ == "__main__":
    sys.exit(main())
