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
* Residuals ``e`` (truth ``ar1``, ρ_c per flux class, default 0 = independent): within each
  site × season series — one per site and season, spanning all years, as the model's
  site × class × season groups do (every simulated site has one flux class) — the residuals at
  dates t_1 < t_2 < … are a stationary Gaussian AR(1) in continuous time,
  ``corr(e_i, e_j) = ρ_c^|t_i − t_j|`` (days), ``var(e) = σ_c²`` (every period is one day long):
  ``e_1 = σ_c z_1``, ``e_i = ρ_c^Δ_i e_{i−1} + σ_c √(1 − ρ_c^{2Δ_i}) z_i`` with Δ_i the gap in days
  and z the standardised noise. The series runs over every candidate day, and the observed days
  are a subset of it (a subset of this process is the same process at those dates); across the
  other season the gap is months long, so ρ^Δ all but restarts the series.

Size (``n_sites``, ``years``; the defaults give the design above, unchanged):

* ``n_sites = N`` cycles the design list: site i has the method, flux class and record span of
  design entry i mod 27, and sites are numbered per kind with at least as many digits as N has
  (``SYN-EC0001`` … for N = 2,500), so the names stay unique.
* ``years`` is the mean span of the design's continuous records (2.5 years as listed above): each
  span is scaled by ``years / 2.5``, keeping their ratios (a last, partial cycle of the design can
  move the realised mean a little). Static-chamber campaigns stay about a year long.
* ``n_obs_target = None`` keeps every continuous-record day whose gap score clears a fixed
  threshold, chosen so that about two thirds of the days are kept — the share the default target
  of 6,500 rows keeps on the default design. The row count then grows in proportion to the
  continuous site-years (about 1 M rows for 2,500 sites with ``years=4``); an integer target is
  met exactly, as before, by giving every continuous site the same share.

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
    # day-to-day residual autocorrelation ρ_c; 0 keeps the residuals independent
    "ar1": {"wetland_emission": 0.0, "grassland_emission": 0.0, "grassland_uptake": 0.0},
    # effect of the water table (``water_table=True``, column wtd_m) on E (eV per m) and lnR (per m)
    "beta_E": {"wetland_emission": 0.0, "grassland_emission": 0.0, "grassland_uptake": 0.0},
    "beta_R": {"wetland_emission": 0.0, "grassland_emission": 0.0, "grassland_uptake": 0.0},
    "tau_E": 0.2,
    "tau_R": 0.5,
    "rho": 0.0,
    "t_ref_c": T_REF_C,
}
_PER_CLASS = ("sigma", "ar1", "beta_E", "beta_R")

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
_SPANS = [y for *_, y in SITE_DESIGN if y is not None]
MEAN_SPAN_YEARS = sum(_SPANS) / len(_SPANS)  # 2.5

LAT_RANGE, LON_RANGE = (30.0, 38.0), (90.0, 103.0)
_GAP_BLOCK_DAYS = 15  # gaps in continuous records come in blocks of about two weeks
_WINTER_GAP_PENALTY = 0.5  # in sd of the gap score: fewer valid days outside May–Sep
# Gap score (about unit sd) above which a day is kept when no row target is given: keeps two thirds
# of continuous days (42 % of them in May–Sep), the share 6,500 rows keep on the default design.
_GAP_THRESHOLD = -0.73


