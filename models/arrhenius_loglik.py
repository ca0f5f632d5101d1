"""Pointwise log-likelihood of a saved activation-energy fit, from its DataTree alone (no pymc).

A run folder does not store the pointwise log-likelihood by default (chain × draw × observation is
the largest array of a run: 4,000 draws × 15,159 observations are 243 MB in float32); LOO, prior
sensitivity and the season comparison compute it from the posterior (class means, site effects,
method offsets, σ, ν) and the observed and constant data the run keeps:

    ln|F_j| ~ Normal(a_g + b_g · x_j + β_E,c z̃_j x_j + β_R,c z̃_j, σ_c / √w_j)
    (Student-t with ν for the robust likelihood), b_g = E_site[g], a_g = lnR[c, s] + δ_method + ε_R[g],
    z̃ the centred covariate of a fit with one (constant_data ``covariate_centred``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import gammaln

from models.arrhenius_stats import (ar1_lag_correlation, ar1_statistics, bucket_summer,
                                    covariate_adjusted, group_statistics, lag_statistics)


def ar1_innovations(resid, w, rho, gap, previous, lib=np):
    """Standardised AR(1) innovations of residuals ``resid`` (last axis: observations, sorted by
    group and date) and the log-Jacobian of each observation's density.

    With r̃ = √w·r and φ = ρ^Δ, an observation linked to its predecessor (``previous`` ≥ 0) has
    η = (r̃_i − φ r̃_{i−1}) / √(1 − φ²) ~ (0, σ) and log p(y_i | y_{i−1}) = log p_σ(η) + ½ log w_i
    − ½ log(1 − φ²); the first of a run has η = r̃_i. ``rho`` is per observation (its class).
    """
    linked = previous >= 0
    prev = np.where(linked, previous, 0)
    scaled = resid * np.sqrt(w)
    # gap 1 is a finite stand-in where unlinked (masked here)
    phi, one_minus = ar1_lag_correlation(rho, np.where(linked, gap, 1), lib)
    phi, one_minus = lib.where(linked, phi, 0.0), lib.where(linked, one_minus, 1.0)
    eta = (scaled - phi * scaled[..., prev]) / lib.sqrt(one_minus)
    return eta, 0.5 * np.log(w) - 0.5 * lib.log(one_minus)


def observation_log_density(y, mu, sigma, nu=None, ar1: dict | None = None) -> np.ndarray:
    """log p(y_j | draw): Normal(mu, sigma), Student-t with ν, and under AR(1) residuals
    (``ar1``: w, rho, gap, previous) the density of y_j given the previous observation of its
    group (``ar1_innovations``). ``sigma`` is the sd of an observation, σ_c / √w_j."""
    if ar1 is None:
        z2, log_scale = ((y - mu) / sigma) ** 2, -np.log(sigma)
    else:
        eta, log_jac = ar1_innovations(y - mu, ar1["w"], ar1["rho"], ar1["gap"], ar1["previous"])
        unit = sigma * np.sqrt(ar1["w"])  # σ_c: the innovations are on the daily scale
        z2, log_scale = (eta / unit) ** 2, log_jac - np.log(unit)
    if nu is None:
        return -0.5 * np.log(2 * np.pi) + log_scale - 0.5 * z2
    v = nu[:, :, None]
    return (gammaln((v + 1) / 2) - gammaln(v / 2) - 0.5 * np.log(v * np.pi) + log_scale
            - (v + 1) / 2 * np.log1p(z2 / v))


def covariate_term(beta_E: np.ndarray, beta_R: np.ndarray, c: np.ndarray, z: np.ndarray,
                   x: np.ndarray) -> np.ndarray:
    """β_E,c·z̃·x + β_R,c·z̃ of each observation (class position ``c``, centred covariate ``z``)
    for every draw of β (chain, draw, flux_class) → (chain, draw, obs)."""
    return beta_E[:, :, c] * (z * x) + beta_R[:, :, c] * z


def _positions(values: np.ndarray, labels) -> np.ndarray:
    return pd.Index([str(v) for v in labels]).get_indexer([str(v) for v in values])


def observation_moments(tree: xr.DataTree) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of every observation's ln|F| for every posterior draw: (chain, draw, obs)."""
    post = tree["posterior"].to_dataset()
    const = tree["constant_data"].to_dataset()
    g = const["obs_group"].to_numpy().astype(int)
    c = _positions(const["obs_flux_class"].to_numpy(), post["flux_class"].to_numpy())
    s = _positions(const["obs_season"].to_numpy(), post["season"].to_numpy())
    intercept = post["lnR"].to_numpy()[:, :, c, s] + post["eps_R"].to_numpy()[:, :, g]
    if "method_offset" in post and post.sizes.get("method", 0):
        m = _positions(const["method"].to_numpy(), post["method"].to_numpy())
        # A method without an offset (the reference, or one alone in its class) adds 0.
        off = np.concatenate([post["method_offset"].to_numpy(), np.zeros(intercept.shape[:2] + (1,))],
                             axis=-1)
        intercept = intercept + off[:, :, m]
    slope = post["E_site"].to_numpy()[:, :, g]
    sigma = post["sigma"].to_numpy()[:, :, c] / np.sqrt(const["weight"].to_numpy())
    x = const["x"].to_numpy()
    mu = intercept + slope * x
    if "beta_E" in post and "covariate_centred" in const:  # β_E,c·z̃·x + β_R,c·z̃
        mu = mu + covariate_term(post["beta_E"].to_numpy(), post["beta_R"].to_numpy(), c,
                                 const["covariate_centred"].to_numpy(), x)
    return mu, sigma


