"""Pointwise log-likelihood of a saved activation-energy fit, from its DataTree alone (no pymc).

A run folder does not store the pointwise log-likelihood by default (chain × draw × observation is
the largest array of a run: 4,000 draws × 15,159 observations are 243 MB in float32); LOO, prior
sensitivity and the season comparison compute it from the posterior (class means, site effects,
method offsets, σ, ν) and the observed and constant data the run keeps:

    ln|F_j| ~ Normal(a_g + b_g · x_j, σ_c / √w_j)   (Student-t with ν for the robust likelihood),
    b_g = E_site[g],  a_g = lnR[c, s] + δ_method + ε_R[g].
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import gammaln


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
    return intercept + slope * const["x"].to_numpy(), sigma


def pointwise_log_likelihood(tree: xr.DataTree) -> xr.DataArray:
    """log p(y_j | draw) for every observation and draw (float32), as ``log_likelihood/ln_flux``."""
    if "log_likelihood" in tree.children:
        return tree["log_likelihood"]["ln_flux"]
    post = tree["posterior"].to_dataset()
    mu, sigma = observation_moments(tree)
    z2 = ((tree["observed_data"]["ln_flux"].to_numpy() - mu) / sigma) ** 2
    if "nu" in post:
        v = post["nu"].to_numpy()[:, :, None]
        ll = (gammaln((v + 1) / 2) - gammaln(v / 2) - 0.5 * np.log(v * np.pi) - np.log(sigma)
              - (v + 1) / 2 * np.log1p(z2 / v))
    else:
        ll = -0.5 * np.log(2 * np.pi) - np.log(sigma) - 0.5 * z2
    return xr.DataArray(ll.astype(np.float32), dims=("chain", "draw", "obs"),
                        coords={"chain": post["chain"], "draw": post["draw"],
                                "obs": np.arange(ll.shape[-1])})


def with_log_likelihood(tree: xr.DataTree) -> xr.DataTree:
    """``tree`` with its ``log_likelihood`` group (computed when the run did not store it)."""
    if "log_likelihood" in tree.children:
        return tree
    out = tree.copy()
    out["log_likelihood"] = xr.DataTree(xr.Dataset({"ln_flux": pointwise_log_likelihood(tree)}))
    return out
