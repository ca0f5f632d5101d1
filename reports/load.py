"""Reading saved run folders: which job wrote a folder (from the files in it), and its outputs.

A report reads only what a job saved; it never refits or reloads the raw data.

    fit_ea   ea_posterior.nc (+ ea_summary.csv, diagnostics.json)
    fit_rr   rr_posterior.nc (+ rr_summary.csv, diagnostics.json)
    project  projection.nc and/or projection_summary.csv (+ forest_skill.csv, projection_maps.nc, …)
    budget   budget_summary.csv (+ budget_draws.nc; budget_posterior.nc for the Bayesian variant)
    compare_seasons  season_comparison.nc, season_comparison.csv (+ _by_class.csv, _left_out.csv)
    compare_covariate  covariate_comparison.nc, covariate_comparison.csv (+ covariate_effects.csv)

A fit_ea folder may hold its held-out check: the ``crossvalidation.csv`` that
``python -m inference.crossvalidate_ea RUN_DIR --out RUN_DIR/crossvalidation`` writes (any
subfolder whose run marker names crossvalidate_ea, the newest first; or the file in RUN_DIR).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import xarray as xr

from data.errors import DataError
from data.storage import RUN_MARKER, read_csv, read_datatree, read_json, read_marker

# Marker files per run kind, most specific first; the first kind with a marker present wins.
KIND_MARKERS: dict[str, tuple[str, ...]] = {
    "fit_ea": ("ea_posterior.nc",),
    "fit_rr": ("rr_posterior.nc", "rr_summary.csv"),
    "project": ("projection.nc", "projection_summary.csv"),
    "budget": ("budget_summary.csv",),
    "compare_seasons": ("season_comparison.nc", "season_comparison.csv"),
    "compare_covariate": ("covariate_comparison.nc", "covariate_comparison.csv"),
}
# The budget job writes a posterior only for its Bayesian variant.
TREE_FILES = {"fit_ea": "ea_posterior.nc", "fit_rr": "rr_posterior.nc", "project": "projection.nc",
              "budget": "budget_posterior.nc", "compare_seasons": "season_comparison.nc",
              "compare_covariate": "covariate_comparison.nc"}
SUMMARY_FILES = {"fit_ea": "ea_summary.csv", "fit_rr": "rr_summary.csv",
                 "project": "projection_summary.csv", "budget": "budget_summary.csv",
                 "compare_seasons": "season_comparison.csv",
                 "compare_covariate": "covariate_comparison.csv"}
# Groups a fit_ea report cannot do without.
EA_REQUIRED = {"posterior": ("E", "lnR"), "constant_data": ("soil_temp_c", "flux", "obs_flux_class",
                                                          "obs_season", "site")}
FIX = ("pass a folder written by python -m inference.fit_ea, fit_rr, project, budget, compare_seasons "
       "or compare_covariate")
# Further NetCDF files a report reads, per kind (checked and read with the run).
EXTRA_TREES = {"budget": ("budget_draws.nc",), "project": ("projection_maps.nc",)}
# Further CSV files a report reads, per kind, and the columns each must have.
EXTRA_TABLES = {"compare_seasons": {"season_comparison_by_class.csv": ("flux_class", "model", "elpd",
                                                                      "elpd_diff", "dse"),
                                    "season_comparison_left_out.csv": ("flux_class", "n_rows", "reason")},
                "compare_covariate": {"covariate_effects.csv": ("model", "quantity", "flux_class",
                                                                "median", "ci_low", "ci_high")}}
CROSSVALIDATION_FILE = "crossvalidation.csv"
CROSSVALIDATION_JOB = "crossvalidate_ea"
CROSSVALIDATION_COLUMNS = ("site", "flux_class", "season", "inside_95", "pit", "coverage_95")
# Columns of those further tables that hold numbers wherever they appear.
TABLE_NUMBERS = ("elpd", "elpd_diff", "dse", "n_rows", "inside_95", "pit", "coverage_95")
BUDGET_FLUXES = ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied")
# Summary columns that hold numbers wherever they appear.
NUMERIC_COLUMNS = ("median", "ci_low", "ci_high", "mean", "sd", "total")
# Columns a report reads from each kind's summary CSV.
SUMMARY_COLUMNS = {"fit_ea": ("quantity", "median", "ci_low", "ci_high"),
                   "fit_rr": ("quantity",), "project": (), "budget": ("quantity", "median"),
                   "compare_seasons": ("scheme", "elpd", "elpd_diff", "dse"),
                   "compare_covariate": ("model", "elpd", "elpd_diff", "dse")}


@dataclasses.dataclass
class Run:
    """One saved run folder and what was read from it."""

    path: Path
    kind: str
    tree: xr.DataTree | None
    summary: pd.DataFrame | None
    diagnostics: dict | None
    attrs: dict
    config: dict
    versions: dict
    extra_trees: dict = dataclasses.field(default_factory=dict)  # file name → DataTree
    extra_tables: dict = dataclasses.field(default_factory=dict)  # file name → DataFrame
    crossvalidation: Path | None = None  # the crossvalidation.csv read into extra_tables
    crossvalidation_diagnostics: dict | None = None  # its folds' gates (diagnostics.json beside it)

    @property
    def synthetic(self) -> bool:
        return bool(self.config.get("synthetic") or (self.diagnostics or {}).get("synthetic"))

    def file(self, name: str) -> Path | None:
        path = self.path / name
        return path if path.exists() else None

    def group(self, name: str) -> xr.Dataset | None:
        if self.tree is None or name not in self.tree.children:
            return None
        return self.tree[name].to_dataset()


def detect_kind(folder: Path) -> str:
    """The job that wrote ``folder``: the one its run marker (``run.json``) names, else (a folder
    written by hand or by an older version) the first kind whose files are present."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a run folder" if folder.exists() else "run folder does not exist"
        raise DataError(folder, None, None, what, FIX)
    marker = read_marker(folder)
    job = marker.get("job") if marker else None
    if job is not None:
        if job not in KIND_MARKERS:
            raise DataError(folder / RUN_MARKER, None, "job", f"the folder holds a {job} run, which has "
                            "no report", FIX)
        return job
    for kind, markers in KIND_MARKERS.items():
        if any((folder / m).exists() for m in markers):
            return kind
    raise DataError(folder, None, None, "no tpflux run outputs found (no "
                    + ", ".join(m for ms in KIND_MARKERS.values() for m in ms) + ")", FIX)


