"""Bayesian lnRR meta-analysis (models/meta.py) side by side with metafor's REML fit.

    .venv/bin/python -m benchmarks.metafor_reference [--no-r] [--draws 2000] [--chains 4]
    .venv/bin/python -m benchmarks.metafor_reference --features [--cumulative]

1. Runs ``Rscript benchmarks/metafor_reference.R`` (R with metafor; Debian: r-cran-metafor), which
   writes tests/data/curtis1998.csv and prints the REML estimates that tests/test_meta.py holds.
   ``--no-r`` uses the numbers stored in the test instead.
2. Fits the same three-level model (level means + study + site effects) with weak priors
   (τ ~ half-Cauchy(5), lnRR ~ Normal(0, 10)) by NUTS, and by exact quadrature over (τ_study,
   τ_site) on a grid (lnRR | τ is Gaussian), which has no Monte Carlo error.
3. Prints per level: REML estimate and SE; posterior mean and SD; (mean − REML) / SD for NUTS and for
   the quadrature; and τ = √(σ²_study + σ²_site) against the posterior mean and median of τ.

``--features``: the issue-16 pieces against tests/data/metafor_features.json (the R script's third
output): moderator coefficients of dat.curtis1998 (rma.mv), and on dat.bcg the random-effects
mean (rma), the Egger-type slope and limit estimate (regtest), leave-one-study-out (leave1out)
and, with ``--cumulative``, the cumulative estimates (cumul); one row per number with
(posterior mean − metafor) / posterior SD. Same weak priors as above.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from data.warming import load_warming
from inference.fit_rr import sample_rr
from models.meta import Effects, RRSpec, TauPrior, effect_sizes, prepare

ROOT = Path(__file__).resolve().parent.parent
WEAK = dict(tau_prior=TauPrior("halfcauchy", 5.0), mu_prior_sd=10.0)
CASES = {"curtis1998": ("tests/data/curtis1998.csv", "method"),
         "ek-precip": ("precip-manipulation", "Measurement Period")}


def metafor_reference(use_r: bool) -> pd.DataFrame:
    if not use_r:
        reference = json.loads((ROOT / "tests" / "data" / "metafor_reference.json").read_text())
        return pd.DataFrame(reference["reml"])
    from data.registry import dataset_folder

    ek = dataset_folder("precip-manipulation") / "EK_methane_precip_manipulation.csv"
    out = subprocess.run(["Rscript", str(ROOT / "benchmarks" / "metafor_reference.R"), str(ek),
                          str(ROOT / "tests" / "data" / "curtis1998.csv")],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    first_block = out.strip().split("\n\n")[0]
    table = pd.read_csv(io.StringIO(first_block))
    table["level"] = table["level"].astype(str).str.strip()
    return table


def effects_for(name: str) -> Effects:
    source, _ = CASES[name]
    wt = load_warming(source if name != "curtis1998" else ROOT / source)
    return effect_sizes(wt.table, on_sign_change="drop", source=wt.source)


def quadrature(effects: Effects, spec: RRSpec, n_grid: int = 60, tau_max: float | None = None):
    """Exact posterior mean / SD of each level's lnRR and the mean of τ, by a grid over the two τ."""
    d = prepare(effects, spec)
    y, v = d.effects["yi"].to_numpy(), d.effects["vi"].to_numpy()
    X = np.eye(len(d.levels))[d.level_idx]
    same_study = (d.study_idx[:, None] == d.study_idx[None, :]).astype(float)
    same_site = (d.site_idx[:, None] == d.site_idx[None, :]).astype(float)
    tau_max = tau_max or 4 * float(np.std(y))
    grid = np.linspace(1e-4, tau_max, n_grid)
    prior = stats.halfcauchy(scale=spec.tau_prior.scale).logpdf(grid)
    P0 = np.eye(X.shape[1]) / spec.mu_prior_sd**2
    logw = np.empty((n_grid, n_grid))
    means = np.empty((n_grid, n_grid, X.shape[1]))
    second = np.empty_like(means)
    for a, ts in enumerate(grid):
        for b, tk in enumerate(grid):
            S = np.diag(v) + ts**2 * same_study + tk**2 * same_site
            Si = np.linalg.inv(S)
            P = X.T @ Si @ X + P0
            Pi = np.linalg.inv(P)
            m = Pi @ X.T @ Si @ y
            logw[a, b] = (-0.5 * (np.linalg.slogdet(S)[1] + np.linalg.slogdet(P)[1]
                                  + y @ Si @ y - m @ P @ m) + prior[a] + prior[b])
            means[a, b], second[a, b] = m, np.diag(Pi) + m**2
    w = np.exp(logw - logw.max())
    w /= w.sum()
    mean = np.einsum("ab,abj->j", w, means)
    sd = np.sqrt(np.einsum("ab,abj->j", w, second) - mean**2)
    tau = np.sqrt(grid[:, None] ** 2 + grid[None, :] ** 2)
    return dict(zip(d.levels, mean)), dict(zip(d.levels, sd)), float((w * tau).sum())


