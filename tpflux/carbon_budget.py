"""Global carbon-budget consistency (Jian et al. 2022): ``budget`` → ``BudgetResult``.

    b = tpflux.budget()                                  # the jian2022 GlobalC tables
    b = tpflux.budget(variants=("weighted",), bayes=False, rf=False, n_draws=2000)
    b.summary(); b.comparison(); b.plot_consistency(); b.save("run")

Resampling of literature estimates (every variant), optionally the Bayesian pooling model and the
random-forest upscaling of soil respiration (monthly MGRsD records by default).
``python -m inference.budget`` is this function behind a parser: at the same seed both give
identical tables and draws.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pandas as pd

from data import storage
from data.errors import DataError
from data.jian2022 import RATIO_SOURCES
from models.budget import (DEFAULT_GPP_SET, DEFAULT_RATIO_SOURCE, GPP_SETS, N_DRAWS, SAMPLE_SIZE,
                           SD_FILLS, VARIANTS, BudgetConfig)
from models.conventions import DEFAULT_SEED
from tpflux.results import Config, Result
from tpflux.validate import check_choice, check_range, check_seed

DATASETS = ("jian2022",)
SAMPLERS = ("auto", "nutpie", "pymc")
RF_RECORDS = ("monthly", "annual")
TARGET_ACCEPT = 0.9
# NUTS draws per chain of the Bayesian model: the gate takes the largest R-hat over its ~80
# quantities, which at 2 × 1000 draws reaches 1.008 by Monte Carlo noise alone at some seeds
# (1.002–1.003 at 2 × 2000, for ~10 s more sampling).
BAYES_DRAWS = 2000
DRAWS_FILE = "budget_draws.nc"
COMPARISON_FILE = "budget_comparison.csv"


@dataclasses.dataclass(frozen=True)
class BudgetRunConfig(Config):
    """Everything that defines a budget run (every option of ``python -m inference.budget``);
    stored in the run's attrs so that a run folder can be rerun from them alone.

    ``data``: a folder with the GlobalC tables, else ``dataset`` from the registry. ``variants``:
    the resampling variants, the first is the headline. ``area_shares``: a CSV path
    (``IGBP_group,share``) or the shares themselves (a mapping, stored as sorted pairs).
    """

    dataset: str | None = "jian2022"
    data: str | None = None
    variants: tuple[str, ...] = tuple(VARIANTS)
    sd_fill: str = "max-cv"
    n_draws: int = N_DRAWS
    sample_size: int = SAMPLE_SIZE
    gpp_set: str = DEFAULT_GPP_SET
    ratio_source: str = DEFAULT_RATIO_SOURCE
    area_shares: str | tuple[tuple[str, float], ...] | None = None
    bayes: bool = True
    rf: bool = True
    rf_trees: int = 200
    rf_records: str = RF_RECORDS[0]
    chains: int = 2
    draws: int = BAYES_DRAWS
    tune: int = 1000
    sampler: str = "auto"
    target_accept: float = TARGET_ACCEPT
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        if isinstance(self.data, Path):
            object.__setattr__(self, "data", str(self.data))
        if self.dataset is not None:
            check_choice("dataset", self.dataset, DATASETS)
        variants = (self.variants,) if isinstance(self.variants, str) else tuple(self.variants)
        for name in variants:
            check_choice("variant", name, tuple(VARIANTS))
        if not variants:
            raise DataError(None, None, "--variant", "no variant given",
                            f"pick one or more of {', '.join(VARIANTS)}")
        object.__setattr__(self, "variants", tuple(dict.fromkeys(variants)))
        object.__setattr__(self, "area_shares", _area_shares(self.area_shares))
        check_choice("sd_fill", self.sd_fill, SD_FILLS)
        check_choice("gpp_set", self.gpp_set, GPP_SETS)
        check_choice("ratio_source", self.ratio_source, RATIO_SOURCES)
        check_choice("sampler", self.sampler, SAMPLERS)
        check_choice("rf_records", self.rf_records, RF_RECORDS)
        check_range("n_draws", self.n_draws, 10, 10**7, integer=True)
        check_range("sample_size", self.sample_size, 1, 10**6, integer=True)
        check_range("rf_trees", self.rf_trees, 1, 1000, integer=True)
        check_range("chains", self.chains, 1, 64, integer=True)
        check_range("draws", self.draws, 1, 10**6, integer=True)
        check_range("tune", self.tune, 1, 10**6, integer=True)
        check_range("target_accept", self.target_accept, 0.5, 0.999)
        check_seed(self.seed)

    @property
    def headline(self) -> str:
        return self.variants[0]

    def model_config(self) -> BudgetConfig:
        return BudgetConfig(n_draws=self.n_draws, sample_size=self.sample_size, sd_fill=self.sd_fill,
                            gpp_set=self.gpp_set, variants=self.variants)


def _area_shares(shares):
    """A CSV path as text, a mapping (or pairs) as sorted ``(group, share)`` pairs, or None."""
    if shares is None or isinstance(shares, str):
        return shares
    if isinstance(shares, Path):
        return str(shares)
    try:
        pairs = shares.items() if isinstance(shares, Mapping) else [tuple(p) for p in shares]
        return tuple(sorted((str(group), float(share)) for group, share in pairs))
    except (TypeError, ValueError):
        raise DataError(None, None, "--area-shares", f"cannot read land-area shares from {shares!r}",
                        "pass a CSV path (IGBP_group,share) or a mapping group → share") from None


@dataclasses.dataclass(repr=False)
class BudgetResult(Result):
    """A budget consistency run.

    ``summary()``: the ``budget_summary.csv`` table (quantity, variant, method, term, median,
    ci_low, ci_high, mean, sd, published…). ``comparison()``: reproduced vs published numbers.
    ``draws``: the ``budget_draws.nc`` tree (resampling draws; Bayesian, random-forest groups).
    With the Bayesian part, ``datatree`` is its posterior and ``diagnostics`` the gate verdict
    (both None without it). ``config``: a ``BudgetRunConfig``.
    """

    JOB: ClassVar[str] = "budget"
    TREE_FILE: ClassVar[str] = "budget_posterior.nc"
    SUMMARY_FILE: ClassVar[str] = "budget_summary.csv"
    CONFIG: ClassVar[type] = BudgetRunConfig

    @property
    def draws(self):
        return self.extra_trees.get(DRAWS_FILE)

    def comparison(self) -> pd.DataFrame | None:
        table = self.extra_tables.get(COMPARISON_FILE)
        return None if table is None else table.copy()

    @property
    def run_id(self) -> str | None:
        for tree in (self.datatree, self.draws):
            if tree is not None and tree.attrs.get("run_id"):
                return tree.attrs["run_id"]
        return None

    def result_text(self) -> str:
        """The headline variant's numbers to cite (GPP and RS direct and implied, agreement, RF
        total, Bayesian), then reproduced vs published numbers for every variant."""
        from inference.budget import result_text

        return result_text(self.table, self.extra_tables.get(COMPARISON_FILE, pd.DataFrame()),
                           self.config.headline)

    def gate_advice(self) -> str:
        return gate_advice(self.config, self.diagnostics)

    def refit(self, *, progress: bool = True, **changes) -> "BudgetResult":
        """Run again with this run's configuration (``changes``: options to change): at the same
        seed the tables and draws are identical."""
        return budget(config=dataclasses.replace(self.config, **changes), progress=progress)

    @classmethod
    def _load_extra(cls, folder: Path) -> tuple[dict, dict]:
        tables, trees = {}, {}
        if (folder / COMPARISON_FILE).exists():
            tables[COMPARISON_FILE] = storage.read_csv(folder / COMPARISON_FILE)
        if (folder / DRAWS_FILE).exists():
            trees[DRAWS_FILE] = storage.read_datatree(folder / DRAWS_FILE)
        return tables, trees

    # ------------------------------------------------------------ figures (not drawn or saved)
    def plot_consistency(self, variant: str | None = None):
        """Densities of direct and implied GPP and soil respiration with the agreement region
        (Fig. 1 of Jian et al. 2022) for ``variant`` (default the headline)."""
        from reports.budget_figures import consistency_figure

        return consistency_figure(self.draws, self.table, variant)

    def plot_rf_map(self):
        """The map of random-forest upscaled annual soil respiration (None without that part)."""
        from reports.budget_figures import rf_map_figure

        return rf_map_figure(self.draws)


def budget(data=None, *, dataset: str | None = "jian2022", variants=tuple(VARIANTS),
           sd_fill: str = "max-cv", n_draws: int = N_DRAWS, sample_size: int = SAMPLE_SIZE,
           gpp_set: str = DEFAULT_GPP_SET, ratio_source: str = DEFAULT_RATIO_SOURCE,
           area_shares=None,
           bayes: bool = True, rf: bool = True, rf_trees: int = 200, rf_records: str = RF_RECORDS[0],
           chains: int = 2,
           draws: int = BAYES_DRAWS, tune: int = 1000, sampler: str = "auto",
           target_accept: float = TARGET_ACCEPT, seed: int = DEFAULT_SEED,
           config: BudgetRunConfig | None = None, progress: bool = True,
           command_line: list[str] | None = None) -> BudgetResult:
    """Are global GPP and soil respiration (RS) estimates consistent with each other?

    ``data``: a folder with the GlobalC tables, or ``BudgetInputs`` already read
    (``data.jian2022.load_budget_inputs``); None uses ``dataset`` from the registry. ``bayes``
    adds the Bayesian pooling model (``chains`` × ``draws``, NUTS at ``target_accept``), ``rf`` the
    random-forest upscaling
    (``rf_trees``, ``rf_records``: "monthly" MGRsD or "annual" SRDB records; it reads the SRDB
    file, so needs a folder or the dataset).
    ``config`` replaces all the keyword options (e.g. one read from a saved run).
    Raises ``DataError`` for bad options or input before any computation, including sizes whose
    draws would not fit in this machine's memory.
    """
    from inference import budget as steps
    from inference import runio
    from models.budget import run_resampling

    if config is None:
        path = str(data) if isinstance(data, (str, Path)) else None
        config = BudgetRunConfig(
            dataset=None if data is not None else dataset, data=path, variants=variants,
            sd_fill=sd_fill, n_draws=n_draws, sample_size=sample_size, gpp_set=gpp_set,
            ratio_source=ratio_source, area_shares=area_shares, bayes=bayes, rf=rf,
            rf_trees=rf_trees, rf_records=rf_records, chains=chains, draws=draws, tune=tune,
            sampler=sampler, target_accept=target_accept, seed=seed)
    check_memory(config)
    say = runio.progress if progress else (lambda message: None)
    inputs = budget_inputs(config, None if isinstance(data, (str, Path)) else data)
    model_config = config.model_config()

    say(f"resampling {len(config.variants)} variant(s) × {config.n_draws} draws")
    resampled = run_resampling(inputs, model_config, seed=config.seed)
    parts, groups, record = [resampled.summary], {"resampling": resampled.draws}, {}
    dt, diag = None, None
    if config.bayes:
        say(f"Bayesian pooling model: {config.chains} chains × ({config.tune} tune + "
            f"{config.draws} draws)")
        t0 = time.perf_counter()
        dt, rows, record = steps.run_bayes(inputs, model_config, chains=config.chains,
                                           draws=config.draws, tune=config.tune, seed=config.seed,
                                           sampler=config.sampler,
                                           target_accept=config.target_accept)
        diag = {**runio.diagnose(dt), "sampling_seconds": time.perf_counter() - t0}
        parts.append(rows)
        groups["bayes"] = steps.bayes_draws(dt)
    rf_note = _rf_part(config, parts, groups, say) if config.rf else {}

    summary = steps.summary_table(parts)
    comparison = steps.comparison_table(summary, config.variants)
    attrs = runio.provenance({**_record(config, inputs, rf_note), **record}, inputs.sha256,
                             config.seed, command_line, job=BudgetResult.JOB)
    draws_tree = _draws_tree(groups, attrs)
    if dt is not None:
        dt.attrs.update(attrs)
    return BudgetResult(datatree=dt, table=runio.as_saved(summary), diagnostics=diag, config=config,
                        extra_tables={COMPARISON_FILE: runio.as_saved(comparison)},
                        extra_trees={DRAWS_FILE: draws_tree})


def budget_inputs(config: BudgetRunConfig, data=None):
    """The budget inputs: as given, or read from the config's folder or dataset (land-area
    shares from its IGBP.txt unless the config gives them)."""
    from data.jian2022 import BudgetInputs, load_budget_inputs, read_area_shares

    if isinstance(data, BudgetInputs):
        return data
    if data is not None:
        raise DataError(None, None, "data", f"cannot read budget inputs from a {type(data).__name__}",
                        "pass a folder of GlobalC tables or BudgetInputs")
    if config.data is None and config.dataset is None:
        raise DataError(None, None, "--data", "no budget inputs given (a run of in-memory inputs "
                        "does not store them)", "pass a folder of GlobalC tables, BudgetInputs or "
                        f"a dataset: {', '.join(DATASETS)}")
    shares = config.area_shares
    shares = read_area_shares(shares) if isinstance(shares, str) else (
        dict(shares) if shares is not None else igbp_area_shares(_folder(config)))
    return load_budget_inputs(config.data, ratio_source=config.ratio_source, area_shares=shares)


IGBP_POINTS_FILE = "IGBP.txt"


def _folder(config: BudgetRunConfig) -> Path:
    if config.data is not None:
        return Path(config.data)
    from data.registry import dataset_folder

    return dataset_folder(config.dataset)


def igbp_area_shares(folder: Path) -> dict[str, float] | None:
    """Land-area shares of the ecosystem groups from the folder's 0.5° IGBP point table, as the
    R code computes them (``models.budget.area_shares_from_points``); None when the folder has no
    such table (the reader's built-in estimate is then used)."""
    from data.jian2022 import ECOSYSTEM_GROUPS, FILES, read_igbp_mapping, read_table
    from models.budget import area_shares_from_points

    path = Path(folder) / IGBP_POINTS_FILE
    if not path.exists():
        return None
    points = read_table(path, ("Latitude", "IGBP2001Pr"), numeric=("Latitude", "IGBP2001Pr"))
    mapping = read_igbp_mapping(Path(folder) / FILES["igbp"])
    return area_shares_from_points(points, mapping, ECOSYSTEM_GROUPS)


def _rf_part(config: BudgetRunConfig, parts: list, groups: dict, say) -> dict:
    """Run the random forest; add its summary rows and draws groups; what it left out."""
    import xarray as xr

    from inference import budget as steps

    if config.data is None and config.dataset is None:
        raise DataError(None, None, "--rf", "the random forest reads the SRDB file, which in-memory "
                        "inputs do not carry", "pass the data folder, or rf=False")
    if config.data is not None:
        folder = Path(config.data)
    else:
        from data.registry import dataset_folder

        folder = dataset_folder(config.dataset)
    rf, dropped, rf_map = steps.run_rf(folder, n_trees=config.rf_trees, seed=config.seed,
                                       records=config.rf_records, say=say)
    parts.append(steps.rf_rows(rf))
    groups["rf"] = xr.Dataset({"tree_total": ("tree", rf.tree_totals, {"units": "Pg C yr-1"})})
    groups["rf_map"] = rf_map
    return {"dropped": dropped, "n_records": rf.n_records}


def _record(config: BudgetRunConfig, inputs, rf_note: dict) -> dict:
    """The run record: the typed config (which round-trips) plus what the data gave."""
    model = config.model_config()
    return {**config.to_dict(), "headline": config.headline, "min_pub_year": model.min_pub_year,
            "area_shares_used": inputs.area_shares, "rf_dropped": rf_note.get("dropped"),
            "rf_n_records": rf_note.get("n_records")}


def _draws_tree(groups: dict, attrs: dict):
    import xarray as xr

    tree = xr.DataTree.from_dict({"/": xr.Dataset(), **{f"/{k}": v for k, v in groups.items()}})
    tree.attrs.update(attrs)
    return tree


def gate_advice(config: BudgetRunConfig, diagnostics: Mapping | None = None) -> str:
    """What to try when the gate fails: options that help the failure at hand, each named with
    a value above the one in use (never the setting already in use).

    Divergent transitions: a higher ``--target-accept`` (smaller steps), or, at 0.99 already, a
    longer ``--tune``. R-hat or ESS short of the gate: more ``--draws`` (and ``--chains`` while
    fewer than 4). Without diagnostics, all of these.
    """
    failed = " ".join((diagnostics or {}).get("failed") or [])
    divergent = "divergent" in failed or not failed
    mixing = any(k in failed for k in ("R-hat", "ESS")) or not failed
    tips = []
    if divergent:
        higher = next((t for t in (0.95, 0.99) if t > config.target_accept + 1e-9), None)
        tips.append(f"--target-accept {higher}" if higher is not None
                    else f"--tune {min(2 * config.tune, 10**6)}")
    if mixing:
        tips.append(f"--draws {min(2 * config.draws, 10**6)}")
        if config.chains < 4:
            tips.append("--chains 4")
    return ", or ".join(dict.fromkeys(tips))


def check_memory(config: BudgetRunConfig, available: int | None = None) -> None:
    """Refuse, before any work, sizes whose arrays would not fit in memory (``available`` bytes,
    default what the machine has free now): a ``DataError`` naming the option and the memory
    the run would need."""
    from data.storage import format_bytes
    from models.budget import memory_bytes

    need = memory_bytes(config.n_draws, config.sample_size, len(config.variants),
                        chains=config.chains if config.bayes else 0, draws=config.draws)
    total = sum(need.values())
    available = available_memory() if available is None else available
    if available is None or total <= available:
        return
    if need["bayes"] > need["resampling"]:
        option, fix = "--draws", "use fewer --draws or --chains (or --no-bayes)"
        what = f"{config.chains} chains × {config.draws} posterior draws"
    else:
        what = (f"{config.n_draws} draws × {config.sample_size} values × {len(config.variants)} "
                "variant(s)")
        if config.sample_size > SAMPLE_SIZE:
            option, fix = "--sample-size", ("use a smaller --sample-size (the published setting is "
                                            f"{SAMPLE_SIZE})")
        else:
            option, fix = "--n-draws", (f"use fewer --n-draws (the published setting is {N_DRAWS}) "
                                        "or fewer --variant")
    raise DataError(None, None, option, f"the run would need about {format_bytes(total)} of memory "
                    f"({what}); {format_bytes(available)} is available", fix)


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``; else the physical memory; None
    when neither is known)."""
    import os

    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None