def _json_attr(path: Path, attrs: dict, key: str) -> dict:
    text = attrs.get(key)
    if text is None:
        return {}
    try:
        value = json.loads(text) if isinstance(text, str) else dict(text)
    except (ValueError, TypeError):
        raise DataError(path, None, key, "attribute is not valid JSON",
                        "the file was not written by tpflux or was edited; re-run the job") from None
    return value if isinstance(value, dict) else {}


def load_run(folder: Path | str) -> Run:
    """Detect the run kind and read its DataTree, summary CSV and diagnostics (those present).

    Everything a report reads is checked here, before anything is written: the files the kind
    needs exist and parse, the summary has the columns the report reads and at least one row, a
    posterior has chains and draws, and the files carry the run id of the folder's marker (a
    folder mixing two runs is refused). Every failure is the one-line ``DataError``.
    """
    folder = Path(folder)
    kind = detect_kind(folder)
    tree_file = folder / TREE_FILES[kind] if kind in TREE_FILES else None
    summary_file = folder / SUMMARY_FILES[kind]
    needed = [m for m in KIND_MARKERS[kind] if (folder / m).exists()]
    if not needed:
        raise DataError(folder, None, None, f"the {kind} run lacks {' and '.join(KIND_MARKERS[kind])}",
                        f"re-run python -m inference.{kind} into this folder with --overwrite")
    tree = read_datatree(tree_file) if tree_file is not None and tree_file.exists() else None
    summary = read_csv(summary_file) if summary_file.exists() else None
    if summary is not None:
        _check_summary(summary_file, summary, kind)
    diag_file = folder / "diagnostics.json"
    diagnostics = read_json(diag_file) if diag_file.exists() else None
    if diagnostics is not None and not isinstance(diagnostics, dict):
        raise DataError(diag_file, None, None, "the diagnostics are not a JSON object",
                        f"re-run python -m inference.{kind}")
    attrs = dict(tree.attrs) if tree is not None else {}
    source = tree_file or folder
    config = _json_attr(source, attrs, "tpflux_config")
    versions = _json_attr(source, attrs, "package_versions")
    if kind == "fit_ea":
        _check_ea(tree_file, tree)
    if tree is not None:
        _check_posterior(tree_file, tree)
        _check_run_id(folder, tree_file, attrs)
    extra = {}
    for name in EXTRA_TREES.get(kind, ()):
        if (folder / name).exists():
            extra[name] = read_datatree(folder / name)
            _check_run_id(folder, folder / name, dict(extra[name].attrs))
    if "budget_draws.nc" in extra:
        _check_budget_draws(folder / "budget_draws.nc", extra["budget_draws.nc"])
    tables = {name: _read_table(folder / name, columns, kind)
              for name, columns in EXTRA_TABLES.get(kind, {}).items() if (folder / name).exists()}
    cv = find_crossvalidation(folder) if kind == "fit_ea" else None
    cv_diag = None
    if cv is not None:
        tables[CROSSVALIDATION_FILE] = _read_table(cv, CROSSVALIDATION_COLUMNS, CROSSVALIDATION_JOB)
        _check_crossvalidation(cv, tables[CROSSVALIDATION_FILE], tree)
        if cv.parent != folder and (cv.parent / "diagnostics.json").is_file():
            cv_diag = read_json(cv.parent / "diagnostics.json")
    return Run(path=folder, kind=kind, tree=tree, summary=summary, diagnostics=diagnostics,
               attrs=attrs, config=config, versions=versions, extra_trees=extra,
               extra_tables=tables, crossvalidation=cv,
               crossvalidation_diagnostics=cv_diag if isinstance(cv_diag, dict) else None)


