"""Which season scheme describes the data best: ``compare_seasons`` → ``SeasonComparison``.

    cmp = tpflux.compare_seasons()                              # julian vs freeze-thaw vs none
    cmp.summary()                                               # the PSIS-LOO ranking
    cmp.diagnostics["schemes"]["julian"]["verdict"]             # one convergence gate per scheme

The activation-energy model (model M1) is fitted once per scheme, with the same steps as
``tpflux.fit_ea`` (``inference.ea_fitting``), on the observations every scheme keeps (a class too
small in one scheme's seasons is dropped from all), then the schemes are ranked by expected log
predictive density (ELPD) with the difference to the best and its standard error.
``python -m inference.compare_seasons`` is this function behind a parser.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from data.errors import DataError
from data.seasons import SCHEMES
from data.table import Observations
from models.arrhenius_config import Priors
from models.conventions import DEFAULT_SEED
from models.arrhenius_config import TARGET_ACCEPT
from tpflux.activation import ActivationEnergyConfig
from tpflux.io import observations_for
from tpflux.results import Result
from tpflux.validate import check_choice

DEFAULT_SCHEMES = ("julian", "freeze-thaw", "none")
TABLE_COLUMNS = ("scheme", "rank", "elpd", "p", "elpd_diff", "dse", "weight", "warning")


def _schemes(value) -> tuple[str, ...]:
    """Season schemes from a sequence or the command line's comma-separated text: at least two,
    known, none twice."""
    items = value.split(",") if isinstance(value, str) else list(value)
    schemes = tuple(str(s).strip() for s in items if str(s).strip())
    example = f"e.g. --schemes {','.join(DEFAULT_SCHEMES)}"
    if len(schemes) < 2:
        raise DataError(None, None, "--schemes", f"{value!r} names {len(schemes) or 'no'} season "
                        "scheme" + ("" if len(schemes) == 1 else "s") + "; a comparison needs two or more",
                        f"name at least two of {', '.join(SCHEMES)}, {example}")
    for s in schemes:
        check_choice("schemes", s, SCHEMES)
    twice = sorted({s for s in schemes if schemes.count(s) > 1})
    if twice:
        raise DataError(None, None, "--schemes", f"{', '.join(twice)} named more than once",
                        f"name each scheme once, {example}")
    return schemes


@dataclasses.dataclass(frozen=True)
class SeasonComparisonConfig(ActivationEnergyConfig):
    """The options of an activation-energy fit (``ActivationEnergyConfig``, checked the same way)
    and the season schemes compared; ``seasons`` is the first scheme. Stored in the run's attrs.
    Each scheme's fit is the ``ActivationEnergyConfig`` of ``scheme_config``; one
    posterior-predictive draw each is enough for the comparison."""

    ppc_draws: int = 1
    schemes: tuple[str, ...] = DEFAULT_SCHEMES

    def __post_init__(self):
        object.__setattr__(self, "schemes", _schemes(self.schemes))
        object.__setattr__(self, "seasons", self.schemes[0])
        super().__post_init__()

    def scheme_config(self, scheme: str) -> ActivationEnergyConfig:
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(ActivationEnergyConfig)}
        return ActivationEnergyConfig(**{**options, "seasons": scheme})


@dataclasses.dataclass(repr=False)
class SeasonComparison(Result):
    """Season schemes ranked by PSIS-LOO on common observations.

    ``summary()``: the ``season_comparison.csv`` table (``scheme``, ``n_obs``, ``rank``, ``elpd``,
    ``p``, ``elpd_diff``, ``dse``, ``weight``, ``warning``, …). ``diagnostics``: the gate of
    every scheme's fit and the overall verdict. ``datatree``: the pointwise ELPD and Pareto k
    per scheme and observation, provenance in the attrs. ``fits``: each scheme's full DataTree
    (with its pointwise log-likelihood) while in memory; not saved.
    """

    JOB: ClassVar[str] = "compare_seasons"
    TREE_FILE: ClassVar[str] = "season_comparison.nc"
    SUMMARY_FILE: ClassVar[str] = "season_comparison.csv"
    CONFIG: ClassVar[type] = SeasonComparisonConfig

    fits: dict[str, xr.DataTree] = dataclasses.field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        return int(self.table["n_obs"].iloc[0]) if len(self.table) else 0

    @property
    def best(self) -> str:
        """The scheme with the highest ELPD."""
        return str(self.table.sort_values("rank")["scheme"].iloc[0])

    def result_text(self) -> str:
        cols = [c for c in TABLE_COLUMNS if c in self.table]
        tag = " [SYNTHETIC DATA]" if self.synthetic else ""
        return (f"PSIS-LOO comparison on {self.n_obs} common observations (higher ELPD is better)"
                f"{tag}:\n" + self.table[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))

    def gate_advice(self) -> str:
        return gate_advice(self.config, (self.diagnostics or {}).get("schemes", {}))

    def rerun(self, **changes) -> "SeasonComparison":
        """Compare again with this run's configuration (optionally changed)."""
        config = dataclasses.replace(self.config, **changes)
        if config.dataset is None and config.data is None:
            raise DataError(None, None, "data", "this comparison was made from an in-memory table, "
                            "which the run does not store", "pass the table again: "
                            "tpflux.compare_seasons(table, ...)")
        return compare_seasons(config=config)


