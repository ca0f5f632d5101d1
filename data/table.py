"""The canonical tables every reader produces and every model consumes.

Observations (model M1): one row per site × day (or per multi-day period for chamber means).
Units are converted at the reader: flux in nmol CH4 m⁻² s⁻¹ (positive = emission), soil
temperature in °C.

Warming experiments (model M3, data/warming.py reads them): one row per experiment (one site ×
season × treatment contrast) with the columns of ``WARMING_COLUMNS``: the control and the
treatment group's mean CH4 flux, its standard deviation and number of replicates, and the
applied warming in °C.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError, file_row

REQUIRED = ("site", "date", "days", "flux", "soil_temp_c", "ecosystem", "method",
            "latitude", "longitude", "n_sub")
OPTIONAL_DRIVERS = ("wtd_m", "swc", "ustar", "le", "nee", "gpp")
METHODS = ("eddy_covariance", "autochamber", "static_chamber")

# Soil temperatures outside this range are not plausible in °C; above ~200 they look like Kelvin.
SOIL_TEMP_RANGE_C = (-60.0, 70.0)
KELVIN_LOOKING_C = 200.0
# |CH4 flux| above this (nmol m⁻² s⁻¹ ≈ 58 mg CH4 m⁻² h⁻¹) is beyond any published site mean.
ABSURD_FLUX = 1.0e3

# Cell spellings every reader takes for "no value" (compared stripped and lower-cased). Anything
# else that is not a number is refused.
NA_TOKENS = frozenset({"", "na", "nan", "n/a", "#n/a", "#na", "n.a.", "<na>", "null", "none", "-",
                       "--"})
# Missing-value codes of data loggers and flux products (FLUXNET: -9999; others -999, -99999, and
# -999.9 / -9999.9). A number equal to one of them, in any spelling ("-9999", "-9999.0",
# "-9.999e3"), is never read as data: a reader either maps its own documented code to missing or
# refuses the value.
FILL_CODES = (-999.0, -9999.0, -99999.0, -999.9, -9999.9)

# Dates a table can hold: the range of nanosecond time stamps (pandas.Timestamp.min … max).
DATE_MIN = pd.Timestamp.min.ceil("D")
DATE_MAX = pd.Timestamp.max.floor("D")


def is_fill_code(values) -> np.ndarray:
    """Boolean mask of the values equal to one of ``FILL_CODES``.

    Single-precision values are compared in single precision: a float32 −999.9 is
    −999.90002 once widened, and would otherwise pass as a measurement.
    """
    if getattr(values, "dtype", None) == np.float32:
        return np.isin(np.asarray(values), np.asarray(FILL_CODES, dtype=np.float32))
    return np.isin(np.asarray(values, dtype=float), FILL_CODES)


def fill_code_problem(value: float) -> str:
    return f"value {value:g} is a missing-value code, not a measurement"


def dates_outside_range(dates, days=None) -> np.ndarray:
    """Boolean mask of dates (any datetime64 unit) before ``DATE_MIN`` or whose period (``days``
    long, default 1) ends after ``DATE_MAX``; missing dates are not flagged."""
    values = np.asarray(dates)
    if values.dtype.kind != "M":
        values = pd.to_datetime(pd.Series(values), errors="coerce").to_numpy()
    # in seconds, so that a period ending after 2262 does not overflow nanoseconds
    first = values.astype("datetime64[s]")
    lo, hi = np.datetime64(DATE_MIN.to_datetime64(), "s"), np.datetime64(DATE_MAX.to_datetime64(), "s")
    outside = first < lo  # NaT compares False: missing dates are not flagged
    if days is None:
        return outside | (first > hi)
    extra = np.maximum(np.asarray(days, dtype=np.int64) - 1, 0).astype("timedelta64[D]")
    return outside | (first + extra > hi)


def date_range_problem(value) -> str:
    return (f"date {pd.Timestamp(value):%Y-%m-%d} lies outside {DATE_MIN:%Y-%m-%d} … "
            f"{DATE_MAX:%Y-%m-%d}, the dates the tables can hold")


DATE_RANGE_FIX = "check the year (a typing error or a missing-value code in a date column?)"


@dataclasses.dataclass
class Observations:
    """A validated canonical table plus what the reader dropped or skipped, and from where."""

    table: pd.DataFrame
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped_sites: dict[str, str] = dataclasses.field(default_factory=dict)
    sources: list[Path] = dataclasses.field(default_factory=list)
    synthetic: bool = False

    def concat(self, other: "Observations") -> "Observations":
        dropped = dict(self.dropped)
        for k, v in other.dropped.items():
            dropped[k] = dropped.get(k, 0) + v
        table = pd.concat([self.table, other.table], ignore_index=True)
        return Observations(
            table=table,
            dropped=dropped,
            skipped_sites={**self.skipped_sites, **other.skipped_sites},
            sources=[*self.sources, *other.sources],
            synthetic=self.synthetic or other.synthetic,
        )


def count_drop(dropped: dict[str, int], reason: str, n: int) -> None:
    """Add ``n`` rows dropped for ``reason`` (zero counts are not recorded)."""
    if n:
        dropped[reason] = dropped.get(reason, 0) + int(n)


def check_soil_temperature(values: pd.Series, file: str | Path, column: str,
                           header_lines: int = 1, positions: np.ndarray | None = None) -> None:
    """Refuse Kelvin-looking or implausible soil temperatures, naming the first offending row."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    pos = np.arange(len(v)) if positions is None else np.asarray(positions)
    kelvin = np.flatnonzero(v > KELVIN_LOOKING_C)
    if kelvin.size:
        i = kelvin[0]
        raise DataError(file, file_row(pos[i], header_lines), column,
                        f"soil temperature {v[i]:g} looks like Kelvin",
                        "convert to °C (subtract 273.15) or declare the unit as K")
    lo, hi = SOIL_TEMP_RANGE_C
    bad = np.flatnonzero((v < lo) | (v > hi))
    if bad.size:
        i = bad[0]
        raise DataError(file, file_row(pos[i], header_lines), column,
                        f"soil temperature {v[i]:g} °C is outside {lo:g}…{hi:g} °C",
                        "check the unit and the missing-value code of this column")


