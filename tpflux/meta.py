"""Random-effects meta-analysis of CH4 response ratios: ``fit_rr`` → ``ResponseRatioFit``.

    rr = tpflux.fit_rr("my_warming_table.csv")              # moderator: season
    rr = tpflux.fit_rr("my_warming_table.csv", moderators="season,warming_c,ecosystem",
                       small_study_test=True, leave_one_out=True, cumulative="year")
    rr = tpflux.fit_rr(dataset="precip-manipulation", sign_change="drop")
    rr.summary(); rr.diagnostics; rr.plot_forest(); rr.save("run")

``python -m inference.fit_rr`` is this function behind a parser: at the same seed both give
identical posterior arrays and summaries.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import time
from pathlib import Path
from typing import ClassVar

import pandas as pd

from data import storage
from data.errors import DataError
from data.table import WarmingTable
from models.conventions import DEFAULT_SEED
from models.meta import (DEFAULT_MU_PRIOR_SD, DEFAULT_TAU_PRIOR, DIRECTIONS, RRSpec, TauPrior,
                         parse_moderators, parse_tau_prior, split_terms)
from tpflux.results import Config, Result
from tpflux.validate import check_choice, check_range, check_seed

WARMING_DATASETS = ("synthetic-warming", "precip-manipulation")
SIGN_CHANGES = ("error", "drop")
PARAMETERISATIONS = ("marginal", "noncentred")


@dataclasses.dataclass(frozen=True)
class ResponseRatioConfig(Config):
    """Everything that defines a response-ratio meta-analysis; stored in the run's attrs so that a
    run folder can be refitted from them alone.

    ``table``: a warming-table CSV (or one in the precipitation-manipulation layout); ``dataset``:
    a registry name (``synthetic-warming`` is simulated). Both None: an in-memory table.
    ``moderator`` None uses the source's own grouping column (``season``; ``Measurement Period``
    for the precipitation table). ``levels``: their order (a tuple, or comma-separated text).
    ``tau_prior``: ``FAMILY:SCALE`` text (a ``TauPrior`` is accepted and stored as its text).
    ``moderators``: several terms, formula-like (``season,warming_c,ecosystem``; a sequence is
    accepted and stored as text; see models/meta.py); the first categorical term groups.
    ``directions``: emission and uptake in one table — ``moderator`` (direction added as a term),
    ``refuse``, or ``pool`` (as magnitudes). ``small_study_test``, ``leave_one_out``,
    ``cumulative`` (a year column's name): the extra analyses, each an extra table of the run.
    """

    table: str | None = None
    dataset: str | None = None
    moderator: str | None = None
    moderators: str | None = None
    directions: str = DIRECTIONS[0]
    levels: tuple[str, ...] | None = None
    warming_slope: bool = False
    tau_prior: str = str(DEFAULT_TAU_PRIOR)
    tau_by_level: bool = False
    tau_prior_sensitivity: bool = False
    small_study_test: bool = False
    leave_one_out: bool = False
    cumulative: str | None = None
    mu_prior_sd: float = DEFAULT_MU_PRIOR_SD
    bias_correction: bool = False
    sign_change: str = "error"
    parameterisation: str = "marginal"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        if isinstance(self.table, Path):
            object.__setattr__(self, "table", str(self.table))
        if self.table is not None and self.dataset is not None:
            raise _two_sources()
        if self.dataset is not None:
            check_choice("dataset", self.dataset, WARMING_DATASETS)
        if self.moderator is not None and not (isinstance(self.moderator, str) and self.moderator.strip()):
            raise DataError(None, None, "--moderator", f"{self.moderator!r} is not a column name",
                            "name the grouping column of the table, e.g. season")
        object.__setattr__(self, "levels", _levels(self.levels))
        if self.moderators is not None:
            try:
                terms = parse_moderators(self.moderators)
            except ValueError as exc:
                raise DataError(None, None, "--moderators", str(exc),
                                "name columns separated by commas, e.g. season,warming_c") from None
            object.__setattr__(self, "moderators", ",".join(terms))
        check_choice("directions", self.directions, DIRECTIONS)
        if self.cumulative is not None and not (isinstance(self.cumulative, str)
                                                and self.cumulative.strip()):
            raise DataError(None, None, "--cumulative", f"{self.cumulative!r} is not a column name",
                            "name the year column, e.g. year")
        object.__setattr__(self, "tau_prior", _tau_prior_text(self.tau_prior))
        _check_positive("mu_prior_sd", self.mu_prior_sd)
        check_choice("sign_change", self.sign_change, SIGN_CHANGES)
        check_choice("parameterisation", self.parameterisation, PARAMETERISATIONS)
        check_range("chains", self.chains, 1, 64, integer=True)
        check_range("draws", self.draws, 1, 10**6, integer=True)
        check_range("tune", self.tune, 1, 10**6, integer=True)
        check_seed(self.seed)

    def spec(self, table: pd.DataFrame, default_moderator: str) -> RRSpec:
        """The model specification, with the moderators resolved against the table: the first
        categorical term of ``moderators`` groups, else ``moderator``, else the source's own."""
        moderator, rest = self.moderator or default_moderator, ()
        if self.moderators is not None:
            group, rest = split_terms(table, parse_moderators(self.moderators))
            if self.moderator is not None and group not in (None, self.moderator):
                raise DataError(None, None, "--moderators", f"the grouping term would be '{group}' "
                                f"but --moderator is '{self.moderator}'",
                                "give the grouping column first in --moderators, "
                                "without --moderator")
            moderator = group
        return RRSpec(moderator=moderator, moderators=rest, directions=self.directions,
                      warming_slope=self.warming_slope,
                      tau_prior=parse_tau_prior(self.tau_prior), mu_prior_sd=float(self.mu_prior_sd),
                      levels=self.levels, tau_by_level=self.tau_by_level,
                      parameterisation=self.parameterisation)


def _two_sources() -> DataError:
    return DataError(None, None, "--table", "both a table and a dataset were given",
                     "pass one of --table and --dataset")


def _levels(levels) -> tuple[str, ...] | None:
    """Levels as a tuple of distinct non-empty names (from a sequence or comma-separated text)."""
    if levels is None:
        return None
    items = levels.split(",") if isinstance(levels, str) else list(levels)
    names = tuple(str(x).strip() for x in items)
    if not names or any(not x for x in names):
        raise DataError(None, None, "--levels", f"{levels!r} has an empty level name",
                        "list the moderator levels separated by commas, e.g. growing,non-growing")
    repeated = sorted({x for x in names if names.count(x) > 1})
    if repeated:
        raise DataError(None, None, "--levels", f"level '{repeated[0]}' is listed more than once",
                        "list each moderator level once")
    return names


def _tau_prior_text(prior) -> str:
    if isinstance(prior, TauPrior):
        return str(prior)
    try:
        return str(parse_tau_prior(prior))
    except ValueError as exc:
        raise DataError(None, None, "--tau-prior", str(exc),
                        "write FAMILY:SCALE with a positive scale, e.g. halfcauchy:0.5") from None


def _check_positive(name: str, value) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and value > 0):
        option = "--" + name.replace("_", "-")
        raise DataError(None, None, option, f"{value!r} is not a positive number",
                        f"give {option} a number above 0")


