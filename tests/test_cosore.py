"""COSORE reader on the real Hongyuan chambers, repeat merging, and its refusals."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from data.cosore import read_cosore
from data.errors import DataError
from data.registry import dataset_folder
from tests.shared_data import require_data

DESCRIPTION = """# DESCRIPTION.txt
# 	CSR_SITE_NAME: standard site name
# --------------------------------------
CSR_SITE_NAME: Testmoor
CSR_LONGITUDE: 24.2
CSR_LATITUDE: 61.8
CSR_ELEVATION: 150
CSR_IGBP: Wetland
"""
HEADER = "CSR_PORT,CSR_TIMESTAMP_BEGIN,CSR_TIMESTAMP_END,CSR_FLUX_CH4,CSR_SM10,CSR_T10"


@pytest.fixture(scope="module")
def folder():
    return require_data(dataset_folder, "hongyuan")


@pytest.fixture(scope="module")
def per_site(folder):
    return read_cosore(folder)


@pytest.fixture(scope="module")
def per_chamber(folder):
    return read_cosore(folder, per_chamber=True)


def dataset(tmp_path, rows: list[str], header=HEADER, description=DESCRIPTION):
    (tmp_path / "DESCRIPTION.txt").write_text(description)
    path = tmp_path / "d20990101_TEST_data.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def refused(folder, *, file, row, column, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        read_cosore(folder, **kw)
    err = info.value
    assert (err.file, err.row, err.column) == (str(file), row, column), str(err)
    return err


# ---------------------------------------------------------------- real Hongyuan record
def test_hongyuan_daily_site_means(per_site):
    t = per_site.table
    assert set(t["site"]) == {"Hongyuan"}
    assert set(t["ecosystem"]) == {"grassland"} and set(t["method"]) == {"autochamber"}
    assert (t["latitude"].iloc[0], t["longitude"].iloc[0]) == (32.80, 102.55)
    assert t["date"].min() == pd.Timestamp("2015-07-31") and t["date"].max() == pd.Timestamp("2016-07-31")
    assert len(t) == 367  # every local calendar day from 2015-07-31 to 2016-07-31
    # every reading appears three times (one per soil probe): 72 312 rows → 24 104 readings
    assert per_site.dropped == {"repeated reading merged": 48208}
    assert t["n_sub"].sum() == 24104
    # an alpine meadow mostly takes CH4 up, with some emission days
    assert (t["flux"] < 0).sum() == 310 and (t["flux"] > 0).sum() == 57
    assert t["flux"].abs().max() < 5
    assert t["swc"].between(0.05, 0.5).all()  # volumetric percent converted to m3 m-3
    assert t["soil_temp_c"].between(-10, 25).all()
    assert set(t["soil_temp_source"]) == {"CSR_T10"}


def test_hongyuan_matches_independent_daily_means(per_site, folder):
    raw = pd.read_csv(folder / "d20200407_WANG_data.csv.gz")
    readings = raw.groupby(["CSR_PORT", "CSR_TIMESTAMP_BEGIN"], as_index=False).agg(
        flux=("CSR_FLUX_CH4", "first"), t=("CSR_T10", "mean"), sm=("CSR_SM10", "mean"))
    day = pd.to_datetime(readings["CSR_TIMESTAMP_BEGIN"]).dt.strftime("%Y-%m-%d")
    daily = readings.groupby(day)[["flux", "t", "sm"]].mean()
    t = per_site.table
    np.testing.assert_allclose(t["flux"], daily["flux"])
    np.testing.assert_allclose(t["soil_temp_c"], daily["t"])
    np.testing.assert_allclose(t["swc"], daily["sm"] / 100)


def test_hongyuan_per_chamber(per_chamber, per_site):
    t = per_chamber.table
    assert sorted(t["site"].unique()) == ["Hongyuan-P1", "Hongyuan-P2", "Hongyuan-P3"]
    assert t.groupby("site").size().tolist() == [367, 367, 367]
    assert t["n_sub"].sum() == per_site.table["n_sub"].sum()
    emission = t[t["flux"] > 0].groupby("site").size()
    assert emission.tolist() == [80, 68, 108]
    assert (t["flux"] < 0).sum() == 1101 - 256


# ---------------------------------------------------------------- small datasets
def test_repeats_are_merged_by_averaging_probes(tmp_path):
    dataset(tmp_path, [
        "1,2020-06-01 10:00:00,2020-06-01 10:04:00,-0.5,20,10.0",
        "1,2020-06-01 10:00:00,2020-06-01 10:04:00,-0.5,30,11.0",
        "1,2020-06-01 10:00:00,2020-06-01 10:04:00,-0.5,40,12.0",
        "2,2020-06-01 11:00:00,2020-06-01 11:04:00,0.3,25,13.0",
        "2,2020-06-02 01:00:00,2020-06-02 01:04:00,0.1,25,5.0",
    ])
    obs = read_cosore(tmp_path)
    t = obs.table
    assert obs.dropped == {"repeated reading merged": 2}
    assert list(t["n_sub"]) == [2, 1]
    # day 1: readings −0.5 (probes 20/30/40 %, 10/11/12 °C) and 0.3 (25 %, 13 °C)
    assert t["flux"].iloc[0] == pytest.approx((-0.5 + 0.3) / 2)
    assert t["soil_temp_c"].iloc[0] == pytest.approx((11.0 + 13.0) / 2)
    assert t["swc"].iloc[0] == pytest.approx((0.30 + 0.25) / 2)
    assert set(t["site"]) == {"Testmoor"} and set(t["ecosystem"]) == {"wetland"}
    chambers = read_cosore(tmp_path, per_chamber=True).table
    assert list(zip(chambers["site"], chambers["n_sub"])) == [("Testmoor-P1", 1), ("Testmoor-P2", 1),
                                                             ("Testmoor-P2", 1)]


def test_fraction_soil_moisture_kept_and_water_table_sign(tmp_path):
    dataset(tmp_path, ["1,2020-06-01 10:00:00,,1.0,0.31,10,12"], header=HEADER + ",CSR_WTD")
    row = read_cosore(tmp_path).table.iloc[0]
    assert row["swc"] == pytest.approx(0.31)
    assert row["wtd_m"] == pytest.approx(-0.12)  # 12 cm below the surface


def test_missing_values_dropped_and_counted(tmp_path):
    dataset(tmp_path, [
        "1,2020-06-01 10:00:00,,NA,20,10",
        "1,2020-06-01 11:00:00,,0.2,20,",
        "1,2020-06-01 12:00:00,,0.4,20,10",
        "1,2020-06-01 13:00:00,,1500,20,10",
    ])
    obs = read_cosore(tmp_path)
    assert obs.dropped == {"flux missing": 1, "soil temperature missing": 1, "flux implausibly large": 1}
    assert obs.table["flux"].tolist() == [0.4]


def test_no_soil_temperature_skips_dataset(tmp_path):
    dataset(tmp_path, ["1,2020-06-01 10:00:00,,0.2"],
            header="CSR_PORT,CSR_TIMESTAMP_BEGIN,CSR_TIMESTAMP_END,CSR_FLUX_CH4")
    obs = read_cosore(tmp_path)
    assert obs.skipped_sites == {"Testmoor": "no soil temperature column"}
    assert len(obs.table) == 0


def test_gzip_data_table_and_file_path(tmp_path):
    (tmp_path / "DESCRIPTION.txt").write_text(DESCRIPTION)
    path = tmp_path / "d20990101_TEST_data.csv.gz"
    path.write_bytes(gzip.compress((HEADER + "\n1,2020-06-01 10:00:00,,0.2,20,10\n").encode()))
    assert len(read_cosore(path).table) == 1  # a data file stands for its folder


# ---------------------------------------------------------------- refusals
def test_conflicting_repeat(tmp_path):
    path = dataset(tmp_path, ["1,2020-06-01 10:00:00,,0.2,20,10", "1,2020-06-01 10:00:00,,0.3,21,10"])
    refused(tmp_path, file=path, row=3, column="CSR_FLUX_CH4")  # the differing repeat


def test_bad_timestamp(tmp_path):
    path = dataset(tmp_path, ["1,2020-06-01 10:00:00,,0.2,20,10", "1,06/01/2020 11:00,,0.2,20,10"])
    refused(tmp_path, file=path, row=3, column="CSR_TIMESTAMP_BEGIN")


def test_kelvin_soil_temperature(tmp_path):
    path = dataset(tmp_path, ["1,2020-06-01 10:00:00,,0.2,20,10", "1,2020-06-01 11:00:00,,0.2,20,283.2"])
    refused(tmp_path, file=path, row=3, column="CSR_T10")


def test_soil_moisture_over_100_percent(tmp_path):
    path = dataset(tmp_path, ["1,2020-06-01 10:00:00,,0.2,20,10", "1,2020-06-01 11:00:00,,0.2,120,10"])
    refused(tmp_path, file=path, row=3, column="CSR_SM10")


def test_non_numeric_flux_and_port(tmp_path):
    path = dataset(tmp_path, ["1,2020-06-01 10:00:00,,low,20,10"])
    refused(tmp_path, file=path, row=2, column="CSR_FLUX_CH4")
    path = dataset(tmp_path, ["P1,2020-06-01 10:00:00,,0.1,20,10"])
    refused(tmp_path, file=path, row=2, column="CSR_PORT")


def test_missing_flux_column(tmp_path):
    path = dataset(tmp_path, ["1,2020-06-01 10:00:00,,20,10"],
                   header="CSR_PORT,CSR_TIMESTAMP_BEGIN,CSR_TIMESTAMP_END,CSR_SM10,CSR_T10")
    refused(tmp_path, file=path, row=1, column="CSR_FLUX_CH4")


def test_description_problems(tmp_path):
    dataset(tmp_path, ["1,2020-06-01 10:00:00,,0.2,20,10"])
    desc = tmp_path / "DESCRIPTION.txt"
    desc.write_text(DESCRIPTION.replace("CSR_LATITUDE: 61.8", "CSR_LATITUDE: north"))
    refused(tmp_path, file=desc, row=6, column="CSR_LATITUDE")
    desc.write_text(DESCRIPTION.replace("CSR_IGBP: Wetland\n", ""))
    refused(tmp_path, file=desc, row="-", column="CSR_IGBP")
    desc.unlink()
    refused(tmp_path, file=desc, row="-", column="-")


def test_folder_without_data_table(tmp_path):
    (tmp_path / "DESCRIPTION.txt").write_text(DESCRIPTION)
    refused(tmp_path, file=tmp_path, row="-", column="-")


# ---------------------------------------------------------------- missing-value codes and dates
@pytest.mark.parametrize("cell, column", [(3, "CSR_FLUX_CH4"), (4, "CSR_SM10"), (5, "CSR_T10")])
@pytest.mark.parametrize("code", ["-999", "-9999", "-9999.0"])
def test_missing_value_codes_are_refused(tmp_path, cell, column, code):
    """COSORE writes NA: a −999 flux would otherwise be uptake, a −9999 one a dropped spike."""
    cells = "1,2020-06-01 11:00:00,,0.2,20,10".split(",")
    cells[cell] = code
    path = dataset(tmp_path, ["1,2020-06-01 10:00:00,,0.2,20,10", ",".join(cells)])
    err = refused(tmp_path, file=path, row=3, column=column)
    assert "missing-value code" in err.problem and "NA" in err.fix


@pytest.mark.parametrize("stamp", ["1600-06-01 10:00:00", "2300-06-01 10:00:00"])
def test_timestamps_outside_the_table_range_are_refused(tmp_path, stamp):
    path = dataset(tmp_path, ["1,2020-06-01 10:00:00,,0.2,20,10", f"1,{stamp},,0.2,20,10"])
    refused(tmp_path, file=path, row=3, column="CSR_TIMESTAMP_BEGIN")
