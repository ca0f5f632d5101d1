"""Warming-scenario engine: soil temperature + ΔT, two modes side by side, totals with intervals.

Modes (DESIGN.md, Projections):

``rf``  (RF-direct, the seed study's method)
    Each class forest evaluated at Ts + ΔT. A forest cannot extrapolate: beyond the training
    soil-temperature range it returns the value at the edge, so rows whose Ts + ΔT leave that
    range are counted and reported.
``arrhenius``  (posterior scaling)
    The forest's control prediction × exp(E · (1/(k·T) − 1/(k·(T + ΔT)))), T in K, with E the
    activation energy of the row's flux class and season drawn from the M1 posterior.

Uncertainty: draw d uses tree ``d mod n_trees`` of each class forest and posterior draw d of E
(the same draw for all classes, so the posterior's correlations are kept), so the spread of the
totals combines forest and E uncertainty. The same draw indices are used in both modes and all
scenarios: changes versus control are paired.

Aggregation periods: ``annual``; ``growing`` / ``non-growing`` (julian scheme); ``spring_thaw`` /
``autumn_freeze`` (freeze-thaw scheme). Periods and the season that picks E are those of the
control (ΔT = 0) temperatures, so every scenario is compared on the same days. E follows each
day's season under the posterior's own scheme.

Units: flux nmol CH4 m⁻² s⁻¹ × 86 400 s d⁻¹ × M(CH4) g mol⁻¹ × 10⁻⁹ mol nmol⁻¹ = g CH4 m⁻² d⁻¹, with
M(CH4) = 16.04246 g mol⁻¹ and the other constants from data.constants.

Site totals (g CH4 m⁻² yr⁻¹) come from the site's day-of-year climatology, never from a short record
scaled to a year. Each day of year (29 February shares 28 February's slot) takes the mean of the
site's observations on it, over however many years observed it. A julian season of a site is
*complete* when at least ``MIN_SEASON_COVERAGE`` (80 %) of its days of year are covered, i.e. lie
within ``COVERAGE_REACH_DAYS`` (3) days of an observation in some year (weekly chamber visits
cover their season); the unobserved days of year of a complete season are filled with that
season's mean observed day (the stated climatological fill). A growing or non-growing total needs
its own season complete; the annual and the freeze-thaw transition totals need both. Otherwise the
total is withheld (NaN in ``total``; ``complete`` False, ``coverage`` the share of days of year
covered), never extrapolated: a 42-day summer record has no annual total. A climatological year is
365 days of year scaled to 365.25 days, so growing + non-growing = annual at a complete site.

Grid totals are Tg CH4 yr⁻¹: Σ cells of (Σ valid days of flux × ecosystem fraction) / the cell's
years of valid record × cell area / 10¹². A cell-day without soil temperature is skipped and
counted, never a zero; a land cell without any valid day is left out of the totals and counted
(``cells_without_valid_day``), with ``valid_days`` per cell in the maps. Each cell's valid days
are its record, judged by the sites' rule (``season_coverage``): a period whose seasons they do
not cover has that cell's total withheld (NaN in the maps, nothing in the regional totals), never
scaled up; ``cells_in_total``, ``cells_withheld`` and ``area_share_withheld`` per period say how
much. A cube whose time axis covers less than ``MIN_SEASON_COVERAGE`` of a season's days of year
has the periods needing that season withheld everywhere (``grid_coverage``).

Summary rows (``summarise``): ``P_increase`` is, in every row (class or ``*_net``), the probability
over paired draws that the *signed* total (emission positive, uptake negative) is larger than at
control, i.e. P(change_vs_control > 0): more net emission to the atmosphere. For an uptake class
it is the probability that the uptake weakens. Honesty columns (``withhold``,
``flag_sign_disagreement``): a class forest without cross-site skill (pooled leave-one-site-out
NSE ≤ 0) has its RF-direct rows withheld unless allowed; posterior-scaling rows stay and carry
``forest_skill``; where the two modes' paired changes differ in sign, ``sign_disagreement`` says
whether their means or their whole intervals do.

Pure: arrays and tables in, arrays and tables out; no I/O, no printing.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import xarray as xr

from data.constants import (CH4_MOLAR_MASS, DAYS_PER_YEAR, G_PER_TG, NMOL_PER_MOL, SECONDS_PER_DAY,
                            fold_change, inverse_kt)
from data.seasons import assign_seasons
from models.conventions import CI_QUANTILES
from models.forest import ClassForest, design_matrix

# nmol CH4 m⁻² s⁻¹ → g CH4 m⁻² d⁻¹
G_M2_DAY_PER_FLUX = CH4_MOLAR_MASS / NMOL_PER_MOL * SECONDS_PER_DAY

DEFAULT_SCENARIOS = (0.0, 0.5, 1.0, 1.5, 2.0)
# A season's total needs this share of its days of year covered (a stated, not a tuned, choice:
# the fill then stands for at most a fifth of the season).
MIN_SEASON_COVERAGE = 0.8
DOY_SLOTS = 365  # days of a climatological year; 29 February joins 28 February
# A day of year counts as covered within this many days of an observation: weekly chamber visits
# cover their season, a summer campaign does not cover the winter.
COVERAGE_REACH_DAYS = 3
# Periods and the julian seasons each needs complete.
PERIOD_SEASONS = {"annual": ("growing", "non-growing"), "growing": ("growing",),
                  "non-growing": ("non-growing",), "spring_thaw": ("growing", "non-growing"),
                  "autumn_freeze": ("growing", "non-growing")}
JULIAN_SEASONS = ("growing", "non-growing")
MODES = ("rf", "arrhenius")
PERIODS = ("annual", "growing", "non-growing", "spring_thaw", "autumn_freeze")
STATS = ("mean", "ci_low", "ci_high")
SITE_UNIT = "g CH4 m-2 yr-1"
REGION_UNIT = "Tg CH4 yr-1"
MAP_UNIT = "g CH4 m-2 yr-1"


def arrhenius_factor(E, temp_c, delta_c):
    """exp(E · (1/(k·T) − 1/(k·(T + ΔT)))) with T the soil temperature in K; E in eV."""
    temp_c = np.asarray(temp_c, dtype=float)
    return fold_change(E, temp_c, temp_c + delta_c)


def ecosystem_of(flux_class: str) -> str:
    return flux_class.rsplit("_", 1)[0]


# ---------------------------------------------------------------- posterior draws
@dataclasses.dataclass(frozen=True)
class EDraws:
    """Activation-energy draws ``E[draw, flux_class, season]`` (eV) and the posterior's scheme."""

    values: np.ndarray
    classes: tuple[str, ...]
    seasons: tuple[str, ...]
    scheme: str

    def for_rows(self, flux_class: str, season: np.ndarray) -> np.ndarray:
        """E per draw and row, shape (draws, rows); NaN where the class or season has no E."""
        n_draws = self.values.shape[0]
        if flux_class not in self.classes:
            return np.full((n_draws, len(season)), np.nan)
        table = self.values[:, self.classes.index(flux_class), :]
        idx = pd.Index(self.seasons).get_indexer(np.asarray(season, dtype=object))
        out = table[:, np.where(idx >= 0, idx, 0)]
        out[:, idx < 0] = np.nan
        return out


