"""Scenario engine and the projection entry point."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from inference import project, runio
from models import scenarios as sc
from models.forest import ForestSpec, fit_class_forests, with_flux_class
from tests.helpers import make_sites

SMALL = ForestSpec(n_trees=12, min_samples_leaf=3, n_jobs=1, min_rows=30)
JULIAN = ("growing", "non-growing")
FREEZE_THAW = ("frozen", "spring_thaw", "thawed", "autumn_freeze")


def fake_posterior(classes, seasons, E, scheme="julian", n_chain=2, n_draw=50, seed=0):
    """A DataTree shaped like fit_ea's: posterior E (chain, draw, flux_class, season) + config."""
    E = np.broadcast_to(np.asarray(E, dtype=float), (n_chain, n_draw, len(classes), len(seasons)))
    post = xr.Dataset({"E": (("chain", "draw", "flux_class", "season"), E.copy())},
                      coords={"chain": np.arange(n_chain), "draw": np.arange(n_draw),
                              "flux_class": list(classes), "season": list(seasons)})
    root = xr.Dataset(attrs={"tpflux_config": json.dumps({"season_scheme": scheme, "t_ref_c": 15.0})})
    return xr.DataTree.from_dict({"/": root, "/posterior": post})


def e_draws(classes, seasons, E, scheme="julian", n_draws=12):
    dt = fake_posterior(classes, seasons, E, scheme)
    return sc.draw_activation_energies(dt["posterior"]["E"], n_draws, 0, scheme)


@pytest.fixture(scope="module")
def sites():
    table = with_flux_class(make_sites(n_days=365))
    forests, _ = fit_class_forests(table, SMALL, seed=0)
    return table, forests


# ---------------------------------------------------------------- engine
def test_arrhenius_factor_is_the_analytic_one():
    E, t, dt = 0.65, 10.0, 2.0
    k = 8.617333262e-5  # CODATA 2018, eV K-1
    by_hand = np.exp(E / k * (1 / 283.15 - 1 / 285.15))
    assert sc.arrhenius_factor(E, t, dt) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(1.2054, abs=1e-4)
    assert sc.arrhenius_factor(E, t, 0.0) == 1.0


def test_posterior_scaling_equals_the_arrhenius_factor_for_a_fixed_E(sites):
    table, forests = sites
    constant = table.assign(soil_temp_c=8.0)  # one temperature: the factor is the same every day
    draws = e_draws(sorted(forests), JULIAN, 0.65)
    result = sc.project_sites(sc.Engine(forests, (0, 1.0, 2.0), ("arrhenius",), 12, draws), constant)
    total = result["total"].sel(mode="arrhenius", period="annual").dropna("site", how="all")
    for dT in (1.0, 2.0):
        ratio = (total.sel(scenario_c=dT) / total.sel(scenario_c=0.0)).values
        np.testing.assert_allclose(ratio[np.isfinite(ratio)], sc.arrhenius_factor(0.65, 8.0, dT),
                                   rtol=1e-12)


def test_delta_zero_reproduces_the_forest_baseline_in_both_modes(sites):
    table, forests = sites
    n_trees = SMALL.n_trees
    engine = sc.Engine(forests, (0.0, 1.0), sc.MODES, n_trees, e_draws(sorted(forests), JULIAN, 0.7,
                                                                       n_draws=n_trees))
    result = sc.project_sites(engine, table)
    f = forests["wetland_emission"]
    rows = table[(table["flux_class"] == "wetland_emission") & (table["site"] == "W2")]
    # the forest's own prediction (mean of its trees), summed in g m-2 over one year of record
    baseline = f.forest.predict(f.design(rows)).sum() * 86400 * 16.04246e-9
    years = (table["site"] == "W2").sum() / 365.25
    for mode in sc.MODES:
        draws = result["total"].sel(scenario_c=0.0, mode=mode, flux_class="wetland_emission",
                                    period="annual", site="W2")
        assert float(draws.mean()) == pytest.approx(baseline / years, rel=1e-10)
    # draw d is tree d: the spread is the forest's own
    per_tree = np.array([t.predict(f.design(rows).astype(np.float32)).sum() for t in f.forest.estimators_])
    np.testing.assert_allclose(result["total"].sel(scenario_c=0.0, mode="rf", flux_class="wetland_emission",
                                                   period="annual", site="W2").values,
                               per_tree * 86400 * 16.04246e-9 / years, rtol=1e-10)


