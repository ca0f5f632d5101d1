"""The configuration of model M1 (models/arrhenius.py): likelihood, reference temperature, priors,
and the labels of its site × class × season groups.

Plain frozen dataclasses without pymc, so that reports and the public API can read a run's
configuration (and the package defaults) without importing the sampler. The priors are explained
in the docstring of models/arrhenius.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from data.constants import T_REF_C

LIKELIHOODS = ("normal", "student")
# Residual structure within a site × class × season group: continuous-time AR(1) or independent.
RESIDUALS = ("ar1", "iid")
# Observations more than this many days apart are treated as independent (a new AR(1) run). At the
# largest daily autocorrelation measured on the default data (0.91 at lag 1) the correlation across
# 365 days is 1e-15, and even at ρ = 0.95 it is 8e-9: far below what the likelihood can resolve,
# while it keeps the lag buckets per group bounded (at most one per distinct gap up to a year).
AR1_HORIZON_DAYS = 365
# A class's residuals are modelled AR(1) only when its series are daily: at least this share of
# its consecutive observations lie at most AR1_DAILY_GAP_DAYS apart. Weekly or fortnightly chamber
# visits leave ρ^Δ negligible and ρ unidentified (a flat posterior ending in steep walls near
# |ρ| = 1, where NUTS diverges), so such classes keep independent residuals.
AR1_DAILY_GAP_DAYS = 3
AR1_MIN_DAILY_SHARE = 0.5

# How the site-to-site spreads τ_E, τ_R of the flux classes relate. "shared": one τ per season for
# every class. "class": each class its own τ_c,s = τ_s · exp(ω·z_c), the classes' log-spreads
# partially pooled around the season's typical τ_s (z_c ~ Normal(0, 1), ω ~ HalfNormal): a class
# with many sites learns its own spread, a class with one site borrows the typical one, widened by
# the spread between classes. Measured in benchmarks/tau_sharing.py (README, "Site spreads").
TAU_SHARING = ("shared", "class")

# Flux directions fitted by default per ecosystem: the directions the ecosystem is known for.
# Wetlands are CH4 sources; negative daily means at wetland eddy-covariance towers are measurement
# noise around small fluxes, not a methane-oxidation process, so ``wetland_uptake`` is fitted only
# when asked for (``classes=``). Upland soils (grassland, forest, cropland, …) both oxidise
# atmospheric CH4 and emit it when wet: both directions enter.
DEFAULT_DIRECTIONS = {"wetland": ("emission",)}

# One random-effect group per site × flux class × season. The ``group`` coordinate of a run holds a
# readable label "site|flux_class|season" (unique: classes and seasons are fixed vocabularies), but
# the parts are carried as coordinates of their own (``GROUP_COORDS``), and summaries and figures
# take site, class and season from those: a site name may hold any character, '|' included.
GROUP_PARTS = ("site", "flux_class", "season")
GROUP_SEPARATOR = "|"
GROUP_COORDS = {"site": "group_site", "flux_class": "group_flux_class", "season": "group_season"}


def _prior(default: float, meaning: str):
    """A prior scale with its meaning (``dataclasses.fields(Priors)[i].metadata["meaning"]``)."""
    return dataclasses.field(default=default, metadata={"meaning": meaning})


@dataclasses.dataclass(frozen=True)
class Priors:
    """Prior scales of M1 (E in eV, lnR in ln nmol m⁻² s⁻¹)."""

    E_mu: float = _prior(0.6, "mean of E_cs ~ Normal(E_mu, E_sd), eV")
    E_sd: float = _prior(0.6, "sd of E_cs ~ Normal(E_mu, E_sd), eV")
    lnR_mu: float = _prior(1.0, "mean of lnR_cs ~ Normal(lnR_mu, lnR_sd)")
    lnR_sd: float = _prior(3.0, "sd of lnR_cs ~ Normal(lnR_mu, lnR_sd)")
    method_sd: float = _prior(1.0, "sd of the method offsets δ_m ~ Normal(0, method_sd)")
    tau_E_sd: float = _prior(0.5, "scale of the site spread of E, τ_E,s ~ HalfNormal(tau_E_sd), eV")
    tau_R_sd: float = _prior(1.5, "scale of the site spread of lnR, τ_R,s ~ HalfNormal(tau_R_sd)")
    tau_class_sd: float = _prior(0.5, "scale of the spread between classes of log τ (tau=class), "
                                      "ω_E, ω_R ~ HalfNormal(tau_class_sd)")
    beta_E_sd: float = _prior(0.3, "sd of a covariate's effect on E, β_E,c ~ Normal(0, beta_E_sd / "
                                    "sd_c(covariate)): eV per sd of the covariate in class c")
    beta_R_sd: float = _prior(1.0, "sd of a covariate's effect on lnR, β_R,c ~ Normal(0, beta_R_sd / "
                                    "sd_c(covariate)): ln units per sd of the covariate")
    sigma_sd: float = _prior(1.5, "scale of the residual sd, σ_c ~ HalfNormal(sigma_sd)")
    nu_alpha: float = _prior(2.0, "shape of the Student-t ν ~ Gamma(nu_alpha, nu_beta)")
    nu_beta: float = _prior(0.1, "rate of the Student-t ν ~ Gamma(nu_alpha, nu_beta)")


@dataclasses.dataclass(frozen=True)
class ArrheniusConfig:
    """Everything that defines a fit; stored in the run's attrs."""

    t_ref_c: float = T_REF_C
    likelihood: str = "normal"
    min_obs: int = 20  # per flux class × season; smaller classes are reported and skipped
    weight_by_days: bool = True
    residuals: str = "ar1"
    classes: tuple[str, ...] | None = None  # None: the default directions (DEFAULT_DIRECTIONS)
    tau: str = "shared"  # TAU_SHARING
    # A numeric column of the canonical table (wtd_m, swc, …) whose centred value moderates E and
    # lnR of each observation: E_ij = E_cs + ε_E + β_E,c·(z_ij − z̄_c), lnR likewise (z̄_c the
    # class mean); None: no covariate.
    covariate: str | None = None
    priors: Priors = dataclasses.field(default_factory=Priors)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["classes"] = None if self.classes is None else list(self.classes)
        return d


