"""FLUXNET-CH4 reader on the real shared files, half-hourly aggregation, and its refusals."""

from __future__ import annotations

import gzip
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from data.errors import DataError
from data.fluxnet import read_fluxnet_ch4, read_site_metadata, site_files
from data.registry import dataset_folder
from tests.shared_data import require_data, require_file

REAL_SITES = ["CA-SCB", "DE-Hte", "DE-SfN", "DE-Zrk", "FI-Lom", "FI-Si2", "FI-Sii", "FR-LGt",
              "JP-BBY", "NZ-Kop", "RU-Ch2", "RU-Che", "SE-Deg", "US-BZB", "US-BZF", "US-EDN",
              "US-ICs"]


@pytest.fixture(scope="module")
def folder():
    return require_data(dataset_folder, "fluxnet-ch4")


@pytest.fixture(scope="module")
def real(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the real files need no soil-temperature fallback
        return read_fluxnet_ch4(folder)


def metadata_csv(tmp_path, rows=("XX-Tst,45.5,-3.25,WET",)):
    path = tmp_path / "meta.csv"
    path.write_text("ID,LAT,LON,IGBP\n" + "\n".join(rows) + "\n")
    return path


def dd_file(tmp_path, rows: list[str], header="TIMESTAMP,FCH4,FCH4_F,TS_1,TS_2,WTD,SWC_1,USTAR,LE,NEE,GPP_NT",
            site="XX-Tst"):
    path = tmp_path / f"FLX_{site}_FLUXNET-CH4_DD_2020-2020_1-1.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


# ---------------------------------------------------------------- real shared files
def test_real_sites_and_skip(real):
    assert sorted(real.table["site"].unique()) == REAL_SITES
    assert real.skipped_sites == {"BW-Gum": "no soil temperature column"}
    assert set(real.table["ecosystem"]) == {"wetland"}
    assert set(real.table["method"]) == {"eddy_covariance"}
    assert (real.table["n_sub"] == 1).all() and (real.table["days"] == 1).all()
    assert set(real.table["soil_temp_source"]) == {"TS_1"}


def test_real_site_days_match_an_independent_count(real, folder):
    """Site-days with measured FCH4 and TS_1, counted straight from the files with pandas."""
    expected = dropped_flux = dropped_t = 0
    for f in sorted(folder.glob("FLX_*_DD_*.csv.gz")):
        d = pd.read_csv(f, na_values=[-9999])
        if "TS_1" not in d:
            continue
        has_flux = d["FCH4"].notna()
        ok = has_flux & d["TS_1"].notna() & (d["FCH4"].abs() <= 1000)
        expected += int(ok.sum())
        dropped_flux += int((~has_flux).sum())
        dropped_t += int((has_flux & d["TS_1"].isna()).sum())
    assert len(real.table) == expected
    assert 13_000 < expected < 15_000  # "about 14,000" site-days
    assert real.dropped["flux missing"] == dropped_flux
    assert real.dropped["soil temperature missing"] == dropped_t
    assert real.dropped["flux implausibly large"] == 2  # DE-Hte 2014-12-20, DE-Zrk 2018-08-16


def test_real_units_and_coordinates(real):
    t = real.table
    by_site = t.groupby("site")
    # wetlands emit: every site's median daily flux is positive and of tens of nmol m-2 s-1
    assert (by_site["flux"].median() > 0).all()
    assert by_site["flux"].median().between(0.1, 300).all()
    assert t["soil_temp_c"].between(-30, 40).all()
    assert t["swc"].dropna().between(0, 1.5).all()  # percent converted to a fraction
    assert t["wtd_m"].dropna().abs().lt(2).all()
    first = by_site[["latitude", "longitude"]].first()
    assert first.loc["NZ-Kop", "latitude"] == pytest.approx(-37.388)  # southern hemisphere
    assert first.loc["US-ICs", "latitude"] == pytest.approx(68.606)
    assert (first["latitude"].drop("NZ-Kop") > 0).all()


def test_real_gap_filled_flux_gives_more_days(real, folder):
    gap_filled = read_fluxnet_ch4(folder / "FLX_NZ-Kop_FLUXNET-CH4_DD_2012-2015_1-1.csv.gz",
                                  flux_column="FCH4_F")
    measured = real.table[real.table["site"] == "NZ-Kop"]
    assert len(gap_filled.table) > len(measured)
    assert len(gap_filled.table) <= 1461  # 2012–2015 has 1461 days


def test_packaged_site_table_agrees_with_shared_metadata(folder):
    from importlib import resources
    with resources.as_file(resources.files("data") / "fluxnet_sites.csv") as p:
        packaged = read_site_metadata(p)
    shared = read_site_metadata(folder / "upch4_fluxnet-ch4_site_metadata.csv")
    in_folder = {s.upper() for s in site_files(folder)}
    assert set(packaged) == in_folder
    for site, info in packaged.items():
        assert (info.latitude, info.longitude, info.ecosystem) == \
            (shared[site].latitude, shared[site].longitude, shared[site].ecosystem)


def test_packaged_table_used_without_metadata_file(tmp_path, folder, monkeypatch):
    monkeypatch.setenv("TPFLUX_DATA", str(tmp_path / "no-data-here"))
    src = folder / "FLX_NZ-Kop_FLUXNET-CH4_DD_2012-2015_1-1.csv.gz"
    shutil.copy(src, tmp_path / src.name)
    t = read_fluxnet_ch4(tmp_path / src.name).table
    assert t["latitude"].iloc[0] == pytest.approx(-37.388)
    assert set(t["ecosystem"]) == {"wetland"}


def test_truncated_real_gzip(tmp_path, folder):
    src = (folder / "FLX_US-EDN_FLUXNET-CH4_DD_2018-2018_1-1.csv.gz").read_bytes()
    bad = tmp_path / "FLX_US-EDN_FLUXNET-CH4_DD_2018-2018_1-1.csv.gz"
    bad.write_bytes(src[: len(src) - 1000])
    with pytest.raises(DataError, match="truncated") as info:
        read_fluxnet_ch4(bad)
    assert info.value.file == str(bad)


# ---------------------------------------------------------------- daily files, small
def test_daily_drops_and_drivers(tmp_path):
    path = dd_file(tmp_path, [
        "20200101,10.5,10.5,2.0,1.0,-0.05,80,0.3,20,1.5,0.5",
        "20200102,-9999,11.0,2.5,1.0,-0.05,80,0.3,20,1.5,0.5",
        "20200103,12.0,12.0,-9999,1.0,-0.05,80,0.3,20,1.5,0.5",
        "20200104,0,0,3.0,1.0,-9999,-9999,-9999,-9999,-9999,-9999",
    ])
    obs = read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    t = obs.table
    assert obs.dropped == {"flux missing": 1, "soil temperature missing": 1}
    assert list(t["date"].dt.strftime("%Y%m%d")) == ["20200101", "20200104"]
    assert list(t["flux"]) == [10.5, 0.0]  # zero flux kept
    row = t.iloc[0]
    assert (row["wtd_m"], row["swc"], row["ustar"], row["le"], row["nee"], row["gpp"]) == \
        (-0.05, 0.8, 0.3, 20.0, 1.5, 0.5)
    assert t.iloc[1][["wtd_m", "swc", "ustar", "le", "nee", "gpp"]].isna().all()
    assert (row["latitude"], row["longitude"], row["ecosystem"]) == (45.5, -3.25, "wetland")


def test_gap_filled_drivers_preferred(tmp_path):
    path = dd_file(tmp_path, ["20200101,1,1,2,-0.2,-0.1,0.5,1.0"],
                   header="TIMESTAMP,FCH4,FCH4_F,TS_1,WTD,WTD_F,NEE,NEE_F")
    row = read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path)).table.iloc[0]
    assert (row["wtd_m"], row["nee"]) == (-0.1, 1.0)