def test_rf_direct_counts_site_days_beyond_the_training_range(sites):
    table, forests = sites
    f = forests["wetland_emission"]
    lo, hi = f.temp_range
    # four days at W1: 0.3 below the top, at the top, mid-range, and below the bottom
    probe = table[table["site"] == "W1"].iloc[:4].copy()
    probe["soil_temp_c"] = [hi - 0.3, hi, (lo + hi) / 2, lo - 0.2]
    probe["flux_class"] = "wetland_emission"
    engine = sc.Engine({"wetland_emission": f}, (0.0, 0.5, 1.0), ("rf",), 4)
    oor = sc.project_sites(engine, probe)["out_of_range"].sel(
        flux_class="wetland_emission", period="annual", site="W1")
    # ΔT 0: the day below range; 0.5: the top two (0.3 below the top + 0.5 is out; below-range day
    # lifted in); 1.0: the top two again
    assert oor.values.tolist() == [1, 2, 2]


def test_site_totals_match_a_hand_computed_example_with_units():
    table = make_sites(n_days=365, sites=(("W1", "wetland"), ("W2", "wetland")))
    table["flux"] = 10.0  # nmol CH4 m-2 s-1, every day
    rows = with_flux_class(table)
    forests, _ = fit_class_forests(rows, SMALL, seed=0)
    result = sc.project_sites(sc.Engine(forests, (0.0,), ("rf",), 5), rows)
    # 10 nmol m-2 s-1 × 86 400 s d-1 = 8.64e5 nmol m-2 d-1 = 8.64e-4 mol × 16.04246 g mol-1
    # = 0.01386068544 g m-2 d-1; 365 observed days = 365/365.25 years → × 365.25 = 5.062615 g m-2 yr-1
    annual = result["total"].sel(scenario_c=0.0, mode="rf", flux_class="wetland_emission",
                                 period="annual", site="W1")
    np.testing.assert_allclose(annual.values, 0.01386068544 * 365.25, rtol=1e-12)
    assert 0.01386068544 * 365.25 == pytest.approx(5.062615, abs=1e-5)
    parts = result["total"].sel(scenario_c=0.0, mode="rf", site="W1", flux_class="wetland_emission")
    np.testing.assert_allclose(parts.sel(period="growing") + parts.sel(period="non-growing"),
                               parts.sel(period="annual"), rtol=1e-12)
    # May–Sep is 153 of 365 days
    np.testing.assert_allclose(parts.sel(period="growing"), 0.01386068544 * 153 * 365.25 / 365, rtol=1e-12)


def test_grid_totals_match_a_hand_computed_example_in_tg_per_year():
    table = with_flux_class(make_sites(n_days=365, sites=(("W1", "wetland"), ("W2", "wetland")))
                            .assign(flux=10.0))
    forests, _ = fit_class_forests(table, SMALL, drivers=("soil_temp_c",), seed=0)
    engine = sc.Engine(forests, (0.0, 1.0), ("rf",), 5)
    setup = sc.GridSetup(engine, sc.class_shares(table, engine.classes), ("wetland",), ("soil_temp_c",))
    time = pd.date_range("2015-01-01", periods=365, freq="D")
    temp = np.full((1, 2, 365), 5.0)
    temp[..., :100] = forests["wetland_emission"].temp_range[1] - 0.5  # 100 days near the top
    cube = xr.Dataset(
        {"soil_temp_c": (("lat", "lon", "time"), temp),
         "wetland_fraction": (("lat", "lon"), [[0.1, 0.0]]),
         "cell_area": (("lat", "lon"), [[1.0e10, 1.0e10]])},
        coords={"lat": [33.0], "lon": [100.0, 101.0], "time": time})
    out = sc.project_grid_in_memory(setup, cube)
    # 5.062615 g m-2 yr-1 × 0.1 × 1e10 m2 / 1e12 g Tg-1 = 5.062615e-3 Tg CH4 yr-1
    expected = 0.01386068544 * 365.25 * 0.1 * 1.0e10 / 1.0e12
    for label in ("wetland_emission", "wetland_net", "total_net"):
        np.testing.assert_allclose(out["region_total"].sel(scenario_c=0.0, mode="rf", flux_class=label,
                                                           period="annual"), expected, rtol=1e-12)
    # one wetland cell × 365 days; at +1 °C its 100 warm days leave the training range
    assert out["n_days"].sel(flux_class="wetland_emission", period="annual") == 365
    oor = out["out_of_range"].sel(flux_class="wetland_emission", period="annual")
    assert oor.values.tolist() == [0, 100]
    # the map is per m2 of cell: 0.1 × 5.062615 where there is wetland; masked where no modelled
    # ecosystem grows
    m = out["flux_mean"].sel(scenario_c=0.0, mode="rf", flux_class="total_net", period="annual")
    np.testing.assert_allclose(m.values, [[0.01386068544 * 365.25 * 0.1, np.nan]], rtol=1e-12)


