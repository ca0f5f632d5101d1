"""Does a covariate (water table, soil moisture, …) moderate E: ``compare_covariate`` → ``CovariateComparison``.

    cmp = tpflux.compare_covariate("wtd_m")          # default real data (FLUXNET-CH4 wetlands)
    cmp.summary()                                    # PSIS-LOO: with vs without the covariate
    cmp.effects                                      # β_E, β_R per flux class and E in both models
    cmp.fits["wtd_m"].summary()                      # each model's full fit

The activation-energy model is fitted twice on the same observations — the rows that have a value
of the covariate — once without it and once with E_ij = E_cs + ε_E + β_E,c·(z_ij − z̄_c) and lnR
likewise (``tpflux.fit_ea(covariate=...)``). The two are ranked by expected log predictive density
(ELPD) with the difference, its standard error and the same one-line reading as the season
comparison (``tpflux.seasons.interpret``). β_E is in eV per unit of the covariate (per m for
``wtd_m``, positive above the surface: a positive β_E means a stronger temperature response when
the water table is higher).

``python -m inference.compare_covariate`` is this function behind a parser.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import ClassVar

import pandas as pd
import xarray as xr

from data.errors import DataError
from data.table import Observations
from tpflux.activation import ActivationEnergyConfig
from tpflux.io import observations_for
from tpflux.results import Result

TABLE_COLUMNS = ("model", "covariate", "n_obs", "rank", "elpd", "p", "elpd_diff", "dse", "weight",
                 "warning", "interpretation")
EFFECTS_FILE = "covariate_effects.csv"
EFFECT_QUANTITIES = ("beta_E", "beta_R", "E")
NO_COVARIATE = "none"


@dataclasses.dataclass(frozen=True)
class CovariateComparisonConfig(ActivationEnergyConfig):
    """The options of an activation-energy fit (``ActivationEnergyConfig``); ``covariate`` is the
    one compared against none. One posterior-predictive draw each is enough for a comparison."""

    ppc_draws: int = 1
    covariate: str | None = "wtd_m"

    def __post_init__(self):
        super().__post_init__()
        if self.covariate is None:
            raise DataError(None, None, "--covariate", "no covariate to compare",
                            "name a numeric column of the canonical table, e.g. --covariate wtd_m")

    def model_configs(self) -> dict[str, ActivationEnergyConfig]:
        """Each model's fit configuration, keyed by model name (the covariate, or "none")."""
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(ActivationEnergyConfig)}
        options["save_log_likelihood"] = True
        return {NO_COVARIATE: ActivationEnergyConfig(**{**options, "covariate": None}),
                self.covariate: ActivationEnergyConfig(**options)}


@dataclasses.dataclass(repr=False)
class CovariateComparison(Result):
    """A covariate's moderation of E, and the PSIS-LOO ranking of the models with and without it
    on the same observations.

    ``summary()``: ``covariate_comparison.csv`` (one row per model: ELPD, its difference to the
    best with SE, the reading). ``effects``: ``covariate_effects.csv``, β_E and β_R per flux class
    and E per flux class × season in both models. ``diagnostics``: each fit's gate and the overall
    verdict. ``datatree``: the pointwise ELPD and Pareto k per model and observation. ``fits``:
    each model's ``ActivationEnergyFit`` while in memory; not saved.
    """

    JOB: ClassVar[str] = "compare_covariate"
    TREE_FILE: ClassVar[str] = "covariate_comparison.nc"
    SUMMARY_FILE: ClassVar[str] = "covariate_comparison.csv"
    CONFIG: ClassVar[type] = CovariateComparisonConfig

    fits: dict = dataclasses.field(default_factory=dict)

    @property
    def effects(self) -> pd.DataFrame:
        return self.extra_tables.get(EFFECTS_FILE, pd.DataFrame()).copy()

    @property
    def preferred(self) -> str:
        """The model with the highest ELPD."""
        return str(self.table.sort_values("rank")["model"].iloc[0])

    def result_text(self) -> str:
        tag = " [SYNTHETIC DATA]" if self.synthetic else ""
        cov = self.config.covariate
        n = int(self.table["n_obs"].iloc[0]) if len(self.table) else 0
        lines = [f"Does {cov} moderate E? PSIS-LOO on {n} observations that have {cov}{tag}:"]
        lines += [f"  {r.model:<10} ELPD {r.elpd:10.1f}  {r.interpretation}"
                  for r in self.table.sort_values("rank").itertuples()]
        eff = self.effects
        beta = eff[eff["quantity"].isin(["beta_E", "beta_R"])] if len(eff) else eff
        if len(beta):
            lines.append(f"Effect of {cov} (per unit of it) on E (eV) and lnR, median [95 % interval]:")
            lines += [f"  {r.quantity:<7} {r.flux_class:<22} {r.median:8.3f}  [{r.ci_low:7.3f}, "
                      f"{r.ci_high:7.3f}]" for r in beta.itertuples()]
        energy = eff[eff["quantity"] == "E"] if len(eff) else eff
        if len(energy):
            lines.append(f"E (eV) without → with {cov} (at its class mean), median [95 % interval]:")
            wide = energy.pivot_table(index=["flux_class", "season"], columns="model",
                                      values=["median", "ci_low", "ci_high"])
            for (cls, season), r in wide.iterrows():
                parts = [f"{r[('median', m)]:.3f} [{r[('ci_low', m)]:.3f}, {r[('ci_high', m)]:.3f}]"
                         for m in (NO_COVARIATE, cov) if ("median", m) in r.index]
                lines.append(f"  {cls:<22} {season:<14} " + " → ".join(parts))
        return "\n".join(lines)

    @classmethod
    def _load_extra(cls, folder: Path) -> tuple[dict, dict]:
        from data.storage import read_csv

        path = folder / EFFECTS_FILE
        return ({EFFECTS_FILE: read_csv(path)} if path.exists() else {}), {}


