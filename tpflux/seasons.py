"""Which season scheme (and residual model) describes the data best: ``compare_seasons`` → ``SeasonComparison``.

    cmp = tpflux.compare_seasons()                              # {julian, freeze-thaw, none} × {ar1, iid}
    cmp.summary()                                               # the PSIS-LOO ranking, one row per model
    cmp.by_class                                                # the same per flux class
    cmp.left_out                                                # rows outside the comparison, and why
    cmp.diagnostics["models"]["julian/ar1"]["verdict"]          # one convergence gate per model

The activation-energy model (model M1) is fitted once per season scheme × residual model, with the
same steps as ``tpflux.fit_ea`` (``inference.ea_fitting``), on the observations every scheme keeps,
then the models are ranked by expected log predictive density (ELPD) with the difference to the
best and its standard error, overall and per flux class. A flux class that one scheme cannot fit
(a season cell below ``min_obs``) cannot take part in a comparison on common observations: it is
left out of every model, and ``left_out`` (``season_comparison_left_out.csv``, printed) says which
rows and why. Each ΔELPD comes with a one-line reading against its SE (``interpret``).

AR(1) and iid residuals are compared on the same observations: the AR(1) pointwise term of an
observation is its density given the previous observation of its site × class × season group
(the first of a run: its marginal density), so each model has one term per observation and the
terms sum to the joint log-likelihood of the same data. The AR(1) ELPD is thus a one-step-ahead
predictive score that uses the previous day's residual, the iid one is not.

``python -m inference.compare_seasons`` is this function behind a parser.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from data.errors import DataError
from data.seasons import SCHEMES
from data.table import Observations, flux_class
from models.arrhenius_config import RESIDUALS, TARGET_ACCEPT, TUNE, Priors
from models.conventions import DEFAULT_SEED, ELPD_DISTINCT_SE, ELPD_NEGLIGIBLE
from tpflux.activation import ActivationEnergyConfig
from tpflux.io import observations_for
from tpflux.results import Result
from tpflux.validate import check_choice

DEFAULT_SCHEMES = ("julian", "freeze-thaw", "none")
DEFAULT_RESIDUALS = RESIDUALS
TABLE_COLUMNS = ("model", "rank", "elpd", "p", "elpd_diff", "dse", "weight", "warning")
CLASS_COLUMNS = ("flux_class", "model", "n_obs", "rank", "elpd", "elpd_diff", "dse")
BY_CLASS_FILE = "season_comparison_by_class.csv"
LEFT_OUT_FILE = "season_comparison_left_out.csv"
_COUNT_WORDS = {1: "one", 2: "two"}


def _option_list(value, option: str, noun: str, known, minimum: int) -> tuple[str, ...]:
    """Names from a sequence or the command line's comma-separated text: at least ``minimum``,
    each one of ``known``, none twice."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(str(s).strip() for s in items if str(s).strip())
    example = f"e.g. --{option} {','.join(known)}"
    if len(names) < minimum:
        raise DataError(None, None, f"--{option}", f"{value!r} names {len(names) or 'no'} {noun}"
                        + ("" if len(names) == 1 else "s") + f"; a comparison needs "
                        f"{_COUNT_WORDS[minimum]} or more", f"name at least {_COUNT_WORDS[minimum]} "
                        f"of {', '.join(known)}, {example}")
    for name in names:
        check_choice(option, name, known)
    twice = sorted({s for s in names if names.count(s) > 1})
    if twice:
        raise DataError(None, None, f"--{option}", f"{', '.join(twice)} named more than once",
                        f"name each {noun} once, {example}")
    return names


def model_name(scheme: str, residuals: str) -> str:
    return f"{scheme}/{residuals}"


