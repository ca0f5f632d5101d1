"""Paper tables: one numeric frame per table, written as CSV (full precision), Markdown and LaTeX.

Every posterior number is computed here from the run's DataTree (never copied from a summary CSV)
with the project's single interval convention, ``models.conventions``, read at call time: change
the constant and every table, label and figure follows. Displayed numbers are rounded to two
significant digits of the quantity's narrowest interval width (a number printed more precisely
than its uncertainty invites false precision); the CSV keeps full precision.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data.storage import write_csv, write_text
from models import conventions
from models.arrhenius_loglik import pointwise_log_likelihood, total_log_likelihood
from models.arrhenius_config import add_group_columns, group_parts
from models.summary import SAMPLE_DIMS, diagnose, mean_tree_depth, posterior_summary

# The summary columns in the order the tables show them (the interval first).
STATS = ("median", "ci_low", "ci_high", "mean", "sd", "ess_bulk", "ess_tail", "r_hat")

# Display kinds: how a column is rounded.
ESTIMATE, ESS, RHAT, PROB, TEXT, COUNT, REAL = "estimate", "ess", "rhat", "prob", "text", "count", "real"


# ---------------------------------------------------------------- the interval convention
def ci_percent() -> str:
    """The project's interval probability as a percentage label, e.g. for column headers."""
    return f"{conventions.CI_PROB * 100:g} %"


def ci_headers() -> tuple[str, str]:
    p = ci_percent()
    return f"{p} CI low", f"{p} CI high"


def ci_quantile_text() -> str:
    lo, _, hi = conventions.CI_QUANTILES
    return f"the {lo * 100:g} % and {hi * 100:g} % quantiles of the posterior draws"


# ---------------------------------------------------------------- posterior summaries
def summarise(ds: xr.Dataset, names=None) -> pd.DataFrame:
    """One row per scalar of each variable: its coordinates as columns, then ``STATS``.

    The one posterior summary of the project (``models.summary.posterior_summary``: quantiles of
    ``conventions``, ArviZ ESS and rank-normalised R-hat); fit_ea's group labels become site,
    flux_class and season columns, taken from its group coordinates (never split from a label).
    Rows whose draws are all missing (e.g. ΔE of the reference season) are dropped.
    """
    out = posterior_summary(ds, names, drop_missing=True)
    if "group" in out and "group" in ds.coords:
        out = add_group_columns(out, group_parts(ds))
    lead = [c for c in out.columns if c not in STATS]
    return out[lead + list(STATS)]


def probability_positive(da: xr.DataArray) -> xr.DataArray:
    """Posterior probability that a quantity is above zero (share of draws)."""
    return (da > 0).where(da.notnull()).mean(SAMPLE_DIMS)


# ---------------------------------------------------------------- tables
@dataclasses.dataclass
class Table:
    """A numeric frame plus how to show it: ``columns`` maps data column → (header, display kind)."""

    name: str
    title: str
    caption: str
    data: pd.DataFrame
    columns: dict[str, tuple[str, str]]

    def display(self) -> pd.DataFrame:
        """The displayed cells (strings), rounded as each column's kind says."""
        decimals = row_decimals(self.data)
        cells = {}
        for col, (header, kind) in self.columns.items():
            values = self.data[col] if col in self.data else pd.Series([None] * len(self.data))
            cells[header] = [format_cell(v, kind, d) for v, d in zip(values, decimals)]
        return pd.DataFrame(cells)


def row_decimals(frame: pd.DataFrame) -> list[int]:
    """Decimals per row: two significant digits of the narrowest interval width (or 4 sd) among
    the rows of the same quantity, so that one quantity is rounded alike throughout a table."""
    width = pd.Series(np.nan, index=frame.index)
    if {"ci_low", "ci_high"} <= set(frame.columns):
        width = pd.to_numeric(frame["ci_high"], errors="coerce") - pd.to_numeric(frame["ci_low"], errors="coerce")
    if "sd" in frame.columns:
        width = width.where(width > 0, 4 * pd.to_numeric(frame["sd"], errors="coerce"))
    width = width.where(width > 0)
    key = frame["quantity"] if "quantity" in frame.columns else pd.Series(0, index=frame.index)
    narrowest = width.groupby(key).transform("min")
    return [int(min(6, max(0, 1 - math.floor(math.log10(w))))) if w > 0 else 3 for w in narrowest]


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan


MINUS = "\u2212"
DASH = "\u2013"


def format_cell(value, kind: str, decimals: int = 3) -> str:
    """One displayed cell; missing values show as an en dash."""
    if kind == TEXT:
        return DASH if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    v = _float(value)
    if np.isnan(v):
        return DASH
    if kind == ESTIMATE:
        text = f"{v:.{decimals}f}"
    elif kind in (ESS, COUNT):
        text = f"{v:.0f}"
    elif kind in (RHAT, PROB):
        text = f"{v:.3f}"
    else:
        text = f"{v:.4g}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]  # no "-0.00"
    return text.replace("-", MINUS)


