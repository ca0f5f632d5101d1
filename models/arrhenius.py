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
- ρ_c ~ Uniform(−1, 1): day-to-day autocorrelation of the residuals per class (``residuals="ar1"``,
  the default): within a group, residuals Δ days apart correlate ρ_c^Δ (a daily AR(1) observed on
  the days there are data; gaps and multi-day periods need no imputation). The interval is open at
  0, so a class without autocorrelation is an interior point, not a boundary the sampler must
  approach. ``residuals="iid"`` fits independent residuals. AR(1) applies to a class only where
  its series are daily (AR1_MIN_DAILY_SHARE of consecutive observations within AR1_DAILY_GAP_DAYS,
  models.arrhenius_config); weekly or fortnightly chamber visits keep independent residuals and
  the run says so.
- Student-t option: ν ~ Gamma(2, 0.1) (Juárez & Steel 2010).

Gaussian likelihood ("marginal"): the site effects are integrated out analytically from per-group
sufficient statistics (n, Σw, Σwx, Σwy, Σwx², Σwxy, Σwy²; under AR(1) residuals also the lag-Δ
cross-products of each group, ``ar1_statistics``), and so are the class × season means E_cs,
lnR_cs, whose conditional is Gaussian too (``class_mean_terms``). The sampler only sees τ, σ, ρ
and the method offsets, its cost grows with groups, not observations, and there is no funnel
between a class mean and a small τ (a few-site design's divergences came from it); the class means
and then the site effects are drawn exactly from their Gaussian conditional posteriors
(models.arrhenius_post.exact_draws). The same posterior results
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
from models.arrhenius_loglik import ar1_innovations
from models.arrhenius_stats import (_PAIRS, COVARIATE_PAIRS, ar1_lag_correlation,  # noqa: F401
                                    ar1_statistics, covariate_adjusted, group_statistics,
                                    lag_statistics)
from models.arrhenius_config import (AR1_DAILY_GAP_DAYS, AR1_HORIZON_DAYS, AR1_MIN_DAILY_SHARE,
                                     LIKELIHOODS, RESIDUALS, ArrheniusConfig, default_class,
                                     group_labels)
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
    # AR(1) lag buckets: one row per group × gap (days) among consecutive observations of a group
    # no more than AR1_HORIZON_DAYS apart, with the lag cross-products (``ar1_statistics``).
    lags: pd.DataFrame | None = None
    residuals: str = "iid"
    # Classes fitted with independent residuals under residuals="ar1" (not daily series), and why.
    independent_classes: dict[str, str] = dataclasses.field(default_factory=dict)
    # The covariate moderating E and lnR (None: none); ``obs["z"]`` holds its value centred on its
    # class mean, ``covariate_centre`` and ``covariate_scale`` the mean and sd per class.
    covariate: str | None = None
    covariate_centre: dict[str, float] = dataclasses.field(default_factory=dict)
    covariate_scale: dict[str, float] = dataclasses.field(default_factory=dict)

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
    if config.residuals not in RESIDUALS:
        raise DataError(None, None, None, f"unknown residual model '{config.residuals}'",
                        f"use one of {', '.join(RESIDUALS)}")
    dropped: dict[str, int] = {}
    df = table.assign(flux_class=flux_class.to_numpy(), season=np.asarray(season, dtype=object))
    zero = df["flux_class"].isna()
    if zero.any():
        dropped["zero flux (log undefined)"] = int(zero.sum())
    df = df.loc[~zero]
    df, not_chosen = _choose_classes(df, config.classes, source)
    for cls, n in not_chosen.items():
        dropped[f"class {cls} not fitted (not a default direction; include it with classes=)"] = n
    if config.covariate is not None:
        df, missing = with_covariate(df, config.covariate, source)
        if missing:
            dropped[f"covariate {config.covariate} missing"] = missing
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
    centre, scale = {}, {}
    if config.covariate is not None:
        df["z"], centre, scale = _centred_covariate(df, config.covariate, source)
    keys = ["site", "flux_class", "season"]
    df["group"] = df.groupby(keys, sort=True).ngroup()
    # Time order within each group: the AR(1) residuals link each observation to the previous one.
    df = df.sort_values(["group", "date"], kind="stable").reset_index(drop=True)
    df["gap_days"], df["previous"] = _previous_in_group(df, config.residuals == "ar1", source)

    stats = group_statistics(df)
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
    residuals, independent = config.residuals, {}
    if residuals == "ar1":
        df["previous"], independent = _daily_series(df)
        if not (df["previous"] >= 0).any():
            residuals = "iid"  # no class has daily series: no ρ to estimate
    lags = lag_statistics(df) if residuals == "ar1" else None
    return ArrheniusData(obs=df, groups=groups, classes=classes, seasons=seasons, methods=methods,
                         dropped=dropped, skipped_classes=skipped, lags=lags,
                         residuals=residuals, independent_classes=independent,
                         covariate=config.covariate, covariate_centre=centre, covariate_scale=scale)


# Columns of the canonical table that cannot moderate E: the response, and what defines x and w.
NOT_COVARIATES = ("flux", "days", "soil_temp_c")


def with_covariate(df: pd.DataFrame, name: str, source=None) -> tuple[pd.DataFrame, int]:
    """The rows with a value of covariate ``name`` (a numeric column of the canonical table), and
    how many lacked one."""
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and c not in NOT_COVARIATES
               and c not in ("x", "y", "w", "n_sub")]
    if name not in df.columns or name in NOT_COVARIATES or not pd.api.types.is_numeric_dtype(df[name]):
        raise DataError(source, None, name, f"'{name}' is not a numeric column that can moderate E",
                        f"choose a covariate among {', '.join(numeric) or '(none in this table)'}")
    values = df[name].to_numpy(dtype=float)
    if not np.isfinite(values).any():
        raise DataError(source, None, name, f"the covariate {name} has no value in any fitted row",
                        "choose a covariate these data record, or fit without one")
    keep = np.isfinite(values)
    return df.loc[keep], int((~keep).sum())