@dataclasses.dataclass(frozen=True)
class SeasonComparisonConfig(ActivationEnergyConfig):
    """The options of an activation-energy fit (``ActivationEnergyConfig``, checked the same way),
    the season schemes and the residual models compared; ``seasons`` and ``residuals`` are the
    first of each. Stored in the run's attrs. Each model's fit is the ``ActivationEnergyConfig``
    of ``model_config_of``; one posterior-predictive draw each is enough for the comparison."""

    ppc_draws: int = 1
    schemes: tuple[str, ...] = DEFAULT_SCHEMES
    residual_models: tuple[str, ...] = DEFAULT_RESIDUALS

    def __post_init__(self):
        object.__setattr__(self, "schemes", _option_list(self.schemes, "schemes", "season scheme",
                                                         SCHEMES, 2))
        object.__setattr__(self, "residual_models", _option_list(
            self.residual_models, "residuals", "residual model", RESIDUALS, 1))
        object.__setattr__(self, "seasons", self.schemes[0])
        object.__setattr__(self, "residuals", self.residual_models[0])
        super().__post_init__()

    @property
    def models(self) -> list[tuple[str, str]]:
        """(scheme, residuals) of every model compared, schemes outermost."""
        return [(s, r) for s in self.schemes for r in self.residual_models]

    def scheme_config(self, scheme: str, residuals: str | None = None) -> ActivationEnergyConfig:
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(ActivationEnergyConfig)}
        return ActivationEnergyConfig(**{**options, "seasons": scheme,
                                         "residuals": residuals or self.residuals})


@dataclasses.dataclass(repr=False)
class SeasonComparison(Result):
    """Season schemes × residual models ranked by PSIS-LOO on common observations.

    ``summary()``: the ``season_comparison.csv`` table (``model``, ``scheme``, ``residuals``,
    ``n_obs``, ``rank``, ``elpd``, ``p``, ``elpd_diff``, ``dse``, ``weight``, ``warning``,
    ``interpretation``, …). ``by_class``: the same ranking per flux class; ``left_out``: the rows
    outside the comparison with the reason. ``diagnostics``: the gate of every model's fit and the
    overall verdict. ``datatree``: the pointwise ELPD and Pareto k per model and observation,
    provenance in the attrs. ``fits``: each model's full DataTree (with its pointwise
    log-likelihood) while in memory; not saved.
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
        """The model with the highest ELPD."""
        return str(self.table.sort_values("rank")["model"].iloc[0])

    @property
    def by_class(self) -> pd.DataFrame:
        return self.extra_tables.get(BY_CLASS_FILE, pd.DataFrame(columns=CLASS_COLUMNS)).copy()

    @property
    def left_out(self) -> pd.DataFrame:
        return self.extra_tables.get(LEFT_OUT_FILE, pd.DataFrame(columns=["flux_class", "n_rows",
                                                                          "reason"])).copy()

    def result_text(self) -> str:
        tag = " [SYNTHETIC DATA]" if self.synthetic else ""
        fmt = {"float_format": lambda v: f"{v:.2f}", "index": False}
        schemes, residuals = self.table["scheme"].nunique(), self.table["residuals"].nunique()
        lines = [f"PSIS-LOO comparison on {self.n_obs} common observations of {len(self.table)} models "
                 f"({schemes} season scheme{'s' * (schemes != 1)} × {residuals} residual "
                 f"model{'s' * (residuals != 1)}; higher ELPD is better){tag}:",
                 self.table[[c for c in TABLE_COLUMNS if c in self.table]].to_string(**fmt)]
        lines += [f"  {r.model}: {r.interpretation}" for r in self.table.sort_values("rank").itertuples()]
        by_class = self.by_class
        if len(by_class):
            lines.append("Per flux class (on that class's common observations):")
            for cls, part in by_class.groupby("flux_class", sort=True):
                lines.append(f"  {cls} ({int(part['n_obs'].iloc[0])} observations)")
                lines += [f"    {r.model:<18} ELPD {r.elpd:10.2f}  {r.interpretation}"
                          for r in part.sort_values("rank").itertuples()]
        left = self.left_out
        if len(left):
            lines.append("Left out of the comparison:")
            lines += [f"  {r.flux_class:<22} {int(r.n_rows):>7} rows: {r.reason}" for r in left.itertuples()]
        else:
            lines.append("Left out of the comparison: nothing (every row of every class takes part)")
        if residuals > 1:
            lines.append(RESIDUAL_NOTE.format(n=self.n_obs))
        return "\n".join(lines)

    def gate_advice(self) -> str:
        return gate_advice(self.config, (self.diagnostics or {}).get("models", {}))

    def rerun(self, **changes) -> "SeasonComparison":
        """Compare again with this run's configuration (optionally changed)."""
        config = dataclasses.replace(self.config, **changes)
        if config.dataset is None and config.data is None:
            raise DataError(None, None, "data", "this comparison was made from an in-memory table, "
                            "which the run does not store", "pass the table again: "
                            "tpflux.compare_seasons(table, ...)")
        return compare_seasons(config=config)

    @classmethod
    def _load_extra(cls, folder: Path) -> tuple[dict, dict]:
        from data.storage import read_csv

        return {name: read_csv(folder / name) for name in (BY_CLASS_FILE, LEFT_OUT_FILE)
                if (folder / name).exists()}, {}


