"""Bayesian random-effects meta-analysis of CH4 response ratios (warmed / control) by moderator level.

    python -m inference.fit_rr (--table PATH | --dataset NAME) [--moderator COLUMN] [--warming-slope]
                               [--tau-prior FAMILY:SCALE] [--tau-prior-sensitivity] [--tau-by-level]
                               [--chains --draws --tune --seed --out --overwrite --allow-unconverged]

Writes ``rr_posterior.nc`` (ArviZ DataTree), ``rr_summary.csv``, ``diagnostics.json`` (and with
``--tau-prior-sensitivity`` ``rr_prior_sensitivity.csv``) to the run folder. Forest plot of a run:
``python -m reports.forest_rr RUN_DIR``. The same fit from Python: ``tpflux.fit_rr(...)``; at the
same seed both give identical posterior arrays and summaries.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from inference import runio
from models.conventions import CI_LABEL, CI_QUANTILES
from models.meta import (SENSITIVITY_TAU_PRIORS, Effects, RRData, RRSpec, between_levels,
                         build_rr_model, prepare, warming_by_level)

POSTERIOR_SUMMARY = ("lnRR", "RR", "tau", "tau_study", "tau_site", "I2", "lnRR_new", "RR_new",
                     "lnRR_per_degC", "RR_per_degC")


def parser() -> argparse.ArgumentParser:
    from tpflux.meta import PARAMETERISATIONS, SIGN_CHANGES, WARMING_DATASETS

    p = runio.base_parser("fit_rr", __doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--table", default=None,
                     help="your warming table (CSV: study, site, ecosystem, season, warming_c, "
                          "control_mean, control_sd, control_n, treatment_mean, treatment_sd, "
                          "treatment_n) or a table in the precipitation-manipulation layout")
    src.add_argument("--dataset", default=None, choices=WARMING_DATASETS,
                     help="registry dataset (synthetic-warming is SIMULATED)")
    p.add_argument("--moderator", default=None,
                   help="grouping column (default: season; Measurement Period for precip-manipulation)")
    p.add_argument("--levels", default=None,
                   help="comma-separated order of the moderator levels; each later level is "
                        "compared with each earlier one (default: sorted)")
    p.add_argument("--warming-slope", action="store_true",
                   help="add lnRR per °C of applied warming (centred at the table's mean warming)")
    p.add_argument("--tau-prior", default=str(RRSpec.tau_prior),
                   help="prior of τ_study and τ_site: halfnormal|halfcauchy|halfstudentt|"
                        "exponential|uniform:SCALE")
    p.add_argument("--tau-by-level", action="store_true",
                   help="a separate experiment-level heterogeneity τ_site per moderator level")
    p.add_argument("--tau-prior-sensitivity", action="store_true",
                   help="refit under alternative τ priors and write rr_prior_sensitivity.csv")
    p.add_argument("--mu-prior-sd", type=float, default=RRSpec.mu_prior_sd,
                   help="SD of the Normal(0, SD) prior of each level's lnRR")
    p.add_argument("--bias-correction", action="store_true",
                   help="Lajeunesse (2015) second-order lnRR and variance")
    p.add_argument("--sign-change", choices=SIGN_CHANGES, default=SIGN_CHANGES[0],
                   help="rows with a zero mean or control/treatment of opposite sign: refuse, or "
                        "leave out (counted in the output)")
    p.add_argument("--parameterisation", choices=PARAMETERISATIONS,
                   default=RRSpec.parameterisation,
                   help="study/site effects integrated out exactly, or sampled non-centred")
    runio.add_sampling_args(p)
    return p


# ---------------------------------------------------------------- steps
# NUTS step-size target: the τ's have heavy-tailed (half-Cauchy) priors. Simulation-based
# calibration (benchmarks/sbc.py, 200 data sets) gave no divergent transition at this value.
TARGET_ACCEPT = 0.9


def sample_rr(effects: Effects, spec: RRSpec, *, chains: int, draws: int, tune: int, seed: int,
              progressbar: bool = False) -> xr.DataTree:
    """NUTS on the meta-analysis model, plus prior draws of its parameters.

    A dense mass matrix: the few parameters left after the effects are integrated out (level
    means, two τ) are correlated, and the matrix is tiny.
    """
    model = build_rr_model(effects, spec)
    names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    with model, _quiet("pymc"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dt = pm.sample(draws=draws, tune=tune, chains=chains, cores=min(chains, os.cpu_count() or 1),
                       random_seed=seed, nuts_sampler="pymc", init="jitter+adapt_full",
                       target_accept=TARGET_ACCEPT, progressbar=progressbar,
                       compute_convergence_checks=False)
        prior = pm.sample_prior_predictive(draws=min(1000, draws * chains), var_names=names,
                                           random_seed=seed + 1)
    dt["prior"] = prior["prior"]
    return dt


class _quiet:
    """Silence a logger's INFO chatter for the duration of a block."""

    def __init__(self, name: str):
        self.logger, self.level = logging.getLogger(name), None

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.WARNING)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def assemble(dt: xr.DataTree, d: RRData) -> xr.DataTree:
    """Add the per-experiment labels and inputs the forest plot and reports need."""
    t = d.effects
    obs = dt["observed_data"].to_dataset().coords["obs"]
    const = dt["constant_data"].to_dataset() if "constant_data" in dt.children else xr.Dataset()
    extra = {
        "exp_study": t["study"].astype(str).to_numpy(), "exp_site": t["site"].astype(str).to_numpy(),
        "exp_level": np.asarray(d.levels)[d.level_idx],
        "exp_ecosystem": t["ecosystem"].fillna("").astype(str).to_numpy(),
        "exp_direction": t["direction"].astype(str).to_numpy(),
        "exp_warming_c": t["warming_c"].to_numpy(float), "geary": t["geary"].to_numpy(float),
        **{c: t[c].to_numpy(float) for c in ("control_mean", "control_sd", "control_n",
                                             "treatment_mean", "treatment_sd", "treatment_n")},
    }
    for name, values in extra.items():
        const[name] = ("obs", values)
    const = const.assign_coords(obs=obs)
    dt["constant_data"] = xr.DataTree(const)
    return dt


