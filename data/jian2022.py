"""Readers for the inputs of the global GPP / soil-respiration consistency analysis (Jian et al. 2022).

Jian, J., Bailey, V., Dorheim, K., Konings, A. G., Hao, D., Shiklomanov, A. N., Snyder, A.,
Steele, M., Teramoto, M., Vargas, R. & Bond-Lamberty, B. (2022) Historically inconsistent
productivity and respiration fluxes in the global terrestrial carbon cycle. Nat. Commun. 13:4781.

The files are the ``data/`` folder of PNNL-TES/GlobalC @9d43778d (dataset ``jian2022`` of the
registry). Every table is read as the original R code reads it (``read.csv(comment.char = "#")``),
here ``pandas.read_csv(comment="#", encoding="latin1")``; units are Pg C yr⁻¹ for global fluxes and
fractions (0–1) for ratios — ``Froot``/``Fshoot`` of FlFsFrSummary.csv are percent and are divided
by 100 at the reader.

How the ratio tables are assembled follows ``functions.R`` of GlobalC (``cal_Froot``,
``prep_RaGpp``) and the ecosystem groups follow ``Topdown_GlobalRs.Rmd`` (``IGBP2`` labels):

- RC (root : soil respiration): SRDB-V5 ``RC_annual`` with 0.01 < RC < 0.99; groups agriculture,
  deciduous / evergreen / mixed forest (``Leaf_habit``), grassland, shrubland + savanna, other.
- Froot (root : autotrophic respiration): FlFsFrSummary.csv (``Froot`` = 100 − ``Fshoot`` where only
  the shoot share is given); groups deciduous / evergreen / mixed forest, other.
- Ra:GPP: RaGPP.csv; groups deciduous / evergreen / mixed forest (``Leaf_habit`` "Forest" counts as
  mixed), grassland (+ savanna), other.
- With ``ratio_source="literature+srdb"`` (the budget job's default, as ``cal_Froot`` /
  ``prep_RaGpp`` of the GlobalC code do), SRDB records are added: Froot = Ra_annual / (ER −
  Rh_annual) (ER ← GPP, Rh ← NPP, Ra ← Rs − Rh where missing) kept for 0.1 < Froot < 0.9, and
  Ra:GPP = (ER − NPP) / GPP in (0, 1) (ER ← GPP where missing). ``"literature"`` reads the two
  literature tables alone.

Bad input raises ``DataError(file, line, column, …)`` with the 1-based line in the file.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import DataError
from data.table import fill_code_problem, is_fill_code

FILES = {
    "gpp": "GlobalGPP_Sum.csv",
    "rs": "GlobalRs.csv",
    "npp": "ITONPP.CSV",
    "froot": "FlFsFrSummary.csv",
    "ragpp": "RaGPP.csv",
    "fire": "Fire_burn_C.csv",
    "igbp": "igbp_mapping.csv",
    "srdb": "srdb-data-v5.csv.gz",
}

# Ecosystem groups over which the ratios are drawn and area-weighted (IGBP_group codes of
# igbp_mapping.csv → labels used throughout).
ECOSYSTEM_GROUPS = {
    "CRO": "agriculture",
    "DF": "deciduous_forest",
    "EF": "evergreen_forest",
    "MF": "mixed_forest",
    "GRA": "grassland",
    "SH": "shrubland_savanna",
}
OTHER = "other"

# Share of land area (water excluded) of each IGBP group, cos(latitude)-weighted as in
# Topdown_GlobalRs.Rmd ("calculate vegetation areas"): shares estimated from a systematic sample
# of 800 of IGBP.txt's points (592 on land; standard error ≈ 2 percentage points), kept for
# inputs without that table. The budget job computes the shares from the whole IGBP.txt as the
# GlobalC code does (read_area_shares). The remainder (barren, snow/ice, wetland, urban: 0.242)
# takes the "other" ratios.
AREA_SHARES = {
    "agriculture": 0.153,
    "deciduous_forest": 0.004,
    "evergreen_forest": 0.183,
    "mixed_forest": 0.030,
    "grassland": 0.296,
    "shrubland_savanna": 0.093,
}

# Method groups of the literature GPP estimates (Group / Group2 of GlobalGPP_Sum.csv).
GPP_METHOD_GROUPS = ("remote_sensing", "process_model", "site_upscaling", "isotope_sif", "mixed")
# Basis of the literature RS estimates (A_M of GlobalRs.csv: annual, monthly, other).
RS_METHOD_GROUPS = {"A": "annual_upscaling", "M": "monthly_upscaling", "O": "other"}


@dataclasses.dataclass
class BudgetInputs:
    """Everything the budget models need, in canonical units (Pg C yr⁻¹; ratios as fractions).

    gpp:   value, sd, pub_year, year, group, group2, flag, method_group, line
    rs:    value, sd, pub_year, method_group, line
    npp:   value, line
    rc / froot / ragpp: value, group, source, line (source = file name; study for SRDB rows)
    fire:  value, sd, line
    area_shares: ecosystem group → share of land area (the rest takes the "other" ratios)
    """

    gpp: pd.DataFrame
    rs: pd.DataFrame
    npp: pd.DataFrame
    rc: pd.DataFrame
    froot: pd.DataFrame
    ragpp: pd.DataFrame
    fire: pd.DataFrame
    area_shares: dict[str, float]
    sources: list[Path] = dataclasses.field(default_factory=list)
    sha256: str = ""


# ---------------------------------------------------------------- low-level reading
def _open_text(path: Path):
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="latin1", newline="")
    return open(path, encoding="latin1", newline="")


def _data_lines(path: Path) -> list[int]:
    """1-based file line of the header and of each row pandas parses with ``comment='#'``."""
    lines = []
    with _open_text(path) as fh:
        for number, raw in enumerate(fh, start=1):
            # pandas drops a line that is empty once the comment is cut off; ",,," is a row.
            if raw.split("#", 1)[0].strip():
                lines.append(number)
    return lines


def read_table(path: str | Path, required: tuple[str, ...], *, numeric: tuple[str, ...] = (),
               keep_literal_none: bool = False) -> pd.DataFrame:
    """Read one GlobalC table; add a ``line`` column (1-based line in the file); check columns.

    ``numeric`` columns must parse as numbers where present (blank = missing); a missing-value
    code (−9999, −999, …: ``data.table.FILL_CODES``) is refused, never read as a value. With
    ``keep_literal_none`` only blank and "NA" are missing, so SRDB's ``Manipulation = None`` stays
    a word (as R's read.csv keeps it).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, None, "file not found",
                        "check the dataset folder (data.registry.dataset_folder('jian2022'))")
    na = {"keep_default_na": False, "na_values": ["", "NA"]} if keep_literal_none else {}
    try:
        table = pd.read_csv(path, comment="#", encoding="latin1", low_memory=False,
                            skip_blank_lines=True, **na)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError, OSError,
            zlib.error, ValueError) as exc:
        raise DataError(path, None, None, f"cannot parse as CSV ({str(exc).strip()[:120]})",
                        "export the table as comma-separated text") from None
    table.columns = [str(c).strip() for c in table.columns]
    # Fully empty rows (",,,,") are blank lines to R and pandas keeps them: drop them.
    table = table.dropna(how="all")
    try:
        lines = _data_lines(path)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(path, None, None, f"cannot be read ({exc})",
                        "download or copy the file again") from None
    header_line = lines[0] if lines else 1
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(path, header_line, missing[0], f"required column '{missing[0]}' is missing",
                        f"the table needs columns {', '.join(required)}")
    data_lines = lines[1:]
    if len(data_lines) >= len(table) and len(table) and table.index.max() < len(data_lines):
        table.insert(0, "line", [data_lines[i] for i in table.index])
    else:  # quoted line breaks: positions are approximate, fall back to header offset
        table.insert(0, "line", table.index.to_numpy() + header_line + 1)
    for col in numeric:
        raw = table[col]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if bad.any():
            row = table.loc[bad.idxmax()]
            raise DataError(path, int(row["line"]), col, f"'{row[col]}' is not a number",
                            "use a plain number (blank for missing)")
        fill = is_fill_code(values)
        if fill.any():
            row = table.iloc[int(np.flatnonzero(fill)[0])]
            raise DataError(path, int(row["line"]), col, fill_code_problem(float(row[col])),
                            "leave the cell blank where the source gives no value")
        table[col] = values.astype(float)
    return table.reset_index(drop=True)


