"""A covariate moderating E and lnR (``covariate="wtd_m"``): the extra cross-product statistics,
the sampled density, the exact draws, the log-likelihood, recovery of a known β, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from data.constants import arrhenius_x
from data.errors import DataError
from data.table import flux_class
from models.arrhenius import ArrheniusConfig, build_model, centred_on, prepare_data
from models.arrhenius_stats import (ar1_statistics, covariate_adjusted, group_statistics,
                                    lag_statistics)
from tests.helpers import SMALL_FIT, mock_sampling
from tests.test_ar1 import _table
from tests.test_tau_class import _potential


def _with_water_table(rng, table: pd.DataFrame) -> pd.DataFrame:
    """A daily-varying water table per site (m), different mean levels between sites."""
    level = {s: rng.uniform(-0.3, 0.1) for s in table["site"].unique()}
    return table.assign(wtd_m=table["site"].map(level) + rng.normal(0, 0.08, len(table)))


def test_adjusted_statistics_are_those_of_the_adjusted_response():
    """Sy, Sxy, Syy of y − β_E z x − β_R z from the covariate cross-products equal the statistics
    computed from the adjusted y directly, for independent and AR(1)-linked observations alike."""
    rng = np.random.default_rng(31)
    table, season = _table(rng, n_sites=3, n_per=25)
    table = _with_water_table(rng, table)
    data = prepare_data(table, season, ArrheniusConfig(min_obs=5, covariate="wtd_m"),
                        flux_class(table))
    obs = data.obs
    beta_E, beta_R = 0.7, -1.3
    adjusted = obs.assign(y=obs["y"] - beta_E * obs["z"] * obs["x"] - beta_R * obs["z"]).drop(columns="z")
    direct = group_statistics(adjusted)
    got = covariate_adjusted({k: v.to_numpy() for k, v in group_statistics(obs).items()}, beta_E, beta_R)
    for name in ("S0", "Sx", "Sxx", "Sy", "Sxy", "Syy"):
        np.testing.assert_allclose(got[name], direct[name].to_numpy(), rtol=1e-10)

    def summed(lags):
        gi = lags["group"].to_numpy()
        return lambda v: np.bincount(gi, v, minlength=len(data.groups))

    lags, lags_direct = lag_statistics(obs), lag_statistics(adjusted)
    stats_all, det = ar1_statistics({k: v.to_numpy() for k, v in group_statistics(obs).items()},
                                    {k: lags[k].to_numpy(dtype=float) for k in lags}, 0.6, summed(lags))
    expected, det_direct = ar1_statistics({k: v.to_numpy() for k, v in direct.items()},
                                          {k: lags_direct[k].to_numpy(dtype=float) for k in lags_direct},
                                          0.6, summed(lags_direct))
    got = covariate_adjusted(stats_all, beta_E, beta_R)
    for name in ("S0", "Sx", "Sxx", "Sy", "Sxy", "Syy"):
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-9)
    np.testing.assert_allclose(det, det_direct)


def test_sampled_density_at_beta_is_the_plain_model_on_the_adjusted_fluxes():
    """The marginal model with a covariate, at fixed β, is the model without one fitted to
    ln|F| − β_E z̃ x − β_R z̃: same group likelihood (AR(1) residuals included), plus β's prior."""
    from scipy import stats

    rng = np.random.default_rng(32)
    table, season = _table(rng, n_sites=4, n_per=25, rho=0.5)
    table = _with_water_table(rng, table)
    config = ArrheniusConfig(min_obs=5, covariate="wtd_m")
    data = prepare_data(table, season, config, flux_class(table))
    beta_E, beta_R = 0.9, 2.0
    point = {"tau_E_log__": np.log([0.2, 0.3]), "tau_R_log__": np.log([0.6, 0.5]),
             "sigma_log__": np.log([0.4]), "rho_interval__": np.array([0.3]),
             "beta_E": np.array([beta_E]), "beta_R": np.array([beta_R])}
    got = _potential(build_model(data, config), point)

    z = table["wtd_m"] - table["wtd_m"].mean()
    x = arrhenius_x(table["soil_temp_c"].to_numpy(), config.t_ref_c)
    shifted = table.assign(flux=table["flux"] * np.exp(-beta_E * z * x - beta_R * z)).drop(columns="wtd_m")
    plain = ArrheniusConfig(min_obs=5)
    expected = _potential(build_model(prepare_data(shifted, season, plain, flux_class(shifted)), plain),
                          {k: v for k, v in point.items() if not k.startswith("beta")})
    assert got == pytest.approx(expected, rel=1e-9)
    # and β's prior is Normal(0, scale / sd of the covariate)
    sd = data.covariate_scale["wetland_emission"]
    model = build_model(data, config)
    logp = model.compile_logp(vars=[model["beta_E"]], sum=True)
    full = {k: np.asarray(v, dtype=float) for k, v in point.items()}
    assert float(logp(full)) == pytest.approx(
        stats.norm.logpdf(beta_E, 0, config.priors.beta_E_sd / sd), rel=1e-9)


