"""What a projection refuses to claim: annual totals from short records, RF-direct totals of
forests without cross-site skill, a P_increase with two meanings, sign disagreements unreported,
change figures without intervals."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from models import scenarios as sc
from models.forest import ForestSpec, fit_class_forests, with_flux_class
from tests.helpers import make_sites

SMALL = ForestSpec(n_trees=12, min_samples_leaf=3, n_jobs=1, min_rows=30)
JULIAN = ("growing", "non-growing")
# 10 nmol m-2 s-1 in g CH4 m-2 d-1: 10 × 86 400 s × 16.04246e-9 g nmol-1
G_PER_DAY_AT_10 = 0.01386068544


def e_draws(classes, E, n_draws):
    values = np.broadcast_to(np.asarray(E, dtype=float), (n_draws, len(classes), len(JULIAN))).copy()
    return sc.EDraws(values, tuple(classes), JULIAN, "julian")


def summer_only(table: pd.DataFrame, site: str, n_days: int = 42, start: str = "2015-07-01"):
    """Keep only ``n_days`` summer days of ``site``."""
    keep = (table["site"] != site) | table["date"].between(
        pd.Timestamp(start), pd.Timestamp(start) + pd.Timedelta(days=n_days - 1))
    return table[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def constant_sites():
    """Two wetland sites at 10 nmol m-2 s-1 every day: W1 a full year, W2 a 42-day summer."""
    table = with_flux_class(make_sites(n_days=365, sites=(("W1", "wetland"), ("W2", "wetland")))
                            .assign(flux=10.0))
    forests, _ = fit_class_forests(table, SMALL, seed=0)
    return summer_only(table, "W2"), forests


# ---------------------------------------------------------------- complete years only
def test_a_summer_only_site_gets_no_annual_total(constant_sites):
    table, forests = constant_sites
    result = sc.project_sites(sc.Engine(forests, (0.0, 1.0), ("rf",), 5), table)
    annual = result["total"].sel(mode="rf", flux_class="wetland_emission", period="annual")
    # the full year: 365.25 days at the constant rate; the summer: nothing, never 42 days × 365/42
    np.testing.assert_allclose(annual.sel(site="W1"), G_PER_DAY_AT_10 * 365.25, rtol=1e-12)
    assert annual.sel(site="W2").isnull().all()
    assert not bool(result["complete"].sel(site="W2", period="annual"))
    assert not bool(result["complete"].sel(site="W2", period="growing"))  # 42 + reach of 153 days
    assert float(result["coverage"].sel(site="W2", period="annual")) == 0.0  # no winter day
    assert int(result["n_days"].sel(flux_class="wetland_emission", period="annual", site="W2")) == 42
    # the mean over sites averages W1 alone
    means = sc.site_means(result).sel(mode="rf", flux_class="wetland_emission", period="annual")
    np.testing.assert_allclose(means.sel(scenario_c=0.0), G_PER_DAY_AT_10 * 365.25, rtol=1e-12)


def test_the_summary_keeps_withheld_rows_saying_why_and_on_how_many_days(constant_sites):
    from tpflux.projection import honest, site_summary

    table, forests = constant_sites
    result = sc.project_sites(sc.Engine(forests, (0.0, 1.0), ("rf",), 5), table)
    summary = honest(site_summary(result), {}, tuple(forests), False)
    row = summary[(summary["site"] == "W2") & (summary["period"] == "annual")]
    assert set(row["flux_class"]) == {"wetland_emission", "wetland_net"}
    assert len(row) == 4 and (row["withheld"] == "incomplete_record").all()
    assert row["total"].isna().all() and (row["n_days"] == 42).all() and not row["complete"].any()
    mean = summary[(summary["site"] == "all_sites_mean") & (summary["period"] == "annual")
                   & (summary["flux_class"] == "wetland_emission")]
    assert (mean["n_sites"] == 1).all() and (mean["n_days"] == 365).all()
    assert (mean["withheld"] == "no").all()
    lines = sc.caveats(summary)
    assert any("Annual totals withheld for 1 of 2 sites" in line and "W2 (0 %)" in line for line in lines)


def test_the_climatological_fill_matches_a_hand_computed_year():
    """Growing days at 10, non-growing at 2; a tenth of each season missing (never more than 3
    days in a row), one day observed in two years: the annual total is each season's length ×
    its mean observed day, whatever is missing."""
    dates = pd.date_range("2015-01-01", "2016-01-31", freq="D")
    table = pd.DataFrame({"date": dates, "latitude": 33.0, "days": 1})
    table = table[(np.arange(len(table)) % 10) != 3].reset_index(drop=True)  # 10 % gaps
    growing = table["date"].dt.month.between(5, 9).to_numpy()
    flux = np.where(growing, 10.0, 2.0)
    flux[table["date"].dt.year.to_numpy() == 2016] = 4.0  # January seen twice: 2 and 4 average 3
    clim = sc.climatology(table, np.zeros(len(table), dtype=int), 1)
    assert clim.complete.all()
    months = pd.DatetimeIndex(table["date"]).month
    jan = months == 1
    non_growing_days = 365 - 153
    # non-growing mean observed day of year: January slots average (2 + 4) / 2 = 3 where both
    # years saw them, the other non-growing slots are 2
    slot = sc.doy_slot(table["date"])
    per_slot = pd.Series(flux).groupby(slot).mean()
    slot_season = sc.slot_seasons(33.0)
    ng = per_slot[[slot_season[s] == "non-growing" for s in per_slot.index]]
    expected = (153 * 10.0 + non_growing_days * ng.mean()) * 365.25 / 365
    assert np.dot(clim.day_weight, flux) == pytest.approx(expected, rel=1e-12)
    assert jan.any() and 2.0 < ng.mean() < 3.0


def test_weekly_visits_cover_their_season_but_a_summer_campaign_does_not():
    dates = pd.date_range("2015-01-01", "2015-12-31", freq="7D")
    table = pd.DataFrame({"date": dates, "latitude": -20.0, "days": 1})  # southern hemisphere
    clim = sc.climatology(table, np.zeros(len(table), dtype=int), 1)
    assert clim.complete.all()
    # a weekly row stands for a week: the weights of a complete year sum to 365.25 days
    assert clim.day_weight.sum() == pytest.approx(365.25, rel=1e-12)
    summer = table[table["date"].dt.month.isin([12, 1, 2])]  # the southern growing season only
    clim = sc.climatology(summer.reset_index(drop=True), np.zeros(len(summer), dtype=int), 1)
    growing = sc.PERIODS.index("growing")
    assert not clim.complete[0, sc.PERIODS.index("annual")] and not clim.complete[0, growing]


def test_a_cube_shorter_than_a_year_has_its_annual_totals_withheld():
    coverage, complete = sc.grid_coverage(pd.date_range("2015-01-01", periods=365, freq="D"), [30.0])
    assert complete.all() and np.allclose(coverage, 1.0)
    coverage, complete = sc.grid_coverage(pd.date_range("2015-06-01", periods=100, freq="D"),
                                          [30.0, 31.0])
    named = dict(zip(sc.PERIODS, complete))
    assert not named["annual"] and not named["non-growing"] and not named["spring_thaw"]
    # Jun–Sep is 100 of May–Sep's 153 days (+ reach): still under 80 %
    assert not named["growing"]


# ---------------------------------------------------------------- P_increase: one meaning
def test_p_increase_is_the_signed_probability_in_class_and_net_rows():
    from tpflux.projection import site_summary

    table = with_flux_class(make_sites(n_days=365))
    forests, _ = fit_class_forests(table, SMALL, seed=0)
    # uptake strengthens with warming (E > 0 on a negative flux), emission too
    engine = sc.Engine(forests, (0.0, 1.0, 2.0), sc.MODES, 12, e_draws(sorted(forests), [0.4, 0.9], 12))
    result = sc.project_sites(engine, table)
    summary = site_summary(result)
    draws = result["total"]
    for label in ("grassland_uptake", "grassland_net", "wetland_emission", "wetland_net"):
        site = "G1" if label.startswith("grassland") else "W1"
        for mode in sc.MODES:
            d = draws.sel(flux_class=label, period="annual", site=site, mode=mode)
            expected = float((d.sel(scenario_c=2.0) > d.sel(scenario_c=0.0)).mean())
            row = summary[(summary["flux_class"] == label) & (summary["site"] == site)
                          & (summary["mode"] == mode) & (summary["period"] == "annual")
                          & (summary["scenario_c"] == 2.0)]
            assert float(row["P_increase"].iloc[0]) == pytest.approx(expected)
    # with E > 0 the uptake grows stronger: the signed total falls in every draw
    up = summary[(summary["flux_class"] == "grassland_uptake") & (summary["mode"] == "arrhenius")
                 & (summary["scenario_c"] == 2.0) & (summary["site"] == "G1")]
    assert (up["P_increase"] == 0.0).all() and (up["change_vs_control"] < 0).all()
    assert (up["change_pct"] < 0).all()  # signed like the change, also for a negative total


# ---------------------------------------------------------------- forest skill
def _rows(modes=("rf", "arrhenius"), labels=("wetland_emission", "grassland_uptake",
                                              "grassland_emission", "grassland_net", "wetland_net")):
    keys = pd.MultiIndex.from_product([[0.0, 1.0], modes, labels, ["annual"], ["S"]],
                                      names=["scenario_c", "mode", "flux_class", "period", "site"])
    frame = keys.to_frame(index=False)
    for col in sc.SUMMARY_STATS:
        frame[col] = 1.0
    return frame.assign(complete=True)


def test_rf_totals_of_a_class_without_skill_are_withheld_unless_allowed():
    skill = {"wetland_emission": -0.3, "grassland_uptake": 0.2, "grassland_emission": 0.0}
    classes = ("grassland_emission", "grassland_uptake", "wetland_emission")
    out = sc.withhold(_rows(), skill, classes).set_index(["mode", "flux_class", "scenario_c"])
    rf = out.loc["rf"]
    for label in ("wetland_emission", "grassland_emission", "grassland_net", "wetland_net"):
        # NSE ≤ 0 (0 included); a net with one skill-less member is skill-less too
        assert (rf.loc[label, "withheld"] == "no_skill").all() and rf.loc[label, "total"].isna().all()
    assert (rf.loc["grassland_uptake", "withheld"] == "no").all()
    assert rf.loc["grassland_net", "forest_skill"].iloc[0] == 0.0  # lowest of its classes
    ar = out.loc["arrhenius"]
    assert (ar["withheld"] == "no").all() and ar["total"].notna().all()
    assert ar.loc["wetland_emission", "forest_skill"].iloc[0] == -0.3
    assert ar.loc["wetland_emission", "no_skill"].all()
    kept = sc.withhold(_rows(), skill, classes, allow_no_skill=True).set_index(["mode", "flux_class"])
    assert (kept["withheld"] == "no").all() and kept["total"].notna().all()
    assert kept.loc[("rf", "wetland_emission"), "no_skill"].all()
    assert not kept.loc[("rf", "grassland_uptake"), "no_skill"].any()
    # unknown skill (not computed) withholds nothing
    assert (sc.withhold(_rows(), {}, classes)["withheld"] == "no").all()


def test_a_noise_forest_is_announced_and_its_rf_totals_withheld_end_to_end(tmp_path):
    """Wetland flux that no driver explains: its leave-one-site-out NSE is ≤ 0."""
    from tpflux.projection import project

    table = make_sites(n_days=365, sites=(("W1", "wetland"), ("W2", "wetland"), ("W3", "wetland"),
                                          ("W4", "wetland")), seed=4)
    table["flux"] = 10.0 + np.random.default_rng(1).normal(0, 1.0, len(table)) \
        + 5.0 * (table["site"] == "W2")  # sites differ, drivers say nothing
    said = []
    common = dict(data=table, mode="rf", scenarios=(0, 1), n_draws=8, n_trees=8, cv_trees=8,
                  n_jobs=1, seed=2)
    import inference.runio as runio

    monkey = pytest.MonkeyPatch()
    monkey.setattr(runio, "progress", said.append)
    try:
        proj = project(None, **common)
    finally:
        monkey.undo()
    nse = proj.skill.query("held_out == 'pooled'").set_index("flux_class")["nse"]
    assert nse["wetland_emission"] <= 0
    summary = proj.summary()
    rf = summary[summary["flux_class"] == "wetland_emission"]
    assert (rf["withheld"].str.contains("no_skill")).all() and rf["total"].isna().all()
    first = next(k for k, line in enumerate(said) if "NO CROSS-SITE SKILL" in line)
    assert first < next(k for k, line in enumerate(said) if line.startswith("projecting"))
    assert proj.result_text().startswith("NO CROSS-SITE SKILL")
    allowed = project(None, **common, allow_no_skill=True, progress=False).summary()
    rf = allowed[(allowed["flux_class"] == "wetland_emission") & (allowed["withheld"] == "no")]
    assert len(rf) and rf["total"].notna().all() and rf["no_skill"].all()


# ---------------------------------------------------------------- sign disagreement
def test_sign_disagreement_of_the_two_modes_is_flagged_with_its_strength():
    rng = np.random.default_rng(0)
    n = 400
    control = np.full(n, 10.0)

    def warm(mean, sd):
        return control + rng.normal(mean, sd, n)

    # per label: (rf change, arrhenius change)
    cases = {"wetland_emission": ((2.0, 0.3), (-2.0, 0.3)),     # intervals on opposite sides
             "grassland_uptake": ((0.5, 1.0), (-0.5, 1.0)),     # means only
             "grassland_emission": ((1.0, 0.2), (1.5, 0.2))}    # agree
    labels = list(cases)
    values = np.empty((2, 2, len(labels), 1, 1, n))
    for j, label in enumerate(labels):
        for m, spec in enumerate(cases[label]):
            values[0, m, j, 0, 0] = control
            values[1, m, j, 0, 0] = warm(*spec)
    draws = xr.DataArray(values, dims=("scenario_c", "mode", "flux_class", "period", "site", "draw"),
                         coords={"scenario_c": [0.0, 1.0], "mode": ["rf", "arrhenius"],
                                 "flux_class": labels, "period": ["annual"], "site": ["all_sites_mean"]})
    out = sc.flag_sign_disagreement(sc.summarise(draws, "g", "site"), "site")
    got = out[out["scenario_c"] == 1.0].groupby("flux_class")["sign_disagreement"].agg(set)
    assert got["wetland_emission"] == {"intervals"}
    assert got["grassland_uptake"] == {"means"}
    assert got["grassland_emission"] == {"none"}
    assert out.loc[out["scenario_c"] == 0.0, "sign_disagreement"].isna().all()
    out = sc.withhold(out.assign(complete=True), {}, labels)
    lines = [line for line in sc.caveats(out) if line.startswith("SIGN DISAGREEMENT")]
    assert len(lines) == 2
    assert any("wetland_emission" in line and "+1 °C (intervals)" in line for line in lines)
    assert any("grassland_uptake" in line and "(means)" in line for line in lines)
    # one mode alone: nothing to compare
    single = sc.flag_sign_disagreement(sc.summarise(draws.sel(mode=["rf"]), "g", "site"), "site")
    assert single["sign_disagreement"].isna().all()


# ---------------------------------------------------------------- figures
def test_change_figures_draw_intervals_in_few_panels_with_units(constant_sites):
    from matplotlib.collections import PolyCollection

    from reports.projection_figures import change_figure, period_change_figure, totals_figure
    from tpflux.projection import honest, site_summary

    table = with_flux_class(make_sites(n_days=365))
    forests, _ = fit_class_forests(table, SMALL, seed=0)
    engine = sc.Engine(forests, (0.0, 1.0, 2.0), sc.MODES, 12, e_draws(sorted(forests), [0.4, 0.9], 12))
    summary = honest(site_summary(sc.project_sites(engine, table)),
                     {"wetland_emission": -0.1, "grassland_uptake": 0.3, "grassland_emission": 0.2},
                     engine.classes, False)
    labels = summary["flux_class"].nunique()
    for make in (totals_figure, change_figure):
        fig = make(summary)
        panels = [ax for ax in fig.axes if ax.get_visible()]
        assert len(panels) == labels  # one panel per class or net, not class × period × mode
        for ax in panels:
            assert "g CH₄ m⁻² yr⁻¹" in ax.get_ylabel() and "°C" in ax.get_xlabel()
        bands = {ax.get_title(): sum(isinstance(c, PolyCollection) for c in ax.collections)
                 for ax in panels}
        # both modes where both are given; the wetland RF-direct rows are withheld
        assert bands["grassland uptake (n = 1 sites)"] == 2
        assert bands["wetland emission (n = 3 sites)"] == 1
        wetland = next(ax for ax in panels if ax.get_title().startswith("wetland emission"))
        assert any("RF-direct withheld" in t.get_text() for t in wetland.texts)
    fig = period_change_figure(summary)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == labels
    assert all(ax.containers for ax in panels)  # error bars: the paired-change intervals
    assert all("°C" in ax.get_ylabel() and "g CH₄" in ax.get_ylabel() for ax in panels)


# ---------------------------------------------------------------- command line and report
def test_cli_allow_no_skill_reaches_the_config_and_help_names_it(tmp_path, capsys):
    import json

    from inference import project

    assert "--allow-no-skill" in project.parser().format_help()
    out = tmp_path / "run"
    assert project.main(["--dataset", "synthetic", "--mode", "rf", "--scenarios", "0,1",
                         "--n-trees", "6", "--n-draws", "6", "--cv-trees", "0", "--n-jobs", "1",
                         "--allow-no-skill", "--out", str(out)]) == 0
    tree = xr.open_datatree(out / "projection.nc", engine="h5netcdf")
    assert json.loads(tree.attrs["tpflux_config"])["allow_no_skill"] is True
    summary = pd.read_csv(out / "projection_summary.csv")
    for col in ("n_days", "n_sites", "coverage", "complete", "withheld", "forest_skill", "no_skill",
                "sign_disagreement", "change_ci_low", "change_ci_high"):
        assert col in summary.columns, col


def test_the_report_states_the_caveats_before_the_numbers(tmp_path):
    import tpflux
    from tpflux.projection import project

    table = make_sites(n_days=365, sites=(("W1", "wetland"), ("W2", "wetland"), ("W3", "wetland")),
                       seed=4)
    table["flux"] = 10.0 + np.random.default_rng(1).normal(0, 1.0, len(table))
    table = summer_only(table, "W3")
    proj = project(None, data=table, mode="rf", scenarios=(0, 1), n_draws=6, n_trees=6, cv_trees=6,
                   n_jobs=1, seed=2, progress=False)
    folder = proj.save(tmp_path / "run")
    tpflux.build_report(folder)
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert page.index("NO CROSS-SITE SKILL") < page.index("projection_summary")
    assert "Annual totals withheld for 1 of 3 sites" in page and "W3" in page
    assert "P_increase: in every row" in page


def test_a_short_driver_cube_has_its_region_totals_withheld(tmp_path):
    from data.synthetic_grid import simulate_tibetan_grid
    from tpflux.projection import project

    cube = tmp_path / "summer.nc"
    simulate_tibetan_grid(3, 4, n_days=100, seed=1).to_netcdf(cube)
    proj = project(None, drivers=cube, train="synthetic", mode="rf", scenarios=(0, 1), n_draws=6,
                   n_trees=6, cv_trees=0, n_jobs=1, progress=False)
    summary = proj.summary()
    annual = summary[summary["period"] == "annual"]
    assert (annual["withheld"] == "incomplete_record").all() and annual["total"].isna().all()
    assert not annual["complete"].any() and (annual["coverage"] < 0.8).all()
    assert any(line.startswith("Withheld: the driver cube covers less than 80 %")
               and "annual" in line for line in sc.caveats(summary))
