"""After sampling M1: exact site-effect draws, derived quantities, pointwise log-likelihood, predictions.

Pure numpy/xarray on posterior draws (dims chain, draw, …); no sampling, no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from data.constants import fold_change, q10
from models.arrhenius import (ArrheniusData, Priors, _index, ar1_statistics, cell_matrix,
                              class_mean_terms, covariate_adjusted, group_class_index, group_stats,
                              lag_class_index, lag_stats)
from models.arrhenius_config import group_coords
from models.arrhenius_loglik import (ar1_innovations, ar1_lag_correlation, covariate_term,
                                     observation_log_density)
from models.arrhenius_stats import bucket_summer

# Derived temperature contrasts reported with every fit.
Q10_RANGES_C = ((0.0, 10.0), (10.0, 20.0))
FOLD_CHANGE_C = (0.0, 30.0)
REFERENCE_SEASONS = ("growing", "thawed")


def class_spreads(post: xr.Dataset, name: str, n_classes: int) -> np.ndarray:
    """τ_E (``name`` "E") or τ_R ("R") of each of ``n_classes`` flux classes × season for every
    draw: (chain, draw, class, season); without class spreads (``tau="shared"``) every class has
    the season's shared τ."""
    if f"tau_{name}_class" in post:
        return post[f"tau_{name}_class"].transpose("chain", "draw", "flux_class", "season").to_numpy()
    shared = post[f"tau_{name}"].to_numpy()[:, :, None, :]
    return np.broadcast_to(shared, shared.shape[:2] + (n_classes,) + shared.shape[3:])


def group_spreads(post: xr.Dataset, data: ArrheniusData) -> dict[str, np.ndarray]:
    """Per-group method offset of lnR, site-effect variances and residual sd for every draw:
    (chain, draw, group)."""
    g = data.groups
    c, s = _index(g["flux_class"], data.classes), _index(g["season"], data.seasons)
    lead = post["tau_E"].shape[:2]
    offset = np.zeros(lead + (len(g),))
    if data.methods:
        m = _index(g["method"], data.methods)
        off = np.concatenate([post["method_offset"].to_numpy(), np.zeros(lead + (1,))], axis=-1)
        offset = off[:, :, m]
    n = len(data.classes)
    return {"offset": offset, "var_E": class_spreads(post, "E", n)[:, :, c, s] ** 2,
            "var_R": class_spreads(post, "R", n)[:, :, c, s] ** 2,
            "sigma": post["sigma"].to_numpy()[:, :, c]}


def group_means(post: xr.Dataset, data: ArrheniusData) -> dict[str, np.ndarray]:
    """Per-group prior means/variances of (lnR, E) and residual sd for every draw: (chain, draw, group)."""
    g = data.groups
    c, s = _index(g["flux_class"], data.classes), _index(g["season"], data.seasons)
    h = group_spreads(post, data)
    return {"mean_E": post["E"].to_numpy()[:, :, c, s],
            "mean_R": post["lnR"].to_numpy()[:, :, c, s] + h.pop("offset"), **h}


def draw_class_means(post: xr.Dataset, data: ArrheniusData, priors: Priors,
                     rng: np.random.Generator, stats: dict | None = None) -> xr.Dataset:
    """Exact draws of the class × season means E, lnR from their Gaussian conditional posterior
    N(Λ⁻¹b, Λ⁻¹) given each draw of τ, σ, ρ and the method offsets (``class_mean_terms``): with
    the means integrated out of the sampled density, p(hyper | y)·p(E, lnR | hyper, y) gives exact
    joint draws (the site effects follow from ``draw_site_effects``)."""
    h = group_spreads(post, data)
    stats = effective_statistics(post, data) if stats is None else stats
    t = class_mean_terms(stats, h["offset"], h["var_R"], h["var_E"],
                         h["sigma"], cell_matrix(data), priors)
    det = t["L11"] * t["L22"] - t["L12"] ** 2
    # Mean Λ⁻¹b and covariance Λ⁻¹ of (lnR, E) per cell, 2 × 2 in closed form.
    mu_r = (t["L22"] * t["b1"] - t["L12"] * t["b2"]) / det
    mu_e = (t["L11"] * t["b2"] - t["L12"] * t["b1"]) / det
    c11, c12, c22 = t["L22"] / det, -t["L12"] / det, t["L11"] / det
    l11 = np.sqrt(c11)
    l21 = c12 / l11
    l22 = np.sqrt(np.maximum(c22 - l21 ** 2, 0.0))
    z1, z2 = rng.standard_normal((2,) + mu_r.shape)
    shape = mu_r.shape[:2] + (len(data.classes), len(data.seasons))
    dims = ("chain", "draw", "flux_class", "season")
    coords = {"chain": post["chain"], "draw": post["draw"], "flux_class": data.classes,
              "season": data.seasons}
    return xr.Dataset({"lnR": (dims, (mu_r + l11 * z1).reshape(shape)),
                       "E": (dims, (mu_e + l21 * z1 + l22 * z2).reshape(shape))}, coords=coords)