def test_dask_chunked_grid_equals_the_in_memory_one(sites):
    from data.synthetic_grid import simulate_tibetan_grid

    table, _ = sites
    forests, _ = fit_class_forests(table, SMALL, drivers=("soil_temp_c", "swc", "le"), seed=0)
    engine = sc.Engine(forests, (0.0, 1.0, 2.0), sc.MODES, 8, e_draws(sorted(forests), JULIAN,
                                                                      [0.6, 1.0], n_draws=8))
    setup = sc.GridSetup(engine, sc.class_shares(table, engine.classes), ("grassland", "wetland"),
                         ("soil_temp_c", "swc", "le"))
    cube = simulate_tibetan_grid(5, 6, n_days=365, seed=2)
    cube["soil_temp_c"][1, 2, 40] = np.nan  # one land cell-day without soil temperature
    cube["soil_temp_c"][3, 1, :] = np.nan  # one land cell without any
    whole = sc.project_grid_in_memory(setup, cube)
    chunked = sc.project_grid(setup, cube, chunk_cells=(2, 4))
    xr.testing.assert_allclose(whole, chunked, rtol=1e-12, atol=1e-15)
    assert int(chunked["cell_days_missing"]) == 1 + 365
    assert int(chunked["cells_without_valid_day"]) == 1
    assert int(chunked["valid_days"][1, 2]) == 364 and int(chunked["valid_days"][3, 1]) == 0
    assert np.isfinite(chunked["flux_mean"].values[..., 1, 2]).all()  # the gap is skipped, not the cell
    assert np.isnan(chunked["flux_mean"].values[..., 3, 1]).all()
    assert float(np.abs(whole["region_total"]).sum()) > 0


def _constant_grid(temp: np.ndarray, fraction, area=1.0e10):
    """Two wetland cells with a constant flux forest (10 nmol m-2 s-1), one year."""
    table = with_flux_class(make_sites(n_days=365, sites=(("W1", "wetland"), ("W2", "wetland")))
                            .assign(flux=10.0))
    forests, _ = fit_class_forests(table, SMALL, drivers=("soil_temp_c",), seed=0)
    engine = sc.Engine(forests, (0.0, 1.0), sc.MODES, 5, e_draws(sorted(forests), JULIAN, 0.7,
                                                                n_draws=5))
    setup = sc.GridSetup(engine, sc.class_shares(table, engine.classes), ("wetland",), ("soil_temp_c",))
    time = pd.date_range("2015-01-01", periods=temp.shape[-1], freq="D")
    cube = xr.Dataset(
        {"soil_temp_c": (("lat", "lon", "time"), temp),
         "wetland_fraction": (("lat", "lon"), np.asarray(fraction, dtype=float)),
         "cell_area": (("lat", "lon"), np.full(np.shape(fraction), area))},
        coords={"lat": [33.0], "lon": [100.0, 101.0], "time": time})
    return setup, cube