def summary_table(dt: xr.DataTree, d: RRData) -> pd.DataFrame:
    """The tidy ``rr_summary.csv``: quantity, level, versus + runio.SUMMARY_STATS.

    Rows: posterior summaries (lnRR, RR, tau, tau_study, tau_site, I2, lnRR_new, RR_new per level,
    and the slope when fitted); ``RR_pred_low``/``RR_pred_high`` (the prediction interval of RR for
    a new experiment, in ``mean`` and ``median``); per pair of levels ``dlnRR`` (level − versus),
    ``P_diff_gt_0`` = P(RR_level > RR_versus), ``overlap`` of the two lnRR posteriors, ``p_agree`` =
    P(a draw of level lies in versus's interval, normal approximation); and the data rows ``k``,
    ``n_studies``, ``warming_c`` (mean ± SD of the applied warming).
    """
    post = dt["posterior"].to_dataset()
    names = [v for v in POSTERIOR_SUMMARY if v in post]
    table = runio.tidy_summary(post, names)
    rows = [table]
    lo, _, hi = CI_QUANTILES
    rr_new = post["RR_new"].stack(sample=("chain", "draw"))
    for name, q in (("RR_pred_low", lo), ("RR_pred_high", hi)):
        value = rr_new.quantile(q, dim="sample").to_series()
        rows.append(pd.DataFrame({"quantity": name, "level": value.index, "mean": value.to_numpy(),
                                  "median": value.to_numpy()}))
    rows += _between_level_rows(post, d.levels)
    data = warming_by_level(d)
    for name in ("k", "n_studies"):
        rows.append(pd.DataFrame({"quantity": name, "level": data["level"], "mean": data[name],
                                  "median": data[name]}))
    has_w = data["warming_n"] > 0
    rows.append(pd.DataFrame({"quantity": "warming_c", "level": data.loc[has_w, "level"],
                              "mean": data.loc[has_w, "warming_mean"],
                              "sd": data.loc[has_w, "warming_sd"]}))
    out = pd.concat(rows, ignore_index=True)
    lead = ["quantity", "level", "versus"]
    out = out.reindex(columns=[*lead, *[c for c in out.columns if c not in lead]])
    return out[lead + [c for c in runio.SUMMARY_STATS if c in out.columns]]


def _between_level_rows(post: xr.Dataset, levels: list[str]) -> list[pd.DataFrame]:
    """Per pair of levels: dlnRR (level − versus), P_diff_gt_0, overlap, p_agree both ways."""
    ln_rr = post["lnRR"].stack(sample=("chain", "draw")).transpose("sample", "level")
    pairs = between_levels(ln_rr.to_numpy(), levels)
    if pairs.empty:
        return []
    diff = xr.concat([post["lnRR"].sel(level=a) - post["lnRR"].sel(level=b)
                      for a, b in zip(pairs["level"], pairs["versus"])], dim="pair")
    dsum = runio.tidy_summary(xr.Dataset({"dlnRR": diff.drop_vars("level", errors="ignore")}))
    dsum = dsum.drop(columns="pair", errors="ignore")
    dsum["level"], dsum["versus"] = pairs["level"].to_numpy(), pairs["versus"].to_numpy()
    rows = [dsum]
    for name in ("P_diff_gt_0", "overlap"):
        rows.append(pairs[["level", "versus"]].assign(quantity=name, mean=pairs[name],
                                                      median=pairs[name]))
    both = pd.concat([
        pairs[["level", "versus"]].assign(value=pairs["p_agree"]),
        pairs.rename(columns={"level": "versus", "versus": "level"})[["level", "versus"]]
        .assign(value=pairs["p_agree_reverse"].to_numpy())], ignore_index=True)
    rows.append(both.assign(quantity="p_agree", mean=both["value"], median=both["value"])
                .drop(columns="value"))
    return rows


def gated_variables(dt: xr.DataTree) -> list[str]:
    post = dt["posterior"].to_dataset()
    return [v for v in ("lnRR", "tau_study", "tau_site", "lnRR_per_degC", "z_study", "z_site",
                        "z_new") if v in post]