def test_empty_shallow_soil_temperature_falls_back_with_warning(tmp_path):
    path = dd_file(tmp_path, ["20200101,1,1,-9999,4.0,,,,,,", "20200102,1,1,-9999,5.0,,,,,,"])
    with pytest.warns(UserWarning, match="TS_1 holds no data; soil temperature taken from TS_2"):
        t = read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path)).table
    assert list(t["soil_temp_c"]) == [4.0, 5.0]
    assert set(t["soil_temp_source"]) == {"TS_2"}


def test_site_without_soil_temperature_is_skipped(tmp_path):
    path = dd_file(tmp_path, ["20200101,1,1,0.1"], header="TIMESTAMP,FCH4,FCH4_F,USTAR")
    obs = read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    assert obs.skipped_sites == {"XX-Tst": "no soil temperature column"}
    assert len(obs.table) == 0


def test_user_metadata_wins_and_ids_match_without_case(tmp_path):
    path = dd_file(tmp_path, ["20200101,1,1,2,2,,,,,,"])
    meta = metadata_csv(tmp_path, rows=("xx-tst,-19.5,23.2,GRA",))
    t = read_fluxnet_ch4(path, metadata=meta).table
    assert (t["latitude"].iloc[0], t["ecosystem"].iloc[0]) == (-19.5, "grassland")


