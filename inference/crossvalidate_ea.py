"""Leave-one-site-out check of an activation-energy run: held-out coverage of new-site predictions.

    python -m inference.crossvalidate_ea RUN_DIR [--out DIR] [--chains --draws --tune]

Refits the run's own configuration once per site without that site (a progress line per fold),
predicts the mean ln|F| of each held-out site × class × season group as for a new site, and writes
``crossvalidation.csv`` (one row per held-out group, and a last row ``ALL`` whose ``coverage_95``
is the share inside their 95 % intervals), ``crossvalidation_pit.png`` and ``diagnostics.json``
(each fold's gate). The same from Python: ``tpflux.crossvalidate_ea(RUN_DIR)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from inference import runio


def parser():
    p = runio.base_parser("crossvalidate_ea", __doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a run folder written by python -m inference.fit_ea")
    for name in ("chains", "draws", "tune"):
        p.add_argument(f"--{name}", type=int, default=None,
                       help=f"{name} of each fold's sampler (default: the run's own)")
    p.add_argument("--allow-unconverged", action="store_true",
                   help="record a failed fold verdict but exit 0")
    return p


@runio.cli
def main(argv: list[str] | None = None) -> int:
    return runio.run_job("crossvalidate_ea", parser(), argv, crossvalidate)


def crossvalidate(args, argv):
    import tpflux

    return tpflux.crossvalidate_ea(args.run, chains=args.chains, draws=args.draws, tune=args.tune,
                                   command_line=argv)


if __name__ == "__main__":
    sys.exit(main())