def missing_activation_energies(e_draws: EDraws, needed: dict[str, set[str]]) -> dict[str, str]:
    """Classes whose E is absent from the posterior for a season they need: {class: why}."""
    out = {}
    for cls, seasons in needed.items():
        if cls not in e_draws.classes:
            out[cls] = "not in the posterior"
            continue
        values = e_draws.values[:, e_draws.classes.index(cls), :]
        have = {s for k, s in enumerate(e_draws.seasons) if np.isfinite(values[:, k]).all()}
        lacking = sorted(set(seasons) - have)
        if lacking:
            out[cls] = f"posterior has no E for season {', '.join(lacking)}"
    return out


def draw_activation_energies(E: xr.DataArray, n_draws: int, seed: int, scheme: str) -> EDraws:
    """``n_draws`` joint draws of E from a (chain, draw, flux_class, season) posterior variable.

    Without replacement when the posterior holds enough draws, else with replacement.
    """
    stacked = E.stack(sample=("chain", "draw")).transpose("sample", "flux_class", "season")
    n_avail = stacked.sizes["sample"]
    rng = np.random.default_rng(seed)
    pick = rng.choice(n_avail, size=n_draws, replace=n_draws > n_avail)
    return EDraws(np.asarray(stacked.values[pick], dtype=float),
                  tuple(str(c) for c in E["flux_class"].values),
                  tuple(str(s) for s in E["season"].values), scheme)


# ---------------------------------------------------------------- engine
@dataclasses.dataclass
class Engine:
    """Forests + E draws + scenarios: evaluates per-draw fluxes for rows of one flux class."""

    forests: dict[str, ClassForest]
    scenarios: tuple[float, ...] = DEFAULT_SCENARIOS
    modes: tuple[str, ...] = MODES
    n_draws: int = 200
    e_draws: EDraws | None = None

    def __post_init__(self):
        scen = tuple(sorted({0.0, *(float(s) for s in self.scenarios)}))
        self.scenarios = scen  # the control (0 °C) is always included
        if "arrhenius" in self.modes and self.e_draws is None:
            raise ValueError("the arrhenius mode needs activation-energy draws")
        if self.e_draws is not None and self.e_draws.values.shape[0] != self.n_draws:
            raise ValueError("E draws and n_draws differ")

    @property
    def classes(self) -> tuple[str, ...]:
        """Classes projected: those with a forest (and, for arrhenius, with a posterior E)."""
        out = sorted(self.forests)
        if "arrhenius" in self.modes:
            out = [c for c in out if c in self.e_draws.classes]
        return tuple(out)

    @property
    def ecosystems(self) -> tuple[str, ...]:
        return tuple(sorted({ecosystem_of(c) for c in self.classes}))

    def tree_of_draw(self, flux_class: str) -> np.ndarray:
        return np.arange(self.n_draws) % self.forests[flux_class].n_trees

    def class_values(self, flux_class: str, frame: pd.DataFrame, season: np.ndarray | None
                     ) -> Iterator[tuple[int, int, np.ndarray, int]]:
        """Yield (scenario index, mode index, flux per draw and row (draws, rows), boolean mask of
        rows whose Ts + ΔT leaves the training temperature range) for every scenario and mode."""
        forest = self.forests[flux_class]
        temp = frame["soil_temp_c"].to_numpy(dtype=float)
        trees, pos = np.unique(self.tree_of_draw(flux_class), return_inverse=True)
        identity = trees.size == pos.size  # each tree used once, in order: no reindexing copy

        def per_draw(X):
            pred = forest.tree_predictions(X, trees)
            return pred if identity else pred[pos]

        control = per_draw(design_matrix(frame, forest.drivers))
        e_rows = (self.e_draws.for_rows(flux_class, season)
                  if "arrhenius" in self.modes else None)
        inv_kt = inverse_kt(temp)
        for s, delta in enumerate(self.scenarios):
            n_out = forest.out_of_range(temp, delta)
            for m, mode in enumerate(self.modes):
                if delta == 0.0:
                    yield s, m, control, n_out
                elif mode == "rf":
                    yield s, m, per_draw(design_matrix(frame, forest.drivers, delta)), n_out
                else:
                    # arrhenius_factor, written in place to spare (draws × rows) temporaries
                    values = e_rows * (inv_kt - inverse_kt(temp + delta))
                    np.exp(values, out=values)
                    values *= control
                    yield s, m, values, n_out


def period_masks(frame: pd.DataFrame) -> np.ndarray:
    """Boolean (rows, PERIODS) membership of each row in each aggregation period."""
    julian = np.asarray(assign_seasons(frame, "julian"), dtype=object)
    freeze = np.asarray(assign_seasons(frame, "freeze-thaw"), dtype=object)
    return np.column_stack([np.ones(len(frame), dtype=bool), julian == "growing",
                            julian == "non-growing", freeze == "spring_thaw",
                            freeze == "autumn_freeze"])


def posterior_seasons(frame: pd.DataFrame, scheme: str | None) -> np.ndarray | None:
    return None if scheme is None else np.asarray(assign_seasons(frame, scheme), dtype=object)


# ---------------------------------------------------------------- sites
def doy_slot(dates) -> np.ndarray:
    """Day-of-year slot 0…364 of each date, 29 February sharing 28 February's slot."""
    dates = pd.DatetimeIndex(pd.to_datetime(dates))
    leap_after = dates.is_leap_year & (dates.month > 2)
    return (dates.day_of_year.to_numpy() - 1 - leap_after.astype(int)
            - ((dates.month == 2) & (dates.day == 29)).astype(int))


def slot_seasons(latitude: float) -> np.ndarray:
    """Julian season of each day-of-year slot at a latitude (hemisphere)."""
    year = pd.DataFrame({"date": pd.date_range("2001-01-01", periods=DOY_SLOTS, freq="D"),
                         "latitude": latitude})
    return np.asarray(assign_seasons(year, "julian"), dtype=object)


