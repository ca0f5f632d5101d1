"""COSORE dataset-folder reader (automated soil chambers) → daily Observations.

A COSORE dataset folder holds ``DESCRIPTION.txt`` (``KEY: value`` lines; ``CSR_SITE_NAME``,
``CSR_LATITUDE``, ``CSR_LONGITUDE``, ``CSR_IGBP`` are used) and one or more ``*_data.csv[.gz]``
tables with ``CSR_PORT``, ``CSR_TIMESTAMP_BEGIN`` (``YYYY-MM-DD HH:MM:SS``, the site's local
time), ``CSR_FLUX_CH4`` (nmol CH4 m⁻² s⁻¹, + emission), soil temperature ``CSR_T<depth cm>``
(°C; the shallowest with data is used) and optionally soil moisture ``CSR_SM<depth cm>`` and
water table ``CSR_WTD`` (cm, positive = depth below the surface → ``wtd_m`` = −CSR_WTD / 100).

Repeated readings. A reading (same port and start time) may appear several times with different
soil moisture and temperature: the Hongyuan table (d20200407_WANG) lists every reading three
times, once per soil probe, and which probe sits at which chamber is not recorded. Such repeats
are merged into one reading whose soil temperature and moisture are the mean over the repeats
(the flux must be identical, otherwise the file is refused); the merged rows are counted as
``repeated reading merged``.

Soil moisture. COSORE specifies m³ m⁻³, but some datasets (Hongyuan: 8–37) give volumetric
percent. A column with any value above 1.5 is read as percent and divided by 100; values above
100 % are refused.

Daily means per site (``site`` = CSR_SITE_NAME) or, with ``per_chamber=True``, per chamber
(``site`` = ``<CSR_SITE_NAME>-P<port>``), over the local calendar day; ``n_sub`` = readings
averaged; ``method`` = ``autochamber``. Readings dropped before averaging are counted (in
readings, not days): ``flux missing``, ``soil temperature missing``, ``flux implausibly large``
(|flux| > 1000 nmol m⁻² s⁻¹, a single-reading spike). A dataset without a ``CSR_T*`` column is
skipped and named in ``skipped_sites``. Missing values are ``NA`` or empty; a missing-value code
such as ``-9999`` or ``-999`` (``data.table.FILL_CODES``) is refused, never read as a flux, and so
is a timestamp outside 1677-09-22 … 2262-04-11.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from data.chamber import (OUTPUT_COLUMNS, CsvTable, ecosystem_label, empty_table, parse_numbers,
                          read_csv_strings, read_text)
from data.errors import DataError
from data.table import (ABSURD_FLUX, DATE_RANGE_FIX, Observations, check_soil_temperature,
                        count_drop, date_range_problem, dates_outside_range, validate_observations)

DESCRIPTION_KEYS = ("CSR_SITE_NAME", "CSR_LATITUDE", "CSR_LONGITUDE", "CSR_IGBP")
DATA_REQUIRED = ("CSR_PORT", "CSR_TIMESTAMP_BEGIN", "CSR_FLUX_CH4")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
PERCENT_ABOVE = 1.5  # soil moisture above this cannot be m3 m-3, so the column is in percent


def read_description(path: str | Path) -> dict[str, tuple[str, int]]:
    """``KEY: value`` lines of a COSORE DESCRIPTION.txt → {KEY: (value, line)}; # lines skipped."""
    out: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        m = re.match(r"\s*(CSR_[A-Z0-9_]+)\s*:(.*)$", line)
        if m and not line.lstrip().startswith("#"):
            out.setdefault(m.group(1), (m.group(2).strip(), number))
    return out


