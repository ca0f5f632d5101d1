"""Site spreads per flux class (``tau="class"``): the likelihood, the exact draws and the new-site
predictions use each class's own τ_c,s = τ_s · exp(ω·z_c)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data.table import flux_class
from models.arrhenius import ArrheniusConfig, build_model, prepare_data
from tests.test_arrhenius import _small_table


def _two_classes(seed=3):
    rng = np.random.default_rng(seed)
    wet, s_wet = _small_table(rng, n_sites=4, n_per=25, tau_E=0.1)
    grass, s_grass = _small_table(rng, n_sites=3, n_per=25, tau_E=0.4)
    grass = grass.assign(ecosystem="grassland", site="G" + grass["site"])
    table = pd.concat([wet, grass], ignore_index=True)
    season = pd.Series(pd.Categorical(pd.concat([s_wet, s_grass], ignore_index=True),
                                      ["growing", "non-growing"]))
    return table, season


def _potential(model, point: dict) -> float:
    # the Potential is written in the random variables: evaluate it at their values
    (loglik,) = model.replace_rvs_by_values([model["group_loglik"]])
    fn = model.compile_fn(loglik, inputs=model.value_vars, on_unused_input="ignore")
    return float(fn({k: np.asarray(v, dtype=float) for k, v in point.items()}))


def test_class_likelihood_is_the_sum_of_per_class_fits_with_their_own_spread():
    """The classes share nothing in the likelihood but τ_s: with the class spreads fixed, the
    class model's group likelihood is the sum of shared-τ fits of each class alone at its τ_c,s."""
    table, season = _two_classes()
    config = ArrheniusConfig(min_obs=10, residuals="iid", tau="class")
    data = prepare_data(table, season, config, flux_class(table))
    assert data.classes == ["grassland_emission", "wetland_emission"]
    tau_E, tau_R, omega_E, omega_R = np.array([0.3, 0.2]), np.array([0.8, 0.6]), 0.5, 0.7
    z_E, z_R = np.array([1.0, -0.5]), np.array([-0.3, 0.9])
    sigma = np.array([0.45, 0.35])
    point = {"tau_E_log__": np.log(tau_E), "tau_R_log__": np.log(tau_R),
             "omega_E_log__": np.log(omega_E), "omega_R_log__": np.log(omega_R),
             "z_tau_E": z_E, "z_tau_R": z_R, "sigma_log__": np.log(sigma)}
    got = _potential(build_model(data, config), point)

    shared = ArrheniusConfig(min_obs=10, residuals="iid", tau="shared")
    expected = 0.0
    for c, name in enumerate(data.classes):
        rows = (flux_class(table) == name).to_numpy()
        sub = prepare_data(table[rows].reset_index(drop=True), season[rows].reset_index(drop=True),
                           shared, flux_class(table[rows].reset_index(drop=True)))
        expected += _potential(build_model(sub, shared), {
            "tau_E_log__": np.log(tau_E * np.exp(omega_E * z_E[c])),
            "tau_R_log__": np.log(tau_R * np.exp(omega_R * z_R[c])),
            "sigma_log__": np.log(sigma[[c]])})
    assert got == pytest.approx(expected, rel=1e-10)


def test_class_spreads_reach_the_exact_draws_and_the_new_site_predictions():
    from models.arrhenius_post import draw_site_effects, new_site_group_means

    table, season = _two_classes()
    config = ArrheniusConfig(min_obs=10, residuals="iid", tau="class")
    data = prepare_data(table, season, config, flux_class(table))
    n = 4000
    tight, wide = 0.01, 1.5  # grassland, wetland
    spreads = np.array([[tight, tight], [wide, wide]])
    post = xr.Dataset(
        {"E": (("chain", "draw", "flux_class", "season"), np.full((1, n, 2, 2), 0.7)),
         "lnR": (("chain", "draw", "flux_class", "season"), np.full((1, n, 2, 2), 2.0)),
         "tau_E": (("chain", "draw", "season"), np.full((1, n, 2), 0.3)),
         "tau_R": (("chain", "draw", "season"), np.full((1, n, 2), 0.5)),
         "tau_E_class": (("chain", "draw", "flux_class", "season"), np.broadcast_to(spreads, (1, n, 2, 2))),
         "tau_R_class": (("chain", "draw", "flux_class", "season"), np.broadcast_to(spreads, (1, n, 2, 2))),
         "sigma": (("chain", "draw", "flux_class"), np.full((1, n, 2), 0.4))},
        coords={"chain": [0], "draw": np.arange(n), "flux_class": data.classes, "season": data.seasons})
    rng = np.random.default_rng(0)
    sd = {}
    for name in data.classes:
        rows = data.obs[(data.obs["flux_class"] == name) & (data.obs["group"] == data.obs.loc[
            data.obs["flux_class"] == name, "group"].iloc[0])]
        sd[name] = new_site_group_means(post, data.classes, data.seasons, [], rows, rng).std()
    # a new grassland site varies by its residual mean only; a new wetland site by τ = 1.5 besides
    assert sd["grassland_emission"] < 0.2 < 1.0 < sd["wetland_emission"]
    eff = draw_site_effects(post, data, rng)
    cls = eff["group_flux_class"].to_numpy()
    spread = eff["eps_E"].std(("chain", "draw")).to_numpy()
    assert spread[cls == "grassland_emission"].max() < tight * 1.2
    assert spread[cls == "wetland_emission"].min() > 5 * tight


def test_old_runs_read_as_shared_spreads():
    from tpflux.activation import ActivationEnergyConfig

    assert ActivationEnergyConfig.from_dict({"residuals": "ar1"}).tau == "shared"
    assert ActivationEnergyConfig.from_dict({"tau": "class"}).tau == "class"
    with pytest.raises(Exception, match="tau"):
        ActivationEnergyConfig(tau="per-site")


def test_a_class_spread_fit_runs_end_to_end_and_its_report_says_so(mock_pymc_sample, tmp_path):
    from reports.build import build
    from tests.helpers import small_fit_ea

    fit = small_fit_ea(tau="class")
    table = fit.summary()
    rows = table[table["quantity"] == "tau_E_class"]
    assert len(rows) == len(fit.datatree["posterior"]["flux_class"]) * len(
        fit.datatree["posterior"]["season"])
    assert {"omega_E", "omega_R", "tau_R_class"} <= set(table["quantity"])
    assert "tau_E_class" in fit.datatree["prior"]  # the prior predictive draws use class spreads
    fit.save(tmp_path / "run")
    html = build(tmp_path / "run").read_text(encoding="utf-8")
    assert "Each flux class had its own site spreads" in html
    assert "pool the classes" in html
