"""Compare season schemes and residual models of the activation-energy model by PSIS-LOO on the same observations.

    python -m inference.compare_seasons [--dataset NAME | --data PATH] [--schemes julian,freeze-thaw,none]
                                        [--residuals ar1,iid]

Fits model M1 once per scheme × residual model (a progress line each) on the observations every
scheme keeps, then ranks the models by expected log predictive density (ELPD) with the difference
to the best, its standard error and a one-line reading of the two, overall and per flux class. A
class that one scheme cannot fit is left out of all; what was left out, and why, is printed and
written. AR(1) and iid residuals score the same observations (an AR(1) term conditions on the
previous observation of its group). Writes ``season_comparison.csv``,
``season_comparison_by_class.csv``, ``season_comparison_left_out.csv``, ``season_comparison.nc``
(pointwise ELPD and Pareto k per model) and ``diagnostics.json`` (one verdict per model). The same
comparison from Python: ``tpflux.compare_seasons(...)``; ``python -m reports.build DIR`` reports it.
"""

from __future__ import annotations

import argparse
import sys

from data.seasons import SCHEMES
from models.arrhenius_config import RESIDUALS
from inference import runio


def parser() -> argparse.ArgumentParser:
    from inference.fit_ea import add_model_arguments
    from tpflux.seasons import SeasonComparisonConfig

    p = runio.base_parser("compare_seasons", __doc__.split("\n\n")[0])
    p.add_argument("--schemes", default=",".join(SeasonComparisonConfig().schemes),
                   help=f"comma-separated schemes, two or more of {', '.join(SCHEMES)}")
    add_model_arguments(p)
    # a list here, where fit_ea takes one residual model (checked by the config)
    residuals = p._option_string_actions["--residuals"]
    residuals.choices, residuals.default = None, ",".join(SeasonComparisonConfig().residual_models)
    residuals.help = (f"comma-separated residual models, one or more of {', '.join(RESIDUALS)}: "
                      "each season scheme is fitted with each")
    return p


@runio.cli
def main(argv: list[str] | None = None) -> int:
    return runio.run_job("compare_seasons", parser(), argv, compare)


def compare(args, argv):
    from inference.fit_ea import model_options
    from tpflux.seasons import compare_seasons

    return compare_seasons(args.data, schemes=args.schemes, command_line=argv, **model_options(args))


if __name__ == "__main__":
    sys.exit(main())
