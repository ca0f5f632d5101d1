"""Posterior summaries and convergence diagnostics: the one implementation every job, the public
API and the reports use (no pymc here; built on ArviZ).

- ``posterior_summary``: the tidy table of ``quantity``, grouping coordinates and
  ``SUMMARY_STATS`` (mean, sd, median, the interval of the project's single convention, bulk and
  tail ESS, rank-normalised split R-hat), from ``az.summary``.
- ``diagnose``: R-hat, ESS, divergences and E-BFMI of a DataTree and the verdict of the one
  convergence gate (``models.conventions.GATE``); ``gate_failures`` states what failed.
- ``mean_tree_depth``: NUTS tree depth under either sampler's name for it.
- ``agreement_probability``: P that a draw of A lies inside B's interval (Jian et al. 2022).

The interval convention is read from ``models.conventions`` at call time.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from models import conventions

SAMPLE_DIMS = ("chain", "draw")
# Names of the NUTS tree depth in sample_stats: PyMC's sampler, nutpie.
TREE_DEPTH_NAMES = ("tree_depth", "depth")


# ---------------------------------------------------------------- summary table
def posterior_summary(draws: xr.Dataset, names: Iterable[str] | None = None, *,
                      drop_missing: bool = False) -> pd.DataFrame:
    """One row per scalar of each variable: ``quantity``, its coordinates as columns, then
    ``SUMMARY_STATS``.

    ``draws`` has dims (chain, draw, …). The interval is the equal-tailed one of
    ``conventions.CI_PROB``; R-hat is missing for a single chain. ``drop_missing`` leaves out rows
    whose draws are all missing (e.g. ΔE of the reference season against itself).
    """
    import arviz as az

    names = list(draws.data_vars) if names is None else [n for n in names if n in draws]
    if not names:
        return pd.DataFrame(columns=["quantity", *conventions.SUMMARY_STATS])
    ds = draws[names]
    stats = az.summary(ds, kind="all", fmt="xarray", round_to="none", ci_kind=conventions.CI_KIND,
                       ci_prob=conventions.CI_PROB)
    lower, upper = (str(s) for s in stats["summary"].to_numpy() if str(s).endswith(("_lb", "_ub")))
    columns = {"mean": "mean", "sd": "sd", "ci_low": lower, "ci_high": upper, "ess_bulk": "ess_bulk",
               "ess_tail": "ess_tail", "r_hat": "r_hat"}
    median = ds.median(SAMPLE_DIMS, skipna=False)
    single_chain = ds.sizes["chain"] < 2
    rows = []
    for name in names:
        parts = {col: stats[name].sel(summary=key, drop=True) for col, key in columns.items()}
        parts["median"] = median[name]
        if single_chain:
            parts["r_hat"] = parts["r_hat"] * np.nan
        if ds[name].ndim > 2:
            frame = pd.concat({k: v.to_series() for k, v in parts.items()}, axis=1).reset_index()
        else:
            frame = pd.DataFrame({k: [float(v)] for k, v in parts.items()})
        frame.insert(0, "quantity", name)
        rows.append(frame)
    out = pd.concat(rows, ignore_index=True)
    if drop_missing:
        out = out[out["median"].notna()].reset_index(drop=True)
    lead = ["quantity"] + [c for c in out.columns if c not in conventions.SUMMARY_STATS and c != "quantity"]
    return out[lead + list(conventions.SUMMARY_STATS)]


# ---------------------------------------------------------------- diagnostics and the gate
def _sample_stats(dt: xr.DataTree) -> xr.Dataset:
    return dt["sample_stats"].to_dataset() if "sample_stats" in dt.children else xr.Dataset()


def divergences(dt: xr.DataTree) -> int | None:
    """Number of divergent transitions (None when the run recorded none of the sampler's stats)."""
    stats = _sample_stats(dt)
    return int(stats["diverging"].sum()) if "diverging" in stats else None


def mean_tree_depth(dt: xr.DataTree) -> float | None:
    """Mean NUTS tree depth (PyMC's sampler calls it tree_depth, nutpie depth)."""
    stats = _sample_stats(dt)
    name = next((n for n in TREE_DEPTH_NAMES if n in stats), None)
    return float(stats[name].mean()) if name else None


def bfmi_min(dt: xr.DataTree) -> float | None:
    """Smallest energy Bayesian fraction of missing information over the chains (Betancourt 2016);
    below ``conventions.BFMI_LOW`` the sampler explores the tails poorly. Informative, not gated."""
    import arviz as az

    if "energy" not in _sample_stats(dt):
        return None
    return float(az.bfmi(dt)["energy"].min())


def gate_failures(diag: dict) -> list[str]:
    """What fails the convergence gate (``conventions.GATE``), from a diagnostics dict's numbers."""
    gate = conventions.GATE
    failed = []
    if not diag["r_hat_max"] <= gate["r_hat_max"]:
        failed.append(f"R-hat {diag['r_hat_max']:.3f} > {gate['r_hat_max']}")
    if not diag["ess_bulk_min"] >= gate["ess_bulk_min"]:
        failed.append(f"bulk ESS {diag['ess_bulk_min']:.0f} < {gate['ess_bulk_min']}")
    if not diag["ess_tail_min"] >= gate["ess_tail_min"]:
        failed.append(f"tail ESS {diag['ess_tail_min']:.0f} < {gate['ess_tail_min']}")
    if (diag.get("divergences") or 0) > gate["divergences"]:
        failed.append(f"{diag['divergences']} divergent transitions")
    return failed


def diagnose(dt: xr.DataTree, var_names: Iterable[str] | None = None,
             summary: pd.DataFrame | None = None) -> dict:
    """R-hat / ESS / divergence figures and E-BFMI of the posterior variables ``var_names`` (all
    when None), and the pass-fail verdict against the gate, with reasons.

    ``summary``: a ``posterior_summary`` table of the same posterior; when it holds every one of
    the variables (and there are several chains) its R-hat and ESS are used instead of computing
    them again. Rows a summary leaves out (a ρ that is its prior only) then stay out of the gate."""
    import arviz as az

    post = dt["posterior"].to_dataset()
    names = [v for v in (post.data_vars if var_names is None else var_names) if v in post]
    rows = None if summary is None else summary[summary["quantity"].isin(names)]
    if rows is not None and set(rows["quantity"]) == set(names) and post.sizes["chain"] > 1:
        figures = (rows["r_hat"].max(), rows["ess_bulk"].min(), rows["ess_tail"].min())
    else:
        sub = post[names]
        with warnings.catch_warnings():  # all-missing quantities (ΔE of the reference season) stay out
            warnings.simplefilter("ignore", RuntimeWarning)
            figures = (az.rhat(sub).to_array().max(), az.ess(sub, method="bulk").to_array().min(),
                       az.ess(sub, method="tail").to_array().min())
    diag = {"r_hat_max": float(figures[0]), "ess_bulk_min": float(figures[1]),
            "ess_tail_min": float(figures[2]), "divergences": divergences(dt),
            "bfmi_min": bfmi_min(dt), "gate": conventions.GATE}
    failed = gate_failures(diag)
    diag.update(verdict="fail" if failed else "pass", failed=failed)
    return diag


# ---------------------------------------------------------------- comparing two distributions
def agreement_probability(a, b, hi: float | None = None) -> float:
    """P that a draw of A ~ Normal(mean, sd of the draws ``a``) lies inside B's interval
    (``prob_agreement`` of Jian et al. 2022). Not symmetric.

    B's interval is [``b``, ``hi``] when ``hi`` is given (e.g. the quantiles of a direct
    estimate); otherwise ``b`` holds draws of B and its interval is their normal approximation,
    mean ± z·sd with z of the project's interval (so A = B gives ``conventions.CI_PROB``).
    """
    from scipy import stats

    a = np.ravel(np.asarray(a, dtype=float))
    if hi is None:
        b = np.ravel(np.asarray(b, dtype=float))
        z = stats.norm.ppf(conventions.CI_QUANTILES[2])
        lo, hi = b.mean() - z * b.std(ddof=1), b.mean() + z * b.std(ddof=1)
    else:
        lo = float(b)
    dist = stats.norm(a.mean(), a.std(ddof=1))
    return float(dist.cdf(hi) - dist.cdf(lo))
