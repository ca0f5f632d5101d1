"""A methods paragraph and a BARG checklist (Kruschke 2021) generated from a run's saved attrs.

The text describes THIS run: its priors, likelihood, sampler, chains and draws, diagnostics, data
and software versions are read from the saved DataTree, never from the package defaults (the
defaults are consulted only to say whether the run used them).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from data.constants import K_BOLTZMANN_EV, T_REF_C
from models import conventions
from models.arrhenius_config import AR1_DAILY_GAP_DAYS, AR1_MIN_DAILY_SHARE, Priors
from models.conventions import GATE
from models.summary import gate_failures
from reports.tables import CITE_E, latex_escape

SOFTWARE_ORDER = ("python", "tpflux", "pymc", "pytensor", "arviz", "numpy", "pandas", "xarray", "scipy",
                  "scikit-learn", "matplotlib")
SOFTWARE_NAMES = {"python": "Python", "tpflux": "tpflux", "pymc": "PyMC", "pytensor": "PyTensor",
                  "arviz": "ArviZ", "numpy": "NumPy", "pandas": "pandas", "xarray": "xarray",
                  "scipy": "SciPy", "scikit-learn": "scikit-learn", "matplotlib": "matplotlib"}
SAMPLERS = {"pymc": "the No-U-Turn sampler (NUTS; Hoffman & Gelman 2014) of PyMC (Abril-Pla et al. 2023)",
            "nutpie": "the NUTS implementation of nutpie on the PyMC model (Abril-Pla et al. 2023)",
            "numpyro": "the NUTS implementation of NumPyro on the PyMC model (Abril-Pla et al. 2023)"}
SEASON_SCHEMES = {
    "julian": "growing = May–September, non-growing = October–April, shifted by six months south of "
              "the equator",
    "freeze-thaw": "frozen, spring-thaw, thawed and autumn-freeze periods from each site's daily soil "
                   "temperature (5-day centred running mean crossing 0 °C, 7-day transition windows)",
    "none": "a single season",
}
# Composite datasets are cited through their parts.
DATASET_PARTS = {"ch4-sites": ("fluxnet-ch4", "hongyuan")}
REFERENCES = (
    "Abril-Pla, O. et al. (2023) PyMC: a modern and comprehensive probabilistic programming framework "
    "in Python. PeerJ Comput. Sci. 9:e1516.",
    "Hoffman, M. D. & Gelman, A. (2014) The No-U-Turn sampler. J. Mach. Learn. Res. 15:1593–1623.",
    "Kallioinen, N. et al. (2024) Detecting and diagnosing prior and likelihood sensitivity with "
    "power-scaling. Stat. Comput. 34:57.",
    "Kruschke, J. K. (2021) Bayesian analysis reporting guidelines. Nat. Hum. Behav. 5:1282–1291.",
    "Kumar, R. et al. (2019) ArviZ: a unified library for exploratory analysis of Bayesian models in "
    "Python. J. Open Source Softw. 4:1143.",
    "Vehtari, A., Gelman, A. & Gabry, J. (2017) Practical Bayesian model evaluation using "
    "leave-one-out cross-validation and WAIC. Stat. Comput. 27:1413–1432.",
    "Vehtari, A. et al. (2021) Rank-normalization, folding, and localization: an improved R-hat for "
    "assessing convergence of MCMC. Bayesian Anal. 16:667–718.",
)


@dataclasses.dataclass
class Methods:
    """The paragraph as plain text (Unicode, for Markdown/HTML) and as LaTeX."""

    text: str
    latex: str


class _Writer:
    """Sentences kept in two forms; a sentence without a LaTeX form is escaped."""

    def __init__(self):
        self.plain, self.tex = [], []

    def add(self, plain: str, tex: str | None = None) -> None:
        self.plain.append(plain)
        self.tex.append(tex if tex is not None else latex_escape(plain))

    def methods(self) -> Methods:
        return Methods(" ".join(self.plain), " ".join(self.tex))


def _fmt(v) -> str:
    return f"{float(v):g}"


def software_versions(versions: dict) -> str:
    names = [k for k in SOFTWARE_ORDER if k in versions] + sorted(k for k in versions if k not in SOFTWARE_ORDER)
    return ", ".join(f"{SOFTWARE_NAMES.get(k, k)} {versions[k]}" for k in names)


def user_data(config: dict) -> str | None:
    """The path of a run's own input data (``data``, fit_rr's ``table``, ``data_path`` of older
    runs), or None for a registry dataset."""
    return next((str(config[k]) for k in ("data", "table", "data_path") if config.get(k)), None)


def data_sources(config: dict) -> list[tuple[str, str]]:
    """(description, citation) of the run's data, from the dataset registry."""
    from data.registry import DATASETS

    if user_data(config):
        return [(f"user-supplied data ({user_data(config)})", "cite the data's authors")]
    name = config.get("dataset")
    if name not in DATASETS:
        return [(str(name), "unknown source")] if name else []
    parts = DATASET_PARTS.get(name, (name,))
    return [(DATASETS[p].description, DATASETS[p].citation) for p in parts if p in DATASETS]


