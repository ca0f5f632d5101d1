"""The known-truth simulator: design, determinism, and that its fluxes carry the stated truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.constants import K_BOLTZMANN_EV, KELVIN
from data.errors import DataError
from data.seasons import assign_seasons
from data.synthetic import DEFAULT_TRUTH, SITE_DESIGN, simulate_observations, truth_table
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
    assert len(tt) == 6 and set(tt.columns) == {"flux_class", "season", "E", "lnR", "sigma", "ar1"}
    truth = sim[1]
    for row in tt.itertuples():
        assert row.E == truth["E"][row.flux_class][row.season]
        assert row.lnR == truth["lnR"][row.flux_class][row.season]
        assert row.ar1 == truth["ar1"][row.flux_class]


# ---------------------------------------------------------------- AR(1) residuals
RHO = 0.8


@pytest.fixture(scope="module")
def ar1_sim():
    """Many long daily records, so the autocorrelation is estimated to about ±0.01."""
    truth = {"ar1": {c: RHO for c in DEFAULT_TRUTH["sigma"]}}
    return simulate_observations(5, n_obs_target=None, n_sites=120, years=4, truth=truth)


def residuals(obs, truth) -> pd.DataFrame:
    """ln|F| minus its true mean under M1, i.e. σ_c times the standardised residual."""
    df = with_regression_columns(obs.table, truth["t_ref_c"])
    eff = truth["site_effects"].set_index(["site", "season"])
    key = pd.MultiIndex.from_arrays([df["site"], df["season"]])
    cell = truth_table(truth).set_index(["flux_class", "season"]).reindex(
        pd.MultiIndex.from_arrays([df["flux_class"], df["season"]]))
    slope = cell["E"].to_numpy() + eff["eps_E"].reindex(key).to_numpy()
    mean = slope * df["x"] + cell["lnR"].to_numpy() + eff["eps_R"].reindex(key).to_numpy()
    return df.assign(r=df["y"] - mean, sigma=cell["sigma"].to_numpy(), day=df["date"].dt.normalize())


def pairs_at_gap(df: pd.DataFrame, gap: int, same_season: bool = True) -> pd.DataFrame:
    """Every pair of rows of one site ``gap`` days apart (observed days only)."""
    later = df.assign(day=df["day"] - pd.Timedelta(days=gap))
    pairs = df.merge(later, on=["site", "day"], suffixes=("", "_next"))
    return pairs[(pairs["season"] == pairs["season_next"]) == same_season]


def bartlett_sd(rho: float, lag: int, n: int) -> float:
    """Sampling sd of the lag-k autocorrelation estimate of an AR(1) with n pairs (Bartlett)."""
    var = (1 + rho**2) * (1 - rho ** (2 * lag)) / (1 - rho**2) - 2 * lag * rho ** (2 * lag)
    return float(np.sqrt(var / n))


def test_ar1_zero_is_todays_output():
    base, _ = simulate_observations(9)
    zero, truth = simulate_observations(9, truth={"ar1": {c: 0.0 for c in DEFAULT_TRUTH["sigma"]}})
    pd.testing.assert_frame_equal(zero.table, base.table, check_exact=True)
    assert truth["ar1"] == DEFAULT_TRUTH["ar1"]


def test_ar1_changes_fluxes_only():
    base, _ = simulate_observations(9)
    obs, _ = simulate_observations(9, truth={"ar1": {"wetland_emission": 0.6}})
    for col in ("site", "date", "soil_temp_c"):
        pd.testing.assert_series_equal(obs.table[col], base.table[col])
    wetland = (obs.table["ecosystem"] == "wetland").to_numpy()
    assert not np.allclose(obs.table["flux"][wetland], base.table["flux"][wetland])
    np.testing.assert_array_equal(obs.table["flux"][~wetland], base.table["flux"][~wetland])


@pytest.mark.parametrize("lag", [1, 2])
def test_ar1_autocorrelation_is_rho_to_the_gap(ar1_sim, lag):
    """Days ``lag`` apart correlate ρ^lag within a site's season series, across years too."""
    df = residuals(*ar1_sim)
    df = df[df["method"] == "eddy_covariance"]
    pairs = pairs_at_gap(df, lag)
    corr = np.corrcoef(pairs["r"], pairs["r_next"])[0, 1]
    assert len(pairs) > 5000
    assert abs(corr - RHO**lag) < 4 * bartlett_sd(RHO, lag, len(pairs)), corr