def exact_draws(post: xr.Dataset, data: ArrheniusData, priors: Priors,
                rng: np.random.Generator) -> xr.Dataset:
    """The sampled draws of the marginal model with the class × season means (when not sampled)
    and the site effects drawn exactly from their conditional posterior, merged in."""
    stats = effective_statistics(post, data)  # once for both (per draw of ρ under AR(1))
    if "E" not in post:
        post = post.merge(draw_class_means(post, data, priors, rng, stats))
    return post.merge(draw_site_effects(post, data, rng, stats))


def prior_class_means(prior: xr.Dataset, data: ArrheniusData, priors: Priors,
                      rng: np.random.Generator) -> xr.Dataset:
    """E_cs ~ N(E_mu, E_sd²) and lnR_cs ~ N(lnR_mu, lnR_sd²) for each prior draw."""
    shape = prior["tau_E"].shape[:2] + (len(data.classes), len(data.seasons))
    dims = ("chain", "draw", "flux_class", "season")
    coords = {"chain": prior["chain"], "draw": prior["draw"], "flux_class": data.classes,
              "season": data.seasons}
    return xr.Dataset({"E": (dims, priors.E_mu + priors.E_sd * rng.standard_normal(shape)),
                       "lnR": (dims, priors.lnR_mu + priors.lnR_sd * rng.standard_normal(shape))},
                      coords=coords)


def effective_statistics(post: xr.Dataset, data: ArrheniusData) -> dict[str, np.ndarray]:
    """The group statistics the site effects' conditional posterior rests on: the independent-
    residual ones, or under AR(1) residuals those of ``models.arrhenius.ar1_statistics`` for each
    draw of ρ ((chain, draw, group) arrays); with a covariate, those of y less its effect for each
    draw of β (``covariate_adjusted``)."""
    stats = group_stats(data)
    if data.lags is not None and len(data.lags) and "rho" in post:
        rho = post["rho"].to_numpy()[:, :, lag_class_index(data)]
        segment_sum = bucket_summer(data.lags["group"].to_numpy(), len(data.groups), rho.shape)
        stats, _ = ar1_statistics(stats, lag_stats(data), rho, segment_sum)
    if data.covariate is not None:
        c = group_class_index(data)
        stats = covariate_adjusted(stats, post["beta_E"].to_numpy()[:, :, c],
                                   post["beta_R"].to_numpy()[:, :, c])
    return stats


def draw_site_effects(post: xr.Dataset, data: ArrheniusData, rng: np.random.Generator,
                      stats: dict | None = None) -> xr.Dataset:
    """Exact draws of ε_E, ε_R from their Gaussian conditional posterior given each hyper-draw.

    With the marginal likelihood the joint posterior factorises as p(hyper | y) · Π_g p(a_g, b_g | hyper, y_g);
    drawing (a_g, b_g) once per hyper-draw therefore gives exact joint posterior draws.
    """
    h = group_means(post, data)
    G = data.groups
    S = effective_statistics(post, data) if stats is None else stats
    s2 = h["sigma"] ** 2
    a11 = S["S0"] / s2 + 1.0 / h["var_R"]
    a12 = S["Sx"] / s2
    a22 = S["Sxx"] / s2 + 1.0 / h["var_E"]
    r1 = S["Sy"] / s2 + h["mean_R"] / h["var_R"]
    r2 = S["Sxy"] / s2 + h["mean_E"] / h["var_E"]
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


def covariate_effect(post: xr.Dataset, classes: list[str], obs: pd.DataFrame):
    """β_E,c·z̃·x + β_R,c·z̃ of every row of ``obs`` (its ``flux_class``, centred covariate ``z``
    and ``x``) for every draw, (chain, draw, obs); 0 for a fit without a covariate."""
    if "beta_E" not in post or "z" not in obs:
        return 0.0
    return covariate_term(post["beta_E"].to_numpy(), post["beta_R"].to_numpy(),
                          _index(obs["flux_class"], classes), obs["z"].to_numpy(), obs["x"].to_numpy())


def _observation_moments(post: xr.Dataset, data: ArrheniusData) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of every observation's ln|F| for every draw: (chain, draw, obs)."""
    a, b = group_coefficients(post, data)
    obs = data.obs
    gi = obs["group"].to_numpy()
    sigma = group_means(post, data)["sigma"][:, :, gi] / np.sqrt(obs["w"].to_numpy())
    mu = b[:, :, gi] * obs["x"].to_numpy() + a[:, :, gi] + covariate_effect(post, data.classes, obs)
    return mu, sigma


