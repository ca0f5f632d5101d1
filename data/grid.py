"""Gridded daily drivers (lat, lon, time) for projections: NetCDF in, canonical xarray cube out.

``read_driver_grid(path)`` opens a NetCDF cube lazily (dask-chunked), renames ERA5-Land short names
and dimensions to the canonical ones and converts CF units at the reader, as the table readers do:

=================  ================================  ===========================================
canonical          accepted names                    accepted units → canonical unit
=================  ================================  ===========================================
``soil_temp_c``    ``stl1``, ``soil_temp_c``, ``ts``   K → °C (− 273.15); degC / °C / Celsius
``swc``            ``swvl1``, ``swc``                 m3 m-3 (volume fraction); % → m3 m-3
``le``             ``slhf``, ``le``                   ``slhf`` J m-2 per day (ERA5 accumulation,
                                                      downward positive) → W m-2 upward positive;
                                                      W m-2
``ustar``          ``zust``, ``ustar``                m s-1
``<eco>_fraction``  ``wetland_fraction`` …             1 / fraction / % → fraction 0–1
``cell_area``      ``cell_area``, ``area``            m2, km2 → m2 (computed on the sphere when absent)
=================  ================================  ===========================================

Soil water is returned as a volume fraction (m³ m⁻³), the unit of the site tables, so a forest
trained on sites can be evaluated on the grid. Dimensions ``latitude``/``longitude``
and ``valid_time`` (the new CDS NetCDF) are renamed ``lat``/``lon``/``time``. The time step must
be one day: hourly ERA5-Land must be aggregated to daily means (and daily accumulations) first.

Anything the reader cannot interpret is refused with a ``DataError`` naming the file and the
variable (as the column), never guessed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from data.constants import EARTH_RADIUS_M, KELVIN, SECONDS_PER_DAY
from data.errors import DataError
from data.table import KELVIN_LOOKING_C, SOIL_TEMP_RANGE_C

DIM_ALIASES = {"lat": ("lat", "latitude"), "lon": ("lon", "longitude"),
               "time": ("time", "valid_time", "date")}
DRIVER_ALIASES = {"soil_temp_c": ("stl1", "soil_temp_c", "ts"), "swc": ("swvl1", "swc"),
                  "le": ("slhf", "le"), "ustar": ("zust", "ustar")}
DRIVERS = tuple(DRIVER_ALIASES)
CANONICAL_UNITS = {"soil_temp_c": "degC", "swc": "m3 m-3", "le": "W m-2", "ustar": "m s-1",
                   "fraction": "1", "cell_area": "m2"}

# Unit strings (normalised: lower case, '**' and '^' removed, spaces collapsed) → converter.
_KELVIN = {"k", "kelvin", "degk", "deg k"}
_CELSIUS = {"degc", "°c", "celsius", "deg c", "degree_celsius", "degrees_celsius", "c"}
_VOLUME_FRACTION = {"m3 m-3", "m3/m3", "1", "fraction", "m3m-3"}
_PERCENT = {"%", "percent"}
_W_M2 = {"w m-2", "w/m2", "w m-2 s-0"}
_J_M2 = {"j m-2", "j/m2"}
_M_S = {"m s-1", "m/s"}
_M2 = {"m2", "m 2"}
_KM2 = {"km2", "km 2"}


def _norm_unit(units: str | None) -> str:
    if units is None:
        return ""
    return " ".join(str(units).strip().lower().replace("**", "").replace("^", "").split())


def _first_present(names, candidates) -> str | None:
    return next((c for c in candidates if c in names), None)


def read_driver_grid(path: str | Path, chunks: dict | None = None) -> xr.Dataset:
    """A daily driver cube with canonical names, units and dims ``(lat, lon, time)``.

    ``chunks`` is passed to xarray (default: one chunk over time, 16 × 16 cells); the cube stays
    lazy except for the range checks. Returns drivers (``soil_temp_c`` required), any
    ``<ecosystem>_fraction`` (0–1) and ``cell_area`` (m²), with CF ``units`` attributes.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "driver cube not found",
                        "give the path of a NetCDF file with daily drivers on (lat, lon, time)")
    try:
        raw = xr.open_dataset(path, chunks={}, decode_timedelta=False)
    except (OSError, ValueError) as exc:
        raise DataError(path, None, None, f"cannot be read as NetCDF ({type(exc).__name__})",
                        "give a NetCDF-4 or NetCDF-3 file") from None
    ds = _rename_dims(raw, path)
    for extra in ("number", "expver"):
        if extra in ds.dims:
            raise DataError(path, None, extra, f"unexpected dimension '{extra}'",
                            f"select one {extra} (e.g. ds.isel({extra}=0)) before projecting")
        if extra in ds.coords:
            ds = ds.drop_vars(extra)

    out = xr.Dataset(coords={"lat": ds["lat"].astype(float), "lon": ds["lon"].astype(float),
                             "time": ds["time"]})
    _check_daily(out["time"], path)
    for canonical, aliases in DRIVER_ALIASES.items():
        name = _first_present(ds.data_vars, aliases)
        if name is not None:
            var = _dims(ds[name], ("lat", "lon", "time"), path, name)
            out[canonical] = _convert_driver(canonical, name, var, path)
    if "soil_temp_c" not in out:
        raise DataError(path, None, "stl1", "no soil temperature variable",
                        f"add one of {', '.join(DRIVER_ALIASES['soil_temp_c'])} on (lat, lon, time)")

    for name in ds.data_vars:
        if str(name).endswith("_fraction"):
            out[name] = _convert_fraction(_dims(ds[name], ("lat", "lon"), path, name), path, name)
    area_name = _first_present(ds.data_vars, ("cell_area", "area"))
    if area_name is not None:
        out["cell_area"] = _convert_area(_dims(ds[area_name], ("lat", "lon"), path, area_name),
                                         path, area_name)
    else:
        out["cell_area"] = cell_areas(out["lat"].values, out["lon"].values)
        out["cell_area"].attrs["comment"] = "computed on a sphere from the lat/lon spacing"

    out = out.chunk(_default_chunks(out, chunks))
    out["lat"].attrs.update(standard_name="latitude", units="degrees_north")
    out["lon"].attrs.update(standard_name="longitude", units="degrees_east")
    out.attrs.update({k: v for k, v in raw.attrs.items() if isinstance(v, (str, int, float))})
    out.attrs["source_file"] = str(path)
    return out