def _refuse(path: Path, table: pd.DataFrame, mask: np.ndarray | pd.Series, column: str, problem: str,
            fix: str) -> None:
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        value = table[column].iloc[i]
        raise DataError(path, int(table["line"].iloc[i]), column, problem.format(value=value), fix)


def _check_flux(path: Path, table: pd.DataFrame, column: str, lo: float, hi: float,
                what: str) -> None:
    v = table[column].to_numpy(dtype=float)
    _refuse(path, table, ~np.isfinite(v), column, "value is missing",
            f"give a {what} estimate on every row (or delete the row)")
    _refuse(path, table, (v <= lo) | (v > hi), column,
            f"{{value}} is not a plausible global {what} in Pg C yr-1 ({lo:g}–{hi:g})",
            "check the unit: global fluxes are in Pg C per year")


def _check_sd(path: Path, table: pd.DataFrame, column: str = "SD") -> None:
    sd = table[column].to_numpy(dtype=float)
    _refuse(path, table, sd < 0, column, "standard deviation {value} is negative",
            "give the SD as a positive number, or leave it blank")


# ---------------------------------------------------------------- global estimates
def gpp_method_group(group: str, group2: str) -> str:
    """Method group of a literature GPP estimate (Group / Group2 of GlobalGPP_Sum.csv)."""
    if group2 in ("Isotope", "SIF"):
        return "isotope_sif"
    return {"Remote sensing based": "remote_sensing", "Model": "process_model",
            "Site-based upscaling": "site_upscaling", "Mixed": "mixed"}.get(group, "mixed")


