"""Model M1: closed forms, exact marginalisation, equivalence with the per-observation model, recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from data import constants
from data.constants import K_BOLTZMANN_EV
from data.table import flux_class
from models.arrhenius import (ArrheniusConfig, arrhenius_x, build_model, build_naive_model,
                              fold_change, group_marginal_logp, prepare_data, q10)
from models.arrhenius_post import draw_site_effects, exact_draws, pooled_ols


def test_published_fold_change_0_to_30_c():
    # Yvon-Durocher et al. 2014: E = 0.96 eV gives a 57-fold (56.6) increase from 0 to 30 °C.
    assert fold_change(0.96, 0.0, 30.0) == pytest.approx(56.6, abs=0.05)


def test_q10_matches_definition_and_x_is_zero_at_reference():
    assert arrhenius_x(15.0, 15.0) == pytest.approx(0.0, abs=1e-12)
    direct = np.exp(0.65 / K_BOLTZMANN_EV * (1 / 283.15 - 1 / 293.15))
    assert q10(0.65, 10.0) == pytest.approx(direct, rel=1e-12)


def test_constants_are_the_cited_values_and_shared():
    # CODATA 2018 (exact in the SI since 2019); IUPAC standard atomic weights; GRS 80 authalic radius
    assert K_BOLTZMANN_EV == 8.617333262e-5
    assert constants.CH4_MOLAR_MASS == pytest.approx(12.0107 + 4 * 1.00794, rel=1e-15)
    assert constants.CH4_MOLAR_MASS == pytest.approx(16.04246, abs=5e-6)
    assert constants.EARTH_RADIUS_M == 6_371_007.2
    assert constants.SECONDS_PER_YEAR == 365.25 * 86_400
    # one x everywhere: the model, the simulator, the projections and the figures use these objects
    import data.synthetic
    import models.arrhenius
    import models.scenarios
    import reports.ea_figures

    for module in (models.arrhenius, data.synthetic, models.scenarios, reports.ea_figures):
        for name in ("K_BOLTZMANN_EV", "KELVIN", "arrhenius_x", "fold_change", "q10"):
            assert vars(module).get(name, getattr(constants, name)) is getattr(constants, name), (module, name)


def _small_table(rng, n_sites=6, n_per=40, E=(0.7, 1.1), tau_E=0.2, sigma=0.4, days=None):
    rows = []
    for i in range(n_sites):
        for s, (season, months) in enumerate((("growing", [6, 7]), ("non-growing", [11, 12]))):
            dates = pd.date_range(f"2020-{months[0]:02d}-01", periods=n_per, freq="D")
            t = rng.uniform(-2, 20, n_per)
            e = E[s] + rng.normal(0, tau_E)
            y = e * arrhenius_x(t) + 2.0 + rng.normal(0, 0.5) + rng.normal(0, sigma, n_per)
            rows.append(pd.DataFrame({"site": f"S{i}", "date": dates, "days": 1 if days is None else days,
                                      "flux": np.exp(y), "soil_temp_c": t, "ecosystem": "wetland",
                                      "method": "eddy_covariance", "latitude": 50.0, "longitude": 10.0,
                                      "n_sub": 1, "season": season}))
    table = pd.concat(rows, ignore_index=True)
    season = pd.Series(pd.Categorical(table.pop("season"), ["growing", "non-growing"]))
    return table, season


def test_group_marginal_logp_equals_multivariate_normal():
    rng = np.random.default_rng(3)
    n = 7
    x, w = rng.normal(size=n), rng.integers(1, 5, n).astype(float)
    y = rng.normal(size=n)
    mean_R, mean_E, var_R, var_E, sigma = 0.3, 0.8, 0.7, 0.05, 0.6
    stats_ = {"n": n, "S0": w.sum(), "Sx": (w * x).sum(), "Sy": (w * y).sum(), "Sxx": (w * x * x).sum(),
              "Sxy": (w * x * y).sum(), "Syy": (w * y * y).sum(), "Slogw": np.log(w).sum()}
    X = np.column_stack([np.ones(n), x])
    cov = sigma ** 2 * np.diag(1 / w) + X @ np.diag([var_R, var_E]) @ X.T
    expected = stats.multivariate_normal(X @ [mean_R, mean_E], cov).logpdf(y)
    got = group_marginal_logp(stats_, mean_R, mean_E, var_R, var_E, sigma)
    assert got == pytest.approx(expected, rel=1e-10)


def test_site_effect_draws_follow_the_conditional_posterior():
    rng = np.random.default_rng(4)
    table, season = _small_table(rng, n_sites=2, n_per=15)
    data = prepare_data(table, season, ArrheniusConfig(min_obs=5), flux_class(table))
    hyper = {"E": [[0.7, 1.0]], "lnR": [[2.0, 1.5]], "tau_E": [0.3, 0.3], "tau_R": [0.8, 0.8],
             "sigma": [0.5]}
    n = 20000
    post = xr.Dataset({k: (("chain", "draw", *d), np.broadcast_to(np.asarray(v), (1, n, *np.shape(v))))
                       for (k, v), d in zip(hyper.items(), [("flux_class", "season")] * 2
                                            + [("season",)] * 2 + [("flux_class",)])},
                      coords={"chain": [0], "draw": np.arange(n)})
    eff = draw_site_effects(post, data, np.random.default_rng(0))
    # Direct conjugate posterior of (a, b) for group 0 (growing season).
    o = data.obs[data.obs["group"] == 0]
    X = np.column_stack([np.ones(len(o)), o["x"]])
    prior_prec = np.diag([1 / 0.8 ** 2, 1 / 0.3 ** 2])
    prec = X.T @ X / 0.25 + prior_prec
    cov = np.linalg.inv(prec)
    mean = cov @ (X.T @ o["y"].to_numpy() / 0.25 + prior_prec @ [2.0, 0.7])
    b = 0.7 + eff["eps_E"].isel(group=0).to_numpy().ravel()
    a = 2.0 + eff["eps_R"].isel(group=0).to_numpy().ravel()
    assert np.mean(b) == pytest.approx(mean[1], abs=4 * np.sqrt(cov[1, 1] / n))
    assert np.mean(a) == pytest.approx(mean[0], abs=4 * np.sqrt(cov[0, 0] / n))
    assert np.cov(a, b) == pytest.approx(cov, rel=0.05, abs=1e-4)


def _sample(model, seed, draws=1000):
    import pymc as pm

    with model:
        return pm.sample(draws=draws, tune=1000, chains=2, random_seed=seed, progressbar=False,
                         nuts_sampler="nutpie",
                         nuts={"adaptation": "low_rank"},
                         compute_convergence_checks=False)


def test_marginal_and_per_observation_posteriors_agree():
    rng = np.random.default_rng(5)
    table, season = _small_table(rng)
    config = ArrheniusConfig(min_obs=10, residuals="iid")  # AR(1): tests/test_ar1.py
    data = prepare_data(table, season, config, flux_class(table))
    a = exact_draws(_sample(build_model(data, config), 1)["posterior"].to_dataset(), data,
                    config.priors, np.random.default_rng(0))  # class means drawn exactly
    b = _sample(build_naive_model(data, config), 2)["posterior"].to_dataset()
    for name in ("E", "lnR", "tau_E", "sigma"):
        ma, mb = a[name].mean(("chain", "draw")), b[name].mean(("chain", "draw"))
        sd = np.sqrt(a[name].var(("chain", "draw")))
        # Same posterior: means agree to well within posterior sd (Monte Carlo error ≈ sd/√ESS).
        assert float(np.abs(ma - mb).max() / sd.min()) < 0.25, name
        ratio = sd / np.sqrt(b[name].var(("chain", "draw")))
        assert float(ratio.min()) > 0.8 and float(ratio.max()) < 1.25, name


def test_pooled_ols_recovers_a_common_slope():
    rng = np.random.default_rng(6)
    table, season = _small_table(rng, tau_E=0.0, sigma=0.05, n_per=60)
    data = prepare_data(table, season, ArrheniusConfig(min_obs=10), flux_class(table))
    ols = pooled_ols(data).set_index("season")["E_pooled_ols"]
    assert ols["growing"] == pytest.approx(0.7, abs=0.05)
    assert ols["non-growing"] == pytest.approx(1.1, abs=0.05)


def test_zero_fluxes_dropped_and_small_classes_reported():
    rng = np.random.default_rng(7)
    table, season = _small_table(rng, n_sites=2, n_per=15)
    table.loc[:2, "flux"] = 0.0
    table.loc[3:5, "flux"] *= -1  # 3 uptake observations: too few for their own class
    config = ArrheniusConfig(min_obs=10, classes=("wetland_emission", "wetland_uptake"))
    data = prepare_data(table, season, config, flux_class(table))
    assert data.dropped["zero flux (log undefined)"] == 3
    assert "wetland_uptake" in data.skipped_classes
    assert data.classes == ["wetland_emission"]


def _joint_bounds(draws: xr.DataArray, n_cells: int):
    """Bonferroni-adjusted equal-tailed bounds: all n_cells cover jointly with 95 % probability."""
    alpha = 0.05 / n_cells
    q = draws.quantile([alpha / 2, 1 - alpha / 2], dim=("chain", "draw"))
    return q.isel(quantile=0), q.isel(quantile=1)


def test_recovers_the_realised_site_level_activation_energies(synthetic_sites):
    """The mean site-level E of every class × season lies inside its interval. With 6–11 sites per
    class this finite-sample quantity, not the population E_cs, is what one dataset pins down (the
    realised site effects of seed 0 shift wetland growing-season E by +0.14 eV, 2.3 of their SDs).
    Six cells are checked at once, so each interval is Bonferroni-widened to keep the joint
    coverage at 95 % (six separate 95 % intervals all cover only 74 % of the time)."""
    from inference import ea_fitting
    from models.arrhenius_post import derived_quantities

    obs, truth = synthetic_sites
    config = ArrheniusConfig()
    data = ea_fitting.prepare(obs, "julian", config)
    dt = ea_fitting.sample(data, config, chains=2, draws=500, tune=500, seed=11)
    post = exact_draws(dt["posterior"].to_dataset(), data, config.priors, np.random.default_rng(1))
    site_mean = derived_quantities(post, data)["E_site_mean"]
    lo, hi = _joint_bounds(site_mean, len(data.classes) * len(data.seasons))
    realised = truth["site_effects"].groupby(["flux_class", "season"])["eps_E"].mean()
    for cls in data.classes:
        for season in data.seasons:
            sel = {"flux_class": cls, "season": season}
            t_sites = truth["E"][cls][season] + realised[(cls, season)]
            assert float(lo.sel(sel)) < t_sites < float(hi.sel(sel)), (cls, season, t_sites)


def test_recovers_population_activation_energies_when_sites_agree():
    """With little site-to-site spread (τ_E = 0.03 eV, τ_R = 0.1) the class × season E_cs itself is
    identified by one dataset: every true E lies inside its (joint 95 %) interval."""
    from data.synthetic import simulate_observations
    from inference import ea_fitting

    obs, truth = simulate_observations(0, truth={"tau_E": 0.03, "tau_R": 0.1})
    config = ArrheniusConfig()
    data = ea_fitting.prepare(obs, "julian", config)
    dt = ea_fitting.sample(data, config, chains=2, draws=500, tune=500, seed=12)
    post = exact_draws(dt["posterior"].to_dataset(), data, config.priors, np.random.default_rng(2))
    lo, hi = _joint_bounds(post["E"], len(data.classes) * len(data.seasons))
    for cls in data.classes:
        for season in data.seasons:
            sel = {"flux_class": cls, "season": season}
            t = truth["E"][cls][season]
            assert float(lo.sel(sel)) < t < float(hi.sel(sel)), (cls, season, t)


@pytest.mark.slow
def test_interval_coverage_over_repeated_simulations():
    """95 % intervals of E cover the truth in ≈95 % of cells over repeated simulated datasets."""
    from scipy.stats import binom

    from data.synthetic import simulate_observations
    from inference import ea_fitting

    config = ArrheniusConfig()
    hits = total = 0
    for seed in range(100, 130):
        obs, truth = simulate_observations(seed)
        data = ea_fitting.prepare(obs, "julian", config)
        dt = ea_fitting.sample(data, config, chains=2, draws=400, tune=400, seed=seed)
        post = exact_draws(dt["posterior"].to_dataset(), data, config.priors,
                           np.random.default_rng(seed))
        q = post["E"].quantile([0.025, 0.975], dim=("chain", "draw"))
        for cls in data.classes:
            for season in data.seasons:
                lo, hi = q.sel(flux_class=cls, season=season).to_numpy()
                hits += lo < truth["E"][cls][season] < hi
                total += 1
    # Two-sided 99 % binomial acceptance region for a calibrated 95 % interval.
    lo_ok, hi_ok = binom.ppf([0.005, 0.995], total, 0.95)
    assert lo_ok <= hits <= hi_ok, (hits, total)


# ---------------------------------------------------------------- class means integrated out
def _random_group(rng, n, x_spread=1.0):
    x, w = rng.normal(size=n) * x_spread, rng.integers(1, 5, n).astype(float)
    y = rng.normal(size=n)
    return x, w, y, {"n": n, "S0": w.sum(), "Sx": (w * x).sum(), "Sy": (w * y).sum(),
                     "Sxx": (w * x * x).sum(), "Sxy": (w * x * y).sum(), "Syy": (w * y * y).sum(),
                     "Slogw": np.log(w).sum()}


@pytest.mark.parametrize("var_R, var_E, x_spread", [(0.7, 0.05, 1.0), (1e-9, 1e-10, 1.0),
                                                    (0.4, 0.2, 0.0)])
def test_group_quadratic_in_the_prior_mean_equals_the_group_marginal(var_R, var_E, x_spread):
    """k − ½v'Kv + v'j reproduces group_marginal_logp at any v, and with a group whose
    temperatures do not vary (singular data precision). With τ → 0 the 1/τ² terms of
    group_marginal_logp cancel catastrophically, so there the reference is the limit itself:
    the Gaussian likelihood of y at the coefficients v."""
    from models.arrhenius import group_mean_quadratic

    rng = np.random.default_rng(8)
    x, w, y, st = _random_group(rng, 9, x_spread)
    q = group_mean_quadratic(st, var_R, var_E, 0.6)
    for v in rng.normal(size=(5, 2)) * 2:
        quad = q["k"] - 0.5 * (q["K11"] * v[0] ** 2 + 2 * q["K12"] * v[0] * v[1] + q["K22"] * v[1] ** 2) \
            + q["j1"] * v[0] + q["j2"] * v[1]
        if var_E < 1e-6:
            expected = stats.norm(v[0] + v[1] * x, 0.6 / np.sqrt(w)).logpdf(y).sum()
            assert quad == pytest.approx(expected, rel=1e-6)
        else:
            assert quad == pytest.approx(group_marginal_logp(st, v[0], v[1], var_R, var_E, 0.6),
                                         rel=1e-9, abs=1e-9)


def _cell_design(rng):
    """Three groups of one class × season (one with a method offset), their stats and the dense
    model: y = X(m + u_g + ε_g) + e with m ~ N(μ₀, S₀), ε_g ~ N(0, D), e ~ N(0, σ²/w)."""
    groups = [_random_group(rng, n) for n in (6, 9, 4)]
    offsets = np.array([0.0, 0.0, 0.7])
    return groups, offsets


def test_class_mean_marginal_equals_the_dense_multivariate_normal():
    from models.arrhenius import Priors, class_mean_terms

    rng = np.random.default_rng(9)
    groups, offsets = _cell_design(rng)
    priors, var_R, var_E, sigma = Priors(), 0.5, 0.08, 0.4
    stats_ = {k: np.array([g[3][k] for g in groups], dtype=float) for k in groups[0][3]}
    cells = np.ones((3, 1))
    got = class_mean_terms(stats_, offsets, var_R, var_E, sigma, cells, priors)["logml"][0]
    X = np.vstack([np.column_stack([np.ones(len(g[0])), g[0]]) for g in groups])
    y = np.concatenate([g[2] for g in groups])
    w = np.concatenate([g[1] for g in groups])
    shift = np.concatenate([np.full(len(g[0]), o) for g, o in zip(groups, offsets)])
    mu0, S0 = np.array([priors.lnR_mu, priors.E_mu]), np.diag([priors.lnR_sd ** 2, priors.E_sd ** 2])
    cov = np.diag(sigma ** 2 / w) + X @ S0 @ X.T
    start = 0
    for g in groups:  # site effects: block-diagonal
        Xg = X[start:start + len(g[0])]
        cov[start:start + len(g[0]), start:start + len(g[0])] += Xg @ np.diag([var_R, var_E]) @ Xg.T
        start += len(g[0])
    # the weights enter the likelihood of y as in group_marginal_logp: N(y; ·, σ²/w)
    expected = stats.multivariate_normal(X @ mu0 + shift, cov).logpdf(y)
    assert got == pytest.approx(expected, rel=1e-10)


def test_class_mean_draws_follow_their_conditional_posterior():
    """draw_class_means against the direct Gaussian posterior of (lnR, E) of one cell."""
    from models.arrhenius_post import draw_class_means

    rng = np.random.default_rng(10)
    table, season = _small_table(rng, n_sites=3, n_per=12)
    config = ArrheniusConfig(min_obs=5, residuals="iid")
    data = prepare_data(table, season, config, flux_class(table))
    n = 20000
    hyper = {"tau_E": [0.3, 0.2], "tau_R": [0.8, 0.6], "sigma": [0.5]}
    dims = {"tau_E": ("season",), "tau_R": ("season",), "sigma": ("flux_class",)}
    post = xr.Dataset({k: (("chain", "draw", *dims[k]), np.broadcast_to(np.asarray(v), (1, n, len(v))))
                       for k, v in hyper.items()}, coords={"chain": [0], "draw": np.arange(n)})
    draws = draw_class_means(post, data, config.priors, np.random.default_rng(0))
    p = config.priors
    for s, season_name in enumerate(data.seasons):
        o = data.obs[data.obs["season"] == season_name]
        X = np.column_stack([np.ones(len(o)), o["x"]])
        V = np.diag(0.25 / o["w"].to_numpy())
        for g in np.unique(o["group"]):
            i = np.flatnonzero(o["group"].to_numpy() == g)
            V[np.ix_(i, i)] += X[i] @ np.diag([hyper["tau_R"][s] ** 2, hyper["tau_E"][s] ** 2]) @ X[i].T
        prior_prec = np.diag([1 / p.lnR_sd ** 2, 1 / p.E_sd ** 2])
        Vi = np.linalg.inv(V)
        cov = np.linalg.inv(X.T @ Vi @ X + prior_prec)
        mean = cov @ (X.T @ Vi @ o["y"].to_numpy() + prior_prec @ [p.lnR_mu, p.E_mu])
        sel = {"flux_class": data.classes[0], "season": season_name}
        a = draws["lnR"].sel(sel).to_numpy().ravel()
        b = draws["E"].sel(sel).to_numpy().ravel()
        assert np.mean(a) == pytest.approx(mean[0], abs=4 * np.sqrt(cov[0, 0] / n))
        assert np.mean(b) == pytest.approx(mean[1], abs=4 * np.sqrt(cov[1, 1] / n))
        assert np.var(a) == pytest.approx(cov[0, 0], rel=0.05)
        assert np.var(b) == pytest.approx(cov[1, 1], rel=0.05)
        corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
        assert np.corrcoef(a, b)[0, 1] == pytest.approx(corr, abs=4 / np.sqrt(n))
