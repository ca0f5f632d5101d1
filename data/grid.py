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

What is checked (each a ``DataError`` naming the file and the variable as the column, and the first
offending cell as ``lat …, lon …, date`` in the message):

- time: at least one step, decoded as dates within 1677-09-22 … 2262-04-11, one day apart;
- latitude finite within −90…90 and strictly monotonic; longitude finite within −180…360,
  normalised to −180…180 (0…360 grids are re-ordered west to east; two columns on one meridian are
  refused);
- values after unit conversion: daily soil temperature −60…50 °C (``DAILY_SOIL_TEMP_RANGE_C``; a
  value above it under a °C label that is plausible in °F is named as such), soil water 0…1,
  latent heat −1000…1500 W m⁻², friction velocity 0…10 m s⁻¹, each fraction 0…1 and the
  fractions of a cell together ≤ 1, cell area > 0 (and present wherever an ecosystem grows);
- a number equal to a missing-value code (−9999, −999, …: ``data.table.FILL_CODES``) that the file
  does not declare as ``_FillValue``/``missing_value`` is refused, never read as data.

Missing values. Declared fill values are decoded to NaN. Soil temperature may be missing on some
cell-days: the projection skips and counts those cell-days and reports the land cells that have no
valid day at all (``models.scenarios.grid_block``); a cube with no soil temperature anywhere is
refused here, and one whose land cells all lack it by ``require_land_cover``. A missing fraction is
no cover (0).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data.constants import EARTH_RADIUS_M, KELVIN, SECONDS_PER_DAY
from data.errors import DataError
from data.table import DATE_MAX, DATE_MIN, FILL_CODES, KELVIN_LOOKING_C

DIM_ALIASES = {"lat": ("lat", "latitude"), "lon": ("lon", "longitude"),
               "time": ("time", "valid_time", "date")}
DRIVER_ALIASES = {"soil_temp_c": ("stl1", "soil_temp_c", "ts"), "swc": ("swvl1", "swc"),
                  "le": ("slhf", "le"), "ustar": ("zust", "ustar")}
DRIVERS = tuple(DRIVER_ALIASES)
CANONICAL_UNITS = {"soil_temp_c": "degC", "swc": "m3 m-3", "le": "W m-2", "ustar": "m s-1",
                   "fraction": "1", "cell_area": "m2"}

# Plausible daily means after conversion. Daily-mean topsoil temperature stays below ~45 °C even in
# hot deserts (instantaneous chamber readings go higher: data.table.SOIL_TEMP_RANGE_C), so 50 °C
# also catches Fahrenheit numbers under a °C label in any warm season (50 °C = 122 °F; 10 °C =
# 50 °F). Latent heat and friction velocity bounds are those of the site reader
# (data.fluxnet.DRIVER_BOUNDS).
DAILY_SOIL_TEMP_RANGE_C = (-60.0, 50.0)
DRIVER_RANGES = {"soil_temp_c": DAILY_SOIL_TEMP_RANGE_C, "swc": (0.0, 1.0), "le": (-1000.0, 1500.0),
                 "ustar": (0.0, 10.0)}
DRIVER_WORDS = {"soil_temp_c": ("soil temperature", "°C"), "swc": ("soil water", "m3 m-3"),
                "le": ("latent heat flux", "W m-2"), "ustar": ("friction velocity", "m s-1")}

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
_TOLERANCE = 1e-6


def _norm_unit(units: str | None) -> str:
    if units is None:
        return ""
    return " ".join(str(units).strip().lower().replace("**", "").replace("^", "").split())


def _first_present(names, candidates) -> str | None:
    return next((c for c in candidates if c in names), None)