def read_global_gpp(path: str | Path) -> pd.DataFrame:
    """GlobalGPP_Sum.csv → value, sd, pub_year, year, group, group2, flag, method_group, reference."""
    path = Path(path)
    t = read_table(path, ("Pub_year", "Year", "GPP", "SD", "Flag", "Group", "Group2"),
                   numeric=("Pub_year", "Year", "GPP", "SD"))
    _check_flux(path, t, "GPP", 10.0, 400.0, "GPP")
    _check_sd(path, t)
    for col in ("Group", "Group2", "Flag"):
        t[col] = t[col].fillna("").astype(str).str.strip()
    _refuse(path, t, t["Group"] == "", "Group", "method group is empty",
            "fill Group (e.g. 'Remote sensing based', 'Model', 'Site-based upscaling', 'Mixed')")
    return pd.DataFrame({
        "value": t["GPP"], "sd": t["SD"], "pub_year": t["Pub_year"], "year": t["Year"],
        "group": t["Group"], "group2": t["Group2"], "flag": t["Flag"],
        "method_group": [gpp_method_group(g, g2) for g, g2 in zip(t["Group"], t["Group2"])],
        "reference": t.get("Reference", pd.Series("", index=t.index)).fillna("").astype(str),
        "line": t["line"],
    })


def read_global_rs(path: str | Path) -> pd.DataFrame:
    """GlobalRs.csv → value, sd, pub_year, method_group (annual / monthly / other data), reference."""
    path = Path(path)
    t = read_table(path, ("Pub_year", "Rs", "SD"), numeric=("Pub_year", "Rs", "SD"))
    _check_flux(path, t, "Rs", 10.0, 300.0, "soil respiration")
    _check_sd(path, t)
    am = t["A_M"].fillna("O").astype(str).str.strip() if "A_M" in t else pd.Series("O", index=t.index)
    return pd.DataFrame({
        "value": t["Rs"], "sd": t["SD"], "pub_year": t["Pub_year"],
        "method_group": am.map(RS_METHOD_GROUPS).fillna("other"),
        "reference": t.get("Rs_Reference", pd.Series("", index=t.index)).fillna("").astype(str),
        "line": t["line"],
    })


def read_npp(path: str | Path) -> pd.DataFrame:
    """ITONPP.CSV (Ito 2011 compilation of global NPP estimates) → value."""
    path = Path(path)
    t = read_table(path, ("NPP",), numeric=("NPP",))
    t = t[t["NPP"].notna()]
    _check_flux(path, t, "NPP", 1.0, 300.0, "NPP")
    return pd.DataFrame({"value": t["NPP"].to_numpy(), "line": t["line"].to_numpy()})


