"""Activation energies of CH4 flux by flux class, season and site: ``fit_ea`` → ``ActivationEnergyFit``.

    fit = tpflux.fit_ea()                              # default real data, 4 × (1000 + 1000)
    fit = tpflux.fit_ea("my_chambers.csv", seasons="freeze-thaw")
    fit.summary(); fit.diagnostics; fit.plot_temperature_response(); fit.save("run")

``python -m inference.fit_ea`` is this function behind a parser: at the same seed both give
identical posterior arrays and summaries.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
from pathlib import Path
from typing import ClassVar

import pandas as pd

from data.errors import DataError
from data.seasons import SCHEMES
from data.table import Observations
from data.constants import T_REF_C
from models.arrhenius_config import (LIKELIHOODS, RESIDUALS, TAU_SHARING, TARGET_ACCEPT, TUNE, ArrheniusConfig,
                                     Priors)
from models.conventions import DEFAULT_SEED
from tpflux.io import observations_for
from tpflux.results import Config, Result
from tpflux.validate import check_choice, check_range, check_seed

SAMPLERS = ("nutpie", "pymc", "numpyro")
# Posterior-predictive draws kept per chain (prior predictive: twice as many in all). 4 × 25 draws
# of 15,159 observations are 6 MB; 100 draws are plenty for a predictive check and its figure.
PPC_DRAWS = 25


@dataclasses.dataclass(frozen=True)
class ActivationEnergyConfig(Config):
    """Everything that defines an activation-energy fit; stored in the run's attrs so that a run
    folder can be refitted from them alone."""

    dataset: str | None = "ch4-sites"
    data: str | None = None
    seasons: str = "julian"
    likelihood: str = "normal"
    residuals: str = "ar1"
    classes: tuple[str, ...] | None = None
    tau: str = "shared"
    covariate: str | None = None
    sampler: str = "nutpie"
    target_accept: float = TARGET_ACCEPT
    t_ref_c: float = T_REF_C
    min_obs: int = 20
    ppc_draws: int = PPC_DRAWS
    save_log_likelihood: bool = False
    chains: int = 4
    draws: int = 1000
    tune: int = TUNE
    seed: int = DEFAULT_SEED
    flux_column: str = "FCH4"
    per_chamber: bool = True
    priors: Priors = dataclasses.field(default_factory=Priors)

    def __post_init__(self):
        check_choice("seasons", self.seasons, SCHEMES)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_choice("residuals", self.residuals, RESIDUALS)
        check_choice("tau", self.tau, TAU_SHARING)
        if self.covariate is not None and (not isinstance(self.covariate, str) or not self.covariate):
            raise DataError(None, None, "covariate", f"covariate {self.covariate!r} is not a column "
                            "name", "name a numeric column of the canonical table, e.g. wtd_m")
        if self.classes is not None:
            if isinstance(self.classes, str):
                object.__setattr__(self, "classes", tuple(c for c in self.classes.split(",") if c))
            object.__setattr__(self, "classes", tuple(self.classes))
            if not self.classes or len(set(self.classes)) != len(self.classes):
                raise DataError(None, None, "classes", f"classes {','.join(self.classes)!r} must "
                                "name each flux class once", "e.g. classes=wetland_emission,"
                                "grassland_uptake")
        check_choice("sampler", self.sampler, SAMPLERS)
        check_choice("flux_column", self.flux_column, ("FCH4", "FCH4_F"))
        check_range("chains", self.chains, 1, 64, integer=True)
        check_range("draws", self.draws, 1, 10**6, integer=True)
        check_range("tune", self.tune, 0, 10**6, integer=True)
        check_range("ppc_draws", self.ppc_draws, 1, 10**5, integer=True)
        check_range("min_obs", self.min_obs, 1, 10**7, integer=True)
        check_range("target_accept", self.target_accept, 0.5, 0.999)
        check_range("t_ref_c", self.t_ref_c, -60.0, 70.0)  # the soil temperatures the readers accept
        check_seed(self.seed)

    def model_config(self) -> ArrheniusConfig:
        return ArrheniusConfig(t_ref_c=self.t_ref_c, likelihood=self.likelihood, min_obs=self.min_obs,
                               residuals=self.residuals, classes=self.classes, tau=self.tau,
                               covariate=self.covariate, priors=self.priors)

    @classmethod
    def from_dict(cls, values: dict):
        # A run saved before residual autocorrelation (class spreads) was modelled had independent
        # residuals (one τ per season shared by the classes).
        return super().from_dict({"residuals": "iid", "tau": "shared", **values})


@dataclasses.dataclass(repr=False)
class ActivationEnergyFit(Result):
    """A fitted hierarchical Boltzmann–Arrhenius model.

    ``datatree``: posterior (E, lnR, site effects, derived dE, Q10, …), sample stats, prior and
    predictive draws, observed and constant data. ``summary()``: the ``ea_summary.csv`` table.
    ``diagnostics``: the convergence gate's verdict. ``config``: an ``ActivationEnergyConfig``.
    """

    JOB: ClassVar[str] = "fit_ea"
    TREE_FILE: ClassVar[str] = "ea_posterior.nc"
    SUMMARY_FILE: ClassVar[str] = "ea_summary.csv"
    CONFIG: ClassVar[type] = ActivationEnergyConfig

    def result_text(self) -> str:
        """The numbers to cite: E per flux class × season and the season difference, with 95 %
        equal-tailed intervals."""
        from inference.ea_fitting import result_text

        return result_text(self.table, synthetic=self.synthetic, covariate=self.config.covariate)

    @property
    def synthetic(self) -> bool:
        return self.config.dataset == "synthetic" or bool((self.diagnostics or {}).get("synthetic"))

    def gate_advice(self) -> str:
        return gate_advice(self.config)

    def refit(self, **changes) -> "ActivationEnergyFit":
        """Fit again with this run's configuration (optionally changed): at the same seed the
        posterior arrays are identical."""
        config = dataclasses.replace(self.config, **changes)
        if config.dataset is None and config.data is None:
            raise DataError(None, None, "data", "this fit was made from an in-memory table, which the "
                            "run does not store", "pass the table again: tpflux.fit_ea(table, ...)")
        return fit_ea(config=config)

    def log_likelihood(self):
        """The pointwise log-likelihood (chain × draw × observation), stored or computed from the
        posterior and the observations the run keeps."""
        from models.arrhenius_loglik import pointwise_log_likelihood

        return pointwise_log_likelihood(self.datatree)

    def loo(self):
        """PSIS-LOO of the fit (ArviZ ``loo``), from the computed pointwise log-likelihood."""
        import arviz as az

        from models.arrhenius_loglik import with_log_likelihood

        return az.loo(with_log_likelihood(self.datatree), pointwise=True)

    # ------------------------------------------------------------ figures (not drawn or saved)
    def plot_temperature_response(self):
        """ln|F| against soil temperature per class × season: data, population curve and band."""
        from reports.ea_figures import temperature_response

        return temperature_response(self.datatree)

    def plot_arrhenius(self):
        """The Arrhenius plot: ln|F| against 1/kT with per-site lines."""
        from reports.ea_figures import arrhenius_plot

        return arrhenius_plot(self.datatree)

    def plot_season_difference(self):
        """Posterior of ΔE between seasons per flux class (None with one season)."""
        from reports.ea_figures import season_difference

        return season_difference(self.datatree, self.table)

    def plot_rank(self, var_names=None):
        """Rank plots of the sampled parameters (uniform when chains mix)."""
        from reports.diagnostic_figures import default_var_names, rank_plot

        return rank_plot(self.datatree, var_names or default_var_names(self.datatree))

    def plot_trace(self, var_names=None):
        from reports.diagnostic_figures import default_var_names, trace_plot

        return trace_plot(self.datatree, var_names or default_var_names(self.datatree))


def fit_ea(data: str | Path | pd.DataFrame | Observations | None = None, *,
           dataset: str | None = "ch4-sites", seasons: str = "julian", likelihood: str = "normal",
           residuals: str = "ar1", classes: tuple[str, ...] | str | None = None,
           tau: str = "shared", covariate: str | None = None, chains: int = 4, draws: int = 1000, tune: int = TUNE, seed: int = DEFAULT_SEED,
           sampler: str = "nutpie", target_accept: float = TARGET_ACCEPT, t_ref_c: float = T_REF_C,
           min_obs: int = 20, ppc_draws: int = PPC_DRAWS, save_log_likelihood: bool = False,
           flux_column: str = "FCH4",
           per_chamber: bool = True, priors: Priors | None = None,
           config: ActivationEnergyConfig | None = None, progress: bool = True,
           command_line: list[str] | None = None) -> ActivationEnergyFit:
    """Fit activation energies E (eV) per flux class × season with site effects.

    ``data``: a path (FLUXNET-CH4 file or folder, COSORE folder, chamber CSV), a canonical table
    (``tpflux.load_observations(...).table``) or an ``Observations``; None uses ``dataset`` from the
    registry ("ch4-sites": FLUXNET-CH4 wetlands + Hongyuan chambers; "synthetic": the simulator).
    ``covariate``: a numeric column of the canonical table (``wtd_m`` water table, ``swc`` soil
    moisture, …) that moderates E and lnR of each observation, E_ij = E_cs + ε_E + β_E,c·(z_ij − z̄_c),
    lnR likewise; rows without a value are dropped and counted, and β_E, β_R per flux class enter
    the summary. ``config`` replaces all the keyword options (e.g. one read from a saved run).
    Raises ``DataError`` for bad input before any sampling.
    """
    from inference import ea_fitting, runio

    if config is None:
        path = str(data) if isinstance(data, (str, Path)) else None
        in_memory = data is not None and path is None
        config = ActivationEnergyConfig(
            dataset=None if (path or in_memory) else dataset, data=path, seasons=seasons,
            likelihood=likelihood, residuals=residuals, classes=classes, tau=tau,
            covariate=covariate, sampler=sampler, target_accept=target_accept, t_ref_c=t_ref_c,
            min_obs=min_obs, ppc_draws=ppc_draws, save_log_likelihood=save_log_likelihood,
            chains=chains, draws=draws, tune=tune, seed=seed,
            flux_column=flux_column, per_chamber=per_chamber, priors=priors or Priors())
    if config.sampler != "pymc" and importlib.util.find_spec(config.sampler) is None:
        raise DataError(None, None, None, f"sampler '{config.sampler}' is not installed",
                        f"pip install {config.sampler}, or use --sampler pymc")
    say = runio.progress if progress else (lambda message: None)
    obs = observations_for(data if not isinstance(data, (str, Path)) else None, config)
    model_config = config.model_config()
    prepared = ea_fitting.prepare(obs, config.seasons, model_config)
    say(ea_fitting.data_summary_text(obs, prepared))

    say(f"sampling: {config.chains} chains × ({config.tune} tune + {config.draws} draws), "
        f"{config.likelihood} likelihood, sampler {config.sampler}")
    t0 = time.perf_counter()
    idata = ea_fitting.sample(prepared, model_config, chains=config.chains, draws=config.draws,
                              tune=config.tune, seed=config.seed, sampler=config.sampler,
                              target_accept=config.target_accept,
                              progressbar=progress and sys.stderr.isatty())
    wall = time.perf_counter() - t0
    say(f"sampled in {wall:.1f} s; computing site effects and derived quantities")
    dt = ea_fitting.assemble(idata, prepared, model_config, seed=config.seed,
                             ppc_draws=config.ppc_draws, log_likelihood=config.save_log_likelihood)
    record = {**config.to_dict(), **model_config.to_dict(), "season_scheme": config.seasons,
              "synthetic": obs.synthetic, "skipped_classes": prepared.skipped_classes,
              "independent_classes": prepared.independent_classes,
              "residuals_fitted": prepared.residuals,
              "covariate_centre": prepared.covariate_centre, "covariate_scale": prepared.covariate_scale,
              "dropped": {**obs.dropped, **prepared.dropped}, "skipped_sites": obs.skipped_sites}
    dt.attrs.update(runio.provenance(record, runio.table_sha256(obs.table), config.seed,
                                     command_line, job=ActivationEnergyFit.JOB))
    summary = ea_fitting.summary_table(dt, prepared)
    diag = runio.diagnose(dt, ea_fitting.GATED_VARIABLES, summary=summary)
    diag.update({"sampling_seconds": wall, "n_observations": len(prepared.obs),
                 "mean_tree_depth": ea_fitting.mean_tree_depth(dt), "synthetic": obs.synthetic})
    return ActivationEnergyFit(datatree=dt, table=runio.as_saved(summary), diagnostics=diag,
                               config=config)


def gate_advice(config: ActivationEnergyConfig) -> str:
    """What to try when the gate fails, never the setting already in use."""
    tips = ["more --tune/--draws"]
    if config.target_accept < 0.99:
        tips.append("--target-accept 0.99 for divergences")
    if config.likelihood != "normal":
        tips.append("--likelihood normal (the calibrated model)")
    return ", ".join(tips) + "; inspect the rank plots (python -m reports.build RUN_DIR)"
