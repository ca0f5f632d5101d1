"""Global carbon-budget consistency: is literature GPP consistent with literature soil respiration?

Reproduces Jian et al. (2022, Nat. Commun. 13:4781) and adds a Bayesian version. The recipe follows
the published R code, PNNL-TES/GlobalC: ``functions-resampling.R`` (methods 1–4),
``functions-calc_bootstrap.R`` (``calc_bootstrap_gpp``, ``calc_bootstrap_rs``), ``functions-stats.R``
(``prob_agreement``, ``calc_overlap``, ``variance_decomp``), ``Topdown_GlobalRs.Rmd`` (inputs,
ecosystem groups, area weights, N = 10,000 draws of means of 10) and ``GlobalC_nc_revision.Rmd``
(period-aggregated literature estimates).

Resampling ("bootstrap") approach, per draw k = 1…N:

- a literature flux (global RS, GPP, fire C) is the mean of n = 10 values, each value an estimate
  picked with replacement and drawn from Normal(estimate, SD); a missing SD is the estimate times the
  maximum coefficient of variation among the estimates that report one ("method 3"; also offered:
  the median CV — method 2, zero SD — method 4, or ignoring SDs — method 1);
- NPP and the ratios RC (root : soil respiration), Froot (root : autotrophic respiration) and
  Ra:GPP are means of 10 records picked with replacement (method 1);
- bottom-up (implied) GPP = NPP + Rroot + Rshoot, Rroot = RS·RC, Rshoot = Rroot·(1 − Froot)/Froot;
- top-down (implied) RS = NPP − herbivory − fire − land sink − DOC export − BVOC + Ra·Froot, with
  Ra the mean of GPP·(Ra:GPP) and GPP − NPP (replaced by GPP·(Ra:GPP) where negative);
  herbivory ~ N(2.2, 0.2), sink ~ N(2.10, 0.28), DOC ~ N(2.3, 0.25), BVOC ~ N(1.007, 0.1) Pg C yr⁻¹.

Variants (``VARIANTS``): ratios pooled over all records ("unweighted", scenario 1 of the R code) or
drawn per ecosystem group and weighted by the group's share of land area ("weighted", scenario 2,
the published Fig. 1); literature estimates as they are or averaged within the same period
("period", scenario 4: RS by publication-year period, GPP by year period × method group, the
``Group_year`` bins of the R code). The ``*-rcode`` variants reproduce a detail of the published
code: ``method2`` calls ``rnorm(n, mean = x, sd = s)`` with the whole vector ``x``, and R uses
only its first n elements, so each "mean of 10" uses the first 10 estimates (in file order; fire's
9 recycled) once each instead of 10 picked at random. With it the published numbers are matched
(GPP 113 (95–130) vs implied 149 (126–179), RS 87 (79–96) vs 68 (60–78)); without it ("weighted",
the recipe as described, the default) direct GPP is ≈ 120 and direct RS wider (75–98), so P(agree)
is ≈ 0.2–0.3 instead of 0.01–0.08.

Agreement with the authors' code, variant by variant (``Variant.r_counterpart``;
benchmarks/globalc_reference.R runs their functions on the same files, the tests hold its numbers):
every median within 2 %, every bound within 5 %, every agreement probability within 0.01 (5-seed
means: one run's Monte Carlo SD is up to 0.015 for the resampled variants). What had to match:
direct GPP is every estimate not flagged "Model" for 1980 on (49), not the remote-sensing group;
Froot and Ra:GPP include the SRDB-derived records (``cal_Froot``, ``prep_RaGpp``); NPP drops
Ito's outliers (``NPP_RANGE``); land shares come from IGBP.txt; the top-down Froot is area-weighted
in the pooled variant too (``TOP_DOWN_FROOT``); periods use the R bins and dplyr 1.0's group order
(which decides the first 10 in ``period-rcode``); the overlap is ``calc_overlap``'s (Normal or
kernel density by a Shapiro test, areas by the trapezoid rule). ``period-unweighted`` has no R
counterpart. One R detail is not copied: in scenario 2 the fallback of Ra = GPP − NPP < 0 uses the
pooled Ra:GPP; GPP − NPP is never negative on these inputs, so it changes nothing.

Agreement: ``agreement_probability`` (models.summary, shared with the meta-analysis) is
``prob_agreement`` of functions-stats.R — the probability that a draw of Normal(mean, sd of the
implied draws) falls inside the direct distribution's 95 % interval;
``density_overlap`` is ``calc_overlap`` (intersection point, the area of each distribution beyond
it, and the overlap coefficient ∫min(f, g)); ``variance_decomposition`` freezes one input at its
median.

The Bayesian alternative (``build_bayes_model``) pools the literature estimates hierarchically with
method-group effects and models each ratio with ecosystem-group means (Beta likelihood); see its
docstring.

Everything here is pure: tables in, arrays / DataFrames / a ``pm.Model`` out.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from data.errors import DataError
from models.conventions import CI_QUANTILES
from models.summary import agreement_probability

N_DRAWS = 10_000
SAMPLE_SIZE = 10
SD_FILLS = ("max-cv", "median-cv", "ignore", "zero")
GPP_SETS = ("remote-sensing", "non-model", "all")
# The R code's direct GPP: every estimate not flagged "Model" for a year from 1980 on
# (Topdown_GlobalRs.Rmd: filter(Year >= 1980 & Flag != "Model"), 49 estimates).
DEFAULT_GPP_SET = "non-model"
MIN_GPP_YEAR = 1980
# Froot and Ra:GPP records as cal_Froot / prep_RaGpp of GlobalC @9d43778d assemble them: the
# literature tables plus the SRDB-derived records (129 Froot, 246 Ra:GPP records).
DEFAULT_RATIO_SOURCE = "literature+srdb"
# NPP estimates kept (Pg C yr⁻¹): the R code drops the boxplot outliers of Ito's compilation with
# these bounds (filter(NPP <= 83 & NPP >= 25): 237 of 251 estimates).
NPP_RANGE = (25.0, 83.0)
# Periods of the period-aggregated estimates (Topdown_GlobalRs.Rmd, "Group_year"): GPP by the
# year it estimates, RS by publication year; a year not listed forms its own missing-period group
# (R's case_when gives NA, which group_by keeps as one group).
GPP_PERIODS = {1980: 1986, 1988: 1989, 1991: 1989, 1993: 1992, 1995: 1995, 1996: 1995,
               1997: 1995, 2000: 2001, 2001: 2001, 2002: 2007, 2003: 2007, 2004: 2007,
               2005: 2007, 2006: 2007, 2007: 2007, 2008: 2010, 2009: 2010, 2015: 2013}
RS_PERIODS = {1985: 1986, 1986: 1986, 1987: 1989, 1989: 1989, 1990: 1992, 1992: 1992,
              1995: 1995, 2000: 2001, 2001: 2001, 2007: 2007, 2009: 2010, 2014: 2013, 2016: 2013}

# Fluxes taken from single published values: (mean, sd) in Pg C yr⁻¹ (Topdown_GlobalRs.Rmd).
HERBIVORY = (2.2, 0.2)   # Doughty et al. 2010, ERL 5:044001
SINK = (2.10, 0.28)      # Le Quéré et al. 2015, ESSD 7:349 (land sink)
DOC = (2.3, 0.25)        # dissolved organic carbon export (Jian et al. 2022, Table S3)
BVOC = (1.007, 0.1)      # biogenic volatile organic compounds (Table S3; SD = 10 % of the mean)

# Which ecosystem groups each ratio is drawn for in the area-weighted variant (the R code's
# Rc2, Froot2, RaGpp2); the remaining land area takes the ratio drawn from all records.
WEIGHT_GROUPS = {
    "RC": ("agriculture", "deciduous_forest", "evergreen_forest", "mixed_forest", "grassland",
           "shrubland_savanna"),
    "Froot": ("deciduous_forest", "evergreen_forest", "mixed_forest"),
    "RaGPP": ("deciduous_forest", "evergreen_forest", "mixed_forest", "grassland"),
}

# Published values (Jian et al. 2022): median and 95 % interval, Pg C yr⁻¹ (probabilities: upper
# bounds as stated in the abstract; RS_rf_global: random-forest upscaling of monthly RS).
PUBLISHED = {
    "GPP_implied": (149.0, 126.0, 178.0),
    "GPP_direct": (113.0, 95.0, 131.0),
    "RS_direct": (87.0, 79.0, 96.0),
    "RS_implied": (68.0, 60.0, 78.0),
    "p_agree_GPP": (0.03, np.nan, np.nan),
    "p_agree_RS": (0.02, np.nan, np.nan),
    "RS_rf_global": (93.0, np.nan, np.nan),
}


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    weighting: str      # "area" (per ecosystem group, area-weighted) | "pooled" (all records)
    aggregation: str    # "none" | "period" (estimates averaged within the same period)
    draw_order: str     # "resample" (pick with replacement) | "first-n" (R recycling, see module doc)
    description: str
    # The run of benchmarks/globalc_reference.R it reproduces: "rcode-sN" is scenario N of the
    # published code, "resampled-sN" the same with the estimates picked with replacement.
    r_counterpart: str | None = None


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("weighted", "area", "none", "resample",
            "ratios per ecosystem group, weighted by land area (published Fig. 1)", "resampled-s2"),
    Variant("unweighted", "pooled", "none", "resample",
            "RC, Froot (bottom-up) and Ra:GPP pooled over all records", "resampled-s1"),
    Variant("period", "area", "period", "resample",
            "area-weighted; estimates averaged per period (RS: publication year; GPP: year × method)",
            "resampled-s4"),
    Variant("period-unweighted", "pooled", "period", "resample", "pooled ratios; period-averaged"),
    Variant("weighted-rcode", "area", "none", "first-n",
            "as 'weighted' with the published code's rnorm recycling (first 10 estimates)",
            "rcode-s2"),
    Variant("period-rcode", "area", "period", "first-n",
            "as 'period' with the published code's rnorm recycling", "rcode-s4"),
)}
DEFAULT_VARIANT = "weighted"


@dataclasses.dataclass(frozen=True)
class BudgetConfig:
    n_draws: int = N_DRAWS
    sample_size: int = SAMPLE_SIZE
    sd_fill: str = "max-cv"
    gpp_set: str = DEFAULT_GPP_SET    # which literature GPP estimates are "direct"
    min_pub_year: int = 1980          # RS estimates published after this year (Topdown_GlobalRs.Rmd)
    min_gpp_year: int = MIN_GPP_YEAR  # GPP estimates for this year or later
    npp_range: tuple[float, float] = NPP_RANGE
    variants: tuple[str, ...] = tuple(VARIANTS)

    def __post_init__(self):
        if self.sd_fill not in SD_FILLS:
            raise DataError(None, None, None, f"unknown SD fill '{self.sd_fill}'",
                            f"use one of {', '.join(SD_FILLS)}")
        if self.gpp_set not in GPP_SETS:
            raise DataError(None, None, None, f"unknown GPP set '{self.gpp_set}'",
                            f"use one of {', '.join(GPP_SETS)}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise DataError(None, None, None, f"unknown variant '{unknown[0] if unknown else ''}'",
                            f"use one or more of {', '.join(VARIANTS)}")
        if self.n_draws < 10 or self.sample_size < 1:
            raise DataError(None, None, None, "need at least 10 draws and a sample size ≥ 1",
                            "use --n-draws 10000 (the published setting)")


# ---------------------------------------------------------------- sizes
# Bytes per value of one "mean of n" while it is drawn: the int64 index and three float64 arrays
# (picked estimates, their SDs, the Normal draws) of shape (n_draws, sample_size) (measured:
# 657 MB at 10,000 draws × 2,000 values).
BYTES_PER_RESAMPLED_VALUE = 32
# float64 arrays of n_draws kept per variant: the input draws, the four fluxes and the frozen
# copies of the variance decomposition (measured: 1.27 GB for 6 variants × 10⁶ draws of 10).
ARRAYS_PER_VARIANT = 24
# Posterior and sampler-statistic values per chain × draw of the Bayesian model (float64).
BAYES_VALUES_PER_DRAW = 150


def memory_bytes(n_draws: int, sample_size: int, n_variants: int, *, chains: int = 0,
                 draws: int = 0) -> dict[str, int]:
    """The memory a run needs beyond the interpreter (bytes): resampling (the largest "mean of n"
    being drawn plus the draws kept for every variant) and the Bayesian posterior."""
    return {"resampling": int(n_draws) * int(sample_size) * BYTES_PER_RESAMPLED_VALUE
            + int(n_draws) * 8 * ARRAYS_PER_VARIANT * int(n_variants),
            "bayes": int(chains) * int(draws) * BAYES_VALUES_PER_DRAW * 8}


def output_bytes(n_draws: int, n_variants: int, *, chains: int = 0, draws: int = 0,
                 rf: bool = True) -> int:
    """The size of a run folder (bytes): the four fluxes' draws per variant, the posterior, the
    random-forest map and trees, and the tables (a few MB)."""
    return (int(n_draws) * int(n_variants) * 4 * 8 + int(chains) * int(draws) * BAYES_VALUES_PER_DRAW * 8
            + (2_000_000 if rf else 0) + 2_000_000)


# ---------------------------------------------------------------- resampling primitives
def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per input, so adding a variant never changes other draws."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def fill_sd(values: np.ndarray, sd: np.ndarray, how: str) -> np.ndarray | None:
    """SDs with the missing ones filled ("max-cv", "median-cv", "zero"); None for "ignore".

    A missing SD becomes value × CV, with CV the maximum (method 3) or median (method 2) of the
    coefficients of variation of the estimates that report an SD; with no SD anywhere it is 0.
    """
    values = np.asarray(values, dtype=float)
    sd = np.asarray(sd, dtype=float)
    if how == "ignore":
        return None
    if how == "zero":
        return np.where(np.isnan(sd), 0.0, sd)
    cv = sd / values
    known = cv[np.isfinite(cv)]
    if known.size == 0:
        return np.zeros_like(values)
    fill = np.max(known) if how == "max-cv" else np.median(known)
    return np.where(np.isnan(sd), values * fill, sd)


def resample_means(rng: np.random.Generator, values: np.ndarray, sd: np.ndarray | None = None, *,
                   n_draws: int = N_DRAWS, sample_size: int = SAMPLE_SIZE,
                   draw_order: str = "resample") -> np.ndarray:
    """``n_draws`` means of ``sample_size`` values (vectorised R ``method1``–``method4``).

    Without ``sd`` each value is an estimate picked with replacement (method 1). With ``sd`` each is
    Normal(estimate, sd) of a picked estimate; ``draw_order="first-n"`` takes estimates 1…n in
    order (recycled when fewer), as R's ``rnorm(n, mean = x, sd = s)`` does.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise DataError(None, None, None, "no estimates to resample", "check the input selection")
    if sd is not None and draw_order == "first-n":
        idx = np.broadcast_to(np.arange(sample_size) % values.size, (n_draws, sample_size))
    else:
        idx = rng.integers(0, values.size, size=(n_draws, sample_size))
    if sd is None:
        return values[idx].mean(axis=1)
    sd = np.asarray(sd, dtype=float)
    return rng.normal(values[idx], sd[idx]).mean(axis=1)