def centred_on(rows: pd.DataFrame, data: ArrheniusData) -> pd.DataFrame:
    """Prepared ``rows`` of other data (a held-out site) with their covariate centred on the class
    means of the fit ``data`` (its β multiplies values centred there)."""
    if data.covariate is None:
        return rows
    centre = rows["flux_class"].map(data.covariate_centre).to_numpy(dtype=float)
    return rows.assign(z=rows[data.covariate].to_numpy(dtype=float) - centre)


def _centred_covariate(df: pd.DataFrame, name: str, source) -> tuple[np.ndarray, dict, dict]:
    """The covariate centred on its flux class's mean, with the mean and sd per class. A class whose
    covariate does not vary has no β to estimate: refused."""
    by_class = df.groupby("flux_class")[name]
    centre, scale = by_class.mean(), by_class.std(ddof=0)
    flat = scale[~(scale > 1e-12 * (1.0 + centre.abs()))]
    if len(flat):
        cls = flat.index[0]
        raise DataError(source, None, name, f"the covariate {name} takes one value ({centre[cls]:g}) "
                        f"in every row of flux class {cls}, so its effect cannot be estimated",
                        "fit without the covariate, or leave that class out with classes=")
    z = df[name].to_numpy(dtype=float) - df["flux_class"].map(centre).to_numpy(dtype=float)
    return z, {str(k): float(v) for k, v in centre.items()}, {str(k): float(v) for k, v in scale.items()}


