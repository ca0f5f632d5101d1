"""Tables of manipulation experiments for the response-ratio meta-analysis (model M3).

A warming table has one row per experiment (one site × season × treatment contrast, possibly one
of several years) with the columns of ``WARMING_COLUMNS``: the control and the treatment group's
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

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError, file_row

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
KELVIN_LOOKING_C = 200.0
MIN_REPLICATES = 2

PRECIP_FILE = "EK_methane_precip_manipulation.csv"
PRECIP_MODERATOR = "Measurement Period"


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


# ---------------------------------------------------------------- validation
def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _row(table: pd.DataFrame, position: int) -> int:
    if ROW_COLUMN in table.columns:
        return int(table[ROW_COLUMN].iloc[position])
    return file_row(position)


def _blank(values: pd.Series) -> np.ndarray:
    return (values.isna() | values.astype(str).str.strip().eq("")).to_numpy()


def validate_warming(table: pd.DataFrame, source: str | Path = "<table>",
                     source_columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Check a warming table's columns, types and ranges; return it with canonical dtypes.

    Blank ``ecosystem``, ``season`` and ``warming_c`` are allowed (a model that needs them refuses
    later). Zero or sign-changing means are valid data here; the effect size refuses them.
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
            raise DataError(source, _row(out, _first(blank)), name(col, col), f"{col} is blank",
                            f"name the {col} of every experiment")
    for col in LABEL_COLUMNS:
        keep = ~_blank(out[col])
        out[col] = out[col].astype(object).where(keep, np.nan)
        out.loc[keep, col] = out.loc[keep, col].astype(str).str.strip()
    for col in ("warming_c", *MEAN_COLUMNS, *SD_COLUMNS, *N_COLUMNS):
        raw = out[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna().to_numpy() & ~_blank(raw)
        if bad.any():
            i = _first(bad)
            raise DataError(source, _row(out, i), name(col, col), f"'{raw.iloc[i]}' is not a number",
                            "write a plain number (decimal point, no units)")
        out[col] = num.astype(float)
    for col in (*MEAN_COLUMNS, *SD_COLUMNS, *N_COLUMNS):
        bad = ~np.isfinite(out[col].to_numpy())
        if bad.any():
            raise DataError(source, _row(out, _first(bad)), name(col, col), "value is missing",
                            "fill it from the study, or remove the experiment")
    for col in SD_COLUMNS:
        bad = out[col].to_numpy() <= 0
        if bad.any():
            i = _first(bad)
            raise DataError(source, _row(out, i), name(col, col),
                            f"standard deviation {out[col].iloc[i]:g} is not positive",
                            "give the SD of the replicates (convert SE with SD = SE·√n)")
    for col in N_COLUMNS:
        n = out[col].to_numpy()
        bad = (n != np.round(n)) | (n < MIN_REPLICATES)
        if bad.any():
            i = _first(bad)
            raise DataError(source, _row(out, i), name(col, col),
                            f"replicate count {n[i]:g} is not a whole number ≥ {MIN_REPLICATES}",
                            "give the number of replicate plots behind the mean and SD")
        out[col] = n.astype(int)
    w = out["warming_c"].to_numpy()
    kelvin = w > KELVIN_LOOKING_C
    if kelvin.any():
        i = _first(kelvin)
        raise DataError(source, _row(out, i), "warming_c", f"warming {w[i]:g} looks like a Kelvin "
                        "temperature, not a difference", "give the warmed − control difference in °C")
    lo, hi = WARMING_RANGE_C
    bad = np.isfinite(w) & ((w < lo) | (w > hi))
    if bad.any():
        i = _first(bad)
        raise DataError(source, _row(out, i), "warming_c",
                        f"warming {w[i]:g} °C is outside {lo:g}…{hi:g} °C",
                        "give the applied soil warming (warmed − control) in °C")
    return out


def _read_strings(path: Path) -> pd.DataFrame:
    """The CSV as strings (values are parsed and checked column by column afterwards)."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=["", "NA", "NaN"])
    except FileNotFoundError:
        raise DataError(path, None, None, "file not found", "check the path") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, None, None, f"not a readable CSV table ({exc})",
                        "save the table as comma-separated UTF-8 text with one header line") from None


