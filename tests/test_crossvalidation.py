"""Leave-one-site-out check of an activation-energy fit (tpflux.crossvalidate_ea)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers import make_sites, run_module


@pytest.fixture(scope="module")
def small_cv(tmp_path_factory):
    import tpflux

    sites = tuple((f"W{i}", "wetland") for i in range(1, 6))
    table = make_sites(n_days=120, sites=sites, seed=3)
    fit = tpflux.fit_ea(table, seasons="none", chains=2, draws=300, tune=300, progress=False)
    cv = tpflux.crossvalidate_ea(fit, data=table, progress=False)
    return table, fit, cv


def test_one_row_per_held_out_group_and_a_coverage_row(small_cv):
    table, fit, cv = small_cv
    groups = cv.groups
    assert sorted(groups["site"]) == sorted(table["site"].unique())
    assert groups["n_obs"].sum() == fit.diagnostics["n_observations"]
    last = cv.table.iloc[-1]
    assert last["site"] == "ALL"
    assert last["coverage_95"] == pytest.approx(groups["inside_95"].mean())
    assert groups["predicted_low"].lt(groups["predicted_high"]).all()
    inside = (groups["predicted_low"] <= groups["observed_mean_ln_flux"]) & \
        (groups["observed_mean_ln_flux"] <= groups["predicted_high"])
    assert (inside.astype(float) == groups["inside_95"]).all()
    assert groups["pit"].between(0, 1).all()
    # the command line's gate line reads the worst fold
    assert {"r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences", "verdict"} <= set(cv.diagnostics)


def test_new_site_prediction_reflects_the_site_spread(small_cv):
    """Intervals for a new site are at least as wide as the population spread of lnR
    (2 × 1.96 × posterior median τ_R would be the width with E, σ and the class mean known)."""
    _, fit, cv = small_cv
    tau_r = float(fit.datatree["posterior"]["tau_R"].median())
    width = cv.groups["predicted_high"] - cv.groups["predicted_low"]
    assert (width > 2 * 1.6 * tau_r).all()


def test_saved_folder_round_trips_and_holds_the_pit_figure(small_cv, tmp_path):
    import tpflux

    _, _, cv = small_cv
    cv.save(tmp_path / "cv")
    assert (tmp_path / "cv" / "crossvalidation_pit.png").stat().st_size > 1000
    back = tpflux.load(tmp_path / "cv")
    pd.testing.assert_frame_equal(back.summary(), cv.summary())
    assert back.coverage_95 == cv.coverage_95


def test_refuses_a_folder_that_is_not_an_activation_energy_run(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_module("inference.crossvalidate_ea", tmp_path / "empty", "--out", tmp_path / "o",
                      cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error:")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_calibrated_on_data_from_the_model():
    """On data simulated from the model itself, the new-site intervals of held-out sites are
    not systematically too narrow: the PIT values are not piled up in the outer tenths."""
    pytest.importorskip("nutpie")
    import tpflux
    from data.synthetic import simulate_observations

    obs, _ = simulate_observations(2, n_sites=12, n_obs_target=2500)
    fit = tpflux.fit_ea(obs, seasons="none", chains=2, draws=300, tune=300, progress=False)
    cv = tpflux.crossvalidate_ea(fit, data=obs, progress=False)
    pit = cv.groups["pit"].dropna().to_numpy()
    assert len(pit) >= 10
    assert np.mean((pit < 0.025) | (pit > 0.975)) < 0.3