def test_one_missing_day_is_skipped_per_cell_day_never_a_zero_total():
    temp = np.full((1, 2, 365), 5.0)
    temp[0, 0, 100] = np.nan  # one day of one land cell
    setup, cube = _constant_grid(temp, [[0.1, 0.2]])
    out = sc.project_grid_in_memory(setup, cube)
    # each cell: 10 nmol m-2 s-1 over its valid days / its valid years = the same annual rate
    per_m2 = 0.01386068544 * 365.25
    expected = per_m2 * (0.1 + 0.2) * 1.0e10 / 1.0e12
    for mode in sc.MODES:
        total = out["region_total"].sel(scenario_c=0.0, mode=mode, flux_class="total_net",
                                        period="annual")
        np.testing.assert_allclose(total, expected, rtol=1e-12)
    m = out["flux_mean"].sel(scenario_c=0.0, mode="rf", flux_class="total_net", period="annual")
    np.testing.assert_allclose(m.values, [[per_m2 * 0.1, per_m2 * 0.2]], rtol=1e-12)
    assert int(out["cell_days_missing"]) == 1 and int(out["cells_without_valid_day"]) == 0
    assert out["valid_days"].values.tolist() == [[364, 365]]
    assert int(out["n_days"].sel(flux_class="wetland_emission", period="annual")) == 364 + 365
    # a missing day on every cell (one time step) is the same: skipped, not a zero region
    temp[:, :, 200] = np.nan
    out = sc.project_grid_in_memory(setup, cube.assign(soil_temp_c=(("lat", "lon", "time"), temp)))
    total = out["region_total"].sel(scenario_c=1.0, mode="arrhenius", flux_class="total_net",
                                    period="annual")
    assert np.isfinite(total).all() and (total > 0).all()
    assert int(out["cell_days_missing"]) == 3


def test_a_land_cell_without_any_valid_day_is_left_out_and_reported():
    temp = np.full((1, 2, 365), 5.0)
    temp[0, 1, :] = np.nan
    setup, cube = _constant_grid(temp, [[0.1, 0.2]])
    out = sc.project_grid_in_memory(setup, cube)
    expected = 0.01386068544 * 365.25 * 0.1 * 1.0e10 / 1.0e12  # the first cell only
    np.testing.assert_allclose(out["region_total"].sel(scenario_c=0.0, mode="rf",
                                                       flux_class="total_net", period="annual"),
                               expected, rtol=1e-12)
    assert int(out["cells_without_valid_day"]) == 1 and int(out["cell_days_missing"]) == 365
    assert out["valid_days"].values.tolist() == [[365, 0]]
    assert np.isnan(out["flux_mean"].values[..., 0, 1]).all()
    said = []
    from tpflux.projection import report_missing_cells

    report_missing_cells(out, said.append)
    assert any("1 of 2 land cells" in line and "(33, 101)" in line for line in said), said
    # a missing day where no ecosystem grows is not a land cell-day
    temp = np.full((1, 2, 365), 5.0)
    temp[0, 1, 7] = np.nan
    out = sc.project_grid_in_memory(*_constant_grid(temp, [[0.1, 0.0]]))
    assert int(out["cell_days_missing"]) == 0 and out["valid_days"].values.tolist() == [[365, -1]]


def test_freeze_thaw_periods_on_a_grid_with_a_long_gap():
    """A month without soil temperature: the freeze-thaw periods come from the valid days."""
    doy = np.arange(365)
    temp = np.broadcast_to(5.0 - 10.0 * np.cos(2 * np.pi * (doy - 15) / 365.0), (1, 2, 365)).copy()
    temp[0, 0, 150:180] = np.nan
    setup, cube = _constant_grid(temp, [[0.1, 0.2]])
    out = sc.project_grid_in_memory(setup, cube)
    days = out["n_days"].sel(flux_class="wetland_emission")
    assert int(days.sel(period="annual")) == 365 - 30 + 365
    assert int(days.sel(period="spring_thaw")) > 0 and int(days.sel(period="autumn_freeze")) > 0


def test_posterior_seasons_follow_the_posteriors_scheme(sites):
    """E from freeze-thaw seasons: only frozen days respond, so spring-thaw and autumn-freeze
    totals do not change while the annual one does."""
    table, forests = sites
    draws = e_draws(sorted(forests), FREEZE_THAW, [1.0, 0.0, 0.0, 0.0], scheme="freeze-thaw")
    result = sc.project_sites(sc.Engine(forests, (0.0, 2.0), ("arrhenius",), 12, draws), table)
    total = result["total"].sel(mode="arrhenius", flux_class="wetland_emission", site="W1")
    ratio = total.sel(scenario_c=2.0) / total.sel(scenario_c=0.0)
    np.testing.assert_allclose(ratio.sel(period="spring_thaw"), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ratio.sel(period="autumn_freeze"), 1.0, rtol=1e-12)
    assert (ratio.sel(period="annual") > 1.001).all()


