"""Reading saved run folders: which job wrote a folder (from the files in it), and its outputs.

A report reads only what a job saved; it never refits or reloads the raw data.

    fit_ea   ea_posterior.nc (+ ea_summary.csv, diagnostics.json)
    fit_rr   rr_posterior.nc (+ rr_summary.csv, diagnostics.json)
    project  projection.nc and/or projection_summary.csv (+ forest_skill.csv, projection_maps.nc, …)
    budget   budget_summary.csv (+ budget_draws.nc; budget_posterior.nc for the Bayesian variant)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import xarray as xr

from data.errors import DataError
from data.storage import read_csv, read_datatree, read_json

# Marker files per run kind, most specific first; the first kind with a marker present wins.
KIND_MARKERS: dict[str, tuple[str, ...]] = {
    "fit_ea": ("ea_posterior.nc",),
    "fit_rr": ("rr_posterior.nc", "rr_summary.csv"),
    "project": ("projection.nc", "projection_summary.csv"),
    "budget": ("budget_summary.csv",),
}
# The budget job writes a posterior only for its Bayesian variant.
TREE_FILES = {"fit_ea": "ea_posterior.nc", "fit_rr": "rr_posterior.nc", "project": "projection.nc",
              "budget": "budget_posterior.nc"}
SUMMARY_FILES = {"fit_ea": "ea_summary.csv", "fit_rr": "rr_summary.csv",
                 "project": "projection_summary.csv", "budget": "budget_summary.csv"}
# Groups a fit_ea report cannot do without.
EA_REQUIRED = {"posterior": ("E", "lnR"), "constant_data": ("soil_temp_c", "flux", "obs_flux_class",
                                                          "obs_season", "site")}
FIX = "pass a folder written by python -m inference.fit_ea, fit_rr, project or budget"


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
    """The job that wrote ``folder``, from the file names present."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, None, None, "run folder does not exist", FIX)
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
    """Detect the run kind and read its DataTree, summary CSV and diagnostics (those present)."""
    folder = Path(folder)
    kind = detect_kind(folder)
    tree_file = folder / TREE_FILES[kind] if kind in TREE_FILES else None
    tree = read_datatree(tree_file) if tree_file is not None and tree_file.exists() else None
    summary_file = folder / SUMMARY_FILES[kind]
    summary = read_csv(summary_file) if summary_file.exists() else None
    diag_file = folder / "diagnostics.json"
    diagnostics = read_json(diag_file) if diag_file.exists() else None
    attrs = dict(tree.attrs) if tree is not None else {}
    source = tree_file or folder
    config = _json_attr(source, attrs, "tpflux_config")
    versions = _json_attr(source, attrs, "package_versions")
    if kind == "fit_ea":
        _check_ea(tree_file, tree)
    return Run(path=folder, kind=kind, tree=tree, summary=summary, diagnostics=diagnostics,
               attrs=attrs, config=config, versions=versions)


def _check_ea(path: Path, tree: xr.DataTree) -> None:
    for group, names in EA_REQUIRED.items():
        if group not in tree.children:
            raise DataError(path, None, group, f"the DataTree has no '{group}' group",
                            "re-run python -m inference.fit_ea to write a complete posterior")
        missing = [n for n in names if n not in tree[group]]
        if missing:
            raise DataError(path, None, group, f"'{group}' lacks {', '.join(missing)}",
                            "re-run python -m inference.fit_ea to write a complete posterior")
