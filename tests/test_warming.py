"""Warming-table readers (data/warming.py) and the warming simulator (data/synthetic_warming.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.errors import DataError
from data.registry import dataset_folder
from data.synthetic_warming import WarmingTruth, simulate_warming
from data.table import FILL_CODES, WARMING_COLUMNS
from data.warming import (PRECIP_FILE, PRECIP_MODERATOR, flux_unit_factor,
                          load_warming, read_precip_manipulation, read_warming_table)

CURTIS = Path(__file__).parent / "data" / "curtis1998.csv"
# The molar masses written out (IUPAC atomic weights), so the conversions are checked independently.
CH4_G_PER_MOL, C_G_PER_MOL = 16.04246, 12.0107


def precip_path() -> Path:
    return dataset_folder("precip-manipulation") / PRECIP_FILE


# ---------------------------------------------------------------- warming tables
label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_ ", min_size=1, max_size=8) \
    .filter(lambda s: s.strip() != "")
positive = st.floats(1e-3, 1e3, allow_nan=False)
# A mean is any non-zero number but a missing-value code (those are refused, see below).
mean = st.floats(-1e3, 1e3).filter(lambda x: abs(x) > 1e-6 and x not in FILL_CODES)
row = st.fixed_dictionaries({
    "study": label, "site": label, "ecosystem": st.sampled_from(["alpine_meadow", "steppe", ""]),
    "season": st.sampled_from(["growing", "non-growing", ""]),
    "warming_c": st.one_of(st.none(), st.floats(-5, 15).map(lambda x: round(x, 3))),
    "control_mean": mean,
    "control_sd": positive, "control_n": st.integers(2, 50),
    "treatment_mean": mean,
    "treatment_sd": positive, "treatment_n": st.integers(2, 50),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row, min_size=1, max_size=12))
def test_round_trip_keeps_every_value(tmp_path, rows):
    path = tmp_path / "w.csv"
    table = pd.DataFrame(rows, columns=list(WARMING_COLUMNS))
    table.to_csv(path, index=False)
    got = read_warming_table(path).table
    assert len(got) == len(table)
    assert list(got["source_row"]) == list(range(2, len(table) + 2))
    for col in ("control_mean", "control_sd", "treatment_mean", "treatment_sd"):
        np.testing.assert_allclose(got[col], table[col], rtol=1e-12)
    assert list(got["control_n"]) == list(table["control_n"])
    np.testing.assert_allclose(got["warming_c"], pd.to_numeric(table["warming_c"]), equal_nan=True)
    assert list(got["study"]) == [s.strip() for s in table["study"]]
    assert got["season"].isna().tolist() == (table["season"] == "").tolist()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row, min_size=1, max_size=10), st.data(),
       st.sampled_from([("control_sd", -1.0), ("treatment_sd", 0.0), ("control_n", 1),
                        ("treatment_n", 2.5), ("warming_c", 290.0), ("warming_c", 45.0),
                        ("control_mean", "n/a"), ("study", " ")]))
def test_a_bad_value_is_reported_at_its_row(tmp_path, rows, data, bad):
    column, value = bad
    i = data.draw(st.integers(0, len(rows) - 1))
    table = pd.DataFrame(rows, columns=list(WARMING_COLUMNS)).astype(object)
    table.loc[i, column] = value
    path = tmp_path / "w.csv"
    table.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        read_warming_table(path)
    assert (err.value.row, err.value.column) == (i + 2, column)
    assert err.value.file == str(path)


def test_missing_column_and_unreadable_file(tmp_path):
    path = tmp_path / "w.csv"
    pd.DataFrame({"study": ["a"], "site": ["b"]}).to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        read_warming_table(path)
    assert err.value.row == 1 and err.value.column == "ecosystem"
    with pytest.raises(DataError, match="file not found"):
        read_warming_table(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="no such file or warming dataset"):
        load_warming("fluxnet-ch4-typo")


def test_curtis1998_export_reads_as_a_warming_table():
    wt = load_warming(CURTIS)
    t = wt.table
    assert len(t) == 102 and t["study"].nunique() == 29
    assert set(t["method"]) == {"GC", "GH", "OTC"} and t["season"].isna().all()


# ---------------------------------------------------------------- precipitation-manipulation table
def test_flux_units_are_consistent():
    f = flux_unit_factor
    assert f("nmol m-2 s-1") == pytest.approx(1.0)
    assert f("mg CH4 m-2 h-1") == pytest.approx(24 * f("mg CH4 m-2 d-1"))
    assert f("mg CH4 m2 d") == f("mg CH4 m⁻² d⁻¹") == f("mg CH4 m^-2 d^-1")
    assert f("ug C m2 h") == pytest.approx(1e-3 * f("mg C m-2 h-1"))
    assert f("mg C m-2 d-1") / f("mg CH4 m-2 d-1") == pytest.approx(CH4_G_PER_MOL / C_G_PER_MOL)
    # 1 kg ha⁻¹ = 0.1 g m⁻²; a per-hectare amount without a time is per year.
    assert f("kg CH4 ha") == pytest.approx(0.1 * f("g CH4 m-2 yr-1"))
    assert f("kg CH4 ha") == f("kg CH4 ha-1 yr-1")
    # 1 mol s⁻¹ m⁻² = 1e9 nmol: 16.04246 g CH4 m⁻² s⁻¹ is 1e9 nmol m⁻² s⁻¹.
    assert f("g CH4 m-2 s-1") * CH4_G_PER_MOL == pytest.approx(1e9)
    for bad in ("mg m2 d", "mg CH4 m2", "furlongs", "mg CH4 m2 fortnight"):
        assert f(bad) is None


def test_precipitation_table_is_adapted():
    raw = pd.read_csv(precip_path())
    wt = read_precip_manipulation(precip_path())
    t = wt.table
    assert wt.default_moderator == PRECIP_MODERATOR and len(t) == len(raw) == 21
    assert set(t[PRECIP_MODERATOR]) == {"Growing season", "Annual"}
    # Conversion does not change any ratio; SE became SD = SE·√n where SD was blank.
    np.testing.assert_allclose(t["treatment_mean"] / t["control_mean"],
                               raw["CH4_manip"] / raw["CH4_control"], rtol=1e-12)
    sd = raw["SD_CH4_control"].fillna(raw["SE_CH4_control"] * np.sqrt(raw["N_control"]))
    np.testing.assert_allclose(t["control_sd"] / t["control_mean"].abs(),
                               sd / raw["CH4_control"].abs(), rtol=1e-12)
    # Study 1 has upland and floodplain plots at one location: two sites.
    assert t.loc[t["study"] == "1", "site"].nunique() == 2
    assert t["warming_c"].isna().all() and t["season"].isna().all()
    assert list(t["source_row"]) == list(range(2, 23))


def _edited_precip(tmp_path, row, column, value) -> Path:
    raw = pd.read_csv(precip_path(), dtype=str, keep_default_na=False)
    raw.loc[row, column] = value
    path = tmp_path / "edited.csv"
    raw.to_csv(path, index=False)
    return path


def test_precipitation_table_refuses_unknown_unit_and_missing_spread(tmp_path):
    path = _edited_precip(tmp_path, 4, "Unit", "Tg yr")
    with pytest.raises(DataError) as err:
        load_warming(path)  # recognised as the precipitation layout by its columns
    assert (err.value.row, err.value.column) == (6, "Unit")
    raw = pd.read_csv(precip_path(), dtype=str, keep_default_na=False)
    raw.loc[0, "SE_CH4_control"] = ""
    raw.to_csv(tmp_path / "nospread.csv", index=False)
    with pytest.raises(DataError) as err:
        read_precip_manipulation(tmp_path / "nospread.csv")
    assert (err.value.row, err.value.column) == (2, "SD_CH4_control")
    path = _edited_precip(tmp_path, 2, "N_manip", "1")
    with pytest.raises(DataError) as err:
        read_precip_manipulation(path)
    assert (err.value.row, err.value.column) == (4, "N_manip")


def test_load_warming_by_name():
    assert len(load_warming("precip-manipulation").table) == 21
    assert load_warming("synthetic-warming").synthetic


# ---------------------------------------------------------------- simulator
def test_simulator_is_reproducible_and_shaped_like_the_study():
    a, b = simulate_warming(seed=7), simulate_warming(seed=7)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table.equals(simulate_warming(seed=8).table)
    t = a.table
    assert t["study"].nunique() == 30 and set(t["season"]) == {"growing", "non-growing"}
    warm = t.groupby("season")["warming_c"].mean()
    assert 2.3 < warm["growing"] < 3.5 and 3.6 < warm["non-growing"] < 5.0
    uptake = t["ecosystem"] == "alpine_steppe"
    assert uptake.any() and (t.loc[uptake, "control_mean"] < 0).all()
    assert (np.sign(t["control_mean"]) == np.sign(t["treatment_mean"])).all()
    assert a.truth["RR"] == {"growing": 1.3, "non-growing": 1.8}


def test_simulated_ratios_follow_the_truth():
    truth = WarmingTruth(tau_study=0.0, tau_site=0.0, cv=0.05, n_range=(30, 30))
    t = simulate_warming(n_studies=40, seed=3, truth=truth).table
    ln_rr = np.log(t["treatment_mean"] / t["control_mean"]).groupby(t["season"]).mean()
    for season, value in truth.ln_rr().items():
        assert ln_rr[season] == pytest.approx(value, abs=0.01)


# ---------------------------------------------------------------- missing-value codes, NA, unreadable files
BASE_ROWS = ["Wang2019,Haibei,grassland,growing,2.0,-1.20,0.30,4,-1.45,0.35,4",
             "Li2020,Hongyuan,wetland,growing,1.5,25.0,6.0,3,31.0,7.5,3"]
WM_HEADER = ",".join(WARMING_COLUMNS)


def _table(tmp_path, rows, name="w.csv"):
    path = tmp_path / name
    path.write_text("\n".join([WM_HEADER, *rows]) + "\n")
    return path


@pytest.mark.parametrize("control, treatment, column", [
    ("-9999", "-9999", "control_mean"), ("25.0", "-9999.0", "treatment_mean"),
    ("-999", "31.0", "control_mean"), ("-99999", "-99999", "control_mean")])
def test_missing_value_codes_in_means_are_refused(tmp_path, control, treatment, column):
    """Two −9999 means would be an experiment with RR = 1 and a near-zero variance."""
    row = f"Li2020,Hongyuan,wetland,growing,1.5,{control},6.0,3,{treatment},7.5,3"
    with pytest.raises(DataError, match="missing-value code") as err:
        load_warming(_table(tmp_path, [BASE_ROWS[0], row]))
    assert (err.value.row, err.value.column) == (3, column)


def test_missing_value_codes_in_the_precipitation_layout_are_refused(tmp_path):
    path = tmp_path / "precip.csv"
    path.write_text(
        " ,Ecosystem_type,Other_factor,Manipulation,Latitude,Longitude,Measurement Period,Unit,"
        "N_control,CH4_control,SD_CH4_control,SE_CH4_control,N_manip,CH4_manip,SD_CH4_manip,SE_CH4_manip\n"
        "1,Forest,Upland,Drought,64,148,Growing season,mg CH4 m2 d,3,-0.28,,0.1,3,-0.56,,0.2\n"
        "2,Grassland,,Drought,41,-105,Growing season,mg CH4 m2 d,4,-9999,,0.1,4,-9999,,0.1\n")
    with pytest.raises(DataError, match="missing-value code") as err:
        load_warming(path)
    assert (err.value.row, err.value.column) == (3, "CH4_control")


@pytest.mark.parametrize("token", ["NA", "n/a", "#N/A", "-", "null", ""])
def test_na_spellings_are_blank(tmp_path, token):
    rows = [BASE_ROWS[0], f"Li2020,Hongyuan,wetland,growing,{token},25.0,6.0,3,31.0,7.5,3"]
    table = load_warming(_table(tmp_path, rows)).table
    assert np.isnan(table["warming_c"].iloc[1])  # a blank warming is allowed
    rows = [BASE_ROWS[0], f"Li2020,Hongyuan,wetland,growing,1.5,{token},6.0,3,31.0,7.5,3"]
    with pytest.raises(DataError, match="missing") as err:  # a blank mean is not
        load_warming(_table(tmp_path, rows))
    assert (err.value.row, err.value.column) == (3, "control_mean")


def test_unreadable_inputs_are_one_line_errors(tmp_path, monkeypatch):
    import gzip
    import zipfile

    text = ("\n".join([WM_HEADER, *BASE_ROWS * 40]) + "\n").encode()
    truncated = tmp_path / "w.csv.gz"
    truncated.write_bytes(gzip.compress(text)[:200])
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    workbook = tmp_path / "book.csv"
    with zipfile.ZipFile(workbook, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes(text.decode().encode("utf-16"))
    for path, words in ((truncated, "gzip"), (folder, "folder"), (workbook, "Excel"),
                        (utf16, "UTF-8")):
        with pytest.raises(DataError, match=words) as err:
            load_warming(path)
        assert err.value.file == str(path) and "\n" not in str(err.value)
    good = _table(tmp_path, BASE_ROWS)
    gz = tmp_path / "good.csv.gz"
    gz.write_bytes(gzip.compress(good.read_bytes()))
    assert len(load_warming(gz).table) == 2  # a whole gzip file is read
    # unreadable (permissions: simulated, a superuser reads any file)
    original = Path.read_bytes

    def denied(self):
        if self == good:
            raise PermissionError(13, "Permission denied")
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DataError, match="Permission denied") as err:
        load_warming(good)
    assert err.value.file == str(good)