def read_warming_table(path: str | Path) -> WarmingTable:
    """Read a warming table CSV (columns ``WARMING_COLUMNS``; extra columns are kept)."""
    path = Path(path)
    raw = _read_strings(path)
    raw.columns = [c.strip() for c in raw.columns]
    raw[ROW_COLUMN] = [file_row(i) for i in range(len(raw))]
    return WarmingTable(validate_warming(raw, path), str(path))


# ---------------------------------------------------------------- precipitation-manipulation table
_MOLAR_MASS = {"ch4": 16.04246, "c": 12.0107}  # g mol⁻¹; one C per CH4
_MASS_G = {"ng": 1e-9, "ug": 1e-6, "µg": 1e-6, "μg": 1e-6, "mg": 1e-3, "g": 1.0, "kg": 1e3}
_AMOUNT_MOL = {"nmol": 1e-9, "umol": 1e-6, "µmol": 1e-6, "μmol": 1e-6, "mmol": 1e-3, "mol": 1.0}
_AREA_M2 = {"m2": 1.0, "ha": 1e4}
_TIME_S = {"s": 1.0, "h": 3600.0, "hr": 3600.0, "d": 86400.0, "day": 86400.0,
           "yr": 365.25 * 86400.0, "y": 365.25 * 86400.0, "year": 365.25 * 86400.0}
_UNIT_RE = re.compile(r"^(?P<amount>[a-zµμ]+)\s*(?P<species>ch4|ch4-c|c)?\s+(?P<area>m2|ha)"
                      r"(?:\s+(?P<time>[a-z]+))?$")


def flux_unit_factor(unit: str) -> float | None:
    """Factor converting a flux in ``unit`` to nmol CH4 m⁻² s⁻¹; None if not understood.

    Understands ``<amount> [CH4|C] <m2|ha> [<s|h|d|yr>]`` with the exponents left out, as the
    precipitation table writes them (``mg CH4 m2 d`` = mg CH4 m⁻² d⁻¹). A per-hectare unit without
    a time (``kg CH4 ha``) is the conventional annual total, kg CH4 ha⁻¹ yr⁻¹.
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
    amount, species, area, time = m["amount"], m["species"], m["area"], m["time"]
    if amount in _AMOUNT_MOL:
        mol = _AMOUNT_MOL[amount]
    elif amount in _MASS_G and species is not None:
        mol = _MASS_G[amount] / _MOLAR_MASS["c" if species.startswith("ch4-c") or species == "c"
                                            else "ch4"]
    else:
        return None
    if time is None:
        if area != "ha":
            return None
        time = "yr"
    if time not in _TIME_S:
        return None
    return mol * 1e9 / _AREA_M2[area] / _TIME_S[time]


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
        i = _first(bad)
        raise DataError(path, int(raw[ROW_COLUMN].iloc[i]), sd_col,
                        f"neither {sd_col} nor {se_col} is given",
                        "fill one of them (SD of the replicates, or SE with the replicate count)")
    return out


def read_precip_manipulation(path: str | Path) -> WarmingTable:
    """Adapt the COMPASS-DOE precipitation-manipulation CH4 table to the warming-table layout.

    study = first column, site = study + latitude + longitude + ``Other_factor`` (e.g. upland vs
    floodplain plots of one study), ecosystem = ``Ecosystem_type``, season blank (group by
    ``Measurement Period``, kept as a column), warming_c blank. Means and SDs are converted to
    nmol CH4 m⁻² s⁻¹ (the ratio does not depend on it, but the table's unit is then one).
    """
    path = Path(path)
    raw = _read_strings(path)
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
            i = _first(bad)
            raise DataError(path, int(raw[ROW_COLUMN].iloc[i]), col,
                            f"'{raw[col].iloc[i]}' is missing or not a number", "fill it with a number")
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


def _looks_like_precip_table(path: Path) -> bool:
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError):
        return False
    return {"CH4_control", "CH4_manip"} <= set(header)


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
    if _looks_like_precip_table(path):
        return read_precip_manipulation(path)
    return read_warming_table(path)