def _daily_series(df: pd.DataFrame) -> tuple[np.ndarray, dict[str, str]]:
    """Unlink the observations of classes whose series are not daily (AR1_MIN_DAILY_SHARE of
    their consecutive pairs within AR1_DAILY_GAP_DAYS): their residuals stay independent."""
    previous = df["previous"].to_numpy().copy()
    linked = previous >= 0
    independent = {}
    for cls, idx in df.groupby("flux_class").indices.items():
        gaps = df["gap_days"].to_numpy()[idx][linked[idx]]
        if len(gaps) and np.mean(gaps <= AR1_DAILY_GAP_DAYS) >= AR1_MIN_DAILY_SHARE:
            continue
        previous[idx] = -1
        spacing = f"a median {np.median(gaps):.0f} days apart" if len(gaps) else "never consecutive"
        independent[cls] = (f"consecutive observations {spacing}, not a daily series: residuals "
                            f"independent (AR(1) needs at least {AR1_MIN_DAILY_SHARE:.0%} of them "
                            f"within {AR1_DAILY_GAP_DAYS} days)")
    return previous, independent


def _choose_classes(df: pd.DataFrame, classes, source) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep the requested flux classes (``None``: the default directions of each ecosystem,
    ``models.arrhenius_config.DEFAULT_DIRECTIONS``); the row counts of the classes left out."""
    present = sorted(df["flux_class"].dropna().unique())
    if classes is None:
        keep = [c for c in present if default_class(c)]
    else:
        unknown = [c for c in classes if c not in present]
        if unknown:
            raise DataError(source, None, "flux_class",
                            f"flux class {unknown[0]} is not in the data",
                            f"choose among {', '.join(present)}")
        keep = list(classes)
    counts = df["flux_class"].value_counts()
    left_out = {c: int(counts[c]) for c in present if c not in keep}
    return df.loc[df["flux_class"].isin(keep)], left_out


def _previous_in_group(df: pd.DataFrame, refuse_repeats: bool = False,
                       source=None) -> tuple[np.ndarray, np.ndarray]:
    """Days since the group's previous observation, and that observation's row (−1 where none, or
    where it lies more than AR1_HORIZON_DAYS back: a new independent run). Rows sorted by group
    and date."""
    days = df["date"].to_numpy().astype("datetime64[D]").astype("int64")
    group = df["group"].to_numpy()
    gap = np.zeros(len(df), dtype="int64")
    gap[1:] = days[1:] - days[:-1]
    linked = np.zeros(len(df), dtype=bool)
    linked[1:] = (group[1:] == group[:-1]) & (gap[1:] >= 1) & (gap[1:] <= AR1_HORIZON_DAYS)
    repeated = np.flatnonzero((gap[1:] == 0) & (group[1:] == group[:-1]))
    if refuse_repeats and len(repeated):
        i = int(repeated[0]) + 1
        raise DataError(source, None, "date",
                        f"two observations of site {df['site'].iloc[i]} ({df['flux_class'].iloc[i]}) "
                        f"share the date {df['date'].iloc[i]:%Y-%m-%d}",
                        "average replicates per site and date, enter them as separate sites, or "
                        "fit with residuals='iid'")
    gap = np.where(linked, gap, 0)
    previous = np.where(linked, np.arange(len(df)) - 1, -1)
    return gap, previous


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


def _hyperparameters(data: ArrheniusData, config: ArrheniusConfig, class_means: bool = True):
    """Class × season means (unless integrated out: ``class_means=False``), method offsets, site
    spreads and residual sd, shared by all builders. Without class means, ``mean_R`` and
    ``mean_E`` are each group's method offset and 0."""
    p = config.priors
    cells = ("flux_class", "season")
    if class_means:
        E = pm.Normal("E", p.E_mu, p.E_sd, dims=cells)
        lnR = pm.Normal("lnR", p.lnR_mu, p.lnR_sd, dims=cells)
    else:
        E = lnR = pt.zeros((len(data.classes), len(data.seasons)))
    tau_E = pm.HalfNormal("tau_E", p.tau_E_sd, dims="season")
    tau_R = pm.HalfNormal("tau_R", p.tau_R_sd, dims="season")
    if config.tau == "class":  # log τ_c,s = log τ_s + ω·z_c, non-centred (TAU_SHARING)
        spreads = {}
        for name, tau in (("E", tau_E), ("R", tau_R)):
            omega = pm.HalfNormal(f"omega_{name}", p.tau_class_sd)
            z = pm.Normal(f"z_tau_{name}", 0.0, 1.0, dims="flux_class")
            spreads[name] = pm.Deterministic(f"tau_{name}_class",
                                             tau[None, :] * pt.exp(omega * z)[:, None],
                                             dims=("flux_class", "season"))
        tau_E_cs, tau_R_cs = spreads["E"], spreads["R"]
    else:
        tau_E_cs = pt.broadcast_to(tau_E[None, :], (len(data.classes), len(data.seasons)))
        tau_R_cs = pt.broadcast_to(tau_R[None, :], (len(data.classes), len(data.seasons)))
    sigma = pm.HalfNormal("sigma", p.sigma_sd, dims="flux_class")
    rho = (pm.Uniform("rho", -1.0, 1.0, dims="flux_class")
           if data.residuals == "ar1" else None)
    beta = {}
    if data.covariate is not None:  # prior sd per unit of the covariate: the scale's per sd of it
        scale = np.array([data.covariate_scale[c] for c in data.classes])
        beta = {"beta_E": pm.Normal("beta_E", 0.0, p.beta_E_sd / scale, dims="flux_class"),
                "beta_R": pm.Normal("beta_R", 0.0, p.beta_R_sd / scale, dims="flux_class")}
    g = data.groups
    c, s = _index(g["flux_class"], data.classes), _index(g["season"], data.seasons)
    mean_R = lnR[c, s]
    if data.methods:
        offset = pm.Normal("method_offset", 0.0, p.method_sd, dims="method")
        m = _index(g["method"], data.methods)
        # Index -1 (the reference method, or one that never shares a class) picks the appended 0.
        mean_R = mean_R + pt.concatenate([offset, pt.zeros(1)])[m]
    return {"E": E, "lnR": lnR, "tau_E": tau_E, "tau_R": tau_R, "sigma": sigma,
            "mean_E": E[c, s], "mean_R": mean_R, "tau_E_g": tau_E_cs[c, s], "tau_R_g": tau_R_cs[c, s],
            "sigma_g": sigma[c], "rho": rho, **beta}


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


