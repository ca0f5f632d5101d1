"""The 0.5° global covariate grid of Jian et al. (2020) and SRDB-V5 annual soil respiration sites.

``read_rc_grid`` opens ``global_Rt_contribution_to_Rs2.nc`` (dataset ``jian-rc-grid``:
jinshijian/SoilRespirationPartitioning @c0072c04): 720 × 360 cells, variables stored as
(lon, lat) with latitude descending; it is returned as a CF-style (lat, lon) Dataset with ascending
coordinates and a ``cell_area`` (m², on the sphere of ``data.constants.EARTH_RADIUS_M``). Land cells are those with
all covariates present (47,694 cells, 55.25 °S – 82.25 °N: no Antarctica, no Greenland ice).
The file's declared ``_FillValue`` (−9999) is missing; a missing-value code it does not declare
(−999, −9999, …: ``data.table.FILL_CODES``, in single or double precision) is refused, never read
as a covariate.

``srdb_rs_sites`` selects the SRDB-V5 records for upscaling annual soil respiration (g C m⁻² yr⁻¹)
and ``attach_covariates`` gives each the covariates of its grid cell, counting what is dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data.errors import DataError
from data.grid import band_areas
from data.table import fill_code_problem, is_fill_code

GRID_FILE = "global_Rt_contribution_to_Rs2.nc"

# Covariates of the grid usable as predictors of annual soil respiration (units as stored).
GRID_COVARIATES = {
    "MAT": "°C", "MAP": "mm", "BD": "gc/cm3", "Clay": "%", "SOC": "t/ha", "EVI": "unitless",
    "N_deposition": "gN m–2 yr–1", "BMa": "MgC ha-1", "BMb": "MgC ha-1",
    "Percentage_AM": "%", "Percentage_EcM": "%", "Percentage_ErM": "%", "Percentage_NM": "%",
}

# SRDB quality flags that mark a record as problematic (srdb-data_fields.txt: Q10 potential,
# Q11 suspected, Q12 known problem, Q13 duplicate?, Q14 inconsistency).
BAD_QUALITY_FLAGS = ("Q10", "Q11", "Q12", "Q13", "Q14")
# Annual soil respiration above this is beyond any ecosystem measured (g C m⁻² yr⁻¹; the
# largest tropical values are ≈ 3,000–4,000).
MAX_RS_ANNUAL = 4500.0


def _attr_text(value) -> str:
    """An attribute as text; h5netcdf hands non-ASCII bytes back surrogate-escaped ('°' → '\\udcc2\\udcb0')."""
    text = str(value)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return text


def _refuse_fill_codes(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, path: Path,
                       name: str) -> None:
    """A missing-value code the file does not declare as ``_FillValue`` (decoded to NaN on
    opening) is still a number here; read as data it would be a −9999 °C cell."""
    fill = is_fill_code(values)
    if fill.any():
        i, j = np.argwhere(fill)[0]
        raise DataError(path, None, name, f"{fill_code_problem(values[i, j])} at lat {lat[i]:g}, "
                        f"lon {lon[j]:g}", "declare it as the variable's _FillValue (or "
                        "missing_value) attribute, or write NaN")


def read_rc_grid(path: str | Path | None = None) -> xr.Dataset:
    """The covariate grid as (lat, lon) with ascending coordinates and ``cell_area`` (m²)."""
    if path is None:
        from data.registry import dataset_folder

        path = dataset_folder("jian-rc-grid") / GRID_FILE
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, None, "grid file not found",
                        "check the dataset folder (data.registry.dataset_folder('jian-rc-grid'))")
    try:
        raw = xr.open_dataset(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise DataError(path, None, None, f"cannot open as NetCDF ({exc})",
                        "give the global_Rt_contribution_to_Rs2.nc file") from None
    with raw:
        for name in ("latitude", "longitude", *GRID_COVARIATES):
            if name not in raw:
                raise DataError(path, None, name, f"variable '{name}' is missing",
                                f"the grid needs {', '.join(GRID_COVARIATES)}")
        for name, unit in GRID_COVARIATES.items():
            got = _attr_text(raw[name].attrs.get("Unit", raw[name].attrs.get("units", unit)))
            if got.replace(" ", "") != unit.replace(" ", ""):
                raise DataError(path, None, name, f"unit '{got}' differs from the expected '{unit}'",
                                "convert the variable to the unit of the published grid")
        lat = raw["latitude"].values.astype(float)
        lon = raw["longitude"].values.astype(float)
        data = {}
        for name in (*GRID_COVARIATES, *(v for v in ("RC", "SD_RC") if v in raw)):
            da = raw[name]
            dims = da.dims
            values = da.values
            if dims == ("lon", "lat"):
                values = values.T
            elif dims != ("lat", "lon"):
                raise DataError(path, None, name, f"dimensions {dims} are not (lat, lon)",
                                "store covariates on the lat × lon grid")
            _refuse_fill_codes(values, lat, lon, path, name)
            values = values.astype(float)
            data[name] = (("lat", "lon"), values, {"units": GRID_COVARIATES.get(name, "1"),
                                                   "long_name": da.attrs.get("long_name", name)})
    ds = xr.Dataset(data, coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                                  "lon": ("lon", lon, {"units": "degrees_east"})})
    ds = ds.sortby("lat").sortby("lon")
    dlat = float(np.abs(np.diff(ds["lat"].values)).mean())
    dlon = float(np.abs(np.diff(ds["lon"].values)).mean())
    area = band_areas(ds["lat"].values, dlat, dlon)
    ds["cell_area"] = (("lat", "lon"), np.repeat(area[:, None], ds.sizes["lon"], axis=1),
                       {"units": "m2"})
    ds.attrs.update({"source": str(path), "resolution_deg": dlat})
    return ds


def land_cells(ds: xr.Dataset, covariates: tuple[str, ...] = tuple(GRID_COVARIATES)) -> pd.DataFrame:
    """One row per land cell (all covariates present): lat, lon, cell_area, covariates."""
    frame = ds[[*covariates, "cell_area"]].to_dataframe().reset_index()
    return frame.dropna(subset=list(covariates)).reset_index(drop=True)


def srdb_rs_sites(srdb: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Unmanipulated SRDB-V5 annual soil respiration records, and the counts dropped per reason.

    Kept: ``Manipulation == "None"``, 0 < ``Rs_annual`` ≤ 4,500 g C m⁻² yr⁻¹, coordinates present,
    no problem / duplicate quality flag (Q10–Q14).
    """
    dropped: dict[str, int] = {}
    t = srdb[srdb["Rs_annual"].notna()]
    steps = (
        ("manipulated", t["Manipulation"] != "None"),
        ("Rs_annual <= 0 or implausibly large", ~((t["Rs_annual"] > 0) & (t["Rs_annual"] <= MAX_RS_ANNUAL))),
        ("no coordinates", t["Latitude"].isna() | t["Longitude"].isna()),
        ("quality flag Q10-Q14", t["Quality_flag"].str.contains("|".join(BAD_QUALITY_FLAGS))),
    )
    keep = pd.Series(True, index=t.index)
    for reason, bad in steps:
        bad = bad & keep
        if bad.any():
            dropped[reason] = int(bad.sum())
        keep &= ~bad
    t = t[keep]
    sites = pd.DataFrame({
        "rs_annual": t["Rs_annual"].to_numpy(float), "latitude": t["Latitude"].to_numpy(float),
        "longitude": t["Longitude"].to_numpy(float),
        "study": t["Study_number"].fillna(-1).astype(int).to_numpy(),
        "ecosystem": t["Ecosystem_type"].to_numpy(), "line": t["line"].to_numpy(),
    })
    return sites, dropped


