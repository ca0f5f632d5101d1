"""FLUXNET-CH4 reader: daily (DD) or half-hourly (HH) eddy-covariance site files → Observations.

Files are found by name, ``FLX_<SITE>_FLUXNET-CH4_<DD|HH>_<years>_<version>.csv[.gz]`` (AmeriFlux
``AMF_<SITE>_BASE_HH_<version>.csv`` is read the same way); the site id comes from the name,
``-9999`` (any spelling: ``-9999.0``) and an empty cell are missing; another missing-value code
(``-999``, ``-99999``, …: ``data.table.FILL_CODES``) is refused rather than read as a value, and so
is a timestamp outside 1677-09-22 … 2262-04-11. Whether a file is daily or sub-daily is decided by its columns:
``TIMESTAMP`` (YYYYMMDD) is daily, ``TIMESTAMP_START``/``TIMESTAMP_END`` (YYYYMMDDHHMM) sub-daily.

What is read
    flux          ``flux_column`` (default ``FCH4``, measured only; ``FCH4_F`` is gap-filled), in
                  nmol CH4 m⁻² s⁻¹ as FLUXNET-CH4 publishes it
    soil_temp_c   the shallowest ``TS_*`` column with any data at that site (``TS_1`` before
                  ``TS_2`` …; AmeriFlux ``TS_h_v_r`` by vertical index). When a shallower column
                  exists but is empty, a warning says which column was used; the column name is
                  kept in ``soil_temp_source``. A site with no ``TS_*`` data is skipped and named in
                  ``skipped_sites``.
    drivers       gap-filled where FLUXNET-CH4 has it, because a daily mean of measured-only
                  half-hours leans towards the hours that were measured (NZ-Kop 2012-01-01: NEE
                  −3.79 measured-only vs −1.42 gap-filled): wtd_m ← WTD_F | WTD (m, positive above
                  the surface, as published), swc ← shallowest SWC_F_* | SWC_* (% → m³ m⁻³
                  fraction), ustar ← USTAR (m s⁻¹), le ← LE_F | LE (W m⁻²), nee ← NEE_F | NEE and
                  gpp ← GPP_NT | GPP_DT | GPP (µmol CO2 m⁻² s⁻¹ daily means, as published).
                  Driver values outside ``DRIVER_BOUNDS`` (partitioning artefacts such as
                  GPP_NT = 1.6e142 at RU-Ch2) are set missing and counted as
                  ``<driver> implausible (set missing)``; ``inf`` in any column is read as missing.

Daily files: the published daily mean is one value, so ``n_sub`` = 1 (the file does not say how
many half-hours went into it). Half-hourly files: days are calendar days of ``TIMESTAMP_START``;
a day is kept when the fraction of its time steps with a *measured* flux (``FCH4``, whatever
``flux_column`` is) reaches ``min_coverage`` (default 0.5, i.e. 24 of 48 half-hours); flux, soil
temperature and drivers are means of the values present, and ``n_sub`` is the number of flux
values averaged. The time step is read from the timestamps (30 or 60 min).

Rows dropped and counted (site-days): ``flux missing``, ``coverage below threshold`` (HH only),
``soil temperature missing``, ``flux implausibly large`` (|flux| > 1000 nmol m⁻² s⁻¹: single
spikes in the published product, e.g. DE-Hte 2014-12-20 at 3318 nmol m⁻² s⁻¹ where the gap-filled
value is 176). Zero fluxes are kept (models decide). Days of skipped sites are not counted.

Coordinates and ecosystem come from, in order: ``metadata=`` (a CSV with ID or site, LAT, LON,
IGBP); a ``*site_metadata*.csv`` beside the data files or in ``metadata_folders`` (the registry
passes its ``fluxnet-ch4`` folder; McNicol-Lab/upch4 FLUXNET-CH4 site table, ids upper-case, matched
without case); the package table ``fluxnet_sites.csv``. IGBP ``WET`` → wetland, ``GRA`` → grassland, others → their
lower-case name (``CRO`` → cropland).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from data.chamber import (OUTPUT_COLUMNS, CsvTable, ecosystem_label, empty_table, parse_numbers,
                          read_csv_strings)
from data.errors import DataError
from data.table import (ABSURD_FLUX, DATE_RANGE_FIX, Observations, check_soil_temperature,
                        count_drop, date_range_problem, dates_outside_range, validate_observations)

MISSING = -9999.0
FILE_RE = re.compile(r"^(?:FLX|AMF)_(?P<site>[A-Za-z]{2}-[A-Za-z0-9]{3})_.*\.csv(?:\.gz)?$",
                     re.IGNORECASE)
MEASURED_FLUX = "FCH4"
DRIVER_SOURCES = {
    "wtd_m": ("WTD_F", "WTD"),
    "ustar": ("USTAR",),
    "le": ("LE_F", "LE"),
    "nee": ("NEE_F", "NEE"),
    "gpp": ("GPP_NT", "GPP_DT", "GPP"),
}
# Driver values outside these bounds are processing artefacts of the published product (e.g.
# GPP_NT = 1.6e142 at RU-Ch2); they are set missing and counted. SWC up to 150 % is kept because
# saturated peat probes read slightly above 100 % (US-BZF: 105 %).
DRIVER_BOUNDS = {"wtd_m": (-10.0, 10.0), "swc": (0.0, 1.5), "ustar": (0.0, 10.0),
                 "le": (-1000.0, 1500.0), "nee": (-100.0, 100.0), "gpp": (-100.0, 100.0)}
METADATA_FILE_GLOB = "*site_metadata*.csv"
PACKAGED_SITES = "fluxnet_sites.csv"


@dataclasses.dataclass(frozen=True)
class SiteInfo:
    latitude: float
    longitude: float
    ecosystem: str
    source: str


# ---------------------------------------------------------------- column choice
def _depth_rank(name: str, stem: str) -> tuple[int, ...] | None:
    """Sort key of a profile column (``TS_2`` → (2,), ``TS_1_2_1`` → (2, 1, 1)); None if not one."""
    m = re.fullmatch(rf"{stem}(?:_(\d+))?(?:_(\d+)_(\d+))?", name)
    if not m:
        return None
    if m.group(1) is None:
        return (0,)
    if m.group(2) is None:
        return (int(m.group(1)),)
    return (int(m.group(2)), int(m.group(1)), int(m.group(3)))


def _profile_columns(header: list[str], stems: tuple[str, ...]) -> list[str]:
    """Profile columns, gap-filled stem first when listed first, shallowest first within a stem."""
    out: list[str] = []
    for stem in stems:
        ranked = sorted((r, c) for c in header if (r := _depth_rank(c, stem)) is not None)
        out += [c for _, c in ranked]
    return out


# ---------------------------------------------------------------- site metadata
def read_site_metadata(path: str | Path) -> dict[str, SiteInfo]:
    """Site table → {UPPER-CASE site id: SiteInfo}. Columns ID|site, LAT|latitude, LON|longitude,
    IGBP|ecosystem (case-insensitive). Rows without coordinates are left out."""
    t = read_csv_strings(path, lower=True, expected=("ID", "LAT", "LON", "IGBP"))
    pick = {}
    for key, names in (("id", ("id", "site", "site_id")), ("lat", ("lat", "latitude", "location_lat")),
                       ("lon", ("lon", "longitude", "location_long")), ("igbp", ("igbp", "ecosystem"))):
        name = next((n for n in names if n in t.header), None)
        if name is None:
            raise DataError(t.path, t.header_line, names[0].upper(),
                            f"site table has no {'/'.join(names)} column",
                            "give a CSV with columns ID (or site), LAT, LON, IGBP")
        pick[key] = name
    lat = parse_numbers(t, pick["lat"], what="decimal degrees")
    lon = parse_numbers(t, pick["lon"], what="decimal degrees")
    out: dict[str, SiteInfo] = {}
    for i in range(len(t.frame)):
        site = str(t.frame[pick["id"]].iloc[i]).strip().upper()
        if not site or not (np.isfinite(lat[i]) and np.isfinite(lon[i])):
            continue
        if abs(lat[i]) > 90 or abs(lon[i]) > 180:
            col = pick["lat"] if abs(lat[i]) > 90 else pick["lon"]
            raise DataError(t.path, t.line(i), col, f"coordinate {lat[i]:g}, {lon[i]:g} is out of range",
                            "give decimal degrees (south and west negative)")
        eco = ecosystem_label(t.frame[pick["igbp"]].iloc[i])
        if not eco:
            raise DataError(t.path, t.line(i), pick["igbp"], f"site {site} has no IGBP class",
                            "give an IGBP code (WET, GRA, …) or an ecosystem label")
        out.setdefault(site, SiteInfo(float(lat[i]), float(lon[i]), eco, f"{t.path}:{t.line(i)}"))
    return out


def _metadata_sources(folders: list[Path], metadata: str | Path | None) -> list[Path | str]:
    sources: list[Path | str] = []
    if metadata is not None:
        sources.append(Path(metadata))
    seen = set()
    for folder in folders:
        for f in sorted(folder.glob(METADATA_FILE_GLOB)):
            if f.resolve() not in seen:
                seen.add(f.resolve())
                sources.append(f)
    sources.append(PACKAGED_SITES)
    return sources


class _SiteLookup:
    """Coordinates and ecosystem per site from the first source that has the site."""

    def __init__(self, sources: list[Path | str]):
        self.sources = sources
        self._tables: list[dict[str, SiteInfo] | None] = [None] * len(sources)

    def _table(self, k: int) -> dict[str, SiteInfo]:
        if self._tables[k] is None:
            src = self.sources[k]
            if src == PACKAGED_SITES:
                with resources.as_file(resources.files("data") / PACKAGED_SITES) as p:
                    self._tables[k] = read_site_metadata(p) if p.exists() else {}
            else:
                self._tables[k] = read_site_metadata(src)
        return self._tables[k]

    def get(self, site: str, file: Path) -> SiteInfo:
        for k in range(len(self.sources)):
            info = self._table(k).get(site.upper())
            if info is not None:
                return info
        looked = ", ".join(str(s) for s in self.sources)
        raise DataError(file, None, "site", f"no coordinates for site {site} (looked in {looked})",
                        "pass metadata=CSV with columns ID, LAT, LON, IGBP for this site")


# ---------------------------------------------------------------- one file → daily frame
def _numbers(t: CsvTable, column: str) -> np.ndarray:
    """FLUXNET numbers: -9999 and the product's occasional 'inf' are missing; another
    missing-value code (-999, -99999, …) is refused, never read as a value."""
    return parse_numbers(t, column, missing_code=MISSING, infinite_missing=True,
                         fill_fix="FLUXNET-CH4 marks a missing value with -9999: write -9999 or "
                              "leave the cell empty")


def _parse_timestamps(t: CsvTable, column: str, fmt: str, what: str) -> pd.Series:
    raw = t.frame[column].astype(str).str.strip()
    stamp = pd.to_datetime(raw, format=fmt, errors="coerce")
    # strptime would read the 7-digit 2020013 as 2020-01-03; FLUXNET stamps have fixed width
    bad = stamp.isna().to_numpy() | ~raw.str.fullmatch(r"\d{%d}" % len(what)).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(t.path, t.line(i), column, f"timestamp {raw.iloc[i][:20]!r} cannot be read",
                        f"write {column} as {what}, as FLUXNET-CH4 does")
    outside = dates_outside_range(stamp)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise DataError(t.path, t.line(i), column, date_range_problem(stamp.iloc[i]), DATE_RANGE_FIX)
    dup = stamp.duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(t.path, t.line(i), column, f"timestamp {raw.iloc[i]} appears twice",
                        "keep one row per time step")
    return stamp


@dataclasses.dataclass
class _SiteFile:
    table: CsvTable
    daily: bool


def _needed(header: list[str], flux_column: str) -> list[str]:
    keep = {"TIMESTAMP", "TIMESTAMP_START", "TIMESTAMP_END", flux_column, MEASURED_FLUX}
    keep.update(_profile_columns(header, ("TS",)))
    keep.update(_profile_columns(header, ("SWC_F", "SWC")))
    for names in DRIVER_SOURCES.values():
        keep.update(names)
    return [c for c in header if c in keep]


def _first_with_data(columns: list[str], files: list[_SiteFile]) -> tuple[str | None, str | None]:
    """The first column with any non-missing value across a site's files, and the first listed."""
    present = [c for c in columns if any(c in f.table.header for f in files)]
    for c in present:
        for f in files:
            if c in f.table.header and np.isfinite(_numbers(f.table, c)).any():
                return c, present[0]
    return None, (present[0] if present else None)


