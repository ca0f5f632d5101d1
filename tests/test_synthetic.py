"""The known-truth simulator: design, determinism, and that its fluxes carry the stated truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.constants import K_BOLTZMANN_EV, KELVIN
from data.errors import DataError
from data.seasons import assign_seasons
from data.synthetic import DEFAULT_TRUTH, simulate_observations, truth_table
from data.table import flux_class, validate_observations


@pytest.fixture(scope="module")
def sim():
    return simulate_observations(seed=11)


def with_regression_columns(table: pd.DataFrame, t_ref_c: float) -> pd.DataFrame:
    # M1's x written out here, so the check does not reuse the simulator's own function
    x = 1 / (K_BOLTZMANN_EV * (t_ref_c + KELVIN)) - 1 / (K_BOLTZMANN_EV * (table["soil_temp_c"] + KELVIN))
    return table.assign(season=assign_seasons(table, "julian").astype(str),
                        flux_class=flux_class(table), x=x, y=np.log(np.abs(table["flux"])))


def within_site_fit(g: pd.DataFrame):
    """Pooled slope of y on x after removing each site's means (site intercepts drop out)."""
    xd = g["x"] - g.groupby("site")["x"].transform("mean")
    yd = g["y"] - g.groupby("site")["y"].transform("mean")
    sxx_site = (xd**2).groupby(g["site"]).sum()
    slope = (xd * yd).sum() / (xd**2).sum()
    return slope, sxx_site


# ---------------------------------------------------------------- design
def test_same_seed_same_table_and_truth():
    a, ta = simulate_observations(3)
    b, tb = simulate_observations(3)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(ta["site_effects"], tb["site_effects"])


def test_different_seed_different_table():
    a, _ = simulate_observations(3)
    b, _ = simulate_observations(4)
    assert not np.allclose(a.table["flux"].to_numpy()[:100], b.table["flux"].to_numpy()[:100])
    assert not a.table["date"].equals(b.table["date"])


def test_count_methods_and_labels(sim):
    obs, truth = sim
    table = obs.table
    assert obs.synthetic is True
    assert abs(len(table) - 6500) <= 0.15 * 6500
    per_method = table.groupby("method")["site"].nunique().to_dict()
    assert per_method == {"eddy_covariance": 8, "autochamber": 2, "static_chamber": 17}
    assert table["site"].str.startswith("SYN-").all()
    assert set(table["ecosystem"]) == {"wetland", "grassland"}
    pd.testing.assert_frame_equal(validate_observations(table), table)
    lat, lon = table["latitude"], table["longitude"]
    assert lat.between(30, 38).all() and lon.between(90, 103).all()


def test_n_obs_target_is_met_and_infeasible_targets_refused():
    obs, _ = simulate_observations(5, n_obs_target=3000)
    assert len(obs.table) == 3000
    with pytest.raises(DataError, match="n_obs_target"):
        simulate_observations(5, n_obs_target=100_000)


def test_continuous_records_make_25_site_years(sim):
    table, truth = sim[0].table, sim[1]
    daily = table[table["method"] != "static_chamber"]
    span = daily.groupby("site")["date"].agg(lambda d: (d.max() - d.min()).days + 1)
    # gaps can trim a few days at either end of a record
    assert 24.5 <= span.sum() / 365.25 <= 25.0 + 1e-9
    assert truth["site_years"] == pytest.approx(25.0)


def test_static_chambers_are_sparse_and_continuous_records_daily(sim):
    table = sim[0].table
    gaps = table.groupby("site")["date"].diff().dt.days
    median_gap = gaps.groupby(table["site"]).median()
    method = table.groupby("site")["method"].first()
    assert (median_gap[method == "static_chamber"] >= 7).all()
    assert (median_gap[method != "static_chamber"] == 1).all()
    assert (table.loc[table["method"] == "static_chamber", "days"] == 1).all()


def test_every_site_has_both_seasons_and_sub_zero_winters(sim):
    table = sim[0].table
    seasons = assign_seasons(table, "julian")
    assert (pd.crosstab(table["site"], seasons) > 0).all().all()
    winter = table[table["date"].dt.month.isin([12, 1, 2])]
    assert (winter.groupby("site")["soil_temp_c"].min() < 0).all()
    assert winter["site"].nunique() == 27
    summer = table[table["date"].dt.month.isin([7, 8])]
    assert summer.groupby("site")["soil_temp_c"].mean().between(6, 17).all()


def test_flux_sign_follows_the_site_class(sim):
    table, truth = sim
    got = flux_class(table.table).groupby(table.table["site"]).unique()
    want = truth["sites"].set_index("site")["flux_class"]
    assert all(list(got[s]) == [want[s]] for s in want.index)


