"""Fit hierarchical Boltzmann–Arrhenius activation energies of CH4 flux by flux class, season and site.

    python -m inference.fit_ea [--dataset NAME | --data PATH] [--seasons julian|freeze-thaw]
                               [--likelihood normal|student] [--chains --draws --tune --seed --out]

Writes ``ea_posterior.nc`` (ArviZ DataTree), ``ea_summary.csv``, ``diagnostics.json`` to the run folder.
The same fit from Python: ``tpflux.fit_ea(...)``.
"""

from __future__ import annotations

import sys

from data.registry import add_observation_arguments
from data.seasons import SCHEMES
from inference import runio


def parser():
    from tpflux.activation import SAMPLERS, TARGET_ACCEPT

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
    p.add_argument("--target-accept", type=float, default=TARGET_ACCEPT,
                   help="NUTS target acceptance rate (higher: smaller steps, fewer divergences)")
    p.add_argument("--t-ref", type=float, default=15.0, help="reference temperature T_C (°C)")
    p.add_argument("--min-obs", type=int, default=20, help="minimum observations per flux class × season")
    p.add_argument("--ppc-draws", type=int, default=100, help="posterior-predictive draws kept per chain")
    runio.add_sampling_args(p)
    return p


@runio.cli
def main(argv: list[str] | None = None) -> int:
    import tpflux
    from tpflux.activation import gate_advice

    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    with runio.output_folder("fit_ea", args.out, args.overwrite) as out:
        fit = tpflux.fit_ea(args.data, dataset=args.dataset, seasons=args.seasons,
                            likelihood=args.likelihood, chains=args.chains, draws=args.draws,
                            tune=args.tune, seed=args.seed, sampler=args.sampler,
                            target_accept=args.target_accept, t_ref_c=args.t_ref,
                            min_obs=args.min_obs, ppc_draws=args.ppc_draws,
                            flux_column=args.flux_column, per_chamber=args.per_chamber,
                            command_line=argv)
        fit.save(out, overwrite=args.overwrite)
    print(fit.result_text())
    runio.progress(f"wrote {out}/: ea_posterior.nc, ea_summary.csv, diagnostics.json")
    return runio.gate_exit(fit.diagnostics, args.allow_unconverged, gate_advice(fit.config))


if __name__ == "__main__":
    sys.exit(main())