def _fmt(x: float, digits: int = 2) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _interval(lo: float, hi: float) -> str:
    return f"[{_fmt(lo)}, {_fmt(hi)}]"


def result_text(summary: pd.DataFrame, moderator: str, synthetic: bool, dropped: dict) -> str:
    """The printed result: per level RR, prediction interval, τ, I², warming; then between levels."""
    def get(q, level=None, versus=None, col="median"):
        hit = summary[(summary["quantity"] == q)
                      & ((summary["level"] == level) if level is not None else summary["level"].isna())
                      & ((summary["versus"] == versus) if versus is not None
                         else summary["versus"].isna())]
        return float(hit[col].iloc[0]) if len(hit) else np.nan

    levels = list(summary.loc[summary["quantity"] == "RR", "level"])
    lines = [f"Response-ratio meta-analysis by {moderator}{' (SYNTHETIC data)' if synthetic else ''}; "
             f"medians with {CI_LABEL}s"]
    if dropped:
        lines.append("rows left out: " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    header = (f"{'level':<18} {'k':>3} {'RR':>6} {'interval':>15} {'prediction':>15} "
              f"{'tau':>5} {'I2':>5} {'warming °C':>12}")
    lines.append(header)
    for lv in levels:
        wm, ws = get("warming_c", lv, col="mean"), get("warming_c", lv, col="sd")
        warm = f"{_fmt(wm, 2)} ± {_fmt(ws, 2)}" if np.isfinite(wm) else "—"
        lines.append(
            f"{lv:<18} {int(get('k', lv)):>3} {_fmt(get('RR', lv)):>6} "
            f"{_interval(get('RR', lv, col='ci_low'), get('RR', lv, col='ci_high')):>15} "
            f"{_interval(get('RR_pred_low', lv), get('RR_pred_high', lv)):>15} "
            f"{_fmt(tau if np.isfinite(tau := get('tau', lv)) else get('tau')):>5} "
            f"{_fmt(get('I2', lv)):>5} {warm:>12}")
    if "RR_per_degC" in set(summary["quantity"]):
        lines.append(f"RR per °C of warming: {_fmt(get('RR_per_degC'), 3)} "
                     f"[{_fmt(get('RR_per_degC', col='ci_low'), 3)}, "
                     f"{_fmt(get('RR_per_degC', col='ci_high'), 3)}]")
    pairs = summary[summary["quantity"] == "P_diff_gt_0"]
    for a, b in zip(pairs["level"], pairs["versus"]):
        lines.append(f"{a} vs {b}: P(RR_{a} > RR_{b}) = {get('P_diff_gt_0', a, b):.3f}; "
                     f"overlap = {get('overlap', a, b):.3f}; "
                     f"P(draw of {a} in {b}'s interval) = {get('p_agree', a, b):.3f}, "
                     f"reverse = {get('p_agree', b, a):.3f}")
    return "\n".join(lines)


def sensitivity_table(effects: Effects, spec: RRSpec, main_dt: xr.DataTree, *, chains: int,
                      draws: int, tune: int, seed: int, say=runio.progress) -> pd.DataFrame:
    """lnRR, RR, τ and P_diff_gt_0 under the fitted τ prior and each alternative prior
    (``say``: where the progress lines go)."""
    import dataclasses

    rows = []
    fits = [(spec.tau_prior, main_dt)]
    for prior in SENSITIVITY_TAU_PRIORS:
        if prior != spec.tau_prior:
            say(f"prior sensitivity: τ ~ {prior}")
            alt = dataclasses.replace(spec, tau_prior=prior)
            fits.append((prior, sample_rr(effects, alt, chains=chains, draws=draws, tune=tune,
                                          seed=seed)))
    d = prepare(effects, spec)
    for prior, dt in fits:
        summary = summary_table(dt, d)
        keep = summary[summary["quantity"].isin(["lnRR", "RR", "tau", "RR_pred_low", "RR_pred_high",
                                                 "P_diff_gt_0"])].copy()
        keep.insert(0, "tau_prior", str(prior))
        keep["r_hat_max"] = runio.diagnose(dt, gated_variables(dt))["r_hat_max"]
        rows.append(keep)
    return pd.concat(rows, ignore_index=True)


# ---------------------------------------------------------------- entry point
@runio.cli
def main(argv: list[str] | None = None) -> int:
    return runio.run_job("fit_rr", parser(), argv, fit)


def fit(args, argv):
    from tpflux.meta import fit_rr

    return fit_rr(args.table, dataset=args.dataset, moderator=args.moderator, levels=args.levels,
                  warming_slope=args.warming_slope, tau_prior=args.tau_prior,
                  tau_by_level=args.tau_by_level, tau_prior_sensitivity=args.tau_prior_sensitivity,
                  mu_prior_sd=args.mu_prior_sd, bias_correction=args.bias_correction,
                  sign_change=args.sign_change, parameterisation=args.parameterisation,
                  chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed,
                  command_line=argv)


if __name__ == "__main__":
    sys.exit(main())
