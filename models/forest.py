"""Random forests of daily CH4 flux per flux class, with leave-one-site-out skill and importances.

One ``RandomForestRegressor`` per flux class (``wetland_emission``, ``grassland_uptake``, …) of the
signed daily flux (nmol CH4 m⁻² s⁻¹) on the daily drivers of ``DRIVERS``: NEE, water-table depth,
soil water, soil temperature, friction velocity and latent heat. Soil temperature is always used.

Which drivers a class uses follows what its sites have: a driver is used when it is present on at
least ``min_coverage`` of the class's rows; otherwise it is dropped and the reason is recorded.
A used driver may still be missing at some sites or on some days: the forest routes missing values
down the branch learnt for them (scikit-learn's native missing-value support), and the sites that
lack it are listed. Rows are weighted by their period length (``days``).

Pure: table in, fitted estimators and tables out; no I/O, no printing.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.model_selection import LeaveOneGroupOut

from data.table import flux_class

DRIVERS = ("nee", "wtd_m", "swc", "soil_temp_c", "ustar", "le")
TEMPERATURE = "soil_temp_c"
SKILL_COLUMNS = ("flux_class", "cv", "held_out", "n", "r2", "rmse", "nse")
IMPORTANCE_COLUMNS = ("flux_class", "driver", "rmse_increase_mean", "rmse_increase_sd", "n_folds")


@dataclasses.dataclass(frozen=True)
class ForestSpec:
    """Forest settings; kept small by default (shared 2-core machines)."""

    n_trees: int = 200
    min_samples_leaf: int = 5
    max_features: float = 1.0
    n_jobs: int = 2
    min_coverage: float = 0.5  # share of a class's rows on which a driver must be present
    min_rows: int = 50  # classes with fewer rows get no forest

    def estimator(self, seed: int, n_trees: int | None = None) -> RandomForestRegressor:
        return RandomForestRegressor(n_estimators=n_trees or self.n_trees,
                                     min_samples_leaf=self.min_samples_leaf,
                                     max_features=self.max_features, n_jobs=self.n_jobs,
                                     random_state=seed)


@dataclasses.dataclass
class ClassForest:
    """A fitted forest of one flux class and what it was trained on."""

    flux_class: str
    ecosystem: str
    drivers: tuple[str, ...]
    dropped: dict[str, str]  # driver → why it was not used
    lacking: dict[str, list[str]]  # used driver → sites where it is entirely missing
    forest: RandomForestRegressor
    temp_range: tuple[float, float]  # training soil-temperature range, °C
    n_rows: int
    sites: tuple[str, ...]

    @property
    def n_trees(self) -> int:
        return len(self.forest.estimators_)

    def design(self, frame: pd.DataFrame, delta_c: float = 0.0) -> np.ndarray:
        """The driver matrix for ``frame`` (missing drivers as NaN), soil temperature + ``delta_c``."""
        return design_matrix(frame, self.drivers, delta_c)

    def tree_predictions(self, X: np.ndarray, trees: np.ndarray | None = None) -> np.ndarray:
        """Per-tree predictions, shape (len(trees), rows); all trees when ``trees`` is None."""
        estimators = self.forest.estimators_
        idx = np.arange(len(estimators)) if trees is None else np.asarray(trees)
        # Trees split on float32; validate once here instead of once per tree.
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty((idx.size, X.shape[0]))
        for k, t in enumerate(idx):
            out[k] = estimators[t].predict(X32, check_input=False)
        return out

    def out_of_range(self, temp_c: np.ndarray, delta_c: float) -> np.ndarray:
        """Rows whose warmed soil temperature lies outside the training range (the forest cannot
        extrapolate there: it returns the value at the edge)."""
        warmed = np.asarray(temp_c, dtype=float) + delta_c
        lo, hi = self.temp_range
        return (warmed < lo) | (warmed > hi)

    def describe(self) -> dict:
        return {"flux_class": self.flux_class, "drivers": list(self.drivers),
                "dropped": dict(self.dropped), "lacking": {k: list(v) for k, v in self.lacking.items()},
                "temp_range_c": list(self.temp_range), "n_rows": self.n_rows,
                "sites": list(self.sites), "n_trees": self.n_trees}


def design_matrix(frame: pd.DataFrame, drivers: tuple[str, ...], delta_c: float = 0.0) -> np.ndarray:
    """Columns ``drivers`` of ``frame`` as floats (absent ones all NaN); soil temperature + ``delta_c``."""
    cols = []
    for name in drivers:
        values = (frame[name].to_numpy(dtype=float) if name in frame.columns
                  else np.full(len(frame), np.nan))
        cols.append(values + delta_c if name == TEMPERATURE else values)
    return np.column_stack(cols) if cols else np.empty((len(frame), 0))


def with_flux_class(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a ``flux_class`` column; zero fluxes (no class) are removed."""
    out = table.assign(flux_class=flux_class(table))
    return out[out["flux_class"].notna()].reset_index(drop=True)