def _file_days(sf: _SiteFile, flux_column: str, ts_col: str, drivers: dict[str, str | None],
               min_coverage: float, dropped: dict[str, int]) -> pd.DataFrame:
    t = sf.table
    if flux_column not in t.header:
        fch4 = ", ".join(c for c in t.header if c.startswith("FCH4")) or "none"
        raise DataError(t.path, t.header_line, flux_column, f"column {flux_column} is missing "
                        f"(FCH4 columns here: {fch4})", "pass flux_column= one of the FCH4 columns")
    values = {"flux": _numbers(t, flux_column)}
    values["soil_temp_c"] = (_numbers(t, ts_col) if ts_col in t.header
                             else np.full(len(t.frame), np.nan))
    ok = np.isfinite(values["soil_temp_c"])
    check_soil_temperature(pd.Series(values["soil_temp_c"][ok]), t.path, ts_col,
                           positions=t.lines[ok] - 2)
    for name, col in drivers.items():
        v = (_numbers(t, col) if col is not None and col in t.header
             else np.full(len(t.frame), np.nan))
        if name == "swc":
            v = v / 100.0  # FLUXNET SWC is volumetric percent
        lo, hi = DRIVER_BOUNDS[name]
        odd = (v < lo) | (v > hi)
        count_drop(dropped, f"{name} implausible (set missing)", int(odd.sum()))
        values[name] = np.where(odd, np.nan, v)
    frame = pd.DataFrame(values)

    if sf.daily:
        frame["date"] = _parse_timestamps(t, "TIMESTAMP", "%Y%m%d", "YYYYMMDD").to_numpy()
        frame["n_sub"] = 1
        count_drop(dropped, "flux missing", int(frame["flux"].isna().sum()))
        return frame.dropna(subset=["flux"])

    start = _parse_timestamps(t, "TIMESTAMP_START", "%Y%m%d%H%M", "YYYYMMDDHHMM")
    if "TIMESTAMP_END" in t.header:
        end = pd.to_datetime(t.frame["TIMESTAMP_END"].astype(str).str.strip(), format="%Y%m%d%H%M",
                             errors="coerce")
        steps = (end - start).dropna()
    else:
        steps = start.sort_values().diff().dropna()
    step_min = float(steps.median().total_seconds() / 60.0) if len(steps) else 30.0
    if not step_min > 0 or 1440 % step_min:
        raise DataError(t.path, t.line(0), "TIMESTAMP_START", f"time step of {step_min:g} min does "
                        "not divide a day", "give half-hourly or hourly rows")
    per_day = 1440.0 / step_min
    measured = (_numbers(t, MEASURED_FLUX)
                if MEASURED_FLUX in t.header else frame["flux"].to_numpy())
    frame["_measured"] = np.isfinite(measured)
    frame["date"] = start.dt.floor("D").to_numpy()
    grouped = frame.groupby("date", sort=True)
    days = grouped.mean(numeric_only=True).drop(columns="_measured")
    days["n_sub"] = grouped["flux"].count()
    coverage = grouped["_measured"].sum() / per_day
    none = days["n_sub"].eq(0) & coverage.eq(0)
    low = ~none & (coverage < min_coverage)
    count_drop(dropped, "flux missing", int(none.sum()))
    count_drop(dropped, "coverage below threshold", int(low.sum()))
    days = days.loc[~none & ~low & days["n_sub"].gt(0)]
    return days.reset_index()