def _obs_array(values: np.ndarray, post: xr.Dataset) -> xr.DataArray:
    return xr.DataArray(values.astype(np.float32), dims=("chain", "draw", "obs"),
                        coords={"chain": post["chain"], "draw": post["draw"],
                                "obs": np.arange(values.shape[-1])})


def pointwise_log_likelihood(post: xr.Dataset, data: ArrheniusData, nu: np.ndarray | None = None) -> xr.DataArray:
    """log p(y_j | draw) for every observation (float32: chain × draw × obs can be large); under
    AR(1) residuals, conditional on the group's previous observation."""
    mu, sigma = _observation_moments(post, data)
    return _obs_array(observation_log_density(data.obs["y"].to_numpy(), mu, sigma, nu,
                                              _ar1_arguments(post, data)), post)


def _ar1_arguments(post: xr.Dataset, data: ArrheniusData) -> dict | None:
    """Per-observation AR(1) arguments of ``ar1_innovations`` (None for independent residuals)."""
    if "rho" not in post:
        return None
    obs = data.obs
    c = _index(obs["flux_class"], data.classes)
    return {"w": obs["w"].to_numpy(dtype=float), "rho": post["rho"].to_numpy()[:, :, c],
            "gap": obs["gap_days"].to_numpy(), "previous": obs["previous"].to_numpy()}


def predict_ln_flux(post: xr.Dataset, data: ArrheniusData, rng: np.random.Generator,
                    nu: np.ndarray | None = None) -> xr.DataArray:
    """Replicated ln|F| for every observation and draw (posterior or prior predictive); AR(1)
    residuals are generated forward in time within each group."""
    mu, sigma = _observation_moments(post, data)
    noise = rng.standard_normal(sigma.shape) if nu is None else rng.standard_t(nu[:, :, None], sigma.shape)
    ar1 = _ar1_arguments(post, data)
    if ar1 is not None:
        noise = ar1_noise(noise, ar1["rho"], ar1["gap"], ar1["previous"])
    return _obs_array(mu + sigma * noise, post)


def ar1_noise(innovations: np.ndarray, rho: np.ndarray, gap: np.ndarray,
              previous: np.ndarray) -> np.ndarray:
    """Unit-variance AR(1) residuals e_i = φ_i e_{i−1} + √(1 − φ_i²) η_i from innovations η (last
    axis: observations sorted by group and date). Runs advance together, one position at a time."""
    out = np.array(innovations, dtype=float)
    linked = previous >= 0
    # Position of each observation in its run: a run of length L takes L − 1 vectorised steps.
    start = np.flatnonzero(~linked)
    position = np.arange(len(previous)) - np.repeat(start, np.diff(np.append(start, len(previous))))
    phi, one_minus = ar1_lag_correlation(rho, np.where(linked, gap, 1))
    phi, scale = np.where(linked, phi, 0.0), np.sqrt(np.where(linked, one_minus, 1.0))
    for k in range(1, int(position.max(initial=0)) + 1):
        i = np.flatnonzero(position == k)
        out[..., i] = phi[..., i] * out[..., i - 1] + scale[..., i] * out[..., i]
    return out


def prior_site_effects(prior: xr.Dataset, data: ArrheniusData, rng: np.random.Generator) -> xr.Dataset:
    """Site effects drawn from their prior N(0, τ²) given prior hyper-draws."""
    h = group_means(prior, data)
    shape = h["mean_E"].shape
    coords = {"chain": prior["chain"], "draw": prior["draw"], **group_coords(data.groups)}
    dims = ("chain", "draw", "group")
    return xr.Dataset({"eps_E": (dims, np.sqrt(h["var_E"]) * rng.standard_normal(shape)),
                       "eps_R": (dims, np.sqrt(h["var_R"]) * rng.standard_normal(shape))}, coords=coords)


def lag1_autocorrelation(resid: np.ndarray, data: ArrheniusData) -> pd.Series:
    """Per flux class, the lag-1 autocorrelation of residuals on consecutive days of a group
    (pairs one day apart; pooled over the class's groups)."""
    obs = data.obs
    i = np.flatnonzero((obs["previous"].to_numpy() >= 0) & (obs["gap_days"].to_numpy() == 1))
    j = obs["previous"].to_numpy()[i]
    parts = pd.DataFrame({"flux_class": obs["flux_class"].to_numpy()[i], "cross": resid[i] * resid[j],
                          "now": resid[i] ** 2, "before": resid[j] ** 2}).groupby("flux_class").sum()
    return (parts["cross"] / np.sqrt(parts["now"] * parts["before"])).reindex(data.classes)