def test_summary_change_and_probability_of_increase_by_hand():
    draws = xr.DataArray(
        np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 5.0]])[:, None, None, None, None, :]
        * np.array([1.0, -1.0, -1.0])[None, None, :, None, None, None],
        dims=("scenario_c", "mode", "flux_class", "period", "site", "draw"),
        coords={"scenario_c": [0.0, 1.0], "mode": ["rf"], "period": ["annual"], "site": ["S"],
                "flux_class": ["wetland_emission", "grassland_uptake", "grassland_net"]})
    s = sc.summarise(draws, "g", "site").set_index(["scenario_c", "flux_class"])
    warm = s.loc[1.0]
    assert warm.loc["wetland_emission", "change_vs_control"] == pytest.approx(0.25)
    assert warm.loc["wetland_emission", "P_increase"] == pytest.approx(0.5)  # 1→2 and 4→5
    # one meaning in every row: the signed total rises. Uptake −1→−2, −2→−2, −3→−2, −4→−5: only
    # −3→−2 (weaker uptake) is a rise; the net row, with the same draws, says the same.
    for label in ("grassland_uptake", "grassland_net"):
        assert warm.loc[label, "P_increase"] == pytest.approx(0.25)
        assert warm.loc[label, "change_vs_control"] == pytest.approx(-0.25)
        # the change in % is signed like the change: −0.25 of a control magnitude of 2.5
        assert warm.loc[label, "change_pct"] == pytest.approx(-10.0)
    # the paired changes are (1, 0, −1, 1): their interval, not the difference of the intervals
    lo, hi = np.quantile([1.0, 0.0, -1.0, 1.0], [0.025, 0.975])
    assert warm.loc["wetland_emission", "change_ci_low"] == pytest.approx(lo)
    assert warm.loc["wetland_emission", "change_ci_high"] == pytest.approx(hi)
    assert warm.loc["wetland_emission", "total"] == pytest.approx(2.75)
    assert np.isnan(s.loc[(0.0, "wetland_emission"), "P_increase"])


# ---------------------------------------------------------------- command line
FAST = ["--n-trees", "8", "--n-draws", "8", "--cv-trees", "0", "--n-jobs", "1"]
SYN_CLASSES = ("wetland_emission", "grassland_emission", "grassland_uptake")


@pytest.fixture(scope="module")
def posterior_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("post") / "ea_posterior.nc"
    runio.write_datatree(path, fake_posterior(SYN_CLASSES, JULIAN, [0.6, 1.0]))
    return path


def test_cli_sites_end_to_end_on_simulated_sites(tmp_path, posterior_file):
    out = tmp_path / "run"
    rc = project.main(["--posterior", str(posterior_file), "--dataset", "synthetic",
                       "--scenarios", "0,1,2", "--out", str(out), "--seed", "3", *FAST])
    assert rc == 0
    summary = pd.read_csv(out / "projection_summary.csv")
    for col in ("scenario_c", "mode", "flux_class", "period", "site", "total", "ci_low", "ci_high",
                "change_vs_control", "P_increase"):
        assert col in summary.columns
    assert set(summary["scenario_c"]) == {0.0, 1.0, 2.0}
    assert set(summary["mode"]) == {"rf", "arrhenius"}
    assert summary["synthetic"].all()
    given = summary[summary["withheld"] == "no"]
    assert len(given) and (given["ci_low"] <= given["total"] + 1e-12).all()
    assert summary.loc[summary["withheld"] != "no", "total"].isna().all()
    dt = xr.open_datatree(out / "projection.nc", engine="h5netcdf")
    assert dt.attrs["synthetic"] == "true" and json.loads(dt.attrs["tpflux_config"])["n_draws"] == 8
    assert "total" in dt["sites"].data_vars
    # same seed, same numbers
    rc = project.main(["--posterior", str(posterior_file), "--dataset", "synthetic",
                       "--scenarios", "0,1,2", "--out", str(tmp_path / "again"), "--seed", "3", *FAST])
    again = pd.read_csv(tmp_path / "again" / "projection_summary.csv")
    pd.testing.assert_frame_equal(summary, again)


