"""The configuration of model M1 (models/arrhenius.py): likelihood, reference temperature, priors,
and the labels of its site × class × season groups.

Plain frozen dataclasses without pymc, so that reports and the public API can read a run's
configuration (and the package defaults) without importing the sampler. The priors are explained
in the docstring of models/arrhenius.py.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from data.constants import T_REF_C

LIKELIHOODS = ("normal", "student")

# One random-effect group per site × flux class × season, labelled "site|flux_class|season".
GROUP_PARTS = ("site", "flux_class", "season")
GROUP_SEPARATOR = "|"


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
    priors: Priors = dataclasses.field(default_factory=Priors)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ArrheniusConfig":
        d = dict(d)
        d["priors"] = Priors(**d.get("priors", {}))
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


def group_labels(site, flux_class, season):
    """The group label of each site × flux class × season (strings or pandas Series of them)."""
    return site + GROUP_SEPARATOR + flux_class + GROUP_SEPARATOR + season


def split_group_column(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its ``group`` labels split into ``site``, ``flux_class`` and ``season``
    columns (on the rows that have a label) and the ``group`` column dropped."""
    if "group" not in table:
        return table
    table = table.copy()
    parts = table["group"].str.split(GROUP_SEPARATOR, expand=True)
    has = table["group"].notna()
    for i, col in enumerate(GROUP_PARTS):
        table.loc[has, col] = parts.loc[has, i]
    return table.drop(columns="group")


# NUTS step-size target. At 0.8, 40 of 200 simulation-based-calibration fits (benchmarks/sbc.py)
# diverged 1–12 times where τ_R or σ is small: the marginal posterior of a class mean then narrows
# with τ (the hyper-mean funnel), even with the site effects integrated out. At 0.95 the four worst
# of them gave 1 divergence in 16,000 draws (0.9: 14).
TARGET_ACCEPT = 0.95