def test_centring_per_class_and_bad_covariates_refused():
    rng = np.random.default_rng(33)
    table, season = _table(rng, n_sites=3, n_per=20)
    table = _with_water_table(rng, table)
    table.loc[:4, "wtd_m"] = np.nan
    data = prepare_data(table, season, ArrheniusConfig(min_obs=5, covariate="wtd_m"), flux_class(table))
    assert data.dropped["covariate wtd_m missing"] == 5 and len(data.obs) == len(table) - 5
    assert abs(data.obs["z"].mean()) < 1e-12
    assert data.covariate_centre["wetland_emission"] == pytest.approx(table["wtd_m"].mean())
    # a held-out site is centred on the fit's class mean, not its own
    other = data.obs.assign(wtd_m=data.obs["wtd_m"] + 1.0)
    assert centred_on(other, data)["z"].to_numpy() == pytest.approx(data.obs["z"].to_numpy() + 1.0)

    for name, problem in (("nope", "not a numeric column"), ("method", "not a numeric column"),
                          ("flux", "not a numeric column")):
        with pytest.raises(DataError, match=problem) as err:
            prepare_data(table, season, ArrheniusConfig(min_obs=5, covariate=name), flux_class(table))
        assert "wtd_m" in str(err.value)  # the fix names the usable columns
    with pytest.raises(DataError, match="takes one value"):
        prepare_data(table.assign(wtd_m=0.2), season, ArrheniusConfig(min_obs=5, covariate="wtd_m"),
                     flux_class(table))
    with pytest.raises(DataError, match="no value"):
        prepare_data(table.assign(wtd_m=np.nan), season, ArrheniusConfig(min_obs=5, covariate="wtd_m"),
                     flux_class(table))


def _water_table_fit(monkeypatch, **options):
    import tpflux
    from data.synthetic import simulate_observations

    mock_sampling(monkeypatch)
    obs, truth = simulate_observations(3, water_table=True, n_obs_target=2500,
                                       truth={"beta_E": {"wetland_emission": 0.8}})
    small = {k: v for k, v in SMALL_FIT.items() if k != "dataset"}
    return tpflux.fit_ea(obs, covariate="wtd_m", **{**small, **options}), truth


def test_log_likelihood_of_a_covariate_fit_three_ways(monkeypatch):
    """The pointwise log-likelihood stored at fitting, the one recomputed from the saved tree and
    the per-draw total from group statistics agree with a covariate in the model."""
    from models.arrhenius_loglik import pointwise_log_likelihood, total_log_likelihood

    fit, _ = _water_table_fit(monkeypatch, save_log_likelihood=True)
    tree = fit.datatree
    assert "beta_E" in tree["posterior"] and "covariate_centred" in tree["constant_data"]
    stored = tree["log_likelihood"]["ln_flux"].to_numpy()
    recomputed = pointwise_log_likelihood(tree.drop_nodes("log_likelihood")).to_numpy()
    np.testing.assert_allclose(recomputed, stored, rtol=1e-5, atol=1e-4)
    total = total_log_likelihood(tree)
    np.testing.assert_allclose(total.to_numpy(), stored.astype(float).sum(axis=-1), rtol=1e-5)
    # without the covariate term the likelihood would differ: the check can fail
    post = tree["posterior"].to_dataset()
    zero = tree.copy()
    zero["posterior"] = post.assign(beta_E=post["beta_E"] * 0, beta_R=post["beta_R"] * 0)
    assert not np.allclose(pointwise_log_likelihood(zero.drop_nodes("log_likelihood")).to_numpy(),
                           stored, rtol=1e-3)


def test_covariate_in_summary_text_and_saved_config(monkeypatch, tmp_path):
    import tpflux

    fit, _ = _water_table_fit(monkeypatch)
    table = fit.summary()
    beta = table[table["quantity"].isin(["beta_E", "beta_R"])]
    assert set(beta["flux_class"]) == set(table.loc[table["quantity"] == "E", "flux_class"])
    assert beta[["ci_low", "ci_high", "r_hat"]].notna().all().all()
    assert "Effect of wtd_m" in fit.result_text()
    assert fit.datatree.attrs["tpflux_config"] and fit.config.covariate == "wtd_m"
    loaded = tpflux.load(fit.save(tmp_path / "run"))
    assert loaded.config.covariate == "wtd_m"
    pd.testing.assert_frame_equal(loaded.summary(), fit.summary(), check_dtype=False)