def compare_covariate(covariate: str = "wtd_m",
                      data: str | Path | pd.DataFrame | Observations | None = None, *,
                      config: CovariateComparisonConfig | None = None, progress: bool = True,
                      command_line: list[str] | None = None, **options) -> CovariateComparison:
    """Fit the activation-energy model without and with ``covariate`` on the rows that have it,
    rank the two by PSIS-LOO and report β_E, β_R. ``options``: those of ``tpflux.fit_ea``
    (dataset, seasons, residuals, classes, chains, draws, seed, …); ``config`` replaces them.
    Raises ``DataError`` for bad input before any sampling."""
    import arviz as az

    from inference import runio
    from tpflux.activation import fit_ea
    from tpflux.seasons import aligned_log_likelihood, combined_diagnostics, interpret, pointwise_elpd

    if config is None:
        path = str(data) if isinstance(data, (str, Path)) else None
        if path or data is not None:
            options["dataset"] = None
        config = CovariateComparisonConfig(covariate=covariate, data=path, **options)
    say = runio.progress if progress else (lambda message: None)
    obs = observations_for(data if not isinstance(data, (str, Path)) else None, config)
    common = rows_with_covariate(obs, config.covariate)
    say(f"{len(common.table)} of {len(obs.table)} rows have {config.covariate}: both models are "
        "fitted on those")
    fits, loo = {}, {}
    models = config.model_configs()
    for k, (name, fit_config) in enumerate(models.items(), 1):
        t0 = time.perf_counter()
        say(f"model {k}/{len(models)}: {'no covariate' if name == NO_COVARIATE else name}")
        fits[name] = fit_ea(common, config=fit_config, progress=progress)
        if k == 1:
            keys = _keys(fits[name].datatree)
        loo[name] = az.loo(aligned_log_likelihood(fits[name].datatree, keys), pointwise=True)
        say(f"model {k}/{len(models)}: fitted and scored in {time.perf_counter() - t0:.0f} s "
            f"(ELPD {float(loo[name].elpd):.1f} ± {float(loo[name].se):.1f})")
    table = az.compare(loo, round_to="none").reset_index(names="model")
    table.insert(1, "covariate", table["model"].where(table["model"] != NO_COVARIATE, ""))
    table.insert(2, "n_obs", len(keys))
    best = str(table.loc[table["rank"].idxmin(), "model"])
    table["interpretation"] = [interpret(m, best, d, e) for m, d, e in
                               zip(table["model"], table["elpd_diff"], table["dse"])]
    table = table[[c for c in TABLE_COLUMNS if c in table]]
    effects = pd.concat([f.table[f.table["quantity"].isin(EFFECT_QUANTITIES)].assign(model=m)
                         for m, f in fits.items()], ignore_index=True)
    effects = effects[["model", *[c for c in effects.columns if c != "model"]]]
    diag = combined_diagnostics({m: f.diagnostics for m, f in fits.items()})
    diag.update(n_observations=len(keys), synthetic=bool(obs.synthetic))
    record = {**config.to_dict(), "synthetic": bool(obs.synthetic), "dropped": common.dropped}
    attrs = runio.provenance(record, runio.table_sha256(common.table), config.seed, command_line,
                             job=CovariateComparison.JOB)
    tree = xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), "/pointwise": pointwise_elpd(loo, keys)})
    return CovariateComparison(datatree=tree, table=runio.as_saved(table), diagnostics=diag,
                               config=config, fits=fits,
                               extra_tables={EFFECTS_FILE: runio.as_saved(effects)})


def rows_with_covariate(obs: Observations, covariate: str) -> Observations:
    """The observations that have a value of ``covariate``, the others counted as dropped. Refuses
    a name that is not a numeric column able to moderate E (``models.arrhenius.with_covariate``)."""
    from models.arrhenius import with_covariate

    source = obs.sources[0] if len(obs.sources) == 1 else None
    table, missing = with_covariate(obs.table, covariate, source)
    dropped = {**obs.dropped, f"covariate {covariate} missing": missing}
    return dataclasses.replace(obs, table=table.reset_index(drop=True), dropped=dropped)


def _keys(tree: xr.DataTree) -> pd.MultiIndex:
    const = tree["constant_data"]
    return pd.MultiIndex.from_arrays([const["site"].to_numpy().astype(str),
                                      pd.to_datetime(const["date"].to_numpy())])