def read_driver_grid(path: str | Path, chunks: dict | None = None) -> xr.Dataset:
    """A daily driver cube with canonical names, units and dims ``(lat, lon, time)``.

    ``chunks`` is passed to xarray (default: one chunk over time, 16 × 16 cells); the cube stays
    lazy except for the checks of the module docstring. Returns drivers (``soil_temp_c``
    required), any ``<ecosystem>_fraction`` (0–1) and ``cell_area`` (m²), with CF ``units``
    attributes.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(path, None, None, "is a folder, not a NetCDF file",
                        "give the path of a NetCDF file with daily drivers on (lat, lon, time)")
    if not path.is_file():
        raise DataError(path, None, None, "driver cube not found",
                        "give the path of a NetCDF file with daily drivers on (lat, lon, time)")
    try:
        # Seconds resolution decodes any year, so that dates outside the range of the tables are
        # named (below) instead of failing inside the decoder.
        raw = xr.open_dataset(path, chunks={}, decode_timedelta=False,
                              decode_times=xr.coders.CFDatetimeCoder(time_unit="s"))
    except ValueError as exc:
        if "decode time" in str(exc):
            raise DataError(path, None, "time", "the time units cannot be decoded as dates",
                            "give CF units such as 'days since 2000-01-01' on the standard "
                            f"calendar, with dates within {DATE_MIN:%Y-%m-%d} … {DATE_MAX:%Y-%m-%d}"
                            ) from None
        raise DataError(path, None, None, f"cannot be read as NetCDF ({type(exc).__name__})",
                        "give a NetCDF-4 or NetCDF-3 file") from None
    except (OSError, RuntimeError, KeyError) as exc:
        raise DataError(path, None, None, f"cannot be read as NetCDF ({type(exc).__name__})",
                        "give a NetCDF-4 or NetCDF-3 file") from None
    ds = _rename_dims(raw, path)
    for extra in ("number", "expver"):
        if extra in ds.dims:
            raise DataError(path, None, extra, f"unexpected dimension '{extra}'",
                            f"select one {extra} (e.g. ds.isel({extra}=0)) before projecting")
        if extra in ds.coords:
            ds = ds.drop_vars(extra)
    ds, dlon = _coordinates(ds, path)

    out = xr.Dataset(coords={"lat": ds["lat"], "lon": ds["lon"], "time": ds["time"]})
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
            var = _dims(ds[name], ("lat", "lon"), path, name)
            _refuse_fill_codes(var, path, name)
            out[name] = _convert_fraction(var, path, name)
    fractions = [n for n in out.data_vars if str(n).endswith("_fraction")]
    if len(fractions) > 1:
        total = sum(out[n] for n in fractions).compute()
        _refuse_where(total > 1 + _TOLERANCE, total, path, fractions[0],
                      "the ecosystem fractions of a cell add up to {value:g} > 1",
                      f"give each ecosystem's share of the cell area ({', '.join(fractions)} "
                      "together at most 1)")
    land = (sum(out[n] for n in fractions) > 0).compute() if fractions else None
    area_name = _first_present(ds.data_vars, ("cell_area", "area"))
    if area_name is not None:
        var = _dims(ds[area_name], ("lat", "lon"), path, area_name)
        _refuse_fill_codes(var, path, area_name)
        out["cell_area"] = _convert_area(var, path, area_name, land)
    else:
        out["cell_area"] = cell_areas(out["lat"].values, out["lon"].values, dlon=dlon)
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


def _coordinates(ds: xr.Dataset, path: Path) -> tuple[xr.Dataset, float | None]:
    """Checked time, latitude and longitude (normalised to −180…180, west to east); also returns
    the longitude spacing of the file (for cell areas, which a re-ordering must not change)."""
    ds = ds.assign_coords(time=_check_daily(ds["time"], path))
    for dim, (lo, hi) in (("lat", (-90.0, 90.0)), ("lon", (-180.0, 360.0))):
        values = ds[dim].values
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.number):
            raise DataError(path, None, dim, f"{dim} is not a 1-D numeric coordinate",
                            "give latitude and longitude as 1-D coordinates in decimal degrees")
        values = values.astype(float)
        bad = ~np.isfinite(values) | (values < lo) | (values > hi)
        if bad.any():
            raise DataError(path, None, dim, f"{dim} {values[bad][0]:g} is outside {lo:g}…{hi:g}",
                            "give cell centres in decimal degrees (latitude −90…90, longitude "
                            "−180…180 or 0…360)")
        if values.size > 1:
            step = np.diff(values)
            if not ((step > 0).all() or (step < 0).all()):
                raise DataError(path, None, dim, f"{dim} is not strictly increasing or decreasing",
                                "give each cell centre once, in order")
        ds = ds.assign_coords({dim: values})
    lon = ds["lon"].values
    dlon = float(np.median(np.abs(np.diff(lon)))) if lon.size > 1 else None
    wrapped = (lon + 180.0) % 360.0 - 180.0
    wrapped = np.where(np.isclose(wrapped, -180.0) & (lon > 0), 180.0, wrapped)  # keep 180 east
    if not np.array_equal(wrapped, lon):
        if np.unique(wrapped).size < wrapped.size:
            raise DataError(path, None, "lon", "two longitudes fall on the same meridian once "
                            "written as −180…180 (e.g. 0 and 360)", "give each longitude once")
        ds = ds.assign_coords(lon=wrapped).sortby("lon")
    return ds, dlon


def _check_daily(time: xr.DataArray, path: Path) -> np.ndarray:
    """The time axis as datetime64[ns] after checking it is a daily axis within the dates the
    tables can hold."""
    values = time.values
    if values.size == 0:
        raise DataError(path, None, "time", "the cube has no time steps",
                        "give at least one day of drivers")
    if not np.issubdtype(values.dtype, np.datetime64):
        raise DataError(path, None, "time", "time is not decoded as dates",
                        "give time CF units such as 'days since 2000-01-01'")
    if np.isnat(values).any():
        raise DataError(path, None, "time", "a time step is missing (NaT)",
                        "give a date for every time step")
    seconds = values.astype("datetime64[s]")
    lo = np.datetime64(DATE_MIN.to_datetime64(), "s")
    hi = np.datetime64(DATE_MAX.to_datetime64(), "s")
    outside = (seconds < lo) | (seconds > hi)
    if outside.any():
        raise DataError(path, None, "time", f"date {pd.Timestamp(seconds[outside][0]):%Y-%m-%d} lies "
                        f"outside {DATE_MIN:%Y-%m-%d} … {DATE_MAX:%Y-%m-%d}, the dates the "
                        "projection can hold", "check the time units and reference date")
    if values.size > 1:
        step = np.diff(seconds).astype(np.int64)
        if not np.all(step == SECONDS_PER_DAY):
            raise DataError(path, None, "time", "time steps are not one day apart",
                            "aggregate to daily values first (e.g. cdo daymean / daysum) and "
                            "give a gap-free daily axis")
    return seconds.astype("datetime64[ns]")


def _location(mask: xr.DataArray) -> str:
    """``lat …, lon …[, date]`` of the first True cell of ``mask``."""
    mask = mask.compute()
    index = np.argwhere(np.asarray(mask.values))
    if not index.size:
        return ""
    where = dict(zip(mask.dims, index[0]))
    parts = [f"lat {float(mask['lat'][where['lat']]):g}", f"lon {float(mask['lon'][where['lon']]):g}"]
    if "time" in where:
        parts.append(f"{pd.Timestamp(mask['time'].values[where['time']]):%Y-%m-%d}")
    return ", ".join(parts)


def _refuse_where(mask: xr.DataArray, values: xr.DataArray, path: Path, name: str, problem: str,
                  fix: str) -> None:
    """Refuse when ``mask`` holds anywhere, naming the first such cell; ``problem`` may use
    ``{value}`` (the value there)."""
    mask = mask.compute()
    if not bool(mask.any()):
        return
    first = np.argwhere(np.asarray(mask.values))[0]
    value = float(np.asarray(values.compute().values)[tuple(first)])
    raise DataError(path, None, name, problem.format(value=value) + f" at {_location(mask)}", fix)


def _refuse_fill_codes(var: xr.DataArray, path: Path, name: str, found: bool | None = None) -> None:
    """A missing-value code left as a number (no ``_FillValue`` declares it) is never data.
    ``found``: whether the caller's scan already saw one (None: look)."""
    fill = var.isin(list(FILL_CODES))
    if found if found is not None else bool(fill.any()):
        _refuse_where(fill, var, path, name, "value {value:g} is a missing-value code, not a "
                      "measurement", "declare it as the variable's _FillValue (or missing_value) "
                      "attribute, or write NaN")