def _nearest_index(axis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the nearest coordinate on an ascending ``axis``."""
    i = np.clip(np.searchsorted(axis, values), 1, axis.size - 1)
    return np.where(np.abs(axis[i - 1] - values) <= np.abs(axis[i] - values), i - 1, i)


def attach_covariates(sites: pd.DataFrame, ds: xr.Dataset,
                      covariates: tuple[str, ...] = tuple(GRID_COVARIATES), search: int = 1
                      ) -> tuple[pd.DataFrame, int]:
    """Covariates of each site's grid cell, or of the nearest land cell within ``search`` cells
    (coastal sites); sites with no land cell that near are dropped and counted."""
    lat, lon = ds["lat"].values, ds["lon"].values
    i = _nearest_index(lat, sites["latitude"].to_numpy(float))
    j = _nearest_index(lon, sites["longitude"].to_numpy(float))
    stack = np.stack([ds[name].values for name in covariates], axis=-1)
    land = np.isfinite(stack).all(axis=-1)
    best_i, best_j = i.copy(), j.copy()
    found = land[i, j]
    best_d = np.where(found, 0.0, np.inf)
    for di in range(-search, search + 1):
        for dj in range(-search, search + 1):
            ii = np.clip(i + di, 0, lat.size - 1)
            jj = (j + dj) % lon.size  # longitude wraps around
            dist = float(di * di + dj * dj)
            better = land[ii, jj] & (dist < best_d)
            best_i, best_j, best_d = (np.where(better, ii, best_i), np.where(better, jj, best_j),
                                      np.where(better, dist, best_d))
    present = np.isfinite(best_d)
    out = sites.copy()
    values = stack[best_i, best_j]
    for k, name in enumerate(covariates):
        out[name] = values[:, k]
    return out[present].reset_index(drop=True), int((~present).sum())