def _site_info(folder: Path) -> tuple[str, float, float, str]:
    desc_path = folder / "DESCRIPTION.txt"
    if not desc_path.is_file():
        raise DataError(desc_path, None, None, "COSORE DESCRIPTION.txt is missing",
                        "give a COSORE dataset folder whose DESCRIPTION.txt has "
                        + ", ".join(DESCRIPTION_KEYS))
    desc = read_description(desc_path)
    for key in DESCRIPTION_KEYS:
        if not desc.get(key, ("", 0))[0]:
            raise DataError(desc_path, desc.get(key, ("", None))[1], key, f"{key} is missing or empty",
                            f"add a line '{key}: value' to DESCRIPTION.txt")
    coords = []
    for key, limit in (("CSR_LATITUDE", 90.0), ("CSR_LONGITUDE", 180.0)):
        text, line = desc[key]
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value) or abs(value) > limit:
            raise DataError(desc_path, line, key, f"{key} {text[:30]!r} is not a coordinate",
                            "give decimal degrees (south and west negative)")
        coords.append(value)
    eco = ecosystem_label(desc["CSR_IGBP"][0])
    if not eco:
        raise DataError(desc_path, desc["CSR_IGBP"][1], "CSR_IGBP", "CSR_IGBP is empty",
                        "give the IGBP class, e.g. Grassland or Wetland")
    return desc["CSR_SITE_NAME"][0], coords[0], coords[1], eco


def _numbers(t: CsvTable, column: str, **options) -> np.ndarray:
    """A numeric column; a missing-value code such as -9999 is refused (COSORE writes NA)."""
    return parse_numbers(t, column, fill_fix="COSORE marks a missing value with NA: write NA or "
                                              "leave the cell empty", **options)


def _depth_columns(header: list[str], stem: str) -> list[str]:
    found = [(int(m.group(1)), c) for c in header if (m := re.fullmatch(rf"{stem}(\d+)", c))]
    return [c for _, c in sorted(found)]