def _priors_are_defaults(priors: dict) -> bool:
    defaults = dataclasses.asdict(Priors())
    # a prior the run does not record (one added since, e.g. β of a covariate) was not in its model
    return all(np.isclose(float(priors[k]), v) for k, v in defaults.items() if k in priors)


def _scientific(value: float) -> tuple[str, str]:
    """``value`` as m×10ⁿ with all its digits, as text and as LaTeX (e.g. the Boltzmann constant)."""
    mantissa, exponent = np.format_float_scientific(value, unique=True).split("e")
    power = str(int(exponent))
    return (f"{mantissa}×10{power.translate(str.maketrans('-0123456789', '⁻⁰¹²³⁴⁵⁶⁷⁸⁹'))}",
            rf"{mantissa}\times10^{{{power}}}")


# ---------------------------------------------------------------- fit_ea
def ea_methods(run, convergence: dict, residuals: pd.DataFrame | None = None,
               coverage: pd.DataFrame | None = None) -> Methods:
    """The methods paragraph of a fit_ea run. ``convergence``: tables.convergence_summary output;
    ``residuals``: the data of table residual_autocorrelation; ``coverage``: of table
    crossvalidation_coverage (its last row: all classes), when the run folder holds the check."""
    tree, config = run.tree, run.config
    post = tree["posterior"].to_dataset()
    cd = tree["constant_data"].to_dataset()
    classes = [str(c) for c in post["flux_class"].to_numpy()]
    seasons = [str(s) for s in post["season"].to_numpy()]
    priors = config.get("priors", {})
    t_ref = float(config.get("t_ref_c", T_REF_C))
    k_plain, k_tex = _scientific(K_BOLTZMANN_EV)
    student = config.get("likelihood") == "student" or "nu" in post
    methods_with_offset = [str(m) for m in post["method"].to_numpy()] if "method_offset" in post else []
    n_obs, n_sites = int(cd.sizes["obs"]), len(np.unique(cd["site"].to_numpy()))
    w = _Writer()

    w.add("We estimated the temperature sensitivity of CH4 flux with a hierarchical Boltzmann–Arrhenius "
          "model, so that sites with few observations borrow strength from the others (partial pooling) "
          "and seasonal contrasts are stated as direct posterior probabilities. The goal was the "
          "apparent activation energy E of each flux class (ecosystem × flux direction: "
          + ", ".join(c.replace("_", " ") for c in classes) + ") in each season ("
          + SEASON_SCHEMES.get(config.get("season_scheme"), ", ".join(seasons)) + ") and the seasonal "
          "difference ΔE.")
    w.add("For observation j at site i in class c and season s, ln|F_ij| = (E_cs + ε_E,ics)·x_ij + lnR_cs"
          + (" + δ_m(i)" if methods_with_offset else "") + " + ε_R,ics + e_ij, with x = 1/(k·T_C) − 1/(k·T), "
          f"T the soil temperature in kelvin, k = {k_plain} eV K⁻¹ and T_C = {t_ref:g} °C; the site "
          "effects are ε_E,ics ~ Normal(0, τ_E,s) and ε_R,ics ~ Normal(0, τ_R,s), and the residual e_ij ~ "
          + ("StudentT(ν, 0, σ_c/√w_ij)" if student else "Normal(0, σ_c/√w_ij)")
          + " with w_ij the length of the averaging period in days.",
          r"For observation $j$ at site $i$ in class $c$ and season $s$, $\ln|F_{ij}| = (E_{cs} + "
          r"\varepsilon^{E}_{ics})\,x_{ij} + \ln R_{cs}" + (r" + \delta_{m(i)}" if methods_with_offset else "")
          + r" + \varepsilon^{R}_{ics} + e_{ij}$, with $x = 1/(kT_C) - 1/(kT)$, $T$ the soil temperature "
          rf"in kelvin, $k = {k_tex}$~eV~K$^{{-1}}$ and $T_C = {t_ref:g}\,^\circ$C; the site "
          r"effects are $\varepsilon^{E}_{ics} \sim \mathrm{Normal}(0, \tau^{E}_{s})$ and "
          r"$\varepsilon^{R}_{ics} \sim \mathrm{Normal}(0, \tau^{R}_{s})$, and the residual $e_{ij} \sim "
          + (r"\mathrm{StudentT}(\nu, 0, \sigma_c/\sqrt{w_{ij}})$" if student else
             r"\mathrm{Normal}(0, \sigma_c/\sqrt{w_{ij}})$")
          + r" with $w_{ij}$ the length of the averaging period in days.")
    if "tau_E_class" in post:
        w.add("Each flux class had its own site spreads, τ_E,cs = τ_E,s·exp(ω_E·z_E,c) and likewise "
              "τ_R,cs, in the effects above: the classes' log-spreads were partially pooled around the "
              "season's typical spread (z_c ~ Normal(0, 1)), so a class with few sites borrows the "
              "typical spread, widened by the spread ω between classes.",
              r"Each flux class had its own site spreads, $\tau^{E}_{cs} = \tau^{E}_{s}\exp(\omega_E "
              r"z^{E}_{c})$ and likewise $\tau^{R}_{cs}$, in the effects above: the classes' log-spreads "
              r"were partially pooled around the season's typical spread ($z_c \sim \mathrm{Normal}(0, 1)$), "
              r"so a class with few sites borrows the typical spread, widened by the spread $\omega$ "
              "between classes.")
    if "beta_E" in post:
        name = config.get("covariate") or "a covariate"
        w.add(f"The activation energy and the intercept of each observation moved with {name} z: "
              f"E_ij = E_cs + ε_E,ics + β_E,c·(z_ij − z̄_c) and lnR likewise with β_R,c, z̄_c the mean "
              f"of {name} over the class's observations, so E_cs is the activation energy at the "
              f"class's mean {name}; observations without a value of {name} were left out. The "
              "coefficients enter the per-group sufficient statistics through the cross-products "
              "with z̃·x and z̃, so the site effects and class means were still integrated out exactly.",
              rf"The activation energy and the intercept of each observation moved with "
              rf"{latex_escape(name)} $z$: $E_{{ij}} = E_{{cs}} + \varepsilon^{{E}}_{{ics}} + "
              rf"\beta^{{E}}_{{c}}(z_{{ij}} - \bar z_c)$ and $\ln R$ likewise with $\beta^{{R}}_{{c}}$, "
              rf"$\bar z_c$ the mean of {latex_escape(name)} over the class's observations, so "
              rf"$E_{{cs}}$ is the activation energy at the class's mean {latex_escape(name)}; "
              rf"observations without a value of {latex_escape(name)} were left out. The coefficients "
              r"enter the per-group sufficient statistics through the cross-products with "
              r"$\tilde z x$ and $\tilde z$, so the site effects and class means were still "
              "integrated out exactly.")
    if "rho" in post:
        w.add("Residuals of a site × class × season group were serially correlated as a daily AR(1) in "
              "continuous time: observations Δ days apart correlate ρ_c^Δ (ρ_c ~ Uniform(−1, 1) per flux "
              "class), so gaps and multi-day periods need no imputation, and the site effects and "
              "class means were still integrated out exactly from lag-Δ cross-products per group.",
              r"Residuals of a site $\times$ class $\times$ season group were serially correlated as a "
              r"daily AR(1) in continuous time: observations $\Delta$ days apart correlate "
              r"$\rho_c^{\Delta}$ ($\rho_c \sim \mathrm{Uniform}(-1, 1)$ per flux class), so gaps and "
              "multi-day periods need no imputation, and the site effects and class means were still "
              r"integrated out exactly from lag-$\Delta$ cross-products per group.")
    independent = config.get("independent_classes") or {}
    if independent:  # AR(1) asked for, but these classes are not daily series
        names = ", ".join(c.replace("_", " ") for c in independent)
        share = f"{AR1_MIN_DAILY_SHARE * 100:.0f}"
        w.add(f"Residuals of {names} were taken as independent: fewer than {share} % of their "
              f"consecutive observations lie within {AR1_DAILY_GAP_DAYS} days of each other, so ρ^Δ is "
              "negligible there and ρ cannot be estimated.",
              f"Residuals of {names} were taken as independent: fewer than {share}\\,\\% of their "
              f"consecutive observations lie within {AR1_DAILY_GAP_DAYS} days of each other, so "
              r"$\rho^{\Delta}$ is negligible there and $\rho$ cannot be estimated.")
    elif "rho" not in post:
        w.add("Residuals were taken as independent (--residuals iid).")
    if priors:
        plain = [f"E_cs ~ Normal({_fmt(priors['E_mu'])}, {_fmt(priors['E_sd'])}) eV",
                 f"lnR_cs ~ Normal({_fmt(priors['lnR_mu'])}, {_fmt(priors['lnR_sd'])})",
                 f"τ_E,s ~ HalfNormal({_fmt(priors['tau_E_sd'])}) eV",
                 f"τ_R,s ~ HalfNormal({_fmt(priors['tau_R_sd'])})", f"σ_c ~ HalfNormal({_fmt(priors['sigma_sd'])})"]
        tex = [rf"$E_{{cs}} \sim \mathrm{{Normal}}({_fmt(priors['E_mu'])}, {_fmt(priors['E_sd'])})$~eV",
               rf"$\ln R_{{cs}} \sim \mathrm{{Normal}}({_fmt(priors['lnR_mu'])}, {_fmt(priors['lnR_sd'])})$",
               rf"$\tau^{{E}}_{{s}} \sim \mathrm{{HalfNormal}}({_fmt(priors['tau_E_sd'])})$~eV",
               rf"$\tau^{{R}}_{{s}} \sim \mathrm{{HalfNormal}}({_fmt(priors['tau_R_sd'])})$",
               rf"$\sigma_c \sim \mathrm{{HalfNormal}}({_fmt(priors['sigma_sd'])})$"]
        if "tau_E_class" in post:
            plain.append(f"ω_E, ω_R ~ HalfNormal({_fmt(priors['tau_class_sd'])})")
            tex.append(rf"$\omega_E, \omega_R \sim \mathrm{{HalfNormal}}({_fmt(priors['tau_class_sd'])})$")
        if "beta_E" in post and "beta_E_sd" in priors:
            plain.append(f"β_E,c ~ Normal(0, {_fmt(priors['beta_E_sd'])}/sd_c) eV and β_R,c ~ "
                         f"Normal(0, {_fmt(priors['beta_R_sd'])}/sd_c), sd_c the covariate's sd in "
                         "class c")
            tex.append(rf"$\beta^{{E}}_{{c}} \sim \mathrm{{Normal}}(0, {_fmt(priors['beta_E_sd'])}/"
                       rf"s_c)$~eV and $\beta^{{R}}_{{c}} \sim \mathrm{{Normal}}(0, "
                       rf"{_fmt(priors['beta_R_sd'])}/s_c)$, $s_c$ the covariate's sd in class $c$")
        if methods_with_offset:
            plain.append(f"method offsets δ_m ~ Normal(0, {_fmt(priors['method_sd'])}) for "
                         + ", ".join(m.replace("_", " ") for m in methods_with_offset))
            tex.append(rf"method offsets $\delta_m \sim \mathrm{{Normal}}(0, {_fmt(priors['method_sd'])})$ for "
                       + ", ".join(latex_escape(m.replace("_", " ")) for m in methods_with_offset))
        if student:
            plain.append(f"ν ~ Gamma({_fmt(priors['nu_alpha'])}, {_fmt(priors['nu_beta'])}) (rate)")
            tex.append(rf"$\nu \sim \mathrm{{Gamma}}({_fmt(priors['nu_alpha'])}, {_fmt(priors['nu_beta'])})$ (rate)")
        w.add("Priors were " + "; ".join(plain) + " (HalfNormal with the stated scale).",
              "Priors were " + "; ".join(tex) + " (HalfNormal with the stated scale).")
        if _priors_are_defaults(priors):
            w.add("These weakly informative priors centre E on typical ecosystem-level CH4 activation energies "
                  "(about 0.5–1 eV) while leaving room for near-zero or negative sensitivity of uptake, let lnR "
                  "span trace uptake to hot-spot emission (e⁻⁵ to e⁷ nmol m⁻² s⁻¹ at T_C), and "
                  + ("pool the classes' site-to-site spreads partially" if "tau_E_class" in post else
                     "share the site-to-site spreads across classes")
                  + " so that a class observed at few sites borrows the spread learnt from the "
                  "data-rich classes.")
        else:
            w.add("The priors differ from the package defaults and were set for this analysis.")
    if student:
        w.add("The Student-t likelihood was evaluated per observation with explicit site effects (centred "
              "parameterisation for data-rich groups, non-centred for data-poor ones).")
    else:
        w.add("With the Gaussian likelihood the site effects were integrated out analytically from per-group "
              "sufficient statistics (an exact marginal likelihood), and drawn afterwards from their exact "
              "Gaussian conditional posterior given each posterior draw of the hyperparameters.")
    chains = config.get("chains", convergence["chains"])
    draws, tune = config.get("draws", convergence["draws"]), config.get("tune")
    w.add(f"The posterior was sampled with {SAMPLERS.get(config.get('sampler', 'pymc'), config.get('sampler'))}: "
          f"{chains} chains of {draws} draws after {tune} tuning steps ({int(chains) * int(draws)} draws in "
          f"total; random seed {run.attrs.get('seed', 'not recorded')})"
          + (f", target acceptance rate {config['target_accept']:g}." if "target_accept" in config else "."))
    ok = not gate_failures(convergence)
    w.add(f"Convergence was assessed with rank-normalised split R-hat and bulk and tail effective sample "
          f"sizes (ESS; Vehtari et al. 2021) for every parameter and derived quantity, rank plots and "
          f"divergent transitions: the largest R-hat of the sampled and site-level parameters was "
          f"{convergence['r_hat_max']:.3f}, the smallest bulk and tail ESS {convergence['ess_bulk_min']:.0f} and "
          f"{convergence['ess_tail_min']:.0f}, with {convergence['divergences']} divergent transitions; "
          + ("all within" if ok else "NOT all within")
          + f" the thresholds R-hat ≤ {GATE['r_hat_max']}, ESS ≥ {GATE['ess_bulk_min']} and "
          f"{GATE['divergences']} divergences"
          + ("." if ok else ", so these draws are not yet fit for publication (sample longer)."))
    derived = ["ΔE = E(season) − E(reference season) with P(ΔE > 0), the share of draws above zero"
               if "dE" in post else None,
               ("Q10 over " + " and ".join(str(r).replace(" C", " °C") for r in post["temp_range"].to_numpy())
                if "Q10" in post else None),
               "the flux ratio between 0 and 30 °C" if "fold_change_0_30" in post else None]
    derived = [d for d in derived if d]
    if derived:
        w.add("Derived quantities were computed per draw: " + "; ".join(derived) + ".")
    marks = run.summary["extrapolated"] if run.summary is not None and "extrapolated" in run.summary else None
    if marks is not None and marks.notna().any():
        beyond = int(marks.astype(str).str.lower().eq("true").sum())
        w.add(f"{beyond} of {int(marks.notna().sum())} Q10 and fold-change values use a temperature range "
              "beyond the soil temperatures observed in their class × season (marked in table "
              "temperature_sensitivity and in ea_summary.csv): there the Arrhenius curve is extrapolated.")
    w.add(CITE_E)
    if residuals is not None and len(residuals):
        w.add(residual_sentence(residuals))
    if coverage is not None and len(coverage):
        w.add(coverage_sentence(coverage))
    lo, _, hi = conventions.CI_QUANTILES
    w.add(f"Posterior summaries are medians with the {conventions.CI_LABEL} (the {lo * 100:g} % and "
          f"{hi * 100:g} % quantiles of the draws); the model was checked with prior and posterior "
          "predictive distributions of ln|F|.")
    w.add(data_sentence(run, n_obs, n_sites))
    w.add(f"Analyses used {software_versions(run.versions)} (PyMC: Abril-Pla et al. 2023; ArviZ: Kumar et "
          f"al. 2019). Data SHA-256 {run.attrs.get('data_sha256', 'not recorded')}; command line: "
          f"{run.attrs.get('command_line', 'not recorded')}.")
    return w.methods()


