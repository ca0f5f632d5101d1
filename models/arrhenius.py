"""Model M1: hierarchical Boltzmann–Arrhenius model of CH4 flux vs soil temperature.

    ln|F_ij| = (E_cs + ε_E[g]) · x_ij + lnR_cs + δ_method + ε_R[g] + e_ij,
    x = 1/(k·T_C) − 1/(k·T),   e_ij ~ Normal(0, σ_c / √w_ij),

with flux class c (ecosystem × sign), season s, and one random-effect group g per site × class × season
(a site such as Hongyuan can both emit and take up CH4, and the two are different processes).
w_ij is the period length in days (a multi-day period mean has 1/w of a day's residual variance).

Priors (weakly informative, on the scales of the quantities):
- E_cs ~ Normal(0.6, 0.6) eV: centred on the typical ecosystem-level CH4 activation energies
  (≈0.5–1 eV) yet wide enough for near-zero or negative sensitivity of uptake.
- lnR_cs ~ Normal(1, 3): ln flux (nmol m⁻² s⁻¹) at T_C; spans e⁻⁵…e⁷, from trace uptake to hot-spot
  emission.
- δ_method ~ Normal(0, 1): a method offset on lnR, included only for methods that share a flux class
  with another method (otherwise it is not identifiable from lnR_cs).
- τ_E[s] ~ HalfNormal(0.5) eV, τ_R[s] ~ HalfNormal(1.5): site-to-site spread, shared across classes so
  that a class observed at one site (e.g. Hongyuan grassland) still fits, borrowing the spread learnt
  from the data-rich wetland class.
- σ_c ~ HalfNormal(1.5): residual sd of ln|F| per class.
- Student-t option: ν ~ Gamma(2, 0.1) (Juárez & Steel 2010).

Gaussian likelihood ("marginal"): the site effects are integrated out analytically from per-group
sufficient statistics (n, Σw, Σwx, Σwy, Σwx², Σwxy, Σwy²), so the sampler only sees the
hyperparameters and its cost grows with groups, not observations; the site effects are then drawn
exactly from their Gaussian conditional posterior (models.arrhenius_post). The same posterior results
from the per-observation model ("naive", used for benchmarks and equivalence tests).

Student-t likelihood: per observation with explicit site effects; data-rich groups centred and
data-poor groups non-centred, as each geometry mixes best.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from data.constants import arrhenius_x
from data.constants import fold_change, q10  # noqa: F401  (re-exported beside the model)
from data.errors import DataError
from models.arrhenius_config import LIKELIHOODS, ArrheniusConfig, group_labels
from models.arrhenius_config import Priors  # noqa: F401  (re-exported beside the model)

# Groups with at least this many observations are centred in the per-observation models.
CENTRED_MIN_OBS = 10


@dataclasses.dataclass
class ArrheniusData:
    """Observations and per-group sufficient statistics, ready for the model builders."""

    obs: pd.DataFrame  # one row per observation: site, date, flux_class, season, method, x, y, w, group
    groups: pd.DataFrame  # one row per site × class × season group, with sufficient statistics
    classes: list[str]
    seasons: list[str]
    methods: list[str]  # methods with an lnR offset (empty when none is identifiable)
    dropped: dict[str, int]
    skipped_classes: dict[str, str]

    @property
    def coords(self) -> dict[str, list[str]]:
        return {"flux_class": self.classes, "season": self.seasons,
                "group": self.groups["label"].tolist(), "method": self.methods}


def prepare_data(table: pd.DataFrame, season: pd.Series, config: ArrheniusConfig,
                 flux_class: pd.Series, source=None) -> ArrheniusData:
    """Log-transform, label, drop zero fluxes and too-small classes, and compute group statistics.

    ``season`` and ``flux_class`` are aligned with ``table`` (labels from data.seasons / data.table);
    ``source`` names the input file in errors.
    """
    if config.likelihood not in LIKELIHOODS:
        raise DataError(None, None, None, f"unknown likelihood '{config.likelihood}'",
                        f"use one of {', '.join(LIKELIHOODS)}")
    dropped: dict[str, int] = {}
    df = table.assign(flux_class=flux_class.to_numpy(), season=np.asarray(season, dtype=object))
    zero = df["flux_class"].isna()
    if zero.any():
        dropped["zero flux (log undefined)"] = int(zero.sum())
    df = df.loc[~zero]
    season_order = (list(season.cat.categories) if isinstance(season.dtype, pd.CategoricalDtype)
                    else sorted(df["season"].unique()))
    seasons = [s for s in season_order if (df["season"] == s).any()]

    counts = df.groupby(["flux_class", "season"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=seasons, fill_value=0)
    skipped = {}
    for cls, row in counts.iterrows():
        small = row[row < config.min_obs]
        if len(small):
            skipped[cls] = "; ".join(f"{n} obs in {s}" for s, n in small.items()) + \
                f" (< {config.min_obs} per season)"
    if skipped:
        n_skip = int(df["flux_class"].isin(list(skipped)).sum())
        dropped["flux class too small"] = n_skip
        df = df.loc[~df["flux_class"].isin(list(skipped))]
    if df.empty:
        raise DataError(source, None, "flux", "no flux class has enough observations to fit",
                        f"provide at least {config.min_obs} non-zero fluxes per class and season")
    classes = sorted(df["flux_class"].unique())

    df = df.assign(
        x=arrhenius_x(df["soil_temp_c"].to_numpy(), config.t_ref_c),
        y=np.log(np.abs(df["flux"].to_numpy())),
        w=df["days"].to_numpy(dtype=float) if config.weight_by_days else 1.0,
    )
    keys = ["site", "flux_class", "season"]
    df["group"] = df.groupby(keys, sort=True).ngroup()
    df = df.reset_index(drop=True)

    wx, wy = df["w"] * df["x"], df["w"] * df["y"]
    stats = pd.DataFrame({
        "n": 1, "S0": df["w"], "Sx": wx, "Sy": wy, "Sxx": wx * df["x"], "Sxy": wx * df["y"],
        "Syy": wy * df["y"], "Slogw": np.log(df["w"]),
    }).groupby(df["group"]).sum()
    first = df.groupby("group")[keys + ["method"]].agg(
        {"site": "first", "flux_class": "first", "season": "first",
         "method": lambda m: m.mode().iloc[0]})
    groups = first.join(stats).reset_index()
    groups["label"] = group_labels(groups["site"], groups["flux_class"], groups["season"])
    _require_two_sites(groups, source)

    # A method offset is identifiable only where a class mixes methods.
    mixed = df.groupby("flux_class")["method"].nunique()
    shared = sorted(df.loc[df["flux_class"].isin(mixed[mixed > 1].index), "method"].unique())
    methods = shared[1:] if len(shared) > 1 else []
    return ArrheniusData(obs=df, groups=groups, classes=classes, seasons=seasons, methods=methods,
                         dropped=dropped, skipped_classes=skipped)


def _require_two_sites(groups: pd.DataFrame, source) -> None:
    """τ_E[s], τ_R[s] are estimated from the spread between sites in season s: with one site they
    would be their prior alone, and every class-level interval would silently inherit it."""
    sites = groups.groupby("season", sort=False)["site"].unique()
    lonely = sites[sites.map(len) < 2]
    if len(lonely):
        season, (site,) = lonely.index[0], lonely.iloc[0]
        raise DataError(source, None, "site",
                        f"only one site ({site}) has data in the '{season}' season, so the "
                        "site-to-site spread τ cannot be estimated",
                        "fit at least two sites per season (chambers or plots may be entered as "
                        "sites)")


def _index(values: pd.Series, labels: list[str]) -> np.ndarray:
    return pd.Index(labels).get_indexer(values).astype("int64")  # -1 where not among labels


def _hyperparameters(data: ArrheniusData, config: ArrheniusConfig):
    """Class × season means, method offsets, site spreads and residual sd, shared by all builders."""
    p = config.priors
    E = pm.Normal("E", p.E_mu, p.E_sd, dims=("flux_class", "season"))
    lnR = pm.Normal("lnR", p.lnR_mu, p.lnR_sd, dims=("flux_class", "season"))
    tau_E = pm.HalfNormal("tau_E", p.tau_E_sd, dims="season")
    tau_R = pm.HalfNormal("tau_R", p.tau_R_sd, dims="season")
    sigma = pm.HalfNormal("sigma", p.sigma_sd, dims="flux_class")
    g = data.groups
    c, s = _index(g["flux_class"], data.classes), _index(g["season"], data.seasons)
    mean_R = lnR[c, s]
    if data.methods:
        offset = pm.Normal("method_offset", 0.0, p.method_sd, dims="method")
        m = _index(g["method"], data.methods)
        # Index -1 (the reference method, or one that never shares a class) picks the appended 0.
        mean_R = mean_R + pt.concatenate([offset, pt.zeros(1)])[m]
    return {"E": E, "lnR": lnR, "tau_E": tau_E, "tau_R": tau_R, "sigma": sigma,
            "mean_E": E[c, s], "mean_R": mean_R, "tau_E_g": tau_E[s], "tau_R_g": tau_R[s],
            "sigma_g": sigma[c]}


def group_marginal_logp(stats: dict, mean_R, mean_E, var_R, var_E, sigma):
    """Exact log marginal likelihood of each group's data, site effects integrated out.

    Group data y = a + b·x + e (weights w) with (a, b) ~ N((mean_R, mean_E), diag(var_R, var_E)).
    Works on numpy arrays or PyTensor tensors alike (closed-form 2 × 2 algebra).
    """
    lib = pt if any(isinstance(v, pt.TensorVariable) for v in (mean_R, mean_E, var_R, sigma)) else np
    s2 = sigma ** 2
    a11 = stats["S0"] / s2 + 1.0 / var_R
    a12 = stats["Sx"] / s2
    a22 = stats["Sxx"] / s2 + 1.0 / var_E
    r1 = stats["Sy"] / s2 + mean_R / var_R
    r2 = stats["Sxy"] / s2 + mean_E / var_E
    det = a11 * a22 - a12 ** 2
    quad = (a22 * r1 ** 2 - 2.0 * a12 * r1 * r2 + a11 * r2 ** 2) / det
    return (-0.5 * stats["n"] * lib.log(2 * np.pi * s2) + 0.5 * stats["Slogw"]
            - 0.5 * stats["Syy"] / s2 - 0.5 * lib.log(var_R * var_E)
            - 0.5 * (mean_R ** 2 / var_R + mean_E ** 2 / var_E) + 0.5 * quad - 0.5 * lib.log(det))


def _group_stats(data: ArrheniusData) -> dict[str, np.ndarray]:
    return {k: data.groups[k].to_numpy(dtype=float)
            for k in ("n", "S0", "Sx", "Sy", "Sxx", "Sxy", "Syy", "Slogw")}


def build_model(data: ArrheniusData, config: ArrheniusConfig) -> pm.Model:
    """The model to sample: marginal (Gaussian) or per-observation Student-t."""
    if config.likelihood == "student":
        return _build_per_observation(data, config, student=True, centring="mixed")
    with pm.Model(coords=data.coords) as model:
        h = _hyperparameters(data, config)
        stats = {k: pt.constant(v) for k, v in _group_stats(data).items()}
        pm.Potential("group_loglik", group_marginal_logp(
            stats, h["mean_R"], h["mean_E"], h["tau_R_g"] ** 2, h["tau_E_g"] ** 2, h["sigma_g"]).sum())
    return model


def build_naive_model(data: ArrheniusData, config: ArrheniusConfig) -> pm.Model:
    """Per-observation Gaussian model of the same structure, non-centred: the textbook baseline."""
    return _build_per_observation(data, config, student=False, centring="non-centred")


def _build_per_observation(data: ArrheniusData, config: ArrheniusConfig, *, student: bool,
                           centring: str) -> pm.Model:
    obs = data.obs
    coords = {**data.coords, "obs": np.arange(len(obs))}
    with pm.Model(coords=coords) as model:
        h = _hyperparameters(data, config)
        if centring == "mixed":
            centred = data.groups["n"].to_numpy() >= CENTRED_MIN_OBS
        else:
            centred = np.zeros(len(data.groups), dtype=bool)
        # Centred groups draw their own coefficient (data pin it down, independently of the class
        # mean); non-centred groups draw a unit-scale deviation (their posterior is the prior's shape).
        z_E = pm.Normal("z_E", pt.where(centred, h["mean_E"], 0.0), pt.where(centred, h["tau_E_g"], 1.0),
                        dims="group")
        z_R = pm.Normal("z_R", pt.where(centred, h["mean_R"], 0.0), pt.where(centred, h["tau_R_g"], 1.0),
                        dims="group")
        eps_E = pm.Deterministic("eps_E", pt.where(centred, z_E - h["mean_E"], z_E * h["tau_E_g"]),
                                 dims="group")
        eps_R = pm.Deterministic("eps_R", pt.where(centred, z_R - h["mean_R"], z_R * h["tau_R_g"]),
                                 dims="group")
        gi = obs["group"].to_numpy()
        mu = (h["mean_E"] + eps_E)[gi] * obs["x"].to_numpy() + (h["mean_R"] + eps_R)[gi]
        sd = h["sigma_g"][gi] / np.sqrt(obs["w"].to_numpy())
        if student:
            nu = pm.Gamma("nu", config.priors.nu_alpha, config.priors.nu_beta)
            pm.StudentT("ln_flux", nu=nu, mu=mu, sigma=sd, observed=obs["y"].to_numpy(), dims="obs")
        else:
            pm.Normal("ln_flux", mu=mu, sigma=sd, observed=obs["y"].to_numpy(), dims="obs")
    return model
