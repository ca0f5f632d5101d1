"""CH4 fluxes under soil warming: ``project`` → ``Projection``.

    fit = tpflux.fit_ea()
    proj = tpflux.project(fit, scenarios=(0, 1, 2))          # the real sites, both modes
    proj = tpflux.project("RUN/ea_posterior.nc", dataset="synthetic-grid", train="synthetic")
    proj.summary(); proj.plot_totals(); proj.plot_change(); proj.save("projection")

Random forests of daily CH4 per flux class (``models.forest``) evaluated at Ts + ΔT (RF-direct)
and scaled by the Arrhenius factor of activation energies drawn from a fit_ea posterior
(posterior scaling), on sites or on a gridded driver cube (``models.scenarios``).

What the summary refuses to claim (rules stated in ``models.scenarios``):

* Site totals come from the site's day-of-year climatology; a period whose julian seasons have
  less than 80 % (``MIN_SEASON_COVERAGE``) of their days of year covered (within 3 days of an
  observation) is withheld (``complete`` False, ``withheld``
  ``incomplete_record``), never a short record scaled to a year. ``n_days`` says how many
  observed days a row rests on, ``n_sites`` how many complete sites a mean averages.
* A class forest without cross-site skill (pooled leave-one-site-out NSE ≤ 0 in
  ``forest_skill.csv``) is announced first (progress line, ``result_text``, report); its
  RF-direct totals are withheld (``withheld`` ``no_skill``) unless ``allow_no_skill=True``
  (``--allow-no-skill``), which keeps them flagged ``no_skill``. Posterior-scaling rows stay,
  with ``forest_skill``.
* ``P_increase`` is, in every row, P(signed total at ΔT > control), paired draws: more net
  emission (for an uptake class: weaker uptake).
* ``sign_disagreement`` flags the warm rows where the two modes' changes differ in sign
  (``means`` or, stronger, ``intervals``).
``python -m inference.project`` is this function behind a parser: at the same seed both give
identical summaries and arrays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from data import storage
from data.errors import DataError
from data.registry import OBSERVATION_DATASETS
from data.seasons import SCHEMES
from data.table import Observations
from models import scenarios as sc
from models.conventions import CI_LABEL, DEFAULT_SEED
from models.forest import (DRIVERS, IMPORTANCE_COLUMNS, SKILL_COLUMNS, ForestSpec,
                           cross_validated_skill, fit_class_forests, with_flux_class)
from tpflux.io import load_observations, observations_for
from tpflux.results import Config, Result
from tpflux.validate import check_choice, check_range, check_seed

SYNTHETIC_GRID = "synthetic-grid"
SYNTHETIC_REGION = "synthetic_tibetan_grid"
MODE_CHOICES = {"both": sc.MODES, "rf": ("rf",), "arrhenius": ("arrhenius",)}
# Soil warming the scenarios may ask for (°C): well beyond +0…+2, short of absurd.
SCENARIO_RANGE_C = (-10.0, 10.0)
POSTERIOR_FILE = "ea_posterior.nc"
SKILL_FILE, IMPORTANCE_FILE, MAPS_FILE = "forest_skill.csv", "forest_importance.csv", "projection_maps.nc"
MAX_COUNT = 10**6


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_numbers(value, name: str) -> tuple[float, ...]:
    """Numbers from the command line's comma-separated text or from a sequence."""
    example = f"write e.g. {_option(name)} 0,0.5,1,1.5,2"
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise DataError(None, None, _option(name), f"'{value}' is not a comma-separated list of "
                            "numbers", example) from None
    values = tuple(value) if isinstance(value, (list, tuple, np.ndarray)) else (value,)
    if not values:
        raise DataError(None, None, _option(name), "no values given", example)
    return values


def _scenarios(value) -> tuple[float, ...]:
    values = parse_numbers(value, "scenarios")
    for v in values:
        check_range("scenarios", v, *SCENARIO_RANGE_C)
    return tuple(sorted({0.0, *(float(v) for v in values)}))  # the control is always included


def _pair(value, name: str) -> tuple[int, int]:
    values = parse_numbers(value, name)
    try:
        ok = len(values) == 2 and all(float(v) >= 1 and float(v).is_integer() for v in values)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise DataError(None, None, _option(name), f"'{value}' is not two whole numbers ≥ 1",
                        f"write e.g. {_option(name)} 8,8")
    return int(values[0]), int(values[1])


