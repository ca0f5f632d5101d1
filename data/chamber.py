"""Generic chamber / literature CSV reader, CH4 flux unit conversion, and the CSV plumbing the
other readers share.

Chamber CSV format
==================
One comma-separated file (plain or ``.gz``, UTF-8, a byte-order mark is accepted), one header
line, one row per site and period. Column names are case-insensitive; blank lines are ignored, and
so are comment lines starting with ``#`` above the header. Below the header a line starting with
``#`` is a comment only when it has fewer fields than the header: a full row is data, so a site
may be named ``#3``. Columns not listed here (notes, references) are ignored.

Required columns
    ``site``         site name (text)
    ``date``         period start, ISO ``YYYY-MM-DD``
    ``flux``         CH4 flux, a number (+ emission, − uptake); an empty cell drops the row
    ``flux_unit``    the unit of ``flux`` on that row, e.g. ``mg CH4 m-2 h-1`` (see below)
    soil temperature, either ``soil_temp_c`` (°C) or ``soil_temp`` + ``soil_temp_unit``
                     (``C`` or ``K``); an empty cell drops the row
    ``ecosystem``    ``wetland``, ``grassland`` or another label (IGBP codes such as WET, GRA
                     are translated)
    ``latitude``, ``longitude``  decimal degrees (south and west negative)

Optional columns
    ``days``         period length in days (default 1; e.g. 30 for a monthly mean), 1…366
    ``method``       ``static_chamber`` (default), ``autochamber`` or ``eddy_covariance``
    ``n_sub``        number of measurements averaged into the row (default 1)
    ``wtd_m``        water-table position, m, positive above the soil surface
    ``swc``          volumetric soil water content, m3 m-3 (a fraction 0…1)
    ``ustar`` (m s-1), ``le`` (W m-2), ``nee``, ``gpp`` (µmol CO2 m-2 s-1)

Flux units
    ``<amount> [species] m-2 <time>-1`` where amount is ``pmol|nmol|umol|mmol|mol`` (any species)
    or ``ng|ug|mg|g|kg`` followed by ``CH4`` or ``CH4-C`` (mass of methane or of its carbon), and
    time is ``s|min|h|d|yr``; ``ha-1`` may stand for ``m-2``. ``µ``/``μ`` are accepted for ``u``,
    ``/m2/h`` for ``m-2 h-1``. Conversions use the constants of ``data.constants``:
    M(CH4) = 16.04246 g mol⁻¹, M(C) = 12.0107 g mol⁻¹ and 1 yr = 365.25 d.

Missing values
    An empty cell or ``NA``, ``NaN``, ``N/A``, ``#N/A``, ``null``, ``none``, ``-`` (any case) is
    missing. A number equal to a logger's missing-value code (−999, −9999, −99999, −999.9, −9999.9
    in any spelling, ``data.table.FILL_CODES``) is refused in every numeric column: a −999 flux
    would otherwise be read as uptake.

Every problem is a ``DataError`` naming the file, the 1-based file line and the column.
Rows with an empty flux or soil temperature are dropped and counted in ``Observations.dropped``;
everything else that is wrong (unknown unit, bad date, a date outside 1677-09-22 … 2262-04-11,
duplicate site-date, Kelvin-looking soil temperature, |flux| > 1000 nmol m⁻² s⁻¹ after
conversion, a missing-value code, …) is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import re
import warnings
import zlib
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from data.constants import (C_MOLAR_MASS, CH4_MOLAR_MASS, KELVIN, M2_PER, NMOL_PER_MOL, SECONDS_PER,
                            SI_PREFIX)
from data.errors import DataError
from data.table import (ABSURD_FLUX, DATE_RANGE_FIX, METHODS, NA_TOKENS, OPTIONAL_DRIVERS, REQUIRED,
                        Observations, check_soil_temperature, count_drop, date_range_problem,
                        dates_outside_range, fill_code_problem, is_fill_code, validate_observations)

KNOWN_FLUX_UNITS = ("nmol m-2 s-1", "umol m-2 s-1", "mg CH4 m-2 h-1", "ug CH4 m-2 h-1",
                    "mg CH4-C m-2 d-1", "g CH4 m-2 yr-1")
OUTPUT_COLUMNS = (*REQUIRED, *OPTIONAL_DRIVERS, "soil_temp_source")

# IGBP class codes and names → ecosystem labels used in flux classes.
IGBP_LABELS = {
    "WET": "wetland", "GRA": "grassland", "CRO": "cropland", "ENF": "evergreen_needleleaf_forest",
    "EBF": "evergreen_broadleaf_forest", "DNF": "deciduous_needleleaf_forest",
    "DBF": "deciduous_broadleaf_forest", "MF": "mixed_forest", "CSH": "closed_shrubland",
    "OSH": "open_shrubland", "WSA": "woody_savanna", "SAV": "savanna", "URB": "urban",
    "CVM": "cropland", "SNO": "snow_ice", "BSV": "barren", "WAT": "water",
}
_NAME_LABELS = {
    "wetlands": "wetland", "permanent_wetland": "wetland", "permanent_wetlands": "wetland",
    "grasslands": "grassland", "croplands": "cropland", "mixed_forests": "mixed_forest",
    "savannas": "savanna", "woody_savannas": "woody_savanna", "open_shrublands": "open_shrubland",
    "closed_shrublands": "closed_shrubland", "rice": "rice_paddy",
}


def ecosystem_label(value: object) -> str:
    """Lower-case ecosystem label from an IGBP code (``WET``), name (``Grassland``) or label."""
    text = str(value).strip()
    if not text or text.lower() in NA_TOKENS:
        return ""
    code = text.upper()
    if re.fullmatch(r"CRO\s*-\s*RICE", code):
        return "rice_paddy"
    code = code.split(" - ")[0].strip()
    if code in IGBP_LABELS:
        return IGBP_LABELS[code]
    label = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
    return _NAME_LABELS.get(label, label)


# ---------------------------------------------------------------- reading CSV text safely
@dataclasses.dataclass
class CsvTable:
    """A CSV read as text: ``frame`` holds strings, ``lines[i]`` is the 1-based file line of row i."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray
    header: list[str]
    header_line: int = 1

    def line(self, position: int) -> int:
        return int(self.lines[position])


