"""Random-forest upscaling of annual soil respiration to a global total.

A random forest (scikit-learn) of SRDB-V5 annual soil respiration (g C m⁻² yr⁻¹) on the covariates
of the 0.5° grid of Jian et al. (2020) is evaluated on every land cell; the global total is
Σ prediction × cell area (Pg C yr⁻¹). Each tree is fitted to a bootstrap sample of the records, so the
spread of the per-tree global totals is the uncertainty band reported (2.5 / 50 / 97.5 %); the
point estimate is the forest (mean of trees). Skill is measured out of bag and by cross-validation
grouped by SRDB study (records of one study never in both training and test folds).

Jian et al. (2022) upscaled *monthly* soil respiration (MGRsD) with monthly temperature, precipitation
and EVI plus soil and biomass covariates (GlobalRs_Modeling.Rmd: ``randomForest``, 200 trees,
mtry = 4) and found 93 Pg C yr⁻¹; this module upscales *annual* SRDB records with the annual covariates
of the grid.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, cross_val_predict

from data.constants import G_PER_PG
from models.conventions import CI_QUANTILES


def build_rs_forest(n_trees: int = 200, seed: int = 0, n_jobs: int = 1, min_samples_leaf: int = 5,
                    max_features: float | int = 0.33) -> RandomForestRegressor:
    """The forest (regression of annual RS on the covariates); mtry ≈ p/3 as randomForest's default."""
    return RandomForestRegressor(n_estimators=n_trees, min_samples_leaf=min_samples_leaf,
                                 max_features=max_features, bootstrap=True, oob_score=True,
                                 random_state=seed, n_jobs=n_jobs)


@dataclasses.dataclass
class UpscalingResult:
    total: float                  # forest global total, Pg C yr⁻¹
    tree_totals: np.ndarray       # per-tree global totals, Pg C yr⁻¹
    interval: tuple[float, float, float]
    cell_rs: np.ndarray           # forest prediction per land cell, g C m⁻² yr⁻¹
    oob_r2: float
    cv_r2: float
    n_records: int
    n_studies: int
    land_area_m2: float
    importance: pd.Series


def global_total(rs_per_m2: np.ndarray, area_m2: np.ndarray) -> float:
    """Σ rate (g C m⁻² yr⁻¹) × area (m²) in Pg C yr⁻¹."""
    return float(np.sum(np.asarray(rs_per_m2) * np.asarray(area_m2)) / G_PER_PG)


def upscale_rs(sites: pd.DataFrame, cells: pd.DataFrame, covariates: list[str] | tuple[str, ...],
               n_trees: int = 200, seed: int = 0, n_jobs: int = 1, cv_folds: int = 5
               ) -> UpscalingResult:
    """Fit on ``sites`` (``rs_annual``, covariates, ``study``), predict ``cells`` (covariates,
    ``cell_area``) → global total with per-tree band, OOB and study-grouped CV skill."""
    covariates = list(covariates)
    x, y = sites[covariates].to_numpy(float), sites["rs_annual"].to_numpy(float)
    forest = build_rs_forest(n_trees, seed, n_jobs).fit(x, y)
    grid_x = cells[covariates].to_numpy(float)
    area = cells["cell_area"].to_numpy(float)
    per_tree = np.array([global_total(tree.predict(grid_x), area) for tree in forest.estimators_])
    cell_rs = forest.predict(grid_x)
    cv_r2 = float("nan")
    groups = sites["study"].to_numpy()
    if cv_folds >= 2 and np.unique(groups).size >= cv_folds:
        small = build_rs_forest(max(10, n_trees // 4), seed, n_jobs)
        small.set_params(oob_score=False)
        pred = cross_val_predict(small, x, y, groups=groups, cv=GroupKFold(n_splits=cv_folds))
        cv_r2 = float(r2_score(y, pred))
    lo, mid, hi = np.quantile(per_tree, CI_QUANTILES)
    return UpscalingResult(
        total=global_total(cell_rs, area), tree_totals=per_tree,
        interval=(float(lo), float(mid), float(hi)), cell_rs=cell_rs,
        oob_r2=float(forest.oob_score_), cv_r2=cv_r2, n_records=int(len(y)),
        n_studies=int(np.unique(groups).size), land_area_m2=float(area.sum()),
        importance=pd.Series(forest.feature_importances_, index=covariates).sort_values(ascending=False),
    )