def residual_sentence(frame: pd.DataFrame) -> str:
    """ρ per flux class with its interval, the residuals' lag-1 autocorrelation before → after
    and the effective independent days (the rows of table residual_autocorrelation)."""
    parts = []
    for r in frame.itertuples():
        text = r.flux_class.replace("_", " ")
        if "median" in frame and pd.notna(r.median):
            text += f" ρ = {r.median:.2f} ({r.ci_low:.2f} to {r.ci_high:.2f})"
        if pd.notna(getattr(r, "resid_lag1_iid", np.nan)):
            text += f", lag-1 autocorrelation of the residuals {r.resid_lag1_iid:.2f}"
            if pd.notna(getattr(r, "resid_lag1_ar1", np.nan)):
                text += f" without the AR(1) term and {r.resid_lag1_ar1:.2f} with it"
        if pd.notna(getattr(r, "n_eff_days", np.nan)):
            text += f", {r.n_eff_days:.0f} effective independent days of {r.n_days:.0f}"
        parts.append(text)
    return ("Residual autocorrelation per flux class (table residual_autocorrelation; intervals the "
            f"{conventions.CI_LABEL}): " + "; ".join(parts) + ".")


def coverage_sentence(frame: pd.DataFrame) -> str:
    """The held-out check in one sentence (table crossvalidation_coverage; last row: all)."""
    every = frame.iloc[-1]
    return (f"In a leave-one-site-out check (python -m inference.crossvalidate_ea) {int(every['inside'])} of "
            f"{int(every['n_groups'])} held-out site × class × season mean ln|F| at {int(every['n_sites'])} "
            f"sites fell inside their new-site posterior predictive interval: coverage "
            f"{every['coverage']:.3f} for a nominal {conventions.CI_PROB:g} (a calibrated coverage over "
            f"as many groups falls within {every['band_low']:.3f} to {every['band_high']:.3f}); table "
            "crossvalidation_coverage and figure crossvalidation_pit.")