def _rename_dims(ds: xr.Dataset, path: Path) -> xr.Dataset:
    rename = {}
    for canonical, aliases in DIM_ALIASES.items():
        name = _first_present(list(ds.dims) + list(ds.coords), aliases)
        if name is None:
            raise DataError(path, None, canonical, f"no '{canonical}' dimension "
                            f"(looked for {', '.join(aliases)})",
                            "write the cube with dimensions latitude, longitude and time")
        if name != canonical:
            rename[name] = canonical
    return ds.rename(rename)


def _dims(var: xr.DataArray, want: tuple[str, ...], path: Path, name: str) -> xr.DataArray:
    if set(var.dims) != set(want):
        raise DataError(path, None, name, f"has dimensions ({', '.join(map(str, var.dims))}), "
                        f"expected ({', '.join(want)})",
                        "write this variable on exactly those dimensions (drop or select the others)")
    return var.transpose(*want)


def _check_daily(time: xr.DataArray, path: Path) -> None:
    values = time.values
    if not np.issubdtype(values.dtype, np.datetime64):
        raise DataError(path, None, "time", "time is not decoded as dates",
                        "give time CF units such as 'days since 2000-01-01'")
    if values.size > 1:
        step = np.diff(values).astype("timedelta64[s]").astype(np.int64)
        if not np.all(step == SECONDS_PER_DAY):
            raise DataError(path, None, "time", "time steps are not one day apart",
                            "aggregate to daily values first (e.g. cdo daymean / daysum) and "
                            "give a gap-free daily axis")


def _convert_driver(canonical: str, name: str, var: xr.DataArray, path: Path) -> xr.DataArray:
    unit = _norm_unit(var.attrs.get("units"))
    if canonical == "soil_temp_c":
        if unit in _KELVIN:
            out = var - KELVIN
        elif unit in _CELSIUS:
            out = var
        else:
            raise _unit_error(path, name, unit, "K or degC")
        lo, hi = float(out.min()), float(out.max())
        if hi > KELVIN_LOOKING_C or lo < SOIL_TEMP_RANGE_C[0] or hi > SOIL_TEMP_RANGE_C[1]:
            raise DataError(path, None, name, f"soil temperature spans {lo:g}…{hi:g} °C after "
                            f"conversion from '{unit}', outside {SOIL_TEMP_RANGE_C[0]:g}…"
                            f"{SOIL_TEMP_RANGE_C[1]:g} °C",
                            "check the units attribute (K or degC) and the missing-value code")
    elif canonical == "swc":
        if unit in _VOLUME_FRACTION:
            out = var
        elif unit in _PERCENT:
            out = var / 100.0
        else:
            raise _unit_error(path, name, unit, "m3 m-3 or %")
        hi = float(out.max())
        if hi > 1.0 + 1e-6:
            raise DataError(path, None, name, f"soil water {hi:g} m3 m-3 exceeds 1",
                            "check the units attribute (m3 m-3 for a volume fraction, or %)")
    elif canonical == "le":
        if unit in _J_M2 and name == "slhf":
            # ERA5 daily accumulation, downward positive → mean W m-2, upward (evaporation) positive.
            out = -var / SECONDS_PER_DAY
        elif unit in _J_M2:
            out = var / SECONDS_PER_DAY
        elif unit in _W_M2:
            out = -var if name == "slhf" else var
        else:
            raise _unit_error(path, name, unit, "W m-2 or J m-2 (daily accumulation)")
    else:  # ustar
        if unit not in _M_S:
            raise _unit_error(path, name, unit, "m s-1")
        out = var
    out = out.astype(np.float64)
    out.attrs = {"units": CANONICAL_UNITS[canonical], "source_variable": name,
                 "source_units": var.attrs.get("units", "")}
    return out


