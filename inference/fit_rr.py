"""Bayesian random-effects meta-analysis of CH4 response ratios (warmed / control) by moderator level.

    python -m inference.fit_rr (--table PATH | --dataset NAME) [--moderator COLUMN]
                               [--moderators season,warming_c,ecosystem] [--warming-slope]
                               [--directions moderator|refuse|pool]
                               [--tau-prior FAMILY:SCALE] [--tau-prior-sensitivity] [--tau-by-level]
                               [--small-study-test] [--leave-one-out] [--cumulative [YEAR_COLUMN]]
                               [--chains --draws --tune --seed --out --overwrite --allow-unconverged]

Writes ``rr_posterior.nc`` (ArviZ DataTree), ``rr_summary.csv``, ``diagnostics.json`` and, when
asked for, ``rr_prior_sensitivity.csv``, ``rr_small_study.csv``, ``rr_leave1out.csv``,
``rr_cumulative.csv`` to the run folder. Moderator coefficients are the summary rows ``beta``
(lnRR scale) and ``exp_beta`` (RR factor), ``level`` = the term, ``versus`` = its reference
category. Emission and uptake experiments in one table are never pooled silently: by default
``direction`` is added as a moderator and the output says so (models/meta.py). Figures of a run
(forest with prediction intervals, funnel, influence, cumulative, prior sensitivity):
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
from data.errors import DataError
from data.table import source_row
from models.meta import (SENSITIVITY_TAU_PRIORS, Effects, RRData, RRSpec, between_levels,
                         build_rr_model, prepare, warming_by_level)

SENSITIVITY_FILE = "rr_prior_sensitivity.csv"
SMALL_STUDY_FILE = "rr_small_study.csv"
LEAVE1OUT_FILE = "rr_leave1out.csv"
CUMULATIVE_FILE = "rr_cumulative.csv"
EXTRA_FILES = (SENSITIVITY_FILE, SMALL_STUDY_FILE, LEAVE1OUT_FILE, CUMULATIVE_FILE)

POSTERIOR_SUMMARY = ("lnRR", "RR", "tau", "tau_study", "tau_site", "I2", "lnRR_new", "RR_new",
                     "lnRR_per_degC", "RR_per_degC", "beta", "exp_beta")
# A PSIS leave-one-study-out estimate with Pareto k above this is replaced by a refit.
PARETO_K_REFIT = 0.7


def parser() -> argparse.ArgumentParser:
    from models.meta import DIRECTIONS
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
    p.add_argument("--moderators", default=None,
                   help="several moderators, formula-like: season,warming_c,ecosystem (or "
                        "season+warming_c+C(year)); the first categorical one groups (one lnRR per "
                        "level), further categorical ones add treatment contrasts, numeric ones a "
                        "centred slope; C(name) makes a column categorical; 'direction' and 'sei' "
                        "are derived columns")
    p.add_argument("--directions", choices=DIRECTIONS, default=DIRECTIONS[0],
                   help="emission and uptake rows in one table: add direction as a moderator "
                        "(default), refuse, or pool them as magnitudes")
    p.add_argument("--small-study-test", action="store_true",
                   help="Egger-type test: refit with the standard error sei as a moderator, "
                        "write rr_small_study.csv")
    p.add_argument("--leave-one-out", action="store_true",
                   help="leave-one-study-out influence (PSIS; refit where Pareto k > 0.7), "
                        "write rr_leave1out.csv")
    p.add_argument("--cumulative", nargs="?", const="year", default=None, metavar="COLUMN",
                   help="cumulative estimates, studies added in order of COLUMN (default year), "
                        "write rr_cumulative.csv")
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
    if "coef" in table.columns:  # moderator coefficients: the term, against its reference
        is_coef = table["coef"].notna()
        versus = dict(zip(d.design.names, d.design.versus))
        table.loc[is_coef, "level"] = table.loc[is_coef, "coef"]
        table.loc[is_coef, "versus"] = table.loc[is_coef, "coef"].map(versus)
        table = table.drop(columns="coef")
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


def result_text(summary: pd.DataFrame, moderator: str, synthetic: bool, dropped: dict,
                notes: list[str] = (), extra: dict[str, pd.DataFrame] | None = None) -> str:
    """The printed result: notes (e.g. how flux direction was handled), per level RR, prediction
    interval, τ, I², warming; moderator coefficients; between levels; then the extra analyses
    (small-study test, most influential study, τ-prior sensitivity) when they were run."""
    def get(q, level=None, versus=None, col="median"):
        hit = summary[(summary["quantity"] == q)
                      & ((summary["level"] == level) if level is not None else summary["level"].isna())
                      & ((summary["versus"] == versus) if versus is not None
                         else summary["versus"].isna())]
        return float(hit[col].iloc[0]) if len(hit) else np.nan

    levels = list(summary.loc[summary["quantity"] == "RR", "level"])
    lines = [f"Response-ratio meta-analysis by {moderator}{' (SYNTHETIC data)' if synthetic else ''}; "
             f"medians with {CI_LABEL}s"]
    lines += [str(n) for n in notes if n]
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
    for _, row in summary[summary["quantity"] == "beta"].iterrows():
        term = row["level"] + (f" vs {row['versus']}" if isinstance(row["versus"], str) else
                               f" (slope per unit of {row['level']})")
        lines.append(f"moderator {term}: lnRR {_fmt(row['median'], 3)} "
                     f"[{_fmt(row['ci_low'], 3)}, {_fmt(row['ci_high'], 3)}]")
    pairs = summary[summary["quantity"] == "P_diff_gt_0"]
    for a, b in zip(pairs["level"], pairs["versus"]):
        lines.append(f"{a} vs {b}: P(RR_{a} > RR_{b}) = {get('P_diff_gt_0', a, b):.3f}; "
                     f"overlap = {get('overlap', a, b):.3f}; "
                     f"P(draw of {a} in {b}'s interval) = {get('p_agree', a, b):.3f}, "
                     f"reverse = {get('p_agree', b, a):.3f}")
    return "\n".join(lines + extra_text(extra or {}))


def extra_text(extra: dict[str, pd.DataFrame]) -> list[str]:
    """One or two lines per extra analysis that was run."""
    lines = []
    egger = extra.get(SMALL_STUDY_FILE)
    if egger is not None and len(egger):
        slope = egger[egger["quantity"] == "egger_slope"].iloc[0]
        p = egger[egger["quantity"] == "P_slope_gt_0"]["mean"].iloc[0]
        lines.append(f"small-study (Egger-type) test: lnRR per unit SE {_fmt(slope['median'], 3)} "
                     f"{_interval(slope['ci_low'], slope['ci_high'])}, P(slope > 0) = {p:.3f}")
    loo = extra.get(LEAVE1OUT_FILE)
    if loo is not None and len(loo):
        shift = loo[loo["quantity"] == "lnRR"].copy()
        shift["shift"] = (shift["mean"] - shift["full_mean"]).abs() / shift["full_sd"]
        top = shift.sort_values("shift").iloc[-1]
        lines.append(f"leave-one-study-out: leaving out {top['study']} moves lnRR[{top['level']}] "
                     f"most, by {top['shift']:.2f} posterior SD (max Pareto k "
                     f"{loo['pareto_k'].max():.2f}; studies refitted: "
                     f"{loo.loc[loo['refit'].astype(bool), 'study'].nunique()})")
    sens = extra.get(SENSITIVITY_FILE)
    if sens is not None and len(sens):
        tau = sens[sens["quantity"] == "tau"].groupby("tau_prior")["median"].first()
        lines.append("τ prior sensitivity (median τ): "
                     + ", ".join(f"{k} {_fmt(v, 3)}" for k, v in tau.items()))
    return lines


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


def _subset(effects: Effects, keep: np.ndarray) -> Effects:
    return Effects(effects.table[keep].reset_index(drop=True), effects.bias_corrected,
                   effects.dropped, effects.source)


def _fit_summary(effects: Effects, spec: RRSpec, *, chains, draws, tune, seed):
    """Sample and summarise ``names`` (no extra columns): one refit of the influence analyses."""
    dt = sample_rr(effects, spec, chains=chains, draws=draws, tune=tune, seed=seed)
    return summary_table(dt, prepare(effects, spec)), dt


def small_study_table(effects: Effects, spec: RRSpec, *, chains: int, draws: int, tune: int,
                      seed: int, say=runio.progress) -> pd.DataFrame:
    """Egger-type small-study test: the model refitted with sei = √vi as a further moderator.

    Rows: ``egger_slope`` (lnRR per unit of standard error; > 0 when small, imprecise studies
    report larger effects), ``P_slope_gt_0``, and per level ``limit_lnRR``, the response of an
    infinitely precise study (the slope extrapolated to sei = 0, metafor's "limit estimate").
    """
    import dataclasses

    say("small-study test: refit with sei as a moderator")
    alt = dataclasses.replace(spec, moderators=(*spec.moderators, "sei"))
    dt = sample_rr(effects, alt, chains=chains, draws=draws, tune=tune, seed=seed)
    d = prepare(effects, alt)
    post = dt["posterior"].to_dataset()
    slope = post["beta"].sel(coef="sei")
    limit = post["lnRR"] - slope * d.design.centres["sei"]
    out = runio.tidy_summary(xr.Dataset({"egger_slope": slope.drop_vars("coef"),
                                         "limit_lnRR": limit}))
    p = float((slope > 0).mean())
    out = pd.concat([out, pd.DataFrame({"quantity": ["P_slope_gt_0"], "mean": [p], "median": [p]})],
                    ignore_index=True)
    return out.reindex(columns=["quantity", "level", *runio.SUMMARY_STATS])


def leave_one_out_table(effects: Effects, spec: RRSpec, dt: xr.DataTree, *, chains: int,
                        draws: int, tune: int, seed: int, say=runio.progress) -> pd.DataFrame:
    """Leave-one-study-out influence: per study left out, the posterior of lnRR per level, τ and
    the moderator coefficients (PSIS from the full fit; a refit where Pareto k > 0.7), beside the
    full-data mean and SD (``full_mean``, ``full_sd``)."""
    from models.meta import leave_one_study_out

    d = prepare(effects, spec)
    post = dt["posterior"].to_dataset().stack(sample=("chain", "draw"))
    draws_of = {("lnRR", lv): post["lnRR"].sel(level=lv).to_numpy() for lv in d.levels}
    draws_of[("tau", None)] = (post["tau"].to_numpy() if post["tau"].ndim == 1
                               else post["tau"].mean("level").to_numpy())
    for c in d.design.names:
        draws_of[("beta", c)] = post["beta"].sel(coef=c).to_numpy()
    keys = list(draws_of)
    table = leave_one_study_out(post["loglik_study"].transpose("sample", "study").to_numpy(),
                                {str(i): draws_of[k] for i, k in enumerate(keys)}, d.studies)
    key = table["quantity"].astype(int).map(dict(enumerate(keys)))
    table["quantity"], table["level"] = key.str[0], key.str[1]
    table["refit"] = False
    full = {k: (float(np.mean(v)), float(np.std(v, ddof=1))) for k, v in draws_of.items()}
    study = d.effects["study"].astype(str).to_numpy()
    for s in table.loc[table["pareto_k"] > PARETO_K_REFIT, "study"].unique():
        say(f"leave-one-out: refit without {s} (Pareto k > {PARETO_K_REFIT})")
        try:
            refit, _ = _fit_summary(_subset(effects, study != s), spec, chains=chains,
                                    draws=draws, tune=tune, seed=seed)
        except DataError as exc:  # e.g. the study held a level's only experiments
            say(f"leave-one-out: {s} not refitted ({exc.problem})")
            continue
        for i in table.index[table["study"] == s]:
            q, lv = table.at[i, "quantity"], table.at[i, "level"]
            hit = refit[(refit["quantity"] == q) & ((refit["level"] == lv) if lv is not None
                                                     else refit["level"].isna())]
            if len(hit):
                for col in ("mean", "sd", "median", "ci_low", "ci_high"):
                    table.at[i, col] = float(hit[col].iloc[0])
                table.at[i, "refit"] = True
    table["full_mean"] = [full[(q, lv)][0] for q, lv in zip(table["quantity"], table["level"])]
    table["full_sd"] = [full[(q, lv)][1] for q, lv in zip(table["quantity"], table["level"])]
    return table[["study", "quantity", "level", "mean", "sd", "median", "ci_low", "ci_high",
                  "full_mean", "full_sd", "pareto_k", "refit"]]


def study_years(effects: Effects, column: str) -> pd.Series:
    """The year (or other order) of each study: the smallest value of ``column`` among its rows;
    DataError naming the row when the column is missing or a value is not a number."""
    t = effects.table
    if column not in t.columns:
        raise DataError(effects.source, 1, column, f"no '{column}' column for the cumulative "
                        "estimates", "add a year column, or name one with --cumulative COLUMN")
    num = pd.to_numeric(t[column], errors="coerce")
    if num.isna().any():
        i = int(np.flatnonzero(num.isna().to_numpy())[0])
        raise DataError(effects.source, source_row(t, i), column,
                        f"'{t[column].iloc[i]}' is not a year", "give every row a number in it")
    return num.groupby(t["study"].astype(str)).min().sort_values(kind="stable")


def cumulative_table(effects: Effects, spec: RRSpec, column: str, *, chains: int, draws: int,
                     tune: int, seed: int, say=runio.progress) -> pd.DataFrame:
    """Cumulative meta-analysis: studies added one at a time in order of ``column`` (metafor's
    ``cumul``), refitted from the second study on with the grouping moderator only; lnRR per
    level and τ after each addition (``step``: number of studies, ``study`` and ``year``: the one
    added)."""
    import dataclasses

    years = study_years(effects, column)
    alt = dataclasses.replace(spec, moderators=())
    study = effects.table["study"].astype(str).to_numpy()
    rows = []
    for step in range(2, len(years) + 1):
        say(f"cumulative: {step} of {len(years)} studies")
        keep = np.isin(study, years.index[:step])
        summary, _ = _fit_summary(_subset(effects, keep), alt, chains=chains, draws=draws,
                                  tune=tune, seed=seed)
        part = summary[summary["quantity"].isin(["lnRR", "tau"]) & summary["versus"].isna()]
        rows.append(part.assign(step=step, study=years.index[step - 1],
                                year=float(years.iloc[step - 1])))
    out = pd.concat(rows, ignore_index=True)
    return out[["step", "study", "year", "quantity", "level", *runio.SUMMARY_STATS]]


# ---------------------------------------------------------------- entry point
@runio.cli
def main(argv: list[str] | None = None) -> int:
    return runio.run_job("fit_rr", parser(), argv, fit)


def fit(args, argv):
    from tpflux.meta import fit_rr

    return fit_rr(args.table, dataset=args.dataset, moderator=args.moderator,
                  moderators=args.moderators, directions=args.directions,
                  small_study_test=args.small_study_test, leave_one_out=args.leave_one_out,
                  cumulative=args.cumulative, levels=args.levels,
                  warming_slope=args.warming_slope, tau_prior=args.tau_prior,
                  tau_by_level=args.tau_by_level, tau_prior_sensitivity=args.tau_prior_sensitivity,
                  mu_prior_sd=args.mu_prior_sd, bias_correction=args.bias_correction,
                  sign_change=args.sign_change, parameterisation=args.parameterisation,
                  chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed,
                  command_line=argv)


if __name__ == "__main__":
    sys.exit(main())