RESIDUAL_NOTE = ("AR(1) and iid residuals score the same {n} observations: an AR(1) term is the density "
                 "of an observation given the previous one of its site × class × season (the first of a "
                 "run: its marginal density), so every model's terms sum to the joint log-likelihood of "
                 "the same data; the AR(1) ELPD predicts one step ahead from the previous day's residual.")


def interpret(model: str, best: str, diff: float, dse: float) -> str:
    """One line reading a ΔELPD (model − best, ≤ 0) against its standard error."""
    if model == best or not diff:
        return "best (highest ELPD)"
    size = f"ΔELPD = {diff:.1f} ± {dse:.1f} (SE)"
    if abs(diff) < ELPD_NEGLIGIBLE:
        return f"{size}: negligible (|ΔELPD| < {ELPD_NEGLIGIBLE:g}), as good as {best}"
    ratio = abs(diff) / dse if dse > 0 else np.inf
    if ratio < ELPD_DISTINCT_SE:
        return f"{size}: {ratio:.1f} SE, not distinguishable from {best} (< {ELPD_DISTINCT_SE:g} SE)"
    return f"{size}: worse than {best} by {ratio:.1f} SE"


def compare_seasons(data: str | Path | pd.DataFrame | Observations | None = None, *,
                    dataset: str | None = "ch4-sites", schemes=DEFAULT_SCHEMES,
                    likelihood: str = "normal", residuals=DEFAULT_RESIDUALS,
                    classes: tuple[str, ...] | str | None = None, tau: str = "shared",
                    covariate: str | None = None, min_obs: int = 20, chains: int = 4,
                    draws: int = 1000, tune: int = TUNE, seed: int = DEFAULT_SEED,
                    sampler: str = "nutpie", target_accept: float = TARGET_ACCEPT,
                    t_ref_c: float = 15.0, flux_column: str = "FCH4", per_chamber: bool = True,
                    priors: Priors | None = None, config: SeasonComparisonConfig | None = None,
                    progress: bool = True,
                    command_line: list[str] | None = None) -> SeasonComparison:
    """Fit the activation-energy model once per season scheme × residual model on common
    observations and rank the models by PSIS-LOO, overall and per flux class.

    ``data``/``dataset`` and the fit options as for ``tpflux.fit_ea``; ``schemes``: two or more of
    julian, freeze-thaw, none; ``residuals``: one or more of ar1, iid (each a sequence, or
    comma-separated text). ``config`` replaces all the keyword options. Raises ``DataError`` for
    bad input before any sampling.
    """
    import arviz as az

    from inference import runio

    if config is None:
        path = str(data) if isinstance(data, (str, Path)) else None
        config = SeasonComparisonConfig(
            dataset=None if data is not None else dataset, data=path, schemes=schemes,
            residual_models=residuals, likelihood=likelihood, classes=classes, tau=tau,
            covariate=covariate, sampler=sampler,
            target_accept=target_accept, t_ref_c=t_ref_c, min_obs=min_obs, chains=chains, draws=draws,
            tune=tune, seed=seed, flux_column=flux_column, per_chamber=per_chamber,
            priors=priors or Priors())
    say = runio.progress if progress else (lambda message: None)
    _require_sampler(config.sampler)
    obs = observations_for(data if not isinstance(data, (str, Path)) else None, config)
    model_config = config.model_config()
    common = common_observations(obs, config.schemes, model_config)
    n = common.n_obs
    say(f"{n} observations common to schemes {', '.join(config.schemes)}; "
        f"{int(common.left_out['n_rows'].sum())} rows left out")
    for r in common.left_out.itertuples():
        say(f"  left out: {r.flux_class} {int(r.n_rows)} rows: {r.reason}")
    fits, loo = {}, {}
    for k, (scheme, residuals_model) in enumerate(config.models, 1):
        name, step, t0 = model_name(scheme, residuals_model), f"{k}/{len(config.models)}", time.perf_counter()
        fits[name] = fit_scheme(common, config, scheme, residuals_model, say=say, progress=progress, step=step)
        loo[name] = az.loo(aligned_log_likelihood(fits[name], common.keys), pointwise=True)
        say(f"model {step}: {name} fitted and scored in {time.perf_counter() - t0:.0f} s "
            f"(ELPD {float(loo[name].elpd):.1f} ± {float(loo[name].se):.1f})")
    table = az.compare(loo, round_to="none").reset_index(names="model")
    parts = pd.DataFrame(config.models, columns=["scheme", "residuals"],
                         index=[model_name(*m) for m in config.models])
    table.insert(1, "scheme", table["model"].map(parts["scheme"]))
    table.insert(2, "residuals", table["model"].map(parts["residuals"]))
    table.insert(3, "n_obs", n)
    best = str(table.loc[table["rank"].idxmin(), "model"])
    table["interpretation"] = [interpret(m, best, d, e) for m, d, e in
                               zip(table["model"], table["elpd_diff"], table["dse"])]
    by_class = class_comparison(loo, common.flux_classes)
    diag = combined_diagnostics({m: runio.diagnose(t, _gated()) for m, t in fits.items()})
    diag.update(n_observations=n, synthetic=bool(obs.synthetic))
    record = {**config.to_dict(), **model_config.to_dict(), "synthetic": bool(obs.synthetic),
              "dropped": obs.dropped, "skipped_sites": obs.skipped_sites}
    attrs = runio.provenance(record, runio.table_sha256(obs.table), config.seed, command_line,
                             job=SeasonComparison.JOB)
    tree = pointwise_tree(loo, parts, common, attrs)
    return SeasonComparison(datatree=tree, table=runio.as_saved(table), diagnostics=diag,
                            config=config, fits=fits,
                            extra_tables={BY_CLASS_FILE: runio.as_saved(by_class),
                                          LEFT_OUT_FILE: runio.as_saved(common.left_out)})


