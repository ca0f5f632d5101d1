"""After sampling M1: exact site-effect draws, derived quantities, pointwise log-likelihood, predictions.

Pure numpy/xarray on posterior draws (dims chain, draw, …); no sampling, no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from data.constants import fold_change, q10
from models.arrhenius import ArrheniusData, _index
from models.arrhenius_config import group_coords

# Derived temperature contrasts reported with every fit.
Q10_RANGES_C = ((0.0, 10.0), (10.0, 20.0))
FOLD_CHANGE_C = (0.0, 30.0)
REFERENCE_SEASONS = ("growing", "thawed")


def group_means(post: xr.Dataset, data: ArrheniusData) -> dict[str, np.ndarray]:
    """Per-group prior means/variances of (lnR, E) and residual sd for every draw: (chain, draw, group)."""
    g = data.groups
    c, s = _index(g["flux_class"], data.classes), _index(g["season"], data.seasons)
    E, lnR = post["E"].to_numpy(), post["lnR"].to_numpy()
    mean_R = lnR[:, :, c, s]
    if data.methods:
        m = _index(g["method"], data.methods)
        off = np.concatenate([post["method_offset"].to_numpy(),
                              np.zeros(post["E"].shape[:2] + (1,))], axis=-1)
        mean_R = mean_R + off[:, :, m]
    return {"mean_E": E[:, :, c, s], "mean_R": mean_R,
            "var_E": post["tau_E"].to_numpy()[:, :, s] ** 2,
            "var_R": post["tau_R"].to_numpy()[:, :, s] ** 2,
            "sigma": post["sigma"].to_numpy()[:, :, c]}


def draw_site_effects(post: xr.Dataset, data: ArrheniusData, rng: np.random.Generator) -> xr.Dataset:
    """Exact draws of ε_E, ε_R from their Gaussian conditional posterior given each hyper-draw.

    With the marginal likelihood the joint posterior factorises as p(hyper | y) · Π_g p(a_g, b_g | hyper, y_g);
    drawing (a_g, b_g) once per hyper-draw therefore gives exact joint posterior draws.
    """
    h = group_means(post, data)
    G = data.groups
    s2 = h["sigma"] ** 2
    a11 = G["S0"].to_numpy() / s2 + 1.0 / h["var_R"]
    a12 = G["Sx"].to_numpy() / s2
    a22 = G["Sxx"].to_numpy() / s2 + 1.0 / h["var_E"]
    r1 = G["Sy"].to_numpy() / s2 + h["mean_R"] / h["var_R"]
    r2 = G["Sxy"].to_numpy() / s2 + h["mean_E"] / h["var_E"]
    det = a11 * a22 - a12 ** 2
    # Posterior mean A⁻¹ r and covariance A⁻¹ of (a, b), 2 × 2 in closed form.
    mu_a = (a22 * r1 - a12 * r2) / det
    mu_b = (a11 * r2 - a12 * r1) / det
    c11, c12, c22 = a22 / det, -a12 / det, a11 / det
    l11 = np.sqrt(c11)
    l21 = c12 / l11
    l22 = np.sqrt(np.maximum(c22 - l21 ** 2, 0.0))
    z1, z2 = rng.standard_normal((2,) + mu_a.shape)
    a = mu_a + l11 * z1
    b = mu_b + l21 * z1 + l22 * z2
    dims = ("chain", "draw", "group")
    coords = {"chain": post["chain"], "draw": post["draw"], **group_coords(G)}
    return xr.Dataset({"eps_E": (dims, b - h["mean_E"]), "eps_R": (dims, a - h["mean_R"])},
                      coords=coords)


def group_coefficients(post: xr.Dataset, data: ArrheniusData) -> tuple[np.ndarray, np.ndarray]:
    """Site-level intercept a_g and slope b_g = E_site for every draw: (chain, draw, group)."""
    h = group_means(post, data)
    return h["mean_R"] + post["eps_R"].to_numpy(), h["mean_E"] + post["eps_E"].to_numpy()


def reference_season(seasons: list[str]) -> str:
    return next((s for s in REFERENCE_SEASONS if s in seasons), seasons[0])


def derived_quantities(post: xr.Dataset, data: ArrheniusData) -> xr.Dataset:
    """E_site, E_site_mean, dE and its sign indicator, Q10, and the 0→30 °C fold change."""
    _, b = group_coefficients(post, data)
    G = data.groups
    dims = ("chain", "draw")
    out = xr.Dataset(coords={"chain": post["chain"], "draw": post["draw"]})
    out["E_site"] = xr.DataArray(b, dims=(*dims, "group"), coords=group_coords(G))
    # Mean of the site-level E over the sites of each class × season (the study's per-site average).
    cell = pd.MultiIndex.from_frame(G[["flux_class", "season"]])
    site_mean = pd.DataFrame(b.reshape(-1, len(G)).T, index=cell).groupby(level=[0, 1]).mean()
    E = post["E"]
    arr = np.full(E.shape, np.nan)
    for (cls, season), row in site_mean.iterrows():
        arr[:, :, data.classes.index(cls), data.seasons.index(season)] = row.to_numpy().reshape(E.shape[:2])
    out["E_site_mean"] = E.copy(data=arr)
    ref = reference_season(data.seasons)
    others = [s for s in data.seasons if s != ref]
    if others:
        dE = E.sel(season=others) - E.sel(season=ref, drop=True)
        out["dE"] = dE
        out["P_dE_gt_0"] = (dE > 0).astype(float)
    labels = [f"{lo:g}-{hi:g} C" for lo, hi in Q10_RANGES_C]
    out["Q10"] = xr.concat([E.copy(data=q10(E.to_numpy(), lo)) for lo, _ in Q10_RANGES_C],
                           dim=pd.Index(labels, name="temp_range"))
    out["fold_change_0_30"] = E.copy(data=fold_change(E.to_numpy(), *FOLD_CHANGE_C))
    return out


def pooled_ols(data: ArrheniusData) -> pd.DataFrame:
    """Complete-pooling ("site-integrated") weighted least-squares E per class × season, with its SE."""
    G = data.groups
    sums = G.groupby(["flux_class", "season"])[["n", "S0", "Sx", "Sy", "Sxx", "Sxy", "Syy"]].sum()
    sxx = sums["Sxx"] - sums["Sx"] ** 2 / sums["S0"]
    sxy = sums["Sxy"] - sums["Sx"] * sums["Sy"] / sums["S0"]
    syy = sums["Syy"] - sums["Sy"] ** 2 / sums["S0"]
    slope = sxy / sxx
    resid_var = (syy - slope * sxy) / (sums["n"] - 2)
    return pd.DataFrame({"E_pooled_ols": slope, "se": np.sqrt(resid_var / sxx)}).reset_index()


def _observation_moments(post: xr.Dataset, data: ArrheniusData) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of every observation's ln|F| for every draw: (chain, draw, obs)."""
    a, b = group_coefficients(post, data)
    obs = data.obs
    gi = obs["group"].to_numpy()
    sigma = group_means(post, data)["sigma"][:, :, gi] / np.sqrt(obs["w"].to_numpy())
    return b[:, :, gi] * obs["x"].to_numpy() + a[:, :, gi], sigma


