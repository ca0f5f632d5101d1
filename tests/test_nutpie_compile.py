"""The nutpie compilation cache: same draws as nutpie's own compilation, a warm start that skips
compilation, and a key that changes with the data, the priors and the graph."""

import numpy as np
import pymc as pm
import pytest

from inference import nutpie_compile

SAMPLING = dict(draws=60, tune=60, chains=2, cores=1, seed=11, target_accept=0.9)


def _model(y, prior_sd=1.0, mean_shift=0.0):
    with pm.Model(coords={"group": ["a", "b"]}) as model:
        mu = pm.Normal("mu", 0.0, prior_sd, dims="group")
        sigma = pm.HalfNormal("sigma", 1.0)
        rho = pm.Uniform("rho", -1.0, 1.0)
        pm.Deterministic("mu_diff", mu[1] - mu[0])
        resid = np.asarray(y) - mu[np.arange(len(y)) % 2] - mean_shift
        pm.Potential("loglik", pm.logp(pm.Normal.dist(0.0, sigma), resid).sum()
                     - 0.5 * rho ** 2)
    return model


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty PyTensor numba cache, so the first compilation in a test is cold."""
    from pytensor.link.numba import cache

    monkeypatch.setattr(cache, "NUMBA_CACHE_PATH", tmp_path)
    return tmp_path


Y = np.random.default_rng(3).normal(1.0, 0.5, 40)


def test_key_changes_with_data_priors_and_graph():
    key = nutpie_compile.graph_key
    base = _model(Y)
    outputs = lambda m: [m.logp(), *m.unobserved_value_vars]  # noqa: E731
    assert key(outputs(base)) == key(outputs(_model(Y.copy())))
    y2 = Y.copy()
    y2[7] += 1e-9
    assert key(outputs(_model(y2))) != key(outputs(base))
    assert key(outputs(_model(Y, prior_sd=2.0))) != key(outputs(base))
    assert key(outputs(_model(Y, mean_shift=0.1))) != key(outputs(base))


def test_cold_warm_and_stock_compilation_give_the_same_draws(cache_dir, monkeypatch):
    from nutpie import compile_pymc as ncp

    cold = nutpie_compile.sample(_model(Y), **SAMPLING)
    assert list(cache_dir.glob("tpflux-nutpie-*.json"))

    def no_compilation(*args, **kwargs):
        raise AssertionError("a warm start compiled the model again")

    monkeypatch.setattr(ncp, "_make_functions", no_compilation)
    warm = nutpie_compile.sample(_model(Y), **SAMPLING)
    monkeypatch.undo()
    with _model(Y):
        stock = pm.sample(draws=60, tune=60, chains=2, cores=1, random_seed=11,
                          nuts_sampler="nutpie", target_accept=0.9, progressbar=False,
                          compute_convergence_checks=False)
    for name in ("mu", "sigma", "rho", "mu_diff"):
        a = cold["posterior"][name].to_numpy()
        np.testing.assert_array_equal(a, warm["posterior"][name].to_numpy())
        # nutpie's own callbacks are compiled separately: the same arithmetic up to rounding
        np.testing.assert_allclose(a, stock["posterior"][name].to_numpy(), rtol=1e-9)
    assert cold["posterior"]["mu"].dims == ("chain", "draw", "group")


def test_a_damaged_cache_entry_compiles_afresh(cache_dir):
    first = nutpie_compile.sample(_model(Y), **SAMPLING)
    for path in cache_dir.rglob("*"):
        if path.is_file() and "tpflux" in path.name and path.suffix != ".json":
            path.unlink()  # the callbacks are gone, their record is not
    again = nutpie_compile.sample(_model(Y), **SAMPLING)
    np.testing.assert_array_equal(first["posterior"]["mu"].to_numpy(),
                                  again["posterior"]["mu"].to_numpy())