def _convert_fraction(var: xr.DataArray, path: Path, name: str) -> xr.DataArray:
    unit = _norm_unit(var.attrs.get("units"))
    if unit in _PERCENT:
        out = var / 100.0
    elif unit in {"1", "fraction", "", "0-1"}:
        out = var
    else:
        raise _unit_error(path, name, unit, "1 (fraction) or %")
    lo, hi = float(out.min()), float(out.max())
    if lo < 0 or hi > 1 + 1e-9:
        raise DataError(path, None, name, f"fraction outside 0–1 (min {lo:g}, max {hi:g})",
                        "give the cell fraction covered by this ecosystem as 0–1 or %")
    out = out.astype(np.float64).fillna(0.0)
    out.attrs = {"units": "1", "long_name": f"cell fraction of {name.removesuffix('_fraction')}"}
    return out


def _convert_area(var: xr.DataArray, path: Path, name: str) -> xr.DataArray:
    unit = _norm_unit(var.attrs.get("units"))
    if unit in _M2:
        out = var
    elif unit in _KM2:
        out = var * 1.0e6
    else:
        raise _unit_error(path, name, unit, "m2 or km2")
    out = out.astype(np.float64)
    out.attrs = {"units": "m2", "standard_name": "cell_area"}
    return out


def _unit_error(path: Path, name: str, unit: str, expected: str) -> DataError:
    shown = unit or "(no units attribute)"
    return DataError(path, None, name, f"unknown units '{shown}'",
                     f"set the units attribute to {expected}")


def _default_chunks(ds: xr.Dataset, chunks: dict | None) -> dict:
    base = {"lat": 16, "lon": 16, "time": -1}
    base.update(chunks or {})
    return {k: v for k, v in base.items() if k in ds.dims}


def band_areas(lat, dlat: float, dlon: float) -> np.ndarray:
    """Area (m²) of one dlat × dlon cell (degrees) centred on each latitude ``lat``, on the sphere
    of radius ``EARTH_RADIUS_M``."""
    lat = np.asarray(lat, dtype=float)
    north = np.deg2rad(np.clip(lat + abs(dlat) / 2, -90, 90))
    south = np.deg2rad(np.clip(lat - abs(dlat) / 2, -90, 90))
    return EARTH_RADIUS_M ** 2 * (np.sin(north) - np.sin(south)) * np.deg2rad(abs(dlon))


def cell_areas(lat: np.ndarray, lon: np.ndarray) -> xr.DataArray:
    """Cell areas (m²) of a regular lat/lon grid of cell centres, on a sphere."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    dlat = abs(float(np.diff(lat).mean())) if lat.size > 1 else 1.0
    dlon = abs(float(np.diff(lon).mean())) if lon.size > 1 else 1.0
    area = np.repeat(band_areas(lat, dlat, dlon)[:, None], lon.size, axis=1)
    return xr.DataArray(area, dims=("lat", "lon"), coords={"lat": lat, "lon": lon},
                        attrs={"units": "m2", "standard_name": "cell_area"})


def ecosystem_fractions(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """``{ecosystem: fraction}`` from the cube's ``<ecosystem>_fraction`` variables."""
    return {str(n).removesuffix("_fraction"): ds[n] for n in ds.data_vars
            if str(n).endswith("_fraction")}


def require_land_cover(ds: xr.Dataset, path: str | Path | None = None) -> dict[str, xr.DataArray]:
    """The ecosystem fractions a projection needs; refuse a cube without any."""
    fractions = ecosystem_fractions(ds)
    if not fractions:
        raise DataError(path or ds.attrs.get("source_file"), None, "wetland_fraction",
                        "no ecosystem fractions in the cube",
                        "add wetland_fraction and grassland_fraction (0–1) on (lat, lon)")
    return fractions
