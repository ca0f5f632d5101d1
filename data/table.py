"""The canonical observation table every reader produces and every model consumes.

One row per site × day (or per multi-day period for chamber means). Units are converted at the
reader: flux in nmol CH4 m⁻² s⁻¹ (positive = emission), soil temperature in °C.
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


def validate_observations(table: pd.DataFrame, source: str | Path = "<table>") -> pd.DataFrame:
    """Check the canonical columns, types and invariants; return the table with canonical dtypes.

    Row numbers in errors are 0-based positions in ``table`` + 2 (as if read from a CSV with a header).
    """
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise DataError(source, 1, missing[0], f"required column '{missing[0]}' is missing",
                        f"provide columns {', '.join(REQUIRED)}")
    out = table.copy()
    out["site"] = out["site"].astype(str)
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[ns]")
    for col in ("flux", "soil_temp_c", "latitude", "longitude"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in ("flux", "soil_temp_c"):
        bad = np.flatnonzero(~np.isfinite(out[col].to_numpy()))
        if bad.size:
            raise DataError(source, file_row(bad[0]), col, f"value is missing or not a number",
                            "drop the row or fill the value before building the table")
    check_soil_temperature(out["soil_temp_c"], source, "soil_temp_c")
    absurd = np.flatnonzero(np.abs(out["flux"].to_numpy()) > ABSURD_FLUX)
    if absurd.size:
        i = absurd[0]
        raise DataError(source, file_row(i), "flux",
                        f"|flux| = {out['flux'].iloc[i]:g} nmol m-2 s-1 is implausibly large",
                        "check the flux unit (the table expects nmol CH4 m-2 s-1)")
    out["days"] = pd.to_numeric(out["days"], errors="coerce").fillna(1).astype(int)
    if (out["days"] < 1).any():
        i = int(np.flatnonzero(out["days"].to_numpy() < 1)[0])
        raise DataError(source, file_row(i), "days", "period length must be ≥ 1 day",
                        "give the number of days the flux value averages")
    out["n_sub"] = pd.to_numeric(out["n_sub"], errors="coerce").fillna(1).astype(int)
    unknown = ~out["method"].isin(METHODS)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(source, file_row(i), "method", f"unknown method '{out['method'].iloc[i]}'",
                        f"use one of {', '.join(METHODS)}")
    dup = out.duplicated(["site", "date"], keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(source, file_row(i), "date",
                        f"duplicate site-date {out['site'].iloc[i]} {out['date'].iloc[i]:%Y-%m-%d}",
                        "keep one row per site and date (average repeated measurements first)")
    return out.sort_values(["site", "date"], kind="stable").reset_index(drop=True)


def flux_class(table: pd.DataFrame) -> pd.Series:
    """Flux class = ecosystem × sign: ``wetland_emission``, ``grassland_uptake``, …; zero → NA."""
    sign = np.sign(table["flux"].to_numpy())
    label = np.where(sign > 0, "emission", np.where(sign < 0, "uptake", ""))
    cls = table["ecosystem"].astype(str).str.cat(pd.Series(label, index=table.index), sep="_")
    return cls.where(sign != 0)