def test_cli_synthetic_grid_says_it_is_synthetic(tmp_path, posterior_file):
    out = tmp_path / "grid"
    rc = project.main(["--posterior", str(posterior_file), "--dataset", "synthetic-grid",
                       "--train", "synthetic", "--grid-shape", "3,4", "--chunk", "2,2",
                       "--scenarios", "0,2", "--out", str(out), *FAST])
    assert rc == 0
    summary = pd.read_csv(out / "projection_summary.csv")
    assert "region" in summary.columns and summary["synthetic"].all()
    assert set(summary["region"]) == {"synthetic_tibetan_grid"}
    assert set(summary["unit"]) == {"Tg CH4 yr-1"}
    maps = xr.open_dataset(out / "projection_maps.nc", engine="h5netcdf")
    assert maps.attrs["synthetic"] == "true" and "SYNTHETIC" in maps.attrs["title"]
    assert maps["flux_mean"].dims == ("scenario_c", "mode", "flux_class", "period", "lat", "lon")
    assert maps["lat"].attrs["standard_name"] == "latitude"
    from reports.projection_figures import make_figures

    figures = make_figures(out)
    assert [f.name for f in figures] == ["projection_totals.png", "projection_change.png",
                                         "projection_change_by_period.png", "projection_maps.png"]
    assert all(f.stat().st_size > 10_000 for f in figures)


def test_cli_reads_an_era5_land_style_cube(tmp_path, posterior_file):
    from data.synthetic_grid import simulate_tibetan_grid, to_era5_land

    cube = tmp_path / "tibet_era5.nc"
    to_era5_land(simulate_tibetan_grid(3, 4, n_days=365, seed=1)).to_netcdf(cube)
    out = tmp_path / "run"
    rc = project.main(["--posterior", str(posterior_file), "--drivers", str(cube), "--train",
                       "synthetic", "--scenarios", "0,1", "--out", str(out), *FAST])
    assert rc == 0
    summary = pd.read_csv(out / "projection_summary.csv")
    assert set(summary["region"]) == {"tibet_era5"}
    assert summary["synthetic"].all()  # the cube and the training sites are simulated
    annual = summary[(summary["period"] == "annual") & (summary["flux_class"] == "total_net")]
    assert (annual["n_days"] > 0).all() and annual["total"].notna().all()


@pytest.mark.parametrize("args, words", [
    (["--posterior", "{missing}"], "posterior file not found"),
    (["--posterior", "{post}", "--scenarios", "0,warm"], "not a comma-separated list"),
    (["--scenarios", "0,1"], "needs a posterior"),
    (["--posterior", "{bad}"], "expected (chain, draw, flux_class, season)"),
])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, posterior_file,
                                                                args, words):
    bad = tmp_path / "bad.nc"
    E = fake_posterior(SYN_CLASSES, JULIAN, 0.5)["posterior"]["E"].isel(season=0)
    runio.write_datatree(bad, xr.DataTree.from_dict({"/posterior": E.to_dataset()}))
    args = [a.format(missing=tmp_path / "none.nc", post=posterior_file, bad=bad) for a in args]
    out = tmp_path / "run"
    rc = project.main([*args, "--dataset", "synthetic", "--out", str(out), *FAST])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: ") and words in err[-1]
    assert not out.exists()


def test_cli_scheduler_without_distributed_says_how_to_install(tmp_path, capsys, posterior_file,
                                                                monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    out = tmp_path / "r"
    rc = project.main(["--posterior", str(posterior_file), "--scheduler", "tcp://127.0.0.1:1",
                       "--out", str(out), *FAST])
    assert rc == 2
    assert "tpflux[distributed]" in capsys.readouterr().err
    assert not out.exists()


def test_cli_grid_on_a_distributed_cluster_matches_the_local_run(tmp_path, posterior_file):
    distributed = pytest.importorskip("distributed")
    common = ["--posterior", str(posterior_file), "--dataset", "synthetic-grid", "--train", "synthetic",
              "--grid-shape", "3,4", "--chunk", "2,2", "--scenarios", "0,1", *FAST]
    assert project.main([*common, "--out", str(tmp_path / "local")]) == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert project.main([*common, "--scheduler", cluster.scheduler_address,
                             "--out", str(tmp_path / "cluster")]) == 0
    local = pd.read_csv(tmp_path / "local" / "projection_summary.csv")
    remote = pd.read_csv(tmp_path / "cluster" / "projection_summary.csv")
    pd.testing.assert_frame_equal(local, remote)


def test_cli_refuses_a_previous_run_unless_overwrite(tmp_path, capsys, posterior_file):
    out = tmp_path / "run"
    common = ["--posterior", str(posterior_file), "--dataset", "synthetic", "--scenarios", "0,1",
              "--out", str(out), *FAST]
    assert project.main(common) == 0
    first = (out / "projection_summary.csv").read_bytes()
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert project.main(common) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "notes.txt").exists()  # refused: nothing touched
    assert project.main([*common, "--overwrite"]) == 0
    assert not (out / "notes.txt").exists()  # replaced as a whole
    assert (out / "projection_summary.csv").read_bytes() == first


