"""Known-truth simulator of daily CH4 observations shaped like a Tibetan Plateau site synthesis.

Every site name starts with ``SYN-`` and ``Observations.synthetic`` is True, so anything built on
this table is visibly synthetic.

Design (fixed; only site attributes, dates, temperatures, gaps and fluxes are random):

* 27 sites on the Tibetan Plateau (30–38 °N, 90–103 °E): 8 eddy-covariance (``SYN-EC01``…),
  2 autochamber (``SYN-AC01``…) and 17 static-chamber (``SYN-SC01``…) sites; wetland and
  grassland ecosystems. Each grassland site is either an emission or an uptake site.
* "25 site-years" counts the continuous daily records: the 8 eddy-covariance and 2 autochamber
  sites span 3.5, 3, 3, 3, 2.5, 2, 2, 2 and 2, 2 years (25.0 site-years, starting on 1 January or
  1 July). Daily coverage inside those spans is below 100 % (gaps come in blocks and are more
  frequent outside the growing season, as for real eddy covariance), and is set so the table holds
  ``n_obs_target`` rows in total. The 17 static-chamber sites are single campaigns of about a
  year (330–400 days) sampled on single days, every 7–14 days in May–Sep and every 14–31 days
  otherwise; they are sparse, so they are not counted as site-years (27 sites, 25 site-years).
* Soil temperature (5–10 cm) per site: annual mean 1–4.5 °C, half-range 7–10.5 °C, coldest in
  mid/late January, plus AR(1) day-to-day anomalies (sd 1.2 °C) — sub-zero winters, summers of
  about 8–15 °C.
* Flux: model M1 of DESIGN.md exactly,
  ``ln|F_ij| = (E_cs + ε_E[i,s])·x_ij + lnR_cs + ε_R[i,s] + e_ij``,
  ``x = 1/(k·T_C) − 1/(k·T)``, ``e ~ Normal(0, σ_c)``, with seasons from
  ``assign_seasons(table, "julian")``; the sign is + for emission classes and − for uptake.
  Site effects are Normal(0, τ) per site × season, correlated ``rho`` between a site's two
  seasons (default 0).

Random streams are split (numpy ``SeedSequence``) by purpose, so a ``truth`` override changes the
fluxes but not the sites, dates, temperatures, gaps or the standardised noise (common random
numbers for calibration studies).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from data.constants import DAYS_PER_YEAR, K_BOLTZMANN_EV, T_REF_C, arrhenius_x
from data.errors import DataError
from data.seasons import assign_seasons, season_labels
from data.table import Observations, validate_observations

SEASONS = season_labels("julian")  # ("growing", "non-growing")
FLUX_CLASSES = ("wetland_emission", "grassland_emission", "grassland_uptake")
_SIGN = {"wetland_emission": 1.0, "grassland_emission": 1.0, "grassland_uptake": -1.0}
_ECOSYSTEM = {"wetland_emission": "wetland", "grassland_emission": "grassland",
              "grassland_uptake": "grassland"}

# Parameters of M1. E in eV; lnR = ln|F| (nmol m⁻² s⁻¹) at T_C. The non-growing season responds
# more strongly; uptake responds weakly (diffusion-limited oxidation).
DEFAULT_TRUTH: dict = {
    "E": {"wetland_emission": {"growing": 0.7, "non-growing": 1.1},
          "grassland_emission": {"growing": 0.5, "non-growing": 0.9},
          "grassland_uptake": {"growing": 0.3, "non-growing": 0.6}},
    # exp(3.2) ≈ 25 nmol m⁻² s⁻¹ ≈ 1.4 mg CH4 m⁻² h⁻¹ at 15 °C
    "lnR": {"wetland_emission": {"growing": 3.2, "non-growing": 2.8},
            "grassland_emission": {"growing": 0.0, "non-growing": -0.4},
            "grassland_uptake": {"growing": 0.3, "non-growing": 0.0}},
    "sigma": {"wetland_emission": 0.4, "grassland_emission": 0.6, "grassland_uptake": 0.5},
    "tau_E": 0.2,
    "tau_R": 0.5,
    "rho": 0.0,
    "t_ref_c": T_REF_C,
}

# (name, method, flux class, record span in years; None = one static-chamber campaign)
_W, _GE, _GU = FLUX_CLASSES
SITE_DESIGN: tuple[tuple[str, str, str, float | None], ...] = (
    *((f"SYN-EC{i + 1:02d}", "eddy_covariance", c, y) for i, (c, y) in enumerate(
        zip((_W, _GE, _GU, _W, _W, _GU, _GE, _W), (3.5, 3.0, 3.0, 3.0, 2.5, 2.0, 2.0, 2.0)))),
    ("SYN-AC01", "autochamber", _W, 2.0),
    ("SYN-AC02", "autochamber", _GU, 2.0),
    *((f"SYN-SC{i + 1:02d}", "static_chamber", c, None) for i, c in enumerate(
        (_W, _GU, _GE, _W, _GU, _GU, _W, _GE, _GU, _W, _GU, _GE, _W, _GU, _W, _GE, _GU))),
)
SITE_YEARS = sum(y for *_, y in SITE_DESIGN if y is not None)

LAT_RANGE, LON_RANGE = (30.0, 38.0), (90.0, 103.0)
_GAP_BLOCK_DAYS = 15  # gaps in continuous records come in blocks of about two weeks
_WINTER_GAP_PENALTY = 0.5  # in sd of the gap score: fewer valid days outside May–Sep
_DAY = np.timedelta64(1, "D")


def simulate_observations(seed: int = 0, *, n_obs_target: int = 6500,
                          truth: dict | None = None) -> tuple[Observations, dict]:
    """A synthetic canonical table (exactly ``n_obs_target`` rows) and the truth it was drawn from.

    ``truth`` overrides entries of ``DEFAULT_TRUTH`` (nested dicts merge per class and season).
    The returned truth holds ``E`` and ``lnR`` (flux_class → season → value), ``sigma``
    (flux_class → value), ``tau_E``, ``tau_R``, ``rho``, ``t_ref_c``, ``k_ev``, ``seed``,
    ``site_effects`` (DataFrame: site, flux_class, season, eps_E, eps_R), ``sites`` (DataFrame of
    the site design) and ``site_years``.
    """
    params = merge_truth(truth)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    rng_sites, rng_dates, rng_temp, rng_gaps, rng_effects, rng_noise = streams

    sites = _draw_sites(rng_sites)
    frame = _draw_dates(sites, rng_dates)
    frame["soil_temp_c"] = _draw_soil_temperature(sites, frame, rng_temp)
    frame["season"] = assign_seasons(frame, "julian")
    keep = _draw_coverage(sites, frame, rng_gaps, n_obs_target)

    effects = _draw_site_effects(sites, params, rng_effects)
    z_noise = rng_noise.standard_normal(len(frame))  # drawn for every candidate day: CRN
    frame["flux"] = _flux(frame, sites, effects, params, z_noise)

    table = frame.loc[keep, ["site", "date", "days", "flux", "soil_temp_c", "ecosystem", "method",
                             "latitude", "longitude", "n_sub"]].reset_index(drop=True)
    table = validate_observations(table, source="synthetic")
    counts = table.groupby("site").size()
    sites["n_obs"] = sites["site"].map(counts).fillna(0).astype(int)
    out = copy.deepcopy(params)
    out.update(k_ev=K_BOLTZMANN_EV, seed=int(seed), site_effects=effects, sites=sites,
               site_years=SITE_YEARS)
    return Observations(table=table, synthetic=True), out


def merge_truth(truth: dict | None) -> dict:
    """``DEFAULT_TRUTH`` with the entries of ``truth`` replaced; refuses unknown names."""
    params = copy.deepcopy(DEFAULT_TRUTH)
    for key, value in (truth or {}).items():
        if key not in params:
            raise DataError(None, None, "truth", f"unknown truth parameter '{key}'",
                            f"use {', '.join(DEFAULT_TRUTH)}")
        if key in ("E", "lnR"):
            for cls, by_season in value.items():
                _check_class(cls)
                for season, v in by_season.items():
                    if season not in SEASONS:
                        raise DataError(None, None, "truth", f"unknown season '{season}' in {key}",
                                        f"use {', '.join(SEASONS)}")
                    params[key][cls][season] = float(v)
        elif key == "sigma":
            for cls, v in value.items():
                _check_class(cls)
                params[key][cls] = float(v)
        else:
            params[key] = float(value)
    if not -1.0 < params["rho"] < 1.0:
        raise DataError(None, None, "truth", f"rho = {params['rho']} is not in (-1, 1)",
                        "give a correlation strictly between -1 and 1")
    return params


def truth_table(truth: dict) -> pd.DataFrame:
    """Class × season parameters of a truth dict, tidy: flux_class, season, E, lnR, sigma."""
    rows = [{"flux_class": c, "season": s, "E": truth["E"][c][s], "lnR": truth["lnR"][c][s],
             "sigma": truth["sigma"][c]} for c in truth["E"] for s in truth["E"][c]]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- pieces
def _check_class(cls: str) -> None:
    if cls not in FLUX_CLASSES:
        raise DataError(None, None, "truth", f"unknown flux class '{cls}'",
                        f"the simulator has {', '.join(FLUX_CLASSES)}")


def _draw_sites(rng: np.random.Generator) -> pd.DataFrame:
    n = len(SITE_DESIGN)
    sites = pd.DataFrame(SITE_DESIGN, columns=["site", "method", "flux_class", "span_years"])
    sites["ecosystem"] = sites["flux_class"].map(_ECOSYSTEM)
    sites["latitude"] = np.round(rng.uniform(*LAT_RANGE, n), 4)
    sites["longitude"] = np.round(rng.uniform(*LON_RANGE, n), 4)
    sites["temp_mean_c"] = rng.uniform(1.0, 4.5, n)
    sites["temp_half_range_c"] = rng.uniform(7.0, 10.5, n)
    sites["coldest_doy"] = rng.uniform(10.0, 30.0, n)
    continuous = sites["span_years"].notna().to_numpy()
    start_year = rng.integers(2010, 2017, n)
    start_month = np.where(rng.random(n) < 0.5, 1, 7)
    campaign_start = pd.Timestamp("2012-01-01") + pd.to_timedelta(rng.integers(0, 7 * 365, n), "D")
    first = pd.to_datetime(pd.DataFrame({"year": start_year, "month": start_month, "day": 1}))
    sites["first"] = np.where(continuous, first, campaign_start).astype("datetime64[ns]")
    span_days = np.where(continuous, np.round(sites["span_years"].fillna(0) * DAYS_PER_YEAR),
                         rng.integers(330, 401, n)).astype(int)
    sites["last"] = sites["first"] + pd.to_timedelta(span_days - 1, "D")
    # static chambers: site-specific sampling intervals (days) in and outside May–Sep
    sites["interval_growing"] = rng.uniform(7.0, 14.0, n)
    sites["interval_other"] = rng.uniform(14.0, 31.0, n)
    return sites


def _draw_dates(sites: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Candidate rows: every day of continuous records, sparse single days of static campaigns."""
    parts = []
    for s in sites.itertuples():
        if s.method == "static_chamber":
            dates, day = [], s.first
            while day <= s.last:
                dates.append(day)
                step = s.interval_growing if 5 <= day.month <= 9 else s.interval_other
                day = day + pd.Timedelta(days=max(1, int(round(step + rng.uniform(-2, 2)))))
            dates = pd.DatetimeIndex(dates)
            n_sub = np.ones(len(dates), dtype=int)
        else:
            dates = pd.date_range(s.first, s.last, freq="D")
            # valid sub-daily records averaged: half-hours (eddy covariance), hours (autochamber)
            most = 48 if s.method == "eddy_covariance" else 24
            n_sub = rng.integers(most // 2, most + 1, len(dates))
        parts.append(pd.DataFrame({"site": s.site, "date": dates, "days": 1, "n_sub": n_sub,
                                   "ecosystem": s.ecosystem, "method": s.method,
                                   "latitude": s.latitude, "longitude": s.longitude}))
    return pd.concat(parts, ignore_index=True)


def _draw_soil_temperature(sites: pd.DataFrame, frame: pd.DataFrame,
                           rng: np.random.Generator) -> np.ndarray:
    """Annual cycle + AR(1) anomalies, generated daily over each record, read at its rows' dates."""
    phi, sd = 0.85, 1.2
    out = np.empty(len(frame))
    for s in sites.itertuples():
        days = pd.date_range(s.first, s.last, freq="D")
        doy = days.day_of_year.to_numpy()
        cycle = s.temp_mean_c - s.temp_half_range_c * np.cos(2 * np.pi * (doy - s.coldest_doy) / DAYS_PER_YEAR)
        shocks = rng.standard_normal(len(days)) * sd * np.sqrt(1 - phi**2)
        anomaly = np.empty(len(days))
        anomaly[0] = rng.standard_normal() * sd
        for i in range(1, len(days)):  # short loop per site (≤ 1,300 days)
            anomaly[i] = phi * anomaly[i - 1] + shocks[i]
        daily = pd.Series(cycle + anomaly, index=days)
        rows = np.flatnonzero(frame["site"].to_numpy() == s.site)
        out[rows] = np.round(daily.loc[frame["date"].to_numpy()[rows]].to_numpy(), 2)
    return out


def _draw_coverage(sites: pd.DataFrame, frame: pd.DataFrame, rng: np.random.Generator,
                   n_obs_target: int) -> np.ndarray:
    """Which candidate rows are observed: all static-chamber days, a share of continuous days."""
    static = (frame["method"] == "static_chamber").to_numpy()
    n_static = int(static.sum())
    continuous_sites = sites.loc[sites["method"] != "static_chamber", "site"].tolist()
    n_candidates = int((~static).sum())
    n_keep = int(n_obs_target) - n_static
    low = 30 * len(continuous_sites)
    if not low <= n_keep <= n_candidates:
        raise DataError(None, None, "n_obs_target", f"n_obs_target = {n_obs_target} cannot be met",
                        f"give {n_static + low}…{n_static + n_candidates} "
                        f"({n_static} static-chamber rows are always kept)")
    # Gap score: a block-smoothed standard normal (unit sd), lowered outside the growing season.
    noise = rng.standard_normal(len(frame))
    score = (pd.Series(noise).groupby(frame["site"].to_numpy())
             .transform(lambda v: v.rolling(_GAP_BLOCK_DAYS, center=True, min_periods=1).mean())
             .to_numpy() * np.sqrt(_GAP_BLOCK_DAYS))
    score -= _WINTER_GAP_PENALTY * (frame["season"] != "growing").to_numpy()

    # Same coverage share at every continuous site; the largest remainders make the total exact.
    sizes = frame.loc[~static].groupby("site").size().reindex(continuous_sites)
    quota = sizes.to_numpy() * n_keep / n_candidates
    take = np.floor(quota).astype(int)
    extra = n_keep - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:extra]] += 1

    keep = static.copy()
    site_col = frame["site"].to_numpy()
    for site, k in zip(continuous_sites, take):
        rows = np.flatnonzero(site_col == site)
        keep[rows[np.argsort(-score[rows], kind="stable")[:k]]] = True
    return keep


