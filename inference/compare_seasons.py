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

from data.seasons import SCHEMES
from inference import runio


def parser() -> argparse.ArgumentParser:
    from inference.fit_ea import add_model_arguments
    from tpflux.seasons import SeasonComparisonConfig

    p = runio.base_parser("compare_seasons", __doc__.split("\n\n")[0])
    p.add_argument("--schemes", default=",".join(SeasonComparisonConfig().schemes),
                   help=f"comma-separated schemes, two or more of {', '.join(SCHEMES)}")
    add_model_arguments(p)
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
