"""Tables of manipulation experiments for the response-ratio meta-analysis (model M3).

A warming table has one row per experiment (one site × season × treatment contrast, possibly one
of several years) with the columns of ``WARMING_COLUMNS`` (data/table.py): the control and the treatment group's
mean CH4 flux, its standard deviation and number of replicates, and the applied warming in °C.
Means keep their sign (negative = uptake); the effect size is computed later (models/meta.py).

Two sources besides a user's own CSV:
- ``precip-manipulation``: the COMPASS-DOE methane-synthesis table of precipitation-manipulation
  experiments (``EK_methane_precip_manipulation.csv``), adapted to the same layout: SD is taken from
  the SD column, else SE × √n; fluxes are converted to nmol CH4 m⁻² s⁻¹ from the row's unit; the
  grouping column there is ``Measurement Period``. It has no applied warming (``warming_c`` blank).
- ``synthetic-warming``: simulated experiments with known response ratios (data/synthetic_warming.py).

``load_warming(name_or_path)`` handles all three.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from data.chamber import flux_unit_factor as chamber_flux_unit_factor
from data.chamber import read_text
from data.errors import DataError, file_row
from data.table import (ROW_COLUMN, WarmingTable, fill_code_problem, first_index, is_fill_code,
                        validate_warming)
from data.table import WARMING_COLUMNS  # noqa: F401  (the layout, re-exported beside its readers)

PRECIP_FILE = "EK_methane_precip_manipulation.csv"
PRECIP_MODERATOR = "Measurement Period"


def _read_strings(path: Path) -> pd.DataFrame:
    """The CSV as strings (values are parsed and checked column by column afterwards).

    The bytes are read as every table reader reads them (``data.chamber.read_text``): a folder, an
    unreadable file, truncated or corrupt gzip, a zip or Excel workbook, text that is not UTF-8 and
    binary content are each a one-line DataError.
    """
    if not path.exists():
        raise DataError(path, None, None, "file not found", "check the path")
    text = read_text(path)
    if not text.strip():
        raise DataError(path, None, None, "the file is empty",
                        "give a CSV table with one header line and one row per experiment")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                           na_values=["", "NA", "NaN"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as exc:
        raise DataError(path, None, None, f"not a readable CSV table ({str(exc).strip()[:120]})",
                        "save the table as comma-separated UTF-8 text with one header line") from None


def read_warming_table(path: str | Path, raw: pd.DataFrame | None = None) -> WarmingTable:
    """Read a warming table CSV (columns ``WARMING_COLUMNS``; extra columns are kept).

    ``raw``: the file already read as strings (``load_warming`` reads each file once).
    """
    path = Path(path)
    raw = _read_strings(path) if raw is None else raw
    raw.columns = [c.strip() for c in raw.columns]
    raw[ROW_COLUMN] = [file_row(i) for i in range(len(raw))]
    return WarmingTable(validate_warming(raw, path), str(path))


# ---------------------------------------------------------------- precipitation-manipulation table
_UNIT_RE = re.compile(r"^(?P<amount>[a-zµμ]+)\s*(?P<species>ch4|ch4-c|c)?\s+(?P<area>m2|ha)"
                      r"(?:\s+(?P<time>[a-z]+))?$")


def flux_unit_factor(unit: str) -> float | None:
    """Factor converting a flux in ``unit`` to nmol CH4 m⁻² s⁻¹; None if not understood.

    Understands ``<amount> [CH4|C] <m2|ha> [<s|h|d|yr>]`` with the exponents left out, as the
    precipitation table writes them (``mg CH4 m2 d`` = mg CH4 m⁻² d⁻¹), where ``C`` is the carbon
    of the methane. A per-hectare unit without a time (``kg CH4 ha``) is the conventional annual
    total, kg CH4 ha⁻¹ yr⁻¹. The unit is rewritten in the chamber grammar and converted by
    ``data.chamber.flux_unit_factor`` (one conversion for every reader).
    """
    text = unit.strip().lower()
    for sup, plain in (("⁻", "-"), ("−", "-"), ("²", "2"), ("¹", "1"), ("^", "")):
        text = text.replace(sup, plain)
    text = re.sub(r"\bm-?2\b", "m2", text)
    text = re.sub(r"(?<=[a-z])-1\b", "", text)
    text = re.sub(r"\s+", " ", text.replace("/", " ")).strip()
    m = _UNIT_RE.match(text)
    if not m:
        return None
    time = m["time"] or ("yr" if m["area"] == "ha" else None)
    if time is None:
        return None
    species = "ch4-c" if m["species"] == "c" else m["species"] or ""
    area = "m-2" if m["area"] == "m2" else "ha-1"
    try:
        return chamber_flux_unit_factor(f"{m['amount']} {species} {area} {time}-1")
    except DataError:
        return None


_PRECIP_COLUMNS = ("Ecosystem_type", "Other_factor", "Manipulation", "Latitude", "Longitude",
                   PRECIP_MODERATOR, "Unit", "N_control", "CH4_control", "SD_CH4_control",
                   "SE_CH4_control", "N_manip", "CH4_manip", "SD_CH4_manip", "SE_CH4_manip")


def _sd_from(raw: pd.DataFrame, sd_col: str, se_col: str, n_col: str, path: Path) -> pd.Series:
    sd = pd.to_numeric(raw[sd_col], errors="coerce")
    se = pd.to_numeric(raw[se_col], errors="coerce")
    n = pd.to_numeric(raw[n_col], errors="coerce")
    out = sd.where(sd.notna(), se * np.sqrt(n))
    bad = out.isna().to_numpy()
    if bad.any():
        i = first_index(bad)
        raise DataError(path, int(raw[ROW_COLUMN].iloc[i]), sd_col,
                        f"neither {sd_col} nor {se_col} is given",
                        "fill one of them (SD of the replicates, or SE with the replicate count)")
    return out


def read_precip_manipulation(path: str | Path, raw: pd.DataFrame | None = None) -> WarmingTable:
    """Adapt the COMPASS-DOE precipitation-manipulation CH4 table to the warming-table layout.

    study = first column, site = study + latitude + longitude + ``Other_factor`` (e.g. upland vs
    floodplain plots of one study), ecosystem = ``Ecosystem_type``, season blank (group by
    ``Measurement Period``, kept as a column), warming_c blank. Means and SDs are converted to
    nmol CH4 m⁻² s⁻¹ (the ratio does not depend on it, but the table's unit is then one).
    """
    path = Path(path)
    raw = _read_strings(path) if raw is None else raw
    first = raw.columns[0]
    if first.strip() not in ("", "study") and not first.startswith("Unnamed"):
        raise DataError(path, 1, first, "first column should hold the study number",
                        "use the table as published (blank first header) or name it 'study'")
    missing = [c for c in _PRECIP_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(path, 1, missing[0], f"required column '{missing[0]}' is missing",
                        "this reader expects the COMPASS-DOE precipitation-manipulation layout")
    raw[ROW_COLUMN] = [file_row(i) for i in range(len(raw))]
    factor = np.empty(len(raw))
    for i, unit in enumerate(raw["Unit"].fillna("")):
        f = flux_unit_factor(str(unit))
        if f is None:
            raise DataError(path, int(raw[ROW_COLUMN].iloc[i]), "Unit", f"unknown flux unit '{unit}'",
                            "use e.g. 'mg CH4 m2 d', 'ug C m2 h', 'nmol m2 s' or 'kg CH4 ha' (per year)")
        factor[i] = f
    for col in ("CH4_control", "CH4_manip", "N_control", "N_manip", "Latitude", "Longitude"):
        num = pd.to_numeric(raw[col], errors="coerce")
        bad = num.isna().to_numpy()
        if bad.any():
            i = first_index(bad)
            raise DataError(path, int(raw[ROW_COLUMN].iloc[i]), col,
                            f"'{raw[col].iloc[i]}' is missing or not a number", "fill it with a number")
    # Missing-value codes are refused before the unit conversion turns them into plausible numbers.
    for col in ("CH4_control", "CH4_manip", "SD_CH4_control", "SE_CH4_control", "SD_CH4_manip",
                "SE_CH4_manip", "N_control", "N_manip", "Latitude", "Longitude"):
        num = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float)
        fill = is_fill_code(num)
        if fill.any():
            i = first_index(fill)
            raise DataError(path, int(raw[ROW_COLUMN].iloc[i]), col, fill_code_problem(num[i]),
                            "leave the cell empty where the study gives no value")
    study = raw[first].str.strip()
    other = raw["Other_factor"].fillna("").str.strip()
    coords = [f"{float(a):.2f} {float(b):.2f}" for a, b in zip(raw["Latitude"], raw["Longitude"])]
    site = study + " " + pd.Series(coords, index=raw.index)
    site = site.where(other.eq(""), site + " " + other)
    control_sd = _sd_from(raw, "SD_CH4_control", "SE_CH4_control", "N_control", path)
    treatment_sd = _sd_from(raw, "SD_CH4_manip", "SE_CH4_manip", "N_manip", path)
    table = pd.DataFrame({
        "study": study, "site": site, "ecosystem": raw["Ecosystem_type"], "season": np.nan,
        "warming_c": np.nan,
        "control_mean": pd.to_numeric(raw["CH4_control"]) * factor,
        "control_sd": control_sd * factor,
        "control_n": pd.to_numeric(raw["N_control"]),
        "treatment_mean": pd.to_numeric(raw["CH4_manip"]) * factor,
        "treatment_sd": treatment_sd * factor,
        "treatment_n": pd.to_numeric(raw["N_manip"]),
        PRECIP_MODERATOR: raw[PRECIP_MODERATOR].str.strip(),
        "Manipulation": raw["Manipulation"].str.strip(),
        "Manipulation_level": raw.get("Manipulation_level"),
        "unit_source": raw["Unit"], "unit_factor": factor,
        ROW_COLUMN: raw[ROW_COLUMN],
    })
    columns = {"study": first, "site": "Latitude", "ecosystem": "Ecosystem_type",
               "control_mean": "CH4_control", "control_sd": "SD_CH4_control",
               "control_n": "N_control", "treatment_mean": "CH4_manip",
               "treatment_sd": "SD_CH4_manip", "treatment_n": "N_manip"}
    return WarmingTable(validate_warming(table, path, columns), str(path),
                        default_moderator=PRECIP_MODERATOR, source_columns=columns)


def _is_precip_layout(raw: pd.DataFrame) -> bool:
    return {"CH4_control", "CH4_manip"} <= {str(c).strip() for c in raw.columns}


# ---------------------------------------------------------------- one entry for names and paths
def load_warming(name_or_path: str | Path, seed: int = 0) -> WarmingTable:
    """A warming table from a dataset name (``precip-manipulation``, ``synthetic-warming``) or a path.

    A CSV path in the precipitation-manipulation layout (``CH4_control``/``CH4_manip`` columns) is
    adapted; any other CSV is read as a warming table. ``seed`` is used by the simulator only.
    """
    text = str(name_or_path)
    if text == "synthetic-warming":
        from data.synthetic_warming import simulate_warming

        return simulate_warming(seed=seed)
    if text == "precip-manipulation":
        from data.registry import dataset_folder

        path = dataset_folder("precip-manipulation") / PRECIP_FILE
        if not path.exists():
            raise DataError(path, None, None, "file not found in the dataset folder",
                            "restore it from COMPASS-DOE/methane-synthesis")
        return read_precip_manipulation(path)
    path = Path(name_or_path)
    if not path.exists():
        from data.registry import DATASETS

        hint = ("a CSV path, or one of precip-manipulation, synthetic-warming"
                if text not in DATASETS else f"dataset '{text}' is not a warming table; use "
                                             "precip-manipulation, synthetic-warming or a CSV path")
        raise DataError(path, None, None, "no such file or warming dataset", hint)
    raw = _read_strings(path)
    if _is_precip_layout(raw):
        return read_precip_manipulation(path, raw)
    return read_warming_table(path, raw)