def _draw_site_effects(sites: pd.DataFrame, params: dict, rng: np.random.Generator) -> pd.DataFrame:
    """ε_E, ε_R per site × season; a site's two seasons correlate with ``rho``."""
    n = len(sites)
    z = rng.standard_normal((2, n, len(SEASONS)))  # (E or R, site, season)
    rho = params["rho"]
    mixed = z.copy()
    mixed[..., 1] = rho * z[..., 0] + np.sqrt(1 - rho**2) * z[..., 1]
    eps_e, eps_r = params["tau_E"] * mixed[0], params["tau_R"] * mixed[1]
    return pd.DataFrame({
        "site": np.repeat(sites["site"].to_numpy(), len(SEASONS)),
        "flux_class": np.repeat(sites["flux_class"].to_numpy(), len(SEASONS)),
        "season": np.tile(SEASONS, n),
        "eps_E": eps_e.ravel(),
        "eps_R": eps_r.ravel(),
    })


def _flux(frame: pd.DataFrame, sites: pd.DataFrame, effects: pd.DataFrame, params: dict,
          z_noise: np.ndarray) -> np.ndarray:
    """Model M1: ln|F| = (E_cs + ε_E)·x + lnR_cs + ε_R + σ_c·z; sign by flux class."""
    cls = frame["site"].map(sites.set_index("site")["flux_class"]).to_numpy()
    season = frame["season"].astype(str).to_numpy()
    key = pd.MultiIndex.from_arrays([frame["site"].to_numpy(), season])
    eff = effects.set_index(["site", "season"]).reindex(key)
    e_cs = np.array([params["E"][c][s] for c, s in zip(cls, season)])
    lnr_cs = np.array([params["lnR"][c][s] for c, s in zip(cls, season)])
    sigma = np.array([params["sigma"][c] for c in cls])
    sign = np.array([_SIGN[c] for c in cls])
    x = arrhenius_x(frame["soil_temp_c"].to_numpy(), params["t_ref_c"])
    log_abs = ((e_cs + eff["eps_E"].to_numpy()) * x + lnr_cs + eff["eps_R"].to_numpy()
               + sigma * z_noise)
    return sign * np.exp(log_abs)
