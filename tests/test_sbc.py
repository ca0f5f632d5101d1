"""Simulation-based calibration (benchmarks/sbc.py): rank statistics, the uniformity test, the
replicate machinery (fast, NUTS replaced by prior draws), and the full calibration run (slow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import sbc


# ---------------------------------------------------------------- ranks and the uniformity test
def test_rank_counts_draws_below_the_truth():
    draws = np.array([[0.1, 5.0], [0.2, 6.0], [0.3, 7.0], [0.4, 8.0]])
    assert sbc.rank_of(np.array([0.25, 100.0]), draws).tolist() == [2, 4]
    assert sbc.rank_of(np.array([-1.0, 5.5]), draws).tolist() == [0, 1]


def test_thin_keeps_evenly_spaced_draws_over_chains():
    values = np.arange(2 * 50).reshape(2, 50)  # chain 0: 0…49, chain 1: 50…99
    kept = sbc.thin(values, 10)
    assert kept.shape == (10,) and kept[0] == 0 and kept[-1] == 99
    assert np.all(np.diff(kept) > 0)


def test_bin_counts_need_whole_bins():
    assert sbc.bin_counts(np.arange(100), 99, 20).tolist() == [5] * 20
    with pytest.raises(ValueError):
        sbc.bin_counts(np.arange(10), 10, 20)


def _ranks(values, L=99, name="theta"):
    return pd.DataFrame({"parameter": name, "rank": values, "L": L})


def test_uniformity_passes_exact_ranks_and_flags_miscalibration():
    rng = np.random.default_rng(1)
    L, n = 99, 400
    truth = rng.standard_normal(n)
    calibrated = [int((rng.standard_normal(L) < t).sum()) for t in truth]
    # Posterior draws half as spread as they should be: truths fall in the tails (∪ shape).
    overconfident = [int((0.5 * rng.standard_normal(L) < t).sum()) for t in truth]
    # Posterior shifted by half a standard deviation: ranks pile up on one side.
    biased = [int((rng.standard_normal(L) + 0.5 < t).sum()) for t in truth]
    table = sbc.uniformity(pd.concat([_ranks(calibrated, name="ok"), _ranks(overconfident, name="narrow"),
                                      _ranks(biased, name="biased")]))
    p = table.set_index("parameter")["p_value"]
    assert p["ok"] > sbc.ALPHA and p["narrow"] < 1e-6 and p["biased"] < 1e-6
    flags = table.set_index("parameter")["uniform_at_1pct"]
    assert flags["ok"] and not flags["narrow"] and not flags["biased"]
    narrow = table.set_index("parameter").loc["narrow"]
    assert narrow["outer_share"] > 2 * 2 / 20  # both outer bins far above their 10 %
    assert table.set_index("parameter").loc["biased", "mean_rank"] < 0.45


# ---------------------------------------------------------------- replicate machinery (fast)
@pytest.fixture
def prior_draws_as_posterior(monkeypatch):
    """pm.sample returns prior draws of the sampled variables. Prior draws ranked against an
    independent prior draw are uniform whatever the data, so this checks the machinery, not NUTS."""
    import pymc as pm
    from pymc.testing import mock_sample

    def sample(**kwargs):
        model = pm.modelcontext(kwargs.get("model"))
        names = [v.name for v in [*model.free_RVs, *model.deterministics]]
        return mock_sample(**{**kwargs, "var_names": names},
                           sample_stats={"diverging": lambda size: np.zeros(size, dtype=bool)})

    monkeypatch.setattr(pm, "sample", sample)


def test_arrhenius_data_are_drawn_from_the_model_itself():
    """Each replicate's data are the prior predictive ln|F| of the same draw as its truth."""
    setup = dict(zip(("data", "config", "prior", "y"), sbc.arrhenius_prior_draws(3, seed=5)))
    data, prior, y = setup["data"], setup["prior"], setup["y"]
    assert y.shape == (3, len(data.obs))
    # y = (E + ε_E)·x + lnR + δ + ε_R + e: regress out the truth and the residual sd is σ_class.
    k = 1
    truth = prior.isel(draw=k)
    resid, c = _residuals_given_truth(y[k], truth, data)
    for i, cls in enumerate(data.classes):
        sd = resid[c == i].std()
        assert sd == pytest.approx(float(truth["sigma"][i]), rel=0.15)
    # The design really has what M1 needs: two classes, two seasons, several sites, a method offset.
    assert len(data.classes) == 2 and len(data.seasons) == 2 and data.methods
    assert data.groups["site"].nunique() >= 6 and data.groups["n"].between(30, 50).all()