def read_fire(path: str | Path) -> pd.DataFrame:
    """Fire_burn_C.csv (carbon burned by fire) → value, sd."""
    path = Path(path)
    t = read_table(path, ("Amount_Pg", "SD"), numeric=("Amount_Pg", "SD"))
    _check_flux(path, t, "Amount_Pg", 0.0, 50.0, "fire carbon emission")
    _check_sd(path, t)
    return pd.DataFrame({"value": t["Amount_Pg"], "sd": t["SD"], "line": t["line"]})


# ---------------------------------------------------------------- ratios
SRDB_COLUMNS = ("Study_number", "Ecosystem_type", "Leaf_habit", "Manipulation", "Quality_flag",
                "Latitude", "Longitude", "Rs_annual", "Ra_annual", "Rh_annual", "RC_annual",
                "GPP", "ER", "NPP")
SRDB_NUMERIC = ("Study_number", "Latitude", "Longitude", "Rs_annual", "Ra_annual", "Rh_annual",
                "RC_annual", "GPP", "ER", "NPP")


def read_srdb(path: str | Path) -> pd.DataFrame:
    """SRDB-V5 data table (gzipped CSV allowed), with the columns the budget and the upscaling use."""
    path = Path(path)
    t = read_table(path, SRDB_COLUMNS, numeric=SRDB_NUMERIC, keep_literal_none=True)
    for col in ("Ecosystem_type", "Leaf_habit", "Manipulation", "Quality_flag"):
        t[col] = t[col].fillna("").astype(str).str.strip()
    t.attrs["path"] = str(path)
    return t


def _rc_group(ecosystem: str, leaf_habit: str) -> str:
    if ecosystem == "Agriculture":
        return "agriculture"
    if ecosystem == "Grassland":
        return "grassland"
    if ecosystem in ("Savanna", "Shrubland"):
        return "shrubland_savanna"
    if ecosystem == "Forest":
        return {"Deciduous": "deciduous_forest", "Evergreen": "evergreen_forest",
                "Mixed": "mixed_forest"}.get(leaf_habit, OTHER)
    return OTHER


def rc_records(srdb: pd.DataFrame, lo: float = 0.01, hi: float = 0.99) -> pd.DataFrame:
    """Root : soil respiration ratios (SRDB ``RC_annual``, lo < RC < hi) with ecosystem groups."""
    rc = srdb[(srdb["RC_annual"] > lo) & (srdb["RC_annual"] < hi)]
    return pd.DataFrame({
        "value": rc["RC_annual"].to_numpy(),
        "group": [_rc_group(e, h) for e, h in zip(rc["Ecosystem_type"], rc["Leaf_habit"])],
        "source": "SRDB-V5 study " + rc["Study_number"].fillna(-1).astype(int).astype(str),
        "line": rc["line"].to_numpy(),
    })


def _froot_group(igbp: str, ecosystem: str) -> str:
    if ecosystem != "Forest":
        return OTHER
    if igbp in ("DBF", "DNF", "Deciduous"):
        return "deciduous_forest"
    if igbp in ("EBF", "ENF", "Evergreen"):
        return "evergreen_forest"
    if igbp in ("MF", "Mixed"):
        return "mixed_forest"
    return OTHER