def group_mean_quadratic(stats: dict, var_R, var_E, sigma, lib=np) -> dict:
    """Each group's log marginal likelihood (site effects integrated out, as
    ``group_marginal_logp``) as a quadratic in its prior mean v = (mean_R, mean_E):

        log p(y_g | v) = k − ½ v'K v + v'j,

    with P = (1/σ²)[[S0, Sx], [Sx, Sxx]] the data precision, D = diag(var_R, var_E) and
    r = (Sy, Sxy)/σ²: K = P (I + D P)⁻¹ = (D + P⁻¹)⁻¹, j = (I + P D)⁻¹ r and
    k = −½ n log 2πσ² + ½ Slogw − ½ Syy/σ² − ½ log det(I + D P) + ½ r'D j. Written through
    I + D P (never D⁻¹ − D⁻¹A⁻¹D⁻¹), so it stays accurate as τ → 0 and for a group whose
    temperatures do not vary (P singular). Returns K11, K12, K22, j1, j2, k.
    """
    s2 = sigma ** 2
    p11, p12, p22 = stats["S0"] / s2, stats["Sx"] / s2, stats["Sxx"] / s2
    r1, r2 = stats["Sy"] / s2, stats["Sxy"] / s2
    det_p = p11 * p22 - p12 ** 2
    det = 1.0 + p11 * var_R + p22 * var_E + var_R * var_E * det_p  # det(I + D P)
    j1 = ((1.0 + p22 * var_E) * r1 - p12 * var_E * r2) / det
    j2 = ((1.0 + p11 * var_R) * r2 - p12 * var_R * r1) / det
    k = (-0.5 * stats["n"] * lib.log(2 * np.pi * s2) + 0.5 * stats["Slogw"]
         - 0.5 * stats["Syy"] / s2 - 0.5 * lib.log(det) + 0.5 * (var_R * r1 * j1 + var_E * r2 * j2))
    return {"K11": (p11 + var_E * det_p) / det, "K12": p12 / det,
            "K22": (p22 + var_R * det_p) / det, "j1": j1, "j2": j2, "k": k}