def find_crossvalidation(folder: Path) -> Path | None:
    """The held-out check of a fit_ea folder: ``crossvalidation.csv`` in a subfolder written by
    crossvalidate_ea (the newest), else in the folder itself; None when there is none."""
    found = [sub / CROSSVALIDATION_FILE for sub in Path(folder).iterdir()
             if sub.is_dir() and (read_marker(sub) or {}).get("job") == CROSSVALIDATION_JOB
             and (sub / CROSSVALIDATION_FILE).is_file()]
    if found:
        return max(found, key=lambda p: (p.stat().st_mtime, str(p)))
    own = Path(folder) / CROSSVALIDATION_FILE
    return own if own.is_file() else None


def _read_table(path: Path, columns, job: str) -> pd.DataFrame:
    """A further CSV of a run, with the columns a report reads; those holding numbers parse."""
    frame = read_csv(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(path, 1, missing[0], f"the table lacks column{'s' * (len(missing) > 1)} "
                        f"{', '.join(missing)}", f"re-run python -m inference.{job} to write it again")
    _check_numeric(path, frame, (*NUMERIC_COLUMNS, *TABLE_NUMBERS), job)
    return frame


def _check_numeric(path: Path, frame: pd.DataFrame, columns, job: str) -> None:
    """Each of ``columns`` present holds numbers (or nothing); else the first bad cell's row."""
    for column in columns:
        if column in frame.columns and not frame[column].isna().all() \
                and not pd.api.types.is_numeric_dtype(frame[column]):
            value = frame[column][pd.to_numeric(frame[column], errors="coerce").isna()
                                  & frame[column].notna()].iloc[0]
            row = int(frame.index[frame[column].astype(str) == str(value)][0]) + 2
            raise DataError(path, row, column, f"'{value}' is not a number",
                            f"re-run python -m inference.{job} to write it again")


def _check_crossvalidation(path: Path, frame: pd.DataFrame, tree: xr.DataTree | None) -> None:
    """The held-out groups are sites and classes of this fit (a check of another run is refused)."""
    groups = frame[frame["site"].astype(str) != "ALL"]
    if tree is None or "constant_data" not in tree.children:
        return
    const = tree["constant_data"]
    for column, name in (("site", "site"), ("flux_class", "obs_flux_class")):
        if name not in const:
            continue
        foreign = sorted(set(groups[column].astype(str)) - set(const[name].to_numpy().astype(str)))
        if foreign:
            raise DataError(path, None, column, f"holds {column} {foreign[0]}, which the fit does "
                            "not: the check belongs to another run",
                            "re-run python -m inference.crossvalidate_ea RUN_DIR --out RUN_DIR/crossvalidation")


def _check_budget_draws(path: Path, draws: xr.DataTree) -> None:
    """The resampling draws the budget figures read: the four fluxes by variant × draw."""
    group = draws["resampling"].to_dataset() if "resampling" in draws.children else None
    missing = [] if group is None else [f for f in BUDGET_FLUXES if f not in group
                                        or set(group[f].dims) != {"variant", "draw"}]
    if group is None or missing or group.sizes.get("variant", 0) < 1 or group.sizes.get("draw", 0) < 2:
        raise DataError(path, None, "resampling", "the draws lack the resampling group of "
                        + ", ".join(BUDGET_FLUXES) + " by variant × draw",
                        "re-run python -m inference.budget")


def _check_summary(path: Path, summary: pd.DataFrame, kind: str) -> None:
    missing = [c for c in SUMMARY_COLUMNS[kind] if c not in summary.columns]
    if missing:
        raise DataError(path, 1, missing[0], f"the summary lacks column{'s' * (len(missing) > 1)} "
                        f"{', '.join(missing)}", f"re-run python -m inference.{kind} to write it again")
    _check_numeric(path, summary, NUMERIC_COLUMNS, kind)
    if summary.empty:
        raise DataError(path, None, None, "the summary holds no rows",
                        f"re-run python -m inference.{kind} to write it again")


def _check_posterior(path: Path, tree: xr.DataTree) -> None:
    """A posterior group, where there is one, has chain and draw dimensions and some draws."""
    if "posterior" not in tree.children:
        return
    post = tree["posterior"].to_dataset()
    if not post.data_vars or {"chain", "draw"} - set(post.dims) or post.sizes["draw"] < 1:
        raise DataError(path, None, "posterior", "the posterior group holds no (chain, draw) samples",
                        "re-run the job that wrote it")


def _check_run_id(folder: Path, path: Path, attrs: dict) -> None:
    """The DataTree belongs to the run the folder's marker names."""
    marker = read_marker(folder) or {}
    mine, theirs = attrs.get("run_id"), marker.get("run_id")
    if mine and theirs and str(mine) != str(theirs):
        raise DataError(path, None, "run_id", f"the file belongs to run {mine}, the folder to run {theirs}: "
                        "the folder mixes two runs", "re-run the job into a new --out folder")


def _check_ea(path: Path, tree: xr.DataTree) -> None:
    for group, names in EA_REQUIRED.items():
        if group not in tree.children:
            raise DataError(path, None, group, f"the DataTree has no '{group}' group",
                            "re-run python -m inference.fit_ea to write a complete posterior")
        missing = [n for n in names if n not in tree[group]]
        if missing:
            raise DataError(path, None, group, f"'{group}' lacks {', '.join(missing)}",
                            "re-run python -m inference.fit_ea to write a complete posterior")
