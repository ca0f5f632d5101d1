"""Timing of the budget resampling: vectorised draws vs a per-draw loop (the R code's ``sapply``).

    python -m benchmarks.budget [--n-draws 10000] [--rf-covariates]

Both give the same distribution (checked by their quantiles); only the cost differs.
``--rf-covariates``: what a monthly temperature would add to the monthly soil-respiration forest
(the study's Tmonth, which the shared grid lacks), measured on the MGRsD records that report soil
temperature: leave-site-cluster-out R² and RMSE without and with the measured Tsoil (~40 s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from data.jian2022 import load_budget_inputs
from models import budget as mb


def loop_means(rng: np.random.Generator, values: np.ndarray, sd: np.ndarray, n_draws: int,
               sample_size: int) -> np.ndarray:
    """One draw at a time, as ``sapply(rep(10, N), method3, x, s)`` does."""
    out = np.empty(n_draws)
    for k in range(n_draws):
        idx = rng.integers(0, values.size, sample_size)
        out[k] = rng.normal(values[idx], sd[idx]).mean()
    return out


def rf_covariate_gain(n_trees: int = 50, seed: int = 1) -> None:
    """Spatial CV skill of the monthly forest without and with measured soil temperature."""
    from sklearn.model_selection import GroupKFold, cross_val_predict

    from data.jian2022 import read_table
    from data.rc_grid import GRID_COVARIATES, read_rc_grid
    from data.registry import dataset_folder
    from inference.budget import MGRSD_FILE, rf_records
    from models import rs_upscaling as ru

    records, _ = rf_records(dataset_folder("jian2022"), "monthly", read_rc_grid())
    tsoil = read_table(dataset_folder("mgrsd") / MGRSD_FILE, ("Tsoil",), numeric=("Tsoil",))
    records["Tsoil"] = tsoil.set_index("line").loc[records["line"], "Tsoil"].to_numpy()
    sub = records.dropna(subset=["Tsoil"]).reset_index(drop=True)
    clusters = ru.site_clusters(sub["latitude"], sub["longitude"])
    y = sub["rs_daily"].to_numpy()
    for extra in ([], ["Tsoil"]):
        x = np.column_stack([sub[[*GRID_COVARIATES, *extra]].to_numpy(float),
                             ru.season_features(sub["month"], sub["latitude"])])
        forest = ru.build_rs_forest(n_trees, seed).set_params(oob_score=False)
        pred = cross_val_predict(forest, x, y, groups=clusters, cv=GroupKFold(5))
        r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
        print(f"grid covariates + season{' + Tsoil' if extra else '':8}: {len(y)} records, "
              f"R² {r2:.3f}, RMSE {np.sqrt(np.mean((y - pred) ** 2)):.3f} g C m-2 d-1")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.budget", description=__doc__.split("\n\n")[0])
    p.add_argument("--n-draws", type=int, default=mb.N_DRAWS)
    p.add_argument("--rf-covariates", action="store_true",
                   help="only the monthly forest's skill without / with soil temperature")
    args = p.parse_args(argv)
    if args.rf_covariates:
        rf_covariate_gain()
        return 0
    inputs = load_budget_inputs()
    rs = mb.select_rs(inputs.rs, mb.BudgetConfig())
    values = rs["value"].to_numpy()
    sd = mb.fill_sd(values, rs["sd"].to_numpy(), "max-cv")
    timings = {}
    for name, fn in (("vectorised", lambda r: mb.resample_means(r, values, sd, n_draws=args.n_draws)),
                     ("loop", lambda r: loop_means(r, values, sd, args.n_draws, mb.SAMPLE_SIZE))):
        start = time.perf_counter()
        draws = fn(np.random.default_rng(1))
        timings[name] = time.perf_counter() - start
        q = np.quantile(draws, mb.CI_QUANTILES)
        print(f"{name:>10}: {timings[name] * 1e3:8.1f} ms   RS quantiles {np.round(q, 1)}")
    print(f"speed-up {timings['loop'] / timings['vectorised']:.0f}×")
    start = time.perf_counter()
    mb.run_resampling(inputs, mb.BudgetConfig(n_draws=args.n_draws), seed=1)
    print(f"all {len(mb.VARIANTS)} variants incl. agreement, overlap, variance decomposition: "
          f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