def pointwise_log_likelihood(tree: xr.DataTree) -> xr.DataArray:
    """log p(y_j | draw) for every observation and draw (float32), as ``log_likelihood/ln_flux``."""
    if "log_likelihood" in tree.children:
        return tree["log_likelihood"]["ln_flux"]
    post = tree["posterior"].to_dataset()
    mu, sigma = observation_moments(tree)
    const = tree["constant_data"].to_dataset()
    ar1 = None
    if "rho" in post and "obs_previous" in const:
        c = _positions(const["obs_flux_class"].to_numpy(), post["flux_class"].to_numpy())
        ar1 = {"w": const["weight"].to_numpy(), "rho": post["rho"].to_numpy()[:, :, c],
               "gap": const["gap_days"].to_numpy(), "previous": const["obs_previous"].to_numpy()}
    ll = observation_log_density(tree["observed_data"]["ln_flux"].to_numpy(), mu, sigma,
                                 post["nu"].to_numpy() if "nu" in post else None, ar1)
    return xr.DataArray(ll.astype(np.float32), dims=("chain", "draw", "obs"),
                        coords={"chain": post["chain"], "draw": post["draw"],
                                "obs": np.arange(ll.shape[-1])})


def total_log_likelihood(tree: xr.DataTree) -> xr.DataArray | None:
    """Σ_j log p(y_j | draw) per (chain, draw) in float64, from per-group sufficient statistics:
    the sum of ``pointwise_log_likelihood`` over the observations, at the cost of groups × draws
    instead of observations × draws.

    Per group g with a_g, b_g, σ_c of a draw, the Gaussian (AR(1)) log density of its observations is
    −½ n log 2πσ² + ½ Σ log w − ½ Σ_pairs log(1 − φ²) − ½ β'Mβ / σ², β = (−a, −b, 1) and M the
    (AR(1)-adjusted) cross-products of √w·(1, x, y) (``models.arrhenius_stats.ar1_statistics``).
    None for a Student-t fit, or where a group mixes measurement methods (its observations then
    differ in their intercepts): the caller sums the pointwise values instead.
    """
    post = tree["posterior"].to_dataset()
    if "nu" in post or "constant_data" not in tree.children:
        return None
    const = tree["constant_data"].to_dataset()
    obs = pd.DataFrame({"group": const["obs_group"].to_numpy().astype(int),
                        "x": const["x"].to_numpy(), "w": const["weight"].to_numpy(),
                        "y": tree["observed_data"]["ln_flux"].to_numpy(),
                        "method": const["method"].to_numpy().astype(str)})
    covariate = "beta_E" in post and "covariate_centred" in const
    if covariate:
        obs["z"] = const["covariate_centred"].to_numpy()
    if (obs.groupby("group")["method"].nunique() > 1).any():
        return None
    head = obs.reset_index().groupby("group")["index"].first().to_numpy()  # in group order
    c = _positions(const["obs_flux_class"].to_numpy()[head], post["flux_class"].to_numpy())
    s = _positions(const["obs_season"].to_numpy()[head], post["season"].to_numpy())
    a = post["lnR"].to_numpy()[:, :, c, s] + post["eps_R"].to_numpy()
    if "method_offset" in post and post.sizes.get("method", 0):
        m = _positions(obs["method"].to_numpy()[head], post["method"].to_numpy())
        off = np.concatenate([post["method_offset"].to_numpy(), np.zeros(a.shape[:2] + (1,))], axis=-1)
        a = a + off[:, :, m]
    b = post["E_site"].to_numpy()
    s2 = post["sigma"].to_numpy()[:, :, c] ** 2
    stats = {k: v.to_numpy(dtype=float) for k, v in group_statistics(obs).items()}
    logdet = 0.0
    if "rho" in post and "obs_previous" in const and (const["obs_previous"].to_numpy() >= 0).any():
        lags = lag_statistics(obs.assign(previous=const["obs_previous"].to_numpy(),
                                         gap_days=const["gap_days"].to_numpy()))
        bucket_group = lags["group"].to_numpy()
        rho = post["rho"].to_numpy()[:, :, c[bucket_group]]
        segment_sum = bucket_summer(bucket_group, len(head), rho.shape)
        stats, logdet = ar1_statistics(stats, {k: lags[k].to_numpy(dtype=float) for k in lags},
                                       rho, segment_sum)
    if covariate:
        stats = covariate_adjusted(stats, post["beta_E"].to_numpy()[:, :, c],
                                   post["beta_R"].to_numpy()[:, :, c])
    quad = (stats["Syy"] - 2 * a * stats["Sy"] - 2 * b * stats["Sxy"] + a ** 2 * stats["S0"]
            + 2 * a * b * stats["Sx"] + b ** 2 * stats["Sxx"])
    per_group = (-0.5 * stats["n"] * np.log(2 * np.pi * s2) + 0.5 * stats["Slogw"] + logdet
                 - 0.5 * quad / s2)
    return xr.DataArray(per_group.sum(axis=-1), dims=("chain", "draw"),
                        coords={"chain": post["chain"], "draw": post["draw"]})


def with_log_likelihood(tree: xr.DataTree) -> xr.DataTree:
    """``tree`` with its ``log_likelihood`` group (computed when the run did not store it)."""
    if "log_likelihood" in tree.children:
        return tree
    out = tree.copy()
    out["log_likelihood"] = xr.DataTree(xr.Dataset({"ln_flux": pointwise_log_likelihood(tree)}))
    return out
