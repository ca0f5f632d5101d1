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

A site's files are read one after the other and each a piece of text at a time
(``data.chamber.iter_csv``); what is kept of a file is its per-day sums and counts, so a folder
of half-hourly files is never held in memory at once. Days cut by a piece boundary are summed
from both sides (means equal to the whole-file ones up to rounding).

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

from data.chamber import (OUTPUT_COLUMNS, CsvTable, consume_csv, ecosystem_label, empty_table,
                          map_text, parse_numbers, read_csv_strings)
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


# ---------------------------------------------------------------- one file → daily sums
def _numbers(t: CsvTable, column: str) -> np.ndarray:
    """FLUXNET numbers: -9999 and the product's occasional 'inf' are missing; another
    missing-value code (-999, -99999, …) is refused, never read as a value."""
    return parse_numbers(t, column, missing_code=MISSING, infinite_missing=True,
                         fill_fix="FLUXNET-CH4 marks a missing value with -9999: write -9999 or "
                              "leave the cell empty")


def _stamp_text(t: CsvTable, column: str) -> pd.Series:
    """A timestamp column's cells, blanks removed."""
    codes, stripped = map_text(t, column, lambda s: s.astype(str).str.strip())
    return pd.Series(stripped[codes], dtype=object)


def _parse_timestamps(t: CsvTable, column: str, fmt: str, what: str) -> pd.Series:
    """Timestamps of a piece; unreadable ones and dates the tables cannot hold are refused (a
    repeated timestamp is looked for over the whole file, ``_FileDays.check_repeats``)."""
    raw = _stamp_text(t, column)
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
    return stamp


def _needed(header: list[str], flux_column: str) -> list[str]:
    keep = {"TIMESTAMP", "TIMESTAMP_START", "TIMESTAMP_END", flux_column, MEASURED_FLUX}
    keep.update(_profile_columns(header, ("TS",)))
    keep.update(_profile_columns(header, ("SWC_F", "SWC")))
    for names in DRIVER_SOURCES.values():
        keep.update(names)
    return [c for c in header if c in keep]


def _driver_of(header: list[str]) -> dict[str, str]:
    """Driver fed by each column that may be chosen for one (``swc`` from the SWC profile)."""
    roles = {c: "swc" for c in _profile_columns(header, ("SWC_F", "SWC"))}
    for name, names in DRIVER_SOURCES.items():
        roles.update({c: name for c in names if c in header})
    return roles