@dataclasses.dataclass(frozen=True)
class ProjectionConfig(Config):
    """Everything that defines a projection; stored in the run's attrs so that a run folder can be
    projected again from them alone. ``scenarios``, ``grid_shape`` and ``chunk`` also take the
    command line's comma-separated text."""

    posterior: str | None = None
    dataset: str | None = "ch4-sites"
    data: str | None = None
    drivers: str | None = None
    train: str = "ch4-sites"
    scenarios: tuple[float, ...] = sc.DEFAULT_SCENARIOS
    mode: str = "both"
    n_draws: int = 200
    n_trees: int = 200
    min_samples_leaf: int = 5
    n_jobs: int = 2
    cv_trees: int = 100
    flux_column: str = "FCH4"
    per_chamber: bool = True
    grid_shape: tuple[int, int] = (10, 16)
    chunk: tuple[int, int] = (8, 8)
    scheduler: str | None = None
    allow_no_skill: bool = False
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        fix = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        fix("scenarios", _scenarios(self.scenarios))
        fix("grid_shape", _pair(self.grid_shape, "grid_shape"))
        fix("chunk", _pair(self.chunk, "chunk"))
        for name in ("posterior", "data", "drivers"):
            if isinstance(getattr(self, name), Path):
                fix(name, str(getattr(self, name)))
        if self.data is not None and self.drivers is not None:
            raise DataError(None, None, "--drivers", "both --data and --drivers given",
                            "project either sites (--data) or a grid (--drivers)")
        if self.data is not None or self.drivers is not None:
            fix("dataset", None)  # a path replaces the registry dataset
        elif self.dataset is not None:
            check_choice("dataset", self.dataset, (*OBSERVATION_DATASETS, SYNTHETIC_GRID))
        check_choice("train", self.train, OBSERVATION_DATASETS)
        check_choice("mode", self.mode, tuple(MODE_CHOICES))
        check_choice("flux_column", self.flux_column, ("FCH4", "FCH4_F"))
        for name in ("n_draws", "n_trees", "min_samples_leaf", "n_jobs"):
            check_range(name, getattr(self, name), 1, MAX_COUNT, integer=True)
        check_range("cv_trees", self.cv_trees, 0, MAX_COUNT, integer=True)
        if not isinstance(self.allow_no_skill, bool):
            raise DataError(None, None, "--allow-no-skill", f"{self.allow_no_skill!r} is not true "
                            "or false", "pass allow_no_skill=True or False")
        check_seed(self.seed)

    @property
    def modes(self) -> tuple[str, ...]:
        return MODE_CHOICES[self.mode]

    @property
    def gridded(self) -> bool:
        return self.drivers is not None or self.dataset == SYNTHETIC_GRID

    @property
    def region(self) -> str | None:
        if not self.gridded:
            return None
        return SYNTHETIC_REGION if self.drivers is None else Path(self.drivers).stem

    def forest_spec(self) -> ForestSpec:
        return ForestSpec(n_trees=self.n_trees, min_samples_leaf=self.min_samples_leaf,
                          n_jobs=self.n_jobs)


@dataclasses.dataclass(repr=False)
class Projection(Result):
    """Projected CH4 totals by scenario × mode × flux class × period, per site or for a region.

    ``summary()``: the ``projection_summary.csv`` table. ``datatree``: the per-draw totals
    (``sites`` or ``grid`` and ``maps``), forest skill and importances, provenance in the attrs.
    ``skill``, ``importance``: the forests' leave-one-site-out tables. ``maps``: the CF maps of a
    grid run. ``config``: a ``ProjectionConfig``. No sampling, so no convergence gate.
    """

    JOB: ClassVar[str] = "project"
    TREE_FILE: ClassVar[str] = "projection.nc"
    SUMMARY_FILE: ClassVar[str] = "projection_summary.csv"
    CONFIG: ClassVar[type] = ProjectionConfig

    @property
    def skill(self) -> pd.DataFrame:
        return self.extra_tables.get(SKILL_FILE, pd.DataFrame(columns=list(SKILL_COLUMNS))).copy()

    @property
    def importance(self) -> pd.DataFrame:
        return self.extra_tables.get(IMPORTANCE_FILE,
                                     pd.DataFrame(columns=list(IMPORTANCE_COLUMNS))).copy()

    @property
    def maps(self) -> xr.Dataset | None:
        """Maps of a grid run (mean and interval per m² of cell), None for sites."""
        if MAPS_FILE in self.extra_trees:
            return self.extra_trees[MAPS_FILE].to_dataset()
        if self.datatree is not None and "maps" in self.datatree.children:
            return self.datatree["maps"].to_dataset()
        return None

    @property
    def synthetic(self) -> bool:
        if "synthetic" in self.table.columns and len(self.table):
            return bool(self.table["synthetic"].astype(bool).any())
        return (getattr(self.datatree, "attrs", {}) or {}).get("synthetic") == "true"

    def result_text(self) -> str:
        """The caveats first (no-skill classes, withheld totals, sign disagreements), then the
        annual totals per scenario and mode with their intervals."""
        return result_text(self.table)

    def rerun(self, **changes) -> "Projection":
        """Project again with this run's configuration (optionally changed): at the same seed the
        totals are identical."""
        config = dataclasses.replace(self.config, **changes)
        if config.dataset is None and config.data is None and config.drivers is None:
            raise DataError(None, None, "data", "this projection was made from an in-memory table, "
                            "which the run does not store", "pass the table again: tpflux.project(..., data=table)")
        return project(config=config)

    # ------------------------------------------------------------ figures (not drawn or saved)
    def plot_totals(self):
        """Annual totals against ΔT, one panel per flux class, a line and interval band per mode."""
        from reports.projection_figures import totals_figure

        return totals_figure(self.table)

    def plot_change(self):
        """Paired change versus control against ΔT with its interval, one panel per flux class."""
        from reports.projection_figures import change_figure

        return change_figure(self.table)

    def plot_change_by_period(self):
        """Paired change at the warmest ΔT by period with its interval, one panel per flux class."""
        from reports.projection_figures import period_change_figure

        return period_change_figure(self.table)

    def plot_maps(self):
        """Annual net flux at control and its change at the warmest scenario (grid runs)."""
        from reports.projection_figures import maps_figure

        if self.maps is None:
            raise DataError(self.path, None, None, "a site projection has no maps",
                            "project a grid (drivers=CUBE.nc or dataset='synthetic-grid')")
        return maps_figure(self.maps)

    @classmethod
    def _load_extra(cls, folder: Path) -> tuple[dict, dict]:
        tables = {name: storage.read_csv(folder / name, keep_default_na=True)
                  for name in (SKILL_FILE, IMPORTANCE_FILE) if (folder / name).exists()}
        trees = {MAPS_FILE: storage.read_datatree(folder / MAPS_FILE)} if (folder / MAPS_FILE).exists() else {}
        return tables, trees