def class_mean_terms(stats: dict, offset, var_R, var_E, sigma, cells, priors: Priors,
                     lib=np) -> dict:
    """The class × season means (lnR_cs, E_cs) integrated out of the group likelihoods.

    Given τ, σ, ρ and the method offsets, each group's likelihood is Gaussian in its cell's mean
    m = (lnR_cs, E_cs), shifted by the group's method offset u = (δ_m, 0)
    (``group_mean_quadratic``); over the cell's groups and the prior m ~ N(μ₀, S₀),
    S₀ = diag(lnR_sd², E_sd²), the posterior of m is N(Λ⁻¹b, Λ⁻¹) with

        Λ = S₀⁻¹ + Σ_g K_g,   b = S₀⁻¹μ₀ + Σ_g (j_g − K_g u_g),

    and the cell's marginal likelihood is
    Σ_g (k_g − ½ u_g'K_g u_g + u_g'j_g) − ½ μ₀'S₀⁻¹μ₀ − ½ log|S₀| − ½ log|Λ| + ½ b'Λ⁻¹b.
    Sampling τ and σ with m integrated out removes the funnel between a class mean and a small τ
    that made small designs (a few sites) diverge.

    ``cells``: (groups × cells) one-hot matrix of each group's cell; arrays may carry leading draw
    axes. Returns Λ11, Λ12, Λ22, b1, b2 and ``logml`` per cell.
    """
    q = group_mean_quadratic(stats, var_R, var_E, sigma, lib)
    per_group = {"K11": q["K11"], "K12": q["K12"], "K22": q["K22"],
                 "b1": q["j1"] - q["K11"] * offset, "b2": q["j2"] - q["K12"] * offset,
                 "c": q["k"] - 0.5 * q["K11"] * offset ** 2 + offset * q["j1"]}
    cell = {name: lib.dot(v, cells) for name, v in per_group.items()}
    prec_R, prec_E = 1.0 / priors.lnR_sd ** 2, 1.0 / priors.E_sd ** 2
    l11, l12, l22 = cell["K11"] + prec_R, cell["K12"], cell["K22"] + prec_E
    b1, b2 = cell["b1"] + prec_R * priors.lnR_mu, cell["b2"] + prec_E * priors.E_mu
    det = l11 * l22 - l12 ** 2
    quad = (l22 * b1 ** 2 - 2.0 * l12 * b1 * b2 + l11 * b2 ** 2) / det
    logml = (cell["c"] - 0.5 * (prec_R * priors.lnR_mu ** 2 + prec_E * priors.E_mu ** 2)
             + 0.5 * np.log(prec_R * prec_E) - 0.5 * lib.log(det) + 0.5 * quad)
    return {"L11": l11, "L12": l12, "L22": l22, "b1": b1, "b2": b2, "logml": logml}


def cell_matrix(data: ArrheniusData) -> np.ndarray:
    """(groups × cells) one-hot matrix of each group's flux class × season cell (cells in the
    order of the (flux_class, season) coordinates, row-major)."""
    g = data.groups
    cell = (_index(g["flux_class"], data.classes) * len(data.seasons)
            + _index(g["season"], data.seasons))
    out = np.zeros((len(g), len(data.classes) * len(data.seasons)))
    out[np.arange(len(g)), cell] = 1.0
    return out


def _pairs(data: ArrheniusData) -> list[str]:
    return [*_PAIRS, *(COVARIATE_PAIRS if data.covariate is not None else ())]


