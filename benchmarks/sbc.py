"""Simulation-based calibration (Talts et al. 2018) of model M1 (Arrhenius) and model M3 (meta-analysis).

    python -m benchmarks.sbc --model arrhenius|arrhenius-ar1|arrhenius-student|meta|meta-noncentred
                             --n 200 --out DIR [--workers W]

For each of ``n`` replicates a parameter vector θ̃ is drawn from the model's own prior, a data set
ỹ from the model's own likelihood given θ̃ (``pm.sample_prior_predictive`` on the model itself, so
the generating process is the model, priors of every parameter included), and the model is fitted
to ỹ exactly as the project fits real data. When the fit is calibrated, the rank of θ̃ among ``L``
near-independent posterior draws is uniform on 0…L for every quantity; a ∪-shaped histogram means
intervals too narrow, ∩-shaped too wide, a slope a bias.

Near-independence: the chains are thinned to ``L`` draws; a fit whose bulk or tail ESS (the
smallest over the ranked quantities) is below ``L`` is run again with twice the draws (at most
twice), and the ESS reached is recorded per replicate.

Models and designs (small: a few CPU seconds per fit, most of it compiling the model):
``arrhenius``  the marginal (Gaussian) M1 as ``inference.fit_ea`` samples it (nutpie, low-rank
               mass matrix; ``--sampler pymc`` for PyMC NUTS with a dense one) on a
               fixed design: two flux classes (wetland emission at 4 sites, one of them an
               autochamber so the method offset is in the model; grassland uptake at 3 sites),
               two seasons, 30–50 daily observations per site and season. Site effects are
               drawn exactly after sampling (``exact_draws``, with the class means where the
               sampler integrates them out) and ranked too.
               ``--model arrhenius-student``: the same design, data drawn from and fitted with
               ``fit_ea --likelihood student`` (per observation, ν ranked too).
``arrhenius-ar1`` the default M1 of ``fit_ea`` (AR(1) residuals, ρ_c ~ Uniform(−1, 1), marginal
               likelihood) on the same sites, classes, seasons and method offset, but with
               time structure (``AR1Design``): runs of 5–20 consecutive periods with 2–7-day gaps,
               a second run two years on at three sites (beyond the AR(1) horizon), 3-day
               periods at one site. Data drawn as ``fit_ea`` draws its prior predictive (site
               effects from τ, AR(1) residuals forward in time); ρ per class ranked too.
``meta``       M3 (``build_rr_model`` with the default spec: marginal form, τ ~ HalfCauchy(0.5),
               lnRR ~ Normal(0, 2)) sampled as ``inference.fit_rr`` samples it, on 10 studies, 14
               sites, both seasons per site, sampling variances of 0.01–0.25 (typical of CH4
               warming experiments). ``--model meta-noncentred`` checks the sampled-effects form.

Outputs in ``--out``: ``sbc_ranks.csv`` (replicate, parameter, rank, L, truth),
``sbc_uniformity.csv`` (per parameter: χ² test of the binned ranks, p-value, mean normalised
rank, share in the outer bins), ``sbc_ranks.png`` (histograms with the 99 % band of a uniform
histogram), ``sbc_replicates.csv`` (per fit: ESS, divergences, refits, seconds).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

# Calibration is judged per quantity at this level.
ALPHA = 0.01


# ---------------------------------------------------------------- ranks and uniformity
def rank_of(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Rank of each ``truth`` among ``draws`` (draw axis first): #draws < truth, ties split at random
    by position (continuous parameters have none)."""
    return (np.asarray(draws) < np.asarray(truth)[None, ...]).sum(axis=0)


def thin(values: np.ndarray, n_keep: int) -> np.ndarray:
    """``n_keep`` draws evenly spaced over the flattened (chain, draw) axis of (chain, draw, …)."""
    flat = values.reshape((-1,) + values.shape[2:])
    idx = np.linspace(0, flat.shape[0] - 1, n_keep).round().astype(int)
    return flat[idx]


