"""Global budget consistency: resampling variants, agreement, Bayesian model, RF upscaling, CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from data.errors import DataError
from models import budget as mb
from models import rs_upscaling as ru
from tests.helpers import assert_trees_equal
from tests.shared_data import require_data


@pytest.fixture(scope="module")
def inputs():
    """The inputs of a default run (SRDB-derived ratio records, IGBP.txt area shares)."""
    from tpflux.carbon_budget import BudgetRunConfig, budget_inputs

    return require_data(budget_inputs, BudgetRunConfig(bayes=False, rf=False))


def _standardised(n: int, mean: float, sd: float, seed: int = 0) -> np.ndarray:
    z = np.random.default_rng(seed).normal(size=n)
    z = (z - z.mean()) / z.std(ddof=1)
    return mean + sd * z


# ---------------------------------------------------------------- resampling variants
def test_sd_fill_variants_on_a_hand_checkable_case():
    values = np.array([100.0, 200.0, 50.0, 80.0])
    sd = np.array([10.0, np.nan, 15.0, np.nan])  # CVs 0.1 and 0.3
    np.testing.assert_allclose(mb.fill_sd(values, sd, "max-cv"), [10, 60, 15, 24])
    np.testing.assert_allclose(mb.fill_sd(values, sd, "median-cv"), [10, 40, 15, 16])
    np.testing.assert_allclose(mb.fill_sd(values, sd, "zero"), [10, 0, 15, 0])
    assert mb.fill_sd(values, sd, "ignore") is None
    np.testing.assert_allclose(mb.fill_sd(values, np.full(4, np.nan), "max-cv"), 0.0)


def test_ignore_sd_means_are_means_of_picked_estimates():
    rng = np.random.default_rng(1)
    draws = mb.resample_means(rng, np.array([80.0, 100.0]), n_draws=20000, sample_size=1)
    assert set(np.unique(draws)) == {80.0, 100.0}
    assert np.mean(draws == 80.0) == pytest.approx(0.5, abs=0.02)
    # mean of 10 picks: Binomial(10, 1/2) mixture → sd = 20 · √(0.25 / 10)
    draws = mb.resample_means(rng, np.array([80.0, 100.0]), n_draws=20000, sample_size=10)
    assert draws.std() == pytest.approx(20 * np.sqrt(0.25 / 10), rel=0.03)


def test_first_n_uses_the_first_estimates_once_each():
    values = np.arange(1.0, 13.0)  # 12 estimates
    draws = mb.resample_means(np.random.default_rng(0), values, np.zeros(12), n_draws=50,
                              sample_size=10, draw_order="first-n")
    np.testing.assert_allclose(draws, 5.5)  # mean of 1…10, never 11 or 12
    # fewer estimates than the sample size are recycled, as R recycles the mean vector
    draws = mb.resample_means(np.random.default_rng(0), np.array([1.0, 4.0, 10.0]), np.zeros(3),
                              n_draws=5, sample_size=10, draw_order="first-n")
    np.testing.assert_allclose(draws, (4 * 1 + 3 * 4 + 3 * 10) / 10)


@pytest.mark.parametrize("how, expected_sd", [("max-cv", np.sqrt(8**2 + 10**2) / 2),
                                              ("median-cv", np.sqrt(8**2 + 10**2) / 2),
                                              ("zero", 8 / 2)])
def test_sd_draws_have_the_closed_form_spread(how, expected_sd):
    values, sd = np.array([80.0, 100.0]), np.array([8.0, np.nan])  # CV 0.1 → 10 for 100
    filled = mb.fill_sd(values, sd, how)
    draws = mb.resample_means(np.random.default_rng(3), values, filled, n_draws=40000,
                              sample_size=2, draw_order="first-n")
    assert draws.mean() == pytest.approx(90.0, abs=0.1)
    assert draws.std() == pytest.approx(expected_sd, rel=0.02)


def test_period_aggregation_averages_values_and_reported_sds():
    table = pd.DataFrame({"year": [2000, 2000, 2001, 2002], "group2": ["MODIS"] * 4,
                          "value": [100.0, 110.0, 120.0, 90.0], "sd": [10.0, np.nan, np.nan, np.nan]})
    out = mb.aggregate_estimates(table, ["year", "group2"])
    assert out["value"].tolist() == [105.0, 120.0, 90.0]
    assert out["sd"].iloc[0] == 10.0 and out["sd"].iloc[1:].isna().all()
    assert out["n"].tolist() == [2, 1, 1]


# ---------------------------------------------------------------- budget equations
def test_implied_fluxes_by_hand():
    one = np.ones(3)
    d = {"RS_direct": 80 * one, "NPP": 50 * one, "RC_all": 0.5 * one, "Froot_all": 0.4 * one,
         "GPP_direct": 120 * one, "RaGPP_all": 0.5 * one, "herbivory": 2.2 * one, "fire": 3 * one,
         "sink": 2.1 * one, "DOC": 2.3 * one, "BVOC": 1.0 * one}
    # Rroot = 40, Rshoot = 40 · 0.6 / 0.4 = 60 → GPP = 150
    np.testing.assert_allclose(mb.implied_gpp(d, "pooled", {}), 150.0)
    # Ra = (120·0.5 + (120 − 50)) / 2 = 65; Rroot = 26; RS = 50 − 10.6 + 26
    np.testing.assert_allclose(mb.implied_rs(d, "pooled", {}), 50 - 10.6 + 26)
    # GPP − NPP < 0 is replaced by GPP·(Ra:GPP): Ra = 60
    d2 = dict(d, NPP=130 * one)
    np.testing.assert_allclose(mb.implied_rs(d2, "pooled", {}), 130 - 10.6 + 60 * 0.4)


def test_area_weighting_by_hand():
    d = {"RC_all": np.array([0.4]), "RC_grassland": np.array([0.6]),
         "RC_evergreen_forest": np.array([0.3])}
    for group in mb.WEIGHT_GROUPS["RC"]:
        d.setdefault(f"RC_{group}", np.array([0.0]))
    shares = {"grassland": 0.25, "evergreen_forest": 0.5}
    # 0.25·0.6 + 0.5·0.3 + (1 − 0.75)·0.4
    np.testing.assert_allclose(mb.weighted_ratio(d, "RC", "area", shares), 0.4)
    np.testing.assert_allclose(mb.weighted_ratio(d, "RC", "pooled", shares), 0.4)
    shares = {"grassland": 0.5}
    np.testing.assert_allclose(mb.weighted_ratio(d, "RC", "area", shares), 0.5 * 0.6 + 0.5 * 0.4)


# ---------------------------------------------------------------- agreement and decomposition
def test_agreement_probability_equals_the_normal_closed_form():
    implied = _standardised(5000, mean=150.0, sd=14.0)
    p = mb.agreement_probability(implied, 97.0, 131.0)
    expected = stats.norm.cdf((131 - 150) / 14) - stats.norm.cdf((97 - 150) / 14)
    assert p == pytest.approx(expected, rel=1e-10)
    # the empirical version agrees for normal draws
    assert mb.empirical_agreement(implied, 97.0, 131.0) == pytest.approx(expected, abs=0.01)


def test_density_overlap_of_two_normals():
    left = np.random.default_rng(0).normal(0.0, 1.0, 40000)
    right = np.random.default_rng(1).normal(2.0, 1.0, 40000)
    ov = mb.density_overlap(right, left)  # order does not matter
    assert ov["overlap"] == pytest.approx(2 * stats.norm.cdf(-1.0), abs=0.01)
    assert ov["intersection"] == pytest.approx(1.0, abs=0.05)
    assert ov["left_share"] == pytest.approx(stats.norm.sf(1.0), abs=0.01)


def test_variance_decomposition_of_a_sum():
    rng = np.random.default_rng(2)
    d = {"a": rng.normal(0, 3, 20000), "b": rng.normal(0, 1, 20000)}
    shares = mb.variance_decomposition(d, lambda x: x["a"] + x["b"])
    assert shares["a"] == pytest.approx(0.9, abs=0.02)
    assert shares["b"] == pytest.approx(0.1, abs=0.02)


# ---------------------------------------------------------------- seeds and reproduction
def test_same_seed_same_numbers(inputs):
    config = mb.BudgetConfig(n_draws=500, variants=("weighted", "period-rcode"))
    a = mb.run_resampling(inputs, config, seed=7)
    b = mb.run_resampling(inputs, config, seed=7)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    assert a.draws.identical(b.draws)
    c = mb.run_resampling(inputs, config, seed=8)
    assert not np.allclose(a.draws["GPP_implied"].values, c.draws["GPP_implied"].values)
    # a variant's draws do not depend on which other variants run
    d = mb.run_resampling(inputs, dataclasses.replace(config, variants=("weighted",)), seed=7)
    np.testing.assert_array_equal(d.draws["RS_implied"].sel(variant="weighted"),
                                  a.draws["RS_implied"].sel(variant="weighted"))


# The authors' R code run on the shared files: benchmarks/globalc_reference.R (functions of
# PNNL-TES/GlobalC @9d43778d; R 4.2.2, dplyr 1.0.10), output benchmarks/globalc_reference.csv.
# Fluxes: median, 2.5 %, 97.5 % (Pg C yr⁻¹) at set.seed(20190827). "rcode-sN": scenario N as
# published; "resampled-sN": the same with the estimates of each mean of 10 picked with replacement.
R_FLUXES = {
    ("rcode-s2", "GPP_direct"): (112.82, 95.25, 130.18),
    ("rcode-s2", "GPP_implied"): (148.74, 125.52, 179.21),
    ("rcode-s2", "RS_direct"): (86.99, 78.60, 95.61),
    ("rcode-s2", "RS_implied"): (68.36, 59.80, 77.91),
    ("rcode-s4", "GPP_direct"): (125.36, 108.92, 141.94),
    ("rcode-s4", "GPP_implied"): (147.91, 125.44, 177.00),
    ("rcode-s4", "RS_direct"): (86.20, 80.52, 91.83),
    ("rcode-s4", "RS_implied"): (72.10, 63.33, 81.67),
    ("resampled-s1", "GPP_direct"): (120.53, 101.89, 139.61),
    ("resampled-s1", "GPP_implied"): (148.70, 116.60, 194.95),
    ("resampled-s1", "RS_direct"): (85.84, 74.88, 97.78),
    ("resampled-s1", "RS_implied"): (70.43, 61.34, 80.71),
    ("resampled-s2", "GPP_direct"): (120.53, 101.89, 139.61),
    ("resampled-s2", "GPP_implied"): (147.64, 124.35, 178.53),
    ("resampled-s2", "RS_direct"): (85.84, 74.88, 97.78),
    ("resampled-s2", "RS_implied"): (70.56, 61.52, 80.67),
    ("resampled-s4", "GPP_direct"): (126.43, 108.93, 144.42),
    ("resampled-s4", "GPP_implied"): (146.67, 124.90, 175.86),
    ("resampled-s4", "RS_direct"): (84.88, 77.64, 92.69),
    ("resampled-s4", "RS_implied"): (72.30, 63.26, 82.38),
}
# Agreement probabilities (prob_agreement; calc_overlap's two areas): mean of the same script at
# seeds 20190827, 1, 2, 3, 4. One run's SD is 0.008–0.015 for the resampled scenarios (0.001–0.005
# for rcode), above the 0.01 tolerance, so one seed against one seed cannot be held to 0.01: both
# sides are averaged over 5 seeds (SD of a 5-seed mean ≤ 0.007).
R_PROBABILITIES = {
    "rcode-s2": {"p_agree_GPP": 0.0761, "p_agree_RS": 0.0140,
                 "overlap_GPP_direct_share": 0.0381, "overlap_GPP_implied_share": 0.0487,
                 "overlap_RS_direct_share": 0.0188, "overlap_RS_implied_share": 0.0238},
    "rcode-s4": {"p_agree_GPP": 0.2942, "p_agree_RS": 0.0397,
                 "overlap_GPP_direct_share": 0.1049, "overlap_GPP_implied_share": 0.1603,
                 "overlap_RS_direct_share": 0.0230, "overlap_RS_implied_share": 0.0481},
    "resampled-s1": {"p_agree_GPP": 0.2984, "p_agree_RS": 0.2077,
                     "overlap_GPP_direct_share": 0.0940, "overlap_GPP_implied_share": 0.2111,
                     "overlap_RS_direct_share": 0.0814, "overlap_RS_implied_share": 0.0798},
    "resampled-s2": {"p_agree_GPP": 0.2764, "p_agree_RS": 0.2078,
                     "overlap_GPP_direct_share": 0.1055, "overlap_GPP_implied_share": 0.1289,
                     "overlap_RS_direct_share": 0.0842, "overlap_RS_implied_share": 0.0796},
    "resampled-s4": {"p_agree_GPP": 0.4088, "p_agree_RS": 0.1452,
                     "overlap_GPP_direct_share": 0.1377, "overlap_GPP_implied_share": 0.1991,
                     "overlap_RS_direct_share": 0.0598, "overlap_RS_implied_share": 0.0954},
}
# Same script: land-area shares (IGBP.txt, cos-latitude weights) and the records each input has.
R_AREA_SHARES = {"agriculture": 0.1594, "deciduous_forest": 0.0123, "evergreen_forest": 0.1293,
                 "mixed_forest": 0.0499, "grassland": 0.2801, "shrubland_savanna": 0.1022}
R_COUNTS = {"GPP": 49, "RS": 22, "NPP": 237, "RC": 911, "Froot": 129, "RaGPP": 246,
            "GPP_period": 18, "RS_period": 8}
R_SEED = 20190827


def _compared(variant):
    return pytest.param(variant, marks=pytest.mark.skipif(
        mb.VARIANTS[variant].r_counterpart is None, reason="no R counterpart"))


def test_inputs_are_the_r_codes(inputs):
    config = mb.BudgetConfig()
    lit, period = mb.literature_sets(inputs, config, "none"), mb.literature_sets(inputs, config, "period")
    got = {"GPP": len(lit["GPP_direct"]), "RS": len(lit["RS_direct"]),
           "NPP": mb.npp_values(inputs.npp, config).size, "RC": len(inputs.rc),
           "Froot": len(inputs.froot), "RaGPP": len(inputs.ragpp),
           "GPP_period": len(period["GPP_direct"]), "RS_period": len(period["RS_direct"])}
    assert got == R_COUNTS
    assert inputs.area_shares == pytest.approx(R_AREA_SHARES, abs=5e-5)


@pytest.mark.parametrize("variant", [v for v, spec in mb.VARIANTS.items() if spec.r_counterpart])
def test_variant_agrees_with_the_globalc_r_code(inputs, variant):
    """Medians within 2 %, interval bounds within 5 % of the R code's (benchmarks/
    globalc_reference.py, TOLERANCES), and the agreement probabilities within 0.01 (5-seed means)."""
    from benchmarks.globalc_reference import FLUXES, PROBABILITIES, TOLERANCES

    r_variant = mb.VARIANTS[variant].r_counterpart
    config = mb.BudgetConfig(variants=(variant,))
    s = mb.run_resampling(inputs, config, seed=R_SEED).summary.set_index("quantity")
    for quantity in FLUXES:
        for stat, reference in zip(("median", "ci_low", "ci_high"), R_FLUXES[(r_variant, quantity)]):
            assert s.loc[quantity, stat] == pytest.approx(reference, rel=TOLERANCES[stat][1]), \
                (quantity, stat)
    means = pd.concat([mb.run_resampling(inputs, config, seed=seed).summary.set_index("quantity")
                       .loc[list(PROBABILITIES), "median"] for seed in range(1, 6)], axis=1).mean(axis=1)
    for quantity in PROBABILITIES:
        assert means[quantity] == pytest.approx(R_PROBABILITIES[r_variant][quantity],
                                                abs=TOLERANCES["probability"][1]), quantity


def test_published_numbers_come_from_the_first_n_recycling(inputs):
    """Jian et al. 2022: GPP 113 (95–131) vs implied 149 (126–178), RS 87 (79–96) vs implied
    68 (60–78). The published code's recycling reproduces them; picking the estimates with
    replacement (the recipe as described) moves direct GPP to ≈ 120 and widens direct RS."""
    res = mb.run_resampling(inputs, mb.BudgetConfig(variants=("weighted", "weighted-rcode")),
                            seed=R_SEED)
    s = res.summary.set_index(["variant", "quantity"])
    for quantity in ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied"):
        published = mb.PUBLISHED[quantity]
        row = s.loc[("weighted-rcode", quantity)]
        assert row["median"] == pytest.approx(published[0], abs=1.0)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(published[1:], abs=1.5)
    assert s.loc[("weighted", "GPP_direct"), "median"] > 118
    assert (s.loc[("weighted", "RS_direct"), "ci_high"] - s.loc[("weighted", "RS_direct"), "ci_low"]
            > 1.2 * (s.loc[("weighted-rcode", "RS_direct"), "ci_high"]
                     - s.loc[("weighted-rcode", "RS_direct"), "ci_low"]))
    assert s.loc[("weighted-rcode", "overlap_RS_direct_share"), "median"] < 0.02
    # the R code's pooled-Ra:GPP fallback for GPP − NPP < 0 (not copied) never applies here
    for d in res.input_draws.values():
        assert (d["GPP_direct"] > d["NPP"]).all()
    assert s.loc[("weighted", "p_agree_RS"), "median"] > 0.1


def test_period_groups_follow_the_r_codes_order_and_bins():
    gpp = pd.DataFrame({"value": [100.0, 120.0, 110.0, 130.0], "sd": [np.nan, 5.0, 4.0, np.nan],
                        "year": [2001, 2000, 2003, 1950], "group2": ["MODIS", "Mixed", "MODIS", "SIF"]})
    out = mb.aggregate_estimates(gpp.assign(period=gpp["year"].map(mb.GPP_PERIODS)),
                                 ["period", "group2"])
    # 2000 and 2001 share a period; "Mixed" sorts before "MODIS" (locale collation, as dplyr 1.0);
    # a year outside the R code's bins is its own group, last
    assert out["group2"].tolist() == ["Mixed", "MODIS", "MODIS", "SIF"]
    assert out["period"].tolist()[:3] == [2001, 2001, 2007] and np.isnan(out["period"].iloc[3])
    assert out["value"].tolist() == [120.0, 100.0, 110.0, 130.0]


def test_pooled_variant_keeps_the_top_down_froot_area_weighted():
    shares = {"deciduous_forest": 0.5}
    draws = {"GPP_direct": np.array([100.0]), "NPP": np.array([50.0]), "RaGPP_all": np.array([0.5]),
             "Froot_all": np.array([0.2]), "Froot_deciduous_forest": np.array([0.6]),
             "Froot_evergreen_forest": np.array([0.0]), "Froot_mixed_forest": np.array([0.0]),
             **{k: np.array([0.0]) for k in ("herbivory", "fire", "sink", "DOC", "BVOC")}}
    # Ra = (50 + 50) / 2 = 50; Froot = 0.5 · 0.6 + 0.5 · 0.2 = 0.4 (calc_bootstrap_rs's Froot2)
    assert mb.implied_rs(draws, "pooled", shares)[0] == pytest.approx(50.0 + 50.0 * 0.4)


def test_area_shares_from_points_by_hand():
    points = pd.DataFrame({"Latitude": [0.0, 60.0, 60.0, 0.0], "IGBP2001Pr": [12, 12, 10, 0]})
    mapping = pd.DataFrame({"IGBP2001Pr": [0, 10, 12], "IGBP_group": ["WAT", "GRA", "CRO"]})
    shares = mb.area_shares_from_points(points, mapping, {"CRO": "agriculture", "GRA": "grassland"})
    # weights cos 0 = 1, cos 60° = 0.5, 0.5; water left out
    assert shares == pytest.approx({"agriculture": 0.75, "grassland": 0.25})


def test_config_refuses_unknown_choices():
    with pytest.raises(DataError):
        mb.BudgetConfig(sd_fill="mean-cv")
    with pytest.raises(DataError):
        mb.BudgetConfig(variants=("published",))


# ---------------------------------------------------------------- Bayesian model
def test_beta_sufficient_statistics_equal_the_per_record_likelihood(inputs):
    import pytensor

    model = mb.build_bayes_model(inputs)
    data = mb.bayes_data(inputs)
    point = model.initial_point()
    point["logit_RC"] = np.linspace(-0.8, 0.2, len(data["RC"]["levels"]))
    point["kappa_RC_log__"] = np.log(6.0)
    values = [model.rvs_to_values[model[name]] for name in ("logit_RC", "kappa_RC")]
    graph = model.replace_rvs_by_values([model["RC_loglik"]])[0]
    # FAST_COMPILE: the python linker, no numba compilation for a one-off evaluation
    potential = pytensor.function(values, graph, on_unused_input="ignore", mode="FAST_COMPILE")(
        *(point[v.name] for v in values))
    mu = 1 / (1 + np.exp(-point["logit_RC"]))
    r = data["RC"]
    expected = stats.beta.logpdf(r["value"], mu[r["group"]] * 6.0, (1 - mu[r["group"]]) * 6.0).sum()
    assert float(potential) == pytest.approx(expected, rel=1e-9)
    assert {"GPP_direct", "GPP_implied", "RS_direct", "RS_implied", "GPP_diff", "RS_diff"} <= set(
        model.named_vars)


def _simulated_inputs(seed: int = 0):
    """Literature estimates and ratios with known truth (μ_GPP 120 with method offsets, μ_RS 80…)."""
    from data.jian2022 import BudgetInputs

    rng = np.random.default_rng(seed)
    offsets = {"remote_sensing": -8.0, "process_model": 10.0, "site_upscaling": -2.0}
    gpp = pd.DataFrame([{"value": 120 + off + rng.normal(0, 6), "sd": np.nan, "pub_year": 2010,
                         "year": 2005, "group": g, "group2": g, "flag": g, "method_group": g}
                        for g, off in offsets.items() for _ in range(25)])
    rs = pd.DataFrame({"value": 80 + rng.normal(0, 5, 30), "sd": np.nan, "pub_year": 2010,
                       "method_group": "annual_upscaling"})
    ratio = lambda m, n: pd.DataFrame(  # noqa: E731
        {"value": rng.beta(m * 20, (1 - m) * 20, n), "group": "other", "source": "sim"})
    return BudgetInputs(gpp=gpp, rs=rs, npp=pd.DataFrame({"value": 55 + rng.normal(0, 5, 200)}),
                        rc=ratio(0.4, 400), froot=ratio(0.4, 400), ragpp=ratio(0.5, 400),
                        fire=pd.DataFrame({"value": 3.0 + rng.normal(0, 0.3, 10), "sd": np.nan}),
                        area_shares={})


@pytest.mark.slow
def test_bayes_model_recovers_known_fluxes():
    import pymc as pm

    model = mb.build_bayes_model(_simulated_inputs(seed=1))
    with model:
        dt = pm.sample(draws=500, tune=500, chains=2, cores=2, random_seed=3, progressbar=False)
    post = dt["posterior"]
    truth = {"GPP_direct": 112.0, "RS_direct": 80.0, "mu_NPP": 55.0, "RC": 0.4, "Froot": 0.4,
             # implied GPP = 55 + 80 · 0.4 / 0.4 = 135
             "GPP_implied": 135.0}
    for name, value in truth.items():
        lo, hi = np.quantile(post[name].values, [0.005, 0.995])
        assert lo < value < hi, name


def _fake_posterior(chains: int = 2, draws: int = 200, seed: int = 0):
    """A posterior DataTree with the budget's variables (for plumbing tests, no sampling)."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    means = {"GPP_direct": 114.0, "GPP_implied": 145.0, "RS_direct": 85.0, "RS_implied": 69.0,
             "mu_NPP": 56.0, "mu_fire": 3.5, "RC": 0.41, "Froot": 0.39, "RaGPP": 0.52}
    post = {k: (("chain", "draw"), v + 0.02 * v * rng.normal(size=(chains, draws)))
            for k, v in means.items()}
    post["GPP_diff"] = (("chain", "draw"), post["GPP_implied"][1] - post["GPP_direct"][1])
    post["RS_diff"] = (("chain", "draw"), post["RS_implied"][1] - post["RS_direct"][1])
    return xr.DataTree.from_dict({"/posterior": xr.Dataset(post)})