def _scan(raw: xr.DataArray, out: xr.DataArray) -> tuple[bool, float, float, bool]:
    """(any missing-value code in ``raw``, min, max, any value) of the converted ``out``, missing
    values skipped: one pass over the data."""
    import dask

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN
        fill, lo, hi, finite = dask.compute(raw.isin(list(FILL_CODES)).any(), out.min(skipna=True),
                                            out.max(skipna=True), out.notnull().any())
    return bool(fill), float(lo), float(hi), bool(finite)


def _convert_driver(canonical: str, name: str, var: xr.DataArray, path: Path) -> xr.DataArray:
    unit = _norm_unit(var.attrs.get("units"))
    if canonical == "soil_temp_c":
        if unit in _KELVIN:
            out = var - KELVIN
        elif unit in _CELSIUS:
            out = var
        else:
            raise _unit_error(path, name, unit, "K or degC")
    elif canonical == "swc":
        if unit in _VOLUME_FRACTION:
            out = var
        elif unit in _PERCENT:
            out = var / 100.0
        else:
            raise _unit_error(path, name, unit, "m3 m-3 or %")
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
    _check_range(canonical, name, unit, var, out, path)
    out.attrs = {"units": CANONICAL_UNITS[canonical], "source_variable": name,
                 "source_units": var.attrs.get("units", "")}
    return out