def select_drivers(rows: pd.DataFrame, candidates: tuple[str, ...] = DRIVERS,
                   min_coverage: float = 0.5) -> tuple[tuple[str, ...], dict[str, str],
                                                       dict[str, list[str]]]:
    """(used drivers, dropped driver → reason, used driver → sites lacking it entirely)."""
    used, dropped, lacking = [], {}, {}
    for name in candidates:
        if name not in rows.columns:
            dropped[name] = "not in the table"
            continue
        present = rows[name].notna()
        coverage = float(present.mean()) if len(rows) else 0.0
        if name == TEMPERATURE:
            used.append(name)
            continue
        if coverage < min_coverage:
            dropped[name] = (f"present on {coverage:.0%} of rows (< {min_coverage:.0%}); "
                             f"sites with it: {', '.join(sorted(rows.loc[present, 'site'].unique())) or 'none'}")
            continue
        used.append(name)
        have = rows.loc[present, "site"].unique()
        missing_sites = sorted(set(rows["site"].unique()) - set(have))
        if missing_sites:
            lacking[name] = missing_sites
    return tuple(used), dropped, lacking


def fit_class_forests(table: pd.DataFrame, spec: ForestSpec = ForestSpec(),
                      drivers: tuple[str, ...] = DRIVERS, seed: int = 0
                      ) -> tuple[dict[str, ClassForest], dict[str, str]]:
    """One forest per flux class. Returns ({class: ClassForest}, {class: why it got no forest})."""
    rows = with_flux_class(table)
    forests, skipped = {}, {}
    for k, (cls, sub) in enumerate(sorted(rows.groupby("flux_class"), key=lambda kv: kv[0])):
        if len(sub) < spec.min_rows:
            skipped[cls] = f"{len(sub)} rows < {spec.min_rows}"
            continue
        used, dropped, lacking = select_drivers(sub, drivers, spec.min_coverage)
        model = ClassForest(cls, str(sub["ecosystem"].iloc[0]), used, dropped, lacking,
                            spec.estimator(seed + 1000 * k), _range(sub), len(sub),
                            tuple(sorted(sub["site"].unique())))
        model.forest.fit(model.design(sub), sub["flux"].to_numpy(dtype=float),
                         sample_weight=_weights(sub))
        forests[cls] = model
    return forests, skipped


def _weights(rows: pd.DataFrame) -> np.ndarray:
    return rows["days"].to_numpy(dtype=float) if "days" in rows.columns else np.ones(len(rows))


def _range(rows: pd.DataFrame) -> tuple[float, float]:
    t = rows[TEMPERATURE].to_numpy(dtype=float)
    return float(np.nanmin(t)), float(np.nanmax(t))