def read_froot(path: str | Path, srdb: pd.DataFrame | None = None) -> pd.DataFrame:
    """Root share of autotrophic respiration: FlFsFrSummary.csv (percent → fraction).

    Follows ``cal_Froot`` of GlobalC functions.R: Froot = 100 − Fshoot where only Fshoot is given.
    With ``srdb``, SRDB rows are added: Froot = Ra_annual / (ER − Rh_annual), 0.1 < Froot < 0.9.
    """
    path = Path(path)
    t = read_table(path, ("Fshoot", "Froot", "IGBP", "Ecosystem"), numeric=("Fshoot", "Froot"))
    both_missing = t["Froot"].isna() & t["Fshoot"].isna()
    _refuse(path, t, both_missing, "Froot", "neither Froot nor Fshoot is given",
            "give the root (or shoot) share of autotrophic respiration in percent")
    froot = t["Froot"].fillna(100.0 - t["Fshoot"])
    t["Froot"] = froot
    _refuse(path, t, (froot <= 0) | (froot >= 100), "Froot", "Froot {value} is outside 0–100 %",
            "Froot is the root share of autotrophic respiration in percent")
    if len(froot) >= 3 and float(froot.max()) <= 1.0:
        raise DataError(path, int(t["line"].iloc[0]), "Froot",
                        "all Froot values are ≤ 1: they look like fractions, the column is percent",
                        "multiply by 100 (e.g. 0.35 → 35)")
    ecosystem = t["Ecosystem"].fillna("").astype(str).str.strip().replace({"Cropland": "Agriculture"})
    igbp = t["IGBP"].fillna("").astype(str).str.strip()
    lit = pd.DataFrame({
        "value": (froot / 100.0).to_numpy(),
        "group": [_froot_group(i, e) for i, e in zip(igbp, ecosystem)],
        "source": path.name, "line": t["line"].to_numpy(),
    })
    if srdb is None:
        return lit
    s = srdb[srdb["GPP"].notna() | srdb["NPP"].notna() | srdb["ER"].notna()]
    er = s["ER"].fillna(s["GPP"])
    rh = s["Rh_annual"].fillna(s["NPP"])
    ra = s["Ra_annual"].fillna(s["Rs_annual"] - rh)
    with np.errstate(divide="ignore", invalid="ignore"):
        fr = ra / (er - rh)
    keep = fr.notna() & (fr > 0.1) & (fr < 0.9)
    s = s[keep]
    eco = s["Ecosystem_type"].replace({"Cropland": "Agriculture"})
    from_srdb = pd.DataFrame({
        "value": fr[keep].to_numpy(),
        "group": [_froot_group(h, e) for h, e in zip(s["Leaf_habit"], eco)],
        "source": "SRDB-V5 study " + s["Study_number"].fillna(-1).astype(int).astype(str),
        "line": s["line"].to_numpy(),
    })
    return pd.concat([lit, from_srdb], ignore_index=True)


def _ragpp_group(ecosystem: str, leaf_habit: str) -> str:
    if ecosystem in ("Grassland", "Savanna"):
        return "grassland"
    if ecosystem == "Forest":
        return {"Deciduous": "deciduous_forest", "Evergreen": "evergreen_forest",
                "Mixed": "mixed_forest", "Forest": "mixed_forest"}.get(leaf_habit, OTHER)
    return OTHER