def aggregate_estimates(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean value and mean reported SD of the estimates sharing ``keys``.

    A group in which no estimate reports an SD keeps a missing SD (R's mean(na.rm = TRUE) → NaN).
    """
    grouped = table.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(value=("value", "mean"), sd=("sd", "mean"), n=("value", "size")).reset_index()
    # The groups in the order of the R code's group_by (dplyr 1.0, locale collation: "Mixed" before
    # "MODIS"), which the first-n draw order depends on; missing keys last.
    return out.sort_values(keys, key=lambda k: k if pd.api.types.is_numeric_dtype(k) else k.str.casefold(),
                           na_position="last", kind="stable").reset_index(drop=True)


def area_shares_from_points(points: pd.DataFrame, mapping: pd.DataFrame,
                            groups: Mapping[str, str]) -> dict[str, float]:
    """Land-area share of each ecosystem group from a grid of points (GlobalC IGBP.txt).

    As "calculate vegetation areas" of Topdown_GlobalRs.Rmd: each point of a regular latitude ×
    longitude grid weighs cos(latitude); water (IGBP group WAT) is left out. ``points`` has
    ``Latitude`` and ``IGBP2001Pr``, ``mapping`` ``IGBP2001Pr`` and ``IGBP_group``; ``groups`` maps
    the IGBP_group codes used to ecosystem-group names (data.jian2022.ECOSYSTEM_GROUPS).
    """
    codes = points["IGBP2001Pr"].map(mapping.set_index("IGBP2001Pr")["IGBP_group"])
    land = codes.notna() & (codes != "WAT")
    weight = np.cos(np.deg2rad(np.abs(points.loc[land, "Latitude"].to_numpy(dtype=float))))
    totals = pd.Series(weight, index=codes[land].to_numpy()).groupby(level=0).sum()
    return {name: float(totals.get(code, 0.0) / weight.sum()) for code, name in groups.items()}


# ---------------------------------------------------------------- selections
def select_gpp(gpp: pd.DataFrame, config: BudgetConfig) -> pd.DataFrame:
    """The literature GPP estimates taken as "direct" GPP."""
    t = gpp[gpp["year"] >= config.min_gpp_year]
    if config.gpp_set == "remote-sensing":
        t = t[t["method_group"] == "remote_sensing"]
    elif config.gpp_set == "non-model":
        t = t[t["method_group"] != "process_model"]
    if t.empty:
        raise DataError(None, None, "Group", f"no GPP estimates in set '{config.gpp_set}'",
                        "check GlobalGPP_Sum.csv Group column or choose --gpp-set all")
    return t.reset_index(drop=True)


def select_rs(rs: pd.DataFrame, config: BudgetConfig) -> pd.DataFrame:
    t = rs[rs["pub_year"] > config.min_pub_year]
    if t.empty:
        raise DataError(None, None, "Pub_year", "no soil-respiration estimates left",
                        f"the analysis uses estimates published after {config.min_pub_year}")
    return t.reset_index(drop=True)


def literature_sets(inputs, config: BudgetConfig, aggregation: str) -> dict[str, pd.DataFrame]:
    """RS and GPP estimate tables for one aggregation ("none" or "period")."""
    gpp = select_gpp(inputs.gpp, config)
    rs = select_rs(inputs.rs, config)
    if aggregation == "period":
        rs = aggregate_estimates(rs.assign(period=rs["pub_year"].map(RS_PERIODS)), ["period"])
        gpp = aggregate_estimates(gpp.assign(period=gpp["year"].map(GPP_PERIODS)),
                                  ["period", "group2"])
    return {"RS_direct": rs, "GPP_direct": gpp}


def _group_values(records: pd.DataFrame, group: str) -> np.ndarray:
    v = records.loc[records["group"] == group, "value"].to_numpy(dtype=float)
    # A group without records takes all records (as the R code does for ecosystems with no data).
    return v if v.size else records["value"].to_numpy(dtype=float)


# ---------------------------------------------------------------- drawing and computing
def draw_inputs(inputs, config: BudgetConfig, variant: Variant, seed: int) -> dict[str, np.ndarray]:
    """All random inputs of one variant: N draws each (names as in ``implied_gpp``/``implied_rs``)."""
    n, m = config.n_draws, config.sample_size
    draws: dict[str, np.ndarray] = {}
    lit = literature_sets(inputs, config, variant.aggregation)
    tag = f"{variant.aggregation}|{variant.draw_order}"
    for name, table in lit.items():
        sd = fill_sd(table["value"], table["sd"], config.sd_fill)
        draws[name] = resample_means(stream(seed, f"{name}|{tag}"), table["value"].to_numpy(), sd,
                                     n_draws=n, sample_size=m, draw_order=variant.draw_order)
    fire_sd = fill_sd(inputs.fire["value"], inputs.fire["sd"], config.sd_fill)
    draws["fire"] = resample_means(stream(seed, f"fire|{variant.draw_order}"),
                                   inputs.fire["value"].to_numpy(), fire_sd, n_draws=n,
                                   sample_size=m, draw_order=variant.draw_order)
    draws["NPP"] = resample_means(stream(seed, "NPP"), npp_values(inputs.npp, config),
                                  n_draws=n, sample_size=m)
    for ratio, records in (("RC", inputs.rc), ("Froot", inputs.froot), ("RaGPP", inputs.ragpp)):
        draws[f"{ratio}_all"] = resample_means(stream(seed, f"{ratio}_all"),
                                               records["value"].to_numpy(dtype=float),
                                               n_draws=n, sample_size=m)
        if variant.weighting == "area" or ratio == TOP_DOWN_FROOT:
            for group in WEIGHT_GROUPS[ratio]:
                draws[f"{ratio}_{group}"] = resample_means(
                    stream(seed, f"{ratio}_{group}"), _group_values(records, group),
                    n_draws=n, sample_size=m)
    for name, (mu, sd) in (("herbivory", HERBIVORY), ("sink", SINK), ("DOC", DOC), ("BVOC", BVOC)):
        draws[name] = stream(seed, name).normal(mu, sd, size=n)
    return draws


def npp_values(npp: pd.DataFrame, config: BudgetConfig) -> np.ndarray:
    """The NPP estimates resampled: those inside ``config.npp_range``."""
    lo, hi = config.npp_range
    v = npp["value"].to_numpy(dtype=float)
    kept = v[(v >= lo) & (v <= hi)]
    if kept.size == 0:
        raise DataError(None, None, "NPP", f"no NPP estimate within {lo:g}–{hi:g} Pg C yr-1",
                        "check ITONPP.CSV (global NPP in Pg C per year)")
    return kept


# calc_bootstrap_rs weights Froot by land area in every scenario (Rroot = Ra_avg1 · Froot2 in
# scenario 1 too), so the pooled variant pools Ra:GPP but not the top-down Froot.
TOP_DOWN_FROOT = "Froot"


def weighted_ratio(draws: Mapping[str, np.ndarray], ratio: str, weighting: str,
                   shares: Mapping[str, float]) -> np.ndarray:
    """The global ratio: all records, or Σ share_g · ratio_g + (1 − Σ share_g) · ratio_all."""
    if weighting == "pooled":
        return draws[f"{ratio}_all"]
    total = np.zeros_like(draws[f"{ratio}_all"])
    used = 0.0
    for group in WEIGHT_GROUPS[ratio]:
        share = float(shares.get(group, 0.0))
        if share:  # a group without land area needs no draws
            total = total + share * draws[f"{ratio}_{group}"]
            used += share
    return total + (1.0 - used) * draws[f"{ratio}_all"]


def implied_gpp(draws: Mapping[str, np.ndarray], weighting: str,
                shares: Mapping[str, float]) -> np.ndarray:
    """Bottom-up GPP = NPP + Rroot + Rshoot, Rroot = RS·RC, Rshoot = Rroot·(1 − Froot)/Froot."""
    rc = weighted_ratio(draws, "RC", weighting, shares)
    froot = weighted_ratio(draws, "Froot", weighting, shares)
    rroot = draws["RS_direct"] * rc
    rshoot = rroot * (1.0 - froot) / froot
    return draws["NPP"] + rroot + rshoot


def autotrophic_respiration(gpp: np.ndarray, npp: np.ndarray, ragpp: np.ndarray) -> np.ndarray:
    """Ra = mean of GPP·(Ra:GPP) and GPP − NPP, the latter replaced by GPP·(Ra:GPP) when negative."""
    ra_ratio = gpp * ragpp
    ra_diff = gpp - npp
    ra_diff = np.where(ra_diff < 0, ra_ratio, ra_diff)
    return (ra_ratio + ra_diff) / 2.0


def implied_rs(draws: Mapping[str, np.ndarray], weighting: str,
               shares: Mapping[str, float]) -> np.ndarray:
    """Top-down RS = NPP − herbivory − fire − sink − DOC − BVOC + Ra·Froot (Froot area-weighted
    whatever ``weighting``, see ``TOP_DOWN_FROOT``)."""
    ragpp = weighted_ratio(draws, "RaGPP", weighting, shares)
    froot = weighted_ratio(draws, TOP_DOWN_FROOT, "area", shares)
    ra = autotrophic_respiration(draws["GPP_direct"], draws["NPP"], ragpp)
    return (draws["NPP"] - draws["herbivory"] - draws["fire"] - draws["sink"] - draws["DOC"]
            - draws["BVOC"] + ra * froot)


GPP_INPUTS = ("RS_direct", "NPP", "RC", "Froot")
RS_INPUTS = ("GPP_direct", "NPP", "RaGPP", "Froot", "herbivory", "fire", "sink", "DOC", "BVOC")


def _inputs_of(draws: Mapping[str, np.ndarray], names: tuple[str, ...]) -> list[str]:
    """Keys of ``draws`` that feed a flux: the names themselves or ratio draws ``RATIO_group``."""
    return [k for k in draws if k in names or (k.split("_")[0] in names and k.split("_")[0]
                                                in ("RC", "Froot", "RaGPP"))]


# ---------------------------------------------------------------- agreement and decomposition
def interval(x: np.ndarray) -> tuple[float, float, float]:
    lo, mid, hi = np.quantile(np.asarray(x, dtype=float), CI_QUANTILES)
    return float(lo), float(mid), float(hi)


def empirical_agreement(implied: np.ndarray, lo: float, hi: float) -> float:
    """Fraction of implied draws inside [lo, hi] (no normal approximation)."""
    implied = np.asarray(implied, dtype=float)
    return float(np.mean((implied >= lo) & (implied <= hi)))


def _r_density(x: np.ndarray, n: int = 1024, cut: float = 3.0):
    """R's ``approxfun(density(x, n = 1024))``: Gaussian kernel, bandwidth bw.nrd0, on the grid
    min(x) − 3·bw … max(x) + 3·bw, linear between grid points and NaN outside."""
    iqr = float(np.subtract(*np.quantile(x, [0.75, 0.25])))
    sd = float(np.std(x, ddof=1))
    spread = min(sd, iqr / 1.34) or sd or abs(float(x[0])) or 1.0
    bw = 0.9 * spread * x.size ** -0.2
    grid = np.linspace(x.min() - cut * bw, x.max() + cut * bw, n)
    dens = np.zeros(n)
    for chunk in np.array_split(x, max(1, x.size // 1000)):
        dens += np.exp(-0.5 * ((grid[:, None] - chunk[None, :]) / bw) ** 2).sum(axis=1)
    dens /= x.size * bw * np.sqrt(2.0 * np.pi)
    return lambda t: np.interp(t, grid, dens, left=np.nan, right=np.nan)


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    """calc_overlap's traprule: intervals with a missing end (outside the density grid) drop out."""
    return float(np.nansum(np.diff(x) * (y[:-1] + y[1:])) / 2.0)


# Where calc_overlap looks for the intersection (Topdown_GlobalRs.Rmd, GlobalC_nc_revision.Rmd).
OVERLAP_INTERVALS = {"GPP": (100.0, 150.0), "RS": (70.0, 90.0)}
# calc_overlap tests normality on at most this many draws (the limit of R's shapiro.test).
SHAPIRO_MAX = 5000
OVERLAP_STEP = 0.01   # integration step of calc_overlap, Pg C yr⁻¹


def density_overlap(left: np.ndarray, right: np.ndarray, interval: tuple[float, float] | None = None,
                    rng: np.random.Generator | None = None) -> dict[str, float]:
    """Overlap of two distributions as ``calc_overlap`` (functions-stats.R) measures it.

    Each sample (at most 5,000 draws, subsampled without replacement) is described by a Normal
    when the Shapiro–Wilk test does not reject normality (p ≥ 0.05), else by its kernel density;
    the intersection is the root of f_left − f_right in ``interval`` (the R code's: GPP 100–150,
    RS 70–90 Pg C yr⁻¹; the two means when it brackets no root); ``left_share`` is the area of the
    lower distribution above the intersection, ``right_share`` that of the upper one below it
    (trapezoid rule, step 0.01). ``overlap`` is the coefficient ∫min(f, g) of the same densities.
    ``left`` is the sample with the lower mean (the two are swapped otherwise).
    """
    from scipy import optimize

    rng = np.random.default_rng(0) if rng is None else rng
    left = np.asarray(left, dtype=float)
    right = np.asarray(right, dtype=float)
    if left.mean() > right.mean():
        left, right = right, left
    dists = []
    for x in (left, right):
        if x.size > SHAPIRO_MAX:
            x = rng.choice(x, SHAPIRO_MAX, replace=False)
        if stats.shapiro(x).pvalue >= 0.05:
            mu, sd = float(x.mean()), float(x.std(ddof=1))
            dists.append((x, lambda t, mu=mu, sd=sd: stats.norm.pdf(t, mu, sd)))
        else:
            dists.append((x, _r_density(x)))
    (left, f), (right, g) = dists

    def diff(t):
        return float(np.nan_to_num(f(t)) - np.nan_to_num(g(t)))

    lo, hi = interval if interval is not None else (left.mean(), right.mean())
    if not diff(lo) * diff(hi) < 0:
        lo, hi = left.mean(), right.mean()
    x0 = float(optimize.brentq(diff, lo, hi, xtol=1e-6)) if diff(lo) * diff(hi) < 0 else float(
        (left.mean() + right.mean()) / 2)
    upper = np.arange(x0, 4.0 * left.max() + OVERLAP_STEP / 2, OVERLAP_STEP)
    lower = np.arange(0.0, x0 + OVERLAP_STEP / 2, OVERLAP_STEP)
    grid = np.linspace(min(left.min(), right.min()), max(left.max(), right.max()), 4096)
    return {"intersection": x0,
            "overlap": _trapezoid(grid, np.fmin(np.nan_to_num(f(grid)), np.nan_to_num(g(grid)))),
            "left_share": _trapezoid(upper, f(upper)), "right_share": _trapezoid(lower, g(lower))}


def variance_decomposition(draws: Mapping[str, np.ndarray],
                           compute: Callable[[Mapping[str, np.ndarray]], np.ndarray]) -> pd.Series:
    """Share of the output variance removed by freezing each input at its median (variance_decomp)."""
    full = float(np.var(compute(draws), ddof=1))
    shares = {}
    for name, values in draws.items():
        frozen = dict(draws)
        frozen[name] = np.full_like(values, np.median(values))
        shares[name] = (full - float(np.var(compute(frozen), ddof=1))) / full
    return pd.Series(shares, name="contribution").sort_values(ascending=False)


# ---------------------------------------------------------------- one full run
@dataclasses.dataclass
class BudgetResult:
    """Draws (dims variant × draw) of the four fluxes and the tidy summary table."""

    draws: xr.Dataset
    summary: pd.DataFrame
    input_draws: dict[str, dict[str, np.ndarray]]


def _row(quantity: str, variant: str, values: np.ndarray | float, **extra) -> dict:
    if np.ndim(values):
        lo, mid, hi = interval(values)
        row = {"median": mid, "ci_low": lo, "ci_high": hi, "mean": float(np.mean(values)),
               "sd": float(np.std(values, ddof=1))}
    else:
        row = {"median": float(values), "ci_low": np.nan, "ci_high": np.nan, "mean": np.nan,
               "sd": np.nan}
    return {"quantity": quantity, "variant": variant, "method": "resampling", "term": "", **row,
            **extra}


def summarise_variant(name: str, fluxes: Mapping[str, np.ndarray],
                      vardecomp: Mapping[str, pd.Series] | None = None, seed: int = 0) -> list[dict]:
    """Summary rows of one variant: fluxes, differences, agreement, overlap, variance shares."""
    rows = [_row(q, name, fluxes[q]) for q in ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied")]
    for flux in ("GPP", "RS"):
        direct, implied = fluxes[f"{flux}_direct"], fluxes[f"{flux}_implied"]
        lo, _, hi = interval(direct)
        rows.append(_row(f"{flux}_implied_minus_direct", name, implied - direct))
        rows.append(_row(f"p_agree_{flux}", name, agreement_probability(implied, lo, hi)))
        rows.append(_row(f"p_agree_{flux}_empirical", name, empirical_agreement(implied, lo, hi)))
        ov = density_overlap(direct, implied, OVERLAP_INTERVALS[flux],
                             stream(seed, f"overlap|{flux}|{name}"))
        rows.append(_row(f"overlap_{flux}", name, ov["overlap"]))
        rows.append(_row(f"intersection_{flux}", name, ov["intersection"]))
        rows.append(_row(f"overlap_{flux}_direct_share", name,
                         ov["left_share"] if direct.mean() < implied.mean() else ov["right_share"]))
        rows.append(_row(f"overlap_{flux}_implied_share", name,
                         ov["right_share"] if direct.mean() < implied.mean() else ov["left_share"]))
    for quantity, shares in (vardecomp or {}).items():
        for term, share in shares.items():
            rows.append(_row(f"variance_share_{quantity}", name, float(share), term=term))
    return rows


def run_resampling(inputs, config: BudgetConfig = BudgetConfig(), seed: int = 20190827) -> BudgetResult:
    """All configured variants: draws, summary rows (quantity, variant, term, median, ci_low, …)."""
    shares = inputs.area_shares
    rows: list[dict] = []
    arrays: dict[str, list[np.ndarray]] = {q: [] for q in ("GPP_direct", "GPP_implied", "RS_direct",
                                                          "RS_implied")}
    input_draws = {}
    for name in config.variants:
        variant = VARIANTS[name]
        d = draw_inputs(inputs, config, variant, seed)
        input_draws[name] = d
        fluxes = {
            "GPP_direct": d["GPP_direct"], "RS_direct": d["RS_direct"],
            "GPP_implied": implied_gpp(d, variant.weighting, shares),
            "RS_implied": implied_rs(d, variant.weighting, shares),
        }
        gpp_keys = _inputs_of(d, GPP_INPUTS)
        rs_keys = _inputs_of(d, RS_INPUTS)
        vardecomp = {
            "GPP_implied": variance_decomposition(
                {k: d[k] for k in gpp_keys}, lambda x: implied_gpp(x, variant.weighting, shares)),
            "RS_implied": variance_decomposition(
                {k: d[k] for k in rs_keys}, lambda x: implied_rs(x, variant.weighting, shares)),
        }
        rows += summarise_variant(name, fluxes, vardecomp, seed)
        for q in arrays:
            arrays[q].append(fluxes[q])
    ds = xr.Dataset(
        {q: (("variant", "draw"), np.vstack(v)) for q, v in arrays.items()},
        coords={"variant": list(config.variants), "draw": np.arange(config.n_draws)},
    )
    for q in ds.data_vars:
        ds[q].attrs["units"] = "Pg C yr-1"
    ds["variant"].attrs["description"] = "; ".join(
        f"{v}: {VARIANTS[v].description}" for v in config.variants)
    return BudgetResult(draws=ds, summary=pd.DataFrame(rows), input_draws=input_draws)


def comparison_table(summary: pd.DataFrame, variant: str = DEFAULT_VARIANT) -> pd.DataFrame:
    """Reproduced vs published numbers for one variant (relative differences of median and bounds)."""
    out = []
    for quantity, (pub, pub_lo, pub_hi) in PUBLISHED.items():
        got = summary[(summary["quantity"] == quantity) & (summary["variant"] == variant)]
        if got.empty:
            continue
        r = got.iloc[0]
        out.append({"quantity": quantity, "variant": variant, "median": r["median"],
                    "ci_low": r["ci_low"], "ci_high": r["ci_high"], "published": pub,
                    "published_low": pub_lo, "published_high": pub_hi,
                    "rel_diff_median": r["median"] / pub - 1})
    return pd.DataFrame(out)


# ---------------------------------------------------------------- Bayesian alternative
RATIO_NAMES = ("RC", "Froot", "RaGPP")


def _index(labels: pd.Series, levels: tuple[str, ...] | list[str]) -> np.ndarray:
    lookup = {lvl: i for i, lvl in enumerate(levels)}
    return np.array([lookup[x] for x in labels], dtype=int)


def bayes_data(inputs, config: BudgetConfig = BudgetConfig()) -> dict:
    """The arrays and labels ``build_bayes_model`` uses (exposed for tests and provenance)."""
    gpp = inputs.gpp[inputs.gpp["pub_year"] > config.min_pub_year].reset_index(drop=True)
    rs = select_rs(inputs.rs, config)
    gpp_levels = [g for g in ("remote_sensing", "process_model", "site_upscaling", "isotope_sif",
                              "mixed") if (gpp["method_group"] == g).any()]
    if "remote_sensing" not in gpp_levels:
        raise DataError(None, None, "Group", "no remote-sensing GPP estimates",
                        "the Bayesian direct GPP is the remote-sensing method group")
    rs_levels = sorted(rs["method_group"].unique())
    data = {
        "gpp_value": gpp["value"].to_numpy(float), "gpp_sd": np.nan_to_num(gpp["sd"].to_numpy(float)),
        "gpp_method": _index(gpp["method_group"], gpp_levels), "gpp_levels": gpp_levels,
        "rs_value": rs["value"].to_numpy(float), "rs_sd": np.nan_to_num(rs["sd"].to_numpy(float)),
        "rs_method": _index(rs["method_group"], rs_levels), "rs_levels": rs_levels,
        "npp_value": inputs.npp["value"].to_numpy(float),
        "fire_value": inputs.fire["value"].to_numpy(float),
        "fire_sd": np.nan_to_num(inputs.fire["sd"].to_numpy(float)),
        "shares": dict(inputs.area_shares),
    }
    for ratio, records in zip(RATIO_NAMES, (inputs.rc, inputs.froot, inputs.ragpp)):
        levels = [g for g in (*WEIGHT_GROUPS[ratio], "other")
                  if g in set(records["group"])] or ["other"]
        groups = records["group"].where(records["group"].isin(levels), "other")
        if "other" not in levels and (groups == "other").any():
            levels.append("other")
        values = np.clip(records["value"].to_numpy(float), 1e-4, 1 - 1e-4)
        index = _index(groups, levels)
        data[ratio] = {
            "value": values, "group": index, "levels": levels,
            "counts": np.bincount(index, minlength=len(levels)).astype(float),
            "sum_log": np.bincount(index, np.log(values), minlength=len(levels)),
            "sum_log1m": np.bincount(index, np.log1p(-values), minlength=len(levels)),
        }
    return data


# Priors of the pooled literature means (Pg C yr⁻¹): Normal(mean, sd).
GPP_MEAN_PRIOR = (120.0, 40.0)
RS_MEAN_PRIOR = (85.0, 30.0)


def _one_hot(index: np.ndarray, n_groups: int) -> np.ndarray:
    """Group-membership matrix (groups × records): group sums as one product."""
    out = np.zeros((n_groups, index.size))
    out[index, np.arange(index.size)] = 1.0
    return out


def marginal_group_loglik(y, var, group: np.ndarray, n_groups: int, mu, tau):
    """Normal records with Normal group means integrated out, and the means' exact conditional.

    Model: y_i ~ Normal(θ[g_i], √v_i), θ_g ~ Normal(μ, τ). Integrating θ out leaves, per group, a
    Normal with covariance diag(v) + τ²·11ᵀ, whose log-density has a closed form (matrix
    determinant lemma and Sherman–Morrison): with w = 1/v, W_g = Σ w, S_g = Σ w (y − μ),

        log p = −½ [N log 2π + Σ log v + Σ_g log(1 + τ² W_g) + Σ w (y − μ)² − Σ_g τ² S_g² / (1 + τ² W_g)].

    Given (μ, τ, v) each θ_g is Normal with mean μ + τ² S_g / (1 + τ² W_g) and variance
    τ² / (1 + τ² W_g) (stable as τ → 0). Returns (log p, conditional means, conditional sds)
    as PyTensor expressions; ``y``, ``var``, ``mu`` and ``tau`` may be tensors.
    """
    import pytensor.tensor as pt

    group = np.asarray(group)
    one_hot = _one_hot(group, n_groups)
    w = 1.0 / var
    r = y - mu
    big_w = pt.dot(one_hot, w)
    s = pt.dot(one_hot, w * r)
    tau2 = tau**2
    denom = 1.0 + tau2 * big_w
    logp = -0.5 * (group.size * np.log(2.0 * np.pi) + pt.sum(pt.log(var)) + pt.sum(pt.log(denom))
                   + pt.sum(w * r**2) - pt.sum(tau2 * s**2 / denom))
    return logp, mu + tau2 * s / denom, pt.sqrt(tau2 / denom)


def pooled_estimates(y: np.ndarray, var, group: np.ndarray, n_groups: int, tau,
                     mu_prior: tuple[float, float]):
    """Two-level pooling with both the hyper-mean and the group means integrated out.

    Model: y_i ~ Normal(θ[g_i], √v_i), θ_g ~ Normal(μ, τ), μ ~ Normal(m₀, s₀). Per group the
    records reduce to their precision-weighted mean ȳ_g (W_g = Σ 1/v): the likelihood is
    N(ȳ_g; μ, √(τ² + 1/W_g)) times a factor free of μ and τ, so μ integrates out as one more
    ``marginal_group_loglik`` level, over the ȳ_g. Returns the log marginal likelihood of the
    records given (τ, v) and the exact conditionals to draw from, as a function of unit-Normal
    draws: ``draw(z_mu, z_groups) → (μ, θ)``. Every group must hold a record.
    """
    import pytensor.tensor as pt

    group = np.asarray(group)
    y = np.asarray(y, dtype=float)
    one_hot = _one_hot(group, n_groups)
    w = 1.0 / var
    big_w = pt.dot(one_hot, w)
    y_bar = pt.dot(one_hot, w * y) / big_w
    within = pt.sum(w * (y - pt.dot(one_hot.T, y_bar)) ** 2)
    free_of_mu = -0.5 * ((group.size - n_groups) * np.log(2.0 * np.pi) + pt.sum(pt.log(var))
                         + pt.sum(pt.log(big_w)) + within)
    m0, s0 = mu_prior
    logp_mu, mu_mean, mu_sd = marginal_group_loglik(y_bar, tau**2 + 1.0 / big_w,
                                                    np.zeros(n_groups, dtype=int), 1, m0, s0)

    def draw(z_mu, z_groups):
        mu = mu_mean[0] + mu_sd[0] * z_mu
        tau2 = tau**2
        denom = 1.0 + tau2 * big_w
        theta = mu + tau2 * big_w * (y_bar - mu) / denom + pt.sqrt(tau2 / denom) * z_groups
        return mu, theta

    return free_of_mu + logp_mu, draw


def build_bayes_model(inputs, config: BudgetConfig = BudgetConfig()):
    """Hierarchical pooling of the literature estimates and ratios → posteriors of the budget.

    Literature estimates (Pg C yr⁻¹), with method-group means:
        GPP_i ~ Normal(θ[m_i], √(σ_GPP² + SD_i²)),  θ_m ~ Normal(μ_GPP, τ_GPP),
        m ∈ {remote sensing, process model, site upscaling, isotope / SIF, mixed};
        RS_i ~ Normal(μ_RS + β[m_i], √(σ_RS² + SD_i²)),  β_m ~ Normal(0, τ_RS),
        m ∈ basis of the estimate {annual, monthly, other} (A_M of GlobalRs.csv);
        fire_i ~ Normal(μ_fire, √(σ_fire² + SD_i²)); NPP_k ~ StudentT(ν, μ_NPP, σ_NPP) (Ito 2011
        compilation, heavy tails for its outlying values).
    μ_GPP ~ Normal(120, 40) and μ_RS ~ Normal(85, 30) (``GPP_MEAN_PRIOR``, ``RS_MEAN_PRIOR``).
    The hyper-means and the method-group means are integrated out of the likelihood
    (``pooled_estimates``: exact, closed form), so the sampler moves over (τ, σ) alone: no funnel
    between a group scale τ and the group effects, whichever way they are parameterised (with
    3–5 groups holding 3–33 estimates each neither the centred nor the non-centred form suits
    every group), and no banana between τ and μ (with 3 groups μ spreads as τ grows). μ and
    then the θ_m are drawn exactly from their Normal conditionals, μ = mean + sd · z_μ and
    θ_m = mean_m + sd_m · z_m with the z ~ Normal(0, 1) a posteriori independent of everything
    else: the same joint posterior as the hierarchical model, in a geometry NUTS samples
    without divergences. Herbivory, sink, DOC and BVOC (the published Normal(mean, sd)
    values) are sampled on the unit scale for the same reason.
    Ratios (fractions), per ecosystem group g with a Beta likelihood of mean μ_g (every group has
    ≥ 4 records, so the group means need no pooling):
        r_j ~ Beta(μ_g κ, (1 − μ_g) κ),  logit μ_g ~ Normal(0, 1.5),  κ ~ Gamma(2, 0.2).
    Derived (as the resampling recipe, area-weighted):
        ratio_global = Σ_g share_g μ_g + (1 − Σ share) · Σ_g (n_g/N) μ_g (record-weighted mean, the
        analogue of drawing the remaining land area from all records);
        GPP_direct = θ[remote sensing]; RS_direct = μ_RS;
        GPP_implied = μ_NPP + μ_RS · RC / Froot;
        RS_implied = μ_NPP − herbivory − fire − sink − DOC − BVOC + Froot · Ra(GPP_direct);
        GPP_diff = GPP_implied − GPP_direct, RS_diff = RS_implied − RS_direct.
    Priors are weakly informative on the scale of each quantity.
    """
    import pymc as pm
    import pytensor.tensor as pt

    d = bayes_data(inputs, config)
    coords = {"gpp_method": d["gpp_levels"], "rs_method": d["rs_levels"]}
    for ratio in RATIO_NAMES:
        coords[f"{ratio}_group"] = d[ratio]["levels"]
    with pm.Model(coords=coords) as model:
        # literature GPP with method-group means (integrated out, then drawn exactly)
        tau_gpp = pm.HalfNormal("tau_GPP_method", 20.0)
        sigma_gpp = pm.HalfNormal("sigma_GPP", 20.0)
        logp, draw = pooled_estimates(d["gpp_value"], sigma_gpp**2 + d["gpp_sd"] ** 2, d["gpp_method"],
                                      len(d["gpp_levels"]), tau_gpp, GPP_MEAN_PRIOR)
        pm.Potential("GPP_loglik", logp)
        mu_gpp, theta = draw(pm.Normal("z_GPP_mean", 0.0, 1.0),
                             pm.Normal("z_GPP_method", 0.0, 1.0, dims="gpp_method"))
        mu_gpp = pm.Deterministic("mu_GPP", mu_gpp)
        gpp_method_mean = pm.Deterministic("GPP_method_mean", theta, dims="gpp_method")
        pm.Deterministic("GPP_method_effect", gpp_method_mean - mu_gpp, dims="gpp_method")
        # literature RS with basis effects (the same construction around μ_RS)
        tau_rs = pm.HalfNormal("tau_RS_method", 10.0)
        sigma_rs = pm.HalfNormal("sigma_RS", 15.0)
        logp, draw = pooled_estimates(d["rs_value"], sigma_rs**2 + d["rs_sd"] ** 2, d["rs_method"],
                                      len(d["rs_levels"]), tau_rs, RS_MEAN_PRIOR)
        pm.Potential("RS_loglik", logp)
        mu_rs, theta = draw(pm.Normal("z_RS_mean", 0.0, 1.0),
                            pm.Normal("z_RS_method", 0.0, 1.0, dims="rs_method"))
        mu_rs = pm.Deterministic("mu_RS", mu_rs)
        pm.Deterministic("RS_method_effect", theta - mu_rs, dims="rs_method")
        # NPP and fire
        mu_npp = pm.Normal("mu_NPP", 55.0, 20.0)
        sigma_npp = pm.HalfNormal("sigma_NPP", 20.0)
        nu_npp = pm.Gamma("nu_NPP", 2.0, 0.1)
        pm.StudentT("NPP_obs", nu=nu_npp, mu=mu_npp, sigma=sigma_npp, observed=d["npp_value"])
        mu_fire = pm.TruncatedNormal("mu_fire", 3.5, 2.0, lower=0.0)
        sigma_fire = pm.HalfNormal("sigma_fire", 2.0)
        pm.Normal("fire_obs", mu_fire, pt.sqrt(sigma_fire**2 + d["fire_sd"] ** 2),
                  observed=d["fire_value"])
        # ratios per ecosystem group: Beta log-likelihood from per-group sufficient statistics
        # (n, Σ log r, Σ log(1 − r)) — the same posterior as per record, at the cost of a few groups
        global_ratio = {}
        for ratio in RATIO_NAMES:
            r = d[ratio]
            logit_mu = pm.Normal(f"logit_{ratio}", 0.0, 1.5, dims=f"{ratio}_group")
            kappa = pm.Gamma(f"kappa_{ratio}", 2.0, 0.2)
            mu_g = pm.Deterministic(f"{ratio}_group_mean", pm.math.invlogit(logit_mu),
                                    dims=f"{ratio}_group")
            a, b = mu_g * kappa, (1.0 - mu_g) * kappa
            pm.Potential(f"{ratio}_loglik", pt.sum(
                (a - 1.0) * r["sum_log"] + (b - 1.0) * r["sum_log1m"]
                - r["counts"] * (pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(kappa))))
            record_mean = pt.sum(mu_g * (r["counts"] / r["counts"].sum()))
            used = 0.0
            total = 0.0
            for i, group in enumerate(r["levels"]):
                if group in WEIGHT_GROUPS[ratio]:
                    share = float(d["shares"].get(group, 0.0))
                    total = total + share * mu_g[i]
                    used += share
            global_ratio[ratio] = pm.Deterministic(ratio, total + (1.0 - used) * record_mean)
        herb, sink, doc, bvoc = (
            pm.Deterministic(name, mean + sd * pm.Normal(f"z_{name}", 0.0, 1.0))
            for name, (mean, sd) in (("herbivory", HERBIVORY), ("sink", SINK), ("DOC", DOC),
                                     ("BVOC", BVOC)))
        gpp_direct = pm.Deterministic("GPP_direct",
                                      gpp_method_mean[d["gpp_levels"].index("remote_sensing")])
        rs_direct = pm.Deterministic("RS_direct", mu_rs)
        gpp_implied = pm.Deterministic(
            "GPP_implied", mu_npp + mu_rs * global_ratio["RC"] / global_ratio["Froot"])
        ra_ratio = gpp_direct * global_ratio["RaGPP"]
        ra_diff = gpp_direct - mu_npp
        ra = (ra_ratio + pt.switch(ra_diff < 0, ra_ratio, ra_diff)) / 2.0
        rs_implied = pm.Deterministic(
            "RS_implied", mu_npp - herb - mu_fire - sink - doc - bvoc + ra * global_ratio["Froot"])
        pm.Deterministic("GPP_diff", gpp_implied - gpp_direct)
        pm.Deterministic("RS_diff", rs_implied - rs_direct)
    return model


BAYES_FLUXES = ("GPP_direct", "GPP_implied", "RS_direct", "RS_implied", "GPP_diff", "RS_diff",
                "mu_NPP", "mu_fire", "RC", "Froot", "RaGPP")


def summarise_bayes(posterior: xr.Dataset) -> list[dict]:
    """Summary rows (method "bayes") from a posterior Dataset with dims (chain, draw)."""
    rows = []
    flat = {k: posterior[k].values.reshape(-1) for k in BAYES_FLUXES if k in posterior}
    for name, values in flat.items():
        row = _row(name, DEFAULT_VARIANT, values)
        row["method"] = "bayes"
        rows.append(row)
    for flux in ("GPP", "RS"):
        direct, implied = flat[f"{flux}_direct"], flat[f"{flux}_implied"]
        lo, _, hi = interval(direct)
        for quantity, value in ((f"p_agree_{flux}", agreement_probability(implied, lo, hi)),
                                (f"p_agree_{flux}_empirical", empirical_agreement(implied, lo, hi)),
                                (f"P_{flux}_diff_gt_0", float(np.mean(flat[f"{flux}_diff"] > 0)))):
            row = _row(quantity, DEFAULT_VARIANT, value)
            row["method"] = "bayes"
            rows.append(row)
    return rows