def stat_columns(ess: bool = True) -> dict[str, tuple[str, str]]:
    low, high = ci_headers()
    cols = {"median": ("median", ESTIMATE), "ci_low": (low, ESTIMATE), "ci_high": (high, ESTIMATE)}
    if ess:
        cols |= {"ess_bulk": ("ESS bulk", ESS), "ess_tail": ("ESS tail", ESS), "r_hat": ("R-hat", RHAT)}
    return cols


def label(name: str) -> str:
    """Readable class/season/site labels for tables and figures."""
    return str(name).replace("_", " ")


# ---------------------------------------------------------------- fit_ea tables
QUANTITY_LABELS = {
    "E": "E (class × season mean, eV)", "E_site_mean": "mean of site E (eV)",
    "dE": "ΔE (eV)", "Q10": "Q10", "fold_change_0_30": "fold change 0→30 °C",
    "lnR": "lnR (ln nmol m⁻² s⁻¹ at T_C)", "tau_E": "τ_E (eV)", "tau_R": "τ_R", "sigma": "σ",
    "method_offset": "method offset δ", "nu": "ν (Student-t)", "E_site": "site E (eV)",
    "rho": "ρ (AR(1) residuals)",
    "tau_E_class": "τ_E of the class (eV)", "tau_R_class": "τ_R of the class",
    "omega_E": "ω_E (spread of log τ_E between classes)",
    "omega_R": "ω_R (spread of log τ_R between classes)",
    "beta_E": "β_E (change of E per unit of the covariate, eV)",
    "beta_R": "β_R (change of lnR per unit of the covariate)",
}
HYPERPARAMETERS = ("lnR", "tau_E", "tau_R", "tau_E_class", "tau_R_class", "omega_E", "omega_R",
                   "sigma", "method_offset", "nu")