def group_stats(data: ArrheniusData) -> dict[str, np.ndarray]:
    """The group statistics as arrays (with the covariate cross-products where there is one)."""
    names = ("n", *("S" + k for k in _pairs(data)), "Slogw")
    return {k: data.groups[k].to_numpy(dtype=float) for k in names}


def lag_stats(data: ArrheniusData) -> dict[str, np.ndarray]:
    names = ("gap", "n", *("Q" + k for k in _pairs(data)), *("C" + k for k in _pairs(data)))
    return {k: data.lags[k].to_numpy(dtype=float) for k in names}


def group_class_index(data: ArrheniusData) -> np.ndarray:
    """Flux-class position of each group."""
    return _index(data.groups["flux_class"], data.classes)


def lag_class_index(data: ArrheniusData) -> np.ndarray:
    """Flux-class position of each AR(1) lag bucket."""
    g = data.lags["group"].to_numpy()
    return _index(data.groups["flux_class"], data.classes)[g]


def build_model(data: ArrheniusData, config: ArrheniusConfig) -> pm.Model:
    """The model to sample: marginal (Gaussian) or per-observation Student-t."""
    if config.likelihood == "student":
        return _build_per_observation(data, config, student=True, centring="mixed")
    with pm.Model(coords=data.coords) as model:
        h = _hyperparameters(data, config, class_means=False)
        stats = {k: pt.constant(v) for k, v in group_stats(data).items()}
        logdet = 0.0
        if data.lags is not None and len(data.lags):
            lags = lag_stats(data)
            gi = pt.constant(data.lags["group"].to_numpy().astype("int64"))
            n_groups = len(data.groups)

            def segment_sum(values):
                return pt.inc_subtensor(pt.zeros(n_groups)[gi], values)  # repeated indices add up

            stats, logdet = ar1_statistics(stats, lags, h["rho"][lag_class_index(data)],
                                           segment_sum, lib=pt)
        if data.covariate is not None:
            c = group_class_index(data)
            stats = covariate_adjusted(stats, h["beta_E"][c], h["beta_R"][c])
        # Site effects and the class × season means E, lnR integrated out (class_mean_terms);
        # both are drawn exactly after sampling (models.arrhenius_post).
        terms = class_mean_terms(stats, h["mean_R"], h["tau_R_g"] ** 2, h["tau_E_g"] ** 2,
                                 h["sigma_g"], pt.constant(cell_matrix(data)), config.priors, lib=pt)
        pm.Potential("group_loglik", terms["logml"].sum() + pt.sum(logdet))
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
        if data.covariate is not None:
            c, z = _index(obs["flux_class"], data.classes), obs["z"].to_numpy()
            mu = mu + h["beta_E"][c] * z * obs["x"].to_numpy() + h["beta_R"][c] * z
        if data.residuals == "ar1":
            sigma_i = h["sigma_g"][gi]
            c = _index(obs["flux_class"], data.classes)
            eta, log_jac = ar1_innovations(obs["y"].to_numpy() - mu, obs["w"].to_numpy(dtype=float),
                                           h["rho"][c], obs["gap_days"].to_numpy(),
                                           obs["previous"].to_numpy(), lib=pt)
            if student:
                nu = pm.Gamma("nu", config.priors.nu_alpha, config.priors.nu_beta)
                dist = pm.StudentT.dist(nu=nu, mu=0.0, sigma=sigma_i)
            else:
                dist = pm.Normal.dist(mu=0.0, sigma=sigma_i)
            pm.Potential("ln_flux_loglik", (pm.logp(dist, eta) + log_jac).sum())
            return model
        sd = h["sigma_g"][gi] / np.sqrt(obs["w"].to_numpy())
        if student:
            nu = pm.Gamma("nu", config.priors.nu_alpha, config.priors.nu_beta)
            pm.StudentT("ln_flux", nu=nu, mu=mu, sigma=sd, observed=obs["y"].to_numpy(), dims="obs")
        else:
            pm.Normal("ln_flux", mu=mu, sigma=sd, observed=obs["y"].to_numpy(), dims="obs")
    return model
