"""Speed of the activation-energy fit: the shipped model vs a naive per-observation PyMC model.

    python -m benchmarks.fit_ea [--dataset ch4-sites] [--chains 4 --draws 1000 --tune 1000]

Runs both in one process on the same data and prints wall time (compilation included), minimum
bulk ESS over the hyperparameters, min-ESS per second, and their ratio. The naive model is the
textbook form (per-observation Gaussian likelihood, non-centred site effects, diagonal mass
matrix) on PyMC's own NUTS. The shipped model is timed with nutpie (the default) and with PyMC's
own NUTS. Wall time includes compilation; run it twice to see a warm cache.
"""

from __future__ import annotations

import argparse
import os
import time

import arviz as az
import pymc as pm

from data.registry import OBSERVATION_DATASETS, load_observations
from inference import ea_fitting
from models.arrhenius import ArrheniusConfig, build_naive_model
from models.summary import mean_tree_depth

HYPER = ["E", "lnR", "tau_E", "tau_R", "sigma"]


def _min_ess(dt) -> float:
    post = dt["posterior"].to_dataset()[HYPER]
    return float(az.ess(post, method="bulk").to_array().min())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fit_ea", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ch4-sites", choices=OBSERVATION_DATASETS)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--naive-sampler", default="pymc", choices=("pymc", "nutpie"),
                   help="sampler for the naive model (pymc: the textbook baseline)")
    args = p.parse_args(argv)

    obs = load_observations(args.dataset, seed=args.seed)
    config = ArrheniusConfig()
    data = ea_fitting.prepare(obs, "julian", config)
    print(f"{args.dataset}: {len(data.obs)} observations, {len(data.groups)} groups, "
          f"{os.cpu_count()} cores, {args.chains} chains × ({args.tune} + {args.draws})")
    rows = []
    for sampler in ("nutpie", "pymc"):
        t0 = time.perf_counter()
        dt = ea_fitting.sample(data, config, chains=args.chains, draws=args.draws, tune=args.tune,
                               seed=args.seed, sampler=sampler)
        rows.append((f"marginal, {sampler}", time.perf_counter() - t0, _min_ess(dt),
                     mean_tree_depth(dt)))
    if not args.skip_naive:
        t0 = time.perf_counter()
        with build_naive_model(data, config):
            nd = pm.sample(draws=args.draws, tune=args.tune, chains=args.chains,
                           cores=min(args.chains, os.cpu_count() or 1), random_seed=args.seed,
                           nuts_sampler=args.naive_sampler, progressbar=False,
                           compute_convergence_checks=False)
        rows.append((f"naive, {args.naive_sampler}", time.perf_counter() - t0, _min_ess(nd),
                     mean_tree_depth(nd)))
    print(f"{'model':<24}{'wall s':>9}{'min ESS':>10}{'ESS/s':>9}{'tree depth':>12}")
    for name, wall, ess, depth in rows:
        print(f"{name:<24}{wall:>9.1f}{ess:>10.0f}{ess / wall:>9.1f}{depth:>12.2f}")
    if not args.skip_naive:
        _, w2, e2, _ = rows[-1]
        for name, w1, e1, _ in rows[:-1]:
            print(f"{name} vs naive: min-ESS/s ratio {(e1 / w1) / (e2 / w2):.1f}×, wall ratio {w2 / w1:.1f}×")


if __name__ == "__main__":
    main()