def data_sentence(run, n_obs: int | None = None, n_sites: int | None = None) -> str:
    config = run.config
    parts = [f"{desc} ({cite})" for desc, cite in data_sources(config)]
    text = "Data: " + ("; ".join(parts) if parts else "not recorded in the run")
    if run.synthetic:
        text += " — SIMULATED data, not observations"
    if n_obs is not None:
        text += f"; {n_obs} observations (site-periods) at {n_sites} sites entered the fit"
    dropped = {k: v for k, v in (config.get("dropped") or {}).items() if v}
    if dropped:
        text += "; excluded rows: " + ", ".join(f"{v} ({k})" for k, v in dropped.items())
    for cls, why in (config.get("skipped_classes") or {}).items():
        text += f"; class {cls} not fitted ({why})"
    for site, why in (config.get("skipped_sites") or {}).items():
        text += f"; site {site} skipped ({why})"
    return text + "."


# ---------------------------------------------------------------- other run kinds
JOB_DESCRIPTIONS = {
    "fit_rr": "a Bayesian random-effects meta-analysis of log response ratios (lnRR) of CH4 flux to warming "
              "(models/meta.py)",
    "project": "projections of CH4 flux under soil-warming scenarios (random forest and posterior Arrhenius "
               "scaling; models/forest.py, models/scenarios.py)",
    "budget": "the global GPP / soil-respiration budget consistency analysis (Jian et al. 2022; models/budget.py)",
    "compare_covariate": "a comparison of the hierarchical Boltzmann–Arrhenius model (models/arrhenius.py) "
                         "with and without a covariate moderating E and lnR, by PSIS-LOO expected log "
                         "predictive density (Vehtari et al. 2017) on the observations that have the "
                         "covariate",
    "compare_seasons": "a comparison of season schemes and residual models of the hierarchical "
                       "Boltzmann–Arrhenius model (models/arrhenius.py) by PSIS-LOO expected log "
                       "predictive density (Vehtari et al. 2017) on the observations every scheme keeps; "
                       "an AR(1) model's pointwise term is the density of an observation given the "
                       "previous one of its site × class × season, so AR(1) and iid models score the "
                       "same observations and their ELPDs compare",
}