def default_class(flux_class: str) -> bool:
    """Whether a flux class (``ecosystem_direction``) enters a fit by default."""
    ecosystem, _, direction = flux_class.rpartition("_")
    return direction in DEFAULT_DIRECTIONS.get(ecosystem, (direction,))


def group_labels(site, flux_class, season):
    """The group label of each site × flux class × season (strings or pandas Series of them).

    A display label and index value only: never split it (use ``group_parts``)."""
    return site + GROUP_SEPARATOR + flux_class + GROUP_SEPARATOR + season


def group_coords(groups: pd.DataFrame) -> dict:
    """Coordinates of the ``group`` dimension from a table with ``label``, ``site``,
    ``flux_class`` and ``season`` columns: the label and each part as its own coordinate."""
    coords = {"group": groups["label"].to_numpy().astype(str)}
    for part, name in GROUP_COORDS.items():
        coords[name] = ("group", groups[part].to_numpy().astype(str))
    return coords


def group_parts(ds, tree=None) -> pd.DataFrame:
    """site, flux_class and season of every group label (index ``group``), read from the group
    coordinates of a posterior Dataset.

    A run saved without them (before they were written) gets them from the ``constant_data`` of
    its DataTree ``tree`` (each observation's site, class, season and group number), else by
    splitting the label from the right, where only a site name can hold the separator.
    """
    labels = [str(g) for g in np.asarray(ds["group"].values)]
    if all(name in ds.coords for name in GROUP_COORDS.values()):
        frame = pd.DataFrame({part: np.asarray(ds[name].values).astype(str)
                              for part, name in GROUP_COORDS.items()})
    else:
        frame = _parts_from_constant_data(tree, len(labels)) if tree is not None else None
        if frame is None:
            frame = pd.DataFrame([label.rsplit(GROUP_SEPARATOR, 2) for label in labels],
                                 columns=list(GROUP_PARTS))
    frame.index = pd.Index(labels, name="group")
    return frame


def _parts_from_constant_data(tree, n_groups: int) -> pd.DataFrame | None:
    if "constant_data" not in tree.children:
        return None
    cd = tree["constant_data"]
    if not {"obs_group", "site", "obs_flux_class", "obs_season"} <= set(cd.data_vars):
        return None
    obs = pd.DataFrame({"g": np.asarray(cd["obs_group"].values), "site": cd["site"].values.astype(str),
                        "flux_class": cd["obs_flux_class"].values.astype(str),
                        "season": cd["obs_season"].values.astype(str)})
    first = obs.groupby("g").first().reindex(range(n_groups))
    return None if first.isna().any().any() else first.reset_index(drop=True)[list(GROUP_PARTS)]


def add_group_columns(table: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the site, flux_class and season of its ``group`` labels as columns (on the
    rows that have a label; ``parts`` from ``group_parts``) and the ``group`` column dropped. The
    parts are looked up by label, never split from it."""
    if "group" not in table:
        return table
    table = table.copy()
    has = table["group"].notna()
    for col in GROUP_PARTS:
        looked = table.loc[has, "group"].astype(str).map(parts[col])
        if col not in table:
            table[col] = pd.Series(np.nan, index=table.index, dtype=object)
        else:
            table[col] = table[col].astype(object)
        table.loc[has, col] = looked
    return table.drop(columns="group")


# NUTS step-size target. At 0.8, 40 of 200 simulation-based-calibration fits (benchmarks/sbc.py)
# diverged 1–12 times where τ_R or σ is small: the marginal posterior of a class mean then narrows
# with τ (the hyper-mean funnel), even with the site effects integrated out. At 0.95 the four worst
# of them gave 1 divergence in 16,000 draws (0.9: 14).
TARGET_ACCEPT = 0.95
# NUTS tuning steps per chain, nutpie's own default. Its adaptation settles within a few hundred
# steps: the SBC runs (benchmarks/sbc_runs) are calibrated at 300, and at 300 the small-design
# benchmark passes the gate 9 of 9 times (30/30 intervals hold the truth) and the default data give
# the same E as at 1,000 (every summary mean within 2 Monte Carlo SE), with bulk ESS ≥ 3,000.
TUNE = 300