def simulate_observations(seed: int = 0, *, n_obs_target: int | None = 6500,
                          truth: dict | None = None, n_sites: int = len(SITE_DESIGN),
                          years: float | None = None,
                          water_table: bool = False) -> tuple[Observations, dict]:
    """A synthetic canonical table and the truth it was drawn from.

    The table holds exactly ``n_obs_target`` rows, or, with ``n_obs_target=None``, every day the
    gap model keeps (see the module docstring, which also describes ``n_sites`` and ``years``).
    ``truth`` overrides entries of ``DEFAULT_TRUTH`` (nested dicts merge per class and season).
    The returned truth holds ``E`` and ``lnR`` (flux_class → season → value), ``sigma`` and
    ``ar1`` (flux_class → value), ``tau_E``, ``tau_R`` (one value, or flux_class → value when the
    override gave a dict: a site spread per class), ``rho``, ``t_ref_c``, ``k_ev``, ``seed``,
    ``site_effects`` (DataFrame: site, flux_class, season, eps_E, eps_R), ``sites`` (DataFrame of
    the site design) and ``site_years``.

    ``water_table``: a ``wtd_m`` column too (m, positive above the surface; see
    ``_draw_water_table``), moderating E and lnR by ``beta_E``, ``beta_R`` per class:
    ln|F| gains β_E,c·z̃·x + β_R,c·z̃, z̃ = wtd_m less its mean over the class's rows in the table
    (``covariate_centre`` in the truth), as ``tpflux.fit_ea(covariate="wtd_m")`` models it.
    """
    params = merge_truth(truth)
    design = _site_design(n_sites, years)
    # the water table's stream is the seventh: spawned children do not depend on how many are spawned
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)]
    rng_sites, rng_dates, rng_temp, rng_gaps, rng_effects, rng_noise, rng_water = streams

    sites = _draw_sites(design, rng_sites)
    frame = _draw_dates(sites, rng_dates)
    frame["soil_temp_c"] = _draw_soil_temperature(sites, frame, rng_temp)
    frame["season"] = assign_seasons(frame, "julian")
    keep = _draw_coverage(sites, frame, rng_gaps, n_obs_target)

    effects = _draw_site_effects(sites, params, rng_effects)
    z_noise = rng_noise.standard_normal(len(frame))  # drawn for every candidate day: CRN
    columns = ["site", "date", "days", "flux", "soil_temp_c", "ecosystem", "method", "latitude",
               "longitude", "n_sub"]
    centre = {}
    if water_table:
        frame["wtd_m"] = _draw_water_table(sites, frame, rng_water)
        cls = sites["flux_class"].to_numpy()[frame["site_index"].to_numpy()]
        centre = pd.Series(frame["wtd_m"].to_numpy()[keep]).groupby(cls[keep]).mean()
        columns.append("wtd_m")
    frame["flux"] = _flux(frame, sites, effects, params, z_noise, centre)

    table = frame.loc[keep, columns].reset_index(drop=True)
    table = validate_observations(table, source="synthetic")
    counts = table.groupby("site").size()
    sites["n_obs"] = sites["site"].map(counts).fillna(0).astype(int)
    out = copy.deepcopy(params)
    out.update(k_ev=K_BOLTZMANN_EV, seed=int(seed), site_effects=effects, sites=sites,
               site_years=float(sites["span_years"].sum()),
               covariate_centre={str(k): float(v) for k, v in dict(centre).items()})
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
        elif key in ("tau_E", "tau_R") and isinstance(value, dict):
            # a spread per flux class (classes not named keep the default)
            for cls in value:
                _check_class(cls)
            params[key] = {c: float(value.get(c, params[key])) for c in FLUX_CLASSES}
        elif key in _PER_CLASS:
            for cls, v in value.items():
                _check_class(cls)
                params[key][cls] = float(v)
        else:
            params[key] = float(value)
    if not -1.0 < params["rho"] < 1.0:
        raise DataError(None, None, "truth", f"rho = {params['rho']} is not in (-1, 1)",
                        "give a correlation strictly between -1 and 1")
    for cls, r in params["ar1"].items():
        # ρ^Δ must be a correlation for every gap Δ: continuous-time AR(1) needs 0 ≤ ρ < 1
        if not 0.0 <= r < 1.0:
            raise DataError(None, None, "truth", f"ar1 = {r} for {cls} is not in [0, 1)",
                            "give a day-to-day autocorrelation from 0 up to (not including) 1")
    return params


def truth_table(truth: dict) -> pd.DataFrame:
    """Class × season parameters of a truth dict, tidy: flux_class, season, E, lnR, sigma, ar1."""
    rows = [{"flux_class": c, "season": s, "E": truth["E"][c][s], "lnR": truth["lnR"][c][s],
             "sigma": truth["sigma"][c], "ar1": truth["ar1"][c]}
            for c in truth["E"] for s in truth["E"][c]]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- pieces
def _check_class(cls: str) -> None:
    if cls not in FLUX_CLASSES:
        raise DataError(None, None, "truth", f"unknown flux class '{cls}'",
                        f"the simulator has {', '.join(FLUX_CLASSES)}")