@dataclasses.dataclass(frozen=True)
class Climatology:
    """How each observed day enters a site's climatological-year totals.

    ``day_weight[r]``: days of a climatological year that row r stands for (1 / observations on
    its day-of-year slot × the fill factor of its season × 365.25 / 365), summed over the days a
    multi-day row covers; ``coverage[site, period]``: the lowest share of days of year covered
    among the seasons the period needs (covered: within ``COVERAGE_REACH_DAYS`` of an observed
    one); ``complete = coverage ≥ min_coverage``.
    """

    day_weight: np.ndarray
    coverage: np.ndarray
    complete: np.ndarray


def season_coverage(observed: np.ndarray, seasons: np.ndarray) -> np.ndarray:
    """Coverage (places, PERIODS) of the module docstring's rule: per place (a row of
    ``observed``, its days of year with an observation, and of ``seasons``, the julian season of
    each slot), the lowest share of days of year covered among the seasons each period needs."""
    covered = observed.copy()
    for k in range(1, COVERAGE_REACH_DAYS + 1):  # the climatological year is circular
        covered |= np.roll(observed, k, axis=1) | np.roll(observed, -k, axis=1)
    cover = {name: (covered & (seasons == name)).sum(axis=1) / (seasons == name).sum(axis=1)
             for name in JULIAN_SEASONS}
    return np.column_stack([np.min([cover[s] for s in PERIOD_SEASONS[p]], axis=0)
                            for p in PERIODS])


def climatology(table: pd.DataFrame, site_code: np.ndarray, n_sites: int,
                min_coverage: float = MIN_SEASON_COVERAGE) -> Climatology:
    """The ``Climatology`` of each site (``site_code`` per row, 0…n_sites−1) of a table with
    ``date``, ``latitude`` and optionally ``days``; the rule is the module docstring's."""
    days = table["days"].to_numpy(dtype=np.int64) if "days" in table else np.ones(len(table), np.int64)
    days = np.maximum(days, 1)
    # one entry per day covered (a multi-day chamber mean covers each of its days)
    row = np.repeat(np.arange(len(table)), days)
    offset = np.arange(row.size) - np.repeat(np.cumsum(days) - days, days)
    date = pd.to_datetime(table["date"]).to_numpy()[row] + offset.astype("timedelta64[D]")
    slot = doy_slot(date)
    site = site_code[row]
    lat = table.groupby(site_code)["latitude"].first().reindex(range(n_sites)).to_numpy(dtype=float)
    seasons = np.stack([slot_seasons(la) for la in lat])  # (sites, slots)
    n_obs = np.zeros((n_sites, DOY_SLOTS))
    np.add.at(n_obs, (site, slot), 1.0)
    observed = n_obs > 0
    fill = np.zeros((n_sites, DOY_SLOTS))
    for name in JULIAN_SEASONS:
        member = seasons == name
        seen = (observed & member).sum(axis=1)
        # the season's unobserved days of year take the mean of its observed ones
        fill += member * (member.sum(axis=1) / np.maximum(seen, 1))[:, None]
    per_day = fill[site, slot] / n_obs[site, slot] * DAYS_PER_YEAR / DOY_SLOTS
    coverage = season_coverage(observed, seasons)
    return Climatology(np.bincount(row, weights=per_day, minlength=len(table)), coverage,
                       coverage >= min_coverage)


def project_sites(engine: Engine, table: pd.DataFrame,
                  min_coverage: float = MIN_SEASON_COVERAGE) -> xr.Dataset:
    """Per-site totals per draw: ``total`` (scenario_c, mode, flux_class, period, site, draw) in
    g CH4 m⁻² yr⁻¹ of the site's climatological year (NaN where the period's record is
    incomplete; see the module docstring), ``out_of_range`` site-days (scenario_c, flux_class,
    period, site), ``n_days`` observed (flux_class, period, site), and per (period, site) the
    ``coverage`` of days of year and whether the record is ``complete``.

    ``table`` is canonical with a ``flux_class`` column. Every row counts as an observed day of
    its site (also rows of classes without a forest, which add nothing to the totals). Net rows
    ``<ecosystem>_net`` sum the classes of each site's ecosystem.
    """
    table = table.reset_index(drop=True)
    sites = tuple(sorted(table["site"].astype(str).unique()))
    site_code = pd.Index(sites).get_indexer(table["site"].astype(str))
    days = table["days"].to_numpy(dtype=float) if "days" in table else np.ones(len(table))
    clim = climatology(table, site_code, len(sites), min_coverage)
    masks = period_masks(table)
    weight = (clim.day_weight * G_M2_DAY_PER_FLUX)[:, None] * masks * clim.complete[site_code]
    scheme = engine.e_draws.scheme if engine.e_draws is not None else None
    season = posterior_seasons(table, scheme)

    classes = engine.classes
    nets = tuple(f"{e}_net" for e in engine.ecosystems)
    labels = classes + nets
    S, M, P, N, D = (len(engine.scenarios), len(engine.modes), len(PERIODS), len(sites),
                     engine.n_draws)
    total = np.zeros((S, M, len(labels), P, N, D))
    out_of_range = np.zeros((S, len(labels), P, N), dtype=np.int64)
    n_days = np.zeros((len(labels), P, N))
    for c, cls in enumerate(classes):
        rows = np.flatnonzero(table["flux_class"].to_numpy() == cls)
        if rows.size == 0:
            continue
        # (rows, sites × periods) weights: one matrix product aggregates every draw at once.
        member = np.zeros((rows.size, N, P))
        member[np.arange(rows.size), site_code[rows], :] = weight[rows]
        member = member.reshape(rows.size, N * P)
        n_days[c] = [np.bincount(site_code[rows], weights=masks[rows, p] * days[rows], minlength=N)
                     for p in range(P)]
        sub = table.iloc[rows]
        for s, m, values, out in engine.class_values(cls, sub,
                                                     None if season is None else season[rows]):
            total[s, m, c] = (values @ member).reshape(D, N, P).transpose(2, 1, 0)
            if m == 0:
                out_of_range[s, c] = [np.bincount(site_code[rows], weights=out & masks[rows, p],
                                                  minlength=N) for p in range(P)]
    site_eco = table.groupby(site_code)["ecosystem"].first().reindex(range(N)).astype(str).to_numpy()
    for k, eco in enumerate(engine.ecosystems):
        members = [c for c, cls in enumerate(classes) if ecosystem_of(cls) == eco]
        j = len(classes) + k
        total[:, :, j] = total[:, :, members].sum(axis=2)
        out_of_range[:, j] = out_of_range[:, members].sum(axis=1)
        n_days[j] = n_days[members].sum(axis=0)
        total[:, :, j][..., site_eco != eco, :] = np.nan  # a site's net is that of its ecosystem
    total[..., ~clim.complete.T, :] = np.nan  # withheld, not scaled up
    coords = {"scenario_c": list(engine.scenarios), "mode": list(engine.modes),
              "flux_class": list(labels), "period": list(PERIODS), "site": list(sites),
              "draw": np.arange(D)}
    return xr.Dataset(
        {"total": (("scenario_c", "mode", "flux_class", "period", "site", "draw"), total,
                   {"units": SITE_UNIT}),
         "out_of_range": (("scenario_c", "flux_class", "period", "site"), out_of_range,
                          {"long_name": "site-days whose Ts + dT left the forest's training range"}),
         "n_days": (("flux_class", "period", "site"), n_days, {"units": "days"}),
         "coverage": (("period", "site"), clim.coverage.T,
                      {"long_name": "lowest share of days of year covered among the julian "
                                    "seasons the period needs", "units": "1"}),
         "complete": (("period", "site"), clim.complete.T,
                      {"long_name": f"coverage >= {min_coverage:g}: the period's total is given"}),
         "ecosystem": (("site",), site_eco)},
        coords={k: v for k, v in coords.items()},
    )