def _read_site(site: str, files: list[Path], *, flux_column: str, min_coverage: float,
               lookup: _SiteLookup, dropped: dict[str, int],
               skipped: dict[str, str]) -> pd.DataFrame | None:
    tables = []
    for f in files:
        t = read_csv_strings(f, columns=lambda h: _needed(h, flux_column),
                             expected=("TIMESTAMP", flux_column))
        if "TIMESTAMP" in t.header:
            daily = True
        elif "TIMESTAMP_START" in t.header:
            daily = False
        else:
            raise DataError(f, t.header_line, "TIMESTAMP",
                            "no TIMESTAMP (daily) or TIMESTAMP_START (half-hourly) column",
                            "give a FLUXNET-CH4 DD or HH file")
        tables.append(_SiteFile(t, daily))
    headers = sorted({c for sf in tables for c in sf.table.header})
    ts_col, shallowest = _first_with_data(_profile_columns(headers, ("TS",)), tables)
    if ts_col is None:
        skipped[site] = ("no soil temperature column" if shallowest is None
                         else f"soil temperature columns ({shallowest}…) hold no data")
        return None
    if ts_col != shallowest:
        warnings.warn(f"{site}: {shallowest} holds no data; soil temperature taken from {ts_col}",
                      UserWarning, stacklevel=3)
    drivers: dict[str, str | None] = {}
    drivers["swc"] = _first_with_data(_profile_columns(headers, ("SWC_F", "SWC")), tables)[0]
    for name, names in DRIVER_SOURCES.items():
        drivers[name] = _first_with_data([c for c in names if c in headers], tables)[0]

    parts = [_file_days(sf, flux_column, ts_col, drivers, min_coverage, dropped) for sf in tables]
    days = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if len(parts) > 1:
        dup = days.duplicated("date")
        if dup.any():
            when = pd.Timestamp(days.loc[dup, "date"].iloc[0])
            raise DataError(files[1], None, "TIMESTAMP", f"site {site} has {when:%Y-%m-%d} in more "
                            "than one file", "keep one file per site and period")
    no_t = days["soil_temp_c"].isna()
    count_drop(dropped, "soil temperature missing", int(no_t.sum()))
    days = days.loc[~no_t]
    big = days["flux"].abs() > ABSURD_FLUX
    count_drop(dropped, "flux implausibly large", int(big.sum()))
    days = days.loc[~big]
    if days.empty:  # nothing to place: a site without coordinates is only an error if it has data
        return days

    info = lookup.get(site, files[0])
    days = days.assign(site=site, days=1, ecosystem=info.ecosystem, method="eddy_covariance",
                       latitude=info.latitude, longitude=info.longitude, soil_temp_source=ts_col)
    return days