def _site_design(n_sites: int, years: float | None) -> pd.DataFrame:
    """Site, method, flux class and record span: ``SITE_DESIGN`` cycled to ``n_sites`` sites."""
    if int(n_sites) != n_sites or n_sites < 1:
        raise DataError(None, None, "n_sites", f"n_sites = {n_sites} is not a positive whole number",
                        f"give a number of sites ≥ 1 (the design has {len(SITE_DESIGN)})")
    if years is not None and not years > 0:
        raise DataError(None, None, "years", f"years = {years} is not positive",
                        f"give the mean record span in years (the design's is {MEAN_SPAN_YEARS:g})")
    design = pd.DataFrame(SITE_DESIGN, columns=["site", "method", "flux_class", "span_years"])
    n_sites = int(n_sites)
    if n_sites != len(SITE_DESIGN):
        design = design.iloc[np.arange(n_sites) % len(SITE_DESIGN)].reset_index(drop=True)
        kind = design["site"].str[:len("SYN-EC")]
        number = (design.groupby(kind).cumcount() + 1).astype(str)
        design["site"] = kind + number.str.zfill(max(2, len(str(n_sites))))
    if years is not None:
        design["span_years"] = design["span_years"] * (years / MEAN_SPAN_YEARS)
    return design


def _draw_sites(design: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = len(design)
    sites = design.copy()
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


def _span_days(sites: pd.DataFrame) -> np.ndarray:
    return ((sites["last"] - sites["first"]).dt.days + 1).to_numpy()


def _draw_dates(sites: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Candidate rows: every day of continuous records, sparse single days of static campaigns.

    ``site_index`` (row of ``sites``) and ``day_index`` (days since the site's first day) locate
    each row in the per-site arrays the later steps build.
    """
    first = sites["first"].to_numpy().astype("datetime64[D]")
    span = _span_days(sites)
    offsets, n_sub = [], []
    for i, s in enumerate(sites.itertuples()):
        if s.method == "static_chamber":
            months = (first[i] + np.arange(span[i])).astype("datetime64[M]").astype(int) % 12 + 1
            days, day = [], 0
            while day < span[i]:
                days.append(day)
                step = s.interval_growing if 5 <= months[day] <= 9 else s.interval_other
                day += max(1, int(round(step + rng.uniform(-2, 2))))
            offsets.append(np.asarray(days, dtype=np.int64))
            n_sub.append(np.ones(len(days), dtype=int))
        else:
            offsets.append(np.arange(span[i]))
            # valid sub-daily records averaged: half-hours (eddy covariance), hours (autochamber)
            most = 48 if s.method == "eddy_covariance" else 24
            n_sub.append(rng.integers(most // 2, most + 1, span[i]))
    site_index = np.repeat(np.arange(len(sites)), [len(o) for o in offsets])
    day_index = np.concatenate(offsets)

    def per_row(column: str) -> np.ndarray:
        return sites[column].to_numpy()[site_index]

    return pd.DataFrame({"site": per_row("site"),
                         "date": (first[site_index] + day_index).astype("datetime64[ns]"),
                         "days": 1, "n_sub": np.concatenate(n_sub), "ecosystem": per_row("ecosystem"),
                         "method": per_row("method"), "latitude": per_row("latitude"),
                         "longitude": per_row("longitude"), "site_index": site_index,
                         "day_index": day_index})


def _ar1_recursion(coef, innov: np.ndarray) -> np.ndarray:
    """``x_0 = innov_0``, ``x_k = coef_k · x_{k−1} + innov_k`` along axis 1, one series per row.

    The loop runs over steps only, each step vectorised over all series (rows past a series' end
    are padding and never read).
    """
    coef = np.broadcast_to(coef, innov.shape)
    out = np.empty_like(innov)
    out[:, 0] = innov[:, 0]
    for k in range(1, innov.shape[1]):
        out[:, k] = coef[:, k] * out[:, k - 1] + innov[:, k]
    return out


def _draw_soil_temperature(sites: pd.DataFrame, frame: pd.DataFrame,
                           rng: np.random.Generator) -> np.ndarray:
    """Annual cycle + AR(1) anomalies, generated daily over each record, read at its rows' dates."""
    phi, sd = 0.85, 1.2
    span = _span_days(sites)
    # per site, in site order: one shock per day (the first is unused), then the first anomaly
    z = rng.standard_normal(int((span + 1).sum()))
    last = np.cumsum(span + 1) - 1
    is_shock = np.ones(len(z), dtype=bool)
    is_shock[last] = False
    innov = np.zeros((len(sites), span.max()))
    innov[np.arange(span.max()) < span[:, None]] = z[is_shock] * sd * np.sqrt(1 - phi**2)
    innov[:, 0] = z[last] * sd
    anomaly = _ar1_recursion(phi, innov)

    i, day = frame["site_index"].to_numpy(), frame["day_index"].to_numpy()
    doy = frame["date"].dt.day_of_year.to_numpy()
    cycle = (sites["temp_mean_c"].to_numpy()[i] - sites["temp_half_range_c"].to_numpy()[i]
             * np.cos(2 * np.pi * (doy - sites["coldest_doy"].to_numpy()[i]) / DAYS_PER_YEAR))
    return np.round(cycle + anomaly[i, day], 2)


def _draw_coverage(sites: pd.DataFrame, frame: pd.DataFrame, rng: np.random.Generator,
                   n_obs_target: int | None) -> np.ndarray:
    """Which candidate rows are observed: all static-chamber days, a share of continuous days."""
    static = (frame["method"] == "static_chamber").to_numpy()
    site_index = frame["site_index"].to_numpy()
    n_static = int(static.sum())
    continuous_sites = np.flatnonzero((sites["method"] != "static_chamber").to_numpy())
    n_candidates = int((~static).sum())
    if n_obs_target is not None:
        n_keep = int(n_obs_target) - n_static
        low = 30 * len(continuous_sites)
        if not low <= n_keep <= n_candidates:
            raise DataError(None, None, "n_obs_target", f"n_obs_target = {n_obs_target} cannot be met",
                            f"give {n_static + low}…{n_static + n_candidates} "
                            f"({n_static} static-chamber rows are always kept), or None to keep "
                            "every day the gap model keeps")
    # Gap score: a block-smoothed standard normal (unit sd), lowered outside the growing season.
    noise = rng.standard_normal(len(frame))
    score = (pd.Series(noise).groupby(site_index)  # rows are grouped by site, in site order
             .rolling(_GAP_BLOCK_DAYS, center=True, min_periods=1).mean()
             .to_numpy() * np.sqrt(_GAP_BLOCK_DAYS))
    score -= _WINTER_GAP_PENALTY * (frame["season"] != "growing").to_numpy()
    if n_obs_target is None:
        return static | (score > _GAP_THRESHOLD)

    # Same coverage share at every continuous site; the largest remainders make the total exact.
    sizes = np.bincount(site_index[~static], minlength=len(sites))[continuous_sites]
    quota = sizes * n_keep / n_candidates
    take = np.floor(quota).astype(int)
    extra = n_keep - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:extra]] += 1

    # the `take` best-scoring days of each continuous site
    rows = np.flatnonzero(~static)
    order = rows[np.lexsort((-score[rows], site_index[rows]))]
    group_start = np.r_[0, np.cumsum(sizes)[:-1]]
    rank = np.arange(len(order)) - np.repeat(group_start, sizes)
    quota_of = np.zeros(len(sites), dtype=int)
    quota_of[continuous_sites] = take
    keep = static.copy()
    keep[order[rank < quota_of[site_index[order]]]] = True
    return keep


def _draw_site_effects(sites: pd.DataFrame, params: dict, rng: np.random.Generator) -> pd.DataFrame:
    """ε_E, ε_R per site × season; a site's two seasons correlate with ``rho``."""
    n = len(sites)
    z = rng.standard_normal((2, n, len(SEASONS)))  # (E or R, site, season)
    rho = params["rho"]
    mixed = z.copy()
    mixed[..., 1] = rho * z[..., 0] + np.sqrt(1 - rho**2) * z[..., 1]
    tau_e, tau_r = (np.array([t[c] for c in sites["flux_class"]])[:, None] if isinstance(t, dict)
                    else t for t in (params["tau_E"], params["tau_R"]))
    eps_e, eps_r = tau_e * mixed[0], tau_r * mixed[1]
    return pd.DataFrame({
        "site": np.repeat(sites["site"].to_numpy(), len(SEASONS)),
        "flux_class": np.repeat(sites["flux_class"].to_numpy(), len(SEASONS)),
        "season": np.tile(SEASONS, n),
        "eps_E": eps_e.ravel(),
        "eps_R": eps_r.ravel(),
    })


def _ar1_residuals(series: np.ndarray, day: np.ndarray, rho: np.ndarray,
                   z: np.ndarray) -> np.ndarray:
    """Unit-variance continuous-time AR(1) along each series (rows in date order within a series):
    ``u_1 = z_1``, ``u_i = ρ^Δ u_{i−1} + √(1 − ρ^{2Δ}) z_i``, Δ the gap in days."""
    order = np.argsort(series, kind="stable")
    key, t = series[order], day[order]
    start = np.r_[True, key[1:] != key[:-1]]
    gap = np.where(start, 0, np.diff(t, prepend=t[0]))  # a new series has no predecessor
    coef = np.where(start, 0.0, rho[order] ** gap)
    first = np.flatnonzero(start)
    length = np.diff(np.r_[first, len(key)])
    row = np.repeat(np.arange(len(first)), length)
    step = np.arange(len(key)) - np.repeat(first, length)
    shape = (len(first), int(length.max()))
    coefs, innov = np.zeros(shape), np.zeros(shape)
    coefs[row, step] = coef
    innov[row, step] = np.sqrt(1 - coef**2) * z[order]
    u = np.empty_like(z)
    u[order] = _ar1_recursion(coefs, innov)[row, step]
    return u


def _draw_water_table(sites: pd.DataFrame, frame: pd.DataFrame,
                      rng: np.random.Generator) -> np.ndarray:
    """Daily water-table position (m, positive above the surface): a site mean from −0.3 to
    +0.1 m, highest at snowmelt (half-range 0.1 m, peak in May) and AR(1) anomalies (day-to-day
    0.9, sd 0.05 m)."""
    n = len(sites)
    mean = rng.uniform(-0.3, 0.1, n)
    i = frame["site_index"].to_numpy()
    doy = frame["date"].dt.day_of_year.to_numpy()
    day = (frame["date"] - frame["date"].min()).dt.days.to_numpy()
    n_days = int(day.max()) + 1
    innov = 0.05 * rng.standard_normal((n, n_days))
    innov[:, 1:] *= np.sqrt(1 - 0.9 ** 2)  # stationary from the first day
    anomaly = _ar1_recursion(0.9, innov)
    return np.round(mean[i] + 0.1 * np.cos(2 * np.pi * (doy - 135) / DAYS_PER_YEAR) + anomaly[i, day], 3)


def _flux(frame: pd.DataFrame, sites: pd.DataFrame, effects: pd.DataFrame, params: dict,
          z_noise: np.ndarray, covariate_centre=None) -> np.ndarray:
    """Model M1: ln|F| = (E_cs + ε_E)·x + lnR_cs + ε_R + σ_c·u; sign by flux class; u = z_noise
    when the residuals are independent, else their AR(1) series. With the water table
    (``covariate_centre``: its mean per class) ln|F| gains β_E,c·z̃·x + β_R,c·z̃."""
    i = frame["site_index"].to_numpy()
    c = pd.Categorical(sites["flux_class"], categories=FLUX_CLASSES).codes[i]
    s = pd.Categorical(frame["season"].astype(str), categories=SEASONS).codes
    by_cell = {k: np.array([[params[k][cls][sea] for sea in SEASONS] for cls in FLUX_CLASSES])
               for k in ("E", "lnR")}
    sigma = np.array([params["sigma"][cls] for cls in FLUX_CLASSES])[c]
    sign = np.array([_SIGN[cls] for cls in FLUX_CLASSES])[c]
    rho = np.array([params["ar1"][cls] for cls in FLUX_CLASSES])[c]
    u = z_noise
    if rho.any():
        day = frame["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
        u = _ar1_residuals(i * len(SEASONS) + s, day, rho, z_noise)
    effect = i * len(SEASONS) + s  # effects rows: site-major, seasons in SEASONS order
    x = arrhenius_x(frame["soil_temp_c"].to_numpy(), params["t_ref_c"])
    log_abs = ((by_cell["E"][c, s] + effects["eps_E"].to_numpy()[effect]) * x + by_cell["lnR"][c, s]
               + effects["eps_R"].to_numpy()[effect] + sigma * u)
    if covariate_centre is not None and len(covariate_centre):
        classes = np.asarray(FLUX_CLASSES)[c]
        z = frame["wtd_m"].to_numpy() - pd.Series(classes).map(covariate_centre).fillna(0.0).to_numpy()
        beta_E = np.array([params["beta_E"][cls] for cls in FLUX_CLASSES])[c]
        beta_R = np.array([params["beta_R"][cls] for cls in FLUX_CLASSES])[c]
        log_abs = log_abs + beta_E * z * x + beta_R * z
    return sign * np.exp(log_abs)