def _numeric(values: pd.Series, dtype: type, fill: float | None = None) -> pd.Series:
    """``values`` as numbers of ``dtype`` (not a number → NaN → ``fill``); a column that already
    has the dtype is returned as it is, not copied."""
    if values.dtype == np.dtype(dtype):
        return values
    number = pd.to_numeric(values, errors="coerce")
    return (number if fill is None else number.fillna(fill)).astype(dtype)


def validate_observations(table: pd.DataFrame, source: str | Path = "<table>") -> pd.DataFrame:
    """Check the canonical columns, types and invariants; return the table with canonical dtypes.

    Row numbers in errors are 0-based positions in ``table`` + 2 (as if read from a CSV with a header).
    """
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise DataError(source, 1, missing[0], f"required column '{missing[0]}' is missing",
                        f"provide columns {', '.join(REQUIRED)}")
    # a shallow copy: every column changed below is replaced, the caller's table is untouched
    # (a deep copy of a file-sized table would double the memory of a reader)
    out = table.copy(deep=False)
    out["site"] = out["site"].astype(str)
    try:
        date = pd.to_datetime(out["date"])
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(source, None, "date", f"dates cannot be read ({str(exc)[:80]})",
                        "give dates as datetime64 values or ISO YYYY-MM-DD text") from None
    days = pd.to_numeric(out["days"], errors="coerce").fillna(1).clip(lower=1, upper=10_000)
    outside = dates_outside_range(date, days)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise DataError(source, file_row(i), "date", date_range_problem(date.iloc[i]), DATE_RANGE_FIX)
    out["date"] = date.astype("datetime64[ns]")
    for col in ("flux", "soil_temp_c", "latitude", "longitude"):
        out[col] = _numeric(out[col], float)
    for col in ("flux", "soil_temp_c"):
        bad = np.flatnonzero(~np.isfinite(out[col].to_numpy()))
        if bad.size:
            raise DataError(source, file_row(bad[0]), col, "value is missing or not a number",
                            "drop the row or fill the value before building the table")
    check_soil_temperature(out["soil_temp_c"], source, "soil_temp_c")
    absurd = np.flatnonzero(np.abs(out["flux"].to_numpy()) > ABSURD_FLUX)
    if absurd.size:
        i = absurd[0]
        raise DataError(source, file_row(i), "flux",
                        f"|flux| = {out['flux'].iloc[i]:g} nmol m-2 s-1 is implausibly large",
                        "check the flux unit (the table expects nmol CH4 m-2 s-1)")
    out["days"] = _numeric(out["days"], int, fill=1)
    if (out["days"] < 1).any():
        i = int(np.flatnonzero(out["days"].to_numpy() < 1)[0])
        raise DataError(source, file_row(i), "days", "period length must be ≥ 1 day",
                        "give the number of days the flux value averages")
    out["n_sub"] = _numeric(out["n_sub"], int, fill=1)
    unknown = ~out["method"].isin(METHODS)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(source, file_row(i), "method", f"unknown method '{out['method'].iloc[i]}'",
                        f"use one of {', '.join(METHODS)}")
    # Sites as codes in name order, so that sorting and the duplicate test compare integers. The
    # sort is stable: in a run of equal site-dates the first row comes first, the rest repeat it.
    site_code = pd.factorize(out["site"], sort=True)[0]
    stamp = out["date"].to_numpy().view(np.int64)
    step_site, step_date = np.diff(site_code), np.diff(stamp)
    if ((step_site > 0) | ((step_site == 0) & (step_date >= 0))).all():
        order = None  # already in site-date order (a reader's usual output): nothing to move
        repeat = (step_site == 0) & (step_date == 0)
    else:
        order = np.lexsort((stamp, site_code))
        repeat = (site_code[order[1:]] == site_code[order[:-1]]) & (stamp[order[1:]] == stamp[order[:-1]])
    del step_site, step_date
    if repeat.any():
        later = np.flatnonzero(repeat) + 1
        i = int(later.min() if order is None else order[later].min())
        raise DataError(source, file_row(i), "date",
                        f"duplicate site-date {out['site'].iloc[i]} {out['date'].iloc[i]:%Y-%m-%d}",
                        "keep one row per site and date (average repeated measurements first)")
    return (out if order is None else out.take(order)).reset_index(drop=True)