def _gated() -> tuple[str, ...]:
    from models.conventions import EA_GATED_VARIABLES as GATED_VARIABLES

    return GATED_VARIABLES


def _require_sampler(sampler: str) -> None:
    import importlib.util

    if sampler != "pymc" and importlib.util.find_spec(sampler) is None:
        raise DataError(None, None, "--sampler", f"sampler '{sampler}' is not installed",
                        f"pip install {sampler}, or use --sampler pymc")


@dataclasses.dataclass
class CommonObservations:
    """The rows every scheme keeps (``table``, ``keys``: site and date in one order), each
    scheme's prepared data on them, and the rows left out with the reason (``left_out``:
    flux_class, n_rows, reason)."""

    table: pd.DataFrame
    prepared: dict
    left_out: pd.DataFrame
    obs: Observations

    @property
    def keys(self) -> pd.MultiIndex:
        return _keys(next(iter(self.prepared.values())).obs)

    @property
    def n_obs(self) -> int:
        return len(self.keys)

    @property
    def flux_classes(self) -> np.ndarray:
        """The flux class of each observation, in the order of ``keys``."""
        return next(iter(self.prepared.values())).obs["flux_class"].to_numpy().astype(str)


def _keys(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(frame[["site", "date"]])


def common_observations(obs: Observations, schemes, config, max_rounds: int = 5) -> CommonObservations:
    """The rows every scheme keeps, each scheme's prepared data (``ArrheniusData``) on them, and
    what was left out and why."""
    from inference import ea_fitting

    table = obs.table
    rounds = []
    for _ in range(max_rounds):
        sub = Observations(table=table, dropped=obs.dropped, synthetic=obs.synthetic)
        prepared = {s: ea_fitting.prepare(sub, s, config) for s in schemes}
        rounds.append(prepared)
        keys = None
        for data in prepared.values():
            keys = _keys(data.obs) if keys is None else keys.intersection(_keys(data.obs))
        if all(len(d.obs) == len(keys) for d in prepared.values()):
            left = left_out_rows(obs, table, rounds)
            return CommonObservations(table=table, prepared=prepared, left_out=left, obs=sub)
        table = table.loc[_keys(table).isin(keys)].reset_index(drop=True)
    raise DataError(None, None, "--schemes", f"the schemes {', '.join(schemes)} did not agree on a "
                    f"common set of observations in {max_rounds} rounds",
                    "compare fewer schemes, or lower --min-obs")


def left_out_rows(obs: Observations, kept: pd.DataFrame, rounds: list[dict]) -> pd.DataFrame:
    """Per flux class, the rows of the data outside the common observations and why: the reader's
    exclusions, zero fluxes, classes not chosen, and classes some scheme could not fit (a season
    cell below ``min_obs``: the scheme's reason). ``rounds``: each round's prepared data per scheme."""
    rows = [{"flux_class": "(reader)", "n_rows": int(n), "reason": f"by the reader, in every model: {why}"}
            for why, n in obs.dropped.items() if n]
    table = obs.table
    out = table.loc[~_keys(table).isin(_keys(kept))]
    classes = flux_class(out).astype(object).where(lambda c: c.notna(), "(zero flux)")
    skipped = {}
    for prepared in rounds:
        for scheme, data in prepared.items():
            for cls, why in data.skipped_classes.items():
                skipped.setdefault((cls, scheme), why)
    fitted = {c for prepared in rounds for d in prepared.values() for c in d.classes}
    for cls, n in classes.value_counts().sort_index().items():
        why = [f"not fitted under {s}: {w}" for (c, s), w in skipped.items() if c == cls]
        if cls == "(zero flux)":
            reason = "zero flux (log undefined), in every model"
        elif why:
            reason = "; ".join(why) + "; lower --min-obs to include the class"
        elif cls not in fitted:
            reason = "not a default flux direction (name it with --classes to include it)"
        else:
            reason = "rows not kept by every scheme"
        rows.append({"flux_class": cls, "n_rows": int(n), "reason": reason})
    return pd.DataFrame(rows, columns=["flux_class", "n_rows", "reason"])


def fit_scheme(common: CommonObservations, config: SeasonComparisonConfig, scheme: str,
               residuals: str, *, say, progress: bool, step: str = "") -> xr.DataTree:
    """One model's fit: the fit_ea steps (prepare → sample → assemble) on the common
    observations, with the pointwise log-likelihood that PSIS-LOO needs."""
    from inference import ea_fitting

    fit_config = config.scheme_config(scheme, residuals)
    model_config = fit_config.model_config()
    data = common.prepared[scheme]
    if data.residuals != residuals:
        data = ea_fitting.prepare(common.obs, scheme, model_config)
    n_s, n_c = len(data.seasons), len(data.classes)
    name = model_name(scheme, residuals)
    say(f"model {step}: fitting {name} ({n_s} season{'s' * (n_s != 1)}, {n_c} class"
        f"{'es' * (n_c != 1)}, {len(data.obs)} observations)")
    idata = ea_fitting.sample(data, model_config, chains=config.chains, draws=config.draws,
                              tune=config.tune, seed=config.seed, sampler=config.sampler,
                              target_accept=config.target_accept,
                              progressbar=progress and sys.stderr.isatty())
    return ea_fitting.assemble(idata, data, model_config, seed=config.seed,
                               ppc_draws=fit_config.ppc_draws, log_likelihood=True)


def aligned_log_likelihood(tree: xr.DataTree, keys: pd.MultiIndex) -> xr.DataTree:
    """The posterior and the pointwise log-likelihood of a fit with its observations put in the
    order of ``keys`` (each scheme sorts its rows by its own groups): PSIS-LOO differences are
    taken observation by observation, so every model must list them alike."""
    const = tree["constant_data"]
    own = pd.MultiIndex.from_arrays([const["site"].to_numpy().astype(str),
                                     pd.to_datetime(const["date"].to_numpy())])
    order = own.get_indexer(pd.MultiIndex.from_arrays([keys.get_level_values(0).astype(str),
                                                       pd.to_datetime(keys.get_level_values(1))]))
    if len(own) != len(keys) or (order < 0).any():
        raise DataError(None, None, "obs", "a model's observations differ from the common ones",
                        "report this: every model must score the same observations")
    ll = tree["log_likelihood"]["ln_flux"].isel(obs=order).assign_coords(obs=np.arange(len(keys)))
    return xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset(),
                                  "log_likelihood": xr.Dataset({"ln_flux": ll})})