def label_ecosystem(label: str) -> str:
    """Ecosystem of a class (``grassland_uptake``) or net label (``grassland_net``)."""
    return label.removesuffix("_net") if label.endswith("_net") else ecosystem_of(label)


def site_means(sites: xr.Dataset) -> xr.DataArray:
    """Mean over the sites of each label's ecosystem with a complete record for the period, draw
    by draw (a complete site without days of a class contributes zero; an incomplete one nothing):
    dims (scenario_c, mode, flux_class, period, draw)."""
    eco = sites["ecosystem"].values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no complete site: NaN, withheld
        parts = [sites["total"].sel(flux_class=label).isel(
                     site=np.flatnonzero(eco == label_ecosystem(str(label)))).mean("site")
                 for label in sites["flux_class"].values]
    return xr.concat(parts, dim="flux_class").transpose("scenario_c", "mode", "flux_class",
                                                        "period", "draw")


def complete_sites(sites: xr.Dataset) -> xr.DataArray:
    """Sites averaged by ``site_means``: complete sites of each label's ecosystem (flux_class,
    period)."""
    eco = sites["ecosystem"].values
    parts = [sites["complete"].isel(site=np.flatnonzero(eco == label_ecosystem(str(label)))).sum("site")
             for label in sites["flux_class"].values]
    return xr.concat(parts, dim=sites["flux_class"]).transpose("flux_class", "period")