def read_text(path: str | Path) -> str:
    """The text of a plain or gzip-compressed file; any unreadable content is a DataError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, None, None, "no such file", "check the path") from None
    except IsADirectoryError:
        raise DataError(path, None, None, "is a folder, not a file", "give a file path") from None
    except OSError as exc:
        raise DataError(path, None, None, f"cannot read the file ({exc.strerror or exc})",
                        "check the path and its permissions") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            raise DataError(path, None, None, f"gzip data is truncated or corrupt ({exc})",
                            "download or copy the file again") from None
    elif path.name.lower().endswith(".gz"):
        raise DataError(path, None, None, "the name ends in .gz but the content is not gzip",
                        "rename the file or compress it with gzip")
    if raw[:4] == b"PK\x03\x04":
        raise DataError(path, None, None, "this is a zip or Excel file, not CSV text",
                        "unzip it, or export the sheet as comma-separated values (CSV)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(path, line, None, "the file is not UTF-8 text",
                        "save it as UTF-8 CSV") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DataError(path, text.count("\n", 0, nul) + 1, None,
                        "the file contains NUL bytes (binary data)",
                        "export it as plain comma-separated text")
    return text.lstrip("\ufeff")


def read_csv_strings(path: str | Path, *, lower: bool = False,
                     columns: Callable[[list[str]], Iterable[str]] | None = None,
                     expected: Iterable[str] = ()) -> CsvTable:
    """Read a comma-separated file as strings, keeping the file line of every row.

    ``columns(header)`` picks the columns to keep (default: all). ``lower`` lower-cases names.
    ``expected`` names columns the caller needs; they are listed when the file looks wrongly
    delimited.
    """
    path = Path(path)
    text = read_text(path)
    kept: list[str] = []
    numbers: list[int] = []
    width = 0  # fields of the header, once it is found
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            # Above the header a comment; below it, a row as wide as the header is data (a site
            # named '#3'), a shorter line a comment.
            if not kept or _field_count(line) < width:
                continue
        kept.append(line)
        numbers.append(number)
        if len(kept) == 1:
            width = _field_count(line)
    if not kept:
        raise DataError(path, None, None, "the file is empty", "give a CSV file with a header line "
                        "and data rows")
    try:
        header = next(csv.reader([kept[0]]))
    except csv.Error as exc:
        raise DataError(path, numbers[0], None, f"the header line cannot be parsed ({exc})",
                        "write one comma-separated header line") from None
    header = [h.strip().lstrip("\ufeff").strip() for h in header]
    if lower:
        header = [h.lower() for h in header]
    # spreadsheets leave empty header cells after the last column; such columns are unnamed
    header = [h or f"unnamed_{i + 1}" for i, h in enumerate(header)]
    need = ", ".join(expected)
    if len(header) == 1:
        sep = next((s for s in (";", "\t", "|") if s in kept[0]), None)
        if sep is not None:
            shown = {"\t": "tab"}.get(sep, repr(sep))
            raise DataError(path, numbers[0], None,
                            f"the file is {shown}-separated, not comma-separated",
                            "save it as comma-separated values" + (f" with columns {need}" if need else ""))
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            raise DataError(path, numbers[0], name, f"column '{name}' appears twice in the header",
                            "rename or remove one of them")
        seen[name] = i
    if len(kept) == 1:
        raise DataError(path, numbers[0], None, "the file has a header but no data rows",
                        "add data rows below the header")
    long_row = _first_long_row(kept, numbers, len(header))
    if long_row is not None:
        raise DataError(path, long_row, None, "the row has more fields than the header",
                        "check the delimiter and quoting of that line")
    wanted = list(header) if columns is None else [c for c in columns(header) if c in seen]
    positions = sorted(seen[c] for c in wanted)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO("\n".join(kept)), header=0, usecols=positions,
                                dtype=str, keep_default_na=False, na_filter=False,
                                index_col=False, engine="c")
    except pd.errors.ParserWarning:
        line = _first_long_row(kept, numbers, len(header))
        raise DataError(path, line, None, "a row has more fields than the header",
                        "check the delimiter and quoting of that line") from None
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            at = int(m.group(2))
            line = numbers[at - 1] if 0 < at <= len(numbers) else None
            raise DataError(path, line, None, f"the row has {m.group(3)} fields, the header has "
                            f"{m.group(1)}", "check the delimiter and quoting of that line") from None
        raise DataError(path, None, None, f"the CSV cannot be parsed ({str(exc).strip()[:120]})",
                        "check the quoting and delimiters") from None
    except (ValueError, csv.Error, OverflowError) as exc:
        raise DataError(path, None, None, f"the CSV cannot be parsed ({str(exc).strip()[:120]})",
                        "save it as plain comma-separated values") from None
    frame.columns = [header[p] for p in positions]
    frame = frame.fillna("").astype(object)
    if len(frame) == len(kept) - 1:
        lines = np.asarray(numbers[1:], dtype=int)
    else:  # quoted line breaks inside fields: fall back to counting rows
        lines = np.arange(len(frame), dtype=int) + numbers[0] + 1
    return CsvTable(path=path, frame=frame.reset_index(drop=True), lines=lines, header=header,
                    header_line=numbers[0])


def _field_count(line: str) -> int:
    """Number of comma-separated fields of one line (quotes respected)."""
    try:
        return len(next(csv.reader([line])))
    except (csv.Error, StopIteration):
        return line.count(",") + 1


def _first_long_row(kept: list[str], numbers: list[int], width: int) -> int | None:
    """File line of the first data row with more fields than the header (None if none)."""
    if not any('"' in line for line in kept):  # no quoting: counting commas is exact and fast
        for line, number in zip(kept[1:], numbers[1:]):
            if line.count(",") >= width:
                return number
        return None
    try:
        for row, number in zip(csv.reader(kept[1:]), numbers[1:]):
            if len(row) > width:
                return number
    except csv.Error:
        return None
    return None


FILL_FIX = "leave the cell empty (or NA) where there is no value"


def parse_numbers(table: CsvTable, column: str, *, missing_code: float | None = None,
                  what: str = "a number", infinite_missing: bool = False,
                  fill_fix: str = FILL_FIX) -> np.ndarray:
    """Column as floats: NA tokens → NaN, ``missing_code`` → NaN, anything else → DataError.

    The other missing-value codes (``data.table.FILL_CODES``) are refused with ``fill_fix`` as the
    advice, never read as data. ``infinite_missing`` reads ``inf``/``-inf`` as missing instead of
    refusing them.
    """
    strings = table.frame[column].astype(str).str.strip()
    values = np.array(pd.to_numeric(strings, errors="coerce"), dtype=float)
    bad = ~np.isfinite(values) & ~strings.str.lower().isin(NA_TOKENS).to_numpy()
    if infinite_missing:
        bad &= ~np.isinf(values)
        values[np.isinf(values)] = np.nan
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(table.path, table.line(i), column,
                        f"value {strings.iloc[i][:30]!r} is not {what}",
                        "write a plain number with '.' as decimal point, or leave the cell empty")
    if missing_code is not None:
        values[values == missing_code] = np.nan
    fill = is_fill_code(values)
    if fill.any():
        i = int(np.flatnonzero(fill)[0])
        raise DataError(table.path, table.line(i), column, fill_code_problem(values[i]), fill_fix)
    return values


def require_columns(table: CsvTable, required: Iterable[str], listing: str) -> None:
    """DataError naming the first missing column and listing what the format needs."""
    missing = [c for c in required if c not in table.header]
    if missing:
        raise DataError(table.path, table.header_line, missing[0],
                        f"required column '{missing[0]}' is missing"
                        + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""),
                        f"the file needs columns {listing}")


def empty_table() -> pd.DataFrame:
    """A canonical table with no rows and the reader output columns."""
    table = pd.DataFrame({c: pd.Series(dtype=float) for c in OUTPUT_COLUMNS})
    for c in ("site", "ecosystem", "method", "soil_temp_source"):
        table[c] = table[c].astype(object)
    table["date"] = pd.Series(dtype="datetime64[ns]")
    return table


# ---------------------------------------------------------------- flux units
_UNIT_RE = re.compile(
    r"(?P<prefix>[pnumk]?)(?P<base>mol|g)\s*(?P<species>ch4-c|c-ch4|ch4)?\s*(?P<area>m-2|ha-1)\s*"
    r"(?P<time>s|sec|min|h|hr|d|day|yr|y|year|a)-1")
_TIME_ALIASES = {"sec": "s", "hr": "h", "day": "d", "y": "yr", "year": "yr", "a": "yr"}


def _normalise_unit(unit: str) -> str:
    u = str(unit).strip().lower()
    for a, b in (("µ", "u"), ("μ", "u"), ("⁻", "-"), ("−", "-"), ("²", "2"), ("¹", "1"),
                 ("^", ""), ("·", " "), ("*", " "), ("₄", "4"), ("ch₄", "ch4")):
        u = u.replace(a, b)
    u = re.sub(r"\s*/\s*m\s*2", " m-2", u)
    u = re.sub(r"\s*/\s*ha\b", " ha-1", u)
    u = re.sub(r"\s*/\s*(s|sec|min|h|hr|d|day|yr|y|a)\b", r" \1-1", u)
    u = re.sub(r"ch4\s*-\s*c\b", "ch4-c", u)
    u = re.sub(r"\bc\s*-\s*ch4", "c-ch4", u)
    return re.sub(r"\s+", " ", u).strip()


def flux_unit_factor(unit: str) -> float:
    """Multiplier taking a CH4 flux in ``unit`` to nmol CH4 m⁻² s⁻¹.

    Raises DataError (without file context) for a unit it does not know.
    """
    m = _UNIT_RE.fullmatch(_normalise_unit(unit))
    if m is None or (m["base"] == "g" and m["species"] is None):
        why = "mass units must say CH4 or CH4-C" if m is not None else "unknown flux unit"
        raise DataError(None, None, "flux_unit", f"{why} {str(unit)[:40]!r}",
                        f"use one of {', '.join(KNOWN_FLUX_UNITS)} (or another "
                        "'<n|u|m>mol or <u|m>g CH4[-C] m-2 <s|h|d|yr>-1')")
    amount = SI_PREFIX[m["prefix"]]
    if m["base"] == "g":  # grams of CH4 or of its carbon → moles of CH4
        amount /= C_MOLAR_MASS if m["species"] in ("ch4-c", "c-ch4") else CH4_MOLAR_MASS
    seconds = SECONDS_PER[_TIME_ALIASES.get(m["time"], m["time"])]
    return amount * NMOL_PER_MOL / M2_PER["m2" if m["area"] == "m-2" else "ha"] / seconds


def convert_flux(values, unit: str, *, file: str | Path | None = None, row: int | None = None,
                 column: str = "flux_unit") -> np.ndarray:
    """CH4 flux ``values`` in ``unit`` → nmol CH4 m⁻² s⁻¹ (array of floats)."""
    try:
        factor = flux_unit_factor(unit)
    except DataError as exc:
        raise DataError(file, row, column, exc.problem, exc.fix) from None
    return np.asarray(values, dtype=float) * factor


_TEMP_UNITS = {"c": "C", "°c": "C", "degc": "C", "deg c": "C", "celsius": "C", "k": "K",
               "kelvin": "K"}


# ---------------------------------------------------------------- the chamber CSV reader
_CHAMBER_REQUIRED = ("site", "date", "flux", "flux_unit", "ecosystem", "latitude", "longitude")
_CHAMBER_LISTING = ("site, date (YYYY-MM-DD), flux, flux_unit, soil_temp_c (or soil_temp + "
                    "soil_temp_unit), ecosystem, latitude, longitude; optional days, method, n_sub, "
                    + ", ".join(OPTIONAL_DRIVERS))


def read_chamber_csv(path: str | Path) -> Observations:
    """Read a chamber / literature CSV (format in the module docstring) into Observations."""
    path = Path(path)
    t = read_csv_strings(path, lower=True, expected=_CHAMBER_REQUIRED)
    require_columns(t, _CHAMBER_REQUIRED, _CHAMBER_LISTING)
    has_c, has_raw = "soil_temp_c" in t.header, "soil_temp" in t.header
    if has_c and has_raw:
        raise DataError(path, t.header_line, "soil_temp", "both soil_temp_c and soil_temp are given",
                        "keep one soil-temperature column")
    if not has_c and not has_raw:
        raise DataError(path, t.header_line, "soil_temp_c", "required column 'soil_temp_c' is missing",
                        f"the file needs columns {_CHAMBER_LISTING}")
    if has_raw and "soil_temp_unit" not in t.header:
        raise DataError(path, t.header_line, "soil_temp_unit",
                        "column soil_temp has no soil_temp_unit column",
                        "add soil_temp_unit (C or K) or rename the column soil_temp_c")
    f = t.frame
    n = len(f)
    dropped: dict[str, int] = {}

    site = f["site"].astype(str).str.strip()
    _refuse_empty(t, site, "site", "give the site name on every row")
    date = pd.to_datetime(f["date"].astype(str).str.strip(), format="%Y-%m-%d", errors="coerce")
    _refuse(t, date.isna().to_numpy(), "date", lambda i: f"date {str(f['date'].iloc[i])[:30]!r} "
            "cannot be read", "write dates as YYYY-MM-DD (ISO 8601)")
    _refuse(t, dates_outside_range(date), "date", lambda i: date_range_problem(date.iloc[i]),
            DATE_RANGE_FIX)
    dup = pd.DataFrame({"s": site, "d": date}).duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((site == site.iloc[i]).to_numpy() & (date == date.iloc[i]).to_numpy())[0])
        raise DataError(path, t.line(i), "date", f"duplicate site-date {site.iloc[i]} "
                        f"{date.iloc[i]:%Y-%m-%d} (also on line {t.line(first)})",
                        "keep one row per site and date (average repeated measurements first)")

    days = _integer_column(t, "days", 1, 1, 366, "the period length in days (1…366)")
    _refuse(t, dates_outside_range(date, days), "days", lambda i: f"the {days[i]}-day period from "
            f"{date.iloc[i]:%Y-%m-%d} ends after {pd.Timestamp.max:%Y-%m-%d}, the last date the "
            "tables can hold", DATE_RANGE_FIX)
    n_sub = _integer_column(t, "n_sub", 1, 1, None, "the number of measurements averaged (≥ 1)")

    flux_raw = parse_numbers(t, "flux")
    units = f["flux_unit"].astype(str).str.strip()
    no_unit = np.isfinite(flux_raw) & (units == "").to_numpy()
    _refuse(t, no_unit, "flux_unit", lambda i: "flux has no unit",
            f"give flux_unit on every row, e.g. {', '.join(KNOWN_FLUX_UNITS)}")
    flux = np.full(n, np.nan)
    for unit in pd.unique(units[np.isfinite(flux_raw)]):
        rows = (units == unit).to_numpy() & np.isfinite(flux_raw)
        first = int(np.flatnonzero(rows)[0])
        flux[rows] = convert_flux(flux_raw[rows], unit, file=path, row=t.line(first))
    _refuse(t, np.abs(flux) > ABSURD_FLUX, "flux",
            lambda i: f"|flux| = {abs(flux[i]):.4g} nmol m-2 s-1 after converting from "
                      f"'{units.iloc[i]}' is implausibly large",
            "check the value and its flux_unit")

    if has_c:
        temp_col = "soil_temp_c"
        temp = parse_numbers(t, temp_col)
    else:
        temp_col = "soil_temp"
        temp = parse_numbers(t, temp_col)
        tu = f["soil_temp_unit"].astype(str).str.strip().str.lower()
        known = tu.map(_TEMP_UNITS)
        _refuse(t, np.isfinite(temp) & known.isna().to_numpy(), "soil_temp_unit",
                lambda i: f"unknown soil temperature unit {str(f['soil_temp_unit'].iloc[i])[:20]!r}",
                "use C or K")
        temp = np.where(known.to_numpy() == "K", temp - KELVIN, temp)
    ok_t = np.isfinite(temp)
    check_soil_temperature(pd.Series(temp[ok_t]), path, temp_col, header_lines=1,
                           positions=t.lines[ok_t] - 2)

    eco = f["ecosystem"].map(ecosystem_label)
    _refuse_empty(t, eco, "ecosystem", "give an ecosystem label such as wetland or grassland")
    if "method" in t.header:
        method = f["method"].astype(str).str.strip().str.lower().str.replace(r"[\s-]+", "_", regex=True)
        method = method.where(method != "", "static_chamber")
        _refuse(t, ~method.isin(METHODS).to_numpy(), "method",
                lambda i: f"unknown method {str(f['method'].iloc[i])[:30]!r}",
                f"use one of {', '.join(METHODS)}")
    else:
        method = pd.Series("static_chamber", index=f.index)
    lat = _coordinate(t, "latitude", 90.0)
    lon = _coordinate(t, "longitude", 180.0)

    out = pd.DataFrame({"site": site, "date": date, "days": days, "flux": flux,
                        "soil_temp_c": temp, "ecosystem": eco, "method": method,
                        "latitude": lat, "longitude": lon, "n_sub": n_sub})
    for d in OPTIONAL_DRIVERS:
        out[d] = parse_numbers(t, d) if d in t.header else np.nan
    if "swc" in t.header:
        _refuse(t, (out["swc"] < 0).to_numpy() | (out["swc"] > 1).to_numpy(), "swc",
                lambda i: f"swc {out['swc'].iloc[i]:g} is outside 0…1",
                "give soil water content as a fraction (m3 m-3): divide percent by 100")
    out["soil_temp_source"] = temp_col

    keep = np.ones(n, dtype=bool)
    missing_flux = ~np.isfinite(flux)
    count_drop(dropped, "flux missing", int(missing_flux.sum()))
    keep &= ~missing_flux
    missing_t = keep & ~ok_t
    count_drop(dropped, "soil temperature missing", int(missing_t.sum()))
    keep &= ok_t
    if n and not keep.any():
        column = "flux" if missing_flux.all() else temp_col
        raise DataError(path, 1, column, f"column '{column}' has no value on any row, so no row is usable",
                        "fill the column (or remove the file from the analysis)")
    table = out.loc[keep].reset_index(drop=True) if keep.any() else empty_table()
    table = validate_observations(table[list(OUTPUT_COLUMNS)], path)
    return Observations(table=table, dropped=dropped, sources=[path])


def _refuse(t: CsvTable, bad: np.ndarray, column: str, problem: Callable[[int], str], fix: str) -> None:
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(t.path, t.line(i), column, problem(i), fix)


def _refuse_empty(t: CsvTable, values: pd.Series, column: str, fix: str) -> None:
    _refuse(t, (values.astype(str).str.strip() == "").to_numpy(), column,
            lambda i: f"{column} is empty", fix)


def _integer_column(t: CsvTable, column: str, default: int, lo: int, hi: int | None,
                    what: str) -> np.ndarray:
    if column not in t.header:
        return np.full(len(t.frame), default, dtype=int)
    v = parse_numbers(t, column, what=what)
    v = np.where(np.isfinite(v), v, default)
    bad = (v != np.round(v)) | (v < lo) | ((v > hi) if hi is not None else False)
    _refuse(t, bad, column, lambda i: f"{column} {v[i]:g} is not {what}", f"give {what}")
    return v.astype(int)


def _coordinate(t: CsvTable, column: str, limit: float) -> np.ndarray:
    v = parse_numbers(t, column, what="decimal degrees")
    _refuse(t, ~np.isfinite(v), column, lambda i: f"{column} is missing",
            f"give {column} in decimal degrees on every row")
    _refuse(t, np.abs(v) > limit, column, lambda i: f"{column} {v[i]:g} is outside ±{limit:g}",
            "give decimal degrees (south and west negative)")
    return v
