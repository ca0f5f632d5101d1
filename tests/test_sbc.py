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
    g = data.obs["group"].to_numpy()
    c = pd.Categorical(data.groups["flux_class"], categories=data.classes).codes[g]
    s = pd.Categorical(data.groups["season"], categories=data.seasons).codes[g]
    slope = truth["E"].to_numpy()[c, s] + truth["eps_E"].to_numpy()[g]
    intercept = truth["lnR"].to_numpy()[c, s] + truth["eps_R"].to_numpy()[g]
    offsets = dict(zip(data.methods, truth["method_offset"].to_numpy()))
    intercept = intercept + data.obs["method"].map(offsets).fillna(0.0).to_numpy()
    resid = y[k] - slope * data.obs["x"].to_numpy() - intercept
    for i, cls in enumerate(data.classes):
        sd = resid[c == i].std()
        assert sd == pytest.approx(float(truth["sigma"][i]), rel=0.15)
    # The design really has what M1 needs: two classes, two seasons, several sites, a method offset.
    assert len(data.classes) == 2 and len(data.seasons) == 2 and data.methods
    assert data.groups["site"].nunique() >= 6 and data.groups["n"].between(30, 50).all()


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


@pytest.mark.parametrize("model, n", [("arrhenius", 5), ("arrhenius-student", 4), ("meta", 10)])
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
                "meta": {"lnRR[growing]", "dlnRR[non-growing-growing]", "tau_study", "tau_site",
                         "tau", "lnRR_new[non-growing]"}}[model]
    assert expected <= set(uniform["parameter"])
    # Every replicate has its own truth (one prior draw each, not one reused).
    first = ranks[ranks["parameter"] == sorted(expected)[0]]
    assert first["truth"].nunique() == n


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


@pytest.mark.parametrize("model, n_quantities", [("arrhenius", 45), ("meta", 8)])
def test_shipped_sbc_runs_are_uniform_and_recompute(model, n_quantities):
    """The saved uniformity table follows from the saved ranks, and no quantity is non-uniform."""
    ranks = pd.read_csv(RUNS / model / "sbc_ranks.csv")
    saved = pd.read_csv(RUNS / model / "sbc_uniformity.csv")
    again = sbc.uniformity(ranks)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), saved, check_dtype=False)
    assert len(saved) == n_quantities and saved["n"].eq(200).all()
    assert saved["uniform_at_1pct"].all()
    info = pd.read_csv(RUNS / model / "sbc_replicates.csv")
    assert len(info) == 200 and (info["divergences"] > 0).mean() <= 0.05


# ---------------------------------------------------------------- the calibration itself (slow)
SBC_N = int(os.environ.get("TPFLUX_SBC_N", "200"))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["arrhenius", "meta"])
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