# ---------------------------------------------------------------- Python API
API = dict(dataset="synthetic", scenarios=(0, 1, 2), n_draws=20, n_trees=20, cv_trees=0, n_jobs=1,
           seed=3, progress=False)
API_CLI = ["--dataset", "synthetic", "--scenarios", "0,1,2", "--n-draws", "20", "--n-trees", "20",
           "--cv-trees", "0", "--n-jobs", "1", "--seed", "3"]


@pytest.fixture(scope="module")
def api_run(posterior_file, tmp_path_factory):
    from tpflux.projection import project as api_project

    proj = api_project(posterior_file, **API)
    folder = proj.save(tmp_path_factory.mktemp("api") / "run")
    return proj, folder


def test_api_and_cli_give_identical_runs(api_run, posterior_file, tmp_path):
    from tpflux.projection import Projection

    proj, folder = api_run
    assert isinstance(proj, Projection)
    out = tmp_path / "cli"
    assert project.main(["--posterior", str(posterior_file), *API_CLI, "--out", str(out)]) == 0
    for name in ("projection_summary.csv", "forest_skill.csv", "forest_importance.csv"):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), name
    cli = xr.open_datatree(out / "projection.nc", engine="h5netcdf")
    xr.testing.assert_identical(cli["sites"].to_dataset(), proj.datatree["sites"].to_dataset())
    assert json.loads(cli.attrs["tpflux_config"]) == json.loads(proj.datatree.attrs["tpflux_config"])
    assert cli.attrs["command_line"].startswith("python -m inference.project --posterior")
    assert proj.datatree.attrs["command_line"] == "tpflux.project(...) from Python"


def test_save_then_load_gives_the_same_projection(api_run):
    import tpflux
    from tpflux.projection import Projection

    proj, folder = api_run
    back = tpflux.load(folder)
    assert type(back) is Projection
    pd.testing.assert_frame_equal(back.summary(), proj.summary())
    pd.testing.assert_frame_equal(back.skill, proj.skill)
    pd.testing.assert_frame_equal(back.importance, proj.importance)
    assert back.config == proj.config
    assert back.synthetic and back.maps is None
    np.testing.assert_array_equal(back.datatree["sites"]["total"].to_numpy(),
                                  proj.datatree["sites"]["total"].to_numpy())
    assert json.loads((folder / "run.json").read_text()) == {"job": "project",
                                                             "run_id": proj.datatree.attrs["run_id"]}
    assert back.result_text() == proj.result_text()
    assert "Annual totals (g CH4 m-2 yr-1" in proj.result_text() and "arrhenius" in proj.result_text()


def test_config_round_trips_through_the_attrs_and_reruns_identically(api_run):
    import tpflux
    from tpflux.projection import ProjectionConfig

    proj, folder = api_run
    loaded = tpflux.load(folder)
    config = ProjectionConfig.from_attrs(loaded.datatree.attrs)
    assert config == proj.config
    assert config.scenarios == (0.0, 1.0, 2.0) and config.posterior == str(api_run[0].config.posterior)
    again = loaded.rerun()
    pd.testing.assert_frame_equal(again.summary(), proj.summary())
    np.testing.assert_array_equal(again.datatree["sites"]["total"].to_numpy(),
                                  proj.datatree["sites"]["total"].to_numpy())
    other = loaded.rerun(seed=4)
    assert not np.array_equal(other.datatree["sites"]["total"].to_numpy(),
                              proj.datatree["sites"]["total"].to_numpy())


