"""Compare season schemes for the activation-energy model by PSIS-LOO on the same observations.

    python -m inference.compare_seasons [--dataset NAME | --data PATH] [--schemes julian,freeze-thaw,none]

Fits model M1 once per scheme on the observations every scheme keeps (a class too small in one
scheme's seasons is dropped from all), then ranks the schemes by expected log predictive density
(ELPD) with the difference to the best and its standard error. Writes ``season_comparison.csv``,
``season_comparison.nc`` (pointwise ELPD and Pareto k per scheme) and ``diagnostics.json`` (one
verdict per scheme). The same comparison from Python: ``tpflux.compare_seasons(...)``.
"""

from __future__ import annotations

import argparse
import sys

from data.registry import add_observation_arguments
from data.seasons import SCHEMES
from inference import runio


def parser() -> argparse.ArgumentParser:
    from models.arrhenius import LIKELIHOODS
    from tpflux.activation import SAMPLERS
    from tpflux.seasons import SeasonComparisonConfig

    d = SeasonComparisonConfig()
    p = runio.base_parser("compare_seasons", __doc__.split("\n\n")[0])
    add_observation_arguments(p)
    p.add_argument("--schemes", default=",".join(d.schemes),
                   help=f"comma-separated schemes, two or more of {', '.join(SCHEMES)}")
    p.add_argument("--min-obs", type=int, default=d.min_obs, help="minimum observations per class × season")
    p.add_argument("--likelihood", default=d.likelihood, choices=LIKELIHOODS,
                   help="as for inference.fit_ea (normal: the calibrated model)")
    p.add_argument("--sampler", default=d.sampler, choices=SAMPLERS, help="NUTS implementation")
    p.add_argument("--target-accept", type=float, default=d.target_accept,
                   help="NUTS target acceptance rate (higher: smaller steps, fewer divergences)")
    p.add_argument("--t-ref", type=float, default=d.t_ref_c, help="reference temperature T_C (°C)")
    runio.add_sampling_args(p)
    return p


@runio.cli
def main(argv: list[str] | None = None) -> int:
    from tpflux.seasons import compare_seasons

    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    with runio.output_folder("compare_seasons", args.out, args.overwrite) as out:
        result = compare_seasons(args.data, dataset=args.dataset, schemes=args.schemes,
                                 likelihood=args.likelihood, min_obs=args.min_obs,
                                 chains=args.chains, draws=args.draws, tune=args.tune,
                                 seed=args.seed, sampler=args.sampler,
                                 target_accept=args.target_accept, t_ref_c=args.t_ref,
                                 flux_column=args.flux_column, per_chamber=args.per_chamber,
                                 command_line=argv)
        result.save(out, overwrite=args.overwrite)
    print(result.result_text())
    runio.progress(f"wrote {out}/: " + ", ".join(result.files))
    return runio.gate_exit(result.diagnostics, args.allow_unconverged, result.gate_advice())


if __name__ == "__main__":
    sys.exit(main())
