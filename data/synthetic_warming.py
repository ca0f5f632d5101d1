"""Simulated soil-warming experiments with known response ratios per season (SYNTHETIC).

Shaped like the Tibetan-grassland synthesis the meta-analysis is built for: ~30 studies, each with
one or two sites; each site ran a growing-season and/or a non-growing-season experiment, warmed by
about 3 °C (growing) or 4 °C (non-growing). The true experiment-level log response ratio is

    θ = ln RR_season + β · (warming_c − reference_warming_c) + u_study + u_site,
    u_study ~ N(0, τ_study), u_site ~ N(0, τ_site),

and each group mean / SD comes from ``n`` simulated replicate plots (log-normal around the true
group mean, coefficient of variation ``cv``), so the sampling variances are those of real
small-sample experiments. Meadow sites emit CH4 (positive means); steppe sites take it up (negative
means; the ratio then compares uptake magnitudes).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from data.table import WARMING_COLUMNS, WarmingTable, validate_warming

SOURCE = "synthetic-warming"


@dataclasses.dataclass(frozen=True)
class WarmingTruth:
    """Known parameters of a simulated warming table."""

    rr: tuple[tuple[str, float], ...] = (("growing", 1.3), ("non-growing", 1.8))
    warming_c: tuple[tuple[str, float, float], ...] = (("growing", 2.9, 1.0),
                                                       ("non-growing", 4.3, 1.3))
    beta_per_c: float = 0.0  # d lnRR / d °C around reference_warming_c (0: RR does not scale)
    reference_warming_c: float = 3.5
    tau_study: float = 0.15
    tau_site: float = 0.10
    cv: float = 0.35  # replicate coefficient of variation within a group
    n_range: tuple[int, int] = (3, 6)  # replicate plots per group (inclusive)

    def ln_rr(self) -> dict[str, float]:
        return {season: float(np.log(rr)) for season, rr in self.rr}

    def as_dict(self) -> dict:
        return {"lnRR": self.ln_rr(), "RR": dict(self.rr), "beta_per_c": self.beta_per_c,
                "reference_warming_c": self.reference_warming_c, "tau_study": self.tau_study,
                "tau_site": self.tau_site, "cv": self.cv}


def _group(rng: np.random.Generator, true_mean: float, cv: float, n: int) -> tuple[float, float]:
    """Mean and SD of ``n`` log-normal replicates whose expectation is |true_mean| (sign kept)."""
    s = np.sqrt(np.log1p(cv**2))
    reps = abs(true_mean) * np.exp(rng.normal(-s**2 / 2, s, size=n))
    return float(np.sign(true_mean) * reps.mean()), float(reps.std(ddof=1))


def simulate_warming(n_studies: int = 30, seed: int = 0,
                     truth: WarmingTruth = WarmingTruth()) -> WarmingTable:
    """A warming table of ``n_studies`` simulated studies with the known ``truth``."""
    rng = np.random.default_rng(seed)
    ln_rr = truth.ln_rr()
    warming = {season: (mean, sd) for season, mean, sd in truth.warming_c}
    seasons = list(ln_rr)
    rows = []
    for s in range(n_studies):
        study = f"S{s + 1:02d}"
        u_study = rng.normal(0.0, truth.tau_study)
        for k in range(1 + int(rng.random() < 0.4)):
            site = f"{study}-{'ab'[k]}"
            u_site = rng.normal(0.0, truth.tau_site)
            steppe = rng.random() < 0.3
            ecosystem = "alpine_steppe" if steppe else "alpine_meadow"
            # Both seasons at most sites; some ran one season only.
            ran = [x for x in seasons if rng.random() < 0.85] or [seasons[rng.integers(len(seasons))]]
            for season in ran:
                w_mean, w_sd = warming.get(season, (3.0, 1.0))
                w = float(np.clip(rng.normal(w_mean, w_sd), 0.5, 10.0))
                theta = (ln_rr[season] + truth.beta_per_c * (w - truth.reference_warming_c)
                         + u_study + u_site)
                level = rng.lognormal(np.log(0.5 if season != "growing" else 2.0), 0.5)
                control = -level if steppe else level
                n_c, n_t = rng.integers(truth.n_range[0], truth.n_range[1] + 1, size=2)
                c_mean, c_sd = _group(rng, control, truth.cv, int(n_c))
                t_mean, t_sd = _group(rng, control * np.exp(theta), truth.cv, int(n_t))
                rows.append((study, site, ecosystem, season, round(w, 2), c_mean, c_sd, int(n_c),
                             t_mean, t_sd, int(n_t)))
    table = pd.DataFrame(rows, columns=list(WARMING_COLUMNS))
    return WarmingTable(validate_warming(table, SOURCE), SOURCE, default_moderator="season",
                        synthetic=True, truth=truth.as_dict())