def test_site_without_coordinates(tmp_path):
    path = dd_file(tmp_path, ["20200101,1,1,2,2,,,,,,"], site="ZZ-Nop")
    with pytest.raises(DataError, match="pass metadata=") as info:
        read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    assert "ZZ-Nop" in str(info.value) and info.value.file == str(path)


def test_missing_flux_column_lists_alternatives(tmp_path):
    path = dd_file(tmp_path, ["20200101,1,1,2,2,,,,,,"])
    with pytest.raises(DataError, match="FCH4, FCH4_F") as info:
        read_fluxnet_ch4(path, flux_column="FCH4_F_ANNOPTLM", metadata=metadata_csv(tmp_path))
    assert (info.value.row, info.value.column) == (1, "FCH4_F_ANNOPTLM")


@pytest.mark.parametrize("bad_row, column, words", [
    ("2020013,1,1,2,2,,,,,,", "TIMESTAMP", "cannot be read"),
    ("20200101,1,1,2,2,,,,,,", "TIMESTAMP", "appears twice"),
    ("20200102,abc,1,2,2,,,,,,", "FCH4", "not a number"),
    ("20200102,1,1,291.4,2,,,,,,", "TS_1", "Kelvin"),
    ("20200102,1,1,2,2,,,,,,,", "-", "more fields"),
])
def test_refusals_name_row_and_column(tmp_path, bad_row, column, words):
    path = dd_file(tmp_path, ["20200101,1,1,2,2,,,,,,", bad_row])
    with pytest.raises(DataError, match=words) as info:
        read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    assert (info.value.file, info.value.row, info.value.column) == (str(path), 3, column)