def test_bayes_summary_rows():
    post = _fake_posterior()["posterior"].to_dataset()
    rows = pd.DataFrame(mb.summarise_bayes(post)).set_index("quantity")
    assert set(rows["method"]) == {"bayes"}
    assert rows.loc["GPP_implied", "median"] == pytest.approx(145.0, rel=0.01)
    direct, implied = post["GPP_direct"].values.ravel(), post["GPP_implied"].values.ravel()
    lo, _, hi = np.quantile(direct, mb.CI_QUANTILES)
    assert rows.loc["p_agree_GPP", "median"] == pytest.approx(
        mb.agreement_probability(implied, lo, hi))
    assert rows.loc["P_RS_diff_gt_0", "median"] == 0.0


# ---------------------------------------------------------------- random forest
def test_global_total_closed_form():
    # 500 g C m-2 yr-1 over 1e14 m2 (100 M km2) = 50 Pg C yr-1
    assert ru.global_total(np.full(10, 500.0), np.full(10, 1e13)) == pytest.approx(50.0)


def test_rf_upscaling_recovers_a_known_total():
    rng = np.random.default_rng(0)
    n = 600
    sites = pd.DataFrame({"MAT": rng.uniform(-5, 28, n), "MAP": rng.uniform(100, 3000, n),
                          "study": np.arange(n) // 3})
    sites["rs_annual"] = 200 + 25 * sites["MAT"] + 0.1 * sites["MAP"] + rng.normal(0, 40, n)
    cells = pd.DataFrame({"MAT": rng.uniform(-5, 28, 2000), "MAP": rng.uniform(100, 3000, 2000),
                          "cell_area": np.full(2000, 5e10)})
    truth = ru.global_total(200 + 25 * cells["MAT"] + 0.1 * cells["MAP"], cells["cell_area"])
    res = ru.upscale_rs(sites, cells, ["MAT", "MAP"], n_trees=60, seed=1)
    assert res.total == pytest.approx(truth, rel=0.03)
    assert res.interval[0] < res.total < res.interval[2]
    assert res.oob_r2 > 0.8 and res.cv_r2 > 0.8
    assert res.importance.index[0] == "MAT"


def _monthly_truth(mat, month, lat):
    """g C m⁻² d⁻¹: warmer sites respire more, with a summer peak (July north, January south)."""
    season = ru.season_features(month, lat)[:, 1]  # cos: 1 in January north / July south
    return 1.0 + 0.08 * np.asarray(mat) - 0.6 * season


def test_monthly_upscaling_recovers_a_known_total():
    rng = np.random.default_rng(2)
    n_sites = 300
    lat = rng.uniform(-50, 70, n_sites)
    lon = rng.uniform(-180, 180, n_sites)
    mat = rng.uniform(-5, 28, n_sites)
    site = np.repeat(np.arange(n_sites), 12)
    month = np.tile(np.arange(1, 13), n_sites)
    records = pd.DataFrame({"site": site, "month": month, "latitude": lat[site],
                            "longitude": lon[site], "MAT": mat[site]})
    records["rs_daily"] = _monthly_truth(records["MAT"], month, records["latitude"]) + rng.normal(
        0, 0.1, len(records))
    cells = pd.DataFrame({"lat": rng.uniform(-50, 70, 1500), "MAT": rng.uniform(-5, 28, 1500),
                          "cell_area": np.full(1500, 5e10)})
    truth = sum(ru.global_total(_monthly_truth(cells["MAT"], np.full(1500, m), cells["lat"])
                                * ru.DAYS_IN_MONTH[m - 1], cells["cell_area"]) for m in range(1, 13))
    res = ru.upscale_monthly_rs(records, cells, ["MAT"], n_trees=40, seed=1)
    assert res.total == pytest.approx(truth, rel=0.03)
    assert res.interval[0] < res.total < res.interval[2]
    assert res.cv_r2 > 0.8 and res.cv_rmse < 0.2 and res.n_sites == n_sites
    assert res.cv_scheme.startswith("leave-site-cluster-out")


def test_season_and_clusters():
    # the same season in both hemispheres: July north = January south
    np.testing.assert_allclose(ru.season_features([7], [45.0]), ru.season_features([1], [-30.0]))
    assert not np.allclose(ru.season_features([7], [45.0]), ru.season_features([1], [45.0]))
    clusters = ru.site_clusters([1.0, 4.9, 5.1, 1.0], [10.0, 14.0, 10.0, -10.0])
    assert clusters[0] == clusters[1] and len(set(clusters)) == 3


def test_monthly_records_month_coordinates_and_drops():
    mgrsd = pd.DataFrame({"Site_ID": ["A", "A", "B", "C", "A"], "Study_number": [1, 1, 2, 3, 1],
                          "Meas_Month": [3, np.nan, 5, 6, np.nan], "Meas_DOY": [np.nan, 200, np.nan, 1, np.nan],
                          "Rs_Norm": [2.0, 1.5, 1.0, -0.1, 3.0]})
    srdb = pd.DataFrame({"Site_ID": ["A", "A", "B"], "Latitude": [10.0, 12.0, np.nan],
                         "Longitude": [5.0, 5.0, 7.0]})
    rec, dropped = ru.monthly_rs_records(mgrsd, srdb)
    # DOY 200 is in July; site A at the median of its SRDB coordinates; B has none; C's RS ≤ 0
    assert rec["month"].tolist() == [3, 7] and rec["latitude"].tolist() == [11.0, 11.0]
    assert dropped == {"Rs_Norm missing or <= 0": 1, "no month (Meas_Month, Meas_DOY)": 1,
                       "site not in SRDB-V5 (no coordinates)": 1}


# ---------------------------------------------------------------- command line and Python API
# One run, twice: from the command line and through tpflux.budget (no Bayesian part).
CLI_ARGS = ["--no-bayes", "--rf-trees", "20", "--n-draws", "400", "--variant", "weighted",
            "unweighted", "--seed", "5"]
API_OPTIONS = dict(bayes=False, rf_trees=20, n_draws=400, variants=("weighted", "unweighted"), seed=5)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    from data.registry import dataset_folder
    from inference.budget import main

    require_data(dataset_folder, "jian2022")
    out = tmp_path_factory.mktemp("budget") / "run"
    return main([*CLI_ARGS, "--out", str(out)]), out


@pytest.fixture(scope="module")
def api_run():
    from tpflux.carbon_budget import budget

    return budget(**API_OPTIONS, progress=False)


def test_cli_writes_contract_outputs_and_figure(cli_run):
    from reports.budget_figures import main as figure_main

    code, out = cli_run
    assert code == 0
    summary = pd.read_csv(out / "budget_summary.csv")
    for q in ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied", "p_agree_GPP", "p_agree_RS",
              "RS_rf_global"):
        assert q in set(summary["quantity"]), q
    assert {"median", "ci_low", "ci_high", "variant", "method"} <= set(summary.columns)
    assert set(summary.loc[summary["method"] == "resampling", "variant"]) == {"weighted", "unweighted"}
    rf = summary[summary["quantity"] == "RS_rf_global"].iloc[0]
    assert 40 < rf["median"] < 150 and rf["ci_low"] <= rf["median"] <= rf["ci_high"]
    assert not (out / "budget_posterior.nc").exists() and not (out / "diagnostics.json").exists()
    assert figure_main([str(out)]) == 0
    assert (out / "figures" / "budget_consistency_weighted.png").stat().st_size > 10_000
    assert (out / "figures" / "budget_rf_map.png").exists()
    assert figure_main([str(out), "--variant", "period"]) == 2  # not run: refused, not a traceback


def test_api_and_cli_give_identical_tables_and_draws(cli_run, api_run):
    from data.storage import read_datatree
    from tpflux.carbon_budget import BudgetResult

    _, out = cli_run
    assert isinstance(api_run, BudgetResult)
    pd.testing.assert_frame_equal(pd.read_csv(out / "budget_summary.csv"), api_run.summary())
    pd.testing.assert_frame_equal(pd.read_csv(out / "budget_comparison.csv"), api_run.comparison())
    cli_draws = read_datatree(out / "budget_draws.nc")
    assert_trees_equal(cli_draws, api_run.draws)
    assert {"resampling", "rf", "rf_map"} == set(api_run.draws.children)
    assert api_run.datatree is None and api_run.diagnostics is None
    assert "inference.budget" in cli_draws.attrs["command_line"]
    assert "from Python" in api_run.draws.attrs["command_line"]


def test_saved_run_loads_back_as_the_same_result(api_run, tmp_path):
    import tpflux
    from tpflux.carbon_budget import BudgetResult

    api_run.save(tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == {
        "budget_summary.csv", "budget_comparison.csv", "budget_draws.nc", "run.json"}
    loaded = tpflux.load(tmp_path / "run")
    assert type(loaded) is BudgetResult and loaded.config == api_run.config
    pd.testing.assert_frame_equal(loaded.summary(), api_run.summary())
    pd.testing.assert_frame_equal(loaded.comparison(), api_run.comparison())
    assert_trees_equal(loaded.draws, api_run.draws)
    assert loaded.run_id == api_run.run_id
    assert loaded.result_text() == api_run.result_text()
    assert "headline variant 'weighted'" in loaded.result_text()


def test_refit_from_attrs_gives_identical_tables(cli_run):
    import tpflux
    from tpflux.carbon_budget import BudgetRunConfig

    _, out = cli_run
    run = tpflux.load(out)
    config = BudgetRunConfig.from_attrs(run.draws.attrs)
    assert config == BudgetRunConfig(**API_OPTIONS) == run.config
    again = run.refit(progress=False)
    pd.testing.assert_frame_equal(again.summary(), run.summary())
    assert_trees_equal(again.draws, run.draws)
    other = run.refit(seed=6, rf=False, progress=False)
    assert not np.allclose(other.draws["resampling"]["GPP_implied"].values,
                           run.draws["resampling"]["GPP_implied"].values)


def test_plot_methods_return_undrawn_figures(api_run):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    before = plt.get_fignums()
    figures = [api_run.plot_consistency(), api_run.plot_consistency("unweighted"), api_run.plot_rf_map()]
    assert all(isinstance(f, Figure) for f in figures) and plt.get_fignums() == before
    assert "'unweighted'" in figures[1].axes[0].get_title()
    with pytest.raises(DataError, match="variant 'period' is not in this run"):
        api_run.plot_consistency("period")


def test_report_of_a_budget_run_has_its_figures(cli_run, tmp_path):
    import shutil

    from reports.build import build

    _, out = cli_run
    folder = tmp_path / "run"
    shutil.copytree(out, folder, ignore=shutil.ignore_patterns("figures"))
    build(folder)
    assert (folder / "figures" / "budget_consistency_weighted.png").stat().st_size > 10_000
    assert (folder / "figures" / "budget_rf_map.png").exists()


def _seeded_fake_sample(**kw):
    """pm.sample replaced by fake posterior draws that depend on the seed it is given."""
    return _fake_posterior(kw["chains"], kw["draws"], seed=kw["random_seed"])


def test_cli_bayes_writes_posterior_and_diagnostics(tmp_path, monkeypatch):
    import pymc as pm
    import xarray as xr

    import tpflux
    from inference.budget import main
    from tpflux.carbon_budget import budget

    monkeypatch.setattr(pm, "sample", _seeded_fake_sample)
    out = tmp_path / "run"
    code = main(["--no-rf", "--n-draws", "200", "--variant", "weighted", "--draws", "300",
                 "--chains", "2", "--allow-unconverged", "--out", str(out)])
    assert code == 0
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["verdict"] in ("pass", "fail") and diag["r_hat_max"] < 1.1
    dt = xr.open_datatree(out / "budget_posterior.nc")
    assert "data_sha256" in dt.attrs and "posterior" in dt.children
    summary = pd.read_csv(out / "budget_summary.csv")
    assert (summary["method"] == "bayes").any()
    # the same run from Python: identical tables and posterior
    api = budget(rf=False, n_draws=200, variants=("weighted",), draws=300, chains=2, progress=False)
    pd.testing.assert_frame_equal(summary, api.summary())
    assert_trees_equal(dt, api.datatree)
    loaded = tpflux.load(out)
    assert loaded.datatree is not None and loaded.config == api.config
    assert loaded.run_id == loaded.draws.attrs["run_id"] == dt.attrs["run_id"]
    assert "bayes" in loaded.draws.children
    other = budget(rf=False, n_draws=200, variants=("weighted",), draws=300, chains=2, seed=1,
                   progress=False)
    assert not np.allclose(other.datatree["posterior"]["GPP_direct"].values,
                           api.datatree["posterior"]["GPP_direct"].values)


@pytest.fixture
def no_work(monkeypatch):
    """Any data load or sampling fails the test: a bad option must be refused before either."""
    import pymc as pm

    import data.jian2022

    monkeypatch.setattr(pm, "sample", lambda **kw: pytest.fail("sampled"))
    monkeypatch.setattr(data.jian2022, "load_budget_inputs", lambda *a, **kw: pytest.fail("data loaded"))


@pytest.mark.parametrize("option, value, column", [
    ("n_draws", 5, "--n-draws"), ("sample_size", 0, "--sample-size"), ("rf_trees", 0, "--rf-trees"),
    ("rf_trees", 5000, "--rf-trees"), ("variants", ("published",), "--variant"),
    ("variants", (), "--variant"), ("sd_fill", "mean-cv", "--sd-fill"), ("chains", 0, "--chains"),
    ("sampler", "blackjax", "--sampler"), ("ratio_source", "srdb", "--ratio-source"),
    ("area_shares", 3, "--area-shares"), ("seed", 2**40, "--seed")])
def test_bad_option_is_refused_before_any_work(no_work, option, value, column):
    from tpflux.carbon_budget import budget

    with pytest.raises(DataError) as err:
        budget(**{option: value})
    assert err.value.column == column


def test_config_round_trips_area_shares_and_variants():
    from data.storage import dumps
    from tpflux.carbon_budget import BudgetRunConfig

    c = BudgetRunConfig(area_shares={"GRA": 0.3, "EF": 0.2}, variants=["weighted", "period", "weighted"])
    assert c.area_shares == (("EF", 0.2), ("GRA", 0.3)) and c.variants == ("weighted", "period")
    assert c.headline == "weighted"
    assert BudgetRunConfig.from_dict(json.loads(dumps(c.to_dict()))) == c


@pytest.mark.parametrize("argv, column", [(["--n-draws", "5"], "--n-draws"),
                                          (["--rf-trees", "0"], "--rf-trees")])
def test_cli_bad_option_exits_2_and_writes_nothing(no_work, tmp_path, capsys, argv, column):
    from inference.budget import main

    out = tmp_path / "never"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: -:-:{column}: ")
    assert not out.exists()


def test_existing_run_folder_needs_overwrite(cli_run, tmp_path, capsys):
    import shutil

    from data.storage import read_marker
    from inference.budget import main

    _, first = cli_run
    before = (first / "budget_summary.csv").read_bytes()
    args = ["--no-bayes", "--no-rf", "--n-draws", "100", "--variant", "weighted"]
    assert main([*args, "--out", str(first)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0] and "budget" in err[0]
    assert (first / "budget_summary.csv").read_bytes() == before
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    old_id = read_marker(copy)["run_id"]
    assert main([*args, "--out", str(copy), "--overwrite"]) == 0
    assert not (copy / "figures").exists() and read_marker(copy)["run_id"] != old_id
    summary = pd.read_csv(copy / "budget_summary.csv")
    assert "RS_rf_global" not in set(summary["quantity"])


def test_gate_advice_never_suggests_the_setting_in_use():
    from tpflux.carbon_budget import BudgetRunConfig, gate_advice

    assert "--chains 4" in gate_advice(BudgetRunConfig(chains=2))
    assert "--chains" not in gate_advice(BudgetRunConfig(chains=4))
    divergent = {"failed": ["3 divergent transitions"]}
    assert gate_advice(BudgetRunConfig(), divergent) == "--target-accept 0.95"
    assert gate_advice(BudgetRunConfig(target_accept=0.95), divergent) == "--target-accept 0.99"
    # at 0.99 already: a longer adaptation, never the value in use
    assert gate_advice(BudgetRunConfig(target_accept=0.99, tune=1000), divergent) == "--tune 2000"
    mixing = {"failed": ["R-hat 1.011 > 1.01"]}
    advice = gate_advice(BudgetRunConfig(draws=2000, chains=2), mixing)
    assert "--draws 4000" in advice and "--chains 4" in advice and "target-accept" not in advice
    for config in (BudgetRunConfig(), BudgetRunConfig(chains=4, draws=500, target_accept=0.95),
                   BudgetRunConfig(target_accept=0.99, tune=300)):
        for diag in (None, divergent, mixing):
            advice = gate_advice(config, diag)
            in_use = (f"--chains {config.chains}", f"--draws {config.draws}", f"--tune {config.tune}",
                      f"--target-accept {config.target_accept}")
            assert advice and not any(f"{s}" in advice.split(", or ") for s in in_use), (config, advice)


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    import shutil

    from data.registry import dataset_folder
    from inference.budget import main

    src = require_data(dataset_folder, "jian2022")
    bad = tmp_path / "data"
    shutil.copytree(src, bad)
    text = (bad / "GlobalGPP_Sum.csv").read_text(encoding="latin1").replace(",109.29,", ",109.29 Pg,")
    (bad / "GlobalGPP_Sum.csv").write_text(text, encoding="latin1")
    out = tmp_path / "run"
    assert main(["--data", str(bad), "--no-bayes", "--no-rf", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GlobalGPP_Sum.csv:" in err[0] and ":GPP:" in err[0]
    assert not out.exists()