# ---------------------------------------------------------------- skill
def skill_scores(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R² (squared Pearson correlation), RMSE and Nash–Sutcliffe efficiency."""
    o = np.asarray(observed, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if o.size < 2:
        return {"r2": math.nan, "rmse": math.nan, "nse": math.nan}
    rmse = float(np.sqrt(np.mean((o - p) ** 2)))
    ss_tot = float(np.sum((o - o.mean()) ** 2))
    nse = 1.0 - float(np.sum((o - p) ** 2)) / ss_tot if ss_tot > 0 else math.nan
    r2 = float(np.corrcoef(o, p)[0, 1] ** 2) if o.std() > 0 and p.std() > 0 else math.nan
    return {"r2": r2, "rmse": rmse, "nse": nse}


def cross_validated_skill(table: pd.DataFrame, spec: ForestSpec = ForestSpec(),
                          drivers: tuple[str, ...] = DRIVERS, seed: int = 0,
                          n_trees: int | None = None, n_repeats: int = 5,
                          classes: list[str] | None = None, progress=None
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave-one-site-out skill and held-out permutation importances, per flux class.

    A class with one site is cross-validated leave-one-month-out instead (column ``cv`` says
    which). Skill rows: one per held-out group and one ``pooled`` row over all held-out
    predictions (columns ``flux_class, cv, held_out, n, r2, rmse, nse``). Importances: the rise in
    held-out RMSE (nmol m⁻² s⁻¹) when a driver is permuted, mean and sd over folds.
    ``progress``: called with a line after each fold (the folds take seconds each).
    """
    rows = with_flux_class(table)
    skill, importance = [], []
    for k, (cls, sub) in enumerate(sorted(rows.groupby("flux_class"), key=lambda kv: kv[0])):
        if (classes is not None and cls not in classes) or len(sub) < spec.min_rows:
            continue
        sub = sub.reset_index(drop=True)
        used, *_ = select_drivers(sub, drivers, spec.min_coverage)
        X = design_matrix(sub, used)
        y = sub["flux"].to_numpy(dtype=float)
        w = _weights(sub)
        if sub["site"].nunique() >= 2:
            cv, groups = "leave-one-site-out", sub["site"].astype(str).to_numpy()
        else:
            cv, groups = "leave-one-month-out", sub["date"].dt.strftime("%Y-%m").to_numpy()
        if len(np.unique(groups)) < 2:
            continue
        predicted = np.full(len(sub), np.nan)
        per_fold = []
        n_folds = len(np.unique(groups))
        for fold, (train, test) in enumerate(LeaveOneGroupOut().split(X, y, groups)):
            est = spec.estimator(seed + 1000 * k + fold, n_trees)
            est.fit(X[train], y[train], sample_weight=w[train])
            predicted[test] = est.predict(X[test])
            skill.append({"flux_class": cls, "cv": cv, "held_out": str(groups[test[0]]),
                          "n": int(test.size), **skill_scores(y[test], predicted[test])})
            if test.size >= 10:
                result = permutation_importance(est, X[test], y[test], n_repeats=n_repeats,
                                                scoring="neg_root_mean_squared_error",
                                                random_state=seed + fold)
                per_fold.append(result.importances_mean)
            if progress is not None:
                progress(f"  {cls}: fold {fold + 1}/{n_folds} (held out {groups[test[0]]})")
        skill.append({"flux_class": cls, "cv": cv, "held_out": "pooled", "n": int(len(sub)),
                      **skill_scores(y, predicted)})
        if per_fold:
            stack = np.vstack(per_fold)
            for j, name in enumerate(used):
                importance.append({"flux_class": cls, "driver": name,
                                   "rmse_increase_mean": float(stack[:, j].mean()),
                                   "rmse_increase_sd": float(stack[:, j].std(ddof=1))
                                   if len(stack) > 1 else math.nan,
                                   "n_folds": int(len(stack))})
    return (pd.DataFrame(skill, columns=list(SKILL_COLUMNS)),
            pd.DataFrame(importance, columns=list(IMPORTANCE_COLUMNS)))