def _extra_table(file_name: str, what: str) -> property:
    """A read-only copy of one extra table of the run (None when it was not asked for)."""
    def get(self) -> pd.DataFrame | None:
        from inference import fit_rr

        table = self.extra_tables.get(getattr(fit_rr, file_name))
        return None if table is None else table.copy()

    get.__doc__ = f"{what} (``inference.fit_rr.{file_name}``), when asked for."
    return property(get)


@dataclasses.dataclass(repr=False)
class ResponseRatioFit(Result):
    """A fitted random-effects meta-analysis of log response ratios by moderator level.

    ``datatree``: posterior (lnRR, RR, τ, I², predictions, …), prior, sample stats, observed and
    constant data (per-experiment inputs and labels). ``summary()``: the ``rr_summary.csv`` table.
    ``diagnostics``: the convergence gate's verdict. ``config``: a ``ResponseRatioConfig``.
    ``extra_tables``: the extra analyses asked for, by file name (``rr_prior_sensitivity.csv``,
    ``rr_small_study.csv``, ``rr_leave1out.csv``, ``rr_cumulative.csv``; also the properties
    ``prior_sensitivity``, ``small_study``, ``leave_one_out``, ``cumulative``).
    """

    JOB: ClassVar[str] = "fit_rr"
    TREE_FILE: ClassVar[str] = "rr_posterior.nc"
    SUMMARY_FILE: ClassVar[str] = "rr_summary.csv"
    CONFIG: ClassVar[type] = ResponseRatioConfig

    @property
    def moderator(self) -> str:
        attrs = getattr(self.datatree, "attrs", {}) or {}
        return (self.diagnostics or {}).get("moderator") or attrs.get("moderator") or "level"

    prior_sensitivity = _extra_table("SENSITIVITY_FILE", "The refits under other τ priors")
    small_study = _extra_table("SMALL_STUDY_FILE", "The Egger-type small-study test")
    leave_one_out = _extra_table("LEAVE1OUT_FILE", "Leave-one-study-out influence")
    cumulative = _extra_table("CUMULATIVE_FILE", "Cumulative estimates by year")

    def result_text(self) -> str:
        """The numbers to cite: RR per level with its interval and prediction interval, τ, I², and
        the comparisons between levels (95 % equal-tailed intervals)."""
        from inference.fit_rr import result_text

        diag = self.diagnostics or {}
        return result_text(self.table, self.moderator, self.synthetic, diag.get("dropped") or {},
                           [diag.get("direction_note")], self.extra_tables)

    def gate_advice(self) -> str:
        return gate_advice(self.config)

    def refit(self, *, progress: bool = True, **changes) -> "ResponseRatioFit":
        """Fit again with this run's configuration (``changes``: options to change): at the same
        seed the posterior arrays are identical."""
        return fit_rr(config=dataclasses.replace(self.config, **changes), progress=progress)

    @classmethod
    def _load_extra(cls, folder: Path) -> tuple[dict, dict]:
        from inference.fit_rr import EXTRA_FILES

        return {name: storage.read_csv(folder / name) for name in EXTRA_FILES
                if (folder / name).exists()}, {}

    # ------------------------------------------------------------ figures (not drawn or saved)
    def plot_forest(self):
        """The forest plot: each experiment's RR with its sampling interval, the pooled RR per
        level and the prediction interval for a new experiment."""
        from reports.forest_rr import forest_figure

        return forest_figure(self.datatree, self.table)

    def plot_funnel(self):
        """Funnel plot: each experiment's residual lnRR (observed − the moderators' fitted part)
        against its standard error, with the pseudo-confidence funnel."""
        from reports.forest_rr import funnel_figure

        return funnel_figure(self.datatree)

    def plot_rank(self, var_names=None):
        """Rank plots of the sampled parameters (uniform when chains mix)."""
        from inference.fit_rr import gated_variables
        from reports.diagnostic_figures import default_var_names, rank_plot

        names = var_names or default_var_names(self.datatree, gated_variables(self.datatree))
        return rank_plot(self.datatree, names)