def generic_methods(run, convergence: dict | None = None) -> Methods:
    """A shorter paragraph for runs whose model this module does not describe in detail."""
    config = run.config
    w = _Writer()
    w.add(f"This run is {JOB_DESCRIPTIONS.get(run.kind, run.kind)}.")
    if convergence is not None:
        w.add(f"The posterior was sampled with {SAMPLERS.get(config.get('sampler', 'pymc'), 'NUTS')}: "
              f"{convergence['chains']} chains of {convergence['draws']} draws (seed "
              f"{run.attrs.get('seed', 'not recorded')}); the largest R-hat was {convergence['r_hat_max']:.3f}, "
              f"the smallest bulk and tail ESS {convergence['ess_bulk_min']:.0f} and "
              f"{convergence['ess_tail_min']:.0f}, with {convergence['divergences']} divergent transitions "
              "(Vehtari et al. 2021).")
    lo, _, hi = conventions.CI_QUANTILES
    w.add(f"Intervals are the {conventions.CI_LABEL} (the {lo * 100:g} % and {hi * 100:g} % quantiles).")
    w.add(data_sentence(run))
    if run.versions:
        w.add(f"Analyses used {software_versions(run.versions)}.")
    if run.attrs.get("command_line"):
        w.add(f"Command line: {run.attrs['command_line']}.")
    return w.methods()


