"""Random forests per flux class: driver selection, training range, skill, importances."""

import math

import numpy as np
import pytest

from models.forest import (ForestSpec, cross_validated_skill, fit_class_forests, select_drivers,
                           skill_scores, with_flux_class)
from tests.helpers import make_sites

SMALL = ForestSpec(n_trees=20, min_samples_leaf=3, n_jobs=1, min_rows=30)


def test_select_drivers_drops_sparse_and_names_sites_lacking_a_used_driver():
    table = make_sites(n_days=100)
    table["wtd_m"] = np.where(table["site"] == "W1", -0.1, np.nan)  # on 1 of 4 sites: 25 %
    table.loc[table["site"] == "W3", "swc"] = np.nan  # 75 % coverage: used, W3 lacks it
    used, dropped, lacking = select_drivers(table, ("wtd_m", "swc", "soil_temp_c", "ustar"), 0.5)
    assert used == ("swc", "soil_temp_c")
    assert "25%" in dropped["wtd_m"] and "W1" in dropped["wtd_m"]
    assert dropped["ustar"] == "not in the table"
    assert lacking == {"swc": ["W3"]}


def test_forest_per_class_records_training_range_and_skips_small_classes():
    table = make_sites(n_days=200)
    table.loc[table.index[:5], "flux"] *= -1  # 5 wetland uptake days: too few for a forest
    forests, skipped = fit_class_forests(table, SMALL, seed=1)
    assert set(forests) == {"wetland_emission", "grassland_uptake"}
    assert skipped == {"wetland_uptake": "5 rows < 30"}
    rows = with_flux_class(table)
    wet = rows[rows["flux_class"] == "wetland_emission"]
    assert forests["wetland_emission"].temp_range == (wet["soil_temp_c"].min(), wet["soil_temp_c"].max())
    assert forests["wetland_emission"].sites == ("W1", "W2", "W3")
    # the grassland sink is predicted negative, the wetland source positive
    g = forests["grassland_uptake"]
    assert (g.tree_predictions(g.design(rows[rows["flux_class"] == "grassland_uptake"])) < 0).all()


def test_same_seed_same_forest():
    table = make_sites(n_days=120)
    a, _ = fit_class_forests(table, SMALL, seed=3)
    b, _ = fit_class_forests(table, SMALL, seed=3)
    X = a["wetland_emission"].design(table.iloc[:50])
    np.testing.assert_array_equal(a["wetland_emission"].tree_predictions(X),
                                  b["wetland_emission"].tree_predictions(X))


def test_out_of_range_flags_warmed_rows_beyond_training_temperatures():
    table = make_sites(n_days=200)
    forests, _ = fit_class_forests(table, SMALL, seed=0)
    f = forests["wetland_emission"]
    lo, hi = f.temp_range
    temp = np.array([hi - 0.8, hi - 0.4, (lo + hi) / 2, hi, lo - 0.3])
    assert f.out_of_range(temp, 0.5).tolist() == [False, True, False, True, False]
    assert f.out_of_range(temp, 0.0).tolist() == [False, False, False, False, True]


def test_skill_scores_hand_example():
    s = skill_scores(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert s["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert s["nse"] == pytest.approx(1 - 1 / 2)  # SSE 1, total sum of squares 2
    assert s["r2"] == pytest.approx(81 / 84)  # cov 3, var sums 2 and 42/9
    mean_only = skill_scores(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    assert mean_only["nse"] == pytest.approx(0.0)


def test_leave_one_site_out_skill_and_importance_find_the_real_drivers():
    table = make_sites(n_days=365)
    lines = []
    skill, importance = cross_validated_skill(table, SMALL, seed=0, n_trees=10, n_repeats=2,
                                              progress=lines.append)
    # one progress line per fold: 3 wetland sites, 12 months of the grassland site
    assert sum("wetland_emission: fold" in line for line in lines) == 3
    assert any(line.startswith("  grassland_uptake: fold 12/12") for line in lines)
    wet = skill[skill["flux_class"] == "wetland_emission"]
    assert set(wet["cv"]) == {"leave-one-site-out"}
    assert set(wet["held_out"]) == {"W1", "W2", "W3", "pooled"}
    pooled = wet.set_index("held_out").loc["pooled"]
    assert pooled["n"] == 3 * 365 and pooled["r2"] > 0.8 and pooled["nse"] > 0.8
    # one grassland site: cross-validated by month instead, and said so
    grass = skill[skill["flux_class"] == "grassland_uptake"]
    assert set(grass["cv"]) == {"leave-one-month-out"}
    assert grass["held_out"].str.match(r"^(\d{4}-\d{2}|pooled)$").all()
    imp = importance[importance["flux_class"] == "wetland_emission"].set_index("driver")
    assert imp.loc["soil_temp_c", "rmse_increase_mean"] > imp.loc["le", "rmse_increase_mean"]
    assert imp.loc["swc", "rmse_increase_mean"] > imp.loc["le", "rmse_increase_mean"]