def test_ar1_decays_with_the_gap_between_sparse_visits(ar1_sim):
    """Static chambers are visited every 5–33 days: successive residuals correlate ρ^Δ. For a
    standard bivariate normal pair with correlation c the product has mean c and variance 1 + c²."""
    df = residuals(*ar1_sim)
    df = df[df["method"] == "static_chamber"].sort_values(["site", "day"])
    nxt = df.groupby(["site", "season"])[["r", "day"]].shift(-1)
    ok = nxt["r"].notna()
    gap = (nxt.loc[ok, "day"] - df.loc[ok, "day"]).dt.days.to_numpy()
    product = (df.loc[ok, "r"] * nxt.loc[ok, "r"] / df.loc[ok, "sigma"] ** 2).to_numpy()
    c = RHO**gap
    se = np.sqrt(np.mean(1 + c**2) / len(c))
    assert len(c) > 1000 and gap.min() >= 5
    assert abs(np.mean(product - c)) < 5 * se, (np.mean(product), np.mean(c))


def test_ar1_series_restart_at_each_season(ar1_sim):
    # 30 Sep → 1 Oct (and 30 Apr → 1 May) belong to different groups: independent residuals
    pairs = pairs_at_gap(residuals(*ar1_sim), 1, same_season=False)
    corr = np.corrcoef(pairs["r"], pairs["r_next"])[0, 1]
    assert len(pairs) > 200
    assert abs(corr) < 4 / np.sqrt(len(pairs)), corr


def test_ar1_keeps_the_marginal_sd(ar1_sim):
    df = residuals(*ar1_sim)
    for cls, g in df.groupby("flux_class"):
        # variance of a sample variance of an AR(1): 2σ⁴(1 + ρ²)/(1 − ρ²)/n (conservative here:
        # the rows are many separate series)
        rel_sd = 0.5 * np.sqrt(2 * (1 + RHO**2) / (1 - RHO**2) / len(g))
        assert g["r"].std() == pytest.approx(ar1_sim[1]["sigma"][cls], rel=4 * rel_sd), cls


def test_bad_ar1_is_refused():
    for bad in (-0.1, 1.0):
        with pytest.raises(DataError, match="ar1"):
            simulate_observations(0, truth={"ar1": {"wetland_emission": bad}})


# ---------------------------------------------------------------- size options
@pytest.fixture(scope="module")
def big():
    return simulate_observations(2, n_obs_target=None, n_sites=250, years=4)


def test_n_sites_cycles_the_design(big):
    obs, truth = big
    sites = truth["sites"]
    assert len(sites) == 250 and sites["site"].is_unique
    assert sites["site"].str.fullmatch(r"SYN-(EC|AC|SC)\d{3}").all()
    assert obs.table["site"].nunique() == 250
    design = pd.DataFrame(SITE_DESIGN, columns=["site", "method", "flux_class", "span"])
    cycled = design.iloc[np.arange(250) % len(design)]
    np.testing.assert_array_equal(sites["method"], cycled["method"])
    np.testing.assert_array_equal(sites["flux_class"], cycled["flux_class"])
    assert len(truth["site_effects"]) == 2 * 250
    got = flux_class(obs.table).groupby(obs.table["site"]).unique()
    want = sites.set_index("site")["flux_class"]
    assert all(list(got[s]) == [want[s]] for s in want.index)