def _check_range(canonical: str, name: str, unit: str, raw: xr.DataArray, out: xr.DataArray,
                 path: Path) -> None:
    """No missing-value code in ``raw``; values after conversion within ``DRIVER_RANGES``; the
    first offending value is named."""
    what, shown = DRIVER_WORDS[canonical]
    fill, lo, hi, finite = _scan(raw, out)
    _refuse_fill_codes(raw, path, name, fill)
    if not finite:
        if canonical == "soil_temp_c":
            raise DataError(path, None, name, "soil temperature is missing on every cell and day",
                            "give the soil temperature (missing values are skipped per cell-day)")
        return
    low, high = DRIVER_RANGES[canonical]
    if lo >= low - _TOLERANCE and hi <= high + _TOLERANCE:
        return
    declared = f" after conversion from '{unit}'" if unit else ""
    fix = "check the units attribute and the missing-value code"
    if canonical == "soil_temp_c":
        fix = "check the units attribute (K or degC) and the missing-value code"
        if hi > KELVIN_LOOKING_C and unit in _CELSIUS:
            fix = "the values look like Kelvin: set the units attribute to K"
        elif hi > high and unit in _CELSIUS and (hi - 32.0) / 1.8 <= high:
            fix = (f"the values look like Fahrenheit ({hi:g} °F = {(hi - 32.0) / 1.8:.1f} °C): "
                   "convert to °C or K")
    elif canonical == "swc":
        fix = "check the units attribute (m3 m-3 for a volume fraction, or %) and the missing-value code"
    bad = (out < low - _TOLERANCE) | (out > high + _TOLERANCE)
    _refuse_where(bad, out, path, name, f"{what} {{value:g}} {shown}{declared} is outside "
                  f"{low:g}…{high:g} {shown} (the variable spans {lo:g}…{hi:g} {shown})", fix)