def _residuals_given_truth(y, truth, data):
    """y − (E + ε_E)·x − (lnR + δ_method + ε_R) of one replicate, and each observation's class."""
    g = data.obs["group"].to_numpy()
    c = pd.Categorical(data.groups["flux_class"], categories=data.classes).codes[g]
    s = pd.Categorical(data.groups["season"], categories=data.seasons).codes[g]
    slope = truth["E"].to_numpy()[c, s] + truth["eps_E"].to_numpy()[g]
    intercept = truth["lnR"].to_numpy()[c, s] + truth["eps_R"].to_numpy()[g]
    offsets = dict(zip(data.methods, truth["method_offset"].to_numpy()))
    intercept = intercept + data.obs["method"].map(offsets).fillna(0.0).to_numpy()
    return y - slope * data.obs["x"].to_numpy() - intercept, c


@pytest.fixture(scope="module")
def ar1_setup():
    return dict(zip(("data", "config", "prior", "y"), sbc.arrhenius_ar1_prior_draws(300, seed=7)))


def _within(estimates: np.ndarray, expected, n_se: float = 4.0) -> bool:
    """Mean of independent per-draw estimates equals ``expected`` within ``n_se`` standard errors."""
    se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    return abs(estimates.mean() - expected) < n_se * se


def test_ar1_design_has_runs_short_gaps_and_a_break_beyond_the_horizon(ar1_setup):
    from models.arrhenius_config import AR1_HORIZON_DAYS

    data = ar1_setup["data"]
    obs = data.obs
    assert len(data.classes) == 2 and len(data.seasons) == 2 and data.methods
    linked = obs["previous"].to_numpy() >= 0
    gaps = obs.loc[linked, "gap_days"]
    assert (gaps == 1).mean() > 0.7 and gaps.between(2, 7).sum() >= 20
    days = obs["date"].to_numpy().astype("datetime64[D]").astype(int)
    g = obs["group"].to_numpy()
    broken = np.flatnonzero(~linked[1:] & (g[1:] == g[:-1])) + 1  # a new run within a group
    assert len(broken) >= 3 and (days[broken] - days[broken - 1] > AR1_HORIZON_DAYS).all()
    assert set(obs.loc[broken, "flux_class"]) == set(data.classes)
    assert (obs["w"] > 1).any()  # multi-day periods: the weights take part


def test_ar1_residuals_of_the_design_have_lag_correlation_rho_to_the_delta(ar1_setup):
    """For fixed ρ per class, the generator's weighted residuals √w·e are a stationary daily AR(1)
    on the design's dates: unit variance, corr ρ^Δ for pairs Δ days apart, ρ^(Δ₁+Δ₂) two steps
    back (Markov), independent across a break beyond the horizon."""
    import xarray as xr

    from models.arrhenius_post import predict_ln_flux

    data, prior = ar1_setup["data"], ar1_setup["prior"]
    rho = np.array([0.8, -0.6])[: len(data.classes)]
    n = 3000
    zero = prior.isel(draw=[0] * n).assign_coords(draw=np.arange(n)).expand_dims(chain=[0])
    zero = xr.Dataset({v: xr.zeros_like(zero[v]) for v in zero.data_vars})
    fixed = zero.assign(sigma=zero["sigma"] + 1.0, rho=zero["rho"] + rho)
    y = predict_ln_flux(fixed, data, np.random.default_rng(3)).to_numpy()[0].astype(float)
    obs = data.obs
    r = y * np.sqrt(obs["w"].to_numpy())
    prev, gap = obs["previous"].to_numpy(), obs["gap_days"].to_numpy()
    cls = pd.Categorical(obs["flux_class"], categories=data.classes).codes
    g = obs["group"].to_numpy()
    assert _within((r ** 2).mean(axis=1), 1.0)
    checked = 0
    for i, phi in enumerate(rho):
        one = np.flatnonzero((prev >= 0) & (cls == i))
        for d in np.unique(gap[one]):
            pairs = one[gap[one] == d]
            if len(pairs) >= 4:
                assert _within((r[:, pairs] * r[:, prev[pairs]]).mean(axis=1), phi ** d), (i, d)
                checked += 1
        two = one[prev[prev[one]] >= 0]  # i, i−1, i−2 in one run
        lag = gap[two] + gap[prev[two]]
        assert _within((r[:, two] * r[:, prev[prev[two]]] - phi ** lag).mean(axis=1), 0.0), i
        broken = np.flatnonzero((prev[1:] < 0) & (g[1:] == g[:-1]) & (cls[1:] == i)) + 1
        assert _within((r[:, broken] * r[:, broken - 1]).mean(axis=1), 0.0), i
    assert checked >= 6