def project(posterior=None, *, dataset: str | None = "ch4-sites",
            data: str | Path | pd.DataFrame | Observations | None = None,
            drivers: str | Path | None = None, train: str = "ch4-sites",
            scenarios=sc.DEFAULT_SCENARIOS, mode: str = "both", n_draws: int = 200,
            n_trees: int = 200, min_samples_leaf: int = 5, n_jobs: int = 2, cv_trees: int = 100,
            flux_column: str = "FCH4", per_chamber: bool = True, grid_shape=(10, 16), chunk=(8, 8),
            scheduler: str | None = None, allow_no_skill: bool = False, seed: int = DEFAULT_SEED,
            config: ProjectionConfig | None = None, progress: bool = True,
            command_line: list[str] | None = None) -> Projection:
    """Project CH4 totals under soil warming ΔT (°C; 0 = control, always included).

    ``posterior``: a fit_ea run (``ActivationEnergyFit``, its folder or its ``ea_posterior.nc``),
    needed unless ``mode="rf"``. Sites: ``dataset`` from the registry, or ``data`` (a path, a
    canonical table or ``Observations``). A grid: ``drivers`` (a daily NetCDF cube; ERA5-Land
    names understood) or ``dataset="synthetic-grid"``, with forests trained on ``train``.
    ``mode``: "rf" (forest at Ts + ΔT), "arrhenius" (forest × posterior Arrhenius factor) or
    "both". ``allow_no_skill``: keep the RF-direct totals of classes whose forest has no
    cross-site skill (flagged ``no_skill``; withheld by default). ``config`` replaces all the
    keyword options. Raises ``DataError`` for bad input before any data are read.
    """
    from inference import runio

    tree, posterior_path = _posterior_source(posterior)
    if config is None:
        path = str(data) if isinstance(data, (str, Path)) else None
        config = ProjectionConfig(
            posterior=posterior_path, dataset=None if data is not None else dataset, data=path,
            drivers=drivers, train=train, scenarios=scenarios, mode=mode, n_draws=n_draws,
            n_trees=n_trees, min_samples_leaf=min_samples_leaf, n_jobs=n_jobs, cv_trees=cv_trees,
            flux_column=flux_column, per_chamber=per_chamber, grid_shape=grid_shape, chunk=chunk,
            scheduler=scheduler, allow_no_skill=allow_no_skill, seed=seed)
    elif posterior is not None:
        config = dataclasses.replace(config, posterior=posterior_path)
    _check_sources(config, tree, data)
    say = runio.progress if progress else (lambda message: None)
    client = _connect(config.scheduler) if config.scheduler else None
    try:
        return _project(config, tree, None if isinstance(data, (str, Path)) else data, client,
                        say, command_line)
    finally:
        if client is not None:
            client.close()


def _project(config: ProjectionConfig, tree, data, client, say, command_line) -> Projection:
    """The steps: posterior E draws → sites or grid → forests and skill → projection → summary →
    DataTree and attrs."""
    from inference import runio

    e_draws, post_config = load_energies(config, tree, say)
    inputs = load_inputs(config, data, say)
    forests, no_forest = fit_forests(inputs, config, say)
    skill, importance = forest_skill(inputs, config, say)
    forests, missing_e = drop_classes_without_energy(forests, inputs, e_draws, say)
    skill_by_class = sc.pooled_skill(skill)
    report_skill(skill_by_class, forests, config, say)
    engine = sc.Engine(forests, config.scenarios, config.modes, config.n_draws, e_draws)
    if not engine.classes:
        raise DataError(config.posterior, None, "flux_class", "no flux class of the data has an E "
                        "in the posterior", "fit the posterior on data with the same flux classes")
    result, summary = run_projection(engine, inputs, config, skill_by_class, client, say)
    report_out_of_range(summary, say)
    for line in sc.caveats(summary):
        say(line)
    record = {**config.to_dict(), "modes": list(config.modes), "data_path": config.data,
              "forest": dataclasses.asdict(config.forest_spec()),
              "posterior_season_scheme": e_draws.scheme if e_draws else None,
              "posterior_config": post_config,
              "forests": {c: f.describe() for c, f in forests.items()}, "no_forest": no_forest,
              "no_posterior_E": missing_e, "zero_fluxes_dropped": inputs.n_zero,
              "dropped": inputs.obs.dropped, "skipped_sites": inputs.obs.skipped_sites,
              "synthetic": inputs.synthetic}
    attrs = run_attrs(record, inputs, engine, config, command_line)
    maps = {MAPS_FILE: xr.DataTree(maps_dataset(result, attrs))} if inputs.gridded else {}
    return Projection(datatree=build_tree(result, skill, importance, attrs, inputs.gridded),
                      table=runio.as_saved(summary), diagnostics=None, config=config,
                      extra_tables={SKILL_FILE: runio.as_saved(skill),
                                    IMPORTANCE_FILE: runio.as_saved(importance)},
                      extra_trees=maps)


def _check_sources(config: ProjectionConfig, tree, data) -> None:
    if "arrhenius" in config.modes and tree is None and config.posterior is None:
        raise DataError(None, None, "--posterior", "the arrhenius mode needs a posterior",
                        "pass --posterior RUN/ea_posterior.nc (from inference.fit_ea) or --mode rf")
    if not config.gridded and config.dataset is None and config.data is None and data is None:
        raise DataError(None, None, "--dataset", "no sites or grid to project",
                        "pass a dataset name, data=PATH or a table, or drivers=CUBE.nc")


