"""The activation-energy fit as steps: prepare → sample → assemble a DataTree → summarise.

Shared by ``inference.fit_ea``, ``inference.compare_seasons`` and the benchmarks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy.stats import norm

from data.errors import DataError
from data.seasons import assign_seasons
from data.table import Observations, flux_class
from inference import nutpie_compile
from models.arrhenius import ArrheniusConfig, ArrheniusData, build_model, prepare_data
from models.arrhenius_config import TARGET_ACCEPT, add_group_columns, group_coords, group_parts
from models.arrhenius_post import (FOLD_CHANGE_C, Q10_RANGES_C, derived_quantities,
                                   exact_draws, pointwise_log_likelihood,
                                   pooled_ols, predict_ln_flux, prior_class_means,
                                   prior_site_effects, residual_autocorrelation)
from models.conventions import CI_QUANTILES, SUMMARY_STATS
from models.conventions import EA_GATED_VARIABLES as GATED_VARIABLES  # noqa: F401  (re-exported)
from models.conventions import EA_SAMPLED_VARIABLES as HYPER_VARIABLES
from models.summary import mean_tree_depth  # noqa: F401  (re-exported for the jobs and benchmarks)
from models.summary import posterior_summary

SUMMARY_VARIABLES = ("E", "lnR", "beta_E", "beta_R", "E_site", "E_site_mean", "dE", "Q10",
                     "fold_change_0_30", "tau_E", "tau_R", "tau_E_class", "tau_R_class", "omega_E",
                     "omega_R", "sigma", "rho", "method_offset", "nu")
PROBABILITY_VARIABLES = ("P_dE_gt_0",)


def prepare(obs: Observations, scheme: str, config: ArrheniusConfig) -> ArrheniusData:
    table = obs.table
    source = obs.sources[0] if len(obs.sources) == 1 else None
    data = prepare_data(table, assign_seasons(table, scheme), config, flux_class(table), source)
    if scheme != "none" and len(data.seasons) < 2:
        # Refused rather than fitted quietly: the season contrast is what the job reports.
        raise DataError(source, None, "season",
                        f"every observation falls in the '{data.seasons[0]}' season of the "
                        f"{scheme} scheme, so there is no season contrast to estimate",
                        "add data from the other seasons, or pass --seasons none to fit one E "
                        "per flux class")
    return data




def sample(data: ArrheniusData, config: ArrheniusConfig, *, chains: int, draws: int, tune: int,
           seed: int, sampler: str = "nutpie", progressbar: bool = False,
           target_accept: float = TARGET_ACCEPT) -> xr.DataTree:
    """NUTS on the model. nutpie (the default) runs the chains in threads of one process with a
    Rust sampler; PyMC's own sampler runs one process per chain up to the cores this machine has.

    Both adapt a mass matrix that captures correlations: lnR and E of a cell are strongly
    correlated when its temperatures lie far from T_C (non-growing seasons), and the hyperparameters
    are few. Measured on the simulator, min bulk ESS: 3,593 of 4 × 1,000 draws with nutpie's
    low-rank adaptation vs 706 with its diagonal one; 874 vs 291 of 2 × 500 draws with PyMC's dense
    vs diagonal adaptation.
    """
    cores = min(chains, os.cpu_count() or 1)
    options = sampler_options(sampler, config, target_accept)
    model = build_model(data, config)
    if sampler == "nutpie":  # compiled once per model and data, then loaded from disk
        return nutpie_compile.sample(model, draws=draws, tune=tune, chains=chains, cores=cores,
                                     seed=seed, progressbar=progressbar,
                                     target_accept=options["target_accept"], **options["nuts"])
    with model:
        return pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                         nuts_sampler=sampler, progressbar=progressbar,
                         compute_convergence_checks=False, quiet=not progressbar, **options)


def sampler_options(sampler: str, config: ArrheniusConfig,
                    target_accept: float = TARGET_ACCEPT) -> dict:
    """Step-size target and mass-matrix adaptation per sampler (see ``sample``); shared with the
    calibration runs."""
    options: dict = {"target_accept": target_accept}
    if sampler == "pymc" and config.likelihood == "normal":
        options["init"] = "jitter+adapt_full"
    elif sampler == "nutpie":
        options["nuts"] = {"adaptation": "low_rank"}
    return options


@contextlib.contextmanager
def _quiet_logger(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _nu(ds: xr.Dataset) -> np.ndarray | None:
    return ds["nu"].to_numpy() if "nu" in ds else None


def assemble(idata: xr.DataTree, data: ArrheniusData, config: ArrheniusConfig, *, seed: int,
             ppc_draws: int = 100, log_likelihood: bool = True) -> xr.DataTree:
    """The saved DataTree: posterior (+ exact site effects and derived quantities), sample_stats,
    prior and prior/posterior predictive, observed and constant data, pointwise log-likelihood."""
    rng = np.random.default_rng([seed, 1])
    post = idata["posterior"].to_dataset()
    keep = [v for v in post.data_vars if v in HYPER_VARIABLES or v in ("eps_E", "eps_R")]
    post = post[keep]
    if "eps_E" not in post:  # marginal model: class means and site effects drawn exactly
        post = exact_draws(post, data, config.priors, rng)
    else:  # per-observation model: the sampler's group labels get their parts as coordinates
        post = post.assign_coords(group_coords(data.groups))
    post = post.merge(derived_quantities(post, data), compat="override")
    thin = post.isel(draw=slice(None, None, max(1, post.sizes["draw"] // max(1, ppc_draws))))
    ppc = xr.Dataset({"ln_flux": predict_ln_flux(thin, data, rng, _nu(thin))})
    prior, prior_pred = _prior_draws(data, config, rng, ppc_draws * 2)
    groups = {"posterior": post, "posterior_predictive": ppc, "prior": prior,
              "prior_predictive": prior_pred, "sample_stats": idata["sample_stats"].to_dataset(),
              **_data_groups(data.obs, data.covariate)}
    if log_likelihood:
        groups["log_likelihood"] = xr.Dataset({"ln_flux": pointwise_log_likelihood(post, data, _nu(post))})
    return xr.DataTree.from_dict(groups)


def _prior_draws(data: ArrheniusData, config: ArrheniusConfig, rng: np.random.Generator,
                 draws: int) -> tuple[xr.Dataset, xr.Dataset]:
    """Prior draws of the hyperparameters and site effects, and the prior predictive ln|F|."""
    # The likelihood Potential is ignored here on purpose: prior draws of the hyperparameters only;
    # site effects and replicated data are drawn below from the same generative model.
    with build_model(data, config), warnings.catch_warnings(), _quiet_logger("pymc"):
        warnings.filterwarnings("ignore", message=".*Potentials.*")
        # A few hundred draws of a handful of scalars: evaluated without compiling to native code
        # (0.07 s instead of 0.65 s, the same draws).
        prior_dt = pm.sample_prior_predictive(draws=draws, random_seed=rng.integers(2**31),
                                              compile_kwargs={"mode": "FAST_COMPILE"})
    prior = prior_dt["prior"].to_dataset()
    prior = prior[[v for v in prior.data_vars if v in HYPER_VARIABLES]]
    if "E" not in prior:  # marginal model: the class means are not among its variables
        prior = prior.merge(prior_class_means(prior, data, config.priors, rng))
    prior = prior.merge(prior_site_effects(prior, data, rng))
    return prior, xr.Dataset({"ln_flux": predict_ln_flux(prior, data, rng, _nu(prior))})


def _data_groups(obs: pd.DataFrame, covariate: str | None = None) -> dict[str, xr.Dataset]:
    """observed_data (ln|F|) and constant_data (what a report needs to redraw the data)."""
    coords = {"obs": np.arange(len(obs))}
    const = {"x": obs["x"].to_numpy(), "weight": np.asarray(obs["w"], dtype=float),
             "soil_temp_c": obs["soil_temp_c"].to_numpy(), "flux": obs["flux"].to_numpy(),
             "date": obs["date"].to_numpy(), "site": obs["site"].to_numpy().astype(str),
             "obs_flux_class": obs["flux_class"].to_numpy().astype(str),
             "obs_season": obs["season"].to_numpy().astype(str),
             "obs_group": obs["group"].to_numpy(), "method": obs["method"].to_numpy().astype(str),
             # the AR(1) link of each observation to its group's previous one (−1: none)
             "obs_previous": obs["previous"].to_numpy(), "gap_days": obs["gap_days"].to_numpy()}
    if "z" in obs:  # the covariate moderating E and lnR, as read and centred on its class mean
        const["covariate"] = obs[covariate].to_numpy(dtype=float)
        const["covariate_centred"] = obs["z"].to_numpy(dtype=float)
    constant = xr.Dataset({k: ("obs", v) for k, v in const.items()}, coords=coords)
    if covariate is not None:
        constant["covariate"].attrs["long_name"] = covariate
        constant["covariate_centred"].attrs["long_name"] = f"{covariate} less its flux class's mean"
    return {"observed_data": xr.Dataset({"ln_flux": ("obs", obs["y"].to_numpy())}, coords=coords),
            "constant_data": constant}


def summary_table(dt: xr.DataTree, data: ArrheniusData) -> pd.DataFrame:
    """The tidy ``ea_summary.csv``: quantity, flux_class, season, site, … + SUMMARY_STATS."""
    post = dt["posterior"].to_dataset()
    names = [v for v in SUMMARY_VARIABLES if v in post]
    rows = [add_group_columns(posterior_summary(post, names), group_parts(post))]
    for name in PROBABILITY_VARIABLES:
        if name in post:
            p = post[name].mean(("chain", "draw")).to_series().reset_index(name="mean")
            rows.append(p.assign(quantity=name))
    auto = residual_autocorrelation(post, data).drop(columns="n_obs")
    rows.append(auto.melt(id_vars="flux_class", var_name="quantity", value_name="mean"))
    ols = pooled_ols(data).rename(columns={"E_pooled_ols": "mean", "se": "sd"})
    z = norm.ppf(CI_QUANTILES[2])
    rows.append(ols.assign(quantity="E_pooled_ols", median=ols["mean"], ci_low=ols["mean"] - z * ols["sd"],
                           ci_high=ols["mean"] + z * ols["sd"]))
    # dE is undefined (NaN) for the reference season itself.
    out = pd.concat(rows, ignore_index=True).dropna(subset=["mean"]).reset_index(drop=True)
    # The ρ of a class kept with independent residuals (not a daily series) is its prior only.
    prior_only = (out["quantity"] == "rho") & out["flux_class"].isin(list(data.independent_classes))
    out = out[~prior_only].reset_index(drop=True)
    out = out.join(extrapolation_marks(out, post, data))
    lead = ["quantity", "flux_class", "season", "site"]
    marks = ["extrapolated", "note"]
    lead += [c for c in out.columns if c not in lead + marks and c not in SUMMARY_STATS]
    return out[[c for c in lead if c in out] + [c for c in SUMMARY_STATS if c in out] + marks]


def extrapolation_marks(summary: pd.DataFrame, post: xr.Dataset, data: ArrheniusData) -> pd.DataFrame:
    """``extrapolated`` and ``note`` for the Q10 and fold-change rows: True where the row's
    temperature range reaches beyond the soil temperatures observed in its flux class × season
    (the Arrhenius curve is then used outside the data that fitted it); missing on other rows."""
    ranges = {("fold_change_0_30", None): FOLD_CHANGE_C}
    if "Q10" in post:  # the labels are made in Q10_RANGES_C's order
        ranges |= {("Q10", str(t)): r for t, r in zip(post["temp_range"].to_numpy(), Q10_RANGES_C)}
    seen = data.obs.groupby(["flux_class", "season"])["soil_temp_c"].agg(["min", "max"])
    marks = pd.DataFrame({"extrapolated": pd.Series(pd.NA, index=summary.index, dtype="object"),
                          "note": ""})
    label = summary["temp_range"] if "temp_range" in summary else pd.Series(None, index=summary.index)
    for i, row in summary.iterrows():
        key = (row["quantity"], label[i] if isinstance(label[i], str) else None)
        if key not in ranges or (row["flux_class"], row["season"]) not in seen.index:
            continue
        lo, hi = ranges[key]
        t_min, t_max = seen.loc[(row["flux_class"], row["season"])]
        beyond = bool(lo < t_min or hi > t_max)
        marks.loc[i, "extrapolated"] = beyond
        marks.loc[i, "note"] = (f"extrapolated: {lo:g} to {hi:g} °C beyond the observed "
                                f"{t_min:.1f} to {t_max:.1f} °C" if beyond else "")
    return marks


def data_summary(obs: Observations, data: ArrheniusData) -> pd.DataFrame:
    o = data.obs
    return (o.groupby(["flux_class", "season"], observed=True)
            .agg(n_obs=("y", "size"), n_sites=("site", "nunique"),
                 soil_temp_min=("soil_temp_c", "min"), soil_temp_max=("soil_temp_c", "max"),
                 median_abs_flux=("flux", lambda f: float(np.median(np.abs(f)))))
            .reset_index())


def data_summary_text(obs: Observations, data: ArrheniusData) -> str:
    tag = " [SYNTHETIC DATA]" if obs.synthetic else ""
    lines = [f"Data{tag}: {len(obs.table)} site-periods at {obs.table['site'].nunique()} sites; "
             f"{len(data.obs)} used in {len(data.groups)} site × class × season groups"]
    for reason, n in {**obs.dropped, **data.dropped}.items():
        lines.append(f"  dropped {n:>6} rows: {reason}")
    for site, reason in obs.skipped_sites.items():
        lines.append(f"  skipped site {site}: {reason}")
    for cls, reason in data.skipped_classes.items():
        lines.append(f"  skipped class {cls}: {reason}")
    for cls, reason in data.independent_classes.items():
        lines.append(f"  class {cls}: {reason}")
    lines.append(data_summary(obs, data).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return "\n".join(lines)


def result_text(summary: pd.DataFrame, synthetic: bool = False, covariate: str | None = None) -> str:
    def fmt(rows: pd.DataFrame, label: str) -> list[str]:
        return [f"  {r.flux_class:<22} {r.season:<14} {r.median:7.3f}  [{r.ci_low:6.3f}, {r.ci_high:6.3f}]"
                for r in rows.itertuples()] if len(rows) else []

    tag = " [SYNTHETIC DATA]" if synthetic else ""
    lines = [f"Activation energy E (eV), median [95 % equal-tailed interval]{tag}",
             "  (the population E of each flux class × season, for a new site: the number to cite; "
             "E_site_mean in ea_summary.csv averages the fitted sites only)"]
    lines += fmt(summary[summary["quantity"] == "E"], "E")
    beta = summary[summary["quantity"].isin(["beta_E", "beta_R"])]
    if len(beta):
        name = covariate or "the covariate"
        lines.append(f"Effect of {name} per unit of it (z − z̄ of the class; E above is at z̄): "
                     "β_E on E (eV), β_R on lnR, median [95 % interval]")
        lines += [f"  {r.flux_class:<22} {r.quantity:<14} {r.median:7.3f}  [{r.ci_low:6.3f}, "
                  f"{r.ci_high:6.3f}]" for r in beta.itertuples()]
    dE = summary[summary["quantity"] == "dE"]
    if len(dE):
        p = summary[summary["quantity"] == "P_dE_gt_0"].set_index(["flux_class", "season"])["mean"]
        lines.append("ΔE = E(season) − E(reference season), with P(ΔE > 0)")
        for r in dE.itertuples():
            lines.append(f"  {r.flux_class:<22} {r.season:<14} {r.median:7.3f}  [{r.ci_low:6.3f}, "
                         f"{r.ci_high:6.3f}]  P = {p.loc[(r.flux_class, r.season)]:.3f}")
    sens = summary[summary["quantity"].isin(["Q10", "fold_change_0_30"])]
    if len(sens):
        lines.append("Q10 and the 0→30 °C fold change implied by E, median [95 % interval]; * marks a "
                     "range beyond the soil temperatures observed in that class × season")
        for r in sens.itertuples():
            what = f"Q10 {r.temp_range}" if r.quantity == "Q10" else "fold change 0-30 C"
            marked = str(getattr(r, "extrapolated", "")) == "True"
            lines.append(f"  {r.flux_class:<22} {r.season:<14} {what:<18} {r.median:8.3g}  "
                         f"[{r.ci_low:.3g}, {r.ci_high:.3g}]" + (f"  * {r.note}" if marked else ""))
    rho = summary[summary["quantity"] == "rho"]
    if len(rho):
        extra = summary[summary["quantity"].isin(["resid_lag1_iid", "resid_lag1_ar1", "n_eff_days"])]
        # a class without consecutive days has no lag-1 figure (NaN rows are not kept)
        extra = (extra.pivot_table(index="flux_class", columns="quantity", values="mean")
                 .reindex(index=rho["flux_class"],
                          columns=["resid_lag1_iid", "resid_lag1_ar1", "n_eff_days"]))
        lines.append("Residual day-to-day autocorrelation ρ (AR(1)); lag-1 autocorrelation of the "
                     "residuals without → with it; effective independent days of n")
        for r in rho.itertuples():
            e = extra.loc[r.flux_class]
            lines.append(f"  {r.flux_class:<22} ρ = {r.median:5.3f} [{r.ci_low:5.3f}, {r.ci_high:5.3f}]  "
                         f"lag-1 {e['resid_lag1_iid']:5.2f} → {e['resid_lag1_ar1']:5.2f}  "
                         f"n_eff {e['n_eff_days']:7.0f}")
    return "\n".join(lines)
