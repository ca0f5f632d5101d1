"""Random-forest upscaling of annual soil respiration to a global total.

A random forest (scikit-learn) of SRDB-V5 annual soil respiration (g C m⁻² yr⁻¹) on the covariates
of the 0.5° grid of Jian et al. (2020) is evaluated on every land cell; the global total is
Σ prediction × cell area (Pg C yr⁻¹). Each tree is fitted to a bootstrap sample of the records, so the
spread of the per-tree global totals is the uncertainty band reported (2.5 / 50 / 97.5 %); the
point estimate is the forest (mean of trees). Skill is measured out of bag and by cross-validation
grouped by SRDB study (records of one study never in both training and test folds).

Jian et al. (2022) upscaled *monthly* soil respiration (MGRsD) with monthly temperature, precipitation
and EVI plus soil and biomass covariates (GlobalRs_Modeling.Rmd: ``randomForest``, 200 trees,
mtry = 4) and found 93 Pg C yr⁻¹. ``upscale_monthly_rs`` rebuilds that model with what the shared
data hold: MGRsD monthly records (g C m⁻² d⁻¹, sites placed by their SRDB coordinates) on the
grid's covariates plus the season (month, shifted six months south of the equator); the grid has
annual MAT, MAP and EVI only, so the month-to-month climate of a cell enters through the season
terms alone. The annual total is Σ_cells Σ_months prediction × days in month × cell area. Skill is
cross-validated leaving out spatial clusters of sites (``SITE_CLUSTER_DEG`` blocks), so a test
site never has a neighbour within its block in the training folds. ``upscale_rs`` is the annual
SRDB version.
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
    cv_rmse: float = float("nan")   # same units as the response
    cv_scheme: str = "study"        # how the CV folds were grouped
    n_sites: int = 0


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


# Sites within the same block of this many degrees (latitude × longitude) form one cluster of the
# spatial cross-validation.
SITE_CLUSTER_DEG = 5.0
DAYS_IN_MONTH = np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
SEASON_FEATURES = ("season_sin", "season_cos")


def site_clusters(latitude, longitude, size_deg: float = SITE_CLUSTER_DEG) -> np.ndarray:
    """Spatial cluster of each site: the ``size_deg`` latitude × longitude block it falls in."""
    row = np.floor((np.asarray(latitude, float) + 90.0) / size_deg).astype(int)
    col = np.floor((np.asarray(longitude, float) + 180.0) / size_deg).astype(int)
    return row * 1000 + col


def season_features(month, latitude) -> np.ndarray:
    """Month as a point on the annual cycle, six months later south of the equator (so that the
    same value means the same season in both hemispheres): columns sin, cos."""
    shifted = (np.asarray(month, float) - 1.0 + np.where(np.asarray(latitude, float) < 0, 6.0, 0.0)) % 12
    angle = 2.0 * np.pi * shifted / 12.0
    return np.column_stack([np.sin(angle), np.cos(angle)])


def upscale_monthly_rs(records: pd.DataFrame, cells: pd.DataFrame,
                       covariates: list[str] | tuple[str, ...], n_trees: int = 200, seed: int = 0,
                       n_jobs: int = 1, cv_folds: int = 5) -> UpscalingResult:
    """Monthly RS forest → annual global total (Pg C yr⁻¹) with per-tree band and spatial CV skill.

    ``records``: ``rs_daily`` (g C m⁻² d⁻¹), ``month`` (1–12), ``latitude``, ``longitude``,
    ``site``, the covariates. ``cells``: ``lat``, covariates, ``cell_area`` (m²). ``cell_rs`` of the
    result is the annual sum per cell (g C m⁻² yr⁻¹); ``cv_rmse`` is in g C m⁻² d⁻¹.
    """
    from sklearn.metrics import mean_squared_error

    covariates = list(covariates)
    features = [*covariates, *SEASON_FEATURES]
    x = np.column_stack([records[covariates].to_numpy(float),
                         season_features(records["month"], records["latitude"])])
    y = records["rs_daily"].to_numpy(float)
    forest = build_rs_forest(n_trees, seed, n_jobs).fit(x, y)
    base = cells[covariates].to_numpy(float)
    area = cells["cell_area"].to_numpy(float)
    lat = cells["lat"].to_numpy(float)
    cell_rs = np.zeros(len(cells))
    per_tree = np.zeros(n_trees)
    for month in range(1, 13):
        grid_x = np.column_stack([base, season_features(np.full(len(cells), month), lat)])
        days = DAYS_IN_MONTH[month - 1]
        cell_rs += forest.predict(grid_x) * days
        per_tree += [global_total(tree.predict(grid_x) * days, area) for tree in forest.estimators_]
    clusters = site_clusters(records["latitude"], records["longitude"])
    cv_r2 = cv_rmse = float("nan")
    if cv_folds >= 2 and np.unique(clusters).size >= cv_folds:
        small = build_rs_forest(max(10, n_trees // 4), seed, n_jobs)
        small.set_params(oob_score=False)
        pred = cross_val_predict(small, x, y, groups=clusters, cv=GroupKFold(n_splits=cv_folds))
        cv_r2 = float(r2_score(y, pred))
        cv_rmse = float(np.sqrt(mean_squared_error(y, pred)))
    lo, mid, hi = np.quantile(per_tree, CI_QUANTILES)
    return UpscalingResult(
        total=global_total(cell_rs, area), tree_totals=per_tree,
        interval=(float(lo), float(mid), float(hi)), cell_rs=cell_rs,
        oob_r2=float(forest.oob_score_), cv_r2=cv_r2, n_records=int(len(y)),
        n_studies=int(records["study"].nunique()) if "study" in records else 0,
        land_area_m2=float(area.sum()),
        importance=pd.Series(forest.feature_importances_, index=features).sort_values(ascending=False),
        cv_rmse=cv_rmse, cv_scheme=f"leave-site-cluster-out ({SITE_CLUSTER_DEG:g}° blocks)",
        n_sites=int(records["site"].nunique()),
    )


def monthly_rs_records(mgrsd: pd.DataFrame, srdb: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """MGRsD monthly records placed on the map, and the counts dropped per reason.

    ``mgrsd``: the MGRsD table (``Site_ID``, ``Study_number``, ``Meas_Month``, ``Meas_DOY``,
    ``Rs_Norm`` in g C m⁻² d⁻¹); ``srdb``: SRDB-V5 (``Site_ID``, ``Latitude``, ``Longitude``), whose
    site identifiers MGRsD shares (its coordinates: the median over a site's SRDB records).
    The month is ``Meas_Month``, else that of ``Meas_DOY``. Kept: Rs_Norm > 0, a month, coordinates.
    """
    coords = (srdb.dropna(subset=["Site_ID", "Latitude", "Longitude"])
              .groupby("Site_ID")[["Latitude", "Longitude"]].median())
    doy = pd.to_numeric(mgrsd["Meas_DOY"], errors="coerce")
    from_doy = (pd.Timestamp("2001-01-01") + pd.to_timedelta(doy.clip(1, 365) - 1, unit="D")).dt.month
    month = pd.to_numeric(mgrsd["Meas_Month"], errors="coerce").fillna(from_doy)
    rs = pd.to_numeric(mgrsd["Rs_Norm"], errors="coerce")
    site = mgrsd["Site_ID"].astype("string").str.strip()
    lat = site.map(coords["Latitude"]).astype(float)
    lon = site.map(coords["Longitude"]).astype(float)
    dropped: dict[str, int] = {}
    keep = pd.Series(True, index=mgrsd.index)
    for reason, bad in (("Rs_Norm missing or <= 0", ~(rs > 0)),
                        ("no month (Meas_Month, Meas_DOY)", ~month.between(1, 12)),
                        ("site not in SRDB-V5 (no coordinates)", lat.isna() | lon.isna())):
        bad = bad & keep
        if bad.any():
            dropped[reason] = int(bad.sum())
        keep &= ~bad
    out = pd.DataFrame({"rs_daily": rs[keep].to_numpy(float), "month": month[keep].to_numpy(int),
                        "latitude": lat[keep].to_numpy(), "longitude": lon[keep].to_numpy(),
                        "site": site[keep].to_numpy(), "study": mgrsd.loc[keep, "Study_number"].to_numpy()})
    if "line" in mgrsd:
        out["line"] = mgrsd.loc[keep, "line"].to_numpy()
    return out, dropped