# ---------------------------------------------------------------- posterior
def _posterior_source(posterior) -> tuple[xr.DataTree | None, str | None]:
    """(in-memory DataTree or None, path of the posterior file or None)."""
    from tpflux.activation import ActivationEnergyFit

    if posterior is None:
        return None, None
    if isinstance(posterior, ActivationEnergyFit):
        saved = posterior.path and Path(posterior.path, posterior.TREE_FILE)
        return posterior.datatree, str(saved) if saved else None
    if isinstance(posterior, xr.DataTree):
        return posterior, None
    if isinstance(posterior, (str, Path)):
        path = Path(posterior)
        return None, str(path / POSTERIOR_FILE if path.is_dir() else path)
    raise DataError(None, None, "posterior", f"cannot use a {type(posterior).__name__} as a posterior",
                    "pass tpflux.fit_ea(...)'s result, its run folder or its ea_posterior.nc")


def _open_posterior(path: Path) -> xr.DataTree:
    if not path.is_file():
        raise DataError(path, None, None, "posterior file not found",
                        "run python -m inference.fit_ea first and pass --posterior RUN/ea_posterior.nc")
    try:
        return xr.open_datatree(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise DataError(path, None, None, f"cannot be read as a posterior ({type(exc).__name__})",
                        "pass the ea_posterior.nc written by inference.fit_ea") from None


def posterior_energy(dt: xr.DataTree, source=None) -> tuple[xr.DataArray, str, dict]:
    """E (chain, draw, flux_class, season), the posterior's season scheme and its run config."""
    fix = "pass the ea_posterior.nc written by inference.fit_ea"
    if "posterior" not in dt.children or "E" not in dt["posterior"].data_vars:
        raise DataError(source, None, "E", "no posterior group with an activation energy E", fix)
    E = dt["posterior"]["E"].load()
    if set(E.dims) != {"chain", "draw", "flux_class", "season"}:
        raise DataError(source, None, "E", f"E has dimensions ({', '.join(map(str, E.dims))}), "
                        f"expected (chain, draw, flux_class, season)", fix)
    raw = dt.attrs.get("tpflux_config")
    try:
        config = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    except json.JSONDecodeError:
        raise DataError(source, None, "tpflux_config", "run configuration is not valid JSON", fix) from None
    scheme = config.get("season_scheme")
    if scheme is None:
        from data.seasons import season_labels

        seasons = {str(s) for s in E["season"].values}
        scheme = next((s for s in SCHEMES if seasons <= set(season_labels(s))), None)
    if scheme not in SCHEMES:
        raise DataError(source, None, "season_scheme", f"unknown season scheme {scheme!r}",
                        f"the posterior must come from fit_ea with --seasons {'|'.join(SCHEMES)}")
    return E, scheme, config


def load_energies(config: ProjectionConfig, tree, say) -> tuple[sc.EDraws | None, dict]:
    """``n_draws`` joint draws of E from the posterior (None in the rf mode) and its run config."""
    if "arrhenius" not in config.modes:
        return None, {}
    if tree is None:
        say(f"reading posterior {config.posterior}")
        with _open_posterior(Path(config.posterior)) as dt:
            E, scheme, post_config = posterior_energy(dt, config.posterior)
    else:
        E, scheme, post_config = posterior_energy(tree, config.posterior)
    e_draws = sc.draw_activation_energies(E, config.n_draws, config.seed, scheme)
    say(f"E: {E.sizes['chain'] * E.sizes['draw']} posterior draws, classes "
        f"{', '.join(e_draws.classes)}, {scheme} seasons; using {config.n_draws}")
    if post_config.get("covariate"):
        # the warming scenarios change soil temperature only: the covariate stays where it was
        say(f"the posterior's E is at each class's mean {post_config['covariate']}; its moderation "
            f"of E (beta_E) is not applied, as the scenarios do not change {post_config['covariate']}")
    return e_draws, post_config


# ---------------------------------------------------------------- sites or grid
@dataclasses.dataclass
class Inputs:
    """What a projection runs on: training observations (and their rows with a flux class) and,
    for a grid, the driver cube."""

    obs: Observations
    table: pd.DataFrame
    cube: xr.Dataset | None
    source: str | None

    @property
    def gridded(self) -> bool:
        return self.cube is not None

    @property
    def drivers(self) -> tuple[str, ...]:
        return DRIVERS if self.cube is None else tuple(d for d in DRIVERS if d in self.cube.data_vars)

    @property
    def n_zero(self) -> int:
        return len(self.obs.table) - len(self.table)

    @property
    def synthetic(self) -> bool:
        return bool(self.obs.synthetic) or (self.cube is not None
                                            and self.cube.attrs.get("synthetic") == "true")


def load_inputs(config: ProjectionConfig, data, say) -> Inputs:
    cube = load_grid(config, say) if config.gridded else None
    options = dict(flux_column=config.flux_column, per_chamber=config.per_chamber, seed=config.seed)
    if cube is not None:
        source = config.train
        say(f"loading training sites: {source}")
        obs = load_observations(dataset=config.train, **options)
    else:
        source = config.data or config.dataset
        say(f"loading training sites: {source or 'the table given'}")
        obs = observations_for(data, config)
    return Inputs(obs, with_flux_class(obs.table), cube, source)


def load_grid(config: ProjectionConfig, say) -> xr.Dataset:
    from data import grid

    if config.drivers is not None:
        say(f"reading driver cube {config.drivers}")
        cube = grid.read_driver_grid(config.drivers)
        grid.require_land_cover(cube, config.drivers)
        return cube
    from data.synthetic_grid import simulate_tibetan_grid

    say(f"simulating a SYNTHETIC Tibetan driver grid ({config.grid_shape[0]}×{config.grid_shape[1]} cells)")
    return simulate_tibetan_grid(*config.grid_shape, seed=config.seed)


# ---------------------------------------------------------------- forests
def fit_forests(inputs: Inputs, config: ProjectionConfig, say) -> tuple[dict, dict]:
    """One forest per flux class with enough rows: ({class: ClassForest}, {class: why not})."""
    spec = config.forest_spec()
    say(f"fitting forests ({config.n_trees} trees) on {len(inputs.table)} site-days, "
        f"drivers {', '.join(inputs.drivers)}")
    forests, no_forest = fit_class_forests(inputs.table, spec, inputs.drivers, seed=config.seed)
    if not forests:
        raise DataError(inputs.source, None, "flux", f"no flux class has {spec.min_rows} rows for a forest",
                        "give more site-days of data")
    for f in forests.values():
        say(f"  {f.flux_class}: {f.n_rows} rows, {len(f.sites)} sites, drivers "
            f"{', '.join(f.drivers)}; dropped {', '.join(f.dropped) or 'none'}; "
            f"Ts {f.temp_range[0]:.1f}…{f.temp_range[1]:.1f} °C")
    for cls, why in no_forest.items():
        say(f"  {cls}: no forest ({why})")
    return forests, no_forest


def forest_skill(inputs: Inputs, config: ProjectionConfig, say) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave-one-site-out skill and importances (empty tables when ``cv_trees`` is 0)."""
    if config.cv_trees == 0:
        return pd.DataFrame(columns=list(SKILL_COLUMNS)), pd.DataFrame(columns=list(IMPORTANCE_COLUMNS))
    say(f"leave-one-site-out skill ({config.cv_trees} trees per fold)")
    skill, importance = cross_validated_skill(inputs.table, config.forest_spec(), inputs.drivers,
                                              seed=config.seed, n_trees=config.cv_trees,
                                              progress=say)
    for r in skill[skill["held_out"] == "pooled"].itertuples():
        say(f"  {r.flux_class:<20} {r.cv}: R² {r.r2:.2f}, RMSE {r.rmse:.2f} "
            f"nmol m-2 s-1, NSE {r.nse:.2f} (n = {r.n})")
    return skill, importance


def report_skill(skill: dict[str, float], forests: dict, config: ProjectionConfig, say) -> None:
    """Say up front which projected classes have no cross-site skill and what that withholds."""
    if not skill:
        say("forest skill not computed (--cv-trees 0): RF-direct totals are not checked for skill")
        return
    bad = {c: v for c, v in sc.no_skill_classes(skill).items() if c in forests}
    if not bad:
        return
    what = []
    if "rf" in config.modes:
        what.append("their RF-direct totals are " + ("kept (--allow-no-skill), flagged no_skill"
                                                     if config.allow_no_skill else
                                                     "withheld (--allow-no-skill keeps them)"))
    if "arrhenius" in config.modes:
        what.append("posterior-scaling totals (on these forests' baselines) are kept with forest_skill")
    say(f"NO CROSS-SITE SKILL (leave-one-site-out NSE ≤ {sc.NO_SKILL_NSE:g}): "
        + ", ".join(f"{c} {v:.2f}" for c, v in bad.items()) + "; " + "; ".join(what))


def drop_classes_without_energy(forests: dict, inputs: Inputs, e_draws: sc.EDraws | None,
                                say) -> tuple[dict, dict]:
    """Forests of the classes the posterior has an E for in every season they need."""
    if e_draws is None:
        return forests, {}
    missing = sc.missing_activation_energies(e_draws, seasons_needed(inputs.table, forests, e_draws,
                                                                     inputs.gridded))
    for cls, why in missing.items():
        say(f"  {cls}: left out of the projection ({why})")
    return {c: f for c, f in forests.items() if c not in missing}, missing


def seasons_needed(table: pd.DataFrame, forests: dict, e_draws: sc.EDraws,
                   gridded: bool) -> dict[str, set[str]]:
    """Seasons (posterior scheme) each class must have an E for: those its site-days fall in, or
    every season of the scheme on a grid."""
    from data.seasons import assign_seasons, season_labels

    if gridded:
        return {c: set(season_labels(e_draws.scheme)) for c in forests}
    season = np.asarray(assign_seasons(table, e_draws.scheme), dtype=object)
    cls = table["flux_class"].to_numpy()
    return {c: set(season[cls == c]) for c in forests}


# ---------------------------------------------------------------- projecting
def run_projection(engine: sc.Engine, inputs: Inputs, config: ProjectionConfig,
                   skill: dict[str, float], client, say) -> tuple[xr.Dataset, pd.DataFrame]:
    """Per-draw totals and their summary table (with the honesty columns and ``synthetic``)."""
    if inputs.gridded:
        result = project_grid(engine, inputs, config, client, say)
        summary = grid_summary(result, config.region)
    else:
        say(f"projecting {inputs.table['site'].nunique()} sites × {len(engine.scenarios)} "
            f"scenarios × {len(engine.modes)} modes × {engine.n_draws} draws")
        result = sc.project_sites(engine, inputs.table)
        summary = site_summary(result)
    summary = honest(summary, skill, engine.classes, config.allow_no_skill)
    summary.insert(len(summary.columns), "synthetic", inputs.synthetic)
    return result, summary


def project_grid(engine: sc.Engine, inputs: Inputs, config: ProjectionConfig, client, say) -> xr.Dataset:
    cube = inputs.cube
    ecosystems = tuple(e for e in cube_ecosystems(cube) if e in engine.ecosystems)
    if not ecosystems:
        raise DataError(cube.attrs.get("source_file"), None, "wetland_fraction",
                        "no ecosystem fraction of the cube matches a trained flux class",
                        f"add fractions for {', '.join(engine.ecosystems)}")
    setup = sc.GridSetup(engine, sc.class_shares(inputs.table, engine.classes), ecosystems,
                         inputs.drivers)
    n_cells = cube.sizes["lat"] * cube.sizes["lon"]
    chunk = config.chunk
    say(f"projecting {n_cells} cells × {cube.sizes['time']} days × {len(engine.scenarios)} scenarios "
        f"× {len(engine.modes)} modes × {engine.n_draws} draws in {chunk[0]}×{chunk[1]}-cell blocks"
        + (f" on {config.scheduler}" if client else ""))
    result = sc.project_grid(setup, cube, chunk, compute=computer(client))
    report_missing_cells(result, say)
    coverage, complete = sc.grid_coverage(cube["time"].values, cube["lat"].values)
    result["coverage"] = ("period", coverage, {"long_name": "lowest share of days of year the "
                                                            "cube covers among the seasons needed"})
    # a period is given where the cube's time axis covers it and some cell's own record does
    result["complete"] = ("period", complete & (result["cells_in_total"].values > 0))
    report_withheld_cells(result, say)
    return result


def withheld_cells_text(result: xr.Dataset, period: str = "annual") -> str:
    """How many cells a period's regional totals rest on and how many were withheld."""
    row = result.sel(period=period)
    n_in, n_out = int(row["cells_in_total"]), int(row["cells_withheld"])
    share = float(row["area_share_withheld"])
    return (f"{period} regional totals over {n_in} of {n_in + n_out} cells "
            f"({100 * (1 - share):.1f} % of the area); {n_out} cells withheld: incomplete record "
            f"(their valid days cover under {100 * sc.MIN_SEASON_COVERAGE:.0f} % of a season's "
            "days of year)")


def report_withheld_cells(result: xr.Dataset, say) -> None:
    for period in result["period"].values:
        if int(result["cells_withheld"].sel(period=period)):
            say("  " + withheld_cells_text(result, str(period)))


def report_missing_cells(result: xr.Dataset, say) -> None:
    """Say how many land cell-days had no soil temperature (skipped) and which land cells have
    none at all (left out of the totals)."""
    missing, empty = int(result["cell_days_missing"]), int(result["cells_without_valid_day"])
    if missing:
        say(f"  {missing} land cell-days without soil temperature skipped; cell totals are over "
            "each cell's valid days")
    if empty:
        valid = result["valid_days"]
        where = np.argwhere(valid.values == 0)
        shown = ", ".join(f"({float(valid['lat'][i]):g}, {float(valid['lon'][j]):g})"
                          for i, j in where[:5]) + (", …" if len(where) > 5 else "")
        land = int((valid.values >= 0).sum())
        say(f"  {empty} of {land} land cells have no soil temperature on any day and are left out "
            f"of the regional totals (lat, lon): {shown}")


def cube_ecosystems(cube: xr.Dataset) -> tuple[str, ...]:
    return tuple(str(n).removesuffix("_fraction") for n in cube.data_vars
                 if str(n).endswith("_fraction"))


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise DataError(None, None, "--scheduler", "dask.distributed is not installed",
                        "pip install 'tpflux[distributed]' (or drop --scheduler to run locally)") from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise DataError(None, None, "--scheduler", f"cannot reach scheduler {address} "
                        f"({type(exc).__name__})", "check the address (tcp://HOST:8786) and that "
                        "the scheduler is running") from None


def computer(client):
    """A compute function with a progress bar on a terminal, local or on a distributed client."""
    import dask

    def compute(*collections):
        if client is None:
            from dask.diagnostics import ProgressBar
            with ProgressBar(out=sys.stderr) if sys.stderr.isatty() else contextlib.nullcontext():
                return dask.compute(*collections)
        from distributed import progress
        futures = client.compute(list(collections))
        if sys.stderr.isatty():
            progress(futures)
        return tuple(client.gather(futures))

    return compute


# ---------------------------------------------------------------- summaries
KEYS = ["scenario_c", "mode", "flux_class", "period"]


def _all_rows(result: xr.Dataset, where: str, places) -> pd.DataFrame:
    """Every (scenario, mode, label, period, place) key, withheld ones included."""
    index = pd.MultiIndex.from_product([result["scenario_c"].values, result["mode"].values,
                                        result["flux_class"].values, result["period"].values,
                                        places], names=KEYS + [where])
    return index.to_frame(index=False)


def site_summary(result: xr.Dataset) -> pd.DataFrame:
    """Per-site rows (periods without days at a site left out; incomplete records kept as
    withheld rows) + the mean over each ecosystem's complete sites (``site`` =
    ``all_sites_mean``)."""
    per_site = _all_rows(result, "site", result["site"].values).merge(
        sc.summarise(result["total"], sc.SITE_UNIT, "site"), on=KEYS + ["site"], how="left")
    n_days = result["n_days"].to_dataframe().reset_index()
    per_site = per_site.merge(n_days, on=["flux_class", "period", "site"], how="left")
    per_site = per_site[per_site["n_days"] > 0]  # also drops nets of another ecosystem
    record = result[["coverage", "complete"]].to_dataframe().reset_index()
    per_site = per_site.merge(record, on=["period", "site"], how="left").assign(n_sites=1)
    oor = result["out_of_range"].to_dataframe().reset_index().assign(mode="rf")
    per_site = per_site.merge(oor.rename(columns={"out_of_range": "out_of_range_days"}),
                              on=["scenario_c", "mode", "flux_class", "period", "site"], how="left")
    means = sc.site_means(result).expand_dims(site=["all_sites_mean"]).transpose(
        "scenario_c", "mode", "flux_class", "period", "site", "draw")
    mean_rows = _all_rows(result, "site", ["all_sites_mean"]).merge(
        sc.summarise(means, sc.SITE_UNIT, "site"), on=KEYS + ["site"], how="left")
    # a mean rests on the days of the complete sites it averages
    totals_days = ((result["n_days"] * result["complete"]).sum("site").to_series()
                   .rename("n_days").reset_index())
    all_days = result["n_days"].sum("site").to_series().rename("days_any").reset_index()
    n_sites = sc.complete_sites(result).to_series().rename("n_sites").reset_index()
    mean_rows = (mean_rows.merge(totals_days, on=["flux_class", "period"], how="left")
                 .merge(all_days, on=["flux_class", "period"], how="left")
                 .merge(n_sites, on=["flux_class", "period"], how="left"))
    oor_sum = (result["out_of_range"].sum("site").to_dataframe().reset_index()
               .rename(columns={"out_of_range": "out_of_range_days"}).assign(mode="rf"))
    mean_rows = mean_rows.merge(oor_sum, on=["scenario_c", "mode", "flux_class", "period"], how="left")
    mean_rows = mean_rows[mean_rows["days_any"] > 0].drop(columns="days_any")
    mean_rows = mean_rows.assign(complete=mean_rows["n_sites"] > 0, coverage=np.nan)
    return _ordered(pd.concat([per_site, mean_rows], ignore_index=True), "site")


def grid_summary(result: xr.Dataset, region: str) -> pd.DataFrame:
    draws = result["region_total"].expand_dims(region=[region]).transpose(
        "scenario_c", "mode", "flux_class", "period", "region", "draw")
    # every key, so a period without any complete cell stays as a withheld row
    rows = _all_rows(result, "region", [region]).merge(
        sc.summarise(draws, sc.REGION_UNIT, "region"), on=KEYS + ["region"], how="left")
    rows["unit"] = sc.REGION_UNIT
    oor = (result["out_of_range"].to_dataframe().reset_index()
           .rename(columns={"out_of_range": "out_of_range_days"}).assign(mode="rf"))
    rows = rows.merge(oor, on=["scenario_c", "mode", "flux_class", "period"], how="left")
    rows = rows.merge(result["n_days"].to_dataframe().reset_index(), on=["flux_class", "period"],
                      how="left")
    record = result[["coverage", "complete"]].to_dataframe().reset_index()
    rows = rows.merge(record, on="period", how="left").assign(n_sites=np.nan)
    return _ordered(rows, "region")


def honest(summary: pd.DataFrame, skill: dict[str, float], classes, allow_no_skill: bool
           ) -> pd.DataFrame:
    """The summary with ``sign_disagreement`` (from the unwithheld numbers), ``forest_skill``,
    ``no_skill`` and ``withheld`` (rules in ``models.scenarios``), in the saved column order."""
    where = _where(summary)
    out = sc.withhold(sc.flag_sign_disagreement(summary, where), skill, classes, allow_no_skill)
    return out[SUMMARY_COLUMNS[:4] + [where] + SUMMARY_COLUMNS[4:]]


# The columns of projection_summary.csv, ``site`` or ``region`` after ``period``; ``honest``
# adds the HONESTY ones to what ``site_summary`` / ``grid_summary`` give.
HONESTY_COLUMNS = ("withheld", "forest_skill", "no_skill", "sign_disagreement")
SUMMARY_COLUMNS = [*KEYS, *sc.SUMMARY_STATS, "unit", "n_days", "n_sites", "coverage", "complete",
                   *HONESTY_COLUMNS, "out_of_range_days"]


def _ordered(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    cols = [c for c in SUMMARY_COLUMNS[:4] + [where] + SUMMARY_COLUMNS[4:]
            if c not in HONESTY_COLUMNS]
    frame = frame[cols].copy()
    frame["out_of_range_days"] = frame["out_of_range_days"].astype("Int64")
    frame["n_days"] = frame["n_days"].round().astype("Int64")
    frame["n_sites"] = frame["n_sites"].astype("Int64")
    frame["complete"] = frame["complete"].astype(bool)
    return frame.sort_values(["flux_class", where, "period", "mode", "scenario_c"],
                             kind="stable").reset_index(drop=True)


def _where(summary: pd.DataFrame) -> str:
    return "region" if "region" in summary.columns else "site"


def report_out_of_range(summary: pd.DataFrame, say) -> None:
    where = _where(summary)
    top = summary[(summary["mode"] == "rf") & (summary["period"] == "annual")
                  & ~summary["flux_class"].str.endswith("_net")]
    if where == "site":
        top = top[top["site"] == "all_sites_mean"]
    for r in top[top["scenario_c"] == top["scenario_c"].max()].itertuples():
        say(f"  RF-direct at +{r.scenario_c:g} °C: {r.out_of_range_days} of {r.n_days} "
            f"{'site' if where == 'site' else 'cell'}-days of {r.flux_class} outside the "
            "forest's training temperatures (held at the edge value)")


def result_text(summary: pd.DataFrame) -> str:
    """The caveats (``models.scenarios.caveats``), then the annual totals of the region (grid) or
    the mean over complete sites, per class, mode and scenario; withheld rows say why."""
    where = _where(summary)
    region = str(summary["region"].iloc[0]) if where == "region" and len(summary) else None
    rows = summary[(summary["period"] == "annual")
                   & (summary[where] == (region or "all_sites_mean"))]
    unit = rows["unit"].iloc[0] if len(rows) else ""
    lines = sc.caveats(summary)
    lines.append(f"Annual totals ({unit}; {CI_LABEL}), "
                 f"{'region ' + region if region else 'mean over complete sites'}; P(increase): "
                 "P(signed total above control), i.e. more net emission:")
    for r in rows.itertuples():
        head = f"  {r.flux_class:<20} {r.mode:<9} +{r.scenario_c:<4g}"
        if r.withheld != "no":
            lines.append(f"{head} withheld ({r.withheld})")
            continue
        skill = "  no forest skill" if r.no_skill else ""
        if r.scenario_c == 0.0:
            lines.append(f"{head} {r.total:10.4g} [{r.ci_low:.4g}, {r.ci_high:.4g}]  control{skill}")
            continue
        p = "" if pd.isna(r.P_increase) else f"  P(increase) {r.P_increase:.2f}"
        flag = ("" if pd.isna(r.sign_disagreement) or r.sign_disagreement == "none"
                else f"  sign disagreement ({r.sign_disagreement})")
        lines.append(f"{head} {r.total:10.4g} [{r.ci_low:.4g}, {r.ci_high:.4g}]  change "
                     f"{r.change_vs_control:+.3g} [{r.change_ci_low:+.3g}, {r.change_ci_high:+.3g}] "
                     f"({r.change_pct:+.1f} %){p}{flag}{skill}")
    return "\n".join(lines)


# ---------------------------------------------------------------- saved outputs
def run_attrs(record: dict, inputs: Inputs, engine: sc.Engine, config: ProjectionConfig,
              command_line) -> dict:
    """Provenance (config, data hash, seed, command line) and what the columns mean."""
    from inference import runio

    attrs = runio.provenance(record, runio.table_sha256(inputs.obs.table), config.seed, command_line,
                             job=Projection.JOB)
    attrs.update(synthetic=str(inputs.synthetic).lower(), interval=CI_LABEL,
                 site_unit=sc.SITE_UNIT, region_unit=sc.REGION_UNIT)
    attrs["notes"] = (
        "total: mean over draws (draw d = tree d mod n_trees paired with posterior draw d); "
        "ci_low/ci_high: equal-tailed interval over draws; change_vs_control: paired mean "
        "difference in the row's unit, change_ci_low/change_ci_high its interval; change_pct: "
        "mean change as % of the control's magnitude (signed like the change); P_increase: in "
        "every row the probability that the signed total "
        "(emission positive, uptake negative) exceeds the control's, i.e. more net emission (for "
        "an uptake class: weaker uptake). Site totals: the site's day-of-year climatology, a "
        "period withheld (complete false, withheld incomplete_record) when a season it needs has "
        f"under {100 * sc.MIN_SEASON_COVERAGE:.0f} % of its days of year covered (within "
        f"{sc.COVERAGE_REACH_DAYS} days of an observation); n_days: observed "
        "days a row rests on; n_sites: complete sites a mean averages. forest_skill: pooled "
        "leave-one-site-out NSE of the class forest (nets: the lowest of their classes); no_skill: "
        "forest_skill <= 0, whose RF-direct rows are withheld (withheld no_skill) unless "
        "--allow-no-skill; sign_disagreement: means|intervals where the modes' changes differ in "
        "sign. *_net sums the projected classes of an ecosystem: "
        + ", ".join(engine.classes) + ". Periods and posterior seasons come from the control "
        "temperatures. out_of_range_days: days whose Ts + dT left the forest's training range "
        "(RF-direct holds the edge value there).")
    if inputs.synthetic:
        attrs["title"] = "SYNTHETIC projection (simulated inputs, not observations)"
    return attrs


def _frame_dataset(frame: pd.DataFrame) -> xr.Dataset:
    ds = xr.Dataset.from_dataframe(frame.reset_index(drop=True).rename_axis("row"))
    for name in ds.data_vars:
        if ds[name].dtype == object:
            ds[name] = ds[name].astype(str)
    return ds


def build_tree(result: xr.Dataset, skill: pd.DataFrame, importance: pd.DataFrame, attrs: dict,
               gridded: bool) -> xr.DataTree:
    groups = {"/skill": _frame_dataset(skill), "/importance": _frame_dataset(importance)}
    if gridded:
        groups["/grid"] = result[["region_total", "out_of_range", "n_days", "cell_days_missing",
                                  "cells_without_valid_day", "coverage", "complete",
                                  "cells_in_total", "cells_withheld", "area_share_withheld"]]
        groups["/maps"] = maps_dataset(result, {})
    else:
        groups["/sites"] = result
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), **groups})


def maps_dataset(result: xr.Dataset, attrs: dict) -> xr.Dataset:
    """CF maps: mean and interval per scenario, mode, flux class and period (g CH4 m⁻² yr⁻¹)."""
    names = ["flux_mean", "flux_ci_low", "flux_ci_high", "cell_area", "valid_days", "cell_coverage",
             *[n for n in result.data_vars if str(n).endswith("_fraction")]]
    ds = result[names].copy()
    for n in ("flux_mean", "flux_ci_low", "flux_ci_high"):
        ds[n].attrs.update(long_name=f"CH4 flux per m2 of grid cell, {n.removeprefix('flux_')} "
                                     "over draws", units=sc.MAP_UNIT)
    ds["scenario_c"].attrs.update(long_name="soil warming", units="degC")
    ds.attrs = {**attrs, "Conventions": "CF-1.8"}
    return ds