def class_comparison(loo: dict, classes: np.ndarray) -> pd.DataFrame:
    """The ranking per flux class: each model's ELPD summed over the class's observations, its
    difference to the class's best model and the SE of that difference (√n · sd of the pointwise
    differences, as ``az.compare`` takes it), with ``interpret``'s reading."""
    elpd_i = {m: np.asarray(v.elpd_i, dtype=float).ravel() for m, v in loo.items()}
    rows = []
    for cls in sorted(set(classes)):
        mask = classes == cls
        n = int(mask.sum())
        part = {m: e[mask] for m, e in elpd_i.items()}
        ranked = sorted(part, key=lambda m: -part[m].sum())
        best = ranked[0]
        for rank, m in enumerate(ranked):
            diff = part[m] - part[best]
            dse = float(np.sqrt(n) * diff.std(ddof=1)) if n > 1 else 0.0
            rows.append({"flux_class": cls, "model": m, "n_obs": n, "rank": rank,
                         "elpd": float(part[m].sum()), "se": float(np.sqrt(n) * part[m].std(ddof=1))
                         if n > 1 else 0.0, "elpd_diff": float(diff.sum()), "dse": dse,
                         "interpretation": interpret(m, best, float(diff.sum()), dse)})
    return pd.DataFrame(rows, columns=[*CLASS_COLUMNS, "se", "interpretation"])