def test_bad_file_names_and_folders(tmp_path):
    other = tmp_path / "fluxes.csv"
    other.write_text("TIMESTAMP,FCH4\n20200101,1\n")
    with pytest.raises(DataError, match="site from the file name"):
        read_fluxnet_ch4(other)
    with pytest.raises(DataError, match="no FLUXNET-CH4 site files"):
        read_fluxnet_ch4(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        read_fluxnet_ch4(tmp_path / "missing")
    with pytest.raises(DataError, match="min_coverage"):
        read_fluxnet_ch4(other, min_coverage=1.5)


# ---------------------------------------------------------------- half-hourly aggregation
def hh_frame(days=3, step_min=30, seed=1):
    """A half-hourly series with known gaps: day 1 full, day 2 with 20 of 48 measured, day 3 with 30."""
    rng = np.random.default_rng(seed)
    per_day = 1440 // step_min
    start = pd.date_range("2017-02-01", periods=days * per_day, freq=f"{step_min}min")
    flux = rng.normal(30, 5, len(start))
    day = np.repeat(np.arange(days), per_day)
    slot = np.tile(np.arange(per_day), days)
    keep = {0: per_day, 1: int(per_day * 20 / 48), 2: int(per_day * 30 / 48)}
    flux[(slot >= np.vectorize(keep.get)(day))] = np.nan
    return pd.DataFrame({
        "TIMESTAMP_START": start.strftime("%Y%m%d%H%M"),
        "TIMESTAMP_END": (start + pd.Timedelta(minutes=step_min)).strftime("%Y%m%d%H%M"),
        "FCH4": flux,
        "FCH4_F": np.where(np.isnan(flux), 25.0, flux),
        "TS_1": 4 + day + 0.01 * slot,
        "USTAR": 0.2,
    })


def write_hh(tmp_path, frame, name="FLX_XX-Tst_FLUXNET-CH4_HH_2017-2017_1-1.csv"):
    path = tmp_path / name
    frame.fillna(-9999).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("step_min", [30, 60])
def test_half_hourly_coverage_threshold(tmp_path, step_min):
    frame = hh_frame(step_min=step_min)
    path = write_hh(tmp_path, frame)
    obs = read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    t = obs.table
    # day 2 has 20/48 measured (< 0.5): dropped; days 1 and 3 (48/48, 30/48) kept
    assert list(t["date"].dt.day) == [1, 3]
    assert obs.dropped == {"coverage below threshold": 1}
    per_day = 1440 // step_min
    assert list(t["n_sub"]) == [per_day, per_day * 30 // 48]
    day3 = frame.iloc[2 * per_day: 3 * per_day]
    assert t["flux"].iloc[1] == pytest.approx(day3["FCH4"].mean())
    assert t["soil_temp_c"].iloc[1] == pytest.approx(day3["TS_1"].mean())
    # a stricter threshold drops day 3 too; a looser one keeps day 2
    assert len(read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path), min_coverage=0.7).table) == 1
    assert len(read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path), min_coverage=0.4).table) == 3


def test_half_hourly_gap_filled_uses_measured_coverage(tmp_path):
    path = write_hh(tmp_path, hh_frame())
    t = read_fluxnet_ch4(path, flux_column="FCH4_F", metadata=metadata_csv(tmp_path)).table
    assert list(t["date"].dt.day) == [1, 3]
    assert list(t["n_sub"]) == [48, 48]  # every gap-filled half-hour averaged


def test_half_hourly_on_real_burns_bog_series(tmp_path):
    """Real CA-DBB half-hours written in FLUXNET-CH4 HH layout; daily means checked by day strings."""
    folder = require_data(dataset_folder, "fluxnet-ch4")
    src = require_file(folder.parent / "ca_dbb_halfhourly" / "exampleWETBB_CA-DBB.csv.gz")
    raw = pd.read_csv(src)
    start = pd.to_datetime(raw["DateTime"], format="%Y-%m-%d %H:%M")
    frame = pd.DataFrame({
        "TIMESTAMP_START": start.dt.strftime("%Y%m%d%H%M"),
        "TIMESTAMP_END": (start + pd.Timedelta(minutes=30)).dt.strftime("%Y%m%d%H%M"),
        "FCH4": raw["FCH4"], "TS_1": raw["Tsoil5cm"], "TS_2": raw["Tsoil10cm"],
        "USTAR": raw["Ustar"], "LE": raw["LE"], "NEE": raw["NEE"],
    })
    path = write_hh(tmp_path, frame, "FLX_CA-DBB_FLUXNET-CH4_HH_2017-2017_1-1.csv")
    meta = metadata_csv(tmp_path, rows=("CA-DBB,49.129,-122.985,WET",))
    obs = read_fluxnet_ch4(path, metadata=meta)
    t = obs.table.set_index(obs.table["date"].dt.strftime("%Y-%m-%d"))

    day = start.dt.strftime("%Y-%m-%d")
    n = raw["FCH4"].notna().groupby(day).sum()
    kept = n[n >= 24].index
    assert list(t.index) == list(kept)
    assert obs.dropped.get("coverage below threshold", 0) + obs.dropped.get("flux missing", 0) == \
        len(n) - len(kept)
    np.testing.assert_allclose(t["flux"], raw["FCH4"].groupby(day).mean().loc[kept])
    np.testing.assert_array_equal(t["n_sub"], n.loc[kept].astype(int))
    np.testing.assert_allclose(t["soil_temp_c"], raw["Tsoil5cm"].groupby(day).mean().loc[kept])
    assert len(t) > 30