# ---------------------------------------------------------------- public entry point
def site_files(path: str | Path) -> dict[str, list[Path]]:
    """FLUXNET-CH4 / AmeriFlux site files under ``path`` (a file or folder), grouped by site."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and FILE_RE.match(p.name))
        if not files:
            raise DataError(path, None, None, "folder holds no FLUXNET-CH4 site files",
                            "point at FLX_<SITE>_FLUXNET-CH4_DD_….csv[.gz] files or their folder")
    elif path.exists():
        if not FILE_RE.match(path.name):
            raise DataError(path, None, None, "cannot tell the site from the file name",
                            "name the file FLX_<SITE>_FLUXNET-CH4_<DD|HH>_<years>_<version>.csv")
        files = [path]
    else:
        raise DataError(path, None, None, "no such file or folder", "check the path")
    groups: dict[str, list[Path]] = {}
    for f in files:
        site = FILE_RE.match(f.name)["site"]
        key = next((k for k in groups if k.upper() == site.upper()), site)
        groups.setdefault(key, []).append(f)
    return groups


def _resolution(f: Path) -> str | None:
    m = re.search(r"_(DD|HH|HR)_", f.name, re.IGNORECASE)
    return m.group(1).upper() if m else None


def read_fluxnet_ch4(path: str | Path, *, flux_column: str = "FCH4",
                     metadata: str | Path | None = None, min_coverage: float = 0.5,
                     resolution: str | None = None,
                     metadata_folders: Iterable[Path] = ()) -> Observations:
    """Read FLUXNET-CH4 site file(s) into validated daily Observations (see module docstring).

    ``resolution`` ("DD" or "HH") chooses between daily and half-hourly files where a folder holds
    both for a site; without it such a folder is refused rather than one of them guessed.
    ``metadata_folders``: more folders searched for a ``*site_metadata*.csv`` after the data's own.
    """
    if not (isinstance(min_coverage, (int, float)) and 0.0 <= min_coverage <= 1.0):
        raise DataError(None, None, "min_coverage", f"min_coverage {min_coverage!r} is not in 0…1",
                        "give the fraction of a day's time steps that must hold a measured flux")
    if resolution is not None and str(resolution).upper() not in ("DD", "HH"):
        raise DataError(None, None, "resolution", f"unknown resolution {resolution!r}",
                        "use DD or HH")
    groups = site_files(path)
    folders = sorted({f.parent for fs in groups.values() for f in fs})
    lookup = _SiteLookup(_metadata_sources([*folders, *map(Path, metadata_folders)], metadata))
    dropped: dict[str, int] = {}
    skipped: dict[str, str] = {}
    parts = []
    sources: list[Path] = []
    for site, files in groups.items():
        kinds = {_resolution(f) for f in files}
        if resolution is not None:
            files = [f for f in files if _resolution(f) in (str(resolution).upper(), None)]
            if not files:
                skipped[site] = f"no {str(resolution).upper()} file"
                continue
        elif {"DD", "HH"} <= kinds:
            raise DataError(files[0].parent, None, None, f"site {site} has both daily (DD) and "
                            "half-hourly (HH) files", "pass resolution='DD' or 'HH'")
        sources += files
        days = _read_site(site, files, flux_column=flux_column, min_coverage=min_coverage,
                          lookup=lookup, dropped=dropped, skipped=skipped)
        if days is not None and len(days):
            parts.append(days)
    if not parts and not skipped and dropped.get("flux missing"):
        # Sites skipped whole are reported as skipped; a flux column that is empty on every day is
        # an input error.
        raise DataError(sources[0], 1, flux_column, f"column {flux_column} is missing on every day",
                        "check the file, or use --flux-column FCH4_F for the gap-filled flux")
    table = pd.concat(parts, ignore_index=True) if parts else empty_table()
    table = validate_observations(table[list(OUTPUT_COLUMNS)], path)
    return Observations(table=table, dropped=dropped, skipped_sites=skipped, sources=sources)
