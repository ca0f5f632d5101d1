"""Model M3: Bayesian random-effects meta-analysis of log response ratios (lnRR).

Effect size (names as in metafor's ``escalc(measure="ROM")``): for each experiment

    yi = ln(X̄_T / X̄_C),   vi = SD_T² / (n_T X̄_T²) + SD_C² / (n_C X̄_C²)      (delta method)

or, with ``bias_correction=True``, the second-order ("Δ") versions of Lajeunesse (2015, Ecology
96:2056, eqs. 9–10):

    yi = ln(X̄_T / X̄_C) + ½ [SD_T² / (n_T X̄_T²) − SD_C² / (n_C X̄_C²)]
    vi = (delta-method vi) + ½ [SD_T⁴ / (n_T² X̄_T⁴) + SD_C⁴ / (n_C² X̄_C⁴)].

Uptake fluxes are compared as magnitudes: when both means are negative, RR = |X̄_T| / |X̄_C| (RR > 1
= stronger uptake under treatment); the ratio of the signed means is the same number. A zero mean,
or a control and treatment of opposite sign, has no log ratio: that is an error (or, on request,
the row is dropped and counted).

Model (``build_rr_model``), i = experiment, j = level of the grouping moderator:

    yi ~ Normal(θ_i, √vi)
    θ_i = lnRR[j(i)] + Σ_m b_m · x_im (+ β · (warming_c_i − mean warming_c))
          + u_study[s(i)] + u_site[k(i)]
    u_study ~ Normal(0, τ_study),  u_site ~ Normal(0, τ_site)   (sites nested in studies)
    (``tau_by_level``: u_site ~ Normal(0, τ_site[j]), one effect per site × level, so the
    experiment-level heterogeneity differs between levels; τ_study stays shared)
    lnRR[j] ~ Normal(0, mu_prior_sd),  β ~ Normal(0, 1),  τ_study, τ_site ~ the stated τ prior.

Moderators (``RRSpec.moderators``, the terms after the grouping one; ``parse_moderators`` reads
``season,warming_c,ecosystem`` or ``season + warming_c + C(year)``): the design of R's
``~ 0 + season + warming_c + ecosystem``. The first categorical term is the grouping moderator
(one lnRR per level, no intercept; with none, one level ``all``). Every further categorical term
adds treatment contrasts b (each level against the first in sorted order, ``versus`` in the
summary), so lnRR[j] is the response at the reference level of those terms; a numeric term adds a
slope b, centred at the table's mean so lnRR[j] is the response there. A term is numeric when all
its values parse as numbers; ``C(name)`` makes it categorical. Priors: b ~ Normal(0, mu_prior_sd)
for a contrast, Normal(0, mu_prior_sd / SD(x)) for a slope (one SD of the moderator weighs as much
as a level). Derived columns usable as terms: ``direction`` and ``sei`` (= √vi, the small-study
term of Egger's test).

Flux direction (``RRSpec.directions``): emission and uptake experiments are never pooled into one
RR silently. ``"moderator"`` (default): when both are present, ``direction`` is added as a
categorical term (uptake against emission; lnRR[j] is then the emission response) and the result
says so; ``"refuse"``: a one-line DataError naming the rows of each direction; ``"pool"``: compare
both as magnitudes in one RR (what metafor does with such a table; stated in the output).

Two exact parameterisations of the same posterior (``RRSpec.parameterisation``):
``"marginal"`` (default) integrates u_study and u_site out analytically (``nested_normal_logp``,
O(rows)), leaving only the level means, β and the two τ to sample; ``"noncentred"`` samples
u = τ · z with z ~ Normal(0, 1). On dat.curtis1998 (102 rows, 29 studies) the non-centred form gave
2–4 divergences per 2,000 draws and a bulk ESS of ~140 for τ_study (a funnel near τ_study = 0);
the marginal form gave none and ~5× the ESS.

Derived per level: RR = exp(lnRR); τ = √(τ_study² + τ_site²) (the heterogeneity of a new
experiment; one value for all levels unless ``tau_by_level``); I² = τ² / (τ² + s²_j) with s²_j
the "typical" sampling variance of the level's experiments (Higgins & Thompson 2002);
lnRR_new = lnRR + τ · z_new, the prediction for a new experiment (its 95 % interval is the
prediction interval). With the warming slope, lnRR[j] is the
response at the mean applied warming of the table and ``RR_per_degC`` = exp(β).

The between-level quantities (``prob_greater``, ``overlap_coefficient``, ``agreement_probability``)
act on posterior draws and are pure functions too.
"""

from __future__ import annotations

import dataclasses
import itertools
import re

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from scipy import stats

from data.errors import DataError
from data.table import ROW_COLUMN, source_row
from models.summary import agreement_probability