def _readings(t: CsvTable) -> tuple[pd.DataFrame, str | None]:
    """One frame of readings from a data table, with the soil-temperature column used."""
    missing = [c for c in DATA_REQUIRED if c not in t.header]
    if missing:
        raise DataError(t.path, t.header_line, missing[0], f"required column '{missing[0]}' is missing",
                        f"a COSORE data table needs {', '.join(DATA_REQUIRED)} and a CSR_T<depth> column")
    raw = t.frame["CSR_TIMESTAMP_BEGIN"].astype(str).str.strip()
    stamp = pd.to_datetime(raw, format=TIMESTAMP_FORMAT, errors="coerce")
    if stamp.isna().any():
        i = int(np.flatnonzero(stamp.isna().to_numpy())[0])
        raise DataError(t.path, t.line(i), "CSR_TIMESTAMP_BEGIN", f"timestamp {raw.iloc[i][:30]!r} "
                        "cannot be read", "write timestamps as YYYY-MM-DD HH:MM:SS")
    outside = dates_outside_range(stamp)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise DataError(t.path, t.line(i), "CSR_TIMESTAMP_BEGIN", date_range_problem(stamp.iloc[i]),
                        DATE_RANGE_FIX)
    port = _numbers(t, "CSR_PORT", what="a port number")
    bad = ~np.isfinite(port) | (port != np.round(port)) | (port < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(t.path, t.line(i), "CSR_PORT", f"port {t.frame['CSR_PORT'].iloc[i][:20]!r} "
                        "is not a whole number ≥ 0", "give the chamber (multiplexer port) number")
    temps = _depth_columns(t.header, "CSR_T")
    temp_col = next((c for c in temps if np.isfinite(_numbers(t, c)).any()), None)
    frame = pd.DataFrame({
        "port": port.astype(int), "time": stamp.to_numpy(),
        "flux": _numbers(t, "CSR_FLUX_CH4"),
        "soil_temp_c": _numbers(t, temp_col) if temp_col else np.nan,
        "swc": np.nan, "wtd_m": np.nan, "line": t.lines,
    })
    if temp_col:
        ok = np.isfinite(frame["soil_temp_c"].to_numpy())
        check_soil_temperature(frame.loc[ok, "soil_temp_c"], t.path, temp_col,
                               positions=t.lines[ok] - 2)
    sm_col = next((c for c in _depth_columns(t.header, "CSR_SM") if np.isfinite(_numbers(t, c)).any()),
                  None)
    if sm_col:
        sm = _numbers(t, sm_col)
        if np.nanmax(sm) > PERCENT_ABOVE:
            sm = sm / 100.0
        bad = (sm < 0) | (sm > 1.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(t.path, t.line(i), sm_col, f"soil moisture {t.frame[sm_col].iloc[i]} is "
                            "outside 0…100 % (0…1 m3 m-3)", "check the unit of this column")
        frame["swc"] = sm
    if "CSR_WTD" in t.header:
        frame["wtd_m"] = -_numbers(t, "CSR_WTD") / 100.0
    return frame, temp_col


def _merge_repeats(frame: pd.DataFrame, files: list[Path], dropped: dict[str, int]) -> pd.DataFrame:
    key = ["port", "time"]
    groups = frame.groupby(key, sort=False)
    first = groups["flux"].transform("first")
    conflict = ~((frame["flux"] == first) | (frame["flux"].isna() & first.isna())).to_numpy()
    if conflict.any():
        i = int(np.flatnonzero(conflict)[0])
        raise DataError(files[int(frame["file"].iloc[i])], int(frame["line"].iloc[i]), "CSR_FLUX_CH4",
                        f"port {frame['port'].iloc[i]} at {frame['time'].iloc[i]} appears more than "
                        "once with different fluxes", "keep one flux per chamber reading")
    merged = groups.agg(flux=("flux", "first"), soil_temp_c=("soil_temp_c", "mean"),
                        swc=("swc", "mean"), wtd_m=("wtd_m", "mean"), line=("line", "first"))
    count_drop(dropped, "repeated reading merged", len(frame) - len(merged))
    return merged.reset_index()


def read_cosore(path: str | Path, *, per_chamber: bool = False) -> Observations:
    """Read a COSORE dataset folder into daily Observations (see module docstring)."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise DataError(path, None, None, "no such folder", "give a COSORE dataset folder")
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and re.search(r"_data\.csv(\.gz)?$", p.name, re.IGNORECASE))
    if not files:
        raise DataError(path, None, None, "no *_data.csv[.gz] table in the folder",
                        "give a COSORE dataset folder with its data table exported as CSV")
    site, lat, lon, eco = _site_info(path)
    dropped: dict[str, int] = {}
    parts, temp_cols = [], set()
    for k, f in enumerate(files):
        t = read_csv_strings(f, expected=DATA_REQUIRED)
        frame, temp_col = _readings(t)
        if temp_col is None:
            continue
        frame["file"] = k
        temp_cols.add(temp_col)
        parts.append(frame)
    if not parts:
        return Observations(table=validate_observations(empty_table(), path), dropped=dropped,
                            skipped_sites={site: "no soil temperature column"}, sources=files)
    readings = _merge_repeats(pd.concat(parts, ignore_index=True), files, dropped)

    no_flux = readings["flux"].isna()
    count_drop(dropped, "flux missing", int(no_flux.sum()))
    no_t = ~no_flux & readings["soil_temp_c"].isna()
    count_drop(dropped, "soil temperature missing", int(no_t.sum()))
    big = ~no_flux & ~no_t & (readings["flux"].abs() > ABSURD_FLUX)
    count_drop(dropped, "flux implausibly large", int(big.sum()))
    readings = readings.loc[~(no_flux | no_t | big)]

    readings = readings.assign(date=readings["time"].dt.floor("D"))
    readings["site"] = (site + "-P" + readings["port"].astype(str)) if per_chamber else site
    daily = readings.groupby(["site", "date"], sort=True).agg(
        flux=("flux", "mean"), soil_temp_c=("soil_temp_c", "mean"), swc=("swc", "mean"),
        wtd_m=("wtd_m", "mean"), n_sub=("flux", "size")).reset_index()
    daily = daily.assign(days=1, ecosystem=eco, method="autochamber", latitude=lat, longitude=lon,
                         ustar=np.nan, le=np.nan, nee=np.nan, gpp=np.nan,
                         soil_temp_source="/".join(sorted(temp_cols)))
    table = daily[list(OUTPUT_COLUMNS)] if len(daily) else empty_table()
    return Observations(table=validate_observations(table, path), dropped=dropped, sources=files)