def _with_labels(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.insert(1, "label", frame["quantity"].map(QUANTITY_LABELS).fillna(frame["quantity"]))
    return frame


CITE_E = ("E is the population activation energy of the flux class × season — what a new site of "
          "the class is expected to show, with the site-to-site spread in its interval: the number to "
          "cite. E_site_mean is the mean of the fitted sites' E: it describes these sites only.")


def ea_tables(tree: xr.DataTree, convergence: dict | None = None,
              summary: pd.DataFrame | None = None) -> list[Table]:
    """The fit_ea tables, every posterior number from the DataTree; ``convergence`` is the gated
    ``convergence_summary`` when the caller has it already (it is costly); ``summary``: the run's
    ``ea_summary.csv``, for what the fit computed from its prepared data (the extrapolation marks
    and the residual autocorrelation of the data)."""
    post = tree["posterior"].to_dataset()
    cls_season = {"flux_class": ("flux class", TEXT), "season": ("season", TEXT)}
    interval = f"{conventions.CI_LABEL} ({ci_quantile_text()})"
    tables = []

    e = _with_labels(summarise(post, ["E", "E_site_mean"]))
    tables.append(Table(
        "activation_energy", "Activation energy E by flux class and season",
        "Posterior median and " + interval + " of the class × season activation energy E and of the "
        "mean of the site-level E over the class's sites; bulk and tail effective sample size and "
        "rank-normalised R-hat. " + CITE_E,
        e, {"label": ("quantity", TEXT), **cls_season, **stat_columns()}))

    if "dE" in post:
        d = summarise(post, ["dE"])
        p = probability_positive(post["dE"]).to_series().rename("p_gt_0").reset_index()
        d = _with_labels(d.merge(p, on=["flux_class", "season"], how="left"))
        ref = reference_season(post)
        tables.append(Table(
            "season_difference", "Seasonal difference of the activation energy",
            f"ΔE = E(season) − E({ref}) per flux class: posterior median, {interval}, and the "
            "posterior probability P(ΔE > 0) (share of draws above zero).",
            d, {**cls_season, **stat_columns(ess=False), "p_gt_0": ("P(ΔE > 0)", PROB),
                **{k: v for k, v in stat_columns().items() if k.startswith(("ess", "r_hat"))}}))

    q = _with_labels(summarise(post, ["Q10", "fold_change_0_30"]))
    q = q.assign(extrapolation=extrapolation_marks(q, summary))
    if "temp_range" in q:
        q["temp_range"] = q["temp_range"].fillna("0-30 C").str.replace(" C", " °C")
    tables.append(Table(
        "temperature_sensitivity", "Temperature sensitivity: Q10 and fold change",
        f"Q10 over the stated soil-temperature range and the flux ratio F(30 °C)/F(0 °C) implied by "
        f"E; posterior median and {interval}. Extrapolation: where the range reaches beyond the soil "
        "temperatures observed in the class × season, the Arrhenius curve is used outside the data "
        "that fitted it (as marked in ea_summary.csv).",
        q, {"label": ("quantity", TEXT), **cls_season, "temp_range": ("range", TEXT), **stat_columns(),
            "extrapolation": ("extrapolation", TEXT)}))
    residual = residual_table(tree, summary)
    if residual is not None:
        tables.append(residual)

    if "beta_E" in post:
        tables.append(covariate_table(tree, post, interval))
    h = _with_labels(summarise(post, [n for n in HYPERPARAMETERS if n in post]))
    tables.append(Table(
        "hyperparameters", "Intercepts, site-to-site spread and residual scale",
        f"lnR: ln|F| at the reference temperature; τ: site-to-site sd of E and lnR per season; σ: "
        f"residual sd of ln|F| per class; δ: method offsets on lnR. Posterior median and {interval}.",
        h, {"label": ("quantity", TEXT), **{c: (label(c), TEXT) for c in ("flux_class", "season", "method")
                                             if c in h}, **stat_columns()}))

    if "E_site" in post:
        s = summarise(post, ["E_site"])
        tables.append(Table(
            "site_activation_energy", "Site-level activation energy",
            f"E of each site × flux class × season (class × season mean plus the site effect); "
            f"posterior median and {interval}.",
            s, {"site": ("site", TEXT), **cls_season, **stat_columns()}))

    tables.append(data_summary_table(tree))
    tables.append(convergence_table(tree, convergence))
    sens = prior_sensitivity_table(tree)
    if sens is not None:
        tables.append(sens)
    return tables


def extrapolation_marks(frame: pd.DataFrame, summary: pd.DataFrame | None) -> pd.Series:
    """Per Q10 / fold-change row, the fit's mark from ``ea_summary.csv`` (columns ``extrapolated``,
    ``note``): its note where the range is extrapolated, "within the observed range" where not,
    missing for a run without the marks."""
    missing = pd.Series(None, index=frame.index, dtype=object)
    if summary is None or "extrapolated" not in summary:
        return missing
    keys = ["quantity", "flux_class", "season", "temp_range"]
    marks = summary[summary["extrapolated"].notna()].reindex(columns=[*keys, "extrapolated", "note"])
    marks = marks.assign(temp_range=marks["temp_range"].astype(object).where(marks["temp_range"].notna(), ""))
    rows = frame.reindex(columns=keys).assign(temp_range=lambda f: f["temp_range"].astype(object)
                                              .where(f["temp_range"].notna(), ""))
    joined = rows.merge(marks, on=keys, how="left")
    extrapolated = joined["extrapolated"].map(lambda v: str(v).lower() == "true" if pd.notna(v) else None)
    text = [note if flag else ("within the observed range" if flag is False else None)
            for flag, note in zip(extrapolated, joined["note"])]
    return pd.Series(text, index=frame.index, dtype=object)


RESIDUAL_QUANTITIES = ("resid_lag1_iid", "resid_lag1_ar1", "n_eff_days")


def residual_table(tree: xr.DataTree, summary: pd.DataFrame | None) -> Table | None:
    """ρ per flux class (from the draws) beside what the fit measured on its residuals
    (``ea_summary.csv``): the lag-1 autocorrelation on consecutive days without the AR(1) term
    (separate least-squares lines per group) and with it (its innovations), and the effective
    number of independent days. None for a run with neither."""
    post = tree["posterior"].to_dataset()
    cd = tree["constant_data"].to_dataset()
    days = pd.Series(cd["obs_flux_class"].to_numpy().astype(str)).value_counts().rename("n_days")
    frame = summarise(post, ["rho"]) if "rho" in post else pd.DataFrame(
        {"quantity": "rho", "flux_class": sorted(days.index)})
    measured = summary[summary["quantity"].isin(RESIDUAL_QUANTITIES)] if summary is not None else None
    if "rho" not in post and (measured is None or measured.empty):
        return None
    if measured is not None and len(measured):
        wide = measured.pivot_table(index="flux_class", columns="quantity", values="mean")
        frame = frame.merge(wide.reindex(columns=list(RESIDUAL_QUANTITIES)), left_on="flux_class",
                            right_index=True, how="left")
    frame = frame.merge(days, left_on="flux_class", right_index=True, how="left")
    frame = _with_labels(frame)
    cols = {"flux_class": ("flux class", TEXT)}
    if "rho" in post:
        cols |= {"label": ("quantity", TEXT), **stat_columns()}
    cols |= {"resid_lag1_iid": ("lag-1 r, iid residuals", REAL),
             "resid_lag1_ar1": ("lag-1 r, AR(1) innovations", REAL),
             "n_eff_days": ("effective independent days", COUNT), "n_days": ("observations", COUNT)}
    return Table(
        "residual_autocorrelation", "Day-to-day autocorrelation of the residuals",
        "ρ: the AR(1) residual autocorrelation per flux class (observations Δ days apart correlate "
        f"ρ^Δ), posterior median and {conventions.CI_LABEL}; lag-1 r: the autocorrelation of "
        "residuals one day apart, before (separate least-squares lines per site × class × season, "
        "residuals taken as independent) and after the AR(1) term (its innovations, at the "
        "posterior mean); effective independent days: Σ (1 − φ)/(1 + φ) over the observations "
        "(φ = ρ^Δ to the previous one; 1 for the first of a run), the number of independent days "
        "that carry as much information on a mean.",
        frame, {k: v for k, v in cols.items() if k in frame and frame[k].notna().any()})


def crossvalidation_tables(frame: pd.DataFrame) -> list[Table]:
    """The held-out check (``crossvalidation.csv``): coverage of the new-site predictive
    intervals per flux class and overall, against the band a calibrated coverage stays in by
    chance; and the held-out groups themselves."""
    from scipy import stats

    groups = frame[frame["site"].astype(str) != "ALL"]
    scored = groups[groups["inside_95"].notna()]
    parts = [(label(c), part) for c, part in scored.groupby("flux_class", sort=True)]
    rows = []
    for name, part in [*parts, ("all classes", scored)]:
        n = len(part)
        lo, hi = (stats.binom.ppf([conventions.CI_QUANTILES[0], conventions.CI_QUANTILES[2]], n,
                                  conventions.CI_PROB) / n) if n else (np.nan, np.nan)
        rows.append({"flux_class": name, "n_groups": n, "n_sites": part["site"].nunique(),
                     "inside": int(part["inside_95"].sum()), "coverage": part["inside_95"].mean(),
                     "band_low": lo, "band_high": hi,
                     "pit_mean": part["pit"].mean() if n else np.nan})
    p = ci_percent()
    coverage = Table(
        "crossvalidation_coverage", "Held-out check: coverage of new-site predictions",
        f"Leave-one-site-out refits (python -m inference.crossvalidate_ea): the share of held-out site "
        f"× class × season mean ln|F| inside their {p} posterior predictive interval for a new site "
        f"(site effects drawn from τ), per flux class and overall. Calibrated intervals give "
        f"{conventions.CI_PROB:g}; the band is the {conventions.CI_LABEL} of a calibrated coverage "
        "over as many groups (binomial). Mean PIT near 0.5: unbiased predictions.",
        pd.DataFrame(rows), {"flux_class": ("flux class", TEXT), "n_groups": ("groups", COUNT),
                             "n_sites": ("sites", COUNT), "inside": ("inside", COUNT),
                             "coverage": ("coverage", PROB), "band_low": ("band low", PROB),
                             "band_high": ("band high", PROB), "pit_mean": ("mean PIT", PROB)})
    shown = {c: (label(c), TEXT) for c in ("site", "flux_class", "season")}
    shown |= {c: (label(c), kind) for c, kind in (("n_obs", COUNT), ("observed_mean_ln_flux", REAL),
                                                   ("predicted_median", REAL), ("predicted_low", REAL),
                                                   ("predicted_high", REAL), ("inside_95", COUNT),
                                                   ("pit", PROB), ("note", TEXT)) if c in groups}
    held = Table("crossvalidation_groups", "Held-out groups",
                 f"Each held-out site × class × season: its observed mean ln|F| (flux in nmol m⁻² s⁻¹), "
                 f"the new-site predictive median and {conventions.CI_LABEL}, whether it lies inside "
                 "(1) or not (0), and its PIT.", groups.reset_index(drop=True), shown)
    return [coverage, held]


def covariate_comparison_tables(summary: pd.DataFrame, extra: dict, covariate: str) -> list[Table]:
    """A compare_covariate run: the two models ranked by PSIS-LOO, and β and E in both."""
    cols = {c: (label(c), kind) for c, kind in (
        ("model", TEXT), ("n_obs", COUNT), ("rank", COUNT), ("elpd", ESTIMATE), ("p", ESTIMATE),
        ("elpd_diff", ESTIMATE), ("dse", ESTIMATE), ("weight", PROB), ("interpretation", TEXT))
        if c in summary}
    out = [Table("covariate_comparison", f"With and without {covariate}, ranked by PSIS-LOO",
                 f"Expected log predictive density (ELPD, PSIS-LOO; higher is better) of the model "
                 f"without a covariate (none) and with {covariate} moderating E and lnR, on the same "
                 "observations (those with a value of it), the effective number of parameters p, the "
                 "difference to the best model with its standard error (dse), stacking weight and a "
                 "reading of the difference against its SE.", summary, cols)]
    effects = extra.get("covariate_effects.csv")
    if effects is not None and len(effects):
        effects = _with_labels(effects)
        out.append(Table("covariate_effects", f"Moderation by {covariate} and E in both models",
                         f"β_E (eV per unit of {covariate}) and β_R per flux class, and E per flux "
                         f"class × season in each model (with {covariate}: at the class's mean of it); "
                         f"posterior median and {conventions.CI_LABEL}.", effects,
                         {"model": ("model", TEXT), "label": ("quantity", TEXT),
                          "flux_class": ("flux class", TEXT), "season": ("season", TEXT),
                          **stat_columns()}))
    return out


def season_comparison_tables(summary: pd.DataFrame, extra: dict) -> list[Table]:
    """A compare_seasons run: the ranking, the ranking per flux class, and what was left out."""
    cols = {c: (label(c), kind) for c, kind in (
        ("model", TEXT), ("scheme", TEXT), ("residuals", TEXT), ("n_obs", COUNT), ("rank", COUNT),
        ("elpd", ESTIMATE), ("p", ESTIMATE), ("elpd_diff", ESTIMATE), ("dse", ESTIMATE), ("weight", PROB),
        ("interpretation", TEXT)) if c in summary}
    out = [Table("season_comparison", "Season schemes and residual models ranked by PSIS-LOO",
                 "Expected log predictive density (ELPD, PSIS-LOO; higher is better) of each season "
                 "scheme × residual model on the observations every scheme keeps, its effective number "
                 "of parameters p, the difference to the best model with its standard error (dse), "
                 "stacking weight and a reading of the difference against its SE.", summary, cols)]
    by_class = extra.get("season_comparison_by_class.csv")
    if by_class is not None and len(by_class):
        out.append(Table("season_comparison_by_class", "The same ranking per flux class",
                         "ELPD summed over each flux class's observations, the difference to that "
                         "class's best model and its SE (√n × sd of the pointwise differences).",
                         by_class, {c: (label(c), kind) for c, kind in (
                             ("flux_class", TEXT), ("model", TEXT), ("n_obs", COUNT), ("rank", COUNT),
                             ("elpd", ESTIMATE), ("elpd_diff", ESTIMATE), ("dse", ESTIMATE),
                             ("interpretation", TEXT)) if c in by_class}))
    left = extra.get("season_comparison_left_out.csv")
    if left is not None:
        out.append(Table("season_comparison_left_out", "Rows left out of the comparison",
                         "Rows of the data outside the common observations, per flux class, and why "
                         "(empty: every row took part).", left,
                         {"flux_class": ("flux class", TEXT), "n_rows": ("rows", COUNT),
                          "reason": ("reason", TEXT)}))
    return out


def reference_season(post: xr.Dataset) -> str:
    """The season whose ΔE is missing (ΔE is measured against it)."""
    if "dE" not in post:
        return ""
    missing = post["dE"].isnull().all(SAMPLE_DIMS + ("flux_class",))
    refs = [str(s) for s, m in zip(post["season"].to_numpy(), missing.to_numpy()) if m]
    return refs[0] if refs else "reference season"


def data_summary_table(tree: xr.DataTree) -> Table:
    cd = tree["constant_data"].to_dataset()
    frame = pd.DataFrame({k: cd[k].to_numpy() for k in ("site", "obs_flux_class", "obs_season",
                                                          "soil_temp_c", "flux")})
    frame["abs_flux"] = frame["flux"].abs()
    g = (frame.groupby(["obs_flux_class", "obs_season"], sort=True)
         .agg(n_obs=("flux", "size"), n_sites=("site", "nunique"), soil_temp_min=("soil_temp_c", "min"),
              soil_temp_max=("soil_temp_c", "max"), median_abs_flux=("abs_flux", "median"))
         .reset_index().rename(columns={"obs_flux_class": "flux_class", "obs_season": "season"}))
    return Table("data_summary", "Observations used in the fit",
                 "Site-periods (observations), sites, soil-temperature range (°C) and median |CH4 flux| "
                 "(nmol m⁻² s⁻¹) per flux class and season, after the fit's exclusions.",
                 g, {"flux_class": ("flux class", TEXT), "season": ("season", TEXT),
                     "n_obs": ("observations", COUNT), "n_sites": ("sites", COUNT),
                     "soil_temp_min": ("min soil T (°C)", REAL), "soil_temp_max": ("max soil T (°C)", REAL),
                     "median_abs_flux": ("median |F|", REAL)})


def convergence_summary(tree: xr.DataTree, var_names=None) -> dict:
    """The jobs' diagnostics (``models.summary.diagnose``: R-hat, ESS, divergences, E-BFMI and the
    gate's verdict) recomputed from the DataTree, with the chains, draws and mean tree depth."""
    post = tree["posterior"].to_dataset()
    return {**diagnose(tree, var_names), "chains": int(post.sizes["chain"]),
            "draws": int(post.sizes["draw"]), "mean_tree_depth": mean_tree_depth(tree)}


def _every_quantity(tree: xr.DataTree, gated: dict) -> dict:
    """R-hat and ESS extremes over every posterior quantity from ``gated`` (those of
    ``conventions.EA_GATED_VARIABLES``) and the remaining variables: each variable diagnosed once."""
    rest = [v for v in tree["posterior"].data_vars if v not in conventions.EA_GATED_VARIABLES]
    if not rest:
        return gated
    other = convergence_summary(tree, rest)
    # fmax/fmin ignore a missing side, as the extremes over one set of variables do.
    return {**other, "r_hat_max": float(np.fmax(gated["r_hat_max"], other["r_hat_max"])),
            "ess_bulk_min": float(np.fmin(gated["ess_bulk_min"], other["ess_bulk_min"])),
            "ess_tail_min": float(np.fmin(gated["ess_tail_min"], other["ess_tail_min"]))}


def convergence_table(tree: xr.DataTree, gated: dict | None = None) -> Table:
    """``gated``: ``convergence_summary`` of ``conventions.EA_GATED_VARIABLES`` (computed when None)."""
    gate, bfmi_low = conventions.GATE, conventions.BFMI_LOW
    gated = gated if gated is not None else convergence_summary(tree, conventions.EA_GATED_VARIABLES)
    every = _every_quantity(tree, gated)
    rows = [
        ("max R-hat (sampled and site parameters)", gated["r_hat_max"], f"≤ {gate['r_hat_max']}",
         gated["r_hat_max"] <= gate["r_hat_max"]),
        ("min bulk ESS (sampled and site parameters)", gated["ess_bulk_min"], f"≥ {gate['ess_bulk_min']}",
         gated["ess_bulk_min"] >= gate["ess_bulk_min"]),
        ("min tail ESS (sampled and site parameters)", gated["ess_tail_min"], f"≥ {gate['ess_tail_min']}",
         gated["ess_tail_min"] >= gate["ess_tail_min"]),
        ("max R-hat (every posterior quantity)", every["r_hat_max"], f"≤ {gate['r_hat_max']}",
         every["r_hat_max"] <= gate["r_hat_max"]),
        ("min bulk ESS (every posterior quantity)", every["ess_bulk_min"], f"≥ {gate['ess_bulk_min']}",
         every["ess_bulk_min"] >= gate["ess_bulk_min"]),
        ("divergent transitions", gated["divergences"], f"≤ {gate['divergences']}",
         None if gated["divergences"] is None else gated["divergences"] <= gate["divergences"]),
        ("min E-BFMI over chains", gated["bfmi_min"], f"≥ {bfmi_low}",
         None if gated["bfmi_min"] is None else gated["bfmi_min"] >= bfmi_low),
        ("mean tree depth", gated["mean_tree_depth"], DASH, None),
        ("chains × draws", gated["chains"] * gated["draws"], DASH, None),
    ]
    frame = pd.DataFrame(rows, columns=["check", "value", "threshold", "ok"])
    counts = frame["check"].str.contains("ESS|divergent|draws")
    frame["shown"] = [format_cell(v, COUNT if c else REAL) if not c or v is None or v == v else DASH
                      for v, c in zip(frame["value"], counts)]
    frame["status"] = frame["ok"].map({True: "pass", False: "FAIL"}).fillna(DASH)
    return Table("convergence", "MCMC convergence and resolution",
                 "Rank-normalised split R-hat and bulk/tail effective sample size (Vehtari et al. 2021), "
                 "divergent transitions and energy Bayesian fraction of missing information, computed "
                 "from the saved draws.",
                 frame, {"check": ("check", TEXT), "shown": ("value", TEXT), "threshold": ("threshold", TEXT),
                         "status": ("status", TEXT)})


# ---------------------------------------------------------------- prior sensitivity (BARG 5)
def log_prior(post: xr.Dataset, priors: dict, covariate_scale: dict | None = None) -> xr.Dataset | None:
    """log p(θ) of the top-level parameters from the priors recorded in the run's attrs
    (``covariate_scale``: the covariate's sd per flux class, for the priors of β)."""
    from scipy import stats

    scale = None
    if "beta_E" in post:
        if not covariate_scale:
            return None
        scale = xr.DataArray([covariate_scale[str(c)] for c in post["flux_class"].to_numpy()],
                             dims="flux_class", coords={"flux_class": post["flux_class"]})

    dens = {
        "E": lambda v: stats.norm.logpdf(v, priors["E_mu"], priors["E_sd"]),
        "lnR": lambda v: stats.norm.logpdf(v, priors["lnR_mu"], priors["lnR_sd"]),
        "tau_E": lambda v: stats.halfnorm.logpdf(v, scale=priors["tau_E_sd"]),
        "tau_R": lambda v: stats.halfnorm.logpdf(v, scale=priors["tau_R_sd"]),
        "sigma": lambda v: stats.halfnorm.logpdf(v, scale=priors["sigma_sd"]),
        "omega_E": lambda v: stats.halfnorm.logpdf(v, scale=priors["tau_class_sd"]),
        "omega_R": lambda v: stats.halfnorm.logpdf(v, scale=priors["tau_class_sd"]),
        "method_offset": lambda v: stats.norm.logpdf(v, 0.0, priors["method_sd"]),
        # β's prior sd is per sd of the covariate in each class (recorded with the run)
        "beta_E": lambda v: stats.norm.logpdf(v, 0.0, priors["beta_E_sd"] / scale),
        "beta_R": lambda v: stats.norm.logpdf(v, 0.0, priors["beta_R_sd"] / scale),
        # PyMC's Gamma(alpha, beta) has rate beta.
        "nu": lambda v: stats.gamma.logpdf(v, priors["nu_alpha"], scale=1.0 / priors["nu_beta"]),
    }
    try:
        out = {k: post[k].copy(data=np.asarray(f(post[k]))) for k, f in dens.items() if k in post}
    except KeyError:
        return None  # a prior the run did not record
    return xr.Dataset(out) if out else None


# Draws per block of the on-demand log-likelihood: a block of draws × observations stays a few
# tens of MB, where the whole array (chain × draw × obs, float64 in passing) costs GBs and page faults.
LOG_LIKELIHOOD_BLOCK_DRAWS = 50


def log_likelihood_per_draw(tree: xr.DataTree) -> xr.DataArray:
    """Σ over observations of log p(y_j | draw), per (chain, draw), in float64.

    Power scaling of the likelihood needs only this sum; it is accumulated over blocks of draws
    (``LOG_LIKELIHOOD_BLOCK_DRAWS``) so the pointwise array is never held whole. A stored
    ``log_likelihood`` group is summed as it is.
    """
    def total(ll: xr.DataArray) -> xr.DataArray:  # a missing density stays missing, never skipped
        return ll.reduce(np.sum, dim="obs", dtype=np.float64)

    if "log_likelihood" in tree.children:
        return total(pointwise_log_likelihood(tree))
    fast = total_log_likelihood(tree)  # Gaussian fits: from per-group statistics, groups × draws
    if fast is not None:
        return fast
    post = tree["posterior"].to_dataset()
    data = {g: tree[g].to_dataset() for g in ("constant_data", "observed_data") if g in tree.children}
    blocks = []
    for start in range(0, post.sizes["draw"], LOG_LIKELIHOOD_BLOCK_DRAWS):
        part = post.isel(draw=slice(start, start + LOG_LIKELIHOOD_BLOCK_DRAWS))
        blocks.append(total(pointwise_log_likelihood(xr.DataTree.from_dict({"posterior": part, **data}))))
    return xr.concat(blocks, dim="draw")


def covariate_table(tree: xr.DataTree, post: xr.Dataset, interval: str) -> Table:
    """β_E and β_R per flux class of a fit with a covariate, with the covariate's name and the
    class mean it is centred on."""
    config = json.loads(tree.attrs.get("tpflux_config") or "{}")
    name = config.get("covariate") or "the covariate"
    centre = config.get("covariate_centre") or {}
    frame = _with_labels(summarise(post, ["beta_E", "beta_R"]))
    frame["centre"] = frame["flux_class"].map(centre)
    return Table(
        "covariate_effects", f"Moderation of E and lnR by {name}",
        f"E_ij = E_cs + ε_E + β_E,c·({name}_ij − mean of class c) and lnR likewise: the change of E "
        f"(eV) and of lnR per unit of {name}; E and lnR of the other tables are at the class mean "
        f"(centre). Posterior median and {interval}.",
        frame, {"label": ("quantity", TEXT), "flux_class": ("flux class", TEXT),
                "centre": (f"class mean of {name}", REAL), **stat_columns()})


def prior_sensitivity(tree: xr.DataTree, var_names=("E", "dE", "tau_E", "sigma")) -> pd.DataFrame | None:
    """Power-scaling prior and likelihood sensitivity (Kallioinen et al. 2024) via ArviZ."""
    import arviz as az

    if not tree.attrs.get("tpflux_config") or "constant_data" not in tree.children:
        return None
    config = json.loads(tree.attrs["tpflux_config"])
    priors = config.get("priors")
    post = tree["posterior"].to_dataset()
    lp = log_prior(post, priors, config.get("covariate_scale")) if priors else None
    if lp is None:
        return None
    # A run keeps no pointwise log-likelihood by default; ArviZ sums it over observations, so the
    # per-draw sum (one "observation") gives the same weights.
    loglik = xr.Dataset({"ln_flux": log_likelihood_per_draw(tree).expand_dims(obs=1, axis=-1)})
    work = xr.DataTree.from_dict({"posterior": post, "log_likelihood": loglik,
                                  "log_prior": lp})
    names = [v for v in var_names if v in post]
    log = logging.getLogger("arviz_stats.psense")
    level = log.level
    log.setLevel(logging.ERROR)  # ArviZ logs advice on flagged rows; the table carries the diagnosis
    try:
        frame = az.psense_summary(work, var_names=names, round_to=6)
    finally:
        log.setLevel(level)
    frame = frame.reset_index(names="parameter").rename(columns={"diagnosis": "diagnosis"})
    frame = frame[frame["prior"].notna()].reset_index(drop=True)
    frame["diagnosis"] = frame["diagnosis"].replace({"✓": "ok"})
    return frame


def prior_sensitivity_table(tree: xr.DataTree) -> Table | None:
    frame = prior_sensitivity(tree)
    if frame is None:
        return None
    return Table("prior_sensitivity", "Prior and likelihood sensitivity (power scaling)",
                 "Power-scaling sensitivity (Kallioinen et al. 2024, Stat. Comput. 34:57): the change of "
                 "each posterior when the prior of the top-level parameters or the likelihood is raised "
                 "to a power near 1, by importance sampling. Prior sensitivity above 0.05 with likelihood "
                 "sensitivity above 0.05 flags a prior-data conflict; prior above and likelihood below "
                 "0.05 flags a strong prior or weak likelihood.",
                 frame, {"parameter": ("parameter", TEXT), "prior": ("prior", PROB),
                         "likelihood": ("likelihood", PROB), "diagnosis": ("diagnosis", TEXT)})


# ---------------------------------------------------------------- other run kinds
_KIND_OF_COLUMN = {"median": ESTIMATE, "ci_low": ESTIMATE, "ci_high": ESTIMATE, "mean": ESTIMATE,
                   "sd": ESTIMATE, "total": ESTIMATE, "change_vs_control": ESTIMATE,
                   "ess_bulk": ESS, "ess_tail": ESS, "r_hat": RHAT}


def frame_table(name: str, title: str, caption: str, frame: pd.DataFrame) -> Table:
    """A table of a saved summary frame, columns shown as they are (intervals relabelled)."""
    low, high = ci_headers()
    cols = {}
    for c in frame.columns:
        if frame[c].isna().all():
            continue
        kind = _KIND_OF_COLUMN.get(c)
        if kind is None:
            lower = c.lower()
            kind = (PROB if lower.startswith(("p_", "prob")) else
                    REAL if pd.api.types.is_numeric_dtype(frame[c]) else TEXT)
        header = {"ci_low": low, "ci_high": high}.get(c, label(c))
        cols[c] = (header, kind)
    return Table(name, title, caption, frame, cols)


def posterior_table(name: str, title: str, tree: xr.DataTree, names) -> Table | None:
    """Summary of named posterior variables of any run (e.g. fit_rr), from its DataTree."""
    if tree is None or "posterior" not in tree.children:
        return None
    post = tree["posterior"].to_dataset()
    frame = summarise(post, [n for n in names if n in post])
    if frame.empty:
        return None
    dims = {c: (label(c), TEXT) for c in frame.columns if c not in STATS}
    return Table(name, title, f"Posterior median and {conventions.CI_LABEL} ({ci_quantile_text()}), "
                 "bulk and tail ESS and R-hat, computed from the saved draws.", frame,
                 {**dims, **stat_columns()})


# ---------------------------------------------------------------- writers
_LATEX_MAP = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    MINUS: "$-$", DASH: "--", "Δ": r"$\Delta$", "τ": r"$\tau$", "σ": r"$\sigma$", "ν": r"$\nu$",
    "δ": r"$\delta$", "ε": r"$\varepsilon$", "°": r"$^\circ$", "×": r"$\times$", "≤": r"$\leq$",
    "≥": r"$\geq$", "→": r"$\to$", "|": r"$|$", "·": r"$\cdot$", "—": "---", "√": r"$\surd$",
    "≈": r"$\approx$", "±": r"$\pm$", "µ": r"$\mu$", "μ": r"$\mu$",
    "ρ": r"$\rho$", "φ": r"$\phi$", "Σ": r"$\Sigma$", "η": r"$\eta$", "…": r"\ldots{}",
    **{chr(0x2080 + d): f"$_{d}$" for d in range(10)},
}
_SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def latex_escape(text: str) -> str:
    parts = re.split("([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)", str(text))
    out = "".join(f"$^{{{p.translate(_SUPERSCRIPT)}}}$" if i % 2 else
                  "".join(_LATEX_MAP.get(ch, ch) for ch in p) for i, p in enumerate(parts))
    return out.replace("$$", "")  # adjacent math pieces merge into one