def _obs_array(values: np.ndarray, post: xr.Dataset) -> xr.DataArray:
    return xr.DataArray(values.astype(np.float32), dims=("chain", "draw", "obs"),
                        coords={"chain": post["chain"], "draw": post["draw"],
                                "obs": np.arange(values.shape[-1])})


def pointwise_log_likelihood(post: xr.Dataset, data: ArrheniusData, nu: np.ndarray | None = None) -> xr.DataArray:
    """log p(y_j | draw) for every observation (float32: chain × draw × obs can be large)."""
    from scipy.special import gammaln

    mu, sigma = _observation_moments(post, data)
    z2 = ((data.obs["y"].to_numpy() - mu) / sigma) ** 2
    if nu is None:
        ll = -0.5 * np.log(2 * np.pi) - np.log(sigma) - 0.5 * z2
    else:
        v = nu[:, :, None]
        ll = (gammaln((v + 1) / 2) - gammaln(v / 2) - 0.5 * np.log(v * np.pi) - np.log(sigma)
              - (v + 1) / 2 * np.log1p(z2 / v))
    return _obs_array(ll, post)


def predict_ln_flux(post: xr.Dataset, data: ArrheniusData, rng: np.random.Generator,
                    nu: np.ndarray | None = None) -> xr.DataArray:
    """Replicated ln|F| for every observation and draw (posterior or prior predictive)."""
    mu, sigma = _observation_moments(post, data)
    noise = rng.standard_normal(sigma.shape) if nu is None else rng.standard_t(nu[:, :, None], sigma.shape)
    return _obs_array(mu + sigma * noise, post)


def prior_site_effects(prior: xr.Dataset, data: ArrheniusData, rng: np.random.Generator) -> xr.Dataset:
    """Site effects drawn from their prior N(0, τ²) given prior hyper-draws."""
    h = group_means(prior, data)
    shape = h["mean_E"].shape
    coords = {"chain": prior["chain"], "draw": prior["draw"], **group_coords(data.groups)}
    dims = ("chain", "draw", "group")
    return xr.Dataset({"eps_E": (dims, np.sqrt(h["var_E"]) * rng.standard_normal(shape)),
                       "eps_R": (dims, np.sqrt(h["var_R"]) * rng.standard_normal(shape))}, coords=coords)