# ---------------------------------------------------------------- grids
def class_shares(table: pd.DataFrame, classes: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Share of each class among its ecosystem's days, per julian season (days-weighted).

    On a grid the sign of a day's flux is unknown; an ecosystem's flux is the share-weighted sum of
    its class forests (the law of total expectation, with shares by season from the training sites).
    """
    rows = table[table["flux_class"].isin(classes)]
    season = np.asarray(assign_seasons(rows, "julian"), dtype=object)
    days = rows["days"].to_numpy(dtype=float) if "days" in rows else np.ones(len(rows))
    frame = pd.DataFrame({"cls": rows["flux_class"].to_numpy(), "season": season, "days": days,
                          "eco": [ecosystem_of(c) for c in rows["flux_class"]]})
    per_class = frame.groupby(["eco", "season", "cls"])["days"].sum()
    per_eco = frame.groupby(["eco", "season"])["days"].sum()
    shares = {}
    for cls in classes:
        eco = ecosystem_of(cls)
        shares[cls] = {s: float(per_class.get((eco, s, cls), 0.0) / per_eco[(eco, s)])
                       if (eco, s) in per_eco.index else 0.0 for s in ("growing", "non-growing")}
    return shares


@dataclasses.dataclass
class GridSetup:
    """What every block needs besides its own drivers."""

    engine: Engine
    shares: dict[str, dict[str, float]]
    ecosystems: tuple[str, ...]  # ecosystems with a fraction in the cube and a forest
    drivers: tuple[str, ...]  # driver variables of the cube to read
    min_coverage: float = MIN_SEASON_COVERAGE  # a cell's record is complete at this coverage

    @property
    def labels(self) -> tuple[str, ...]:
        classes = tuple(c for c in self.engine.classes if ecosystem_of(c) in self.ecosystems)
        return classes + tuple(f"{e}_net" for e in self.ecosystems) + ("total_net",)


def grid_block(setup: GridSetup, drivers: dict[str, np.ndarray], fractions: dict[str, np.ndarray],
               area: np.ndarray, lat: np.ndarray, lon: np.ndarray, dates: np.ndarray
               ) -> tuple[np.ndarray, ...]:
    """Project one block of cells (full time axis).

    Returns (maps (STATS, scenario, mode, label, period, lat, lon) in g CH4 m⁻² yr⁻¹ of cell area,
    region (scenario, mode, label, period, draw) in Tg CH4 yr⁻¹, out-of-range cell-days
    (scenario, label, period), cell-days projected (label, period), valid soil-temperature days
    per cell (lat, lon; −1 where no modelled ecosystem grows), the counts [land cell-days
    without soil temperature, land cells without any valid day], and each projected cell's
    coverage (period, lat, lon; NaN for cells not projected)).

    A cell's valid days are its record: a period whose seasons they do not cover (the sites'
    rule, ``season_coverage``) has that cell's total withheld, NaN in the maps and nothing in the
    region, its cell-days neither projected nor out of range.

    Missing soil temperature is handled per cell-day: such days are skipped and counted, and a
    cell's totals are sums over its valid days divided by its years of valid record (valid days /
    365.25), as for sites; a land cell without any valid day is left out (NaN in the maps) and
    counted. Cell-days count once per ecosystem growing in the cell; an ecosystem's net is out of
    range on a day when any of its class forests is.
    """
    engine = setup.engine
    labels = setup.labels
    n_lat, n_lon, n_time = drivers["soil_temp_c"].shape
    S, M, L, P, D = len(engine.scenarios), len(engine.modes), len(labels), len(PERIODS), engine.n_draws
    cell_total = np.zeros((S, M, L, P, D, n_lat * n_lon))
    out_of_range = np.zeros((S, L, P), dtype=np.int64)
    n_days = np.zeros((L, P), dtype=np.int64)
    temp = drivers["soil_temp_c"].reshape(n_lat * n_lon, n_time)
    land = sum(fractions[e].reshape(-1) for e in setup.ecosystems) > 0
    valid_all = np.isfinite(temp)
    n_valid = valid_all.sum(axis=1)
    counts = np.array([int((~valid_all[land]).sum()), int((land & (n_valid == 0)).sum())],
                      dtype=np.int64)
    valid_days = np.where(land, n_valid, -1).astype(np.int64)
    cells = np.flatnonzero(land & (n_valid > 0))
    coverage = np.full((P, n_lat * n_lon), np.nan)
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    if cells.size:
        valid = valid_all[cells]  # (cells, time)
        years = n_valid[cells] / DAYS_PER_YEAR
        observed = np.zeros((cells.size, DOY_SLOTS), dtype=bool)
        cell_of, time_of = np.nonzero(valid)
        observed[cell_of, doy_slot(dates)[time_of]] = True
        cell_lat = lat2.reshape(-1)[cells]
        by_lat = {la: slot_seasons(la) for la in np.unique(cell_lat)}
        coverage[:, cells] = season_coverage(
            observed, np.stack([by_lat[la] for la in cell_lat])).T
        frame = pd.DataFrame({name: values.reshape(n_lat * n_lon, n_time)[cells].reshape(-1)
                              for name, values in drivers.items()})
        frame["site"] = np.repeat(cells, n_time).astype(str)
        frame["date"] = np.tile(np.asarray(dates, dtype="datetime64[ns]"), cells.size)
        frame["days"] = 1
        frame["latitude"] = np.repeat(lat2.reshape(-1)[cells], n_time)
        frame["longitude"] = np.repeat(lon2.reshape(-1)[cells], n_time)
        ok = valid.reshape(-1)
        # Periods and seasons from the valid days alone (the freeze-thaw scheme reads the series);
        # a skipped day belongs to no period, so it weighs nothing.
        known = frame if ok.all() else frame.loc[ok]
        masks = np.zeros((cells.size * n_time, P))
        masks[ok] = period_masks(known)
        # a cell's withheld periods weigh nothing, as skipped days do
        complete = coverage[:, cells].T >= setup.min_coverage  # (cells, P)
        masks = masks.reshape(cells.size, n_time, P) * complete[:, None, :]
        julian = np.full(len(frame), "growing", dtype=object)
        julian[ok] = np.asarray(assign_seasons(known, "julian"), dtype=object)
        scheme = engine.e_draws.scheme if engine.e_draws is not None else None
        season = None
        if scheme is not None:
            labels_known = np.asarray(posterior_seasons(known, scheme), dtype=object)
            season = np.full(len(frame), labels_known[0], dtype=object)
            season[ok] = labels_known
        # The forests see a finite temperature on skipped days; their weight is zero.
        frame.loc[~ok, "soil_temp_c"] = 0.0
        union = {}  # (scenario, ecosystem) → cell-days out of range for any class of it
        for c, cls in enumerate(labels):
            eco = ecosystem_of(cls)
            if cls.endswith("_net"):
                continue
            frac = fractions[eco].reshape(-1)[cells]
            on = np.flatnonzero(frac > 0)
            if on.size == 0:
                continue
            rows = (on[:, None] * n_time + np.arange(n_time)).reshape(-1)
            skipped_rows = ~ok[rows]
            share = pd.Series(julian[rows]).map(setup.shares[cls]).to_numpy(dtype=float)
            # weight per row: class share × fraction × unit conversion / years of valid record
            w = (share.reshape(on.size, n_time) * frac[on, None] * G_M2_DAY_PER_FLUX
                 / years[on, None])
            wm = masks[on] * w[:, :, None]  # (cells_on, time, P); zero on skipped days
            sub = frame.iloc[rows]
            n_days[c] = masks[on].sum(axis=(0, 1))
            j = labels.index(f"{eco}_net")
            n_days[j] = n_days[c]
            for s, m, values, out in engine.class_values(
                    cls, sub, None if season is None else season[rows]):
                if skipped_rows.any():
                    values[:, skipped_rows] = 0.0  # never NaN × 0
                    out = out & ~skipped_rows
                # (cells, draws, time) @ (cells, time, periods) → (cells, draws, periods)
                per_cell = np.matmul(values.reshape(D, on.size, n_time).transpose(1, 0, 2), wm)
                cell_total[s, m, c][:, :, cells[on]] = per_cell.transpose(2, 1, 0)
                if m == 0:
                    out = out.reshape(on.size, n_time)
                    out_of_range[s, c] = np.einsum("ct,ctp->p", out, masks[on]).astype(np.int64)
                    union[s, eco] = union[s, eco] | out if (s, eco) in union else out
                    out_of_range[s, j] = np.einsum("ct,ctp->p", union[s, eco], masks[on])
        for eco in setup.ecosystems:
            members = [c for c, cls in enumerate(labels)
                       if not cls.endswith("_net") and ecosystem_of(cls) == eco]
            cell_total[:, :, labels.index(f"{eco}_net")] = cell_total[:, :, members].sum(axis=2)
        nets = [labels.index(f"{e}_net") for e in setup.ecosystems]
        cell_total[:, :, -1] = cell_total[:, :, nets].sum(axis=2)
        out_of_range[:, -1] = out_of_range[:, nets].sum(axis=1)
        n_days[-1] = n_days[nets].sum(axis=0)
    cell_area = area.reshape(-1)
    projected = np.isin(np.arange(n_lat * n_lon), cells)
    # Cells without a projection (no ecosystem, no valid day) add nothing, whatever their area.
    region = np.einsum("smlpdc,c->smlpd", cell_total, np.where(projected, cell_area, 0.0)) / G_PER_TG
    lo, hi = CI_QUANTILES[0], CI_QUANTILES[2]
    quant = np.quantile(cell_total, [lo, hi], axis=4)
    maps = np.stack([cell_total.mean(axis=4), quant[0], quant[1]])
    maps[..., ~projected] = np.nan
    maps[..., ~(coverage >= setup.min_coverage)] = np.nan  # withheld, not scaled up
    return (maps.reshape(*maps.shape[:-1], n_lat, n_lon), region, out_of_range, n_days,
            valid_days.reshape(n_lat, n_lon), counts, coverage.reshape(P, n_lat, n_lon))


def _block_inputs(ds: xr.Dataset, setup: GridSetup):
    fractions = {e: ds[f"{e}_fraction"] for e in setup.ecosystems}
    return ({name: ds[name] for name in setup.drivers}, fractions, ds["cell_area"])


def grid_coverage(dates, latitudes, min_coverage: float = MIN_SEASON_COVERAGE
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, complete) per period of a cube's time axis: the sites' rule applied to its
    dates, in each hemisphere its cells lie in (the lowest coverage counts)."""
    hemispheres = sorted({-1.0 if lat < 0 else 1.0 for lat in np.asarray(latitudes, dtype=float)})
    dates = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates))).normalize().unique()
    table = pd.DataFrame({"date": np.tile(dates, len(hemispheres)),
                          "latitude": np.repeat(hemispheres, len(dates))})
    clim = climatology(table, np.repeat(np.arange(len(hemispheres)), len(dates)), len(hemispheres),
                       min_coverage)
    coverage = clim.coverage.min(axis=0)
    return coverage, coverage >= min_coverage