def test_ar1_data_are_drawn_from_the_model_itself(ar1_setup):
    """Each replicate's residuals around its own truth (prior draws of every parameter, ρ
    included) are AR(1) with that replicate's σ and ρ: E[r̃_i r̃_prev] = ρ^Δ, E[r̃²] = 1."""
    data, prior, y = ar1_setup["data"], ar1_setup["prior"], ar1_setup["y"]
    obs = data.obs
    prev, gap = obs["previous"].to_numpy(), obs["gap_days"].to_numpy()
    linked = np.flatnonzero(prev >= 0)
    rho = prior["rho"].to_numpy()
    assert rho.min() < -0.5 and rho.max() > 0.5  # the prior of ρ, not one value
    unit, cross, lag1 = [], [], []
    for k in range(len(y)):
        truth = prior.isel(draw=k)
        resid, c = _residuals_given_truth(y[k], truth, data)
        r = resid * np.sqrt(obs["w"].to_numpy()) / truth["sigma"].to_numpy()[c]
        unit.append((r ** 2).mean())
        cross.append((r[linked] * r[prev[linked]] - rho[k, c[linked]] ** gap[linked]).mean())
        day = linked[gap[linked] == 1]
        lag1.append([np.sum((r[day] * r[prev[day]])[c[day] == i]) / np.sum((r[prev[day]] ** 2)[c[day] == i])
                     for i in range(len(data.classes))])
    unit = np.array(unit)
    assert _within(unit, 1.0) and _within(np.array(cross), 0.0)
    assert np.mean(np.abs(np.log(unit)) < np.log(2)) > 0.95
    # ρ estimated from each replicate's consecutive days (several hundred pairs per class) is its truth
    assert np.mean(np.abs(np.array(lag1) - rho)) < 0.08  # 0.04 measured; shuffled truths give 0.9


def test_meta_data_are_drawn_from_the_model_itself():
    setup = sbc.meta_prior_draws(4, seed=2)
    table, prior, y = setup["table"], setup["prior"], setup["y"]
    assert y.shape == (4, len(table)) and setup["spec"].parameterisation == "marginal"
    assert table["study"].nunique() == 10 and (table["study"] + table["site"]).nunique() == 14
    # Residuals around lnRR + study + site effects have the sampling variances of the design.
    levels = sorted(table["season"].unique())
    z = []
    for k in range(4):
        t = prior.isel(draw=k)
        theta = sbc._meta_scalars(t, table, levels)
        for i in range(4):
            r = table.iloc[i]
            value = theta[f"theta[{r['study']}/{r['site']},{r['season']}]"]
            z.append((y[k, i] - float(value)) / np.sqrt(r["vi"]))
    assert np.abs(np.mean(z)) < 1.5 and 0.3 < np.std(z) < 2.5


@pytest.mark.parametrize("model, n", [("arrhenius", 5), ("arrhenius-student", 4), ("arrhenius-ar1", 4),
                                      ("meta", 10)])