def test_posterior_from_a_fit_object_or_a_run_folder(posterior_file):
    from data.errors import DataError
    from tpflux.activation import ActivationEnergyConfig, ActivationEnergyFit
    from tpflux.projection import project as api_project

    small = {**API, "scenarios": (0, 1), "n_draws": 8, "n_trees": 8}
    from_folder = api_project(posterior_file.parent, **small)
    assert from_folder.config.posterior == str(posterior_file)
    tree = fake_posterior(SYN_CLASSES, JULIAN, [0.6, 1.0])
    fit = ActivationEnergyFit(datatree=tree, table=pd.DataFrame(), diagnostics=None,
                              config=ActivationEnergyConfig(dataset="synthetic"))
    from_fit = api_project(fit, **small)
    pd.testing.assert_frame_equal(from_fit.summary(), from_folder.summary())
    assert from_fit.config.posterior is None  # unsaved: nothing to point at
    with pytest.raises(DataError, match="needs a posterior"):
        from_fit.rerun()
    fit.path = posterior_file.parent  # a saved fit: the run remembers its file
    assert api_project(fit, **{**small, "n_draws": 2}).config.posterior == str(posterior_file)


def test_rf_mode_needs_no_posterior_and_the_arrhenius_mode_does():
    from data.errors import DataError
    from tpflux.projection import project as api_project

    rf = api_project(None, **{**API, "scenarios": (0, 1)}, mode="rf")
    assert set(rf.summary()["mode"]) == {"rf"}
    with pytest.raises(DataError, match="--posterior"):
        api_project(None, **API)


@pytest.mark.parametrize("option, value, words", [
    ("scenarios", "0,500", "--scenarios"), ("scenarios", (0.0, float("nan")), "--scenarios"),
    ("scenarios", "0,warm", "not a comma-separated list"), ("scenarios", (), "--scenarios"),
    ("n_draws", 0, "--n-draws"), ("n_trees", 2.5, "--n-trees"), ("min_samples_leaf", 0, "--min-samples-leaf"),
    ("n_jobs", 0, "--n-jobs"), ("cv_trees", -1, "--cv-trees"), ("mode", "fast", "--mode"),
    ("chunk", "8", "--chunk"), ("grid_shape", (0, 4), "--grid-shape"), ("seed", -1, "--seed"),
    ("dataset", "nowhere", "--dataset"), ("train", "nowhere", "--train"),
    ("flux_column", "CH4", "--flux-column")])
def test_bad_options_are_refused_before_any_work(option, value, words, posterior_file, monkeypatch):
    import tpflux.projection as tp
    from data.errors import DataError

    def never(*args, **kwargs):
        pytest.fail("work began before the options were checked")

    for name in ("load_observations", "observations_for", "_open_posterior", "load_grid"):
        monkeypatch.setattr(tp, name, never)
    with pytest.raises(DataError) as info:
        tp.project(posterior_file, **{**API, option: value})
    assert words in str(info.value)


@pytest.mark.parametrize("args, words", [(["--scenarios", "0,500"], "--scenarios"),
                                         (["--n-draws", "0"], "--n-draws"),
                                         (["--chunk", "0,8"], "--chunk")])
def test_cli_bad_options_exit_2_writing_nothing(tmp_path, capsys, posterior_file, args, words):
    out = tmp_path / "run"
    rc = project.main(["--posterior", str(posterior_file), *API_CLI, *args, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0]
    assert not out.exists() and not any(tmp_path.iterdir())


def test_plot_methods_return_figures_without_drawing(api_run, posterior_file, tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    import tpflux
    from data.errors import DataError
    from tpflux.projection import project as api_project

    proj, _ = api_run
    before = plt.get_fignums()
    for fig in (proj.plot_totals(), proj.plot_change(), proj.plot_change_by_period()):
        assert isinstance(fig, Figure) and fig.axes
        assert any(ax.has_data() for ax in fig.axes)
    with pytest.raises(DataError, match="no maps"):
        proj.plot_maps()
    grid = api_project(posterior_file, **{**API, "dataset": "synthetic-grid", "scenarios": (0, 2)},
                       train="synthetic", grid_shape=(3, 4), chunk=(2, 2))
    assert grid.config.gridded and grid.maps is not None
    assert set(grid.summary()["region"]) == {"synthetic_tibetan_grid"}
    fig = grid.plot_maps()
    assert isinstance(fig, Figure) and len(fig.axes) >= 3  # control + one change panel per mode
    assert plt.get_fignums() == before  # nothing registered with pyplot
    back = tpflux.load(grid.save(tmp_path / "grid"))
    pd.testing.assert_frame_equal(back.summary(), grid.summary())
    xr.testing.assert_allclose(back.maps, grid.maps)
    assert isinstance(back.plot_maps(), Figure)