def flux_class(table: pd.DataFrame) -> pd.Series:
    """Flux class = ecosystem × sign: ``wetland_emission``, ``grassland_uptake``, …; zero → NA."""
    # Labelled once per distinct ecosystem × sign (uptake, zero, emission, missing) and spread
    # over the rows: a label string per row costs more than the rest of a large table.
    sign = np.sign(table["flux"].to_numpy(dtype=float))
    state = np.where(np.isnan(sign), 3, sign + 1).astype(np.int64)
    eco_code, ecosystems = pd.factorize(table["ecosystem"], use_na_sentinel=False)
    pair_code, pairs = pd.factorize(eco_code.astype(np.int64) * 4 + state)
    distinct = pd.DataFrame({"ecosystem": ecosystems.take(pairs // 4),
                             "flux": np.array([-1.0, 0.0, 1.0, np.nan])[pairs % 4]})
    labels = _flux_class_rows(distinct)
    return pd.Series(labels.array.take(pair_code), index=table.index, name=labels.name)


def _flux_class_rows(table: pd.DataFrame) -> pd.Series:
    sign = np.sign(table["flux"].to_numpy())
    label = np.where(sign > 0, "emission", np.where(sign < 0, "uptake", ""))
    cls = table["ecosystem"].astype(str).str.cat(pd.Series(label, index=table.index), sep="_")
    return cls.where(sign != 0)


# ---------------------------------------------------------------- warming experiments
WARMING_COLUMNS = ("study", "site", "ecosystem", "season", "warming_c",
                   "control_mean", "control_sd", "control_n",
                   "treatment_mean", "treatment_sd", "treatment_n")
LABEL_COLUMNS = ("study", "site", "ecosystem", "season")
MEAN_COLUMNS = ("control_mean", "treatment_mean")
SD_COLUMNS = ("control_sd", "treatment_sd")
N_COLUMNS = ("control_n", "treatment_n")
# 1-based line of each row in its source file; carried so later errors can name the row.
ROW_COLUMN = "source_row"

# Applied warming outside this range is not a field warming experiment in °C.
WARMING_RANGE_C = (-10.0, 30.0)
MIN_REPLICATES = 2


@dataclasses.dataclass
class WarmingTable:
    """A validated warming table and where it came from.

    ``default_moderator`` is the grouping column the source is meant to be split by (``season`` for
    warming tables, ``Measurement Period`` for the precipitation table). ``truth`` holds the known
    parameters of a simulated table (None for real data).
    """

    table: pd.DataFrame
    source: str
    default_moderator: str = "season"
    synthetic: bool = False
    truth: dict | None = None
    source_columns: dict[str, str] = dataclasses.field(default_factory=dict)

    def column(self, name: str) -> str:
        """The source file's name of canonical column ``name`` (for error messages)."""
        return self.source_columns.get(name, name)


def first_index(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def source_row(table: pd.DataFrame, position: int) -> int:
    """The source-file line of row ``position`` (from ``ROW_COLUMN`` when the table carries it)."""
    if ROW_COLUMN in table.columns:
        return int(table[ROW_COLUMN].iloc[position])
    return file_row(position)


def _blank(values: pd.Series) -> np.ndarray:
    return (values.isna() | values.astype(str).str.strip().eq("")).to_numpy()


def validate_warming(table: pd.DataFrame, source: str | Path = "<table>",
                     source_columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Check a warming table's columns, types and ranges; return it with canonical dtypes.

    Blank ``ecosystem``, ``season`` and ``warming_c`` are allowed (a model that needs them refuses
    later). In numeric columns an NA spelling (``NA``, ``n/a``, ``-``, …) is blank, and a
    missing-value code (−9999, −999, …: ``FILL_CODES``) is refused: two −9999 means would
    otherwise be an experiment with a response ratio of exactly 1. Zero or sign-changing means
    are valid data here; the effect size refuses them.
    ``source_columns`` maps canonical names to the source file's, for error messages.
    """
    name = (source_columns or {}).get
    missing = [c for c in WARMING_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(source, 1, missing[0], f"required column '{missing[0]}' is missing",
                        f"provide columns {', '.join(WARMING_COLUMNS)}")
    out = table.copy().reset_index(drop=True)
    if ROW_COLUMN not in out.columns:
        out[ROW_COLUMN] = [file_row(i) for i in range(len(out))]
    if out.empty:
        raise DataError(source, None, None, "the table has no rows",
                        "give at least one experiment (one row per control/treatment contrast)")
    for col in ("study", "site"):
        blank = _blank(out[col])
        if blank.any():
            raise DataError(source, source_row(out, first_index(blank)), name(col, col), f"{col} is blank",
                            f"name the {col} of every experiment")
    for col in LABEL_COLUMNS:
        keep = ~_blank(out[col])
        out[col] = out[col].astype(object).where(keep, np.nan)
        out.loc[keep, col] = out.loc[keep, col].astype(str).str.strip()
    for col in ("warming_c", *MEAN_COLUMNS, *SD_COLUMNS, *N_COLUMNS):
        raw = out[col]
        na = _blank(raw) | raw.astype(str).str.strip().str.lower().isin(NA_TOKENS).to_numpy()
        num = pd.to_numeric(raw.where(~na), errors="coerce")
        bad = num.isna().to_numpy() & ~na
        if bad.any():
            i = first_index(bad)
            raise DataError(source, source_row(out, i), name(col, col), f"'{raw.iloc[i]}' is not a number",
                            "write a plain number (decimal point, no units)")
        fill = is_fill_code(num)
        if fill.any():
            i = first_index(fill)
            raise DataError(source, source_row(out, i), name(col, col), fill_code_problem(num.iloc[i]),
                            "leave the cell empty where the study gives no value (a mean or SD "
                            "that is missing cannot be used)")
        out[col] = num.astype(float)
    for col in (*MEAN_COLUMNS, *SD_COLUMNS, *N_COLUMNS):
        bad = ~np.isfinite(out[col].to_numpy())
        if bad.any():
            raise DataError(source, source_row(out, first_index(bad)), name(col, col), "value is missing",
                            "fill it from the study, or remove the experiment")
    for col in SD_COLUMNS:
        bad = out[col].to_numpy() <= 0
        if bad.any():
            i = first_index(bad)
            raise DataError(source, source_row(out, i), name(col, col),
                            f"standard deviation {out[col].iloc[i]:g} is not positive",
                            "give the SD of the replicates (convert SE with SD = SE·√n)")
    for col in N_COLUMNS:
        n = out[col].to_numpy()
        bad = (n != np.round(n)) | (n < MIN_REPLICATES)
        if bad.any():
            i = first_index(bad)
            raise DataError(source, source_row(out, i), name(col, col),
                            f"replicate count {n[i]:g} is not a whole number ≥ {MIN_REPLICATES}",
                            "give the number of replicate plots behind the mean and SD")
        out[col] = n.astype(int)
    w = out["warming_c"].to_numpy()
    kelvin = w > KELVIN_LOOKING_C
    if kelvin.any():
        i = first_index(kelvin)
        raise DataError(source, source_row(out, i), "warming_c", f"warming {w[i]:g} looks like a Kelvin "
                        "temperature, not a difference", "give the warmed − control difference in °C")
    lo, hi = WARMING_RANGE_C
    bad = np.isfinite(w) & ((w < lo) | (w > hi))
    if bad.any():
        i = first_index(bad)
        raise DataError(source, source_row(out, i), "warming_c",
                        f"warming {w[i]:g} °C is outside {lo:g}…{hi:g} °C",
                        "give the applied soil warming (warmed − control) in °C")
    return out