def project_grid_in_memory(setup: GridSetup, ds: xr.Dataset) -> xr.Dataset:
    """The whole cube as one block (reference for the chunked path; small grids only)."""
    drivers, fractions, area = _block_inputs(ds, setup)
    out = grid_block(setup, {k: np.asarray(v.transpose("lat", "lon", "time").values)
                             for k, v in drivers.items()},
                     {k: np.asarray(v.values) for k, v in fractions.items()}, np.asarray(area.values),
                     ds["lat"].values, ds["lon"].values, ds["time"].values)
    return _grid_dataset(setup, ds, *out)


def project_grid(setup: GridSetup, ds: xr.Dataset, chunk_cells: tuple[int, int] = (8, 8),
                 compute: Callable | None = None) -> xr.Dataset:
    """The cube projected block by block with dask: each block of ``chunk_cells`` (lat, lon) cells
    with its full time axis is one task; maps are assembled and regional draws summed by a tree
    reduction, so memory is bounded by the block size × workers, not by the grid size.

    ``compute`` runs the graph (default ``dask.compute``; pass one bound to a distributed client or
    wrapped in a progress bar).
    """
    import dask
    import dask.array as da

    compute = compute or dask.compute
    ds = ds.chunk({"lat": chunk_cells[0], "lon": chunk_cells[1], "time": -1})
    drivers, fractions, area = _block_inputs(ds, setup)
    d_blocks = {k: v.transpose("lat", "lon", "time").data.to_delayed() for k, v in drivers.items()}
    f_blocks = {k: v.data.to_delayed() for k, v in fractions.items()}
    a_blocks = area.data.to_delayed()
    lat_chunks, lon_chunks = ds.chunks["lat"], ds.chunks["lon"]
    lat_edges, lon_edges = np.cumsum((0, *lat_chunks)), np.cumsum((0, *lon_chunks))
    dates = ds["time"].values
    S, M, L, P, D = (len(setup.engine.scenarios), len(setup.engine.modes), len(setup.labels),
                     len(PERIODS), setup.engine.n_draws)
    block = dask.delayed(grid_block, nout=7, pure=True)
    shared = dask.delayed(setup)  # one graph node, not one copy per block
    map_rows, valid_rows, cover_rows, regions, oors, days, skips = [], [], [], [], [], [], []
    for i, n_i in enumerate(lat_chunks):
        row, valid_row, cover_row = [], [], []
        for j, n_j in enumerate(lon_chunks):
            maps_ij, region_ij, oor_ij, days_ij, valid_ij, skip_ij, cover_ij = block(
                shared, {k: v[i, j, 0] for k, v in d_blocks.items()},
                {k: v[i, j] for k, v in f_blocks.items()}, a_blocks[i, j],
                ds["lat"].values[lat_edges[i]:lat_edges[i + 1]],
                ds["lon"].values[lon_edges[j]:lon_edges[j + 1]], dates)
            row.append(da.from_delayed(maps_ij, shape=(len(STATS), S, M, L, P, n_i, n_j),
                                       dtype=float))
            valid_row.append(da.from_delayed(valid_ij, shape=(n_i, n_j), dtype=np.int64))
            cover_row.append(da.from_delayed(cover_ij, shape=(P, n_i, n_j), dtype=float))
            regions.append(da.from_delayed(region_ij, shape=(S, M, L, P, D), dtype=float)[None])
            oors.append(da.from_delayed(oor_ij, shape=(S, L, P), dtype=np.int64)[None])
            days.append(da.from_delayed(days_ij, shape=(L, P), dtype=np.int64)[None])
            skips.append(da.from_delayed(skip_ij, shape=(2,), dtype=np.int64)[None])
        map_rows.append(row)
        valid_rows.append(valid_row)
        cover_rows.append(cover_row)
    maps = da.block(map_rows)
    valid_days = da.block(valid_rows)
    coverage = da.block(cover_rows)
    region = da.concatenate(regions).sum(axis=0)
    oor = da.concatenate(oors).sum(axis=0)
    n_days = da.concatenate(days).sum(axis=0)
    skipped = da.concatenate(skips).sum(axis=0)
    return _grid_dataset(setup, ds, *compute(maps, region, oor, n_days, valid_days, skipped,
                                             coverage))


