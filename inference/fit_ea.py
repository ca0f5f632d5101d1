"""Fit hierarchical Boltzmann–Arrhenius activation energies of CH4 flux by flux class, season and site.

    python -m inference.fit_ea [--dataset NAME | --data PATH] [--seasons julian|freeze-thaw]
                               [--likelihood normal|student] [--chains --draws --tune --seed --out]

Writes ``ea_posterior.nc`` (ArviZ DataTree), ``ea_summary.csv``, ``diagnostics.json`` to the run folder.
"""

from __future__ import annotations

import importlib.util
import sys
import time

from data.errors import DataError
from data.registry import add_observation_arguments, observations_from_args
from data.seasons import SCHEMES
from inference import ea_fitting
from inference import runio

SAMPLERS = ("nutpie", "pymc", "numpyro")


def parser():
    p = runio.base_parser("fit_ea", __doc__.split("\n\n")[0])
    add_observation_arguments(p)
    p.add_argument("--seasons", default="julian", choices=SCHEMES,
                   help="season scheme")
    p.add_argument("--likelihood", default="normal", choices=("normal", "student"),
                   help="normal: exact marginal likelihood from sufficient statistics (calibrated, "
                        "benchmarks/sbc_runs); student: robust to outliers, per observation, less well "
                        "calibrated on small designs")
    p.add_argument("--sampler", default="nutpie", choices=SAMPLERS,
                   help="NUTS implementation (nutpie: fastest here; pymc: PyMC's own)")
    p.add_argument("--target-accept", type=float, default=ea_fitting.TARGET_ACCEPT,
                   help="NUTS target acceptance rate (higher: smaller steps, fewer divergences)")
    p.add_argument("--t-ref", type=float, default=15.0, help="reference temperature T_C (°C)")
    p.add_argument("--min-obs", type=int, default=20, help="minimum observations per flux class × season")
    p.add_argument("--ppc-draws", type=int, default=100, help="posterior-predictive draws kept per chain")
    runio.add_sampling_args(p)
    return p


@runio.cli
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.sampler != "pymc" and importlib.util.find_spec(args.sampler) is None:
        raise DataError(None, None, None, f"sampler '{args.sampler}' is not installed",
                        f"pip install {args.sampler}, or use --sampler pymc")
    obs = observations_from_args(args)
    config = ea_fitting.config_from_args(args)
    prepared = ea_fitting.prepare(obs, args.seasons, config)
    print(ea_fitting.data_summary_text(obs, prepared))

    runio.progress(f"sampling: {args.chains} chains × ({args.tune} tune + {args.draws} draws), "
                   f"{config.likelihood} likelihood, sampler {args.sampler}")
    t0 = time.perf_counter()
    idata = ea_fitting.sample(prepared, config, chains=args.chains, draws=args.draws, tune=args.tune,
                              seed=args.seed, sampler=args.sampler, target_accept=args.target_accept,
                              progressbar=sys.stderr.isatty())
    wall = time.perf_counter() - t0
    runio.progress(f"sampled in {wall:.1f} s; computing site effects, derived quantities, log-likelihood")
    dt = ea_fitting.assemble(idata, prepared, config, seed=args.seed, ppc_draws=args.ppc_draws)
    run_config = {**config.to_dict(), "season_scheme": args.seasons, "dataset": args.dataset,
                  "data_path": args.data, "sampler": args.sampler, "target_accept": args.target_accept,
                  "chains": args.chains, "draws": args.draws, "tune": args.tune, "flux_column": args.flux_column,
                  "per_chamber": args.per_chamber, "synthetic": obs.synthetic,
                  "skipped_classes": prepared.skipped_classes, "dropped": {**obs.dropped, **prepared.dropped},
                  "skipped_sites": obs.skipped_sites, "sampling_seconds": round(wall, 2)}
    dt.attrs.update(runio.provenance(run_config, runio.table_sha256(obs.table), args.seed, argv))

    summary = ea_fitting.summary_table(dt, prepared)
    diag = runio.diagnose(dt, ea_fitting.GATED_VARIABLES)
    diag.update({"sampling_seconds": wall, "n_observations": len(prepared.obs),
                 "mean_tree_depth": ea_fitting.mean_tree_depth(dt),
                 "synthetic": obs.synthetic})
    out = runio.out_dir("fit_ea", args.out)
    runio.write_datatree(out / "ea_posterior.nc", dt)
    runio.write_csv(out / "ea_summary.csv", summary)
    runio.write_json(out / "diagnostics.json", diag)
    print(ea_fitting.result_text(summary, synthetic=obs.synthetic))
    runio.progress(f"wrote {out}/ea_posterior.nc, ea_summary.csv, diagnostics.json")
    return runio.gate_exit(diag, args.allow_unconverged,
                           "more --tune/--draws, --target-accept 0.99 for divergences, or "
                           "--likelihood normal; inspect the rank plots "
                           "(python -m reports.build RUN_DIR)")


if __name__ == "__main__":
    sys.exit(main())