def read_ragpp(path: str | Path, srdb: pd.DataFrame | None = None) -> pd.DataFrame:
    """Autotrophic respiration : GPP ratios from RaGPP.csv.

    With ``srdb``, SRDB rows are added as ``prep_RaGpp`` of GlobalC functions.R does:
    (ER − NPP) / GPP in (0, 1), ER ← GPP where missing.
    """
    path = Path(path)
    t = read_table(path, ("Ecosystem", "Leaf_habit", "RaGPP_ratio"), numeric=("RaGPP_ratio",))
    r = t["RaGPP_ratio"].to_numpy(dtype=float)
    _refuse(path, t, ~np.isfinite(r), "RaGPP_ratio", "ratio is missing", "give Ra/GPP as a fraction")
    _refuse(path, t, (r <= 0) | (r >= 1), "RaGPP_ratio", "Ra:GPP {value} is outside (0, 1)",
            "give Ra/GPP as a fraction (e.g. 0.55), not percent")
    eco = t["Ecosystem"].fillna("").astype(str).str.strip()
    habit = t["Leaf_habit"].fillna("").astype(str).str.strip()
    lit = pd.DataFrame({"value": r, "group": [_ragpp_group(e, h) for e, h in zip(eco, habit)],
                        "source": path.name, "line": t["line"].to_numpy()})
    if srdb is None:
        return lit
    s = srdb[srdb["GPP"].notna() | srdb["NPP"].notna() | srdb["ER"].notna()]
    er = s["ER"].fillna(s["GPP"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (er - s["NPP"]) / s["GPP"]
    keep = (ratio > 0) & (ratio < 1) & (s["Ecosystem_type"] != "")
    s = s[keep]
    from_srdb = pd.DataFrame({
        "value": ratio[keep].to_numpy(),
        "group": [_ragpp_group(e, h) for e, h in zip(s["Ecosystem_type"], s["Leaf_habit"])],
        "source": "SRDB-V5 study " + s["Study_number"].fillna(-1).astype(int).astype(str),
        "line": s["line"].to_numpy(),
    })
    return pd.concat([from_srdb, lit], ignore_index=True)


# ---------------------------------------------------------------- land-area shares
def read_igbp_mapping(path: str | Path) -> pd.DataFrame:
    """igbp_mapping.csv: IGBP class code → ecosystem → IGBP_group (the groups AREA_SHARES uses)."""
    path = Path(path)
    t = read_table(path, ("IGBP", "Ecosystem", "IGBP_group", "IGBP2001Pr"), numeric=("IGBP2001Pr",))
    return t


def check_area_shares(shares: dict[str, float], mapping: pd.DataFrame | None = None,
                      source: str | Path = "<area shares>") -> dict[str, float]:
    """Shares must be ≥ 0, name known groups, sum to ≤ 1 (the rest is "other")."""
    known = set(ECOSYSTEM_GROUPS.values())
    for name, share in shares.items():
        if name not in known:
            raise DataError(source, None, name, f"unknown ecosystem group '{name}'",
                            f"use {', '.join(sorted(known))}")
        if not (0.0 <= float(share) <= 1.0):
            raise DataError(source, None, name, f"area share {share} is outside 0–1",
                            "give each group's fraction of land area")
    total = float(sum(shares.values()))
    if total > 1.0 + 1e-9:
        raise DataError(source, None, "share", f"area shares sum to {total:.3f} > 1",
                        "shares are fractions of total land area; the remainder is 'other'")
    if mapping is not None:
        groups = set(mapping["IGBP_group"].astype(str))
        absent = [code for code in ECOSYSTEM_GROUPS if code not in groups]
        if absent:
            raise DataError(source, None, "IGBP_group", f"group {absent[0]} is not in the IGBP mapping",
                            "use the igbp_mapping.csv of the dataset")
    return {k: float(v) for k, v in shares.items()}


def read_area_shares(path: str | Path) -> dict[str, float]:
    """A CSV with columns ``IGBP_group`` (CRO, DF, EF, MF, GRA, SH) and ``share`` (fraction of land)."""
    path = Path(path)
    t = read_table(path, ("IGBP_group", "share"), numeric=("share",))
    codes = t["IGBP_group"].astype(str).str.strip()
    _refuse(path, t, ~codes.isin(list(ECOSYSTEM_GROUPS)), "IGBP_group",
            "unknown IGBP group '{value}'", f"use {', '.join(ECOSYSTEM_GROUPS)}")
    share = t["share"].to_numpy(dtype=float)
    _refuse(path, t, ~((share >= 0.0) & (share <= 1.0)), "share",
            "area share {value} is outside 0–1", "give each group's fraction of land area "
            "(0.153, not 15.3 %)")
    shares = {ECOSYSTEM_GROUPS[c]: float(s) for c, s in zip(codes, t["share"])}
    return check_area_shares(shares, source=path)


# ---------------------------------------------------------------- everything at once
def files_sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.name):
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


RATIO_SOURCES = ("literature", "literature+srdb")


def load_budget_inputs(folder: str | Path | None = None, *, ratio_source: str = "literature",
                       area_shares: dict[str, float] | None = None) -> BudgetInputs:
    """Read all budget tables from ``folder`` (default: the registry's ``jian2022`` folder).

    ``ratio_source``: "literature" (Froot from FlFsFrSummary.csv, Ra:GPP from RaGPP.csv) or
    "literature+srdb" (plus the SRDB-derived records that ``cal_Froot`` / ``prep_RaGpp`` of the
    GlobalC code add; the budget job's default).
    """
    if ratio_source not in RATIO_SOURCES:
        raise DataError(None, None, None, f"unknown ratio source '{ratio_source}'",
                        f"use one of {', '.join(RATIO_SOURCES)}")
    if folder is None:
        from data.registry import dataset_folder

        folder = dataset_folder("jian2022")
    folder = Path(folder)
    paths = {key: folder / name for key, name in FILES.items()}
    srdb = read_srdb(paths["srdb"])
    extra = srdb if ratio_source == "literature+srdb" else None
    mapping = read_igbp_mapping(paths["igbp"])
    shares = check_area_shares(dict(AREA_SHARES if area_shares is None else area_shares), mapping)
    sources = list(paths.values())
    return BudgetInputs(
        gpp=read_global_gpp(paths["gpp"]), rs=read_global_rs(paths["rs"]), npp=read_npp(paths["npp"]),
        rc=rc_records(srdb), froot=read_froot(paths["froot"], extra),
        ragpp=read_ragpp(paths["ragpp"], extra), fire=read_fire(paths["fire"]), area_shares=shares,
        sources=sources, sha256=files_sha256(sources),
    )