def compare_seasons(data: str | Path | pd.DataFrame | Observations | None = None, *,
                    dataset: str | None = "ch4-sites", schemes=DEFAULT_SCHEMES,
                    likelihood: str = "normal", residuals: str = "ar1",
                    classes: tuple[str, ...] | str | None = None, min_obs: int = 20, chains: int = 4,
                    draws: int = 1000, tune: int = 1000, seed: int = DEFAULT_SEED,
                    sampler: str = "nutpie", target_accept: float = TARGET_ACCEPT,
                    t_ref_c: float = 15.0, flux_column: str = "FCH4", per_chamber: bool = True,
                    priors: Priors | None = None, config: SeasonComparisonConfig | None = None,
                    progress: bool = True,
                    command_line: list[str] | None = None) -> SeasonComparison:
    """Fit the activation-energy model once per season scheme on common observations and rank
    the schemes by PSIS-LOO.

    ``data``/``dataset`` and the fit options as for ``tpflux.fit_ea``; ``schemes``: two or more of
    julian, freeze-thaw, none (a sequence, or comma-separated text). ``config`` replaces all the keyword
    options. Raises ``DataError`` for bad input before any sampling.
    """
    import arviz as az

    from inference import runio

    if config is None:
        path = str(data) if isinstance(data, (str, Path)) else None
        config = SeasonComparisonConfig(
            dataset=None if data is not None else dataset, data=path, schemes=schemes,
            likelihood=likelihood, residuals=residuals, classes=classes, sampler=sampler,
            target_accept=target_accept, t_ref_c=t_ref_c, min_obs=min_obs, chains=chains, draws=draws, tune=tune, seed=seed,
            flux_column=flux_column, per_chamber=per_chamber, priors=priors or Priors())
    say = runio.progress if progress else (lambda message: None)
    _require_sampler(config.sampler)
    obs = observations_for(data if not isinstance(data, (str, Path)) else None, config)
    model_config = config.model_config()
    prepared = common_observations(obs, config.schemes, model_config)
    n = len(next(iter(prepared.values())).obs)
    say(f"{n} observations common to schemes {', '.join(config.schemes)}")
    fits = {scheme: fit_scheme(prepared[scheme], config, scheme, say=say, progress=progress)
            for scheme in config.schemes}
    loo = {scheme: az.loo(tree, pointwise=True) for scheme, tree in fits.items()}
    table = az.compare(loo, round_to="none").reset_index(names="scheme")
    table.insert(1, "n_obs", n)
    diag = combined_diagnostics({s: runio.diagnose(t, _gated()) for s, t in fits.items()})
    diag.update(n_observations=n, synthetic=bool(obs.synthetic))
    record = {**config.to_dict(), **model_config.to_dict(), "synthetic": bool(obs.synthetic),
              "dropped": obs.dropped, "skipped_sites": obs.skipped_sites}
    attrs = runio.provenance(record, runio.table_sha256(obs.table), config.seed, command_line,
                             job=SeasonComparison.JOB)
    tree = pointwise_tree(loo, next(iter(prepared.values())), attrs)
    return SeasonComparison(datatree=tree, table=runio.as_saved(table), diagnostics=diag,
                            config=config, fits=fits)


def _gated() -> tuple[str, ...]:
    from models.conventions import EA_GATED_VARIABLES as GATED_VARIABLES

    return GATED_VARIABLES


def _require_sampler(sampler: str) -> None:
    import importlib.util

    if sampler != "pymc" and importlib.util.find_spec(sampler) is None:
        raise DataError(None, None, "--sampler", f"sampler '{sampler}' is not installed",
                        f"pip install {sampler}, or use --sampler pymc")