def fit_rr(table: str | Path | pd.DataFrame | WarmingTable | None = None, *,
           dataset: str | None = None, moderator: str | None = None,
           moderators: str | list[str] | None = None, directions: str = DIRECTIONS[0],
           small_study_test: bool = False, leave_one_out: bool = False,
           cumulative: str | None = None, levels: tuple[str, ...] | str | None = None,
           warming_slope: bool = False,
           tau_prior: str | TauPrior = str(DEFAULT_TAU_PRIOR), tau_by_level: bool = False,
           tau_prior_sensitivity: bool = False, mu_prior_sd: float = DEFAULT_MU_PRIOR_SD,
           bias_correction: bool = False, sign_change: str = "error",
           parameterisation: str = "marginal", chains: int = 4, draws: int = 1000, tune: int = 1000,
           seed: int = DEFAULT_SEED, config: ResponseRatioConfig | None = None,
           progress: bool = True, command_line: list[str] | None = None) -> ResponseRatioFit:
    """Pool warming (or other manipulation) experiments: lnRR per moderator level with study and
    site random effects, τ, I², prediction intervals and between-level comparisons.

    ``table``: a CSV path (warming-table columns ``study, site, ecosystem, season, warming_c,
    control_mean, control_sd, control_n, treatment_mean, treatment_sd, treatment_n``, or the
    precipitation-manipulation layout), a DataFrame with the warming-table columns, or a
    ``WarmingTable``; else ``dataset`` ("synthetic-warming": SIMULATED; "precip-manipulation").
    ``moderators``: several terms, formula-like (``"season,warming_c,ecosystem"``);
    ``directions``: emission and uptake in one table — ``"moderator"`` (default: ``direction`` is
    added as a term and the result says so), ``"refuse"`` or ``"pool"`` (as magnitudes);
    ``small_study_test``, ``leave_one_out``, ``cumulative`` (a year column): extra tables.
    ``config`` replaces all the keyword options (e.g. one read from a saved run).
    Raises ``DataError`` for bad options or input before any sampling.
    """
    from inference import fit_rr as steps
    from inference import runio

    if config is None:
        path = str(table) if isinstance(table, (str, Path)) else None
        if table is not None and path is None and dataset is not None:
            raise _two_sources()
        config = ResponseRatioConfig(
            table=path, dataset=dataset, moderator=moderator, moderators=moderators,
            directions=directions, small_study_test=small_study_test, leave_one_out=leave_one_out,
            cumulative=cumulative, levels=levels,
            warming_slope=warming_slope, tau_prior=tau_prior, tau_by_level=tau_by_level,
            tau_prior_sensitivity=tau_prior_sensitivity, mu_prior_sd=mu_prior_sd,
            bias_correction=bias_correction, sign_change=sign_change,
            parameterisation=parameterisation, chains=chains, draws=draws, tune=tune, seed=seed)
    say = runio.progress if progress else (lambda message: None)
    wt = _warming_table(None if isinstance(table, (str, Path)) else table, config)
    effects, spec, d = _prepared(wt, config)
    say(f"{len(d.effects)} experiments, {len(d.studies)} studies, {len(d.sites)} sites; levels of "
        f"{spec.moderator}: {', '.join(d.levels)}" + (" (SYNTHETIC)" if wt.synthetic else ""))
    say(f"sampling: {config.chains} chains × ({config.tune} tune + {config.draws} draws), "
        f"τ ~ {spec.tau_prior}, {spec.parameterisation} study/site effects")
    t0 = time.perf_counter()
    dt = steps.sample_rr(effects, spec, chains=config.chains, draws=config.draws, tune=config.tune,
                         seed=config.seed, progressbar=progress and sys.stderr.isatty())
    wall = time.perf_counter() - t0
    dt = steps.assemble(dt, d)
    dt.attrs.update(_attrs(config, wt, effects, spec, d, wall, command_line))
    diag = runio.diagnose(dt, steps.gated_variables(dt))
    diag.update({"sampling_seconds": wall, "n_experiments": len(d.effects),
                 "direction_note": d.direction_note, "coefficients": d.design.names,
                 "n_studies": len(d.studies), "n_sites": len(d.sites), "moderator": spec.moderator,
                 "levels": d.levels, "dropped": effects.dropped, "synthetic": wt.synthetic})
    if d.direction_note:
        say(d.direction_note)
    extra = {}
    sampling = dict(chains=config.chains, draws=config.draws, tune=config.tune, seed=config.seed,
                    say=say)
    if config.tau_prior_sensitivity:
        extra[steps.SENSITIVITY_FILE] = steps.sensitivity_table(effects, spec, dt, **sampling)
    if config.small_study_test:
        extra[steps.SMALL_STUDY_FILE] = steps.small_study_table(effects, spec, **sampling)
    if config.leave_one_out:
        extra[steps.LEAVE1OUT_FILE] = steps.leave_one_out_table(effects, spec, dt, **sampling)
    if config.cumulative:
        extra[steps.CUMULATIVE_FILE] = steps.cumulative_table(effects, spec, config.cumulative,
                                                              **sampling)
    extra = {name: runio.as_saved(table) for name, table in extra.items()}
    return ResponseRatioFit(datatree=dt, table=runio.as_saved(steps.summary_table(dt, d)),
                            diagnostics=diag, config=config, extra_tables=extra)