def _grid_dataset(setup: GridSetup, ds: xr.Dataset, maps, region, oor, n_days, valid_days,
                  skipped, coverage) -> xr.Dataset:
    engine = setup.engine
    coverage = np.asarray(coverage)
    cell_complete = coverage >= setup.min_coverage  # (period, lat, lon); False where not projected
    projected = np.asarray(valid_days) > 0
    eco_area = (sum(np.asarray(ds[f"{e}_fraction"].values) for e in setup.ecosystems)
                * np.asarray(ds["cell_area"].values) * projected)
    withheld = projected & ~cell_complete
    n_cells = cell_complete.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):  # no projected cell: NaN share
        area_share_withheld = (eco_area * withheld).sum(axis=(1, 2)) / eco_area.sum()
    # a period no cell covers has no regional total, not a zero one
    region = np.where((n_cells > 0)[None, None, None, :, None], region, np.nan)
    coords = {"scenario_c": list(engine.scenarios), "mode": list(engine.modes),
              "flux_class": list(setup.labels), "period": list(PERIODS),
              "draw": np.arange(engine.n_draws), "lat": ds["lat"].values, "lon": ds["lon"].values}
    dims = ("scenario_c", "mode", "flux_class", "period", "lat", "lon")
    out = xr.Dataset(
        {**{f"flux_{stat}": (dims, maps[k], {"units": MAP_UNIT, "cell_methods": f"draw: {stat}"})
            for k, stat in enumerate(STATS)},
         "region_total": (("scenario_c", "mode", "flux_class", "period", "draw"), region,
                          {"units": REGION_UNIT}),
         "out_of_range": (("scenario_c", "flux_class", "period"), oor,
                          {"long_name": "cell-days whose Ts + dT left the forest's training range"}),
         "n_days": (("flux_class", "period"), n_days,
                    {"long_name": "cell-days projected (counted once per ecosystem in a cell)"}),
         "valid_days": (("lat", "lon"), np.asarray(valid_days),
                        {"long_name": "days with a soil temperature per land cell (-1: no "
                                      "modelled ecosystem in the cell)", "units": "days"}),
         "cell_days_missing": ((), np.int64(skipped[0]),
                               {"long_name": "land cell-days without soil temperature, skipped"}),
         "cells_without_valid_day": ((), np.int64(skipped[1]),
                                     {"long_name": "land cells without soil temperature on any "
                                                   "day, left out of the totals"}),
         "cell_coverage": (("period", "lat", "lon"), coverage,
                           {"long_name": "lowest share of days of year the cell's valid days cover "
                                         "among the julian seasons the period needs (NaN: cell "
                                         "not projected)", "units": "1"}),
         "cell_complete": (("period", "lat", "lon"), cell_complete,
                           {"long_name": f"cell_coverage >= {setup.min_coverage:g}: the cell's "
                                         "total for the period is given and enters the region"}),
         "cells_in_total": (("period",), n_cells.astype(np.int64),
                            {"long_name": "cells whose total for the period enters the regional "
                                          "totals"}),
         "cells_withheld": (("period",), withheld.sum(axis=(1, 2)).astype(np.int64),
                            {"long_name": "cells with valid days whose record does not cover the "
                                          "period's seasons: withheld (incomplete record)"}),
         "area_share_withheld": (("period",), area_share_withheld,
                                 {"long_name": "share of the projected cells' ecosystem area "
                                               "(ecosystem fractions x cell area) held by the "
                                               "withheld cells", "units": "1"})},
        coords=coords)
    for e in setup.ecosystems:
        out[f"{e}_fraction"] = (("lat", "lon"), np.asarray(ds[f"{e}_fraction"].values), {"units": "1"})
    out["cell_area"] = (("lat", "lon"), np.asarray(ds["cell_area"].values), {"units": "m2"})
    out["lat"].attrs.update(standard_name="latitude", units="degrees_north")
    out["lon"].attrs.update(standard_name="longitude", units="degrees_east")
    return out