TAU_FAMILIES = ("halfnormal", "halfcauchy", "halfstudentt", "exponential", "uniform")
DIRECTIONS = ("moderator", "refuse", "pool")
ALL_LEVEL = "all"  # the single level of a model without a grouping term


# ---------------------------------------------------------------- priors
@dataclasses.dataclass(frozen=True)
class TauPrior:
    """Prior of each heterogeneity SD (τ_study, τ_site), on the lnRR scale.

    ``family:scale`` in text: ``halfnormal:0.5`` (SD 0.5), ``halfcauchy:1``, ``halfstudentt:1``
    (3 degrees of freedom), ``exponential:1`` (mean 1), ``uniform:5`` (flat on 0…5).
    """

    family: str = "halfcauchy"
    scale: float = 0.5

    def __post_init__(self):
        if self.family not in TAU_FAMILIES:
            raise ValueError(f"unknown τ prior '{self.family}'; use one of {', '.join(TAU_FAMILIES)}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"τ prior scale must be a positive number, got {self.scale}")

    def __str__(self) -> str:
        return f"{self.family}:{self.scale:g}"

    def rv(self, name: str, **kwargs):
        s = self.scale
        match self.family:
            case "halfnormal":
                return pm.HalfNormal(name, sigma=s, **kwargs)
            case "halfcauchy":
                return pm.HalfCauchy(name, beta=s, **kwargs)
            case "halfstudentt":
                return pm.HalfStudentT(name, nu=3, sigma=s, **kwargs)
            case "exponential":
                return pm.Exponential(name, lam=1.0 / s, **kwargs)
            case "uniform":
                return pm.Uniform(name, lower=0.0, upper=s, **kwargs)
        raise AssertionError(self.family)


def parse_tau_prior(text: str) -> TauPrior:
    """``'halfnormal:0.5'`` → TauPrior; ValueError with the accepted forms otherwise."""
    family, sep, scale = str(text).strip().lower().partition(":")
    try:
        return TauPrior(family, float(scale) if sep else TauPrior.scale)
    except ValueError as exc:
        raise ValueError(f"bad τ prior '{text}': {exc} (write FAMILY:SCALE, e.g. halfnormal:0.5)") \
            from None


DEFAULT_TAU_PRIOR = TauPrior("halfcauchy", 0.5)
# Refits for the prior-sensitivity table: the weakly informative priors of bayesmeta's
# documentation (Röver 2020, J. Stat. Softw. 93(6): half-normal 0.5 and 1, half-Cauchy 0.5 and 1)
# and a proper stand-in for its default flat prior (uniform on 0…5), plus a tighter half-normal.
SENSITIVITY_TAU_PRIORS = (TauPrior("halfnormal", 0.25), TauPrior("halfnormal", 0.5),
                          TauPrior("halfnormal", 1.0), TauPrior("halfcauchy", 0.5),
                          TauPrior("halfcauchy", 1.0), TauPrior("uniform", 5.0))
DEFAULT_MU_PRIOR_SD = 2.0  # lnRR ±2 ↔ RR 0.14…7.4 at one prior SD


# ---------------------------------------------------------------- effect sizes
@dataclasses.dataclass
class Effects:
    """Per-experiment effect sizes: the input rows plus ``yi``, ``vi``, ``sei``, ``direction``,
    ``geary``."""

    table: pd.DataFrame
    bias_corrected: bool
    dropped: dict[str, int]
    source: str


def effect_sizes(table: pd.DataFrame, bias_correction: bool = False, on_sign_change: str = "error",
                 source: str = "<table>", source_columns: dict[str, str] | None = None) -> Effects:
    """lnRR (``yi``) and its sampling variance (``vi``) per row of a validated warming table.

    ``on_sign_change``: ``"error"`` (default) refuses a zero mean or means of opposite sign, naming
    the row; ``"drop"`` leaves such rows out and counts them in ``Effects.dropped``.
    ``geary`` is Geary's check of Lajeunesse (2015): X̄/SD · 4n^{3/2}/(1 + 4n) ≥ 3 in both groups
    means the delta-method approximation is trustworthy; rows failing it are only flagged.
    ``source_columns`` maps canonical column names to the source file's (for error messages).
    """
    if on_sign_change not in ("error", "drop"):
        raise ValueError("on_sign_change must be 'error' or 'drop'")
    t = table.reset_index(drop=True)
    mc, mt = t["control_mean"].to_numpy(float), t["treatment_mean"].to_numpy(float)
    zero = (mc == 0) | (mt == 0)
    flip = ~zero & (np.sign(mc) != np.sign(mt))
    dropped: dict[str, int] = {}
    if on_sign_change == "error":
        for mask, what in ((zero, "a group mean is zero"),
                           (flip, "control and treatment means have opposite signs")):
            if mask.any():
                i = int(np.flatnonzero(mask)[0])
                col = ("control_mean" if (mc[i] == 0 or not zero[i]) else "treatment_mean")
                # In the file's own unit when the reader converted it.
                f = float(t["unit_factor"].iloc[i]) if "unit_factor" in t.columns else 1.0
                raise DataError(source, source_row(t, i), (source_columns or {}).get(col, col),
                                f"{what} ({mc[i] / f:g} vs {mt[i] / f:g}): the log response ratio does not "
                                f"exist ({int(zero.sum() + flip.sum())} such rows)",
                                "remove the row, or pass --sign-change drop to leave such rows out "
                                "(counted in the output)")
    else:
        if zero.any():
            dropped["zero_mean"] = int(zero.sum())
        if flip.any():
            dropped["sign_change"] = int(flip.sum())
        keep = ~(zero | flip)
        t, mc, mt = t[keep].reset_index(drop=True), mc[keep], mt[keep]
    if t.empty:
        raise DataError(source, None, "control_mean", "no row has a log response ratio",
                        "give experiments whose control and treatment means share a sign")
    sc, st = t["control_sd"].to_numpy(float), t["treatment_sd"].to_numpy(float)
    nc, nt = t["control_n"].to_numpy(float), t["treatment_n"].to_numpy(float)
    rel_c, rel_t = sc**2 / (nc * mc**2), st**2 / (nt * mt**2)  # squared CV of each mean
    yi = np.log(mt / mc)  # = ln(|mt| / |mc|): signs agree
    vi = rel_t + rel_c
    if bias_correction:
        yi = yi + 0.5 * (rel_t - rel_c)
        vi = vi + 0.5 * (rel_t**2 + rel_c**2)
    out = t.copy()
    out["yi"], out["vi"] = yi, vi
    out["direction"] = np.where(mc > 0, "emission", "uptake")
    out["sei"] = np.sqrt(vi)
    out["geary"] = np.minimum(_geary(mc, sc, nc), _geary(mt, st, nt))
    return Effects(out, bias_correction, dropped, source)


def effects_from_yi_vi(table: pd.DataFrame, source: str = "<table>") -> Effects:
    """Effect sizes computed elsewhere (e.g. metafor's ``escalc``): a table with ``study``,
    ``site``, ``yi``, ``vi`` (and any moderator columns); direction and Geary's check unknown."""
    t = table.reset_index(drop=True).copy()
    bad = ~(np.isfinite(t["vi"].to_numpy(float)) & (t["vi"].to_numpy(float) > 0))
    if bad.any():
        raise DataError(source, source_row(t, int(np.flatnonzero(bad)[0])), "vi",
                        "sampling variance is not a positive number", "give vi > 0 on every row")
    for col, value in (("ecosystem", ""), ("warming_c", np.nan), ("direction", "unknown"),
                       ("geary", np.nan)):
        if col not in t.columns:
            t[col] = value
    t["sei"] = np.sqrt(t["vi"].to_numpy(float))
    return Effects(t, False, {}, source)


def _geary(mean, sd, n):
    """Geary's standardised mean with Lajeunesse's (2015) small-sample factor."""
    return np.abs(mean) / sd * 4 * n**1.5 / (1 + 4 * n)


# ---------------------------------------------------------------- model
@dataclasses.dataclass(frozen=True)
class RRSpec:
    """How the meta-analysis model is built."""

    moderator: str | None = "season"  # the grouping term (None: one level, "all")
    moderators: tuple[str, ...] = ()  # further terms: column names, C(name) for categorical
    directions: str = "moderator"  # or "refuse", "pool" (see the module docstring)
    warming_slope: bool = False
    tau_prior: TauPrior = DEFAULT_TAU_PRIOR
    mu_prior_sd: float = DEFAULT_MU_PRIOR_SD
    beta_prior_sd: float = 1.0
    levels: tuple[str, ...] | None = None  # order of the moderator levels (default: sorted)
    tau_by_level: bool = False  # a τ_site per level
    parameterisation: str = "marginal"  # or "noncentred"

    def __post_init__(self):
        if self.parameterisation not in ("marginal", "noncentred"):
            raise ValueError("parameterisation must be 'marginal' or 'noncentred'")
        if self.directions not in DIRECTIONS:
            raise ValueError(f"directions must be one of {', '.join(DIRECTIONS)}")
        object.__setattr__(self, "moderators", tuple(self.moderators))

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tau_prior"] = str(self.tau_prior)
        return d


def typical_variance(vi: np.ndarray) -> float:
    """Higgins & Thompson's (2002) typical within-study variance (metafor's I² denominator)."""
    w = 1.0 / np.asarray(vi, float)
    k = w.size
    if k < 2:
        return float(np.mean(vi))
    return float((k - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum()))


@dataclasses.dataclass
class RRData:
    """The arrays and labels the model is built on (also stored as observed/constant data)."""

    effects: pd.DataFrame
    levels: list[str]
    level_idx: np.ndarray
    studies: list[str]
    study_idx: np.ndarray
    sites: list[str]  # site groups: study/site, or study/site|level with tau_by_level
    site_idx: np.ndarray
    site_level_idx: np.ndarray  # level of each site group (used with tau_by_level)
    warming_c: np.ndarray | None
    warming_ref_c: float | None
    s2_typical: np.ndarray  # per level
    design: "Design"  # further moderator terms
    direction_note: str | None  # how emission and uptake were handled, when both are present


def _group_labels(keys: list[tuple[str, ...]]) -> list[str]:
    """Coordinate labels of site groups: ``study/site`` (``study/site|level``), or, where two
    groups would read the same because a name holds '/' or '|', the key tuples written out."""
    joined = ["/".join(k[:2]) + "".join(f"|{x}" for x in k[2:]) for k in keys]
    return joined if len(set(joined)) == len(joined) else [repr(k) for k in keys]


# ---------------------------------------------------------------- moderators
_TERM_RE = re.compile(r"^C\((?P<name>.+)\)$")


def parse_moderators(text: str | list | tuple) -> tuple[str, ...]:
    """``'season,warming_c,ecosystem'`` or ``'season + warming_c + C(year)'`` → the term names
    (``C(name)`` kept as written: it forces the column to be categorical). ValueError when empty."""
    items = re.split(r"[,+]", text) if isinstance(text, str) else list(text)
    terms = tuple(str(x).strip() for x in items)
    if not terms or any(not x for x in terms):
        raise ValueError(f"{text!r} has an empty moderator name "
                         "(write e.g. season,warming_c,ecosystem)")
    repeated = sorted({x for x in terms if terms.count(x) > 1})
    if repeated:
        raise ValueError(f"moderator '{repeated[0]}' is listed more than once")
    return terms


def _term(term: str) -> tuple[str, bool]:
    """(column, forced categorical) of a term."""
    m = _TERM_RE.match(term.strip())
    return (m["name"].strip(), True) if m else (term.strip(), False)


def _numeric_values(values: pd.Series) -> np.ndarray | None:
    """The column as floats when every value parses as a number, else None."""
    if pd.api.types.is_bool_dtype(values):
        return None
    num = pd.to_numeric(values, errors="coerce")
    return num.to_numpy(float) if num.notna().all() else None


def term_is_categorical(table: pd.DataFrame, term: str) -> bool:
    """Whether a term enters as categories (C(name), or values that are not all numbers)."""
    column, forced = _term(term)
    if forced or column not in table.columns:
        return True
    values = table[column]
    present = values[~_blank_mask(values)]
    return _numeric_values(present) is None


def _blank_mask(values: pd.Series) -> np.ndarray:
    return (values.isna() | values.astype(str).str.strip().eq("")).to_numpy()


def split_terms(table: pd.DataFrame, terms: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """(grouping term, further terms) from a formula's terms: the first categorical term groups."""
    for term in terms:
        if term_is_categorical(table, term):
            return _term(term)[0], tuple(x for x in terms if x != term)
    return None, tuple(terms)


def _column_options(t: pd.DataFrame, exclude: tuple[str, ...]) -> list[str]:
    return [c for c in t.columns if c not in ("study", "site", ROW_COLUMN, *exclude)
            and t[c].notna().all()]


def _term_values(effects: Effects, column: str, flag: str, what: str) -> pd.Series:
    """The column of a term, refused (DataError naming the row) when missing or blank."""
    t = effects.table
    if column not in t.columns:
        options = _column_options(t, ("yi", "vi", "geary", "unit_factor"))
        raise DataError(effects.source, 1, column, f"{what} column '{column}' is not in the table",
                        f"pass {flag} with columns of the table, e.g. {', '.join(options[:8])}")
    blank = _blank_mask(t[column])
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise DataError(effects.source, source_row(t, i), column,
                        f"{what} '{column}' is blank ({int(blank.sum())} of {len(t)} rows)",
                        f"fill it in every row, or leave it out of {flag}")
    return t[column]


@dataclasses.dataclass
class Design:
    """The moderator columns of the model: X (rows × coefficients) and what each column is."""

    X: np.ndarray
    names: list[str]  # coefficient labels: "ecosystem=wetland" or "warming_c"
    versus: list[str | None]  # a contrast's reference ("ecosystem=grassland"); None for a slope
    prior_sd: np.ndarray
    centres: dict[str, float]  # numeric term → the value it is centred at


def moderator_design(effects: Effects, terms: tuple[str, ...], mu_prior_sd: float) -> Design:
    """Treatment contrasts of categorical terms and centred slopes of numeric ones (R's coding)."""
    cols, names, versus, sd, centres = [], [], [], [], {}
    for term in terms:
        column, forced = _term(term)
        values = _term_values(effects, column, "--moderators", "moderator")
        num = None if forced else _numeric_values(values)
        if num is not None:
            if np.ptp(num) == 0:
                raise DataError(effects.source, None, column, f"moderator '{column}' has one value "
                                f"({num[0]:g}) in every row: its slope is not identifiable",
                                "leave it out of --moderators")
            centres[column] = float(num.mean())
            cols.append(num - num.mean())
            names.append(column)
            versus.append(None)
            sd.append(mu_prior_sd / float(num.std()))
            continue
        labels = values.astype(str).str.strip()
        cats = sorted(labels.unique())
        if len(cats) < 2:
            raise DataError(effects.source, None, column, f"moderator '{column}' has one category "
                            f"('{cats[0]}') in every row: its contrast is not identifiable",
                            "leave it out of --moderators")
        for c in cats[1:]:
            cols.append((labels == c).to_numpy(float))
            names.append(f"{column}={c}")
            versus.append(f"{column}={cats[0]}")
            sd.append(mu_prior_sd)
    X = np.column_stack(cols) if cols else np.zeros((len(effects.table), 0))
    return Design(X, names, versus, np.asarray(sd, float), centres)


def _rows_text(t: pd.DataFrame, mask: np.ndarray, limit: int = 6) -> str:
    rows = [str(source_row(t, int(i))) for i in np.flatnonzero(mask)]
    return ", ".join(rows[:limit]) + (f", … ({len(rows)} rows)" if len(rows) > limit else "")


def direction_terms(effects: Effects, spec: RRSpec) -> tuple[tuple[str, ...], str | None]:
    """The further terms with flux direction handled as ``spec.directions`` says, and the sentence
    the output states (None when the table has one direction or the user named the term)."""
    t = effects.table
    terms = spec.moderators
    named = spec.moderator == "direction" or any(_term(x)[0] == "direction" for x in terms)
    uptake = (t["direction"] == "uptake").to_numpy()
    if named or uptake.all() or not uptake.any():
        return terms, None
    if spec.directions == "refuse":
        raise DataError(effects.source, source_row(t, int(np.flatnonzero(uptake)[0])), "direction",
                        f"emission (rows {_rows_text(t, ~uptake)}) and uptake (rows "
                        f"{_rows_text(t, uptake)}) experiments would be pooled into one RR",
                        "add direction to --moderators, split the table, or pass --directions pool "
                        "to compare them as magnitudes")
    if spec.directions == "pool":
        return terms, (f"emission ({int((~uptake).sum())}) and uptake ({int(uptake.sum())}) "
                       "experiments pooled as magnitudes (--directions pool)")
    return (*terms, "direction"), (f"emission ({int((~uptake).sum())}) and uptake "
                                   f"({int(uptake.sum())}) experiments: direction added as a "
                                   "moderator (lnRR per level is the emission response)")


def prepare(effects: Effects, spec: RRSpec) -> RRData:
    """Index the experiments by level, study and site, build the moderator design; refuse what the
    model cannot use (DataError naming the row and column) before any sampling."""
    t = effects.table
    mod = spec.moderator
    terms, direction_note = direction_terms(effects, spec)
    for term in terms:
        if spec.warming_slope and _term(term)[0] == "warming_c":
            raise DataError(effects.source, None, "warming_c", "warming_c is both a moderator "
                            "and the warming slope",
                            "use one of --moderators warming_c and --warming-slope")
        if mod is not None and _term(term)[0] == mod:
            raise DataError(effects.source, None, mod, f"'{mod}' is both the grouping moderator and "
                            "a further term", "list each moderator once")
    if mod is None:
        labels = pd.Series(ALL_LEVEL, index=t.index)
    else:
        labels = _term_values(effects, mod, "--moderators", "moderator").astype(str).str.strip()
    present = sorted(labels.unique())
    if spec.levels is not None:
        unknown = [x for x in present if x not in spec.levels]
        if unknown:
            raise DataError(effects.source, None, mod, f"level '{unknown[0]}' is not in the "
                            f"requested order {list(spec.levels)}", "list every level present")
        levels = [x for x in spec.levels if x in present]
    else:
        levels = present
    level_idx = pd.Categorical(labels, categories=levels).codes.astype(int)
    study = t["study"].astype(str)
    # Sites are nested in studies: a site group is the pair (study, site), grouped on the two
    # keys, never on a joined string ("A/B" + "C" and "A" + "B/C" are different sites).
    keys = pd.DataFrame({"study": study, "site": t["site"].astype(str)})
    if spec.tau_by_level:
        keys["level"] = labels
    grouped = keys.groupby(list(keys.columns), sort=True, dropna=False)
    site_idx = grouped.ngroup().to_numpy(dtype=int)
    sites = _group_labels(list(grouped.size().index))
    studies = sorted(study.unique())
    if len(studies) < 2:
        raise DataError(effects.source, None, "study",
                        f"only one study ({studies[0]}), so the between-study spread τ cannot be "
                        "estimated and there is nothing to pool",
                        "pool at least two studies (one experiment's response ratio is its own "
                        "estimate, with its own standard error)")
    study_idx = pd.Categorical(study, categories=studies).codes.astype(int)
    site_level_idx = np.zeros(len(sites), dtype=int)
    site_level_idx[site_idx] = level_idx
    warming, ref = None, None
    if spec.warming_slope:
        w = t["warming_c"].to_numpy(float)
        bad = ~np.isfinite(w)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(effects.source, source_row(t, i), "warming_c",
                            f"applied warming is blank ({int(bad.sum())} rows) but the warming "
                            "slope needs it", "fill warming_c, or fit without --warming-slope")
        if np.ptp(w) == 0:
            raise DataError(effects.source, None, "warming_c", "every experiment has the same "
                            "warming: the slope is not identifiable", "fit without --warming-slope")
        warming, ref = w, float(w.mean())
    vi = t["vi"].to_numpy(float)
    s2 = np.array([typical_variance(vi[level_idx == j]) for j in range(len(levels))])
    design = moderator_design(effects, terms, spec.mu_prior_sd)
    return RRData(t, levels, level_idx, studies, study_idx, sites, site_idx, site_level_idx,
                  warming, ref, s2, design, direction_note)


def build_rr_model(effects: Effects, spec: RRSpec = RRSpec()) -> pm.Model:
    """The random-effects meta-regression of ``effects`` as a PyMC model (see module docstring)."""
    d = prepare(effects, spec)
    t = d.effects
    obs_labels = [f"{s}/{k}#{r}" for s, k, r in
                  zip(t["study"].astype(str), t["site"].astype(str), t.get(ROW_COLUMN, t.index))]
    coords = {"level": d.levels, "study": d.studies, "site": d.sites, "obs": obs_labels,
              **({"coef": d.design.names} if d.design.names else {})}
    with pm.Model(coords=coords) as model:
        vi = pm.Data("vi", t["vi"].to_numpy(float), dims="obs")
        level_idx = pm.Data("level_idx", d.level_idx, dims="obs")
        study_idx = pm.Data("study_idx", d.study_idx, dims="obs")
        site_idx = pm.Data("site_idx", d.site_idx, dims="obs")
        s2 = pm.Data("s2_typical", d.s2_typical, dims="level")

        ln_rr = pm.Normal("lnRR", 0.0, spec.mu_prior_sd, dims="level")
        tau_study = spec.tau_prior.rv("tau_study")
        if spec.tau_by_level:
            tau_site = spec.tau_prior.rv("tau_site", dims="level")
            tau_site_group = tau_site[d.site_level_idx]
        else:
            tau_site = spec.tau_prior.rv("tau_site")
            tau_site_group = pt.repeat(tau_site, len(d.sites))
        mean = ln_rr[level_idx]
        if d.warming_c is not None:
            w = pm.Data("warming_c", d.warming_c, dims="obs")
            beta = pm.Normal("lnRR_per_degC", 0.0, spec.beta_prior_sd)
            mean = mean + beta * (w - d.warming_ref_c)
            pm.Deterministic("RR_per_degC", pt.exp(beta))
        if d.design.names:
            X = pm.Data("moderators", d.design.X, dims=("obs", "coef"))
            b = pm.Normal("beta", 0.0, d.design.prior_sd, dims="coef")
            mean = mean + pt.dot(X, b)
            pm.Deterministic("exp_beta", pt.exp(b), dims="coef")
        pm.Deterministic("fitted", mean, dims="obs")  # the moderators' part of each θ_i
        y = t["yi"].to_numpy(float)
        site_of = np.eye(len(d.sites))[d.site_idx].T  # sites × obs indicator
        study_of_site = np.zeros((len(d.studies), len(d.sites)))
        study_of_site[d.study_idx, d.site_idx] = 1.0
        # Each study's marginal likelihood (effects integrated out), in either parameterisation:
        # the leave-one-study-out weights come from it.
        pm.Deterministic("loglik_study", nested_normal_study_logp(
            y - mean, vi, tau_site_group, tau_study, site_of, study_of_site), dims="study")
        if spec.parameterisation == "marginal":
            def logp(value, mean, vi, tau_study, tau_site_group):
                return nested_normal_logp(value - mean, vi, tau_site_group, tau_study,
                                          site_of, study_of_site)

            pm.CustomDist("yi", mean, vi, tau_study, tau_site_group, logp=logp, observed=y,
                          signature="(n),(n),(),(k)->(n)", dims="obs")
        else:
            z_study = pm.Normal("z_study", 0.0, 1.0, dims="study")
            z_site = pm.Normal("z_site", 0.0, 1.0, dims="site")
            theta = (mean + tau_study * z_study[study_idx]
                     + tau_site_group[site_idx] * z_site[site_idx])
            pm.Normal("yi", mu=theta, sigma=pt.sqrt(vi), observed=y, dims="obs")

        pm.Deterministic("RR", pt.exp(ln_rr), dims="level")
        tau = pm.Deterministic("tau", pt.sqrt(tau_study**2 + tau_site**2),
                               dims="level" if spec.tau_by_level else None)
        pm.Deterministic("I2", tau**2 / (tau**2 + s2), dims="level")
        # A new experiment's true effect: its interval is the prediction interval.
        z_new = pm.Normal("z_new", 0.0, 1.0, dims="level")
        ln_rr_new = pm.Deterministic("lnRR_new", ln_rr + tau * z_new, dims="level")
        pm.Deterministic("RR_new", pt.exp(ln_rr_new), dims="level")
    return model


def _reduce(r, w, member):
    """Collapse Gaussian observations r (precisions w) sharing one mean per group (rows of
    ``member``): per-group precision W, precision-weighted mean, and the log-density left over
    per group."""
    W = pt.dot(member, w)
    A = pt.dot(member, w * r)
    Q = pt.dot(member, w * r**2)
    rest = -0.5 * (Q - A**2 / W) + 0.5 * pt.log(2 * np.pi / W)
    return W, A / W, rest


def nested_normal_logp(resid, vi, tau_site, tau_study, site_of, study_of_site):
    """Exact log-likelihood of the whole table (the sum of ``nested_normal_study_logp``)."""
    return pt.sum(nested_normal_study_logp(resid, vi, tau_site, tau_study, site_of, study_of_site))


def nested_normal_study_logp(resid, vi, tau_site, tau_study, site_of, study_of_site):
    """Exact log-likelihood of each study's residuals with nested random effects integrated out.

    resid_i = u_study + u_site + e_i, e_i ~ N(0, vi), u_site ~ N(0, τ_site²) within
    u_study ~ N(0, τ_study²); ``tau_site`` is a scalar or one value per site (row of
    ``site_of``). The rows of a site collapse to their precision-weighted mean (the rest of
    their likelihood does not depend on the effects), the site means of a study likewise, and
    each Gaussian effect is integrated analytically — the multivariate normal density of the
    whole table in O(rows), with no matrix factorisation and no funnel for the sampler.
    """
    w = 1.0 / vi
    W_site, y_site, rest_rows = _reduce(resid, w, site_of)
    v_site = 1.0 / W_site + tau_site**2  # site mean given the study effect
    W_study, y_study, rest_sites = _reduce(y_site, 1.0 / v_site, study_of_site)
    v_study = 1.0 / W_study + tau_study**2
    per_site = (pt.dot(site_of, -0.5 * pt.log(2 * np.pi * vi)) + rest_rows
                - 0.5 * pt.log(2 * np.pi * v_site))
    return (pt.dot(study_of_site, per_site) + rest_sites
            - 0.5 * (pt.log(2 * np.pi * v_study) + y_study**2 / v_study))


# ---------------------------------------------------------------- between levels
def prob_greater(a: np.ndarray, b: np.ndarray) -> float:
    """P(a > b) from paired joint-posterior draws."""
    a, b = np.ravel(a), np.ravel(b)
    return float(np.mean(a > b))


def overlap_coefficient(a: np.ndarray, b: np.ndarray, grid_size: int = 1024) -> float:
    """Overlap ∫ min(f_a, f_b) of two densities, each estimated by a Gaussian KDE of its draws.

    1 for identical distributions, 0 for disjoint ones; invariant to a monotone transform of both
    (computed on whatever scale the draws are given — lnRR is the natural one).
    """
    a, b = np.ravel(a).astype(float), np.ravel(b).astype(float)
    ka, kb = stats.gaussian_kde(a), stats.gaussian_kde(b)
    pad = 4 * max(a.std() * ka.factor, b.std() * kb.factor)
    grid = np.linspace(min(a.min(), b.min()) - pad, max(a.max(), b.max()) + pad, grid_size)
    return float(np.clip(np.trapezoid(np.minimum(ka(grid), kb(grid)), grid), 0.0, 1.0))


def level_pairs(levels: list[str]) -> list[tuple[str, str]]:
    """Ordered pairs (a, b) compared as a − b: each later level against each earlier one.

    With the default sorted seasons this is (non-growing, growing), i.e. P(RR_nongrowing > RR_growing).
    """
    return [(levels[j], levels[i]) for i, j in itertools.combinations(range(len(levels)), 2)]


def between_levels(ln_rr: np.ndarray, levels: list[str]) -> pd.DataFrame:
    """Per pair (level a, versus b): P(RR_a > RR_b), overlap, agreement both ways.

    ``ln_rr``: draws × levels (joint posterior draws of lnRR, flattened over chains).
    """
    ln_rr = np.asarray(ln_rr, float)
    rows = []
    for a, b in level_pairs(levels):
        da, db = ln_rr[:, levels.index(a)], ln_rr[:, levels.index(b)]
        rows.append({"level": a, "versus": b, "P_diff_gt_0": prob_greater(da, db),
                     "overlap": overlap_coefficient(da, db),
                     "p_agree": agreement_probability(da, db),
                     "p_agree_reverse": agreement_probability(db, da)})
    return pd.DataFrame(rows, columns=["level", "versus", "P_diff_gt_0", "overlap", "p_agree",
                                       "p_agree_reverse"])


def warming_by_level(d: RRData) -> pd.DataFrame:
    """Number of experiments and mean ± SD of the applied warming per level (data, not posterior)."""
    t = d.effects
    rows = []
    for j, level in enumerate(d.levels):
        w = t["warming_c"].to_numpy(float)[d.level_idx == j]
        w = w[np.isfinite(w)]
        rows.append({"level": level, "k": int((d.level_idx == j).sum()),
                     "n_studies": int(np.unique(d.study_idx[d.level_idx == j]).size),
                     "warming_mean": float(w.mean()) if w.size else np.nan,
                     "warming_sd": float(w.std(ddof=1)) if w.size > 1 else np.nan,
                     "warming_n": int(w.size)})
    return pd.DataFrame(rows)




# ---------------------------------------------------------------- influence
def weighted_quantiles(x: np.ndarray, log_w: np.ndarray, q) -> np.ndarray:
    """Quantiles of draws ``x`` under (log) importance weights."""
    order = np.argsort(x)
    w = np.exp(log_w[order] - log_w.max())
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(q, cdf, x[order])


def leave_one_study_out(loglik_study: np.ndarray, draws: dict[str, np.ndarray],
                        studies: list[str]) -> pd.DataFrame:
    """Posterior of each quantity with one study left out, by Pareto-smoothed importance
    sampling of the full posterior (weights 1 / p(y_study | θ), the study's marginal likelihood;
    arviz_stats' PSIS). ``loglik_study``: draws × studies; ``draws``: name → draws. A Pareto k
    above 0.7 means the weights are unreliable and that study needs a refit.
    """
    from arviz_stats.base import array_stats

    from models.conventions import CI_QUANTILES

    # arviz_stats' psislw takes the log-likelihood and negates it itself.
    log_w, k = array_stats.psislw(np.asarray(loglik_study, float).T, axis=-1)
    rows = []
    for s, study in enumerate(studies):
        lw = log_w[s] - np.logaddexp.reduce(log_w[s])
        w = np.exp(lw)
        for name, x in draws.items():
            x = np.ravel(x)
            mean = float(np.sum(w * x))
            lo, med, hi = weighted_quantiles(x, lw, CI_QUANTILES)
            rows.append({"study": study, "quantity": name, "mean": mean,
                         "sd": float(np.sqrt(np.sum(w * (x - mean) ** 2))), "median": med,
                         "ci_low": lo, "ci_high": hi, "pareto_k": float(k[s])})
    return pd.DataFrame(rows)


__all__ = ["ALL_LEVEL", "DEFAULT_TAU_PRIOR", "DIRECTIONS", "Design", "Effects", "RRData", "RRSpec",
           "SENSITIVITY_TAU_PRIORS", "TauPrior", "agreement_probability", "between_levels",
           "build_rr_model", "direction_terms", "effect_sizes", "effects_from_yi_vi", "leave_one_study_out", "level_pairs",
           "moderator_design", "nested_normal_logp", "nested_normal_study_logp",
           "overlap_coefficient", "parse_moderators", "parse_tau_prior", "prepare", "prob_greater",
           "split_terms", "term_is_categorical", "typical_variance", "warming_by_level",
           "weighted_quantiles"]