def combined_diagnostics(verdicts: dict[str, dict]) -> dict:
    """One verdict over the models' gates: the worst R-hat and ESS, all divergences, and which
    model failed why."""
    failed = [s for s, d in verdicts.items() if d["verdict"] != "pass"]
    return {"r_hat_max": max(d["r_hat_max"] for d in verdicts.values()),
            "ess_bulk_min": min(d["ess_bulk_min"] for d in verdicts.values()),
            "ess_tail_min": min(d["ess_tail_min"] for d in verdicts.values()),
            "divergences": sum(d["divergences"] for d in verdicts.values()),
            "gate": next(iter(verdicts.values()))["gate"], "models": verdicts,
            "verdict": "fail" if failed else "pass",
            "failed": [f"model {s}: " + "; ".join(verdicts[s]["failed"]) for s in failed]}


def pointwise_elpd(loo: dict, keys: pd.MultiIndex) -> xr.Dataset:
    """Pointwise ELPD and Pareto k per model × observation, with the observations' site and date
    (``keys``); shared by the season and the covariate comparisons."""
    models = list(loo)
    ds = xr.Dataset(
        {"elpd_loo": (("model", "obs"), np.vstack([np.asarray(loo[m].elpd_i).ravel() for m in models])),
         "pareto_k": (("model", "obs"), np.vstack([np.asarray(loo[m].pareto_k).ravel() for m in models])),
         "site": ("obs", keys.get_level_values(0).to_numpy().astype(str)),
         "date": ("obs", keys.get_level_values(1).to_numpy())},
        coords={"model": models, "obs": np.arange(len(keys))})
    ds["elpd_loo"].attrs["long_name"] = "pointwise PSIS-LOO expected log predictive density"
    return ds


def pointwise_tree(loo: dict, parts: pd.DataFrame, common: CommonObservations,
                   attrs: dict) -> xr.DataTree:
    """Pointwise ELPD and Pareto k per model × observation (models labelled with their scheme and
    residuals), with the observations' site, date and flux class; provenance in the root attrs."""
    models = list(loo)
    ds = pointwise_elpd(loo, common.keys).assign(flux_class=("obs", common.flux_classes))
    ds = ds.assign_coords(scheme=("model", parts.loc[models, "scheme"].to_numpy()),
                          residuals=("model", parts.loc[models, "residuals"].to_numpy()))
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), "/pointwise": ds})


def gate_advice(config: SeasonComparisonConfig, verdicts: dict | None = None) -> str:
    """What to try when a model's gate fails, never the setting already in use."""
    tips = [f"more --tune/--draws (now {config.tune}/{config.draws})"]
    if config.target_accept < 0.99:
        tips.append("--target-accept 0.99 for divergences")
    if config.likelihood != "normal":
        tips.append("--likelihood normal (the calibrated model)")
    failed = [s for s, d in (verdicts or {}).items() if d.get("verdict") != "pass"]
    if failed:
        scheme, _, residuals = failed[0].partition("/")
        tips.append(f"inspect the failing model{'s' * (len(failed) > 1)} ({', '.join(failed)}) "
                    f"alone: python -m inference.fit_ea --seasons {scheme}"
                    + (f" --residuals {residuals}" if residuals else "") + ", then its rank plots")
    return ", ".join(tips)