def _convert_fraction(var: xr.DataArray, path: Path, name: str) -> xr.DataArray:
    unit = _norm_unit(var.attrs.get("units"))
    if unit in _PERCENT:
        out = var / 100.0
    elif unit in {"1", "fraction", "", "0-1"}:
        out = var
    else:
        raise _unit_error(path, name, unit, "1 (fraction) or %")
    out = out.astype(np.float64)
    bad = (out < 0) | (out > 1 + _TOLERANCE)
    _refuse_where(bad, out, path, name, "fraction {value:g} is outside 0–1",
                  "give the cell fraction covered by this ecosystem as 0–1 or %")
    out = out.fillna(0.0)
    out.attrs = {"units": "1", "long_name": f"cell fraction of {name.removesuffix('_fraction')}"}
    return out


def _convert_area(var: xr.DataArray, path: Path, name: str, land: xr.DataArray | None) -> xr.DataArray:
    unit = _norm_unit(var.attrs.get("units"))
    if unit in _M2:
        out = var
    elif unit in _KM2:
        out = var * 1.0e6
    else:
        raise _unit_error(path, name, unit, "m2 or km2")
    out = out.astype(np.float64)
    _refuse_where(out <= 0, out, path, name, "cell area {value:g} m2 is not positive",
                  "give each cell's area in m2 or km2 (or leave cell_area out to compute it)")
    _refuse_where(~np.isfinite(out) if land is None else ~np.isfinite(out) & land, out, path, name,
                  "cell area is missing where an ecosystem grows",
                  "give each cell's area in m2 or km2 (or leave cell_area out to compute it)")
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


def cell_areas(lat: np.ndarray, lon: np.ndarray, dlon: float | None = None) -> xr.DataArray:
    """Cell areas (m²) of a regular lat/lon grid of cell centres, on a sphere. ``dlon``: the
    longitude spacing, where ``lon`` was re-ordered (a grid across the antimeridian)."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    dlat = abs(float(np.diff(lat).mean())) if lat.size > 1 else 1.0
    if dlon is None:
        dlon = abs(float(np.diff(lon).mean())) if lon.size > 1 else 1.0
    area = np.repeat(band_areas(lat, dlat, dlon)[:, None], lon.size, axis=1)
    return xr.DataArray(area, dims=("lat", "lon"), coords={"lat": lat, "lon": lon},
                        attrs={"units": "m2", "standard_name": "cell_area"})


def ecosystem_fractions(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """``{ecosystem: fraction}`` from the cube's ``<ecosystem>_fraction`` variables."""
    return {str(n).removesuffix("_fraction"): ds[n] for n in ds.data_vars
            if str(n).endswith("_fraction")}


def require_land_cover(ds: xr.Dataset, path: str | Path | None = None) -> dict[str, xr.DataArray]:
    """The ecosystem fractions a projection needs; refuse a cube without any, one where no cell
    has an ecosystem, and one whose land cells have no soil temperature on any day (a projection
    of it would be an empty total, not a zero one)."""
    source = path or ds.attrs.get("source_file")
    fractions = ecosystem_fractions(ds)
    if not fractions:
        raise DataError(source, None, "wetland_fraction", "no ecosystem fractions in the cube",
                        "add wetland_fraction and grassland_fraction (0–1) on (lat, lon)")
    land = (sum(fractions.values()) > 0).compute()
    if not bool(land.any()):
        raise DataError(source, None, f"{next(iter(fractions))}_fraction",
                        "no cell has a positive ecosystem fraction",
                        "give the share of each cell covered by each ecosystem (0–1)")
    if "soil_temp_c" in ds:
        with_temp = ds["soil_temp_c"].notnull().any("time").compute()
        if not bool((land & with_temp).any()):
            raise DataError(source, None, ds["soil_temp_c"].attrs.get("source_variable", "soil_temp_c"),
                            "no land cell (ecosystem fraction > 0) has a soil temperature on any day",
                            "give soil temperature where the ecosystems grow")
    return fractions
