"""Model M3 (models/meta.py) and its entry point inference/fit_rr.py.

Reference numbers: metafor 3.8-1 (R 4.2.2), produced by benchmarks/metafor_reference.R:
  - dat.curtis1998 (Curtis & Wang 1998, Oecologia 113:299; Hedges, Gurevitch & Curtis 1999,
    Ecology 80:1150), exported to tests/data/curtis1998.csv by that script; escalc("ROM") with
    m1i = elevated CO2 (treatment), m2i = ambient (control); moderator = method.
  - the COMPASS-DOE precipitation-manipulation CH4 table (../shared/data/misc/
    EK_methane_precip_manipulation.csv, read at test time), sign-changing rows left out;
    moderator = Measurement Period.
  Model: rma.mv(yi, vi, mods = ~ 0 + level, random = list(~1 | study, ~1 | site), method = "REML").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from data.errors import DataError
from data.synthetic_warming import WarmingTruth, simulate_warming
from data.warming import load_warming, validate_warming
from models.conventions import CI_PROB, CI_QUANTILES
from models.meta import (DEFAULT_TAU_PRIOR, RRSpec, TauPrior, agreement_probability,
                         between_levels, build_rr_model,
                         effect_sizes, level_pairs, nested_normal_logp, overlap_coefficient,
                         parse_tau_prior, prepare, prob_greater, typical_variance)
from tests.helpers import mock_sampling

DATA = Path(__file__).parent / "data"
CURTIS = DATA / "curtis1998.csv"

# metafor's numbers for the same tables (benchmarks/metafor_reference.R; source in the file).
_METAFOR = json.loads((Path(__file__).parent / "data" / "metafor_reference.json").read_text())
METAFOR_REML = _METAFOR["reml"]
METAFOR_ESCALC = {k: [tuple(r) for r in v] for k, v in _METAFOR["escalc"].items()}
WEAK = dict(tau_prior=TauPrior("halfcauchy", 5.0), mu_prior_sd=10.0)


def _table(**over) -> pd.DataFrame:
    base = dict(study=["a", "a", "b"], site=["x", "y", "z"], ecosystem="meadow",
                season=["growing", "non-growing", "growing"], warming_c=[2.0, 4.0, 3.0],
                control_mean=[2.0, 1.0, 3.0], control_sd=[0.5, 0.4, 0.6], control_n=4,
                treatment_mean=[2.6, 1.8, 3.5], treatment_sd=[0.6, 0.5, 0.7], treatment_n=5)
    base.update(over)
    return validate_warming(pd.DataFrame(base))


# ---------------------------------------------------------------- effect sizes
@pytest.mark.parametrize("dataset", ["curtis1998", "ek-precip"])
def test_effect_sizes_match_metafor_escalc(dataset):
    wt = load_warming(CURTIS if dataset == "curtis1998" else "precip-manipulation")
    e = effect_sizes(wt.table, on_sign_change="drop", source=wt.source)
    got = e.table[["yi", "vi"]].to_numpy()[:3]
    np.testing.assert_allclose(got, np.array(METAFOR_ESCALC[dataset]), rtol=1e-8)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 50), st.floats(0.05, 50), st.floats(0.05, 2),
                          st.floats(0.05, 2), st.integers(2, 30), st.integers(2, 30)),
                min_size=1, max_size=8),
       st.booleans())
def test_uptake_is_compared_as_magnitude(rows, corrected):
    mc, mt, cvc, cvt, nc, nt = map(np.array, zip(*rows))
    pos = _table(study=[f"s{i}" for i in range(len(mc))], site="x", season="g", warming_c=np.nan,
                 ecosystem="m", control_mean=mc, control_sd=cvc * mc, control_n=nc,
                 treatment_mean=mt, treatment_sd=cvt * mt, treatment_n=nt)
    neg = pos.assign(control_mean=-pos["control_mean"], treatment_mean=-pos["treatment_mean"])
    a, b = effect_sizes(pos, corrected).table, effect_sizes(neg, corrected).table
    np.testing.assert_allclose(a[["yi", "vi"]], b[["yi", "vi"]], rtol=1e-12)
    assert set(a["direction"]) == {"emission"} and set(b["direction"]) == {"uptake"}
    if not corrected:
        np.testing.assert_allclose(np.exp(b["yi"]), mt / mc, rtol=1e-12)


def test_sign_change_and_zero_are_refused_with_the_row():
    t = _table(treatment_mean=[2.6, -1.8, 3.5])
    with pytest.raises(DataError) as err:
        effect_sizes(t, source="tab.csv")
    assert err.value.row == 3 and err.value.column == "control_mean" and err.value.file == "tab.csv"
    assert "opposite signs" in str(err.value) and "--sign-change drop" in str(err.value)
    with pytest.raises(DataError, match="zero"):
        effect_sizes(_table(control_mean=[2.0, 1.0, 0.0]))
    dropped = effect_sizes(t, on_sign_change="drop")
    assert dropped.dropped == {"sign_change": 1} and len(dropped.table) == 2


def test_real_table_sign_changes_are_named():
    wt = load_warming("precip-manipulation")
    with pytest.raises(DataError) as err:
        effect_sizes(wt.table, source=wt.source, source_columns=wt.source_columns)
    # Line 8 of the file: tundra control 0.14 vs snow-decrease -0.32 mg CH4 m-2 d-1.
    assert err.value.row == 8 and err.value.column == "CH4_control"
    assert "0.14 vs -0.32" in str(err.value)
    assert effect_sizes(wt.table, on_sign_change="drop").dropped == {"sign_change": 5}


def test_lajeunesse_correction_reduces_small_sample_bias():
    # Replicates drawn with a known true ratio. With unequal CVs the plain lnRR is biased by about
    # (CV_C² − CV_T²) / (2n) (Jensen's inequality on ln X̄); the Δ correction removes that term.
    rng = np.random.default_rng(1)
    n, cv_c, cv_t, true_c, true_t, reps = 4, 0.35, 0.1, 1.0, 1.5, 40000
    c = rng.normal(true_c, cv_c * true_c, size=(reps, n))
    t = rng.normal(true_t, cv_t * true_t, size=(reps, n))
    keep = c.mean(1) > 0
    table = pd.DataFrame({"study": "s", "site": "x", "ecosystem": "m", "season": "g",
                          "warming_c": np.nan, "control_mean": c.mean(1)[keep],
                          "control_sd": c.std(1, ddof=1)[keep], "control_n": n,
                          "treatment_mean": t.mean(1)[keep],
                          "treatment_sd": t.std(1, ddof=1)[keep], "treatment_n": n})
    plain = effect_sizes(table, False).table
    delta = effect_sizes(table, True).table
    truth = np.log(true_t / true_c)
    bias_plain, bias_delta = plain["yi"].mean() - truth, delta["yi"].mean() - truth
    assert bias_plain > 5 * np.sqrt(plain["yi"].var() / len(plain))  # the bias is real
    assert abs(bias_delta) < 0.4 * abs(bias_plain)
    assert (delta["vi"] > plain["vi"]).all()


@settings(max_examples=30, deadline=None)
@given(st.floats(0.1, 10), st.floats(0.1, 10), st.floats(0.05, 1.0))
def test_correction_vanishes_with_many_replicates(mc, mt, cv):
    big = _table(study=["s"], site=["x"], season=["g"], warming_c=[1.0], control_mean=[mc],
                 control_sd=[cv * mc], control_n=[10**6], treatment_mean=[mt],
                 treatment_sd=[cv * mt], treatment_n=[10**6])
    a, b = effect_sizes(big, False).table, effect_sizes(big, True).table
    assert abs(a["yi"].iloc[0] - b["yi"].iloc[0]) < 1e-5
    assert abs(a["vi"].iloc[0] - b["vi"].iloc[0]) < 1e-9


# ---------------------------------------------------------------- model pieces
@pytest.fixture(scope="module")
def nested_logp_fn():
    import pytensor
    import pytensor.tensor as pt

    r, vi = pt.vector("r"), pt.vector("vi")
    tk, ts = pt.vector("tk"), pt.scalar("ts")  # τ_site per site (tau_by_level), τ_study
    site_of, sos = pt.matrix("site_of"), pt.matrix("sos")
    return pytensor.function([r, vi, tk, ts, site_of, sos],
                             nested_normal_logp(r, vi, tk, ts, site_of, sos))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_nested_marginal_likelihood_equals_dense_normal(nested_logp_fn, data):
    n_sites = data.draw(st.integers(1, 6))
    study_of_site = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n_sites,
                                                max_size=n_sites)))
    _, study_of_site = np.unique(study_of_site, return_inverse=True)
    rows_per_site = data.draw(st.lists(st.integers(1, 3), min_size=n_sites, max_size=n_sites))
    site = np.repeat(np.arange(n_sites), rows_per_site)
    study = study_of_site[site]
    n = site.size
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    vi, r = rng.uniform(0.01, 1.0, n), rng.normal(0, 1, n)
    ts = data.draw(st.floats(0.0, 2.0))
    tk = np.array(data.draw(st.lists(st.floats(0.0, 2.0), min_size=n_sites, max_size=n_sites)))
    cov = (np.diag(vi) + ts**2 * (study[:, None] == study[None, :])
           + tk[site][:, None] ** 2 * (site[:, None] == site[None, :]))
    dense = stats.multivariate_normal(np.zeros(n), cov).logpdf(r)
    site_of = np.eye(n_sites)[site].T
    sos = np.zeros((study.max() + 1, n_sites))
    sos[study_of_site, np.arange(n_sites)] = 1
    got = nested_logp_fn(r, vi, tk, ts, site_of, sos)
    assert got == pytest.approx(dense, rel=1e-9, abs=1e-9)


def test_typical_variance_and_pairs():
    assert typical_variance(np.full(5, 0.3)) == pytest.approx(0.3)
    v = np.array([0.1, 0.2, 0.4])
    assert min(v) < typical_variance(v) < max(v)
    assert level_pairs(["growing", "non-growing"]) == [("non-growing", "growing")]
    assert len(level_pairs(list("abcd"))) == 6


def test_between_level_statistics_against_closed_forms():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 8000), rng.normal(1, 1, 8000)
    # Overlap of N(0,1) and N(1,1) is 2Φ(−1/2); P(b > a) = Φ(1/√2).
    assert overlap_coefficient(a, b) == pytest.approx(2 * stats.norm.cdf(-0.5), abs=0.03)
    assert prob_greater(b, a) == pytest.approx(stats.norm.cdf(1 / np.sqrt(2)), abs=0.02)
    assert overlap_coefficient(a, rng.normal(0, 1, 8000)) > 0.95
    assert overlap_coefficient(a, a + 20) < 1e-3
    assert agreement_probability(a, a) == pytest.approx(CI_PROB, abs=1e-9)
    z = stats.norm.ppf(0.5 + CI_PROB / 2)
    expect = stats.norm.cdf(z - 1) - stats.norm.cdf(-z - 1)  # draw of N(1,1) in N(0,1)'s interval
    assert agreement_probability(b, a) == pytest.approx(expect, abs=0.02)
    table = between_levels(np.column_stack([a, b]), ["g", "n"])
    assert table.loc[0, "level"] == "n" and table.loc[0, "versus"] == "g"
    assert table.loc[0, "P_diff_gt_0"] > 0.7


def test_tau_prior_parsing():
    assert parse_tau_prior("halfnormal:0.5") == TauPrior("halfnormal", 0.5)
    assert str(parse_tau_prior("HalfCauchy:1")) == "halfcauchy:1"
    for bad in ("gamma:1", "halfnormal:-1", "halfnormal:x"):
        with pytest.raises(ValueError):
            parse_tau_prior(bad)


def test_model_refuses_what_it_cannot_use():
    t = _table()
    e = effect_sizes(t, source="t.csv")
    with pytest.raises(DataError, match="moderator column 'period'"):
        build_rr_model(e, RRSpec(moderator="period"))
    blank = effect_sizes(_table(season=["growing", None, "growing"]), source="t.csv")
    with pytest.raises(DataError) as err:
        build_rr_model(blank)
    assert err.value.row == 3 and err.value.column == "season"
    no_w = effect_sizes(_table(warming_c=[2.0, np.nan, 3.0]))
    with pytest.raises(DataError, match="warming"):
        build_rr_model(no_w, RRSpec(warming_slope=True))
    m = build_rr_model(e, RRSpec(warming_slope=True))
    assert {"lnRR", "tau_study", "tau_site", "lnRR_per_degC"} <= {v.name for v in m.free_RVs}
    assert prepare(e, RRSpec()).levels == ["growing", "non-growing"]
    ordered = prepare(e, RRSpec(levels=("non-growing", "growing")))
    assert ordered.levels == ["non-growing", "growing"] and list(ordered.level_idx) == [1, 0, 1]
    with pytest.raises(DataError, match="not in the requested order"):
        prepare(e, RRSpec(levels=("growing",)))


@pytest.mark.parametrize("by_level", [False, True])
def test_sites_are_grouped_on_study_and_site_not_on_a_joined_name(by_level):
    """Study 'A/B' site 'C' and study 'A' site 'B/C' both read 'A/B/C' when joined with '/':
    they are two sites of two studies, and a site shared by rows stays one group."""
    t = _table(study=["A/B", "A", "A"], site=["C", "B/C", "B/C"],
               season=["growing", "growing", "growing"] if not by_level else
               ["growing|x", "growing|x", "growing|x"])
    d = prepare(effect_sizes(t), RRSpec(tau_by_level=by_level))
    assert d.site_idx[0] != d.site_idx[1]
    assert d.site_idx[1] == d.site_idx[2]
    assert len(d.sites) == len(set(d.sites)) == 2
    # every site group lies in one study (sites are nested in studies)
    for group in set(d.site_idx):
        assert len(set(d.study_idx[d.site_idx == group])) == 1


@pytest.mark.parametrize("parameterisation", ["marginal", "noncentred"])
@pytest.mark.parametrize("by_level", [False, True])
def test_model_logp_is_finite_at_initial_point(parameterisation, by_level):
    wt = simulate_warming(n_studies=6, seed=4)
    spec = RRSpec(parameterisation=parameterisation, tau_by_level=by_level)
    m = build_rr_model(effect_sizes(wt.table), spec)
    assert np.isfinite(m.compile_logp()(m.initial_point()))
    assert m["tau_site"].ndim == int(by_level)


# ---------------------------------------------------------------- sampling
def _fit(effects, spec, draws=500, chains=2, seed=11):
    from inference.fit_rr import sample_rr

    return sample_rr(effects, spec, chains=chains, draws=draws, tune=draws, seed=seed)


def _check_against_reml(dt, dataset):
    import arviz as az

    post = dt["posterior"].to_dataset()
    ref = pd.DataFrame(METAFOR_REML).query("dataset == @dataset")
    mcse = az.mcse(post["lnRR"], method="mean")
    for _, row in ref.iterrows():
        x = post["lnRR"].sel(level=row["level"]).to_numpy().ravel()
        sd = x.std(ddof=1)
        # Within 0.1 posterior SD, allowing the Monte Carlo error of the mean.
        allowed = 0.1 * sd + 3 * float(mcse.sel(level=row["level"]))
        assert abs(x.mean() - row["estimate"]) <= allowed, (row["level"], x.mean(), row["estimate"], sd)
        assert 0.5 < sd / row["se"] < 2.0
    tau = np.median(post["tau"].to_numpy())
    assert 0.5 < tau / np.sqrt(ref["tau2"].iloc[0]) < 2.0  # same magnitude


def test_precipitation_table_matches_metafor_reml():
    wt = load_warming("precip-manipulation")
    e = effect_sizes(wt.table, on_sign_change="drop", source=wt.source)
    # metafor pools the two emission rows with the uptake rows as magnitudes: so does this fit.
    dt = _fit(e, RRSpec(moderator="Measurement Period", directions="pool", **WEAK), draws=1000)
    assert int(dt["sample_stats"]["diverging"].sum()) == 0
    _check_against_reml(dt, "ek-precip")


def test_curtis1998_matches_metafor_reml():
    wt = load_warming(CURTIS)
    assert len(wt.table) == 102 and wt.table["study"].nunique() == 29
    e = effect_sizes(wt.table, source=wt.source)
    dt = _fit(e, RRSpec(moderator="method", **WEAK), draws=1000)
    assert int(dt["sample_stats"]["diverging"].sum()) == 0
    _check_against_reml(dt, "curtis1998")


@pytest.mark.slow
def test_parameterisations_agree():
    wt = simulate_warming(n_studies=12, seed=5)
    e = effect_sizes(wt.table)
    a = _fit(e, RRSpec(parameterisation="marginal"), draws=1000)["posterior"].to_dataset()
    b = _fit(e, RRSpec(parameterisation="noncentred"), draws=1000)["posterior"].to_dataset()
    for name in ("lnRR", "tau"):
        diff = np.abs(a[name].mean(("chain", "draw")) - b[name].mean(("chain", "draw")))
        assert float(diff.max()) < 0.25 * float(a[name].std(("chain", "draw")).min()), name


def test_recovers_known_season_rr_with_warming_slope():
    truth = WarmingTruth(beta_per_c=0.12)
    wt = simulate_warming(n_studies=30, seed=8, truth=truth)
    e = effect_sizes(wt.table)
    d = prepare(e, RRSpec(warming_slope=True))
    dt = _fit(e, RRSpec(warming_slope=True))
    post = dt["posterior"].to_dataset()
    q_lo, _, q_hi = CI_QUANTILES
    lo, hi = (post["lnRR"].quantile(q, dim=("chain", "draw")) for q in (q_lo, q_hi))
    for season, ln_rr in truth.ln_rr().items():
        # lnRR[season] is the response at the table's mean warming.
        expected = ln_rr + truth.beta_per_c * (d.warming_ref_c - truth.reference_warming_c)
        assert float(lo.sel(level=season)) < expected < float(hi.sel(level=season)), season
    beta = post["lnRR_per_degC"].to_numpy()
    assert np.quantile(beta, q_lo) < truth.beta_per_c < np.quantile(beta, q_hi)
    assert np.quantile(beta, q_lo) > 0  # the slope is detected


@pytest.mark.slow
def test_interval_coverage_over_repeated_simulations():
    truth = WarmingTruth()
    q_lo, _, q_hi = CI_QUANTILES
    hits = []
    for seed in range(20):
        e = effect_sizes(simulate_warming(seed=100 + seed, truth=truth).table)
        post = _fit(e, RRSpec(), draws=400, seed=seed)["posterior"].to_dataset()
        for season, ln_rr in truth.ln_rr().items():
            x = post["lnRR"].sel(level=season).to_numpy().ravel()
            hits.append(np.quantile(x, q_lo) < ln_rr < np.quantile(x, q_hi))
    assert np.mean(hits) >= 0.85  # 40 intervals at 95 %


# ---------------------------------------------------------------- entry point
@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    from inference.fit_rr import main

    out = tmp_path_factory.mktemp("rr") / "run"
    rc = main(["--dataset", "synthetic-warming", "--chains", "2", "--draws", "500", "--tune", "500",
               "--seed", "3", "--out", str(out), "--allow-unconverged"])
    return rc, out


def test_run_writes_the_contract(synthetic_run):
    import arviz as az

    rc, out = synthetic_run
    assert rc == 0
    summary = pd.read_csv(out / "rr_summary.csv")
    assert list(summary.columns) == ["quantity", "level", "versus", "mean", "sd", "median",
                                     "ci_low", "ci_high", "ess_bulk", "ess_tail", "r_hat"]
    needed = {"RR", "lnRR", "tau", "I2", "RR_pred_low", "RR_pred_high", "P_diff_gt_0", "overlap",
              "p_agree", "warming_c"}
    assert needed <= set(summary["quantity"])
    rr = summary[summary["quantity"] == "RR"].set_index("level")
    pred_lo = summary[summary["quantity"] == "RR_pred_low"].set_index("level")["median"]
    pred_hi = summary[summary["quantity"] == "RR_pred_high"].set_index("level")["median"]
    assert (pred_lo < rr["ci_low"]).all() and (pred_hi > rr["ci_high"]).all()
    pair = summary[summary["quantity"] == "P_diff_gt_0"].iloc[0]
    assert (pair["level"], pair["versus"]) == ("non-growing", "growing")
    diag = json.loads((out / "diagnostics.json").read_text())
    assert {"r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences", "verdict"} <= set(diag)
    dt = az.from_netcdf(out / "rr_posterior.nc")
    assert {"posterior", "observed_data", "constant_data", "sample_stats", "prior"} <= set(dt.children)
    assert {"tpflux_config", "data_sha256", "package_versions", "seed", "command_line"} <= set(dt.attrs)
    config = json.loads(dt.attrs["tpflux_config"])
    assert config["synthetic"] and config["truth"]["RR"]["growing"] == 1.3


def test_run_recovers_known_season_rr(synthetic_run):
    _, out = synthetic_run
    summary = pd.read_csv(out / "rr_summary.csv")
    lnrr = summary[summary["quantity"] == "lnRR"].set_index("level")
    for season, ln_rr in WarmingTruth().ln_rr().items():
        assert lnrr.loc[season, "ci_low"] < ln_rr < lnrr.loc[season, "ci_high"], season
    # The simulated seasons differ (ln 1.8 − ln 1.3 = 0.33).
    p = summary[summary["quantity"] == "P_diff_gt_0"]["mean"].iloc[0]
    assert p > 0.99


def test_forest_plot_from_saved_run(synthetic_run):
    from reports.forest_rr import save_forest

    _, out = synthetic_run
    png = save_forest(out)
    assert png.exists() and png.stat().st_size > 10_000


@pytest.mark.slow
def test_same_seed_same_summary(synthetic_run, tmp_path):
    from inference.fit_rr import main

    _, first = synthetic_run
    again = tmp_path / "again"
    main(["--dataset", "synthetic-warming", "--chains", "2", "--draws", "500", "--tune", "500",
          "--seed", "3", "--out", str(again), "--allow-unconverged"])
    pd.testing.assert_frame_equal(pd.read_csv(first / "rr_summary.csv"),
                                  pd.read_csv(again / "rr_summary.csv"))


@pytest.mark.slow
def test_prior_sensitivity_table(tmp_path):
    from inference.fit_rr import main
    from models.meta import SENSITIVITY_TAU_PRIORS

    out = tmp_path / "sens"
    rc = main(["--dataset", "precip-manipulation", "--sign-change", "drop", "--chains", "2",
               "--draws", "300", "--tune", "300", "--tau-prior-sensitivity", "--out", str(out),
               "--allow-unconverged"])
    assert rc == 0
    table = pd.read_csv(out / "rr_prior_sensitivity.csv")
    assert set(table["tau_prior"]) == {str(p) for p in (*SENSITIVITY_TAU_PRIORS, DEFAULT_TAU_PRIOR)}
    tau = table[table["quantity"] == "tau"].set_index("tau_prior")["median"]
    # A tighter prior pulls the few-study heterogeneity down.
    assert tau["halfnormal:0.25"] < tau["halfcauchy:1"]


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    from inference.fit_rr import main

    out = tmp_path / "never"
    rc = main(["--dataset", "precip-manipulation", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert len(err) == 1 and err[0].startswith("error: ") and ":8:CH4_control:" in err[0]
    table = tmp_path / "t.csv"
    _table().drop(columns="control_sd").to_csv(table, index=False)
    assert main(["--table", str(table), "--out", str(out)]) == 2 and not out.exists()
    _table().to_csv(table, index=False)
    assert main(["--table", str(table), "--moderator", "nope", "--out", str(out)]) == 2
    assert not out.exists()


# ---------------------------------------------------------------- Python API (tpflux.fit_rr)
# The same options as the synthetic_run fixture's command line.
SYNTHETIC = dict(dataset="synthetic-warming", chains=2, draws=500, tune=500, seed=3)
TIMING_STATS = ("perf_counter_diff", "perf_counter_start", "process_time_diff")


def _assert_same_draws(a, b):
    for group in ("posterior", "prior", "sample_stats"):
        left, right = a[group].to_dataset(), b[group].to_dataset()
        assert set(left.data_vars) == set(right.data_vars), group
        for name in left.data_vars:
            if name not in TIMING_STATS:
                np.testing.assert_array_equal(left[name].values, right[name].values,
                                              err_msg=f"{group}/{name}")


@pytest.fixture
def fast_sampling(monkeypatch):
    """NUTS replaced by prior draws (plumbing only), compiled without numba: the few draws take
    less time than its compilation."""
    import pytensor

    mock_sampling(monkeypatch)
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        yield


@pytest.fixture
def no_work(monkeypatch):
    """Any data load or sampling fails the test: a bad option must be refused before either."""
    import pymc as pm

    import data.warming

    monkeypatch.setattr(pm, "sample", lambda **kw: pytest.fail("sampled"))
    monkeypatch.setattr(data.warming, "load_warming", lambda *a, **kw: pytest.fail("data loaded"))


@pytest.fixture(scope="module")
def api_fit():
    from tpflux.meta import fit_rr

    return fit_rr(**SYNTHETIC, progress=False)


def test_api_and_cli_give_identical_summary_and_arrays(synthetic_run, api_fit):
    from data.storage import read_datatree
    from tpflux.meta import ResponseRatioFit

    _, out = synthetic_run
    assert isinstance(api_fit, ResponseRatioFit) and api_fit.synthetic
    pd.testing.assert_frame_equal(pd.read_csv(out / "rr_summary.csv"), api_fit.summary())
    cli_tree = read_datatree(out / "rr_posterior.nc")
    _assert_same_draws(cli_tree, api_fit.datatree)
    assert "inference.fit_rr" in cli_tree.attrs["command_line"]
    assert "--seed 3" in cli_tree.attrs["command_line"]
    assert "from Python" in api_fit.datatree.attrs["command_line"]
    assert api_fit.diagnostics["verdict"] == json.loads((out / "diagnostics.json").read_text())["verdict"]


def test_saved_fit_loads_back_as_the_same_result(api_fit, tmp_path):
    import tpflux
    from tpflux.meta import ResponseRatioFit

    api_fit.save(tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == {
        "rr_posterior.nc", "rr_summary.csv", "diagnostics.json", "run.json"}
    loaded = tpflux.load(tmp_path / "run")
    assert type(loaded) is ResponseRatioFit and loaded.config == api_fit.config
    pd.testing.assert_frame_equal(loaded.summary(), api_fit.summary())
    assert loaded.diagnostics["verdict"] == api_fit.diagnostics["verdict"]
    assert loaded.result_text() == api_fit.result_text()
    assert "non-growing vs growing" in loaded.result_text()
    assert loaded.run_id == api_fit.run_id


def test_refit_from_attrs_gives_identical_arrays(synthetic_run):
    import tpflux
    from tpflux.meta import ResponseRatioConfig

    _, out = synthetic_run
    run = tpflux.load(out)
    config = ResponseRatioConfig.from_attrs(run.datatree.attrs)
    assert config == ResponseRatioConfig(**SYNTHETIC) == run.config
    again = run.refit(progress=False)
    _assert_same_draws(run.datatree, again.datatree)
    pd.testing.assert_frame_equal(again.summary(), run.summary())


def test_plot_forest_returns_an_undrawn_figure(api_fit):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    before = plt.get_fignums()
    fig = api_fit.plot_forest()
    assert isinstance(fig, Figure) and plt.get_fignums() == before
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sum(label.startswith("pooled RR") for label in labels) == 2  # one per season
    rank = api_fit.plot_rank()  # ArviZ's rank statistics, drawn as an undisplayed figure
    assert isinstance(rank, Figure) and len(rank.axes) >= 4
    plt.close(rank)


@pytest.mark.parametrize("option, value, column", [
    ("mu_prior_sd", 0.0, "--mu-prior-sd"), ("mu_prior_sd", float("nan"), "--mu-prior-sd"),
    ("levels", ("growing", "growing"), "--levels"), ("levels", "growing,,non-growing", "--levels"),
    ("tau_prior", "gamma:1", "--tau-prior"), ("tau_prior", "halfnormal:0", "--tau-prior"),
    ("sign_change", "ignore", "--sign-change"), ("parameterisation", "centred", "--parameterisation"),
    ("draws", 0, "--draws"), ("chains", 1.5, "--chains"), ("seed", -1, "--seed")])
def test_bad_option_is_refused_before_any_work(no_work, option, value, column):
    from tpflux.meta import fit_rr

    with pytest.raises(DataError) as err:
        fit_rr(dataset="synthetic-warming", **{option: value})
    assert err.value.column == column


def test_config_normalises_what_it_reads_back():
    from tpflux.meta import ResponseRatioConfig

    c = ResponseRatioConfig(levels="b, a", tau_prior=TauPrior("halfnormal", 0.5), table=DATA / "x.csv")
    assert c.levels == ("b", "a") and c.tau_prior == "halfnormal:0.5" and c.table == str(DATA / "x.csv")
    assert parse_tau_prior(c.tau_prior) == TauPrior("halfnormal", 0.5)
    assert ResponseRatioConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(DataError, match="both a table and a dataset"):
        ResponseRatioConfig(table="t.csv", dataset="synthetic-warming")
    with pytest.raises(DataError):
        ResponseRatioConfig(dataset="curtis1998")


@pytest.mark.parametrize("argv, column", [(["--mu-prior-sd", "0"], "--mu-prior-sd"),
                                          (["--levels", "growing,growing"], "--levels"),
                                          (["--tau-prior", "halfnormal:-1"], "--tau-prior")])
def test_cli_bad_option_exits_2_and_writes_nothing(no_work, tmp_path, capsys, argv, column):
    from inference.fit_rr import main

    out = tmp_path / "never"
    assert main(["--dataset", "synthetic-warming", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: -:-:{column}: ")
    assert not out.exists()


def test_in_memory_table_fits_as_its_csv(fast_sampling, tmp_path):
    from tpflux.meta import fit_rr

    table = simulate_warming(n_studies=8, seed=2).table
    path = tmp_path / "warming.csv"
    table.to_csv(path, index=False)
    options = dict(chains=2, draws=40, tune=10, seed=9, progress=False)
    from_frame, from_file = fit_rr(table, **options), fit_rr(path, **options)
    pd.testing.assert_frame_equal(from_frame.summary(), from_file.summary())
    assert from_file.config.table == str(path) and from_frame.config.table is None
    assert from_file.refit(progress=False).summary().equals(from_file.summary())
    with pytest.raises(DataError, match="in-memory table"):
        from_frame.refit()
    with pytest.raises(DataError) as err:
        fit_rr(table.drop(columns="control_sd"), **options)
    assert err.value.column == "control_sd"
    with pytest.raises(DataError, match="no warming table"):
        fit_rr(**options)
    with pytest.raises(DataError, match="both a table and a dataset"):
        fit_rr(table, dataset="synthetic-warming", **options)


def test_prior_sensitivity_is_an_extra_table_that_loads_back(fast_sampling, tmp_path):
    import tpflux
    from models.meta import SENSITIVITY_TAU_PRIORS
    from tpflux.meta import fit_rr

    fit = fit_rr(dataset="synthetic-warming", tau_prior_sensitivity=True, chains=1, draws=20,
                 tune=5, seed=1, progress=False)
    table = fit.prior_sensitivity
    assert set(table["tau_prior"]) == {str(p) for p in (*SENSITIVITY_TAU_PRIORS, DEFAULT_TAU_PRIOR)}
    fit.save(tmp_path / "run")
    assert (tmp_path / "run" / "rr_prior_sensitivity.csv").exists()
    pd.testing.assert_frame_equal(tpflux.load(tmp_path / "run").prior_sensitivity, table)


def test_existing_run_folder_needs_overwrite(synthetic_run, fast_sampling, tmp_path, capsys):
    import shutil

    from data.storage import read_marker
    from inference.fit_rr import main

    _, first = synthetic_run
    before = (first / "rr_summary.csv").read_bytes()
    args = ["--dataset", "synthetic-warming", "--chains", "1", "--draws", "20", "--tune", "5",
            "--allow-unconverged"]
    assert main([*args, "--out", str(first)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0] and "fit_rr" in err[0]
    assert (first / "rr_summary.csv").read_bytes() == before
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    (copy / "stale.txt").write_text("from an earlier run")
    old_id = read_marker(copy)["run_id"]
    assert main([*args, "--out", str(copy), "--overwrite"]) == 0
    assert not (copy / "stale.txt").exists() and read_marker(copy)["run_id"] != old_id
    assert (copy / "rr_summary.csv").read_bytes() != before


def test_gate_advice_never_suggests_the_setting_in_use():
    from tpflux.meta import ResponseRatioConfig, gate_advice

    default = gate_advice(ResponseRatioConfig())
    assert "--parameterisation" not in default and "halfnormal:0.5" in default
    assert "--parameterisation marginal" in gate_advice(ResponseRatioConfig(parameterisation="noncentred"))
    tight = gate_advice(ResponseRatioConfig(tau_prior="halfnormal:0.5"))
    assert "halfnormal:0.5" not in tight and "halfnormal:0.25" in tight


# ---------------------------------------------------------------- several moderators, direction
# metafor 3.8-1 numbers for the issue-16 features (benchmarks/metafor_reference.R, third output:
# tests/data/metafor_features.json; its "source" names the versions): rma.mv with moderators on
# dat.curtis1998; rma / regtest / leave1out / cumul on dat.bcg (Colditz et al. 1994), whose log
# risk ratios the script exports to tests/data/bcg.csv. Bayesian fits use the WEAK priors above
# (τ ~ half-Cauchy(5) each, level means ~ Normal(0, 10), coefficients scaled alike).
FEATURES = json.loads((DATA / "metafor_features.json").read_text())


def _bcg_effects():
    """dat.bcg as effect sizes (yi, vi given): one study and one site per trial."""
    from models.meta import effects_from_yi_vi

    raw = pd.read_csv(DATA / "bcg.csv")
    trial = "trial" + raw["trial"].astype(str)
    return effects_from_yi_vi(raw.assign(study=trial, site=trial), str(DATA / "bcg.csv"))


def _within_tenth_sd(draws, reference, mcse=0.0):
    draws = np.ravel(draws)
    sd = draws.std(ddof=1)
    assert abs(draws.mean() - reference) <= 0.1 * sd + 3 * mcse, (draws.mean(), reference, sd)


def test_moderator_terms_follow_r_coding():
    from models.meta import moderator_design, parse_moderators, split_terms

    assert parse_moderators("season, warming_c + C(year)") == ("season", "warming_c", "C(year)")
    for bad in ("season,,x", "a,a", ""):
        with pytest.raises(ValueError):
            parse_moderators(bad)
    e = effect_sizes(load_warming(CURTIS).table)
    t = e.table.assign(time=[str(x) for x in range(len(e.table))])  # read as text, still numeric
    assert split_terms(t, ("time", "method", "fungrp")) == ("method", ("time", "fungrp"))
    assert split_terms(t, ("time",)) == (None, ("time",))
    e.table["time"] = t["time"]
    d = moderator_design(e, ("fungrp", "time", "C(genus)"), 2.0)
    assert d.names[:3] == ["fungrp=GYMNO", "fungrp=N2FIX", "time"]
    assert d.versus[:3] == ["fungrp=ANGIO", "fungrp=ANGIO", None]
    assert all(n.startswith("genus=") for n in d.names[3:])
    x = d.X[:, 2]
    assert abs(x.mean()) < 1e-9 and d.centres["time"] == pytest.approx(50.5)
    assert d.prior_sd[2] == pytest.approx(2.0 / np.arange(102).std())
    with pytest.raises(DataError, match="not in the table"):
        moderator_design(e, ("nope",), 2.0)
    with pytest.raises(DataError, match="one value"):
        moderator_design(effect_sizes(_table()), ("control_n",), 2.0)
    with pytest.raises(DataError) as err:
        moderator_design(effect_sizes(_table(ecosystem=["a", None, "b"])), ("ecosystem",), 2.0)
    assert err.value.row == 3 and err.value.column == "ecosystem"


def test_flux_directions_are_never_pooled_silently():
    mixed = effect_sizes(_table(control_mean=[2.0, -1.0, 3.0], treatment_mean=[2.6, -1.8, 3.5]),
                         source="t.csv")
    d = prepare(mixed, RRSpec())
    assert d.design.names == ["direction=uptake"] and "direction added" in d.direction_note
    with pytest.raises(DataError) as err:
        prepare(mixed, RRSpec(directions="refuse"))
    assert err.value.row == 3 and err.value.column == "direction"
    assert "emission (rows 2, 4)" in str(err.value) and "uptake (rows 3)" in str(err.value)
    assert "\n" not in str(err.value)
    pooled = prepare(mixed, RRSpec(directions="pool"))
    assert pooled.design.names == [] and "pooled as magnitudes" in pooled.direction_note
    by_direction = prepare(mixed, RRSpec(moderator="direction", directions="refuse"))
    assert by_direction.levels == ["emission", "uptake"] and by_direction.direction_note is None
    one = prepare(effect_sizes(_table()), RRSpec(directions="refuse"))
    assert one.direction_note is None and one.design.names == []


def test_curtis1998_moderators_match_metafor_rma_mv():
    import arviz as az

    wt = load_warming(CURTIS)
    e = effect_sizes(wt.table, source=wt.source)
    ref = FEATURES["curtis_mods"]
    spec = RRSpec(moderator="method", moderators=("fungrp", "time"), **WEAK)
    post = _fit(e, spec, draws=1000)["posterior"].to_dataset()
    for name, estimate in zip(ref["name"], ref["estimate"]):
        if name.startswith("method"):
            x = post["lnRR"].sel(level=name[len("method"):])
        else:
            x = post["beta"].sel(coef="time" if name.startswith("I(time") else
                                 "fungrp=" + name[len("fungrp"):])
        _within_tenth_sd(x.to_numpy(), estimate, float(az.mcse(x, method="mean")))


@pytest.fixture(scope="module")
def bcg_fit():
    e = _bcg_effects()
    spec = RRSpec(moderator=None, **WEAK)
    return e, spec, _fit(e, spec, draws=1000, chains=4)


def test_bcg_random_effects_and_leave_one_out_match_metafor(bcg_fit):
    from inference.fit_rr import leave_one_out_table

    e, spec, dt = bcg_fit
    post = dt["posterior"].to_dataset()
    _within_tenth_sd(post["lnRR"].to_numpy(), FEATURES["bcg_rma"]["estimate"])
    # metafor's leave1out: rma refitted without each trial; here PSIS from the full fit.
    table = leave_one_out_table(e, spec, dt, chains=2, draws=500, tune=500, seed=3)
    lnrr = table[table["quantity"] == "lnRR"].set_index("study")
    ref = FEATURES["bcg_leave1out"]
    for trial, estimate in zip(ref["trial"], ref["estimate"]):
        row = lnrr.loc[f"trial{trial}"]
        assert abs(row["mean"] - estimate) <= 0.1 * row["sd"] + 0.02, (trial, row["mean"], estimate)
    # Leaving a trial out moves the estimate the way metafor's refit does.
    got = lnrr.loc[[f"trial{t}" for t in ref["trial"]], "mean"].to_numpy()
    assert np.corrcoef(got, ref["estimate"])[0, 1] > 0.95


def test_bcg_small_study_test_matches_metafor_regtest():
    from inference.fit_rr import small_study_table

    e = _bcg_effects()
    out = small_study_table(e, RRSpec(moderator=None, **WEAK), chains=4, draws=1000, tune=1000,
                            seed=5, say=lambda m: None)
    slope = out[out["quantity"] == "egger_slope"].iloc[0]
    limit = out[out["quantity"] == "limit_lnRR"].iloc[0]
    ref = FEATURES["bcg_regtest"]
    assert abs(slope["mean"] - ref["slope"]) <= 0.1 * slope["sd"] + 0.03
    assert abs(limit["mean"] - ref["limit"]) <= 0.1 * limit["sd"] + 0.03
    p = out[out["quantity"] == "P_slope_gt_0"]["mean"].iloc[0]
    # metafor: z = −0.80, p = 0.42 (no evidence of asymmetry); the posterior agrees.
    assert 0.05 < p < 0.5


@pytest.mark.slow
def test_bcg_cumulative_matches_metafor_cumul():
    from inference.fit_rr import cumulative_table

    e = _bcg_effects()
    out = cumulative_table(e, RRSpec(moderator=None, **WEAK), "year", chains=2, draws=1000,
                           tune=1000, seed=7, say=lambda m: None)
    ref = FEATURES["bcg_cumul"]
    lnrr = out[out["quantity"] == "lnRR"].set_index("step")
    assert list(out.drop_duplicates("step")["year"]) == ref["year"][1:]
    # From 6 trials on τ is estimated well enough for a weak-prior posterior and REML to agree;
    # with 2–5 trials the half-Cauchy(5) τ prior dominates (stated in the docstring of the test).
    for step in range(6, 14):
        row = lnrr.loc[step]
        assert abs(row["mean"] - ref["estimate"][step - 1]) <= 0.1 * row["sd"] + 0.02, step


# ---------------------------------------------------------------- templates (examples/)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_template_chamber_is_read_by_the_chamber_reader_and_inspect(capsys):
    from data.chamber import read_chamber_csv
    from data.inspect import main

    obs = read_chamber_csv(EXAMPLES / "template_chamber.csv")
    t = obs.table
    assert len(t) == 16 and set(t["site"]) == {"meadow_A", "steppe_B"}
    # 0.85 mg CH4 m-2 h-1 = 0.85e-3 / 16.04246 g mol-1 / 3600 s · 1e9 nmol mol-1
    first = t[t["site"] == "meadow_A"].sort_values("date")["flux"].iloc[0]
    assert first == pytest.approx(0.85e-3 / 16.04246 / 3600 * 1e9, rel=1e-6)
    assert (t.loc[t["site"] == "steppe_B", "flux"] < 0).all()
    assert main(["--data", str(EXAMPLES / "template_chamber.csv"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_rows"] == 16 and [s["site"] for s in info["sites"]] == ["meadow_A", "steppe_B"]


def test_template_warming_is_read_and_fitted(fast_sampling):
    from tpflux.meta import fit_rr

    path = EXAMPLES / "template_warming.csv"
    wt = load_warming(path)
    assert len(wt.table) == 8 and wt.table["study"].nunique() == 4
    fit = fit_rr(path, moderators="season,warming_c", chains=1, draws=20, tune=5, seed=1,
                 progress=False)
    s = fit.summary()
    assert set(s.loc[s["quantity"] == "lnRR", "level"]) == {"growing", "non-growing"}
    coefs = s[s["quantity"] == "beta"]
    assert set(coefs["level"]) == {"warming_c", "direction=uptake"}
    assert "direction added as a moderator" in fit.result_text()
    # every column the README documents is in the template, and the other way round
    readme = (EXAMPLES / "README.md").read_text()
    for name in pd.read_csv(path, nrows=0).columns:
        assert f"`{name}`" in readme, name


def test_extra_analyses_are_tables_and_figures_that_load_back(fast_sampling, tmp_path):
    import tpflux
    from reports.forest_rr import save_all
    from tpflux.meta import fit_rr

    fit = fit_rr(EXAMPLES / "template_warming.csv", moderators="season,ecosystem",
                 directions="pool", small_study_test=True, leave_one_out=True, cumulative="year",
                 tau_prior_sensitivity=True, chains=1, draws=30, tune=5, seed=2, progress=False)
    assert "pooled as magnitudes" in fit.result_text()
    assert set(fit.small_study["quantity"]) == {"egger_slope", "limit_lnRR", "P_slope_gt_0"}
    loo = fit.leave_one_out
    studies = fit.datatree["posterior"]["loglik_study"].coords["study"].values
    assert set(loo["study"]) == set(studies)
    assert {"lnRR", "tau", "beta"} <= set(loo["quantity"])
    cum = fit.cumulative
    assert list(cum.drop_duplicates("step")["year"]) == [2017, 2018, 2020]
    assert list(cum.drop_duplicates("step")["step"]) == [2, 3, 4]
    text = fit.result_text()
    assert "small-study" in text and "leave-one-study-out" in text and "τ prior sensitivity" in text
    fit.save(tmp_path / "run")
    loaded = tpflux.load(tmp_path / "run")
    pd.testing.assert_frame_equal(loaded.leave_one_out, loo)
    pd.testing.assert_frame_equal(loaded.cumulative, cum)
    names = {p.name for p in save_all(tmp_path / "run")}
    assert names == {"forest_rr.png", "funnel_rr.png", "leave1out_rr.png", "cumulative_rr.png",
                     "prior_sensitivity_rr.png"}


@pytest.mark.parametrize("argv, column", [(["--moderators", "season,nope"], "nope"),
                                          (["--moderators", "season,,x"], "--moderators"),
                                          (["--cumulative", "year"], "year"),
                                          (["--directions", "refuse"], "direction")])
def test_cli_bad_moderators_exit_2_before_sampling(monkeypatch, tmp_path, capsys, argv, column):
    import pymc as pm

    from inference.fit_rr import main

    monkeypatch.setattr(pm, "sample", lambda **kw: pytest.fail("sampled"))
    out = tmp_path / "never"
    assert main(["--dataset", "synthetic-warming", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and f":{column}:" in err[0]
    assert not out.exists()