def common_observations(obs: Observations, schemes, config, max_rounds: int = 5) -> dict:
    """Prepared data (``ArrheniusData``) per scheme, restricted to the rows every scheme keeps."""
    from inference import ea_fitting

    table = obs.table
    for _ in range(max_rounds):
        sub = Observations(table=table, dropped=obs.dropped, synthetic=obs.synthetic)
        prepared = {s: ea_fitting.prepare(sub, s, config) for s in schemes}
        keys = None
        for data in prepared.values():
            k = pd.MultiIndex.from_frame(data.obs[["site", "date"]])
            keys = k if keys is None else keys.intersection(k)
        if all(len(d.obs) == len(keys) for d in prepared.values()):
            return prepared
        mask = pd.MultiIndex.from_frame(table[["site", "date"]]).isin(keys)
        table = table.loc[mask].reset_index(drop=True)
    raise DataError(None, None, "--schemes", f"the schemes {', '.join(schemes)} did not agree on a "
                    f"common set of observations in {max_rounds} rounds",
                    "compare fewer schemes, or lower --min-obs")


def fit_scheme(data, config: SeasonComparisonConfig, scheme: str, *, say, progress: bool) -> xr.DataTree:
    """One scheme's fit: the fit_ea steps (sample → assemble) with the pointwise log-likelihood
    that PSIS-LOO needs."""
    from inference import ea_fitting

    fit_config = config.scheme_config(scheme)
    model_config = fit_config.model_config()
    n_s, n_c = len(data.seasons), len(data.classes)
    say(f"fitting scheme '{scheme}' ({n_s} season{'s' * (n_s != 1)}, {n_c} class{'es' * (n_c != 1)})")
    idata = ea_fitting.sample(data, model_config, chains=config.chains, draws=config.draws,
                              tune=config.tune, seed=config.seed, sampler=config.sampler,
                              target_accept=config.target_accept,
                              progressbar=progress and sys.stderr.isatty())
    return ea_fitting.assemble(idata, data, model_config, seed=config.seed,
                               ppc_draws=fit_config.ppc_draws, log_likelihood=True)


def combined_diagnostics(verdicts: dict[str, dict]) -> dict:
    """One verdict over the schemes' gates: the worst R-hat and ESS, all divergences, and which
    scheme failed why."""
    failed = [s for s, d in verdicts.items() if d["verdict"] != "pass"]
    return {"r_hat_max": max(d["r_hat_max"] for d in verdicts.values()),
            "ess_bulk_min": min(d["ess_bulk_min"] for d in verdicts.values()),
            "ess_tail_min": min(d["ess_tail_min"] for d in verdicts.values()),
            "divergences": sum(d["divergences"] for d in verdicts.values()),
            "gate": next(iter(verdicts.values()))["gate"], "schemes": verdicts,
            "verdict": "fail" if failed else "pass",
            "failed": [f"scheme {s}: " + "; ".join(verdicts[s]["failed"]) for s in failed]}


def pointwise_tree(loo: dict, data, attrs: dict) -> xr.DataTree:
    """Pointwise ELPD and Pareto k per scheme × observation, with the observations' site, date
    and flux class; the run's provenance in the root attrs."""
    schemes = list(loo)
    obs = data.obs
    ds = xr.Dataset(
        {"elpd_loo": (("scheme", "obs"), np.vstack([np.asarray(loo[s].elpd_i).ravel() for s in schemes])),
         "pareto_k": (("scheme", "obs"), np.vstack([np.asarray(loo[s].pareto_k).ravel() for s in schemes])),
         "site": ("obs", obs["site"].to_numpy().astype(str)),
         "date": ("obs", obs["date"].to_numpy()),
         "flux_class": ("obs", obs["flux_class"].to_numpy().astype(str))},
        coords={"scheme": schemes, "obs": np.arange(len(obs))})
    ds["elpd_loo"].attrs["long_name"] = "pointwise PSIS-LOO expected log predictive density"
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), "/pointwise": ds})


def gate_advice(config: SeasonComparisonConfig, verdicts: dict | None = None) -> str:
    """What to try when a scheme's gate fails, never the setting already in use."""
    tips = [f"more --tune/--draws (now {config.tune}/{config.draws})"]
    if config.target_accept < 0.99:
        tips.append("--target-accept 0.99 for divergences")
    if config.likelihood != "normal":
        tips.append("--likelihood normal (the calibrated model)")
    failed = [s for s, d in (verdicts or {}).items() if d.get("verdict") != "pass"]
    if failed:
        tips.append(f"inspect the failing scheme{'s' * (len(failed) > 1)} ({', '.join(failed)}) "
                    f"alone: python -m inference.fit_ea --seasons {failed[0]}, then its rank plots")
    return ", ".join(tips)
