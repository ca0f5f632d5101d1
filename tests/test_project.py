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
from tests.test_forest import make_sites

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
    k = 8.617333e-5
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
    baseline = f.forest.predict(f.design(rows)).sum() * 86400 * 16.04e-9
    years = (table["site"] == "W2").sum() / 365.25
    for mode in sc.MODES:
        draws = result["total"].sel(scenario_c=0.0, mode=mode, flux_class="wetland_emission",
                                    period="annual", site="W2")
        assert float(draws.mean()) == pytest.approx(baseline / years, rel=1e-10)
    # draw d is tree d: the spread is the forest's own
    per_tree = np.array([t.predict(f.design(rows).astype(np.float32)).sum() for t in f.forest.estimators_])
    np.testing.assert_allclose(result["total"].sel(scenario_c=0.0, mode="rf", flux_class="wetland_emission",
                                                   period="annual", site="W2").values,
                               per_tree * 86400 * 16.04e-9 / years, rtol=1e-10)


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
    # 10 nmol m-2 s-1 × 86 400 s d-1 = 8.64e5 nmol m-2 d-1 = 8.64e-4 mol × 16.04 g mol-1
    # = 0.01385856 g m-2 d-1; 365 observed days = 365/365.25 years → × 365.25 = 5.06184 g m-2 yr-1
    annual = result["total"].sel(scenario_c=0.0, mode="rf", flux_class="wetland_emission",
                                 period="annual", site="W1")
    np.testing.assert_allclose(annual.values, 0.01385856 * 365.25, rtol=1e-12)
    assert 0.01385856 * 365.25 == pytest.approx(5.06184, abs=1e-5)
    parts = result["total"].sel(scenario_c=0.0, mode="rf", site="W1", flux_class="wetland_emission")
    np.testing.assert_allclose(parts.sel(period="growing") + parts.sel(period="non-growing"),
                               parts.sel(period="annual"), rtol=1e-12)
    # May–Sep is 153 of 365 days
    np.testing.assert_allclose(parts.sel(period="growing"), 0.01385856 * 153 * 365.25 / 365, rtol=1e-12)


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
    # 5.06184 g m-2 yr-1 × 0.1 × 1e10 m2 / 1e12 g Tg-1 = 5.06184e-3 Tg CH4 yr-1
    expected = 0.01385856 * 365.25 * 0.1 * 1.0e10 / 1.0e12
    for label in ("wetland_emission", "wetland_net", "total_net"):
        np.testing.assert_allclose(out["region_total"].sel(scenario_c=0.0, mode="rf", flux_class=label,
                                                           period="annual"), expected, rtol=1e-12)
    # one wetland cell × 365 days; at +1 °C its 100 warm days leave the training range
    assert out["n_days"].sel(flux_class="wetland_emission", period="annual") == 365
    oor = out["out_of_range"].sel(flux_class="wetland_emission", period="annual")
    assert oor.values.tolist() == [0, 100]
    # the map is per m2 of cell: 0.1 × 5.06184 where there is wetland; masked where no modelled
    # ecosystem grows
    m = out["flux_mean"].sel(scenario_c=0.0, mode="rf", flux_class="total_net", period="annual")
    np.testing.assert_allclose(m.values, [[0.01385856 * 365.25 * 0.1, np.nan]], rtol=1e-12)


def test_dask_chunked_grid_equals_the_in_memory_one(sites):
    from data.synthetic_grid import simulate_tibetan_grid

    table, _ = sites
    forests, _ = fit_class_forests(table, SMALL, drivers=("soil_temp_c", "swc", "le"), seed=0)
    engine = sc.Engine(forests, (0.0, 1.0, 2.0), sc.MODES, 8, e_draws(sorted(forests), JULIAN,
                                                                      [0.6, 1.0], n_draws=8))
    setup = sc.GridSetup(engine, sc.class_shares(table, engine.classes), ("grassland", "wetland"),
                         ("soil_temp_c", "swc", "le"))
    cube = simulate_tibetan_grid(5, 6, n_days=365, seed=2)
    cube["soil_temp_c"][1, 2, 40] = np.nan  # one land cell with a gap: skipped, counted
    whole = sc.project_grid_in_memory(setup, cube)
    chunked = sc.project_grid(setup, cube, chunk_cells=(2, 4))
    xr.testing.assert_allclose(whole, chunked, rtol=1e-12, atol=1e-15)
    assert int(chunked["cells_skipped"]) == 1
    assert np.isnan(chunked["flux_mean"].values[..., 1, 2]).all()
    assert float(np.abs(whole["region_total"]).sum()) > 0


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
    # uptake: magnitude grows in the same two draws
    assert warm.loc["grassland_uptake", "P_increase"] == pytest.approx(0.5)
    assert warm.loc["grassland_uptake", "change_vs_control"] == pytest.approx(-0.25)
    # net rows: signed (−1→−2 … is a decrease): only draw 2 (−3 → −2) increases
    assert warm.loc["grassland_net", "P_increase"] == pytest.approx(0.25)
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
    assert (summary["ci_low"] <= summary["total"] + 1e-12).all()
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
                                         "projection_maps.png"]
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
