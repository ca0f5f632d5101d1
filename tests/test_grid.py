"""Gridded driver reader (ERA5-Land names, CF units) and the synthetic Tibetan grid."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from data.constants import EARTH_RADIUS_M
from data.errors import DataError
from data.grid import cell_areas, read_driver_grid, require_land_cover
from data.synthetic_grid import simulate_tibetan_grid, to_era5_land


def _small_cube(n_lat=3, n_lon=4, n_days=10, seed=1):
    return simulate_tibetan_grid(n_lat, n_lon, n_days=n_days, seed=seed)


def test_era5_land_names_and_units_are_converted(tmp_path):
    truth = _small_cube()
    path = tmp_path / "era5.nc"
    to_era5_land(truth).to_netcdf(path)
    cube = read_driver_grid(path)
    assert cube["soil_temp_c"].dims == ("lat", "lon", "time")
    np.testing.assert_allclose(cube["soil_temp_c"].values, truth["soil_temp_c"].values, atol=1e-9)
    np.testing.assert_allclose(cube["swc"].values, truth["swc"].values, atol=1e-12)
    np.testing.assert_allclose(cube["le"].values, truth["le"].values, atol=1e-9)  # sign flipped back
    np.testing.assert_allclose(cube["cell_area"].values, truth["cell_area"].values)
    assert cube["soil_temp_c"].attrs["units"] == "degC"
    assert cube["soil_temp_c"].attrs["source_variable"] == "stl1"
    assert cube["swc"].attrs["units"] == "m3 m-3"
    assert set(require_land_cover(cube)) == {"wetland", "grassland"}
    assert cube.attrs["synthetic"] == "true"
    assert cube["soil_temp_c"].chunks is not None  # read lazily, chunked


def test_percent_fractions_km2_areas_and_missing_area(tmp_path):
    truth = _small_cube()
    ds = truth.copy()
    ds["wetland_fraction"] = (truth["wetland_fraction"] * 100).assign_attrs(units="%")
    ds["swc"] = (truth["swc"] * 100).assign_attrs(units="%")
    ds["cell_area"] = (truth["cell_area"] / 1e6).assign_attrs(units="km2")
    ds.to_netcdf(tmp_path / "a.nc")
    cube = read_driver_grid(tmp_path / "a.nc")
    np.testing.assert_allclose(cube["wetland_fraction"].values, truth["wetland_fraction"].values)
    np.testing.assert_allclose(cube["swc"].values, truth["swc"].values)
    np.testing.assert_allclose(cube["cell_area"].values, truth["cell_area"].values)
    truth.drop_vars("cell_area").to_netcdf(tmp_path / "b.nc")
    computed = read_driver_grid(tmp_path / "b.nc")["cell_area"]
    np.testing.assert_allclose(computed.values, truth["cell_area"].values)


def test_global_cell_areas_sum_to_the_sphere():
    area = cell_areas(np.arange(-89.5, 90, 1.0), np.arange(0.5, 360, 1.0))
    assert float(area.sum()) == pytest.approx(4 * np.pi * EARTH_RADIUS_M ** 2, rel=1e-9)
    # a 1° cell at the equator is about 111.2 km × 111.2 km
    assert float(area.sel(lat=0.5, lon=0.5)) == pytest.approx((2 * np.pi * EARTH_RADIUS_M / 360) ** 2,
                                                              rel=1e-3)


@pytest.mark.parametrize("mutate, column, words", [
    (lambda ds: ds.assign(stl1=ds["stl1"].isel(longitude=0)), "stl1", "dimensions"),
    (lambda ds: ds.assign(stl1=ds["stl1"].assign_attrs(units="degF")), "stl1", "unknown units"),
    (lambda ds: ds.assign(swvl1=ds["swvl1"].assign_attrs(units="kg m-2")), "swvl1", "unknown units"),
    (lambda ds: ds.assign(stl1=ds["stl1"].assign_attrs(units="degC")), "stl1", "°C"),  # Kelvin values
    (lambda ds: ds.drop_vars("stl1"), "stl1", "no soil temperature"),
    (lambda ds: ds.assign(wetland_fraction=ds["wetland_fraction"] + 1.5), "wetland_fraction", "0–1"),
    (lambda ds: ds.isel(valid_time=[0, 1, 3]), "time", "one day"),
    (lambda ds: ds.rename(latitude="y"), "lat", "dimension"),
])
def test_bad_cubes_are_refused_naming_file_and_variable(tmp_path, mutate, column, words):
    path = tmp_path / "bad.nc"
    mutate(to_era5_land(_small_cube())).to_netcdf(path)
    with pytest.raises(DataError) as err:
        read_driver_grid(path)
    assert err.value.column == column
    assert err.value.file == str(path)
    assert words in err.value.problem
    assert err.value.fix


def test_missing_file_and_missing_fractions(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_driver_grid(tmp_path / "nope.nc")
    path = tmp_path / "nofrac.nc"
    _small_cube().drop_vars(["wetland_fraction", "grassland_fraction"]).to_netcdf(path)
    with pytest.raises(DataError, match="wetland_fraction"):
        require_land_cover(read_driver_grid(path), path)


@settings(max_examples=25, deadline=None)
@given(temps_c=st.lists(st.floats(-40, 40, allow_nan=False), min_size=6, max_size=6),
       kelvin=st.booleans(), swc=st.floats(0.0, 1.0), percent=st.booleans())
def test_reader_returns_celsius_and_volume_fraction_whatever_the_declared_units(
        temps_c, kelvin, swc, percent):
    t = np.array(temps_c).reshape(1, 2, 3)
    ds = xr.Dataset(
        {"stl1": (("latitude", "longitude", "valid_time"), t + 273.15 if kelvin else t,
                  {"units": "K" if kelvin else "degC"}),
         "swvl1": (("latitude", "longitude", "valid_time"), np.full((1, 2, 3), swc * (100 if percent else 1)),
                   {"units": "%" if percent else "m**3 m**-3"})},
        coords={"latitude": [33.0], "longitude": [100.0, 101.0],
                "valid_time": pd.date_range("2016-02-28", periods=3, freq="D")})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cube.nc"
        ds.to_netcdf(path)
        cube = read_driver_grid(path).load()
    np.testing.assert_allclose(cube["soil_temp_c"].values, t, atol=1e-9)
    np.testing.assert_allclose(cube["swc"].values, swc, atol=1e-12)


def test_synthetic_grid_is_labelled_deterministic_and_plausible():
    a = simulate_tibetan_grid(6, 8, seed=5)
    b = simulate_tibetan_grid(6, 8, seed=5)
    xr.testing.assert_identical(a, b)
    assert a.attrs["synthetic"] == "true" and "SYNTHETIC" in a.attrs["title"]
    assert not a.equals(simulate_tibetan_grid(6, 8, seed=6))
    t = a["soil_temp_c"]
    assert -35 < float(t.min()) < 0 < float(t.max()) < 35  # frozen winters, thawed summers
    assert float((a["wetland_fraction"] + a["grassland_fraction"]).max()) <= 1.0
    # warmest in summer, coldest in winter, everywhere
    monthly = t.groupby("time.month").mean()
    assert bool((monthly.sel(month=7) > monthly.sel(month=1)).all())


# ---------------------------------------------------------------- ranges, missing values, coordinates
def _cube(**coords):
    """The ERA5-Land cube of ``_small_cube`` (3 × 4 cells, 10 days), coordinates replaced."""
    ds = to_era5_land(_small_cube())
    return ds.assign_coords(**coords) if coords else ds


@pytest.mark.parametrize("mutate, column, words", [
    (lambda ds: ds.assign_coords(latitude=[99.0, 103.5, 108.0]), "lat", "outside -90…90"),
    (lambda ds: ds.assign_coords(longitude=[400.0, 401.0, 402.0, 403.0]), "lon", "outside -180…360"),
    (lambda ds: ds.assign_coords(longitude=[0.0, 120.0, 240.0, 360.0]), "lon", "same meridian"),
    (lambda ds: ds.assign_coords(latitude=[30.0, 32.0, 31.0]), "lat", "increasing or decreasing"),
    (lambda ds: ds.isel(valid_time=slice(0, 0)), "time", "no time steps"),
    (lambda ds: ds.assign(cell_area=ds["cell_area"] * -1), "cell_area", "not positive"),
    (lambda ds: ds.assign(cell_area=ds["cell_area"].where(ds["cell_area"] < 0)), "cell_area",
     "missing where an ecosystem grows"),
    (lambda ds: ds.assign(grassland_fraction=ds["grassland_fraction"] + 0.9), "grassland_fraction",
     "0–1"),
    (lambda ds: ds.assign(wetland_fraction=ds["wetland_fraction"] * 0 + 0.6,
                          grassland_fraction=ds["grassland_fraction"] * 0 + 0.6),
     "wetland_fraction", "add up to 1.2"),
    (lambda ds: ds.assign(stl1=ds["stl1"] * np.nan), "stl1", "missing on every cell and day"),
    (lambda ds: ds.assign(stl1=ds["stl1"].where(ds["stl1"] > 0, 0) * 0 - 9999).assign(
        stl1=lambda d: d["stl1"].assign_attrs(units="K")), "stl1", "missing-value code"),
    (lambda ds: ds.assign(swvl1=ds["swvl1"].where(ds["valid_time"] != ds["valid_time"][3], -9999.0)
                          .assign_attrs(units="m3 m-3")), "swvl1", "missing-value code"),
    (lambda ds: ds.assign(swvl1=(ds["swvl1"] - 0.9).assign_attrs(units="m3 m-3")), "swvl1",
     "outside 0…1"),
    (lambda ds: ds.assign(zust=ds["stl1"].assign_attrs(units="m s-1")), "zust", "outside 0…10"),
])
def test_out_of_range_values_and_coordinates_are_refused(tmp_path, mutate, column, words):
    path = tmp_path / "bad.nc"
    mutate(_cube()).to_netcdf(path)
    with pytest.raises(DataError) as err:
        read_driver_grid(path)
    assert (err.value.file, err.value.column) == (str(path), column), str(err.value)
    assert words in err.value.problem, err.value.problem
    assert "\n" not in str(err.value)


def test_fahrenheit_under_a_celsius_label_is_caught_by_its_range(tmp_path):
    """Summer °F numbers (above 50 °F = 10 °C) exceed any daily soil temperature in °C; a cube of
    winter days whose °F numbers all lie below 50 cannot be told from °C by its values."""
    ds = to_era5_land(simulate_tibetan_grid(3, 4, start="2015-07-01", n_days=10, seed=1))
    ds["stl1"] = ((ds["stl1"] - 273.15) * 1.8 + 32).assign_attrs(units="degC")
    ds.to_netcdf(tmp_path / "f.nc")
    with pytest.raises(DataError) as err:
        read_driver_grid(tmp_path / "f.nc")
    assert err.value.column == "stl1" and "°C" in err.value.problem
    assert "Fahrenheit" in err.value.fix and " at lat " in err.value.problem


@pytest.mark.parametrize("units", ["days since 1600-01-01", "days since 2300-01-01"])
def test_dates_outside_the_range_are_refused(tmp_path, units):
    ds = _cube().assign_coords(valid_time=np.arange(10))
    ds["valid_time"].attrs = {"units": units, "calendar": "proleptic_gregorian"}
    ds.to_netcdf(tmp_path / "t.nc")
    with pytest.raises(DataError, match="2262-04-11") as err:
        read_driver_grid(tmp_path / "t.nc")
    assert err.value.column == "time"


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(DataError, match="folder"):
        read_driver_grid(tmp_path)


def test_longitudes_0_to_360_are_normalised_and_areas_kept(tmp_path):
    truth = _small_cube()
    ds = to_era5_land(truth).assign_coords(longitude=[178.75, 179.75, 180.75, 181.75])
    ds.drop_vars("cell_area").to_netcdf(tmp_path / "dateline.nc")
    cube = read_driver_grid(tmp_path / "dateline.nc")
    assert cube["lon"].values.tolist() == [-179.25, -178.25, 178.75, 179.75]
    # the same cells, re-ordered west to east: values and areas follow them
    np.testing.assert_allclose(cube["soil_temp_c"].sel(lon=-179.25).values,
                               truth["soil_temp_c"].isel(lon=2).values, atol=1e-9)
    # 1° cells (the file's spacing), not the mean spacing of the re-ordered longitudes
    np.testing.assert_allclose(cube["cell_area"].values,
                               cell_areas(truth["lat"].values, np.arange(4.0)).values, rtol=1e-12)


def test_missing_soil_temperature_days_and_cells_are_kept_for_the_projection(tmp_path):
    ds = _cube()
    ds["stl1"][0, 0, 3] = np.nan  # one cell-day
    ds["stl1"][1, 1, :] = np.nan  # one cell, every day
    ds["stl1"][2, 3, 4] = -9999.0  # a declared fill value
    ds["stl1"].encoding["_FillValue"] = -9999.0
    ds.to_netcdf(tmp_path / "gaps.nc")
    cube = read_driver_grid(tmp_path / "gaps.nc")
    valid = cube["soil_temp_c"].notnull().sum("time").values
    assert valid[0, 0] == 9 and valid[1, 1] == 0 and valid[2, 3] == 9
    assert set(require_land_cover(cube)) == {"wetland", "grassland"}


def test_land_cover_must_have_land_and_soil_temperature(tmp_path):
    ds = _small_cube()
    ds.assign(wetland_fraction=ds["wetland_fraction"] * 0,
              grassland_fraction=ds["grassland_fraction"] * 0).to_netcdf(tmp_path / "sea.nc")
    with pytest.raises(DataError, match="no cell has a positive ecosystem fraction"):
        require_land_cover(read_driver_grid(tmp_path / "sea.nc"))
    only = xr.zeros_like(ds["wetland_fraction"])
    only[0, 0] = 0.4  # one land cell, and it has no soil temperature; the sea cells do
    temp = ds["soil_temp_c"].copy()
    temp[0, 0, :] = np.nan
    ds.assign(wetland_fraction=only, grassland_fraction=only * 0, soil_temp_c=temp).to_netcdf(
        tmp_path / "dry.nc")
    with pytest.raises(DataError, match="no land cell") as err:
        require_land_cover(read_driver_grid(tmp_path / "dry.nc"))
    assert err.value.column == "soil_temp_c"
