"""Readers of the global budget tables (data/jian2022.py) and of the covariate grid (data/rc_grid.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data import jian2022 as jd
from data import rc_grid
from data.constants import EARTH_RADIUS_M
from data.errors import DataError
from data.grid import band_areas
from data.registry import dataset_folder
from tests.shared_data import require_data


@pytest.fixture(scope="module")
def folder() -> Path:
    return require_data(dataset_folder, "jian2022")


@pytest.fixture(scope="module")
def inputs(folder):
    return jd.load_budget_inputs(folder)


# ---------------------------------------------------------------- real files
def test_real_tables_have_the_published_record_counts(inputs, folder):
    # counts named in GlobalC (Topdown_GlobalRs.Rmd / functions.R): 251 NPP estimates of Ito (2011),
    # 27 remote-sensing GPP estimates; the 35 Froot rows and 123 Ra:GPP rows of the literature tables
    assert len(inputs.npp) == 251
    assert (inputs.gpp["method_group"] == "remote_sensing").sum() == 27
    assert (len(inputs.froot), len(inputs.ragpp), len(inputs.rs)) == (35, 123, 23)
    assert inputs.rc["value"].between(0.01, 0.99, inclusive="neither").all()
    # with SRDB-derived records, Froot by forest type is DF n=13, EF n=91, MF n=7 (Fig. S3 labels
    # of the GlobalC version that added them)
    extended = jd.load_budget_inputs(folder, ratio_source="literature+srdb")
    counts = extended.froot["group"].value_counts()
    assert (counts["deciduous_forest"], counts["evergreen_forest"], counts["mixed_forest"]) == (13, 91, 7)
    assert len(extended.ragpp) == 246


def test_froot_is_converted_from_percent_and_filled_from_fshoot(folder):
    lit = jd.read_froot(folder / jd.FILES["froot"])
    assert lit["value"].max() < 1.0
    # first row of FlFsFrSummary.csv gives only Fshoot = 50 → Froot = 50 % → 0.5
    assert lit["value"].iloc[0] == pytest.approx(0.5)
    # second row: Froot = 12 %
    assert lit["value"].iloc[1] == pytest.approx(0.12)


def test_line_numbers_skip_comments_and_blank_lines(folder):
    rs = jd.read_global_rs(folder / jd.FILES["rs"])
    text = (folder / jd.FILES["rs"]).read_text(encoding="latin1").splitlines()
    # line numbers point at the line holding the value
    for _, row in rs.sample(5, random_state=1).iterrows():
        assert f",{row['value']:g}," in text[int(row["line"]) - 1].replace(".0,", ",")
    npp = jd.read_npp(folder / jd.FILES["npp"])
    npp_text = (folder / jd.FILES["npp"]).read_text(encoding="latin1").splitlines()
    for _, row in npp.iloc[[0, 1, 50, -1]].iterrows():
        assert float(npp_text[int(row["line"]) - 1].strip()) == pytest.approx(row["value"])


def test_srdb_keeps_the_word_none_in_manipulation(folder):
    srdb = jd.read_srdb(folder / jd.FILES["srdb"])
    assert (srdb["Manipulation"] == "None").sum() > 3000
    sites, dropped = rc_grid.srdb_rs_sites(srdb)
    assert len(sites) > 3000 and dropped["manipulated"] > 1000
    assert sites["rs_annual"].between(0, rc_grid.MAX_RS_ANNUAL, inclusive="right").all()


# ---------------------------------------------------------------- refusals
def _copy_with(folder: Path, tmp_path: Path, name: str, edit) -> Path:
    target = tmp_path / "jian"
    if not target.exists():
        shutil.copytree(folder, target)
    path = target / name
    lines = path.read_text(encoding="latin1").splitlines(keepends=True)
    path.write_text("".join(edit(lines)), encoding="latin1")
    return target


def _global_rs_refusal(folder, tmp_path, line: int, old: str, new: str) -> DataError:
    """The error of reading GlobalRs.csv with ``old`` replaced by ``new`` on file line ``line``."""
    def edit(lines):
        assert old in lines[line - 1]
        lines[line - 1] = lines[line - 1].replace(old, new)
        return lines

    target = _copy_with(folder, tmp_path, "GlobalRs.csv", edit)
    with pytest.raises(DataError) as err:
        jd.read_global_rs(target / "GlobalRs.csv")
    return err.value


def test_non_numeric_value_names_file_line_and_column(folder, tmp_path):
    # line 8: Bond-Lamberty (2010), 98 Pg C yr-1
    err = _global_rs_refusal(folder, tmp_path, 8, ",98,", ",ninety-eight,")
    assert (err.row, err.column) == (8, "Rs")
    assert "not a number" in str(err)


def test_missing_column_is_refused_at_the_header_line(folder, tmp_path):
    err = _global_rs_refusal(folder, tmp_path, 3, ",SD,", ",StdDev,")
    assert (err.row, err.column) == (3, "SD")


def test_froot_given_as_fractions_is_refused(tmp_path):
    path = tmp_path / "FlFsFrSummary.csv"
    path.write_text("# header comment\nFl,Fw,Fshoot,Froot,IGBP,Ecosystem\n"
                    ",,,0.3,ENF,Forest\n,,,0.4,EBF,Forest\n,,,0.5,DBF,Forest\n")
    with pytest.raises(DataError, match="percent"):
        jd.read_froot(path)


def test_flux_in_wrong_unit_and_negative_sd_are_refused(tmp_path):
    path = tmp_path / "GlobalRs.csv"
    path.write_text("Pub_year,Rs,SD\n2001,91,4\n2002,91000,\n")
    with pytest.raises(DataError) as err:
        jd.read_global_rs(path)
    assert err.value.row == 3 and "Pg C" in str(err.value)
    path.write_text("Pub_year,Rs,SD\n2001,91,-4\n")
    with pytest.raises(DataError, match="negative"):
        jd.read_global_rs(path)


def test_area_shares_must_be_fractions_that_sum_to_at_most_one(tmp_path):
    with pytest.raises(DataError, match="sum"):
        jd.check_area_shares({"grassland": 0.7, "evergreen_forest": 0.5})
    with pytest.raises(DataError, match="unknown"):
        jd.check_area_shares({"tundra": 0.1})
    path = tmp_path / "shares.csv"
    path.write_text("IGBP_group,share\nGRA,0.3\nEF,0.2\n")
    assert jd.read_area_shares(path) == {"grassland": 0.3, "evergreen_forest": 0.2}


@pytest.mark.parametrize("text, row, column", [
    ("Pub_year,Rs,SD\n2001,91,4\n-9999,91,4\n", 3, "Pub_year"),
    ("Pub_year,Rs,SD\n2001,91,4\n2002,91,-999\n", 3, "SD"),
    ("Pub_year,Rs,SD\n2001,91,4\n2002,91,-9999.0\n", 3, "SD"),
])
def test_missing_value_codes_are_refused(tmp_path, text, row, column):
    path = tmp_path / "GlobalRs.csv"
    path.write_text(text)
    with pytest.raises(DataError, match="missing-value code") as err:
        jd.read_global_rs(path)
    assert (err.value.row, err.value.column) == (row, column)


def test_truncated_gzip_and_a_folder_are_one_line_errors(tmp_path):
    import gzip

    path = tmp_path / "srdb-data-v5.csv.gz"
    full = gzip.compress(("Study_number,RC_annual\n" + "1,0.5\n" * 2000).encode())
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError) as err:
        jd.read_table(path, ("Study_number",))
    assert err.value.file == str(path)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DataError):
        jd.read_table(folder, ("Rs",))


# ---------------------------------------------------------------- property test of the reader
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(1981, 2020), st.floats(20, 200, allow_nan=False),
                               st.one_of(st.none(), st.floats(0.1, 30, allow_nan=False)),
                               st.sampled_from(["", "# a comment", "  "])), min_size=1, max_size=15),
       preamble=st.integers(0, 3))
def test_reader_round_trips_values_and_line_numbers(tmp_path, rows, preamble):
    lines = [f"# description line {k}" for k in range(preamble)] + ["Pub_year,Rs,SD"]
    expected = []
    for year, rs, sd, filler in rows:
        if filler:
            lines.append(filler)
        lines.append(f"{year},{rs!r},{'' if sd is None else repr(sd)}")
        expected.append((len(lines), rs, sd))
    path = tmp_path / "GlobalRs.csv"
    path.write_text("\n".join(lines) + "\n")
    got = jd.read_global_rs(path)
    assert got["line"].tolist() == [e[0] for e in expected]
    np.testing.assert_allclose(got["value"], [e[1] for e in expected])
    np.testing.assert_allclose(got["sd"], [np.nan if e[2] is None else e[2] for e in expected])


# ---------------------------------------------------------------- grid
def test_cell_areas_sum_to_the_sphere():
    lat = np.arange(-89.75, 90, 0.5)
    total = band_areas(lat, 0.5, 0.5).sum() * 720
    assert total == pytest.approx(4 * np.pi * EARTH_RADIUS_M**2, rel=1e-12)


def test_real_grid_is_lat_lon_ascending_with_published_land_cells():
    ds = require_data(rc_grid.read_rc_grid)
    assert ds["MAT"].dims == ("lat", "lon")
    assert np.all(np.diff(ds["lat"].values) > 0)
    cells = rc_grid.land_cells(ds)
    assert len(cells) == 47694
    # Amazon cell is warm and wet, Siberian cell cold
    assert float(ds["MAT"].sel(lat=-3.25, lon=-60.25)) > 20
    assert float(ds["MAT"].sel(lat=62.25, lon=129.75)) < 0


def test_coastal_site_takes_the_nearest_land_cell():
    lat = np.array([-0.75, -0.25, 0.25, 0.75])
    lon = np.array([-0.75, -0.25, 0.25, 0.75])
    mat = np.full((4, 4), np.nan)
    mat[1, 2] = 25.0  # one land cell at (-0.25, 0.25)
    ds = xr.Dataset({"MAT": (("lat", "lon"), mat)}, coords={"lat": lat, "lon": lon})
    sites = pd.DataFrame({"latitude": [-0.3, 0.3, 0.8], "longitude": [-0.2, 0.3, -0.8],
                          "rs_annual": [1.0, 2.0, 3.0]})
    out, dropped = rc_grid.attach_covariates(sites, ds, ("MAT",))
    assert dropped == 1  # the third site has no land cell within one cell
    assert out["MAT"].tolist() == [25.0, 25.0]