def test_years_scales_the_continuous_spans(big):
    """Every record span is the design's × years / (mean design span), here 4 / 2.5."""
    obs, truth = big
    design_spans = np.array([y for *_, y in SITE_DESIGN if y is not None])
    sites = truth["sites"]
    continuous = sites["method"] != "static_chamber"
    # the cycled design: site i has the span of design entry i mod 27
    design = pd.DataFrame(SITE_DESIGN, columns=["site", "method", "flux_class", "span"])
    cycled = design["span"].to_numpy()[np.arange(len(sites)) % len(design)][continuous]
    want = cycled * 4.0 / design_spans.mean()
    np.testing.assert_allclose(sites.loc[continuous, "span_years"], want)
    assert truth["site_years"] == pytest.approx(want.sum())
    daily = obs.table[obs.table["method"] != "static_chamber"]
    span = daily.groupby("site")["date"].agg(lambda d: (d.max() - d.min()).days + 1) / 365.25
    got = span.reindex(sites.loc[continuous, "site"]).to_numpy()
    # gaps can only trim a record's ends: rarely by more than a winter gap block or two
    assert np.all(got <= want + 1 / 365) and np.all(got > want - 0.25)
    assert np.mean(want - got) < 0.05


def continuous_share(obs, truth) -> float:
    """Observed share of the days of the continuous records."""
    continuous = truth["sites"].dropna(subset=["span_years"])
    days = ((continuous["last"] - continuous["first"]).dt.days + 1).sum()
    return float((obs.table["method"] != "static_chamber").sum() / days)


def test_no_target_keeps_the_default_share_of_days(big):
    """Without a row target the gap model keeps about the share 6,500 rows keep by default."""
    obs, truth = big
    default = simulate_observations(2)
    share, default_share = continuous_share(obs, truth), continuous_share(*default)
    assert share == pytest.approx(default_share, abs=0.03)
    # fewer days outside the growing season, as with a target
    daily = obs.table[obs.table["method"] != "static_chamber"]
    season = assign_seasons(daily, "julian").astype(str)
    assert (season == "growing").mean() > 153 / 365 + 0.02


def test_default_design_with_no_target_keeps_about_6500_rows():
    obs, _ = simulate_observations(4, n_obs_target=None)
    assert len(obs.table) == pytest.approx(6500, rel=0.05)
    assert obs.table["site"].nunique() == len(SITE_DESIGN)


def test_fewer_sites_take_the_first_of_the_design():
    obs, truth = simulate_observations(1, n_sites=25)
    assert truth["sites"]["site"].tolist() == [name for name, *_ in SITE_DESIGN[:25]]
    assert len(obs.table) == 6500


def test_explicit_default_size_is_the_default():
    a, _ = simulate_observations(6)
    b, _ = simulate_observations(6, n_sites=len(SITE_DESIGN), years=None)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)


def test_bad_sizes_are_refused():
    for kwargs in ({"n_sites": 0}, {"n_sites": 2.5}, {"years": 0}, {"years": -1.0}):
        with pytest.raises(DataError, match="n_sites|years"):
            simulate_observations(0, **kwargs)
    with pytest.raises(DataError, match="None"):
        simulate_observations(0, n_sites=250)  # 6,500 rows cannot cover 250 sites


def test_site_spread_can_differ_between_flux_classes():
    """``tau_E``/``tau_R`` as dicts give each class its own site spread (others keep the default);
    an unknown class is refused."""
    obs, truth = simulate_observations(3, n_sites=270, n_obs_target=None, truth={
        "tau_E": {"wetland_emission": 0.05, "grassland_uptake": 0.6},
        "tau_R": {"grassland_emission": 1.5}})
    assert truth["tau_E"] == {"wetland_emission": 0.05, "grassland_emission": 0.2,
                              "grassland_uptake": 0.6}
    sd = truth["site_effects"].groupby("flux_class")[["eps_E", "eps_R"]].std()
    assert sd.loc["wetland_emission", "eps_E"] == pytest.approx(0.05, rel=0.2)
    assert sd.loc["grassland_uptake", "eps_E"] == pytest.approx(0.6, rel=0.2)
    assert sd.loc["grassland_emission", "eps_E"] == pytest.approx(0.2, rel=0.25)
    assert sd.loc["grassland_emission", "eps_R"] == pytest.approx(1.5, rel=0.25)
    assert sd.loc["wetland_emission", "eps_R"] == pytest.approx(0.5, rel=0.25)
    with pytest.raises(DataError, match="unknown flux class"):
        simulate_observations(3, truth={"tau_E": {"peatland_emission": 0.1}})