def uniformity(ranks: pd.DataFrame, n_bins: int = 20) -> pd.DataFrame:
    """Per parameter: χ² test that binned ranks are uniform, and where any excess lies.

    ``ranks`` has columns parameter, rank, L (ranks take the L + 1 values 0…L).
    """
    from scipy import stats

    rows = []
    for name, g in ranks.groupby("parameter", sort=False):
        L = int(g["L"].iloc[0])
        counts = bin_counts(g["rank"].to_numpy(), L, n_bins)
        n = int(counts.sum())
        chi2, p = stats.chisquare(counts)
        u = (g["rank"].to_numpy() + 0.5) / (L + 1)
        outer = (counts[0] + counts[-1]) / n
        rows.append({"parameter": name, "n": n, "bins": n_bins, "chi2": chi2, "p_value": p,
                     "mean_rank": float(u.mean()), "sd_rank": float(u.std(ddof=1)),
                     "outer_share": outer, "uniform_at_1pct": bool(p >= ALPHA)})
    return pd.DataFrame(rows)


def bin_counts(ranks: np.ndarray, L: int, n_bins: int) -> np.ndarray:
    """Counts of ranks 0…L in ``n_bins`` equal bins (L + 1 must be a multiple of n_bins)."""
    if (L + 1) % n_bins:
        raise ValueError(f"L + 1 = {L + 1} is not a multiple of {n_bins} bins")
    return np.bincount(np.asarray(ranks, dtype=int) * n_bins // (L + 1), minlength=n_bins)


def plot_ranks(ranks: pd.DataFrame, uniform: pd.DataFrame, path: Path, title: str,
               n_bins: int = 20) -> None:
    """Histogram per parameter with the central 99 % band of a uniform histogram (Talts, Fig. 1)."""
    from matplotlib.figure import Figure
    from scipy import stats

    from data.storage import save_figure

    names = list(uniform["parameter"])
    ncol = min(6, len(names))
    nrow = -(-len(names) // ncol)
    fig = Figure(figsize=(2.4 * ncol, 1.9 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    p_by = uniform.set_index("parameter")["p_value"]
    for ax, name in zip(axes.flat, names):
        g = ranks[ranks["parameter"] == name]
        L = int(g["L"].iloc[0])
        counts = bin_counts(g["rank"].to_numpy(), L, n_bins)
        n = counts.sum()
        lo, hi = stats.binom.ppf([ALPHA / 2, 1 - ALPHA / 2], n, 1.0 / n_bins)
        ax.axhspan(lo, hi, color="0.85", lw=0)
        ax.axhline(n / n_bins, color="0.5", lw=0.8)
        bad = p_by[name] < ALPHA
        ax.bar(np.arange(n_bins), counts, width=1.0, color="tab:red" if bad else "tab:blue",
               edgecolor="white", lw=0.3)
        ax.set_title(f"{name}\np = {p_by[name]:.3f}", fontsize=7)
        ax.set_xticks([])
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=130)


# ---------------------------------------------------------------- model M1
@dataclasses.dataclass(frozen=True)
class ArrheniusDesign:
    """Sites of the calibration design: (site, ecosystem, sign, method)."""

    sites: tuple[tuple[str, str, float, str], ...] = (
        ("W1", "wetland", 1.0, "eddy_covariance"), ("W2", "wetland", 1.0, "eddy_covariance"),
        ("W3", "wetland", 1.0, "eddy_covariance"), ("W4", "wetland", 1.0, "autochamber"),
        ("G1", "grassland", -1.0, "autochamber"), ("G2", "grassland", -1.0, "autochamber"),
        ("G3", "grassland", -1.0, "autochamber"),
    )
    n_min: int = 30
    n_max: int = 50


def arrhenius_design_table(design: ArrheniusDesign = ArrheniusDesign(), seed: int = 0) -> pd.DataFrame:
    """A canonical table of the design: dates spread over a year, soil temperatures of an alpine
    annual cycle (about −6…18 °C), fluxes ±1 (replaced by each replicate's draw)."""
    rng = np.random.default_rng(seed)
    parts = []
    for site, eco, sign, method in design.sites:
        days = []
        for months in ((5, 6, 7, 8, 9), (10, 11, 12, 1, 2, 3, 4)):
            pool = pd.date_range("2020-01-01", "2020-12-31", freq="D")
            pool = pool[pool.month.isin(months)]
            n = int(rng.integers(design.n_min, design.n_max + 1))
            days.append(pd.DatetimeIndex(rng.choice(pool, n, replace=False)))
        dates = days[0].append(days[1]).sort_values()
        parts.append(_design_rows(site, eco, sign, method, dates, 1, rng))
    return pd.concat(parts, ignore_index=True)


def _design_rows(site, eco, sign, method, dates: pd.DatetimeIndex, days: int,
                 rng: np.random.Generator) -> pd.DataFrame:
    """Canonical rows of one site: soil temperature of an alpine annual cycle, flux ±1."""
    doy = dates.day_of_year.to_numpy()
    temp = 6.0 - 11.0 * np.cos(2 * np.pi * (doy - 20) / 366) + rng.normal(0, 1.5, len(dates))
    return pd.DataFrame({
        "site": site, "date": dates, "days": days, "flux": sign, "soil_temp_c": np.round(temp, 2),
        "ecosystem": eco, "method": method, "latitude": 33.0, "longitude": 100.0, "n_sub": 1})


@dataclasses.dataclass(frozen=True)
class AR1Design:
    """Time structure of the AR(1) calibration design (sites, sizes as ``ArrheniusDesign``).

    Each site × season is a series of runs of consecutive periods separated by short gaps (ρ is
    identified only from observations a few days apart); at the sites of ``second_year`` one more
    run lies two years later, beyond the AR(1) horizon (a new, independent run of the series); at
    ``multi_day`` the periods are several days long (weights w = days in the likelihood).
    """

    base: ArrheniusDesign = ArrheniusDesign()
    block: tuple[int, int] = (5, 20)  # periods per run
    gap: tuple[int, int] = (2, 7)  # days between runs
    second_year: tuple[str, ...] = ("W1", "W4", "G1")
    multi_day: tuple[tuple[str, int], ...] = (("G3", 3),)


def arrhenius_ar1_design_table(design: AR1Design = AR1Design(), seed: int = 0) -> pd.DataFrame:
    """A canonical table of the AR(1) design: per site and season, runs of consecutive periods
    starting at the season's start (1 May, 1 October of 2020); fluxes ±1 as in the iid design."""
    rng = np.random.default_rng(seed)
    period = dict(design.multi_day)
    parts = []
    for site, eco, sign, method in design.base.sites:
        step = period.get(site, 1)
        dates = []
        for start in (pd.Timestamp("2020-05-01"), pd.Timestamp("2020-10-01")):
            # multi-day periods cover as many days as the daily series, in fewer periods
            n = int(rng.integers(design.base.n_min, design.base.n_max + 1)) // step
            later = int(rng.integers(*design.block)) if site in design.second_year else 0
            dates += _runs(start + pd.Timedelta(days=int(rng.integers(0, 15))), n - later, step, design, rng)
            if later:  # two years on: more than AR1_HORIZON_DAYS after the first part
                dates += _runs(start + pd.DateOffset(years=2), later, step, design, rng)
        parts.append(_design_rows(site, eco, sign, method, pd.DatetimeIndex(dates), step, rng))
    return pd.concat(parts, ignore_index=True)


def _runs(start: pd.Timestamp, n: int, step: int, design: AR1Design,
          rng: np.random.Generator) -> list[pd.Timestamp]:
    """``n`` period start dates from ``start``: runs of consecutive periods, short gaps between."""
    dates, day = [], start
    while len(dates) < n:
        for _ in range(min(int(rng.integers(design.block[0], design.block[1] + 1)), n - len(dates))):
            dates.append(day)
            day += pd.Timedelta(days=step)
        day += pd.Timedelta(days=int(rng.integers(design.gap[0], design.gap[1] + 1)) - 1)
    return dates


def _arrhenius_prepare(table: pd.DataFrame, config):
    from data.seasons import assign_seasons
    from data.table import flux_class
    from models.arrhenius import prepare_data

    return prepare_data(table, assign_seasons(table, "julian"), config, flux_class(table))


def arrhenius_prior_draws(n: int, seed: int, config=None):
    """Design data and ``n`` joint prior draws (parameters + ln|F| of every observation) from the
    per-observation form of M1, whose observed Normal likelihood is the model's likelihood; with
    ``likelihood="student"`` from the Student-t model itself (it is per-observation already)."""
    import pymc as pm

    from models.arrhenius import ArrheniusConfig, build_model, build_naive_model

    # The per-observation prior predictive generates independent residuals: the shipped runs
    # calibrate the model with residuals="iid".
    config = config or ArrheniusConfig(min_obs=1, residuals="iid")
    data = _arrhenius_prepare(arrhenius_design_table(seed=seed), config)
    generator = build_model if config.likelihood == "student" else build_naive_model
    with generator(data, config):
        dt = pm.sample_prior_predictive(draws=n, random_seed=seed)
    prior = dt["prior"].to_dataset().squeeze("chain", drop=True)
    y = dt["prior_predictive"]["ln_flux"].to_numpy()[0]
    return data, config, prior, y


def arrhenius_ar1_prior_draws(n: int, seed: int, tau: str = "shared"):
    """AR(1) design data and ``n`` joint prior draws of the default M1 (``residuals="ar1"``):
    hyperparameters including ρ from the model's priors, site effects from N(0, τ²), then AR(1)
    residuals generated forward in time with the observation weights, exactly as ``fit_ea`` makes
    its prior predictive (``inference.ea_fitting._prior_draws``)."""
    from inference.ea_fitting import _prior_draws
    from models.arrhenius import ArrheniusConfig

    config = ArrheniusConfig(min_obs=1, residuals="ar1", tau=tau)
    data = _arrhenius_prepare(arrhenius_ar1_design_table(seed=seed), config)
    prior, predictive = _prior_draws(data, config, np.random.default_rng(seed), n)
    return (data, config, prior.squeeze("chain", drop=True),
            predictive["ln_flux"].to_numpy()[0].astype(float))


def _arrhenius_fit(data, config, *, draws: int, tune: int, seed: int, sampler: str,
                   target_accept: float | None = None):
    """NUTS with the options of ``inference.ea_fitting.sample``, the chains in this process: the
    replicates, not the chains, run in parallel."""
    import pymc as pm

    from inference.ea_fitting import TARGET_ACCEPT, sampler_options
    from models.arrhenius import build_model

    with build_model(data, config), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pm.sample(draws=draws, tune=tune, chains=2, cores=1, random_seed=seed,
                         nuts_sampler=sampler, progressbar=False, compute_convergence_checks=False,
                         quiet=True, **sampler_options(sampler, config, target_accept or TARGET_ACCEPT))


def arrhenius_replicate(k: int, setup: dict, *, L: int, draws: int, tune: int, seed: int,
                        max_refits: int = 2, sampler: str = "nutpie",
                        target_accept: float | None = None) -> tuple[list[dict], dict]:
    """Fit replicate ``k`` and rank its true parameters among L thinned posterior draws."""
    from models.arrhenius_post import exact_draws

    data0, config, prior, y = setup["data"], setup["config"], setup["prior"], setup["y"]
    table = data0.obs[["site", "date", "days", "flux", "soil_temp_c", "ecosystem", "method",
                       "latitude", "longitude", "n_sub"]].copy()
    with np.errstate(over="raise"):  # ln|F| beyond ±709 (Student-t, ν < 1) is no flux at all
        table["flux"] = np.sign(table["flux"].to_numpy()) * np.exp(y[k])
    data = _arrhenius_prepare(table, config)
    if data.groups["label"].tolist() != data0.groups["label"].tolist():
        raise RuntimeError(f"replicate {k}: the design's groups changed")

    def fit(n_draws, attempt):
        idata = _arrhenius_fit(data, config, draws=n_draws, tune=tune,
                               seed=_seed(seed, k, attempt), sampler=sampler,
                               target_accept=target_accept)
        post = idata["posterior"].to_dataset()
        if "eps_E" not in post:  # marginal model: what it integrates out drawn exactly, as fit_ea does
            post = exact_draws(post, data, config.priors, np.random.default_rng([seed, k, attempt, 1]))
        return idata, post

    return _ranked_fit(k, fit, lambda ds: _arrhenius_scalars(ds, data),
                       prior.isel(draw=k), L=L, draws=draws, max_refits=max_refits)


def _arrhenius_scalars(ds, data) -> dict[str, np.ndarray]:
    """Ranked quantities {name: values, draw axes first}: hyperparameters, the season contrast dE,
    and every site effect."""
    out = {}
    E = ds["E"].to_numpy()
    for var in ("E", "lnR"):
        for i, c in enumerate(data.classes):
            for j, s in enumerate(data.seasons):
                out[f"{var}[{c},{s}]"] = ds[var].to_numpy()[..., i, j]
    for i, c in enumerate(data.classes):  # what users cite: non-growing − growing
        out[f"dE[{c}]"] = E[..., i, 1] - E[..., i, 0]
    for var in ("tau_E", "tau_R"):
        for j, s in enumerate(data.seasons):
            out[f"{var}[{s}]"] = ds[var].to_numpy()[..., j]
    for var in ("omega_E", "omega_R"):
        if var in ds:
            out[var] = ds[var].to_numpy()
    for var in ("tau_E_class", "tau_R_class"):
        if var in ds:
            values = ds[var].transpose(..., "flux_class", "season").to_numpy()
            for i, c in enumerate(data.classes):
                for j, s in enumerate(data.seasons):
                    out[f"{var}[{c},{s}]"] = values[..., i, j]
    for i, c in enumerate(data.classes):
        out[f"sigma[{c}]"] = ds["sigma"].to_numpy()[..., i]
    if "nu" in ds:
        out["nu"] = ds["nu"].to_numpy()
    if "rho" in ds:
        for i, c in enumerate(data.classes):
            out[f"rho[{c}]"] = ds["rho"].to_numpy()[..., i]
    for k, m in enumerate(data.methods):
        out[f"method_offset[{m}]"] = ds["method_offset"].to_numpy()[..., k]
    for var in ("eps_E", "eps_R"):
        # the parts come from their own columns: a site name may hold the label's separator
        for k, (site, season) in enumerate(zip(data.groups["site"], data.groups["season"])):
            out[f"{var}[{site},{season}]"] = ds[var].to_numpy()[..., k]
    return out


# ---------------------------------------------------------------- model M3
@dataclasses.dataclass(frozen=True)
class MetaDesign:
    """Experiments of the calibration design: sites per study, both seasons at every site."""

    sites_per_study: tuple[int, ...] = (1, 2, 1, 2, 1, 1, 2, 1, 2, 1)
    vi_range: tuple[float, float] = (0.01, 0.25)


def meta_design_table(design: MetaDesign = MetaDesign(), seed: int = 0) -> pd.DataFrame:
    """Rows study, site, season, warming_c, yi (placeholder 0), vi of the design."""
    rng = np.random.default_rng(seed)
    rows = []
    for s, n_sites in enumerate(design.sites_per_study, 1):
        for j in range(1, n_sites + 1):
            for season in ("growing", "non-growing"):
                rows.append({"study": f"S{s:02d}", "site": f"site{j}", "season": season,
                             "warming_c": round(float(rng.uniform(1.0, 3.0)), 1)})
    table = pd.DataFrame(rows)
    table["yi"] = 0.0
    table["vi"] = np.round(rng.uniform(*design.vi_range, len(table)), 4)
    return table


def _meta_effects(table: pd.DataFrame):
    from models.meta import Effects

    # every experiment of the design is an emission response: one direction, nothing to separate
    return Effects(table=table.assign(direction="emission"), bias_corrected=False, dropped={},
                   source="sbc-design")


def meta_prior_draws(n: int, seed: int, spec=None):
    """Design, spec and ``n`` joint prior draws (parameters + yi) of M3.

    Drawn from the non-centred form, whose observed Normal has a random generator; the marginal
    form that ``inference.fit_rr`` samples by default is the same model with the study and site
    effects integrated out, so the data-generating process is the fitted model exactly.
    """
    import pymc as pm

    from models.meta import RRSpec, build_rr_model

    spec = spec or RRSpec()
    table = meta_design_table(seed=seed)
    generator = dataclasses.replace(spec, parameterisation="noncentred")
    with build_rr_model(_meta_effects(table), generator):
        dt = pm.sample_prior_predictive(draws=n, random_seed=seed)
    prior = dt["prior"].to_dataset().squeeze("chain", drop=True)
    y = dt["prior_predictive"]["yi"].to_numpy()[0]
    return {"table": table, "spec": spec, "prior": prior, "y": y}


def _meta_scalars(ds, table: pd.DataFrame, levels: list[str]) -> dict[str, np.ndarray]:
    """lnRR per level, its contrast, the τ's, the prediction for a new experiment and, where the
    fit samples the effects (non-centred form), the true effect θ of the first experiments."""
    out = {}
    ln_rr = ds["lnRR"].to_numpy()
    for j, lev in enumerate(levels):
        out[f"lnRR[{lev}]"] = ln_rr[..., j]
    if len(levels) > 1:
        out[f"dlnRR[{levels[1]}-{levels[0]}]"] = ln_rr[..., 1] - ln_rr[..., 0]
    for name in ("tau_study", "tau_site", "tau"):
        out[name] = ds[name].to_numpy()
    for j, lev in enumerate(levels):
        out[f"lnRR_new[{lev}]"] = ds["lnRR_new"].to_numpy()[..., j]
    if "z_study" in ds and "z_site" in ds:
        studies = sorted(table["study"].unique())
        sites = sorted((table["study"] + "/" + table["site"]).unique())
        for i in range(4):
            r = table.iloc[i]
            theta = (ln_rr[..., levels.index(r["season"])]
                     + ds["tau_study"].to_numpy() * ds["z_study"].to_numpy()[..., studies.index(r["study"])]
                     + ds["tau_site"].to_numpy()
                     * ds["z_site"].to_numpy()[..., sites.index(f"{r['study']}/{r['site']}")])
            out[f"theta[{r['study']}/{r['site']},{r['season']}]"] = theta
    return out


def meta_replicate(k: int, setup: dict, *, L: int, draws: int, tune: int, seed: int,
                   max_refits: int = 2, sampler: str = "pymc",
                   target_accept: float | None = None) -> tuple[list[dict], dict]:
    """Fit replicate ``k`` as ``inference.fit_rr.sample_rr`` does (PyMC NUTS, dense mass matrix,
    its target acceptance), chains in this process, and rank its true parameters."""
    import pymc as pm

    from inference.fit_rr import TARGET_ACCEPT
    from models.meta import build_rr_model

    table = setup["table"].copy()
    table["yi"] = setup["y"][k]
    spec = setup["spec"]
    levels = sorted(table["season"].unique())

    def fit(n_draws, attempt):
        with build_rr_model(_meta_effects(table), spec), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = pm.sample(draws=n_draws, tune=tune, chains=2, cores=1,
                              random_seed=_seed(seed, k, attempt), nuts_sampler=sampler,
                              init="jitter+adapt_full", progressbar=False,
                              target_accept=target_accept or TARGET_ACCEPT,
                              compute_convergence_checks=False, quiet=True)
        return idata, idata["posterior"].to_dataset()

    return _ranked_fit(k, fit, lambda ds: _meta_scalars(ds, table, levels),
                       setup["prior"].isel(draw=k), L=L, draws=draws, max_refits=max_refits)


# ---------------------------------------------------------------- shared driver
def _seed(seed: int, k: int, attempt: int) -> int:
    return int(np.random.SeedSequence([seed, k, attempt]).generate_state(1)[0])


def _ranked_fit(k, fit, scalars, truth_ds, *, L: int, draws: int, max_refits: int):
    """Fit (refitting with twice the draws while ESS < L), thin to L draws, rank the truth."""
    import arviz as az
    import xarray as xr

    t0 = time.perf_counter()
    n_draws = draws
    for attempt in range(max_refits + 1):
        idata, post = fit(n_draws, attempt)
        ranked = xr.Dataset({name: (("chain", "draw"), v) for name, v in scalars(post).items()})
        ess_b = float(az.ess(ranked, method="bulk").to_array().min())
        ess_t = float(az.ess(ranked, method="tail").to_array().min())
        if min(ess_b, ess_t) >= L or attempt == max_refits:
            break
        n_draws *= 2
    div = int(idata["sample_stats"]["diverging"].sum())
    kept = xr.Dataset({v: (post[v].dims, thin(post[v].to_numpy(), L)[None]) for v in post.data_vars})
    draws_kept = scalars(kept)
    truth = {name: v for name, v in scalars(truth_ds).items() if name in draws_kept}
    rows = [{"replicate": k, "parameter": name, "rank": int(rank_of(truth[name], draws_kept[name][0])),
             "L": L, "truth": float(truth[name])} for name in truth]
    info = {"replicate": k, "ess_bulk_min": ess_b, "ess_tail_min": ess_t, "divergences": div,
            "draws_per_chain": n_draws, "refits": attempt,
            "seconds": round(time.perf_counter() - t0, 2)}
    return rows, info


MODELS = {
    "arrhenius": (lambda n, seed: dict(zip(("data", "config", "prior", "y"),
                                           arrhenius_prior_draws(n, seed))), arrhenius_replicate,
                  "M1 hierarchical Arrhenius (marginal likelihood)"),
    "arrhenius-student": (lambda n, seed: dict(zip(("data", "config", "prior", "y"),
                                                   arrhenius_prior_draws(n, seed, _student()))),
                          arrhenius_replicate, "M1 hierarchical Arrhenius (Student-t, per observation)"),
    "arrhenius-ar1": (lambda n, seed: dict(zip(("data", "config", "prior", "y"),
                                               arrhenius_ar1_prior_draws(n, seed))),
                      arrhenius_replicate,
                      "M1 hierarchical Arrhenius (AR(1) residuals, marginal likelihood)"),
    "arrhenius-ar1-class": (lambda n, seed: dict(zip(("data", "config", "prior", "y"),
                                                     arrhenius_ar1_prior_draws(n, seed, "class"))),
                            arrhenius_replicate,
                            "M1 hierarchical Arrhenius (AR(1) residuals, site spreads per class)"),
    "meta": (meta_prior_draws, meta_replicate, "M3 random-effects meta-analysis of lnRR"),
    "meta-noncentred": (lambda n, seed: meta_prior_draws(n, seed, _noncentred()), meta_replicate,
                        "M3 random-effects meta-analysis of lnRR (non-centred form)"),
}


_STATE: dict = {}


def _student():
    from models.arrhenius import ArrheniusConfig

    return ArrheniusConfig(min_obs=1, likelihood="student", residuals="iid")


def _noncentred():
    from models.meta import RRSpec

    return RRSpec(parameterisation="noncentred")


def _init_worker(model: str, setup: dict, kwargs: dict) -> None:
    """Each worker process receives the prior draws once, not once per replicate."""
    import logging

    logging.getLogger("pymc").setLevel(logging.ERROR)
    _STATE.update(model=model, setup=setup, kwargs=kwargs)


def _worker(k: int):
    """One replicate; one that cannot be fitted is recorded as failed, not fatal to the run.

    Leaving such replicates out keeps the ranks uniform when what fails depends on the data only
    (the truth given the data is still a posterior draw); the count is reported with the results.
    """
    try:
        return MODELS[_STATE["model"]][1](k, _STATE["setup"], **_STATE["kwargs"])
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        return [], {"replicate": k, "failed": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}


def run_sbc(model: str, n: int, out: Path | None = None, *, seed: int = 20261122, L: int = 99,
            draws: int = 300, tune: int = 300, workers: int = 1, bins: int = 20,
            sampler: str | None = None, target_accept: float | None = None,
            log=print) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run ``n`` replicates; return (ranks, per-replicate info, uniformity) and, with ``out``,
    write them with the rank-histogram figure."""
    from inference import runio

    prior_fn, _, title = MODELS[model]
    setup = prior_fn(n, seed)
    kwargs = {"L": L, "draws": draws, "tune": tune, "seed": seed, "target_accept": target_accept}
    if sampler is not None:  # else each model's entry-point default
        kwargs["sampler"] = sampler
    ranks, infos = [], []
    t0 = time.perf_counter()

    def collect(result):
        rows, info = result
        ranks.extend(rows)
        infos.append(info)
        done = len(infos)
        if done % 10 == 0 or done == n:
            log(f"{model}: {done}/{n} fits, {time.perf_counter() - t0:.0f} s")
            if out is not None:  # a run stopped early keeps what it has done
                runio.write_csv(Path(out) / "sbc_ranks.csv", _sorted(pd.DataFrame(ranks)))
                runio.write_csv(Path(out) / "sbc_replicates.csv",
                                pd.DataFrame(infos).sort_values("replicate"))

    if workers > 1:
        import multiprocessing as mp

        with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                    initializer=_init_worker,
                                    initargs=(model, setup, kwargs)) as pool:
            for result in pool.map(_worker, range(n)):
                collect(result)
    else:
        _init_worker(model, setup, kwargs)
        for k in range(n):
            collect(_worker(k))
    ranks_df = _sorted(pd.DataFrame(ranks))
    info_df = pd.DataFrame(infos).sort_values("replicate").reset_index(drop=True)
    uniform = uniformity(ranks_df, bins)
    if out is not None:
        out = Path(out)
        runio.write_csv(out / "sbc_ranks.csv", ranks_df)
        runio.write_csv(out / "sbc_replicates.csv", info_df)
        runio.write_csv(out / "sbc_uniformity.csv", uniform)
        plot_ranks(ranks_df, uniform, out / "sbc_ranks.png",
                   f"SBC of {title}: {n} data sets, L = {L}, {bins} bins; "
                   f"grey = 99 % band of a uniform histogram", bins)
    return ranks_df, info_df, uniform


def _sorted(ranks: pd.DataFrame) -> pd.DataFrame:
    order = {p: i for i, p in enumerate(dict.fromkeys(ranks["parameter"]))}
    return (ranks.assign(_o=ranks["parameter"].map(order))
            .sort_values(["_o", "replicate"]).drop(columns="_o").reset_index(drop=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sbc", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=tuple(MODELS), required=True)
    p.add_argument("--n", type=int, default=200, help="simulated data sets")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--L", type=int, default=99, help="posterior draws kept per fit (L + 1 ranks)")
    p.add_argument("--draws", type=int, default=300, help="draws per chain (doubled while ESS < L)")
    p.add_argument("--tune", type=int, default=300)
    p.add_argument("--bins", type=int, default=20, help="histogram bins ((L + 1) / bins ranks each)")
    p.add_argument("--workers", type=int, default=1, help="fits run in parallel processes")
    p.add_argument("--sampler", choices=("pymc", "nutpie"), default=None,
                   help="NUTS implementation (default: as the entry point samples the model: "
                        "nutpie for arrhenius as fit_ea, pymc for meta as fit_rr)")
    p.add_argument("--target-accept", type=float, default=None,
                   help="NUTS target acceptance (default: the entry point's own)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    _, info, uniform = run_sbc(args.model, args.n, args.out, seed=args.seed, L=args.L,
                               draws=args.draws, tune=args.tune, workers=args.workers,
                               bins=args.bins, sampler=args.sampler, target_accept=args.target_accept,
                               log=lambda m: print(m, file=sys.stderr, flush=True))
    print(uniform.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    failed = info["failed"].notna() if "failed" in info else pd.Series(False, index=info.index)
    for _, row in info[failed].iterrows():
        print(f"replicate {row['replicate']} left out: {row['failed']}")
    print(f"{len(info)} fits ({int(failed.sum())} failed) in {time.perf_counter() - t0:.0f} s; divergences in "
          f"{int((info['divergences'] > 0).sum())} fits; min ESS < L in "
          f"{int((info[['ess_bulk_min', 'ess_tail_min']].min(axis=1) < args.L).sum())} fits; "
          f"{int((~uniform['uniform_at_1pct']).sum())} of {len(uniform)} quantities non-uniform "
          f"at the {ALPHA:.0%} level")
    return 0


if __name__ == "__main__":
    sys.exit(main())
