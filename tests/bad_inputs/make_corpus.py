"""Rebuild the malformed-input corpus and its MANIFEST.csv (run from the repository root):

    python tests/bad_inputs/make_corpus.py

Every entry is small and wrong in one way. MANIFEST.csv names, per entry: the entry point it is
driven through (``entry``: fit_ea, inspect, fit_rr, project, budget), extra arguments, the reader
function that must refuse it (``reader``, ``module:function``), the file the error must name
(``error_file``, relative to this folder), the expected ``row`` (1-based file line, ``-`` where a
file-level problem has none, e.g. an empty file or a NetCDF variable) and ``column`` (``-`` where
none applies), and why the input is wrong. ``reader`` is ``-`` where the input is valid for the
reader and only a model can refuse it. ``gap`` describes where the code falls short of that
expectation today (the tests mark those entries as expected failures, strictly, so that a fix
shows up).

``expect`` is ``refused`` (exit 2, the one ``error:`` line naming ``error_file:row:column``,
nothing written) or ``handled``: an input that looks wrong but has a right result (a site named
``#3``, a missing day in a grid, ``NA`` spellings); the entry point must succeed, and
``tests/test_bad_inputs.py`` checks that result (``HANDLED_CHECKS``, one per such entry).
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROWS: list[dict] = []

CHAMBER = "data.chamber:read_chamber_csv"
FLUXNET = "data.fluxnet:read_fluxnet_ch4"
COSORE = "data.cosore:read_cosore"
WARMING = "data.warming:load_warming"
EFFECTS = "models.meta:effect_sizes"
GRID = "data.grid:read_driver_grid"
LAND = "data.grid:require_land_cover"
SHARES = "data.jian2022:read_area_shares"
TINY_FIT = "--chains 1 --draws 20 --tune 20 --ppc-draws 5"


GRID_RUN = ("--mode rf --train synthetic --n-trees 8 --n-draws 8 --cv-trees 0 --n-jobs 1 "
            "--scenarios 0,1")


def entry(file: str, entry_point: str, reader: str, row, column: str, why: str, *,
          args: str = "", error_file: str | None = None, gap: str = "",
          expect: str = "refused") -> None:
    ROWS.append({"file": file, "entry": entry_point, "args": args, "reader": reader,
                 "error_file": error_file or file, "row": row, "column": column, "why": why,
                 "gap": gap, "expect": expect})


def handled(file: str, entry_point: str, reader: str, why: str, *, args: str = "") -> None:
    """An input with a right result (checked by tests/test_bad_inputs.py: HANDLED_CHECKS)."""
    entry(file, entry_point, reader, "-", "-", why, args=args, expect="handled")


def edited(rows: list[str], i: int, old: str, new: str) -> list[str]:
    """A copy of ``rows`` with ``old`` replaced by ``new`` in row ``i``: one fault per file."""
    rows = list(rows)
    rows[i] = rows[i].replace(old, new)
    return rows


def write(name: str, text: str) -> Path:
    path = HERE / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    return path


# ---------------------------------------------------------------- chamber CSV
CH_HEADER = "site,date,flux,flux_unit,soil_temp_c,ecosystem,latitude,longitude"


def chamber_rows(n_sites: int = 2, dates=("2019-06-01", "2019-07-01", "2019-08-01", "2019-12-01",
                                          "2020-01-15", "2020-02-15")) -> list[str]:
    rows = []
    for s in range(n_sites):
        for k, d in enumerate(dates):
            temp = 12.5 if d[5:7] in ("06", "07", "08") else -3.2
            rows.append(f"HY-{s + 1},{d},{1.2 + 0.3 * k + s:.2f},nmol m-2 s-1,{temp + s:.1f},"
                        f"wetland,32.8,102.55")
    return rows


def chamber(name: str, rows: list[str], header: str = CH_HEADER) -> None:
    write(name, "\n".join([header, *rows]) + "\n")


def build_chamber() -> None:
    base = chamber_rows()

    chamber("chamber_missing_flux_unit.csv",
            [",".join(r.split(",")[:3] + r.split(",")[4:]) for r in base],
            header="site,date,flux,soil_temp_c,ecosystem,latitude,longitude")
    entry("chamber_missing_flux_unit.csv", "fit_ea", CHAMBER, 1, "flux_unit",
          "missing units: no flux_unit column, so the flux cannot be converted")

    rows = edited(base, 2, "nmol m-2 s-1", "furlongs m-2 fortnight-1")
    chamber("chamber_unknown_flux_unit.csv", rows)
    entry("chamber_unknown_flux_unit.csv", "fit_ea", CHAMBER, 4, "flux_unit", "unknown flux unit")

    rows = edited(base, 1, "nmol m-2 s-1", "mg m-2 h-1")
    chamber("chamber_mass_unit_without_species.csv", rows)
    entry("chamber_mass_unit_without_species.csv", "inspect", CHAMBER, 3, "flux_unit",
          "mass unit that does not say CH4 or CH4-C (a factor of 1.34 apart)")

    rows = edited(base, 3, ",-3.2,", ",270.0,")
    chamber("chamber_kelvin_soil_temp.csv", rows)
    entry("chamber_kelvin_soil_temp.csv", "fit_ea", CHAMBER, 5, "soil_temp_c",
          "soil temperature in Kelvin in a °C column")

    rows = [r.replace(",nmol m-2 s-1,", ",nmol m-2 s-1,").rsplit(",", 4) for r in base]
    chamber("chamber_unknown_temp_unit.csv",
            [f"{r[0]},F,{r[1]},{r[2]},{r[3]},{r[4]}" for r in rows],
            header="site,date,flux,flux_unit,soil_temp_unit,soil_temp,ecosystem,latitude,longitude")
    entry("chamber_unknown_temp_unit.csv", "fit_ea", CHAMBER, 2, "soil_temp_unit",
          "soil temperature declared in Fahrenheit, a unit the reader does not convert")

    rows = edited(base, 4, ",2.40,", ",-9999,")
    chamber("chamber_fill_9999_flux.csv", rows)
    entry("chamber_fill_9999_flux.csv", "fit_ea", CHAMBER, 6, "flux",
          "-9999 missing-value fill left in the flux column (chamber CSVs use empty cells)")

    rows = edited(base, 7, ",13.5,", ",-9999,")
    chamber("chamber_fill_9999_soil_temp.csv", rows)
    entry("chamber_fill_9999_soil_temp.csv", "inspect", CHAMBER, 9, "soil_temp_c",
          "-9999 missing-value fill left in the soil temperature column")

    rows = [",".join(r.split(",")[:4] + [""] + r.split(",")[5:]) for r in base]
    chamber("chamber_all_missing_soil_temp.csv", rows)
    entry("chamber_all_missing_soil_temp.csv", "fit_ea", CHAMBER, 1, "soil_temp_c",
          "all-missing column: every soil temperature is empty, so every row would be dropped",
          args=TINY_FIT)

    rows = [",".join(r.split(",")[:2] + ["0"] + r.split(",")[3:]) for r in base]
    chamber("chamber_all_zero_flux.csv", rows)
    entry("chamber_all_zero_flux.csv", "fit_ea", "-", "-", "flux",
          "zero fluxes for the log model: ln|F| is undefined for every row", args=TINY_FIT)

    rows = list(base)
    rows.insert(3, rows[1].replace(",1.50,", ",1.70,"))
    chamber("chamber_duplicate_site_date.csv", rows)
    entry("chamber_duplicate_site_date.csv", "fit_ea", CHAMBER, 5, "date",
          "duplicate site-date (two fluxes for HY-1 on 2019-07-01)")

    dates = [f"2019-{m:02d}-{d:02d}" for m in (5, 6, 7, 8, 9) for d in (3, 10, 17, 24)] + \
            [f"{y}-{m:02d}-{d:02d}" for y, m in ((2019, 10), (2019, 11), (2019, 12), (2020, 1),
                                                 (2020, 2)) for d in (3, 10, 17, 24)]
    rows = []
    for k, d in enumerate(dates):
        warm = d[5:7] in ("05", "06", "07", "08", "09")
        temp = (8 + 6 * np.sin(k / 3.0)) if warm else (-4 + 2 * np.cos(k / 2.0))
        flux = np.exp(0.8 * temp / 10 + 0.1 * np.sin(7 * k))
        rows.append(f"HY-1,{d},{flux:.3f},nmol m-2 s-1,{temp:.2f},wetland,32.8,102.55")
    chamber("chamber_single_site.csv", rows)
    entry("chamber_single_site.csv", "fit_ea", "-", "-", "site",
          "a single site: the site-to-site spread (τ) is not identifiable from one site",
          args=TINY_FIT)

    rows = [r.replace("HY-1", f"HY-{1 + k % 4}") for k, r in enumerate(rows[:20])]
    rows = [r.replace(f",{d},", f",{d2},") for r, d, d2 in
            zip(rows, dates[:20], [f"2019-{m:02d}-{d:02d}" for m in (5, 6, 7, 8, 9)
                                   for d in (3, 10, 17, 24)])]
    chamber("chamber_single_season.csv", rows)
    entry("chamber_single_season.csv", "fit_ea", "-", "-", "season",
          "a single season: no non-growing data, so the season contrast the fit reports does "
          "not exist", args="--min-obs 3 " + TINY_FIT)

    rows = edited(base, 5, "2020-02-15", "15/02/2020")
    chamber("chamber_bad_date.csv", rows)
    entry("chamber_bad_date.csv", "fit_ea", CHAMBER, 7, "date", "unparseable date (day-first)")

    text = "\n".join([CH_HEADER, *base]) + "\n"
    (HERE / "chamber_utf16_bom.csv").write_bytes(text.encode("utf-16"))
    entry("chamber_utf16_bom.csv", "fit_ea", CHAMBER, 1, "-",
          "byte-order mark of UTF-16 (spreadsheet 'Unicode text' export), not UTF-8")

    write("chamber_semicolon.csv", "\n".join(l.replace(",", ";") for l in [CH_HEADER, *base]) + "\n")
    entry("chamber_semicolon.csv", "fit_ea", CHAMBER, 1, "-", "wrong delimiter: semicolons")

    write("chamber_tab_delimited.csv", "\n".join(l.replace(",", "\t") for l in [CH_HEADER, *base]) + "\n")
    entry("chamber_tab_delimited.csv", "inspect", CHAMBER, 1, "-", "wrong delimiter: tabs")

    rows = edited(edited(base, 8, "nmol m-2 s-1", "mg CH4 m-2 h-1"), 8, ",2.80,", ",900,")
    chamber("chamber_absurd_flux.csv", rows)
    entry("chamber_absurd_flux.csv", "fit_ea", CHAMBER, 10, "flux",
          "absurd magnitude: 900 mg CH4 m-2 h-1 (15,600 nmol m-2 s-1)")

    rows = edited(base, 0, ",32.8,", ",328,")
    chamber("chamber_latitude_out_of_range.csv", rows)
    entry("chamber_latitude_out_of_range.csv", "fit_ea", CHAMBER, 2, "latitude",
          "absurd magnitude: latitude 328 (decimal point lost)")

    chamber("chamber_swc_percent.csv", [r + f",{35 if k == 6 else 0.35}" for k, r in enumerate(base)],
            header=CH_HEADER + ",swc")
    entry("chamber_swc_percent.csv", "fit_ea", CHAMBER, 8, "swc",
          "soil water in percent in a m3 m-3 column")

    rows = list(base)
    rows[2] = rows[2] + ",extra"
    chamber("chamber_row_too_long.csv", rows)
    entry("chamber_row_too_long.csv", "fit_ea", CHAMBER, 4, "-",
          "a row with more fields than the header (unquoted comma in a value)")

    chamber("chamber_unknown_method.csv", [r + ",eddy" for r in base], header=CH_HEADER + ",method")
    entry("chamber_unknown_method.csv", "fit_ea", CHAMBER, 2, "method", "unknown method label")

    write("chamber_empty.csv", "")
    entry("chamber_empty.csv", "fit_ea", CHAMBER, "-", "-", "empty file")

    write("chamber_header_only.csv", CH_HEADER + "\n")
    entry("chamber_header_only.csv", "inspect", CHAMBER, 1, "-", "a header and no data rows")

    full = gzip.compress(("\n".join([CH_HEADER, *base * 20]) + "\n").encode(), mtime=0)
    (HERE / "chamber_truncated.csv.gz").write_bytes(full[: len(full) // 2])
    entry("chamber_truncated.csv.gz", "fit_ea", CHAMBER, "-", "-", "truncated gzip")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=(2020, 1, 1, 0, 0, 0))
        z.writestr(info, "<worksheet/>")
    (HERE / "chamber_excel_renamed.csv").write_bytes(buf.getvalue())
    entry("chamber_excel_renamed.csv", "fit_ea", CHAMBER, "-", "-",
          "an Excel workbook saved with a .csv name")

    # Missing-value codes are never data: a -999 nmol m-2 s-1 flux would be "uptake".
    rows = edited(base, 3, ",2.10,", ",-999,")
    chamber("chamber_fill_999_flux.csv", rows)
    entry("chamber_fill_999_flux.csv", "fit_ea", CHAMBER, 5, "flux",
          "-999 missing-value fill in the flux column (within the plausible range: it would read "
          "as uptake)")

    rows = edited(base, 7, ",2.50,", ",-9999.0,")
    chamber("chamber_fill_9999_decimal_flux.csv", rows)
    entry("chamber_fill_9999_decimal_flux.csv", "inspect", CHAMBER, 9, "flux",
          "-9999 fill spelled -9999.0")

    chamber("chamber_fill_99999_wtd.csv",
            [r + (",-99999" if k == 10 else ",0.05") for k, r in enumerate(base)],
            header=CH_HEADER + ",wtd_m")
    entry("chamber_fill_99999_wtd.csv", "fit_ea", CHAMBER, 12, "wtd_m",
          "-99999 fill in an optional driver column that has no range check")

    rows = edited(base, 6, ",13.5,", ",-999.9,")
    chamber("chamber_fill_999_9_soil_temp.csv", rows)
    entry("chamber_fill_999_9_soil_temp.csv", "inspect", CHAMBER, 8, "soil_temp_c",
          "-999.9 missing-value fill in the soil temperature column")

    # Names are data: '#' at the start of a site and '|' inside one.
    rows = [r.replace("HY-", "#") for r in base]
    write("chamber_hash_site_names.csv",
          "\n".join(["# exported from the field book", CH_HEADER, *rows[:6],
                     "# (a comment below the header: fewer fields than a row)", *rows[6:]]) + "\n")
    handled("chamber_hash_site_names.csv", "inspect", CHAMBER,
            "site names starting with '#' (#1, #2) are data, not comment lines; shorter '#' "
            "lines stay comments", args="--json")

    rows = edited(base, 0, ",1.20,", ",NA,")
    for k, token in ((2, "#N/A"), (5, "n/a"), (7, "NULL"), (9, "-")):
        rows[k] = ",".join(rows[k].split(",")[:2] + [token] + rows[k].split(",")[3:])
    chamber("chamber_na_spellings.csv", rows)
    handled("chamber_na_spellings.csv", "inspect", CHAMBER,
            "NA-like spellings (NA, #N/A, n/a, NULL, -) in the flux column are missing: 5 rows "
            "dropped and counted", args="--json")

    dates = [f"2019-{m:02d}-{d:02d}" for m in (6, 7, 8) for d in (2, 9, 16, 23)] + \
            [f"{y}-{m:02d}-{d:02d}" for y, m in ((2019, 12), (2020, 1), (2020, 2)) for d in (2, 9, 16, 23)]
    rows = []
    for s_ in (1, 2):
        for k, d in enumerate(dates):
            warm = d[5:7] in ("06", "07", "08")
            temp = (8 + 5 * np.sin(k / 2.0 + s_)) if warm else (-3 + 2 * np.cos(k / 2.0 + s_))
            flux = np.exp(0.07 * temp + 0.2 * np.sin(5 * k + s_))
            rows.append(f"HY|{s_},{d},{flux:.3f},nmol m-2 s-1,{temp:.2f},wetland,32.8,102.55")
    chamber("chamber_pipe_site_names.csv", rows)
    handled("chamber_pipe_site_names.csv", "fit_ea", CHAMBER,
            "site names holding the group separator '|' (HY|1, HY|2): E_site rows keep site, "
            "class and season", args="--min-obs 5 --allow-unconverged " + TINY_FIT)

    # Dates outside what a table can hold.
    rows = edited(base, 2, "2019-08-01", "1600-08-01")
    chamber("chamber_date_before_1677.csv", rows)
    entry("chamber_date_before_1677.csv", "fit_ea", CHAMBER, 4, "date",
          "a date before 1677 (1600-08-01), outside the nanosecond time stamps of the tables")

    rows = edited(base, 4, "2020-01-15", "2300-01-15")
    chamber("chamber_date_after_2262.csv", rows)
    entry("chamber_date_after_2262.csv", "inspect", CHAMBER, 6, "date",
          "a date after 2262 (2300-01-15)")

    chamber("chamber_period_ends_after_2262.csv",
            [r.replace("2020-02-15", "2262-04-01") + (",30" if k == 5 else ",1")
             for k, r in enumerate(base)], header=CH_HEADER + ",days")
    entry("chamber_period_ends_after_2262.csv", "fit_ea", CHAMBER, 7, "days",
          "a 30-day period starting 2262-04-01 ends after the last date the tables can hold")


# ---------------------------------------------------------------- FLUXNET-CH4 daily files
FX_HEADER = "TIMESTAMP,FCH4,FCH4_F,TS_1,TA,LE,NEE,USTAR,WTD"


def fluxnet_rows(n: int = 8) -> list[str]:
    days = pd.date_range("2016-06-01", periods=n, freq="D")
    return [f"{d:%Y%m%d},{20 + k:.1f},{20 + k:.1f},{14 + 0.5 * k:.1f},{15 + k},80,-2.1,0.3,0.05"
            for k, d in enumerate(days)]


def fluxnet(tag: str, rows: list[str], header: str = FX_HEADER, *, gz: bool = False,
            site: str = "US-Myb") -> str:
    # A real site id; the data are made up. US-Myb is not in the package site table, so an input
    # that must be read to the end uses US-BZF (whose coordinates it holds).
    name = f"FLX_{site}_FLUXNET-CH4-synthetic_DD_2016-2016_{tag}.csv" + (".gz" if gz else "")
    text = "\n".join([header, *rows]) + "\n"
    if gz:
        (HERE / name).write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        write(name, text)
    return name


def build_fluxnet() -> None:
    base = fluxnet_rows()

    rows = edited(base, 2, ",15.0,", ",288.2,")
    name = fluxnet("kelvin-soil", rows)
    entry(name, "fit_ea", FLUXNET, 4, "TS_1", "soil temperature in Kelvin")

    rows = list(base)
    rows[5] = "2016-06-06" + rows[5][8:]
    name = fluxnet("bad-timestamp", rows)
    entry(name, "fit_ea", FLUXNET, 7, "TIMESTAMP", "unparseable date (ISO instead of YYYYMMDD)")

    rows = list(base)
    rows.insert(4, rows[3])
    name = fluxnet("duplicate-day", rows)
    entry(name, "fit_ea", FLUXNET, 6, "TIMESTAMP", "duplicate site-date (the same day twice)")

    rows = [r.split(",") for r in base]
    name = fluxnet("all-missing-flux", [",".join([r[0], "-9999", "-9999", *r[3:]]) for r in rows])
    entry(name, "fit_ea", FLUXNET, 1, "FCH4",
          "all-missing column: FCH4 is -9999 on every day", args=TINY_FIT)

    rows = edited(base, 1, ",14.5,", ",-999,")
    name = fluxnet("fill-999-soil", rows)
    entry(name, "fit_ea", FLUXNET, 3, "TS_1", "a -999 fill (not the -9999 code) in soil temperature")

    rows = edited(base, 6, ",26.0,26.0,", ",missing,26.0,")
    name = fluxnet("text-in-flux", rows)
    entry(name, "fit_ea", FLUXNET, 8, "FCH4", "text in a numeric column")

    name = fluxnet("no-fch4", [",".join(r.split(",")[:1] + r.split(",")[2:]) for r in base],
                   header=FX_HEADER.replace("FCH4,", "", 1))
    entry(name, "fit_ea", FLUXNET, 1, "FCH4", "required flux column missing")

    name = fluxnet("tab-delimited", [r.replace(",", "\t") for r in base],
                   header=FX_HEADER.replace(",", "\t"))
    entry(name, "fit_ea", FLUXNET, 1, "-", "wrong delimiter: tabs")

    name = fluxnet("empty", [], header="")
    (HERE / name).write_text("", encoding="utf-8")
    entry(name, "fit_ea", FLUXNET, "-", "-", "empty file")

    name = "FLX_US-Myb_FLUXNET-CH4-synthetic_DD_2016-2016_truncated.csv.gz"
    full = gzip.compress(("\n".join([FX_HEADER, *fluxnet_rows(400)]) + "\n").encode(), mtime=0)
    (HERE / name).write_bytes(full[: len(full) * 2 // 3])
    entry(name, "fit_ea", FLUXNET, "-", "-", "truncated gzip")

    name = fluxnet("utf8-bom-no-timestamp", [",".join(r.split(",")[1:]) for r in base],
                   header=FX_HEADER.replace("TIMESTAMP,", ""))
    raw = (HERE / name).read_bytes()
    (HERE / name).write_bytes(b"\xef\xbb\xbf" + raw)
    entry(name, "fit_ea", FLUXNET, 1, "TIMESTAMP",
          "byte-order mark and no TIMESTAMP column (a spreadsheet re-export dropped it)")

    rows = edited(base, 2, ",22.0,22.0,", ",-999,22.0,")
    name = fluxnet("fill-999-flux", rows)
    entry(name, "fit_ea", FLUXNET, 4, "FCH4",
          "a -999 fill (not the -9999 code) in the flux: within the plausible range, it would read "
          "as uptake")

    rows = edited(base, 5, ",80,", ",-99999,")
    name = fluxnet("fill-99999-le", rows)
    entry(name, "inspect", FLUXNET, 7, "LE", "a -99999 fill (not the -9999 code) in a driver column")

    rows = list(base)
    for k, token in ((1, "-9999.0"), (3, "-9999.000"), (6, "NA")):
        parts = rows[k].split(",")
        rows[k] = ",".join([parts[0], token, *parts[2:]])
    name = fluxnet("fill-9999-spellings", rows, site="US-BZF")
    handled(name, "inspect", FLUXNET, "the -9999 code spelled -9999.0 and -9999.000, and NA: "
            "missing (3 days dropped and counted), never data", args="--json")

    rows = list(base)
    rows[3] = "16000604" + rows[3][8:]
    name = fluxnet("timestamp-1600", rows)
    entry(name, "fit_ea", FLUXNET, 5, "TIMESTAMP", "a date before 1677 (16000604)")

    name = "FLX_US-Myb_FLUXNET-CH4-synthetic_HH_2300-2300_timestamp-2300.csv"
    stamps = pd.date_range("2300-06-01", periods=48, freq="30min").strftime("%Y%m%d%H%M")
    write(name, "\n".join(["TIMESTAMP_START,TIMESTAMP_END,FCH4,TS_1",
                           *[f"{a},{b},{20 + k % 5:.1f},14.0" for k, (a, b) in
                             enumerate(zip(stamps[:-1], stamps[1:]))]]) + "\n")
    entry(name, "inspect", FLUXNET, 2, "TIMESTAMP_START",
          "a date after 2262 in a half-hourly file (230006010000)")


# ---------------------------------------------------------------- COSORE dataset folders
DESCRIPTION = """CSR_DATASET: d20990101_TEST
CSR_SITE_NAME: Test meadow
CSR_LATITUDE: {lat}
CSR_LONGITUDE: 102.55
CSR_ELEVATION: 3500
CSR_IGBP: Grassland
"""
CS_HEADER = "CSR_PORT,CSR_TIMESTAMP_BEGIN,CSR_FLUX_CH4,CSR_T5,CSR_SM5"


def cosore_rows() -> list[str]:
    return [f"{p},2015-07-{d:02d} {h:02d}:00:00,{-0.5 + 0.1 * h:.2f},{10 + h / 4:.2f},0.3"
            for d in (1, 2) for p in (1, 2) for h in (2, 8, 14)]


def cosore(folder: str, rows: list[str], *, lat: str = "32.80") -> None:
    write(f"{folder}/DESCRIPTION.txt", DESCRIPTION.format(lat=lat))
    write(f"{folder}/d20990101_TEST_data.csv", "\n".join([CS_HEADER, *rows]) + "\n")


def build_cosore() -> None:
    rows = cosore_rows()
    bad = list(rows)
    bad[3] = bad[3].replace("2015-07-01 ", "2015/07/01 ")
    cosore("cosore_bad_timestamp", bad)
    entry("cosore_bad_timestamp", "fit_ea", COSORE, 5, "CSR_TIMESTAMP_BEGIN",
          "unparseable date", error_file="cosore_bad_timestamp/d20990101_TEST_data.csv")

    cosore("cosore_bad_latitude", rows, lat="32°48'N")
    entry("cosore_bad_latitude", "fit_ea", COSORE, 3, "CSR_LATITUDE",
          "coordinate in degrees-minutes text", error_file="cosore_bad_latitude/DESCRIPTION.txt")

    bad = list(rows)
    bad.insert(2, bad[1].replace(",0.30,", ",0.10,"))
    cosore("cosore_conflicting_repeats", bad)
    entry("cosore_conflicting_repeats", "fit_ea", COSORE, 4, "CSR_FLUX_CH4",
          "the same chamber reading twice with different fluxes (duplicate site-date-time)",
          error_file="cosore_conflicting_repeats/d20990101_TEST_data.csv")

    bad = list(rows)
    bad[6] = bad[6].replace(",10.50,", ",283.65,")
    cosore("cosore_kelvin_soil_temp", bad)
    entry("cosore_kelvin_soil_temp", "fit_ea", COSORE, 8, "CSR_T5",
          "soil temperature in Kelvin", error_file="cosore_kelvin_soil_temp/d20990101_TEST_data.csv")

    bad = list(rows)
    bad[4] = bad[4].replace(",0.30,", ",-999,")
    cosore("cosore_fill_999_flux", bad)
    entry("cosore_fill_999_flux", "fit_ea", COSORE, 6, "CSR_FLUX_CH4",
          "a -999 fill (COSORE writes NA) in the flux: it would read as uptake",
          error_file="cosore_fill_999_flux/d20990101_TEST_data.csv")

    bad = list(rows)
    bad[7] = bad[7].replace(",12.00,", ",-9999,")
    cosore("cosore_fill_9999_soil_temp", bad)
    entry("cosore_fill_9999_soil_temp", "inspect", COSORE, 9, "CSR_T5",
          "a -9999 fill in the soil temperature",
          error_file="cosore_fill_9999_soil_temp/d20990101_TEST_data.csv")

    bad = list(rows)
    bad[2] = bad[2].replace("2015-07-01 ", "2300-07-01 ")
    cosore("cosore_timestamp_2300", bad)
    entry("cosore_timestamp_2300", "fit_ea", COSORE, 4, "CSR_TIMESTAMP_BEGIN",
          "a date after 2262 (2300-07-01)", error_file="cosore_timestamp_2300/d20990101_TEST_data.csv")


# ---------------------------------------------------------------- warming tables (model M3)
WM_HEADER = ("study,site,ecosystem,season,warming_c,control_mean,control_sd,control_n,"
             "treatment_mean,treatment_sd,treatment_n")


def warming_rows() -> list[str]:
    return ["Wang2019,Haibei,grassland,growing,2.0,-1.20,0.30,4,-1.45,0.35,4",
            "Wang2019,Haibei,grassland,non-growing,1.8,-0.40,0.15,4,-0.52,0.16,4",
            "Li2020,Hongyuan,wetland,growing,1.5,25.0,6.0,3,31.0,7.5,3",
            "Li2020,Hongyuan,wetland,non-growing,1.2,3.1,1.2,3,3.9,1.4,3",
            "Zhu2021,Maqu,wetland,growing,2.2,18.0,4.0,5,24.0,6.0,5",
            "Zhu2021,Maqu,wetland,non-growing,2.0,2.0,0.8,5,2.6,0.9,5"]


def warming(name: str, rows: list[str], header: str = WM_HEADER) -> None:
    write(name, "\n".join([header, *rows]) + "\n")


def build_warming() -> None:
    base = warming_rows()

    warming("warming_missing_column.csv", [r.rsplit(",", 2)[0] + "," + r.rsplit(",", 1)[1]
                                           for r in base],
            header=WM_HEADER.replace("treatment_sd,", ""))
    entry("warming_missing_column.csv", "fit_rr", WARMING, 1, "treatment_sd",
          "required column missing")

    rows = edited(base, 3, ",3.1,1.2,", ",0,1.2,")
    warming("warming_zero_mean.csv", rows)
    entry("warming_zero_mean.csv", "fit_rr", EFFECTS, 5, "control_mean",
          "zero flux for the log model: ln(treatment/control) is undefined")

    rows = edited(base, 1, ",-0.52,", ",0.52,")
    warming("warming_sign_mixed.csv", rows)
    entry("warming_sign_mixed.csv", "fit_rr", EFFECTS, 3, "control_mean",
          "sign-mixed means (uptake in control, emission when warmed): no log response ratio")

    rows = edited(base, 2, ",1.5,", ",274.65,")
    warming("warming_kelvin.csv", rows)
    entry("warming_kelvin.csv", "fit_rr", WARMING, 4, "warming_c",
          "applied warming given as a Kelvin temperature")

    rows = edited(base, 4, ",18.0,4.0,", ",18.0,-4.0,")
    warming("warming_negative_sd.csv", rows)
    entry("warming_negative_sd.csv", "fit_rr", WARMING, 6, "control_sd", "negative SD")

    rows = edited(base, 0, ",0.30,4,", ",0.30,2.5,")
    warming("warming_fractional_n.csv", rows)
    entry("warming_fractional_n.csv", "fit_rr", WARMING, 2, "control_n",
          "replicate count 2.5")

    rows = edited(base, 5, ",2.6,", ",2.6 mg,")
    warming("warming_unit_in_value.csv", rows)
    entry("warming_unit_in_value.csv", "fit_rr", WARMING, 7, "treatment_mean",
          "a unit typed into a number cell")

    write("warming_empty.csv", "")
    entry("warming_empty.csv", "fit_rr", WARMING, "-", "-", "empty file")

    warming("warming_semicolon.csv", [r.replace(",", ";") for r in base],
            header=WM_HEADER.replace(",", ";"))
    entry("warming_semicolon.csv", "fit_rr", WARMING, 1, "study", "wrong delimiter: semicolons")

    rows = edited(base, 2, ",25.0,6.0,3,31.0,", ",-9999,6.0,3,-9999,")
    warming("warming_fill_9999_means.csv", rows)
    entry("warming_fill_9999_means.csv", "fit_rr", WARMING, 4, "control_mean",
          "-9999 fill in both means: it would be an experiment with RR = 1 and a tiny variance")

    rows = edited(base, 4, ",24.0,", ",-999.0,")
    warming("warming_fill_999_decimal_treatment_mean.csv", rows)
    entry("warming_fill_999_decimal_treatment_mean.csv", "fit_rr", WARMING, 6, "treatment_mean",
          "-999 fill spelled -999.0 in one mean")

    precip_header = (" ,Ecosystem_type,Other_factor,Manipulation,Latitude,Longitude,Measurement Period,"
                     "Unit,N_control,CH4_control,SD_CH4_control,SE_CH4_control,N_manip,CH4_manip,"
                     "SD_CH4_manip,SE_CH4_manip")
    write("warming_precip_fill_9999.csv", "\n".join([
        precip_header,
        "1,Forest,Upland,Drought,64,148,Growing season,mg CH4 m2 d,3,-0.28,,0.1,3,-0.56,,0.2",
        "2,Grassland,,Drought,41,-105,Growing season,mg CH4 m2 d,4,-9999,,0.1,4,-9999,,0.1",
        "3,Grassland,,Irrigation,41,-105,Growing season,mg CH4 m2 d,4,-0.5,,0.1,4,-0.4,,0.1"]) + "\n")
    entry("warming_precip_fill_9999.csv", "fit_rr", WARMING, 3, "CH4_control",
          "-9999 fill in both means of the precipitation-manipulation layout (before the unit "
          "conversion would disguise it)")

    full = gzip.compress(("\n".join([WM_HEADER, *base * 30]) + "\n").encode(), mtime=0)
    (HERE / "warming_truncated.csv.gz").write_bytes(full[: len(full) // 2])
    entry("warming_truncated.csv.gz", "fit_rr", WARMING, "-", "-", "truncated gzip warming table")

    write("warming_folder.csv/NOTE.txt", "a folder named like a table\n")
    entry("warming_folder.csv", "fit_rr", WARMING, "-", "-", "a folder, not a file, given as the table")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("xl/workbook.xml", date_time=(2020, 1, 1, 0, 0, 0)), "<workbook/>")
    (HERE / "warming_excel_renamed.csv").write_bytes(buf.getvalue())
    entry("warming_excel_renamed.csv", "fit_rr", WARMING, "-", "-",
          "an Excel workbook saved with a .csv name")

    (HERE / "warming_utf16.csv").write_bytes(("\n".join([WM_HEADER, *base]) + "\n").encode("utf-16"))
    entry("warming_utf16.csv", "fit_rr", WARMING, 1, "-",
          "byte-order mark of UTF-16 (spreadsheet 'Unicode text' export), not UTF-8")

    rows = [r for r in base if r.startswith("Li2020")]
    warming("warming_single_study.csv", rows)
    entry("warming_single_study.csv", "fit_rr", "-", "-", "study",
          "a single study at a single site: between-study and between-site spread (τ) are not "
          "identifiable", args="--chains 1 --draws 20 --tune 20")


# ---------------------------------------------------------------- NetCDF driver cubes
def cube(n_lat: int = 2, n_lon: int = 3, n_days: int = 4, lat=None, lon=None):
    import xarray as xr

    lat = np.array([32.25, 32.75][:n_lat] if lat is None else lat, dtype=float)
    lon = np.array([100.25, 100.75, 101.25][:n_lon] if lon is None else lon, dtype=float)
    n_lat, n_lon = lat.size, lon.size
    time = pd.date_range("2020-07-01", periods=n_days, freq="D")
    temp = 285.0 + np.arange(n_lat * n_lon * n_days, dtype=float).reshape(n_lat, n_lon, n_days) / 10
    ds = xr.Dataset(
        {"stl1": (("latitude", "longitude", "time"), temp, {"units": "K"}),
         "swvl1": (("latitude", "longitude", "time"), np.full(temp.shape, 0.3), {"units": "m3 m-3"}),
         "wetland_fraction": (("latitude", "longitude"), np.full((n_lat, n_lon), 0.2), {"units": "1"})},
        coords={"latitude": lat, "longitude": lon, "time": time})
    return ds


def nc(name: str, ds) -> None:
    ds.to_netcdf(HERE / name, engine="h5netcdf")


def build_grid() -> None:
    import xarray as xr

    ds = cube()
    ds["stl1"] = (("time", "latitude"), ds["stl1"].isel(longitude=0).T.values, {"units": "K"})
    nc("grid_wrong_dimensions.nc", ds)
    entry("grid_wrong_dimensions.nc", "project", GRID, "-", "stl1",
          "NetCDF with wrong dimensions: soil temperature on (time, latitude)",
          args="--mode rf")

    ds = cube().isel(time=0, drop=True)
    nc("grid_no_time.nc", ds)
    entry("grid_no_time.nc", "project", GRID, "-", "time", "NetCDF without a time dimension",
          args="--mode rf")

    ds = cube()
    ds["stl1"].attrs = {}
    nc("grid_no_units.nc", ds)
    entry("grid_no_units.nc", "project", GRID, "-", "stl1", "missing units attribute",
          args="--mode rf")

    ds = cube()
    ds["stl1"].attrs = {"units": "degC"}
    nc("grid_kelvin_labelled_celsius.nc", ds)
    entry("grid_kelvin_labelled_celsius.nc", "project", GRID, "-", "stl1",
          "Kelvin values under a degC units attribute", args="--mode rf")

    ds = cube().assign_coords(time=pd.date_range("2020-07-01", periods=4, freq="h"))
    nc("grid_hourly.nc", ds)
    entry("grid_hourly.nc", "project", GRID, "-", "time", "hourly, not daily, time steps",
          args="--mode rf")

    ds = xr.concat([cube(), cube()], dim="number")
    nc("grid_ensemble_dimension.nc", ds)
    entry("grid_ensemble_dimension.nc", "project", GRID, "-", "number",
          "an extra ensemble dimension (ERA5 'number')", args="--mode rf")

    write("grid_not_netcdf.nc", "lat,lon,time,stl1\n32.25,100.25,2020-07-01,285\n")
    entry("grid_not_netcdf.nc", "project", GRID, "-", "-", "a CSV file named .nc",
          args="--mode rf")

    def refused(name, ds, column, why):
        nc(name, ds)
        entry(name, "project", GRID, "-", column, why, args="--mode rf")

    # Missing values: per cell-day, never a silent zero.
    ds = cube()
    ds["stl1"][1, 2, 3] = np.nan
    nc("grid_one_nan_day.nc", ds)
    handled("grid_one_nan_day.nc", "project", GRID,
            "one missing day in one land cell: that cell-day is skipped and counted, the cell "
            "and the regional total stay", args=GRID_RUN)

    ds = cube()
    ds["stl1"][:, :, 2] = np.nan
    nc("grid_nan_time_step.nc", ds)
    handled("grid_nan_time_step.nc", "project", GRID,
            "one missing day on every cell (a whole time step): skipped and counted, the "
            "regional total is not 0", args=GRID_RUN)

    ds = cube()
    ds["stl1"][0, 1, :] = np.nan
    nc("grid_all_nan_land_cell.nc", ds)
    handled("grid_all_nan_land_cell.nc", "project", GRID,
            "a land cell without soil temperature on any day: left out of the totals and "
            "reported", args=GRID_RUN)

    ds = cube()
    ds["stl1"][0, 0, 1] = -9999.0
    ds["stl1"].encoding["_FillValue"] = -9999.0
    nc("grid_declared_fill_value.nc", ds)
    handled("grid_declared_fill_value.nc", "project", GRID,
            "-9999 declared as _FillValue: decoded as missing and skipped per cell-day",
            args=GRID_RUN)

    nc("grid_longitude_0_360.nc", cube(lon=[250.25, 250.75, 251.25]))
    handled("grid_longitude_0_360.nc", "project", GRID,
            "longitudes written 0…360 (250.25 °E): normalised to −180…180", args=GRID_RUN)

    ds = cube()
    ds["stl1"][:] = np.nan
    refused("grid_all_nan_soil_temp.nc", ds, "stl1",
            "all-missing column: soil temperature missing on every cell and day")

    ds = cube()
    ds["stl1"][0, 0, :] = np.nan
    ds["wetland_fraction"][:] = 0.0
    ds["wetland_fraction"][0, 0] = 0.3
    nc("grid_land_without_soil_temp.nc", ds)
    entry("grid_land_without_soil_temp.nc", "project", LAND, "-", "stl1",
          "the only land cell has no soil temperature: the total would be an empty 0",
          args="--mode rf")

    ds = cube()
    ds["wetland_fraction"][:] = 0.0
    nc("grid_no_land.nc", ds)
    entry("grid_no_land.nc", "project", LAND, "-", "wetland_fraction",
          "no cell has a positive ecosystem fraction: the total would be a silent 0",
          args="--mode rf")

    ds = cube()
    ds["stl1"][0, 1, 2] = -9999.0
    refused("grid_fill_9999_soil_temp_undeclared.nc", ds, "stl1",
            "-9999 missing-value fill in soil temperature without a _FillValue attribute")

    ds = cube()
    ds["swvl1"][1, 0, 1] = -9999.0
    refused("grid_fill_9999_swc_undeclared.nc", ds, "swvl1",
            "-9999 missing-value fill in soil water without a _FillValue attribute (no lower "
            "bound was checked)")

    refused("grid_latitude_out_of_range.nc", cube(lat=[99.0, 108.0]), "lat",
            "absurd magnitude: latitude 99–108°")
    refused("grid_longitude_out_of_range.nc", cube(lon=[400.25, 400.75, 401.25]), "lon",
            "absurd magnitude: longitude 400°")
    refused("grid_longitude_same_meridian.nc", cube(lon=[0.0, 180.0, 360.0]), "lon",
            "longitudes 0 and 360: the same meridian twice")
    refused("grid_latitude_not_monotonic.nc", cube(lat=[32.25, 32.75, 32.5]), "lat",
            "latitudes out of order (cell areas would be wrong)")

    ds = cube()
    ds["cell_area"] = (("latitude", "longitude"), np.full((2, 3), 2.5e9), {"units": "m2"})
    ds["cell_area"][0, 1] = -2.5e9
    refused("grid_negative_cell_area.nc", ds, "cell_area", "negative cell_area")

    ds = cube()
    ds["cell_area"] = (("latitude", "longitude"), np.full((2, 3), 2.5e3), {"units": "km2"})
    ds["cell_area"][1, 1] = np.nan
    refused("grid_cell_area_missing_on_land.nc", ds, "cell_area",
            "cell_area missing on a cell where wetland grows")

    ds = cube()
    ds["wetland_fraction"][:] = 0.7
    ds["grassland_fraction"] = (("latitude", "longitude"), np.full((2, 3), 0.6), {"units": "1"})
    refused("grid_fraction_sum_above_one.nc", ds, "wetland_fraction",
            "ecosystem fractions of a cell add up to 1.3")

    ds = cube()
    ds["wetland_fraction"][1, 2] = -0.1
    refused("grid_fraction_negative.nc", ds, "wetland_fraction", "a negative ecosystem fraction")

    ds = cube()
    ds["stl1"] = ((ds["stl1"] - 273.15) * 1.8 + 32.0).assign_attrs(units="degC")
    refused("grid_fahrenheit_labelled_celsius.nc", ds, "stl1",
            "Fahrenheit values (53–58 °F) under a degC units attribute")

    refused("grid_zero_time_steps.nc", cube().isel(time=slice(0, 0)), "time",
            "a NetCDF with zero time steps")

    ds = cube().assign_coords(time=np.arange(4))
    ds["time"].attrs = {"units": "days since 1600-07-01", "calendar": "proleptic_gregorian"}
    refused("grid_time_before_1677.nc", ds, "time", "a date before 1677 on the time axis")


# ---------------------------------------------------------------- budget area shares
def build_budget() -> None:
    write("area_shares_sum_above_one.csv",
          "IGBP_group,share\nCRO,0.3\nDF,0.1\nEF,0.3\nMF,0.1\nGRA,0.4\nSH,0.1\n")
    entry("area_shares_sum_above_one.csv", "budget", SHARES, "-", "share",
          "land-area shares add up to 1.3")

    write("area_shares_unknown_group.csv", "IGBP_group,share\nCRO,0.15\nTUNDRA,0.1\nEF,0.18\n")
    entry("area_shares_unknown_group.csv", "budget", SHARES, 3, "IGBP_group",
          "unknown ecosystem group code")

    write("area_shares_fill_9999.csv", "IGBP_group,share\nCRO,0.153\nEF,-9999\nGRA,0.296\n")
    entry("area_shares_fill_9999.csv", "budget", SHARES, 3, "share", "-9999 missing-value fill in a share")

    write("area_shares_percent.csv", "IGBP_group,share\nCRO,15.3\nEF,18.3\n")
    entry("area_shares_percent.csv", "budget", SHARES, 2, "share",
          "absurd magnitude: shares in percent, not fractions")


def main() -> None:
    for old in HERE.iterdir():
        if old.name not in ("make_corpus.py", "__pycache__"):
            if old.is_dir():
                for f in old.iterdir():
                    f.unlink()
                old.rmdir()
            else:
                old.unlink()
    build_chamber()
    build_fluxnet()
    build_cosore()
    build_warming()
    build_grid()
    build_budget()
    with open(HERE / "MANIFEST.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        w.writeheader()
        w.writerows(ROWS)
    print(f"{len(ROWS)} entries")


if __name__ == "__main__":
    main()