def test_daily_and_half_hourly_for_one_site(tmp_path):
    write_hh(tmp_path, hh_frame())
    dd_file(tmp_path, ["20170101,1,1,2,2,,,,,,"])
    meta = metadata_csv(tmp_path)
    with pytest.raises(DataError, match="resolution="):
        read_fluxnet_ch4(tmp_path, metadata=meta)
    assert len(read_fluxnet_ch4(tmp_path, metadata=meta, resolution="DD").table) == 1
    assert len(read_fluxnet_ch4(tmp_path, metadata=meta, resolution="HH").table) == 2


def test_ameriflux_base_half_hourly_without_methane(folder):
    src = require_file(folder.parent / "misc" / "AMF_US-CRT_BASE_HH_2-5.csv")
    # '#' header lines, TS_1_1_1 names are read; the file has no FCH4 value at all: an input error.
    with pytest.raises(DataError, match="column FCH4 is missing on every day") as err:
        read_fluxnet_ch4(src)
    assert err.value.column == "FCH4" and err.value.file == str(src)


def test_truncated_gzip_half_hourly(tmp_path):
    body = gzip.compress(hh_frame().fillna(-9999).to_csv(index=False).encode())
    path = tmp_path / "FLX_XX-Tst_FLUXNET-CH4_HH_2017-2017_1-1.csv.gz"
    path.write_bytes(body[:-40])
    with pytest.raises(DataError, match="truncated"):
        read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))


def test_all_missing_flux_is_named_before_missing_coordinates(tmp_path):
    """A site with no usable day needs no coordinates: the empty flux column is the error to show."""
    rows = [f"202006{d:02d},-9999,-9999,12.5,11.0,-9999,40,0.3,50,-1,2" for d in range(1, 6)]
    path = dd_file(tmp_path, rows, site="ZZ-Nop")
    with pytest.raises(DataError, match="column FCH4 is missing on every day") as err:
        read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    assert err.value.column == "FCH4" and "no coordinates" not in str(err.value)


# ---------------------------------------------------------------- missing-value codes and dates
@pytest.mark.parametrize("cell, column", [("-999", "FCH4"), ("-99999", "FCH4"), ("-999.9", "TS_1"),
                                          ("-999", "LE"), ("-9999.9", "WTD")])
def test_other_missing_value_codes_are_refused(tmp_path, cell, column):
    header = "TIMESTAMP,FCH4,FCH4_F,TS_1,TS_2,WTD,SWC_1,USTAR,LE,NEE,GPP_NT"
    cells = dict(zip(header.split(","), "20200102,1,1,2,2,0.1,50,0.3,20,1.5,0.5".split(",")))
    cells[column] = cell
    path = dd_file(tmp_path, ["20200101,1,1,2,2,0.1,50,0.3,20,1.5,0.5", ",".join(cells.values())])
    with pytest.raises(DataError, match="missing-value code") as info:
        read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    assert (info.value.row, info.value.column) == (3, column)
    assert "-9999" in info.value.fix