# ---------------------------------------------------------------- BARG checklist
DONE, ATTENTION, NOT_DONE, NA = "done", "attention", "not done", "n/a"


def barg_checklist(run, figures: set[str], tables: set[str], convergence: dict | None,
                   sensitivity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each BARG item (Kruschke 2021, Table 1) with its status for this run and the evidence.

    ``figures`` / ``tables``: names of what the report contains; ``convergence``:
    tables.convergence_summary of the gated parameters (None when the run has no MCMC draws).
    """
    ea = run.kind == "fit_ea"
    rows = []

    def item(step, key, what, status, evidence):
        rows.append({"step": step, "item": key, "guideline": what, "status": status, "evidence": evidence})

    model_text = ("methods paragraph (model equations)" if ea
                  else f"model description in {JOB_DESCRIPTIONS.get(run.kind, run.kind)}")
    item("Preamble", "A", "Why a Bayesian analysis", DONE if ea else ATTENTION,
         "methods paragraph: partial pooling across sites, direct posterior probabilities" if ea else
         "state the reason in the paper")
    item("Preamble", "B", "Goals of the analysis", DONE if ea else ATTENTION,
         "methods paragraph: E per class × season and ΔE" if ea else "state the goals in the paper")
    item("1 Model", "A", "Data variables (predicted and predictors)",
         DONE if "data_summary" in tables or not ea else ATTENTION,
         "ln|CH4 flux| vs soil temperature by class, season, site; table data_summary" if ea else "summary table")
    item("1 Model", "B", "Likelihood, parameters and hierarchical structure", DONE if ea else ATTENTION, model_text)
    priors = run.config.get("priors")
    if ea and priors:
        item("1 Model", "C", "Priors, with justification", DONE if _priors_are_defaults(priors) else ATTENTION,
             "priors read from the run's attrs; justification in the methods paragraph" if _priors_are_defaults(priors)
             else "non-default priors: justify them in the paper")
    else:
        item("1 Model", "C", "Priors, with justification", ATTENTION, "state and justify the priors")
    item("1 Model", "D", "Formal specification (equations or code)", DONE if ea else ATTENTION,
         "equations in the methods; code models/arrhenius.py; configuration in the run's attrs (tpflux_config)"
         if ea else "cite the model module and the configuration in the run's attrs")
    item("1 Model", "E", "Prior predictive check", DONE if "prior_predictive" in figures else NOT_DONE,
         "figure prior_predictive" if "prior_predictive" in figures else "the run saved no prior predictive draws")
    versions = run.versions
    item("2 Computation", "A", "Software and versions", DONE if versions else NOT_DONE,
         software_versions(versions) if versions else "no package versions recorded")
    if convergence is None:
        item("2 Computation", "B", "MCMC convergence (R-hat) for every parameter and derived value", NA,
             "no MCMC draws")
        item("2 Computation", "C", "MCMC resolution (ESS) for every parameter and derived value", NA,
             "no MCMC draws")
        item("2 Computation", "D", "Approximations other than MCMC", ATTENTION, "describe the Monte Carlo resampling")
    else:
        r_ok = convergence["r_hat_max"] <= GATE["r_hat_max"]
        e_ok = min(convergence["ess_bulk_min"], convergence["ess_tail_min"]) >= GATE["ess_bulk_min"]
        d_ok = (convergence["divergences"] or 0) <= GATE["divergences"]
        item("2 Computation", "B", "MCMC convergence (R-hat) for every parameter and derived value",
             DONE if r_ok and d_ok else ATTENTION,
             f"R-hat in every table (max {convergence['r_hat_max']:.3f}, threshold {GATE['r_hat_max']}); "
             f"{convergence['divergences']} divergences; rank and trace plots")
        item("2 Computation", "C", "MCMC resolution (ESS) for every parameter and derived value",
             DONE if e_ok else ATTENTION,
             f"bulk and tail ESS in every table (min {convergence['ess_bulk_min']:.0f} / "
             f"{convergence['ess_tail_min']:.0f}, threshold {GATE['ess_bulk_min']})")
        item("2 Computation", "D", "Approximations other than MCMC", NA,
             "posterior by MCMC" + ("; site effects drawn exactly from their conditional posterior"
                                    if ea and run.config.get("likelihood", "normal") == "normal" else ""))
    item("3 Posterior", "A", "Posterior predictive check", DONE if "posterior_predictive" in figures else NOT_DONE,
         "figure posterior_predictive" if "posterior_predictive" in figures else "no posterior predictive draws saved")
    item("3 Posterior", "B", "Central tendency and named credible interval for every reported quantity", DONE,
         f"medians with the {conventions.CI_LABEL} in every table and figure")
    if run.kind == "compare_seasons":
        item("3 Posterior", "C", "Bayes factors and model probabilities", DONE,
             "PSIS-LOO ELPD differences with their SE and stacking weights (table season_comparison)")
    else:
        item("3 Posterior", "C", "Bayes factors and model probabilities", NA,
             "no model comparison in this run; the pointwise log-likelihood for LOO "
             + ("is saved" if run.tree is not None and "log_likelihood" in run.tree.children
                else "is computed from the saved posterior and observations (tpflux: fit.loo())"))
    item("4 Decisions", "A", "Decision rules (ROPE, thresholds) and their criteria", NA,
         "no decision rule applied; probabilities such as P(ΔE > 0) are reported as they are" if ea
         else "no decision rule applied")
    if sensitivity is not None and len(sensitivity):
        flagged = sensitivity[sensitivity["diagnosis"] != "ok"]
        item("5 Sensitivity", "A", "Sensitivity of the results to the prior", DONE if flagged.empty else ATTENTION,
             "power-scaling sensitivity (table prior_sensitivity)" + (
                 "" if flagged.empty else "; flagged: " + ", ".join(f"{p} ({d})" for p, d in
                                                                    zip(flagged["parameter"], flagged["diagnosis"]))))
    else:
        item("5 Sensitivity", "A", "Sensitivity of the results to the prior", NOT_DONE,
             "refit with wider and narrower priors and compare")
    item("5 Sensitivity", "B", "Sensitivity of Bayes factors to the prior", NA, "no Bayes factors")
    item("6 Reproducibility", "A", "Code available", DONE if run.attrs.get("command_line") else ATTENTION,
         f"tpflux {versions.get('tpflux', '?')}; command line recorded in the run's attrs"
         if run.attrs.get("command_line") else "record the command line")
    sources = data_sources(run.config)
    public = bool(sources) and not user_data(run.config)
    item("6 Reproducibility", "B", "Data available", DONE if public else ATTENTION,
         ("; ".join(c for _, c in sources) + f"; data SHA-256 {str(run.attrs.get('data_sha256', ''))[:16]}…")
         if public else "deposit the input data and cite it")
    saved = [p.name for p in run.path.glob("*.nc")]
    item("6 Reproducibility", "C", "Posterior draws available", DONE if saved else NOT_DONE,
         ", ".join(saved) + " (ArviZ DataTree: posterior, sample stats, predictive draws)" if saved
         else "no posterior file")
    return pd.DataFrame(rows)


def references() -> list[str]:
    return list(REFERENCES)
