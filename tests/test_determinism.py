"""Same seed, same numbers — and a different seed, different numbers (so each check can fail).

fit_ea end to end is covered by tests/test_fit_ea.py; here: the simulators, the exact site-effect
draws, the assembled fit_ea DataTree (prior, predictive and derived draws), fit_rr end to end,
and the calibration study's prior draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.helpers import assert_trees_equal


def _differs(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape != b.shape or not np.array_equal(a, b)


# ---------------------------------------------------------------- simulators
def test_warming_simulator_is_seeded():
    from data.synthetic_warming import simulate_warming

    a, b, c = simulate_warming(seed=4), simulate_warming(seed=4), simulate_warming(seed=5)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.truth == b.truth
    assert _differs(a.table["treatment_mean"].to_numpy(), c.table["treatment_mean"].to_numpy())


def test_driver_grid_simulator_is_seeded():
    from data.synthetic_grid import simulate_tibetan_grid

    a = simulate_tibetan_grid(3, 4, n_days=20, seed=7)
    b = simulate_tibetan_grid(3, 4, n_days=20, seed=7)
    c = simulate_tibetan_grid(3, 4, n_days=20, seed=8)
    xr.testing.assert_identical(a, b)
    assert _differs(a["soil_temp_c"].values, c["soil_temp_c"].values)


# ---------------------------------------------------------------- M1 after sampling
@pytest.fixture(scope="module")
def m1_data():
    from data.synthetic import simulate_observations
    from inference import ea_fitting
    from models.arrhenius import ArrheniusConfig

    obs, _ = simulate_observations(11, n_obs_target=1500)
    config = ArrheniusConfig()
    return ea_fitting.prepare(obs, "julian", config), config


def _hyper_draws(data, seed: int, chains: int = 2, draws: int = 30) -> xr.Dataset:
    """Plausible hyperparameter draws (shapes of the posterior) without sampling."""
    rng = np.random.default_rng(seed)
    c, s, m = len(data.classes), len(data.seasons), len(data.methods)
    shape = (chains, draws)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "flux_class": data.classes,
              "season": data.seasons, "method": data.methods}
    ds = xr.Dataset({
        "E": (("chain", "draw", "flux_class", "season"), 0.6 + 0.1 * rng.standard_normal((*shape, c, s))),
        "lnR": (("chain", "draw", "flux_class", "season"), 1 + 0.1 * rng.standard_normal((*shape, c, s))),
        "tau_E": (("chain", "draw", "season"), 0.2 + 0.01 * rng.random((*shape, s))),
        "tau_R": (("chain", "draw", "season"), 0.5 + 0.01 * rng.random((*shape, s))),
        "sigma": (("chain", "draw", "flux_class"), 0.5 + 0.01 * rng.random((*shape, c))),
    }, coords=coords)
    if m:
        ds["method_offset"] = (("chain", "draw", "method"), 0.1 * rng.standard_normal((*shape, m)))
    return ds


def test_site_effect_draws_depend_only_on_the_seed(m1_data):
    from models.arrhenius_post import draw_site_effects

    data, _ = m1_data
    post = _hyper_draws(data, 1)
    a = draw_site_effects(post, data, np.random.default_rng(3))
    b = draw_site_effects(post, data, np.random.default_rng(3))
    c = draw_site_effects(post, data, np.random.default_rng(4))
    xr.testing.assert_identical(a, b)
    assert _differs(a["eps_E"].values, c["eps_E"].values)


def test_assembled_fit_ea_tree_is_identical_for_the_same_seed(m1_data):
    """Everything fit_ea draws after NUTS (site effects, derived quantities, prior and predictive
    draws, log-likelihood) is a function of the posterior and the seed only."""
    from inference import ea_fitting

    data, config = m1_data
    post = _hyper_draws(data, 2)
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 30), dtype=bool))},
                       coords={"chain": post["chain"], "draw": post["draw"]})
    idata = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    a = ea_fitting.assemble(idata, data, config, seed=9, ppc_draws=5)
    b = ea_fitting.assemble(idata, data, config, seed=9, ppc_draws=5)
    c = ea_fitting.assemble(idata, data, config, seed=10, ppc_draws=5)
    assert_trees_equal(a, b)
    for group, name in (("posterior", "eps_E"), ("prior", "E"), ("posterior_predictive", "ln_flux")):
        assert _differs(a[group][name].values, c[group][name].values), (group, name)


# ---------------------------------------------------------------- fit_rr end to end
TIMING_STATS = ("perf_counter_diff", "perf_counter_start", "process_time_diff")


def _fit_rr(tmp_path, name: str, seed: int) -> xr.DataTree:
    from inference import fit_rr

    out = tmp_path / name
    args = ["--dataset", "synthetic-warming", "--chains", "2", "--draws", "60", "--tune", "60",
            "--allow-unconverged", "--seed", str(seed), "--out", str(out)]
    assert fit_rr.main(args) == 0
    return xr.open_datatree(out / "rr_posterior.nc", engine="h5netcdf")


def test_fit_rr_same_seed_same_posterior(tmp_path):
    a, b = _fit_rr(tmp_path, "a", 5), _fit_rr(tmp_path, "b", 5)
    for group in ("posterior", "sample_stats", "prior"):
        left, right = a[group].to_dataset(), b[group].to_dataset()
        for name in left.data_vars:
            if name not in TIMING_STATS:
                np.testing.assert_array_equal(left[name].values, right[name].values,
                                              err_msg=f"{group}/{name}")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "rr_summary.csv"),
                                  pd.read_csv(tmp_path / "b" / "rr_summary.csv"))


@pytest.mark.slow
def test_fit_rr_other_seed_other_posterior(tmp_path):
    a, c = _fit_rr(tmp_path, "a", 5), _fit_rr(tmp_path, "c", 6)
    assert _differs(a["posterior"]["lnRR"].values, c["posterior"]["lnRR"].values)


# ---------------------------------------------------------------- calibration study
def test_calibration_prior_draws_are_seeded():
    from benchmarks import sbc

    a, b, c = (sbc.meta_prior_draws(5, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a["y"], b["y"])
    xr.testing.assert_equal(a["prior"], b["prior"])
    assert _differs(a["y"], c["y"])