def test_the_9999_code_in_any_spelling_is_missing(tmp_path):
    rows = [f"2020010{k + 1},{v},1,2,2,,,,,," for k, v in
            enumerate(["1.5", "-9999", "-9999.0", "-9999.000", "-9.999e3", "NA", ""])]
    obs = read_fluxnet_ch4(dd_file(tmp_path, rows), metadata=metadata_csv(tmp_path))
    assert obs.dropped == {"flux missing": 6} and obs.table["flux"].tolist() == [1.5]


@pytest.mark.parametrize("stamp", ["16000101", "16770921", "22620412", "99991231"])
def test_daily_dates_outside_the_table_range_are_refused(tmp_path, stamp):
    path = dd_file(tmp_path, ["20200101,1,1,2,2,,,,,,", f"{stamp},1,1,2,2,,,,,,"])
    with pytest.raises(DataError, match="2262-04-11") as info:
        read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    assert (info.value.row, info.value.column) == (3, "TIMESTAMP")


def test_half_hourly_dates_outside_the_table_range_are_refused(tmp_path):
    path = tmp_path / "FLX_XX-Tst_FLUXNET-CH4_HH_2300-2300_1-1.csv"
    path.write_text("TIMESTAMP_START,TIMESTAMP_END,FCH4,TS_1\n"
                    "230001010000,230001010030,1,2\n230001010030,230001010100,1,2\n")
    with pytest.raises(DataError, match="2300-01-01") as info:
        read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    assert (info.value.row, info.value.column) == (2, "TIMESTAMP_START")


# ---------------------------------------------------------------- large files: read in pieces
def test_half_hourly_file_read_in_pieces_gives_the_same_days(tmp_path, monkeypatch):
    """Days cut by a piece boundary are summed from both sides: the daily table is the one the
    whole file gives (to rounding), and so are the counts of what was dropped."""
    import data.chamber as chamber
    from data.chamber import consume_csv

    frame = hh_frame()
    frame["SWC_1"] = np.where(np.arange(len(frame)) % 11 == 0, 160.0, 55.0)  # some implausible
    path = write_hh(tmp_path, frame)
    meta = metadata_csv(tmp_path)
    whole = read_fluxnet_ch4(path, metadata=meta)
    monkeypatch.setattr(chamber, "CHUNK_BYTES", 500)
    assert consume_csv(path, lambda pieces: len(list(pieces))) > 10
    pieces = read_fluxnet_ch4(path, metadata=meta)
    pd.testing.assert_frame_equal(pieces.table, whole.table, rtol=1e-12)
    assert pieces.dropped == whole.dropped and "swc implausible (set missing)" in whole.dropped


@pytest.mark.parametrize("column, cell, words", [
    ("FCH4", "-999", "missing-value code"), ("TS_1", "301.2", "Kelvin"),
    ("TIMESTAMP_START", "2017020", "cannot be read"), ("TIMESTAMP_START", "repeat", "appears twice"),
])
def test_an_error_in_a_late_piece_of_a_half_hourly_file_names_its_line(tmp_path, monkeypatch,
                                                                       column, cell, words):
    import data.chamber as chamber

    frame = hh_frame().fillna(-9999).astype(object)
    at = len(frame) - 5
    frame.loc[at, column] = frame.loc[2, column] if cell == "repeat" else cell
    path = tmp_path / "FLX_XX-Tst_FLUXNET-CH4_HH_2017-2017_1-1.csv"
    path.write_text("# a comment line above the header\n" + frame.to_csv(index=False))
    monkeypatch.setattr(chamber, "CHUNK_BYTES", 500)
    with pytest.raises(DataError, match=words) as info:
        read_fluxnet_ch4(path, metadata=metadata_csv(tmp_path))
    # file line: the comment, the header, then data row `at` (0-based)
    assert (info.value.file, info.value.row, info.value.column) == (str(path), at + 3, column)