# ---------------------------------------------------------------- summary
def summarise(draws: xr.DataArray, unit: str, where: str) -> pd.DataFrame:
    """Summary rows from per-draw totals with dims (scenario_c, mode, flux_class, period, [where],
    draw): ``total`` (mean over draws), ``ci_low``/``ci_high`` (the project's interval),
    ``change_vs_control`` (mean paired difference, same unit) with its interval
    ``change_ci_low``/``change_ci_high`` (of the paired differences), ``change_pct`` (the mean
    change as % of the control's magnitude, so signed like the change), and ``P_increase``: in
    every row, class or ``*_net``, the share of paired draws whose signed total (emission
    positive, uptake negative) exceeds the control's, i.e. P(change > 0), more net emission; for
    an uptake class, that the uptake weakens. NaN for the control rows. Rows whose draws are all NaN (nets of another ecosystem, incomplete records)
    are left out.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: nets of other ecosystems
        return _summarise(draws, unit, where)


def _summarise(draws: xr.DataArray, unit: str, where: str) -> pd.DataFrame:
    lo, _, hi = CI_QUANTILES
    control = draws.sel(scenario_c=0.0)
    change = draws - control
    warm = draws["scenario_c"] != 0.0
    stats = xr.Dataset({
        "total": draws.mean("draw"),
        "ci_low": draws.quantile(lo, "draw").drop_vars("quantile"),
        "ci_high": draws.quantile(hi, "draw").drop_vars("quantile"),
        "change_vs_control": change.mean("draw"),
        "change_ci_low": change.quantile(lo, "draw").drop_vars("quantile"),
        "change_ci_high": change.quantile(hi, "draw").drop_vars("quantile"),
        # signed like the change: relative to the control's magnitude
        "change_pct": 100.0 * change.mean("draw") / np.abs(control.mean("draw")).where(
            control.mean("draw") != 0),
        "P_increase": (change > 0).mean("draw").where(warm),
    })
    valid = draws.notnull().all("draw")
    frame = stats.where(valid).to_dataframe().reset_index()
    frame = frame.dropna(subset=["total"])
    frame["unit"] = unit
    lead = ["scenario_c", "mode", "flux_class", "period", where]
    return frame[lead + list(SUMMARY_STATS) + ["unit"]]


SUMMARY_STATS = ("total", "ci_low", "ci_high", "change_vs_control", "change_ci_low",
                 "change_ci_high", "change_pct", "P_increase")
# What a withheld row loses: every number drawn from its totals.
WITHHELD_STATS = SUMMARY_STATS
NO_SKILL_NSE = 0.0  # a forest whose pooled held-out NSE is at most this has no cross-site skill


# ---------------------------------------------------------------- honesty of the summary
def pooled_skill(skill: pd.DataFrame) -> dict[str, float]:
    """Pooled held-out NSE per class from a ``forest_skill.csv`` table ({} when not computed)."""
    pooled = skill[skill["held_out"] == "pooled"] if len(skill) else skill
    return {str(r.flux_class): float(r.nse) for r in pooled.itertuples()}


def no_skill_classes(skill: dict[str, float]) -> dict[str, float]:
    """Classes whose forest has no cross-site skill: {class: NSE}."""
    return {c: v for c, v in sorted(skill.items()) if not v > NO_SKILL_NSE}


def label_skill(label: str, skill: dict[str, float], classes) -> float:
    """A row's forest skill: its class's NSE; for a ``*_net`` row (or ``total_net``) the lowest
    NSE of the classes it sums; NaN when the skill was not computed."""
    if label == "total_net":
        members = list(classes)
    elif label.endswith("_net"):
        members = [c for c in classes if ecosystem_of(c) == label_ecosystem(label)]
    else:
        members = [label]
    values = [skill[c] for c in members if c in skill]
    return min(values) if values else np.nan


def withhold(summary: pd.DataFrame, skill: dict[str, float], classes, allow_no_skill: bool = False
             ) -> pd.DataFrame:
    """Columns ``forest_skill`` (see ``label_skill``), ``no_skill`` (forest_skill ≤ 0) and
    ``withheld``, and the numbers of withheld rows blanked.

    ``withheld``: ``no`` or the reasons, ``;``-joined: ``incomplete_record`` (``complete`` is
    False) and ``no_skill`` (an RF-direct row whose forest has no skill, unless
    ``allow_no_skill``: then the row keeps its numbers, flagged by ``no_skill``). Posterior-scaling
    rows are never withheld for skill: they keep their numbers and carry ``forest_skill`` and
    ``no_skill``. Unknown skill (not computed) withholds nothing.
    """
    out = summary.copy()
    out["forest_skill"] = [label_skill(str(c), skill, classes) for c in out["flux_class"]]
    incomplete = ~out["complete"].astype(bool)
    out["no_skill"] = out["forest_skill"].notna() & ~(out["forest_skill"] > NO_SKILL_NSE)
    no_skill = out["no_skill"] & (out["mode"] == "rf") & (not allow_no_skill)
    reasons = np.where(incomplete & no_skill, "incomplete_record;no_skill",
                       np.where(incomplete, "incomplete_record", np.where(no_skill, "no_skill", "no")))
    out["withheld"] = reasons
    out.loc[out["withheld"] != "no", list(WITHHELD_STATS)] = np.nan
    return out


def flag_sign_disagreement(summary: pd.DataFrame, where: str) -> pd.DataFrame:
    """Column ``sign_disagreement`` on the warm rows where both modes were run: ``intervals``
    when the two modes' paired-change intervals exclude zero on opposite sides, ``means`` when
    only the mean changes have opposite signs, ``none`` otherwise; NaN for control rows and where
    a mode is missing. Computed before any row is withheld."""
    out = summary.copy()
    out["sign_disagreement"] = np.nan
    if set(MODES) - set(out["mode"]):
        return out
    keys = ["scenario_c", "flux_class", "period", where]
    cols = ["change_vs_control", "change_ci_low", "change_ci_high"]
    warm = out[out["scenario_c"] != 0.0]
    pair = warm[warm["mode"] == "rf"][keys + cols].merge(
        warm[warm["mode"] == "arrhenius"][keys + cols], on=keys, suffixes=("_rf", "_ar"))
    sign = lambda side: np.sign(pair[f"change_vs_control_{side}"])  # noqa: E731
    above = lambda side: pair[f"change_ci_low_{side}"] > 0  # noqa: E731
    below = lambda side: pair[f"change_ci_high_{side}"] < 0  # noqa: E731
    means = sign("rf") * sign("ar") < 0
    intervals = (above("rf") & below("ar")) | (below("rf") & above("ar"))
    pair["sign_disagreement"] = np.where(intervals, "intervals", np.where(means, "means", "none"))
    flags = pair.set_index(keys)["sign_disagreement"]
    index = pd.MultiIndex.from_frame(out[keys])
    found = flags.reindex(index).to_numpy()
    out["sign_disagreement"] = np.where(out["scenario_c"].to_numpy() != 0.0, found, np.nan)
    return out


def caveats(summary: pd.DataFrame) -> list[str]:
    """What a reader must know before the numbers, from a projection summary: classes without
    forest skill and what was withheld for it, totals withheld for incomplete records, and the
    annual changes whose sign the two modes disagree on (headline rows: the region or the mean
    over sites)."""
    where = "region" if "region" in summary.columns else "site"
    lines = []
    classes = summary[~summary["flux_class"].str.endswith("_net")]
    if "forest_skill" in summary and classes["forest_skill"].isna().all():
        lines.append("Forest skill was not computed (--cv-trees 0): RF-direct totals are not "
                     "checked for cross-site skill.")
    elif "no_skill" in summary:
        bad = classes[classes["no_skill"].astype(bool)].drop_duplicates("flux_class")
        if len(bad):
            named = ", ".join(f"{r.flux_class} (NSE {r.forest_skill:.2f})" for r in bad.itertuples())
            rf = summary[(summary["mode"] == "rf") & summary["no_skill"].astype(bool)]
            action = []
            if len(rf):
                kept = (rf["withheld"] == "no").any()
                action.append("Their RF-direct totals, and those of the nets summing them, are "
                              + ("kept because no-skill totals were allowed, flagged in column "
                                 "no_skill" if kept else "withheld (--allow-no-skill keeps them, "
                                 "flagged in column no_skill)"))
            if (summary["mode"] == "arrhenius").any():
                action.append("posterior-scaling totals, which rest on these forests' baselines, "
                              "are kept and carry forest_skill")
            lines.append(f"NO CROSS-SITE SKILL: the class forests of {named} do no better than the "
                         f"held-out mean (pooled leave-one-site-out NSE ≤ {NO_SKILL_NSE:g}). "
                         + "; ".join(action) + ".")
    if where == "site" and "coverage" in summary:
        own = summary[(summary["site"] != "all_sites_mean") & (summary["period"] == "annual")]
        per_site = own.groupby("site").agg(complete=("complete", "all"), coverage=("coverage", "min"))
        short = per_site[~per_site["complete"]]
        if len(short):
            shown = ", ".join(f"{s} ({100 * c:.0f} %)" for s, c in short["coverage"].items())
            lines.append(f"Annual totals withheld for {len(short)} of {len(per_site)} sites whose "
                         f"record covers less than {100 * MIN_SEASON_COVERAGE:.0f} % of a season's "
                         f"days of year (lowest season coverage): {shown}. Means over sites average "
                         "the complete sites only (column n_sites).")
    elif "complete" in summary:
        short = summary[~summary["complete"].astype(bool)].drop_duplicates("period")
        if len(short):
            lines.append("Withheld: the driver cube covers less than "
                         f"{100 * MIN_SEASON_COVERAGE:.0f} % of a season's days of year for the "
                         f"{', '.join(short['period'])} totals.")
    if "sign_disagreement" in summary:
        head = summary[(summary["period"] == "annual") & (summary["mode"] == "arrhenius")
                       & summary["sign_disagreement"].isin(["means", "intervals"])]
        if where == "site":
            head = head[head["site"] == "all_sites_mean"]
        for label, rows in head.groupby("flux_class", sort=True):
            kinds = "; ".join(", ".join(f"+{t:g}" for t in part["scenario_c"]) + f" °C ({kind})"
                              for kind, part in rows.groupby("sign_disagreement", sort=False))
            rf = summary[(summary["flux_class"] == label) & (summary["mode"] == "rf")
                         & summary["scenario_c"].isin(rows["scenario_c"])]
            hidden = (" (the RF-direct totals are withheld)"
                      if "withheld" in rf and (rf["withheld"] != "no").all() else "")
            lines.append(f"SIGN DISAGREEMENT: posterior scaling and RF-direct change the annual "
                         f"{label} in opposite directions at {kinds}{hidden}; 'intervals': both "
                         "paired-change intervals exclude zero, 'means': the mean changes only.")
    return lines
