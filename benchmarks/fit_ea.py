"""Speed of the activation-energy fit: against a naive per-observation model, across data sizes,
and against lme4.

    python -m benchmarks.fit_ea [--dataset ch4-sites] [--chains 4 --draws 1000 --tune 500]
    python -m benchmarks.fit_ea --scale [--sizes 25,250,2500] [--years Y]
    python -m benchmarks.fit_ea --vs-lme4 [--repeats 3]

Default mode: the shipped model and a naive per-observation PyMC model in one process on the same
data; prints wall time (compilation included), minimum bulk ESS over the hyperparameters,
min-ESS per second, and their ratio. The naive model is the textbook form (per-observation
Gaussian likelihood, non-centred site effects, diagonal mass matrix) on PyMC's own NUTS. The
shipped model is timed with nutpie (the default) and with PyMC's own NUTS. Wall time includes
compilation; run it twice to see a warm cache.

``--scale``: the simulator with 25, 250 and 2,500 sites (``n_obs_target=None``: observations grow
with the sites; residual autocorrelation ``--ar1``, default 0.5, near the default data's), each run through the steps of ``inference.ea_fitting`` (prepare → sample →
assemble → summary) with nutpie; prints the wall time of each step, observations, groups, min bulk
ESS over the hyperparameters and ESS per second of sampling, then the exponent k of
cost ∝ groups^k fitted over all sizes and between the two largest (the fixed costs, compilation
above all, weigh least there). The likelihood is marginal — sufficient statistics per
site × class × season group, the site effects integrated out — so k ≈ 1 is expected.

``--vs-lme4``: the end-to-end command line (``python -m inference.fit_ea`` on the default data, a
fresh process each time) against ``lme4::lmer(y ~ x + (1 + x | site))`` fitted per flux class ×
season on the same prepared table (benchmarks/lme4_reference.R, R start-up, reading and fitting
included), alternating ``--repeats`` times, after one untimed run that fills the caches (the
compiled model and the parsed table, as any second run of a user finds them); prints each median
and their ratio, and the two sets of
estimates of E side by side. Needs ``Rscript`` with lme4 (Debian: r-cran-lme4); without them the R
side is skipped.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm

from data.registry import OBSERVATION_DATASETS, load_observations
from inference import ea_fitting
from models.arrhenius import ArrheniusConfig, build_naive_model
from models.arrhenius_config import RESIDUALS
from models.summary import mean_tree_depth

ROOT = Path(__file__).resolve().parent.parent
R_SCRIPT = ROOT / "benchmarks" / "lme4_reference.R"
PHASES = ("prepare", "sample", "assemble", "summary")
PPC_DRAWS = 25  # per chain, as a default fit_ea run keeps


def _min_ess(dt) -> float:
    post = dt["posterior"].to_dataset()
    hyper = [v for v in ea_fitting.HYPER_VARIABLES if v in post]
    return float(az.ess(post[hyper], method="bulk").to_array().min())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fit_ea", description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--scale", action="store_true", help="cost against the number of sites")
    mode.add_argument("--vs-lme4", action="store_true", help="end-to-end CLI against lme4::lmer")
    p.add_argument("--dataset", default="ch4-sites", choices=OBSERVATION_DATASETS)
    from tpflux.activation import ActivationEnergyConfig

    d = ActivationEnergyConfig()  # fit_ea's own defaults
    p.add_argument("--chains", type=int, default=d.chains)
    p.add_argument("--draws", type=int, default=d.draws)
    p.add_argument("--tune", type=int, default=d.tune)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--residuals", default=ArrheniusConfig().residuals, choices=RESIDUALS)
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--naive-sampler", default="pymc", choices=("pymc", "nutpie"),
                   help="sampler for the naive model (pymc: the textbook baseline)")
    p.add_argument("--sizes", default="25,250,2500", help="--scale: numbers of simulated sites")
    p.add_argument("--years", type=float, default=None,
                   help="--scale: mean continuous record span in years (default: the design's 2.5)")
    p.add_argument("--ar1", type=float, default=0.5,
                   help="--scale: simulated day-to-day residual autocorrelation of every class "
                        "(the default data's daily residuals have about 0.56)")
    p.add_argument("--repeats", type=int, default=3, help="--vs-lme4: runs of each side")
    args = p.parse_args(argv)
    if args.scale:
        return scale(args)
    if args.vs_lme4:
        return versus_lme4(args)

    obs = load_observations(args.dataset, seed=args.seed)
    config = ArrheniusConfig(residuals=args.residuals)
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


# ---------------------------------------------------------------- --scale
def scale(args) -> None:
    from data.synthetic import FLUX_CLASSES, simulate_observations

    sizes = [int(s) for s in args.sizes.split(",")]
    config = ArrheniusConfig(residuals=args.residuals)
    print(f"simulator, n_obs_target=None, years={args.years or 'design'}, ar1={args.ar1}; "
          f"{config.residuals} residuals; "
          f"nutpie, {args.chains} chains × ({args.tune} + {args.draws}); {os.cpu_count()} cores")
    header = (f"{'sites':>6}{'obs':>10}{'groups':>8}{'simulate':>10}"
              + "".join(f"{p:>10}" for p in PHASES) + f"{'total':>9}{'min ESS':>9}{'ESS/s':>8}")
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        obs, _ = simulate_observations(args.seed, n_obs_target=None, n_sites=n, years=args.years,
                                       truth={"ar1": dict.fromkeys(FLUX_CLASSES, args.ar1)})
        simulated = time.perf_counter() - t0
        wall, t = {}, time.perf_counter()

        def lap(phase: str) -> None:
            nonlocal t
            now = time.perf_counter()
            wall[phase], t = now - t, now

        data = ea_fitting.prepare(obs, "julian", config)
        lap("prepare")
        idata = ea_fitting.sample(data, config, chains=args.chains, draws=args.draws,
                                  tune=args.tune, seed=args.seed)
        lap("sample")
        dt = ea_fitting.assemble(idata, data, config, seed=args.seed, ppc_draws=PPC_DRAWS,
                                 log_likelihood=False)
        lap("assemble")
        ea_fitting.summary_table(dt, data)
        lap("summary")
        ess = _min_ess(idata)
        row = dict(sites=n, obs=len(data.obs), groups=len(data.groups), simulate=simulated, **wall,
                   total=sum(wall.values()), ess=ess, ess_per_s=ess / wall["sample"])
        rows.append(row)
        if len(rows) == 1:
            print(header)
        print(f"{n:>6}{row['obs']:>10}{row['groups']:>8}{simulated:>10.1f}"
              + "".join(f"{wall[p]:>10.1f}" for p in PHASES)
              + f"{row['total']:>9.1f}{ess:>9.0f}{row['ess_per_s']:>8.1f}", flush=True)
        del obs, data, idata, dt
    if len(rows) < 2:
        return
    table = pd.DataFrame(rows)
    groups = np.log(table["groups"].to_numpy(float))
    for phase in ("sample", "total"):
        cost = np.log(table[phase].to_numpy(float))
        k_all = np.polyfit(groups, cost, 1)[0]
        k_top = (cost[-1] - cost[-2]) / (groups[-1] - groups[-2])
        print(f"{phase}: cost ∝ groups^k, k = {k_all:.2f} over {len(table)} sizes, "
              f"{k_top:.2f} between the two largest")


# ---------------------------------------------------------------- --vs-lme4
def _lme4_available() -> str | None:
    """Why the R side cannot run, or None when it can."""
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    check = subprocess.run(["Rscript", "-e", "library(lme4)"], capture_output=True, text=True)
    return None if check.returncode == 0 else "the R package lme4 is not installed"


def _timed(cmd: list[str], **kwargs) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, **kwargs)
    return time.perf_counter() - t0, out.stdout


def versus_lme4(args) -> None:
    config = ArrheniusConfig(residuals=args.residuals)
    data = ea_fitting.prepare(load_observations("ch4-sites"), "julian", config)
    why_not = _lme4_available()
    if why_not:
        print(f"lme4 side skipped: {why_not} (Debian: apt-get install r-base-core r-cran-lme4)")
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "prepared.csv"
        cols = ["site", "flux_class", "season", "x", "y"]
        data.obs[cols].to_csv(table, index=False, float_format="%.17g")
        out = Path(tmp) / "fit_ea"
        cli = [sys.executable, "-m", "inference.fit_ea", "--out", str(out), "--overwrite",
               "--seed", str(args.seed), "--chains", str(args.chains), "--draws", str(args.draws),
               "--tune", str(args.tune), "--residuals", args.residuals, "--allow-unconverged"]
        print(f"ch4-sites: {len(data.obs)} observations, {len(data.groups)} groups, "
              f"{data.obs.groupby(['flux_class', 'season'], observed=True).ngroups} class × season cells")
        walls: dict[str, list[float]] = {"tpflux": [], "lme4": []}
        lme4_out = ""
        wall, _ = _timed(cli, env={**os.environ, "MPLBACKEND": "Agg"})
        print(f"warm-up run (fills the compile and table caches, not timed): {wall:.1f} s", flush=True)
        for i in range(args.repeats):  # alternating, so drifts in machine load hit both sides
            wall, _ = _timed(cli, env={**os.environ, "MPLBACKEND": "Agg"})
            walls["tpflux"].append(wall)
            line = f"run {i + 1}: tpflux CLI {wall:.1f} s"
            if not why_not:
                wall, lme4_out = _timed(["Rscript", str(R_SCRIPT), str(table)])
                walls["lme4"].append(wall)
                line += f", lme4 {wall:.1f} s"
            print(line, flush=True)
        tp = float(np.median(walls["tpflux"]))
        print(f"median wall time: tpflux {tp:.1f} s (fit_ea end to end: Python start-up, load, "
              f"sample {args.chains} × ({args.tune} + {args.draws}), write the run folder)")
        if why_not:
            return
        lm = float(np.median(walls["lme4"]))
        print(f"median wall time: lme4 {lm:.1f} s (Rscript start-up, read the table, lmer REML per "
              f"cell); tpflux / lme4 = {tp / lm:.1f}")
        summary = pd.read_csv(out / "ea_summary.csv")
        e = (summary.loc[summary["quantity"] == "E", ["flux_class", "season", "median", "ci_low", "ci_high"]]
             .rename(columns=lambda c: c if c in ("flux_class", "season") else f"tpflux_E_{c}"))
        print(next(line for line in lme4_out.splitlines() if line.startswith("#")))
        ref = pd.read_csv(io.StringIO(lme4_out), comment="#")
        both = e.merge(ref, on=["flux_class", "season"], how="outer")
        with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
            print(both.to_string(index=False))


if __name__ == "__main__":
    main()