def test_cli_refuses_an_unknown_covariate_before_sampling(tmp_path):
    from tests.helpers import run_module

    out = tmp_path / "run"
    res = run_module("inference.fit_ea", "--dataset", "synthetic", "--covariate", "wtd",
                     "--out", out, cwd=tmp_path, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "wtd" in res.stderr and "not a numeric column" in res.stderr
    assert "sampling" not in res.stderr and not out.exists()


def test_compare_covariate_ranks_both_models_on_the_same_rows(monkeypatch, tmp_path):
    import tpflux
    from data.synthetic import simulate_observations

    mock_sampling(monkeypatch)
    obs, _ = simulate_observations(4, water_table=True, n_obs_target=2500)
    obs.table.loc[:99, "wtd_m"] = np.nan
    small = {k: v for k, v in SMALL_FIT.items() if k not in ("dataset", "ppc_draws")}
    cmp = tpflux.compare_covariate("wtd_m", obs, **small)
    table = cmp.summary()
    assert set(table["model"]) == {"none", "wtd_m"} and (table["n_obs"] == cmp.fits["none"]
                                                         .diagnostics["n_observations"]).all()
    assert len(cmp.fits["none"].datatree["constant_data"]["obs"]) == \
        len(cmp.fits["wtd_m"].datatree["constant_data"]["obs"]) <= len(obs.table) - 100
    assert {"beta_E", "beta_R", "E"} <= set(cmp.effects["quantity"])
    assert "Does wtd_m moderate E?" in cmp.result_text()
    loaded = tpflux.load(cmp.save(tmp_path / "cmp"))
    assert loaded.config.covariate == "wtd_m"
    pd.testing.assert_frame_equal(loaded.effects, cmp.effects, check_dtype=False)


def test_recovers_a_known_water_table_effect():
    """On simulated data with β_E = 0.8 eV m⁻¹ and β_R = 2 m⁻¹ for the wetland class (and none for
    the grassland classes), every β lies inside its 99 % interval and the wetland β_E is resolved
    from zero."""
    from data.synthetic import simulate_observations
    from inference import ea_fitting

    truth_beta = {"beta_E": {"wetland_emission": 0.8}, "beta_R": {"wetland_emission": 2.0}}
    obs, truth = simulate_observations(0, water_table=True, truth=truth_beta)
    config = ArrheniusConfig(covariate="wtd_m")
    data = ea_fitting.prepare(obs, "julian", config)
    dt = ea_fitting.sample(data, config, chains=2, draws=500, tune=300, seed=13)
    post = dt["posterior"].to_dataset()
    for name in ("beta_E", "beta_R"):
        lo, hi = post[name].quantile([0.005, 0.995], dim=("chain", "draw"))
        for cls in data.classes:
            t = truth[name][cls]
            assert float(lo.sel(flux_class=cls)) < t < float(hi.sel(flux_class=cls)), (name, cls, t)
    assert float(post["beta_E"].sel(flux_class="wetland_emission").quantile(0.005)) > 0.3


def fit_centre(fit, cls: str) -> float:
    import json

    return json.loads(fit.datatree.attrs["tpflux_config"])["covariate_centre"][cls]


def test_held_out_sites_are_predicted_with_their_own_covariate(monkeypatch):
    """Leave-one-site-out with a covariate: each held-out group is scored, its covariate centred
    on the fold's class mean (a site with a high water table is predicted higher)."""
    import tpflux

    fit, _ = _water_table_fit(monkeypatch)
    from data.synthetic import simulate_observations

    obs, _ = simulate_observations(3, water_table=True, n_obs_target=2500,
                                   truth={"beta_E": {"wetland_emission": 0.8}})
    calls = []
    import models.arrhenius_post as post_module

    real = post_module.new_site_group_means

    def spy(post, classes, seasons, methods, rows, rng):
        calls.append(rows)
        return real(post, classes, seasons, methods, rows, rng)

    monkeypatch.setattr(post_module, "new_site_group_means", spy)
    cv = tpflux.crossvalidate_ea(fit, data=obs, chains=2, draws=20, tune=10, progress=False)
    scored = cv.summary().query("site != 'ALL'")
    assert scored["inside_95"].notna().sum() == len(calls) > 0
    from inference import ea_fitting

    model_config = fit.config.model_config()
    for rows in calls[:3]:  # centred on the class mean of the fold that left this site out
        site, cls = rows["site"].iloc[0], rows["flux_class"].iloc[0]
        fold = ea_fitting.prepare(dataclasses.replace(obs, table=obs.table[obs.table["site"] != site]),
                                  "julian", model_config)
        np.testing.assert_allclose(rows["z"], rows["wtd_m"] - fold.covariate_centre[cls])
        assert fold.covariate_centre[cls] != pytest.approx(fit_centre(fit, cls))