def test_sbc_run_writes_ranks_uniformity_and_figure(model, n, tmp_path, prior_draws_as_posterior):
    ranks, info, uniform = sbc.run_sbc(model, n, tmp_path, seed=3, L=19, draws=40, tune=10,
                                       bins=4, log=lambda m: None)
    for name in ("sbc_ranks.csv", "sbc_replicates.csv", "sbc_uniformity.csv", "sbc_ranks.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = pd.read_csv(tmp_path / "sbc_ranks.csv")
    assert set(saved.columns) >= {"replicate", "parameter", "rank", "L", "truth"}
    assert saved["rank"].between(0, 19).all() and sorted(saved["replicate"].unique()) == list(range(n))
    assert len(info) == n and {"ess_bulk_min", "ess_tail_min", "divergences", "refits"} <= set(info)
    assert set(uniform["parameter"]) == set(saved["parameter"])
    expected = {"arrhenius": {"E[wetland_emission,growing]", "dE[grassland_uptake]", "tau_E[non-growing]",
                              "sigma[wetland_emission]", "method_offset[eddy_covariance]",
                              "eps_E[W1,growing]", "eps_R[G3,non-growing]"},
                "arrhenius-student": {"E[wetland_emission,non-growing]", "nu", "tau_R[growing]",
                                      "eps_E[W4,non-growing]"},
                "arrhenius-ar1": {"rho[wetland_emission]", "rho[grassland_uptake]", "sigma[grassland_uptake]",
                                  "method_offset[eddy_covariance]", "eps_R[W1,non-growing]",
                                  "dE[wetland_emission]"},
                "meta": {"lnRR[growing]", "dlnRR[non-growing-growing]", "tau_study", "tau_site",
                         "tau", "lnRR_new[non-growing]"}}[model]
    assert expected <= set(uniform["parameter"])
    # Every replicate has its own truth (one prior draw each, not one reused).
    first = ranks[ranks["parameter"] == sorted(expected)[0]]
    assert first["truth"].nunique() == n


@pytest.mark.slow
def test_ar1_replicate_is_fitted_as_fit_ea_samples_and_ranked(ar1_setup):
    """One AR(1) replicate end to end with the real sampler (nutpie, fit_ea's options): every
    quantity ranked, ρ per class among them, ranks in 0…L."""
    L = 19
    rows, info = sbc.arrhenius_replicate(0, ar1_setup, L=L, draws=100, tune=150, seed=1)
    ranks = pd.DataFrame(rows)
    names = set(ranks["parameter"])
    assert {f"rho[{c}]" for c in ar1_setup["data"].classes} <= names
    assert len(names) == 47 and ranks["rank"].between(0, L).all()
    assert info["ess_bulk_min"] > 0 and info["refits"] <= 2


def test_a_replicate_that_cannot_be_fitted_is_left_out_with_its_reason():
    """ln|F| = 800 has no floating-point flux (heavy Student-t tails draw such values): the
    replicate is recorded as failed and the run goes on."""
    setup = dict(zip(("data", "config", "prior", "y"), sbc.arrhenius_prior_draws(2, seed=5)))
    setup["y"] = setup["y"].copy()
    setup["y"][0, 3] = 800.0
    sbc._init_worker("arrhenius", setup, {"L": 19, "draws": 40, "tune": 10, "seed": 1})
    rows, info = sbc._worker(0)
    assert rows == [] and info["replicate"] == 0 and info["failed"].startswith("FloatingPointError")


# ---------------------------------------------------------------- the shipped calibration runs
RUNS = Path(sbc.__file__).parent / "sbc_runs"


@pytest.mark.parametrize("model, n_quantities", [("arrhenius", 45), ("arrhenius_ar1", 47), ("meta", 8)])
def test_shipped_sbc_runs_are_uniform_and_recompute(model, n_quantities):
    """The saved uniformity table follows from the saved ranks; a quantity non-uniform at 1 % is
    explained in the README, and none is below the Bonferroni bound over the quantities."""
    ranks = pd.read_csv(RUNS / model / "sbc_ranks.csv")
    saved = pd.read_csv(RUNS / model / "sbc_uniformity.csv")
    again = sbc.uniformity(ranks)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), saved, check_dtype=False)
    assert len(saved) == n_quantities and saved["n"].eq(200).all()
    readme = (RUNS / "README.md").read_text()
    unexplained = [p for p in saved.loc[~saved["uniform_at_1pct"], "parameter"] if f"`{p}`" not in readme]
    assert not unexplained
    assert (saved["p_value"] >= sbc.ALPHA / len(saved)).all()
    info = pd.read_csv(RUNS / model / "sbc_replicates.csv")
    assert len(info) == 200 and (info["divergences"] > 0).mean() <= 0.05


# ---------------------------------------------------------------- the calibration itself (slow)
SBC_N = int(os.environ.get("TPFLUX_SBC_N", "200"))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["arrhenius", "arrhenius-ar1", "meta"])
def test_posteriors_are_calibrated(model, tmp_path):
    """Talts et al. (2018): ranks of prior draws among posterior draws are uniform for every
    quantity. Judged with a Bonferroni bound over the quantities so that the test's own false-alarm
    rate is 1 %; the per-quantity p-values at 1 % are in the CSV (and the report)."""
    _, info, uniform = sbc.run_sbc(model, SBC_N, tmp_path, seed=20261122, workers=2,
                                   log=lambda m: None)
    m = len(uniform)
    worst = uniform.sort_values("p_value").iloc[0]
    assert worst["p_value"] >= sbc.ALPHA / m, (
        f"{worst['parameter']}: p = {worst['p_value']:.2g} < {sbc.ALPHA}/{m}\n"
        + uniform.to_string(index=False))
    assert (info[["ess_bulk_min", "ess_tail_min"]].min(axis=1) >= 99).mean() >= 0.95
    # Divergent fits are fits whose posterior may be off; at target_accept 0.8 they were 20 %.
    assert (info["divergences"] > 0).mean() <= 0.05