def _warming_table(table, config: ResponseRatioConfig) -> WarmingTable:
    """The warming table: an in-memory one as given (validated), else what the config names."""
    from data.table import validate_warming
    from data.warming import load_warming

    if isinstance(table, WarmingTable):
        return table
    if isinstance(table, pd.DataFrame):
        return WarmingTable(table=validate_warming(table, source="table"), source="table")
    if table is not None:
        raise DataError(None, None, "table", f"cannot read a warming table from a "
                        f"{type(table).__name__}", "pass a CSV path or a pandas DataFrame")
    source = config.table or config.dataset
    if source is None:
        raise DataError(None, None, "--table", "no warming table given (a fit of an in-memory table "
                        "does not store it)", "pass a table (CSV path or DataFrame) or a dataset: "
                        + ", ".join(WARMING_DATASETS))
    return load_warming(source, seed=config.seed)


def _prepared(wt: WarmingTable, config: ResponseRatioConfig):
    """Effect sizes, model specification and model data; refuses a bad moderator, level order or
    warming column before any sampling."""
    from models.meta import effect_sizes, prepare

    effects = effect_sizes(wt.table, bias_correction=config.bias_correction,
                           on_sign_change=config.sign_change, source=wt.source,
                           source_columns=wt.source_columns)
    spec = config.spec(effects.table, wt.default_moderator)
    d = prepare(effects, spec)
    if config.cumulative:  # refuse a missing or bad year column before sampling
        from inference.fit_rr import study_years

        study_years(effects, config.cumulative)
    return effects, spec, d