@dataclasses.dataclass
class _FileDays:
    """A site file read once, a piece at a time, kept as per-day sums and counts of every column
    the site might use (which ones it uses is known only when all its files are read). A problem
    found in a column is kept, and raised when the column is used, in the order in which a
    reader holding the whole file would meet it; what the file structure refuses is raised at
    once."""

    path: Path
    header: list[str]
    header_line: int
    daily: bool
    first_line: int = 0
    sums: pd.DataFrame | None = None  # date × column: sum of the values present
    counts: pd.DataFrame | None = None  # date × column: number of values present
    has_data: set[str] = dataclasses.field(default_factory=set)  # columns with a number anywhere
    odd: dict[str, int] = dataclasses.field(default_factory=dict)  # driver values set missing
    number_problem: dict[str, DataError] = dataclasses.field(default_factory=dict)
    soil_problem: dict[str, DataError] = dataclasses.field(default_factory=dict)
    stamp_problem: DataError | None = None
    stamps: list[np.ndarray] = dataclasses.field(default_factory=list)  # start times, ns
    lines: list[np.ndarray] = dataclasses.field(default_factory=list)
    steps: dict[int, int] = dataclasses.field(default_factory=dict)  # end − start (s) → rows

    def __post_init__(self):
        self.roles = _driver_of(self.header)

    @property
    def stamp_column(self) -> str:
        return "TIMESTAMP" if self.daily else "TIMESTAMP_START"

    def add(self, t: CsvTable, flux_column: str) -> None:
        """Fold one piece of rows into the daily sums."""
        if not self.first_line:
            self.first_line = t.line(0)
        roles = self.roles
        values = {}
        for col in t.numbers:
            if col in self.number_problem:
                continue
            try:
                v = _numbers(t, col)
            except DataError as exc:
                self.number_problem[col] = exc
                continue
            ok = np.isfinite(v)
            if ok.any():
                self.has_data.add(col)
            if _depth_rank(col, "TS") is not None and col not in self.soil_problem:
                try:
                    check_soil_temperature(pd.Series(v[ok]), t.path, col, positions=t.lines[ok] - 2)
                except DataError as exc:
                    self.soil_problem[col] = exc
            if col in roles:
                if roles[col] == "swc":
                    v = v / 100.0  # FLUXNET SWC is volumetric percent
                lo, hi = DRIVER_BOUNDS[roles[col]]
                odd = (v < lo) | (v > hi)
                self.odd[col] = self.odd.get(col, 0) + int(odd.sum())
                v = np.where(odd, np.nan, v)
            values[col] = v
        if self.stamp_problem is not None:
            return
        try:
            if self.daily:
                start = _parse_timestamps(t, "TIMESTAMP", "%Y%m%d", "YYYYMMDD")
            else:
                start = _parse_timestamps(t, "TIMESTAMP_START", "%Y%m%d%H%M", "YYYYMMDDHHMM")
        except DataError as exc:
            self.stamp_problem = exc
            return
        start = start.astype("datetime64[ns]")
        self.stamps.append(start.to_numpy().view(np.int64))
        self.lines.append(t.lines)
        if not self.daily and "TIMESTAMP_END" in self.header:
            end = pd.to_datetime(_stamp_text(t, "TIMESTAMP_END"), format="%Y%m%d%H%M",
                                 errors="coerce").to_numpy()
            # in seconds: an end after 2262 is still a step
            step = end.astype("datetime64[s]") - start.to_numpy().astype("datetime64[s]")
            step = step[~np.isnat(step)].astype(np.int64)
            for value, n in zip(*np.unique(step, return_counts=True)):
                self.steps[int(value)] = self.steps.get(int(value), 0) + int(n)
        frame = pd.DataFrame(values, index=pd.RangeIndex(len(t)))
        day = start.dt.floor("D").to_numpy()
        sums = frame.groupby(day, sort=True).sum()
        counts = frame.notna().groupby(day, sort=True).sum()
        if self.sums is None:
            self.sums, self.counts = sums, counts
        else:  # a day cut by the piece boundary is summed from both sides
            self.sums = self.sums.add(sums, fill_value=0)
            self.counts = self.counts.add(counts, fill_value=0)

    def check_repeats(self) -> None:
        stamps, lines = np.concatenate(self.stamps), np.concatenate(self.lines)
        dup = pd.Series(stamps).duplicated().to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise DataError(self.path, int(lines[i]), self.stamp_column,
                            f"timestamp {pd.Timestamp(stamps[i]):{'%Y%m%d' if self.daily else '%Y%m%d%H%M'}}"
                            " appears twice", "keep one row per time step")

    def step_minutes(self) -> float:
        """The time step: the median of end − start, or of the gaps between sorted starts."""
        if "TIMESTAMP_END" in self.header:
            values = np.array(sorted(self.steps), dtype=np.int64)
            counts = np.array([self.steps[v] for v in values.tolist()], dtype=np.int64)
        else:
            gaps = np.diff(np.sort(np.concatenate(self.stamps))) // 10**9
            values, counts = np.unique(gaps, return_counts=True)
        n = int(counts.sum())
        if not n:
            return 30.0
        cumulative = np.cumsum(counts)
        low = values[np.searchsorted(cumulative, (n - 1) // 2, side="right")]
        high = values[np.searchsorted(cumulative, n // 2, side="right")]
        return (float(low) + float(high)) / 2 / 60.0


def _read_file(path: Path, flux_column: str) -> _FileDays:
    """One site file → ``_FileDays``, a piece of text at a time."""
    def consume(pieces) -> _FileDays:
        days = None
        for t in pieces:
            if days is None:
                if "TIMESTAMP" in t.header:
                    daily = True
                elif "TIMESTAMP_START" in t.header:
                    daily = False
                else:
                    raise DataError(path, t.header_line, "TIMESTAMP",
                                    "no TIMESTAMP (daily) or TIMESTAMP_START (half-hourly) column",
                                    "give a FLUXNET-CH4 DD or HH file")
                days = _FileDays(path, t.header, t.header_line, daily)
            days.add(t, flux_column)
        return days

    return consume_csv(path, consume, columns=lambda h: _needed(h, flux_column),
                       expected=("TIMESTAMP", flux_column),
                       numeric=lambda c: not c.startswith("TIMESTAMP"))


def _first_with_data(columns: list[str], files: list[_FileDays]) -> tuple[str | None, str | None]:
    """The first column with any non-missing value across a site's files, and the first listed.
    A problem in a column looked at on the way is raised."""
    present = [c for c in columns if any(c in f.header for f in files)]
    for c in present:
        for f in files:
            if c in f.header:
                if c in f.number_problem:
                    raise f.number_problem[c]
                if c in f.has_data:
                    return c, present[0]
    return None, (present[0] if present else None)


def _file_days(f: _FileDays, flux_column: str, ts_col: str, drivers: dict[str, str | None],
               min_coverage: float, dropped: dict[str, int]) -> pd.DataFrame:
    """The daily table of one file, its problems raised in the order the columns are used."""
    if flux_column not in f.header:
        fch4 = ", ".join(c for c in f.header if c.startswith("FCH4")) or "none"
        raise DataError(f.path, f.header_line, flux_column, f"column {flux_column} is missing "
                        f"(FCH4 columns here: {fch4})", "pass flux_column= one of the FCH4 columns")
    used = [flux_column, ts_col, *(c for c in drivers.values() if c is not None)]
    for col in used:
        if col in f.header and col in f.number_problem:
            raise f.number_problem[col]
        if col == ts_col and col in f.soil_problem:
            raise f.soil_problem[col]
    for name, col in drivers.items():
        if col is not None and col in f.header:
            count_drop(dropped, f"{name} implausible (set missing)", f.odd.get(col, 0))
    if f.stamp_problem is not None:
        raise f.stamp_problem
    f.check_repeats()

    def mean(col: str | None) -> pd.Series:
        if col is None or col not in f.sums.columns:
            return pd.Series(np.nan, index=f.sums.index)
        return (f.sums[col] / f.counts[col]).where(f.counts[col] > 0)

    days = pd.DataFrame({"flux": mean(flux_column), "soil_temp_c": mean(ts_col),
                         **{name: mean(col) for name, col in drivers.items()}})
    days["n_sub"] = f.counts[flux_column].astype(int)
    days.index.name = "date"
    if f.daily:
        days["n_sub"] = 1
        missing = days["flux"].isna()
        count_drop(dropped, "flux missing", int(missing.sum()))
        return days.loc[~missing].reset_index()

    step_min = f.step_minutes()
    if not step_min > 0 or 1440 % step_min:
        raise DataError(f.path, f.first_line, "TIMESTAMP_START", f"time step of {step_min:g} min "
                        "does not divide a day", "give half-hourly or hourly rows")
    if MEASURED_FLUX in f.header and MEASURED_FLUX in f.number_problem:
        raise f.number_problem[MEASURED_FLUX]
    measured = MEASURED_FLUX if MEASURED_FLUX in f.header else flux_column
    coverage = f.counts[measured] / (1440.0 / step_min)
    none = days["n_sub"].eq(0) & coverage.eq(0)
    low = ~none & (coverage < min_coverage)
    count_drop(dropped, "flux missing", int(none.sum()))
    count_drop(dropped, "coverage below threshold", int(low.sum()))
    return days.loc[~none & ~low & days["n_sub"].gt(0)].reset_index()


def _read_site(site: str, files: list[Path], *, flux_column: str, min_coverage: float,
               lookup: _SiteLookup, dropped: dict[str, int],
               skipped: dict[str, str]) -> pd.DataFrame | None:
    # file by file: only one file's text is held at a time, the rest is daily sums
    read = [_read_file(f, flux_column) for f in files]
    headers = sorted({c for f in read for c in f.header})
    ts_col, shallowest = _first_with_data(_profile_columns(headers, ("TS",)), read)
    if ts_col is None:
        skipped[site] = ("no soil temperature column" if shallowest is None
                         else f"soil temperature columns ({shallowest}…) hold no data")
        return None
    if ts_col != shallowest:
        warnings.warn(f"{site}: {shallowest} holds no data; soil temperature taken from {ts_col}",
                      UserWarning, stacklevel=3)
    drivers: dict[str, str | None] = {}
    drivers["swc"] = _first_with_data(_profile_columns(headers, ("SWC_F", "SWC")), read)[0]
    for name, names in DRIVER_SOURCES.items():
        drivers[name] = _first_with_data([c for c in names if c in headers], read)[0]

    parts = [_file_days(f, flux_column, ts_col, drivers, min_coverage, dropped) for f in read]
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
