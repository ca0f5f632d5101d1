"""Does a covariate moderate the activation energy? PSIS-LOO of the model with and without it.

    python -m inference.compare_covariate --covariate wtd_m [--dataset NAME | --data PATH]
                                          [--seasons julian] [fit_ea's model and sampler options]

Fits model M1 twice on the rows that have a value of the covariate: without it, and with
E_ij = E_cs + ε_E + β_E,c·(z_ij − z̄_c) and lnR likewise. Ranks the two by expected log
predictive density (ELPD), with the difference, its standard error and a one-line reading, and
prints β_E, β_R per flux class and E in both models. Writes ``covariate_comparison.csv``,
``covariate_effects.csv``, ``covariate_comparison.nc`` (pointwise ELPD and Pareto k per model)
and ``diagnostics.json`` (both fits' gates). The same comparison from Python:
``tpflux.compare_covariate(...)``.
"""

from __future__ import annotations

import argparse
import sys

from data.seasons import SCHEMES
from inference import runio


def parser() -> argparse.ArgumentParser:
    from inference.fit_ea import add_model_arguments

    p = runio.base_parser("compare_covariate", __doc__.split("\n\n")[0])
    p.add_argument("--seasons", default="julian", choices=SCHEMES, help="season scheme")
    add_model_arguments(p)
    covariate = p._option_string_actions["--covariate"]
    covariate.default = "wtd_m"
    covariate.help = ("the numeric column compared against none (default wtd_m: water table, m, "
                      "positive above the surface)")
    return p


@runio.cli
def main(argv: list[str] | None = None) -> int:
    return runio.run_job("compare_covariate", parser(), argv, compare)


def compare(args, argv):
    from inference.fit_ea import model_options
    from tpflux.covariates import compare_covariate

    options = model_options(args)
    covariate = options.pop("covariate")
    return compare_covariate(covariate, args.data, seasons=args.seasons, command_line=argv, **options)


if __name__ == "__main__":
    sys.exit(main())
