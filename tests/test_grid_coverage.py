"""The complete-record rule per grid cell: a cell whose valid days do not cover a period's seasons
has that period withheld (NaN map, nothing in the region), and the output says how much."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from models import scenarios as sc
from models.forest import fit_class_forests
from tests.test_project import JULIAN, SMALL, e_draws, sites  # noqa: F401 (fixture)

GAP_CELL = (1, 2)


@pytest.fixture(scope="module")
def setup_and_cube(sites):
    from data.synthetic_grid import simulate_tibetan_grid

    table, _ = sites
    forests, _ = fit_class_forests(table, SMALL, drivers=("soil_temp_c", "swc", "le"), seed=0)
    engine = sc.Engine(forests, (0.0, 1.0), sc.MODES, 6, e_draws(sorted(forests), JULIAN,
                                                                 [0.6, 1.0], n_draws=6))
    setup = sc.GridSetup(engine, sc.class_shares(table, engine.classes), ("grassland", "wetland"),
                         ("soil_temp_c", "swc", "le"))
    cube = simulate_tibetan_grid(3, 4, n_days=365, seed=3)
    # May-September is the growing season: June to August missing leaves it under 80 % covered
    summer = (cube["time"].dt.month >= 6) & (cube["time"].dt.month <= 8)
    cube["soil_temp_c"][GAP_CELL[0], GAP_CELL[1], summer.values] = np.nan
    return setup, cube


def _region(out, period):
    return out["region_total"].sel(period=period)


def test_a_cell_without_its_summer_is_withheld_for_growing_and_annual(setup_and_cube):
    setup, cube = setup_and_cube
    out = sc.project_grid_in_memory(setup, cube)
    cell = out["flux_mean"].isel(lat=GAP_CELL[0], lon=GAP_CELL[1])
    for period in ("growing", "annual", "spring_thaw", "autumn_freeze"):
        assert np.isnan(cell.sel(period=period)).all(), period
    assert np.isfinite(cell.sel(period="non-growing")).all()
    assert not bool(out["cell_complete"].sel(period="annual")[GAP_CELL])
    assert float(out["cell_coverage"].sel(period="growing")[GAP_CELL]) < sc.MIN_SEASON_COVERAGE
    # every other cell is complete and its map finite
    others = out["flux_mean"].sel(period="annual").values.copy()
    others[..., GAP_CELL[0], GAP_CELL[1]] = 0.0
    assert np.isfinite(others).all()

    # the regional totals are those of the cube without the cell
    land = sum(cube[f"{e}_fraction"] for e in setup.ecosystems) > 0
    n_land = int(land.sum())
    without = cube.copy()
    for e in setup.ecosystems:
        frac = without[f"{e}_fraction"].values.copy()
        frac[GAP_CELL] = 0.0
        without[f"{e}_fraction"] = (("lat", "lon"), frac)
    reference = sc.project_grid_in_memory(setup, without)
    for period in ("growing", "annual"):
        xr.testing.assert_allclose(_region(out, period), _region(reference, period), rtol=1e-12)
    # the non-growing season is covered: the cell adds to it
    assert not np.allclose(_region(out, "non-growing"), _region(reference, "non-growing"))

    eco_area = (sum(cube[f"{e}_fraction"] for e in setup.ecosystems) * cube["cell_area"]).values
    share = eco_area[GAP_CELL] / eco_area.sum()
    annual = out.sel(period="annual")
    assert int(annual["cells_withheld"]) == 1 and int(annual["cells_in_total"]) == n_land - 1
    assert float(annual["area_share_withheld"]) == pytest.approx(share, rel=1e-12)
    ng = out.sel(period="non-growing")
    assert int(ng["cells_withheld"]) == 0 and float(ng["area_share_withheld"]) == 0.0
    for attr in ("cells_in_total", "cells_withheld", "area_share_withheld", "cell_coverage"):
        assert out[attr].attrs["long_name"]
    # the withheld cell's days are neither projected nor out of range for the period
    for name in ("n_days", "out_of_range"):
        xr.testing.assert_equal(out[name].sel(period="growing"),
                                reference[name].sel(period="growing"))


def test_chunked_equals_in_memory_with_a_withheld_cell(setup_and_cube):
    setup, cube = setup_and_cube
    whole = sc.project_grid_in_memory(setup, cube)
    chunked = sc.project_grid(setup, cube, chunk_cells=(2, 3))
    xr.testing.assert_allclose(whole, chunked, rtol=1e-12, atol=1e-15)
    assert int(chunked["cells_withheld"].sel(period="annual")) == 1


def test_a_period_no_cell_covers_has_no_regional_total(setup_and_cube):
    setup, cube = setup_and_cube
    summer = cube.isel(time=slice(120, 250))
    out = sc.project_grid_in_memory(setup, summer)
    assert np.isnan(out["region_total"].sel(period="annual")).all()
    assert int(out["cells_in_total"].sel(period="annual")) == 0
    assert float(out["area_share_withheld"].sel(period="annual")) == pytest.approx(1.0)


def test_the_text_states_cells_and_area():
    from tpflux.projection import withheld_cells_text

    ds = xr.Dataset({"cells_in_total": (("period",), [9]), "cells_withheld": (("period",), [3]),
                     "area_share_withheld": (("period",), [0.25])}, coords={"period": ["annual"]})
    text = withheld_cells_text(ds)
    assert "over 9 of 12 cells (75.0 % of the area); 3 cells withheld: incomplete record" in text