def _attrs(config, wt, effects, spec, d, wall: float, command_line) -> dict:
    """Provenance attrs of the run: the typed config (which round-trips) plus what the data gave."""
    import json

    from inference import runio

    record = {**spec.as_dict(), **config.to_dict(), "source": wt.source, "dropped": effects.dropped,
              "synthetic": wt.synthetic, "truth": wt.truth, "warming_ref_c": d.warming_ref_c,
              "sampling_seconds": round(wall, 2)}
    attrs = runio.provenance(record, runio.table_sha256(wt.table), config.seed, command_line,
                             job=ResponseRatioFit.JOB)
    attrs.update({"moderator": spec.moderator or "-", "levels": json.dumps(d.levels),
                  "synthetic": int(wt.synthetic)})
    return attrs


def gate_advice(config: ResponseRatioConfig) -> str:
    """What to try when the gate fails, never the setting already in use."""
    tips = [f"more --tune/--draws (now {config.tune}/{config.draws})"]
    if config.parameterisation != "marginal":
        tips.append("--parameterisation marginal (the study/site effects integrated out)")
    prior = parse_tau_prior(config.tau_prior)
    tighter = TauPrior("halfnormal", prior.scale / 2 if prior.family == "halfnormal" else prior.scale)
    tips.append(f"a tighter --tau-prior {tighter} when there are few studies")
    return "; ".join(tips)