def features(args) -> pd.DataFrame:
    """Posterior mean and SD beside metafor's number, per feature (see the module docstring)."""
    from inference.fit_rr import cumulative_table, leave_one_out_table, small_study_table
    from models.meta import effects_from_yi_vi

    ref = json.loads((ROOT / "tests" / "data" / "metafor_features.json").read_text())
    sampling = dict(chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed)
    rows = []

    def row(feature, name, metafor, mean, sd):
        rows.append({"feature": feature, "quantity": name, "metafor": metafor, "mean": mean,
                     "sd": sd, "diff_sd": (mean - metafor) / sd})

    wt = load_warming(ROOT / "tests" / "data" / "curtis1998.csv")
    spec = RRSpec(moderator="method", moderators=("fungrp", "time"), **WEAK)
    post = sample_rr(effect_sizes(wt.table), spec, **sampling)["posterior"].to_dataset()
    for name, estimate in zip(ref["curtis_mods"]["name"], ref["curtis_mods"]["estimate"]):
        x = (post["lnRR"].sel(level=name[len("method"):]) if name.startswith("method") else
             post["beta"].sel(coef="time" if name.startswith("I(time") else
                              "fungrp=" + name[len("fungrp"):]))
        row("rma.mv mods (curtis1998)", name, estimate, float(x.mean()), float(x.std()))
    raw = pd.read_csv(ROOT / "tests" / "data" / "bcg.csv")
    trial = "trial" + raw["trial"].astype(str)
    bcg = effects_from_yi_vi(raw.assign(study=trial, site=trial))
    spec = RRSpec(moderator=None, **WEAK)
    dt = sample_rr(bcg, spec, **sampling)
    x = dt["posterior"]["lnRR"]
    row("rma (bcg)", "estimate", ref["bcg_rma"]["estimate"], float(x.mean()), float(x.std()))
    egger = small_study_table(bcg, spec, say=lambda m: None, **sampling).set_index("quantity")
    for q, key in (("egger_slope", "slope"), ("limit_lnRR", "limit")):
        row("regtest (bcg)", q, ref["bcg_regtest"][key], egger.loc[q, "mean"], egger.loc[q, "sd"])
    loo = leave_one_out_table(bcg, spec, dt, say=lambda m: None, **sampling)
    loo = loo[loo["quantity"] == "lnRR"].set_index("study")
    for t, estimate in zip(ref["bcg_leave1out"]["trial"], ref["bcg_leave1out"]["estimate"]):
        r = loo.loc[f"trial{t}"]
        row("leave1out (bcg)", f"without trial {t} (k̂ {r['pareto_k']:.2f})", estimate, r["mean"],
            r["sd"])
    if args.cumulative:
        cum = cumulative_table(bcg, spec, "year", say=lambda m: None, **sampling)
        cum = cum[cum["quantity"] == "lnRR"].set_index("step")
        for step, estimate in enumerate(ref["bcg_cumul"]["estimate"][1:], start=2):
            r = cum.loc[step]
            row("cumul (bcg)", f"{step} trials", estimate, r["mean"], r["sd"])
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--features", action="store_true",
                   help="moderators, regtest, leave1out (and cumul) against metafor_features.json")
    p.add_argument("--cumulative", action="store_true", help="with --features: also cumul")
    p.add_argument("--no-r", action="store_true", help="use the REML numbers stored in the test")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.features:
        with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
            print(features(args).to_string(index=False))
        return 0
    ref = metafor_reference(not args.no_r)
    rows = []
    for name, (_, moderator) in CASES.items():
        effects = effects_for(name)
        spec = RRSpec(moderator=moderator, directions="pool", **WEAK)  # as metafor pools them
        t0 = time.perf_counter()
        dt = sample_rr(effects, spec, chains=args.chains, draws=args.draws, tune=args.tune,
                       seed=args.seed)
        wall = time.perf_counter() - t0
        post = dt["posterior"].to_dataset()
        r = ref[ref["dataset"] == name]
        tau_reml = float(np.sqrt(r["tau2"].iloc[0]))
        tau_max = 0.3 if name == "curtis1998" else 8.0
        q_mean, q_sd, q_tau = quadrature(effects, spec, tau_max=tau_max)
        tau_draws = post["tau"].to_numpy().ravel()
        for _, row in r.iterrows():
            x = post["lnRR"].sel(level=row["level"]).to_numpy().ravel()
            rows.append({
                "dataset": name, "level": row["level"], "k": int(row["k"]),
                "reml": row["estimate"], "reml_se": row["se"],
                "nuts_mean": x.mean(), "nuts_sd": x.std(ddof=1),
                "nuts_diff_sd": (x.mean() - row["estimate"]) / x.std(ddof=1),
                "exact_mean": q_mean[row["level"]], "exact_sd": q_sd[row["level"]],
                "exact_diff_sd": (q_mean[row["level"]] - row["estimate"]) / q_sd[row["level"]],
                "tau_reml": tau_reml, "tau_mean": tau_draws.mean(),
                "tau_median": np.median(tau_draws), "tau_exact_mean": q_tau,
                "sampling_s": round(wall, 1)})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", "{:.4f}".format):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