# ---------------------------------------------------------------- truth recovery
def test_ols_recovers_class_season_E(sim):
    """Within-site OLS slope = E_cs + Σ w_i ε_E[i,s] + noise, so its standard error is
    sqrt(σ_c²/Sxx + τ_E² Σ w_i²), w_i = Sxx_i / Sxx: allow four of them."""
    obs, truth = sim
    df = with_regression_columns(obs.table, truth["t_ref_c"])
    for (cls, season), g in df.groupby(["flux_class", "season"]):
        slope, sxx_site = within_site_fit(g)
        w = sxx_site / sxx_site.sum()
        se = np.sqrt(truth["sigma"][cls] ** 2 / sxx_site.sum() + truth["tau_E"] ** 2 * (w**2).sum())
        assert se < 0.2  # the test is informative about E, not vacuous
        assert abs(slope - truth["E"][cls][season]) < 4 * se, (cls, season, slope)


def test_per_site_slopes_and_noise_match_truth(sim):
    """Each site × season slope estimates E_cs + ε_E[i,s] with se σ_c/√Sxx_i; the squared
    z-scores must average ≈ 1, and the residual sd must match σ_c."""
    obs, truth = sim
    df = with_regression_columns(obs.table, truth["t_ref_c"])
    eps = truth["site_effects"].set_index(["site", "season"])["eps_E"]
    z2, resid = [], {c: [] for c in truth["sigma"]}
    for (site, season), g in df.groupby(["site", "season"]):
        cls = g["flux_class"].iloc[0]
        xd, yd = g["x"] - g["x"].mean(), g["y"] - g["y"].mean()
        slope = (xd * yd).sum() / (xd**2).sum()
        resid[cls].append(yd - slope * xd)
        if len(g) >= 10:
            se = truth["sigma"][cls] / np.sqrt((xd**2).sum())
            z2.append(((slope - truth["E"][cls][season] - eps[(site, season)]) / se) ** 2)
    # mean of N χ²₁ variables: sd √(2/N) ≈ 0.2 here; ±3 sd
    assert len(z2) >= 40
    assert abs(np.mean(z2) - 1) < 3 * np.sqrt(2 / len(z2))
    for cls, parts in resid.items():
        r = pd.concat(parts)
        dof = len(r) - 2 * len(parts)
        sd = np.sqrt((r**2).sum() / dof)
        assert sd == pytest.approx(truth["sigma"][cls], rel=4 / np.sqrt(2 * dof))


def test_truth_override_changes_fluxes_only():
    base, _ = simulate_observations(7)
    new_truth = {"E": {"wetland_emission": {"growing": 0.2}}, "sigma": {"wetland_emission": 0.3}}
    obs, truth = simulate_observations(7, truth=new_truth)
    assert truth["E"]["wetland_emission"]["growing"] == 0.2
    default = DEFAULT_TRUTH["E"]["wetland_emission"]["non-growing"]
    assert truth["E"]["wetland_emission"]["non-growing"] == default
    # common random numbers: same sites, days and temperatures
    for col in ("site", "date", "soil_temp_c"):
        pd.testing.assert_series_equal(obs.table[col], base.table[col])
    df = with_regression_columns(obs.table, truth["t_ref_c"])
    g = df[(df["flux_class"] == "wetland_emission") & (df["season"] == "growing")]
    slope, sxx_site = within_site_fit(g)
    w = sxx_site / sxx_site.sum()
    se = np.sqrt(0.3**2 / sxx_site.sum() + truth["tau_E"] ** 2 * (w**2).sum())
    assert abs(slope - 0.2) < 4 * se
    old = with_regression_columns(base.table, truth["t_ref_c"])
    gone = old[(old["flux_class"] == "wetland_emission") & (old["season"] == "growing")]
    assert abs(within_site_fit(gone)[0] - 0.2) > 4 * se  # the default E (0.7) is distinguishable


def test_bad_truth_is_refused():
    with pytest.raises(DataError, match="unknown truth parameter"):
        simulate_observations(0, truth={"Ea": 1.0})
    with pytest.raises(DataError, match="unknown flux class"):
        simulate_observations(0, truth={"E": {"peatland_emission": {"growing": 1.0}}})


def test_truth_table_is_tidy(sim):
    tt = truth_table(sim[1])
    assert len(tt) == 6 and set(tt.columns) == {"flux_class", "season", "E", "lnR", "sigma"}
    truth = sim[1]
    for row in tt.itertuples():
        assert row.E == truth["E"][row.flux_class][row.season]
        assert row.lnR == truth["lnR"][row.flux_class][row.season]