def to_markdown(table: Table) -> str:
    shown = table.display()
    kinds = [k for _, k in table.columns.values()]
    align = ["---" if k == TEXT else "---:" for k in kinds]
    lines = [f"**{table.title}.**", "",
             "| " + " | ".join(shown.columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in shown.itertuples(index=False)]
    lines += ["", f"Table: {table.caption}", ""]
    return "\n".join(lines)


def to_latex(table: Table) -> str:
    shown = table.display()
    kinds = [k for _, k in table.columns.values()]
    spec = "".join("l" if k == TEXT else "r" for k in kinds)
    body = [" & ".join(latex_escape(c) for c in row) + r" \\" for row in shown.itertuples(index=False)]
    return "\n".join([
        "% Needs \\usepackage{booktabs}.",
        r"\begin{table}[htbp]", r"\centering",
        rf"\caption{{{latex_escape(table.title)}. {latex_escape(table.caption)}}}",
        rf"\label{{tab:{table.name}}}",
        rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
        " & ".join(latex_escape(c) for c in shown.columns) + r" \\", r"\midrule",
        *body, r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])


def to_csv_frame(table: Table) -> pd.DataFrame:
    """The CSV content: the numeric frame at full precision."""
    return table.data


def write_table(table: Table, folder) -> list:
    """tables/NAME.csv, .md and .tex, each written atomically."""
    folder = Path(folder)
    return [write_csv(folder / f"{table.name}.csv", to_csv_frame(table)),
            write_text(folder / f"{table.name}.md", to_markdown(table)),
            write_text(folder / f"{table.name}.tex", to_latex(table))]
