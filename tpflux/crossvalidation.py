"""Held-out check of an activation-energy fit: leave-one-site-out refits → ``CrossValidation``.

    cv = tpflux.crossvalidate_ea("results/fit_ea-…")    # or a loaded ActivationEnergyFit
    cv.coverage_95; cv.summary(); cv.plot_pit(); cv.save("cv")

Each fold refits the run's own configuration (data, seasons, classes, likelihood, residuals,
priors, sampler settings) without one site, and predicts the mean ln|F| of each of that site's
site × class × season groups as for a new site: site effects drawn from N(0, τ²), residuals from σ
and ρ on the group's own days and temperatures. A calibrated fit puts 95 % of the held-out group
means inside their 95 % predictive intervals, and its probability integral transforms (PIT, the
predictive probability below the observed mean) are uniform.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from data.errors import DataError
from models.conventions import CI_PROB, CI_QUANTILES
from tpflux.activation import ActivationEnergyConfig, ActivationEnergyFit
from tpflux.io import observations_for
from tpflux.results import Config, Result

# Predictive draws per held-out group (thinned evenly from the fold's posterior).
PREDICTIVE_DRAWS = 2000
TABLE_FILE = "crossvalidation.csv"
PIT_FIGURE = "crossvalidation_pit.png"


@dataclasses.dataclass(frozen=True)
class CrossValidationConfig(Config):
    """The run cross-validated and the fold sampler settings (None: the run's own)."""

    run: str | None = None
    chains: int | None = None
    draws: int | None = None
    tune: int | None = None

    def fold_config(self, fit_config: ActivationEnergyConfig) -> ActivationEnergyConfig:
        changes = {k: getattr(self, k) for k in ("chains", "draws", "tune") if getattr(self, k)}
        return dataclasses.replace(fit_config, **changes)


@dataclasses.dataclass(repr=False)
class CrossValidation(Result):
    """Leave-one-site-out predictive check. ``summary()``: one row per held-out site × class ×
    season group (observed mean ln|F|, predictive median and 95 % interval, inside, PIT) and a
    last row (site ``ALL``) whose ``coverage_95`` is the share of groups inside their interval."""

    JOB: ClassVar[str] = "crossvalidate_ea"
    TREE_FILE: ClassVar[str | None] = None
    SUMMARY_FILE: ClassVar[str] = TABLE_FILE
    CONFIG: ClassVar[type] = CrossValidationConfig

    @property
    def groups(self) -> pd.DataFrame:
        return self.table[self.table["site"] != "ALL"]

    @property
    def coverage_95(self) -> float:
        return float(self.table["coverage_95"].dropna().iloc[-1])

    def result_text(self) -> str:
        g = self.groups
        scored = g["inside_95"].notna()
        lines = [f"Leave-one-site-out check: {int(scored.sum())} held-out site × class × season "
                 f"groups at {g['site'].nunique()} sites",
                 f"  coverage of the {CI_PROB:.0%} new-site predictive intervals: "
                 f"{self.coverage_95:.3f} (calibrated: {CI_PROB:.2f}; ±{_coverage_band(scored.sum()):.3f} "
                 "from chance alone)"]
        for cls, part in g[scored].groupby("flux_class"):
            lines.append(f"  {cls:<22} {part['inside_95'].mean():.3f} of {len(part)}")
        for r in g[~scored].itertuples():
            lines.append(f"  not scored: {r.site} {r.flux_class} {r.season}: {r.note}")
        return "\n".join(lines)

    def plot_pit(self):
        """Histogram of the PIT values (uniform when the predictive intervals are calibrated)."""
        from reports.crossvalidation_figures import pit_histogram

        return pit_histogram(self.groups["pit"].dropna().to_numpy())

    def _write_extra(self, folder: Path) -> None:
        from data.storage import save_figure

        save_figure(self.plot_pit(), folder / PIT_FIGURE)

    @property
    def files(self) -> list[str]:
        return [*super().files, PIT_FIGURE]


def _coverage_band(n: int) -> float:
    """Half-width of the 95 % binomial band of a calibrated coverage over ``n`` groups."""
    return 1.96 * np.sqrt(CI_PROB * (1 - CI_PROB) / max(n, 1))


def crossvalidate_ea(run: str | Path | ActivationEnergyFit, *, data=None, chains: int | None = None,
                     draws: int | None = None, tune: int | None = None, progress: bool = True,
                     command_line: list[str] | None = None) -> CrossValidation:
    """Leave-one-site-out refits of an activation-energy run (a run folder or a fit in memory).

    ``data``: the observations, needed only when the run was fitted from an in-memory table;
    ``chains``/``draws``/``tune`` override the run's sampler settings for the folds.
    """
    from inference import ea_fitting, runio
    from models.arrhenius import centred_on
    from models.arrhenius_post import draw_class_means, new_site_group_means

    fit = run if isinstance(run, ActivationEnergyFit) else _load_fit(run)
    config = CrossValidationConfig(run=None if isinstance(run, ActivationEnergyFit) else str(run),
                                   chains=chains, draws=draws, tune=tune)
    fold_config = config.fold_config(fit.config)
    if fold_config.dataset is None and fold_config.data is None and data is None:
        raise DataError(None, None, "data", "the run was fitted from an in-memory table, which it "
                        "does not store", "pass the table again: crossvalidate_ea(run, data=table)")
    say = runio.progress if progress else (lambda message: None)
    obs = observations_for(data, fold_config)
    model_config = fold_config.model_config()
    full = ea_fitting.prepare(obs, fold_config.seasons, model_config)
    sites = sorted(full.groups["site"].unique())
    rows, verdicts = [], {}
    for k, site in enumerate(sites, 1):
        t0 = time.perf_counter()
        held = full.obs[full.obs["site"] == site]
        fold_obs = dataclasses.replace(obs, table=obs.table[obs.table["site"] != site])
        try:
            fold = ea_fitting.prepare(fold_obs, fold_config.seasons, model_config)
        except DataError as exc:
            rows += [_unscored(full, g, f"fold not fitted: {exc.problem}") for g in _groups(held)]
            say(f"fold {k}/{len(sites)}: {site} not refitted ({exc.problem})")
            continue
        idata = ea_fitting.sample(fold, model_config, chains=fold_config.chains,
                                  draws=fold_config.draws, tune=fold_config.tune,
                                  seed=fold_config.seed + k, sampler=fold_config.sampler,
                                  target_accept=fold_config.target_accept)
        verdicts[site] = runio.diagnose(idata, list(ea_fitting.HYPER_VARIABLES))
        post = _thinned(idata["posterior"].to_dataset(), PREDICTIVE_DRAWS)
        rng = np.random.default_rng([fold_config.seed, k])
        if "E" not in post:  # the class means were integrated out: drawn exactly
            post = post.merge(draw_class_means(post, fold, model_config.priors, rng))
        for g in _groups(held):
            rows_g = held[held["group"] == g]
            cls, season = rows_g["flux_class"].iloc[0], rows_g["season"].iloc[0]
            if cls not in fold.classes or season not in fold.seasons:
                rows.append(_unscored(full, g, "class or season not fitted without this site"))
                continue
            pred = new_site_group_means(post, fold.classes, fold.seasons, fold.methods,
                                        centred_on(rows_g, fold), rng)
            rows.append(_scored(full, g, rows_g, pred))
        say(f"fold {k}/{len(sites)}: {site} held out ({len(held)} obs), "
            f"{time.perf_counter() - t0:.0f} s, gate {verdicts[site]['verdict']}")
    table = pd.DataFrame(rows)
    scored = table["inside_95"].notna()
    coverage = float(table.loc[scored, "inside_95"].mean()) if scored.any() else np.nan
    table = pd.concat([table, pd.DataFrame([{"site": "ALL", "n_obs": int(table["n_obs"].sum()),
                                             "coverage_95": coverage}])], ignore_index=True)
    failed = [s for s, v in verdicts.items() if v["verdict"] != "pass"]
    worst = {"r_hat_max": max, "ess_bulk_min": min, "ess_tail_min": min}
    diag = {key: pick(v[key] for v in verdicts.values()) for key, pick in worst.items()} \
        if verdicts else {key: float("nan") for key in worst}
    diag["divergences"] = int(sum(v["divergences"] for v in verdicts.values()))
    diag |= {"verdict": "fail" if failed else "pass",
            "failed": [f"fold without {s}: " + "; ".join(verdicts[s]["failed"]) for s in failed],
            "folds": verdicts, "coverage_95": coverage, "n_groups": int(scored.sum()),
            "synthetic": bool(obs.synthetic)}
    return CrossValidation(datatree=None, table=runio.as_saved(table), diagnostics=diag,
                           config=config)


def _load_fit(path) -> ActivationEnergyFit:
    from tpflux.io import load

    fit = load(path)
    if not isinstance(fit, ActivationEnergyFit):
        raise DataError(Path(path), None, None, f"the folder holds a {type(fit).__name__} run, not an "
                        "activation-energy fit", "pass a folder written by python -m inference.fit_ea")
    return fit


def _groups(held: pd.DataFrame) -> list[int]:
    return sorted(held["group"].unique())


def _thinned(post, n: int):
    """About ``n`` draws in all, evenly spaced within each chain."""
    step = int(np.ceil(post.sizes["chain"] * post.sizes["draw"] / n))
    return post.isel(draw=slice(None, None, max(1, step)))


def _group_key(full, g) -> dict:
    row = full.groups.iloc[g]
    return {"site": row["site"], "flux_class": row["flux_class"], "season": row["season"],
            "n_obs": int(row["n"])}


def _unscored(full, g, note: str) -> dict:
    return {**_group_key(full, g), "note": note}


def _scored(full, g, rows_g: pd.DataFrame, pred: np.ndarray) -> dict:
    observed = float(rows_g["y"].mean())
    lo, med, hi = np.quantile(pred, CI_QUANTILES)
    return {**_group_key(full, g), "observed_mean_ln_flux": observed, "predicted_median": med,
            "predicted_low": lo, "predicted_high": hi, "inside_95": float(lo <= observed <= hi),
            "pit": float(np.mean(pred < observed)), "note": ""}