def ols_residuals(data: ArrheniusData) -> np.ndarray:
    """Residuals of a separate weighted least-squares line per group (no pooling, no AR(1))."""
    G = data.groups
    sxx = G["Sxx"] - G["Sx"] ** 2 / G["S0"]
    slope = np.where(sxx > 0, (G["Sxy"] - G["Sx"] * G["Sy"] / G["S0"]) / sxx.where(sxx > 0, 1.0), 0.0)
    intercept = (G["Sy"] - slope * G["Sx"]) / G["S0"]
    g = data.obs["group"].to_numpy()
    return data.obs["y"].to_numpy() - intercept.to_numpy()[g] - slope[g] * data.obs["x"].to_numpy()


def residual_autocorrelation(post: xr.Dataset, data: ArrheniusData) -> pd.DataFrame:
    """Per flux class: lag-1 autocorrelation of the residuals before (separate lines per group,
    residuals taken as independent) and after the AR(1) model (its innovations at the posterior
    mean), and the effective number of independent days, Σ over observations of 1 for the first of
    a run and (1 − φ)/(1 + φ) for the others (the AR(1) variance-inflation factor of a mean)."""
    before = lag1_autocorrelation(ols_residuals(data), data)
    out = pd.DataFrame({"flux_class": data.classes, "resid_lag1_iid": before.to_numpy(),
                        "n_obs": data.obs.groupby("flux_class").size().reindex(data.classes).to_numpy()})
    if "rho" not in post:
        return out
    mean = post.mean(("chain", "draw"))
    point = mean.expand_dims(chain=[0], draw=[0])
    mu, _ = _observation_moments(point, data)
    ar1 = _ar1_arguments(point, data)
    eta, _ = ar1_innovations(data.obs["y"].to_numpy() - mu[0, 0], ar1["w"], ar1["rho"][0, 0],
                             ar1["gap"], ar1["previous"])
    out["resid_lag1_ar1"] = lag1_autocorrelation(eta, data).to_numpy()
    linked = ar1["previous"] >= 0
    phi = np.where(linked, ar1_lag_correlation(ar1["rho"][0, 0], np.where(linked, ar1["gap"], 1))[0], 0.0)
    weight = pd.Series((1 - phi) / (1 + phi)).groupby(data.obs["flux_class"].to_numpy()).sum()
    out["n_eff_days"] = weight.reindex(data.classes).to_numpy()
    return out


def new_site_group_means(post: xr.Dataset, classes: list[str], seasons: list[str],
                         methods: list[str], obs: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Predictive draws of the mean ln|F| of one group of a site the fit did not see: new site
    effects from N(0, τ²) per draw, residuals from the fit's σ (and AR(1) ρ) on the group's own
    dates and temperatures (and covariate values). ``obs``: the group's prepared rows in time order
    (x, w, gap_days, previous, flux_class, season, method; z with a covariate). Returns (draws,),
    chains flattened."""
    c, s = classes.index(obs["flux_class"].iloc[0]), seasons.index(obs["season"].iloc[0])

    def flat(name, *index):
        values = post[name].to_numpy()
        return values.reshape((-1,) + values.shape[2:])[(slice(None), *index)]

    mean_R = flat("lnR", c, s)
    method = obs["method"].iloc[0]
    if method in methods:
        mean_R = mean_R + flat("method_offset", methods.index(method))
    n_draws = mean_R.shape[0]
    tau_R, tau_E = (class_spreads(post, n, len(classes))[:, :, c, s].reshape(-1) for n in ("R", "E"))
    a = mean_R + tau_R * rng.standard_normal(n_draws)
    b = flat("E", c, s) + tau_E * rng.standard_normal(n_draws)
    x, w = obs["x"].to_numpy(), obs["w"].to_numpy(dtype=float)
    noise = rng.standard_normal((n_draws, len(obs)))
    if "rho" in post:
        # the group's rows are contiguous: its links point inside it
        previous = obs["previous"].to_numpy()
        local = np.where(previous >= 0, previous - obs.index[0], -1)
        noise = ar1_noise(noise, flat("rho", c)[:, None], obs["gap_days"].to_numpy(), local)
    resid = flat("sigma", c)[:, None] / np.sqrt(w) * noise
    effect = np.asarray(covariate_effect(post, classes, obs))
    if effect.ndim:  # the group's own covariate values, averaged like its temperatures
        effect = effect.reshape((n_draws, len(obs))).mean(axis=1)
    return a + b * x.mean() + effect + resid.mean(axis=1)
