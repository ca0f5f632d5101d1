"""Project CH4 fluxes under soil warming (+0…+2 °C): random forests × Arrhenius posterior.

    python -m inference.project --posterior RUN/ea_posterior.nc [--dataset NAME | --data PATH |
        --drivers CUBE.nc] [--scenarios 0,0.5,1,1.5,2] [--mode both|rf|arrhenius] [--n-draws N]
        [--allow-no-skill] [--scheduler ADDRESS] [--out DIR] [--seed N]

Sites (default: the real FLUXNET-CH4 wetlands + Hongyuan meadow) or a gridded driver cube
(``--drivers CUBE.nc``, or ``--dataset synthetic-grid`` for the simulated Tibetan grid; forests
are then trained on ``--train``). Writes ``projection.nc``, ``projection_summary.csv``,
``forest_skill.csv``, ``forest_importance.csv`` and, for grids, ``projection_maps.nc``.
The same projection from Python: ``tpflux.project(...)``.

The run states first what it cannot claim: class forests without cross-site skill (pooled
leave-one-site-out NSE ≤ 0; their RF-direct totals withheld unless ``--allow-no-skill``), site
periods withheld because the record covers under 80 % of a season's days of year (site totals come
from the day-of-year climatology, never a short record scaled to a year), and annual changes whose
sign posterior scaling and RF-direct disagree on. ``P_increase`` is P(signed total above control)
in every row. Rules: ``tpflux.projection`` and ``models.scenarios``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data.registry import OBSERVATION_DATASETS
from inference import runio


def parser() -> argparse.ArgumentParser:
    from tpflux.projection import MODE_CHOICES, SYNTHETIC_GRID, ProjectionConfig

    d = ProjectionConfig()
    p = runio.base_parser("project", __doc__.split("\n\n")[0])
    p.add_argument("--posterior", type=Path, default=None,
                   help="RUN/ea_posterior.nc (or the RUN folder) from inference.fit_ea "
                        "(needed unless --mode rf)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=d.dataset, choices=(*OBSERVATION_DATASETS, SYNTHETIC_GRID),
                     help=f"site dataset to project, or {SYNTHETIC_GRID} (simulated Tibetan grid)")
    src.add_argument("--data", type=Path, default=None,
                     help="your own FLUXNET-CH4 file/folder, COSORE folder or chamber CSV")
    src.add_argument("--drivers", type=Path, default=None,
                     help="daily driver cube (NetCDF, lat × lon × time; ERA5-Land names understood)")
    p.add_argument("--train", default=d.train, choices=OBSERVATION_DATASETS,
                   help="sites the forests learn from when projecting a grid")
    p.add_argument("--scenarios", default=",".join(f"{s:g}" for s in d.scenarios),
                   help="soil warming ΔT in °C, comma-separated (0 = control, always included)")
    p.add_argument("--mode", default=d.mode, choices=tuple(MODE_CHOICES),
                   help="rf: forest at Ts+ΔT (cannot extrapolate); arrhenius: forest × posterior "
                        "Arrhenius factor; both: side by side")
    p.add_argument("--n-draws", type=int, default=d.n_draws,
                   help="draws per total (tree d mod n_trees paired with posterior draw d)")
    p.add_argument("--n-trees", type=int, default=d.n_trees, help="trees per class forest")
    p.add_argument("--min-samples-leaf", type=int, default=d.min_samples_leaf, help="forest leaf size")
    p.add_argument("--n-jobs", type=int, default=d.n_jobs, help="cores used to fit forests")
    p.add_argument("--cv-trees", type=int, default=d.cv_trees,
                   help="trees per forest in the leave-one-site-out skill (0: skip the skill, "
                        "so RF-direct totals go unchecked for it)")
    p.add_argument("--flux-column", default=d.flux_column, choices=("FCH4", "FCH4_F"),
                   help="FLUXNET-CH4 flux: measured (FCH4) or gap-filled (FCH4_F)")
    p.add_argument("--per-chamber", action=argparse.BooleanOptionalAction, default=d.per_chamber,
                   help="COSORE data: each chamber is a plot (else one daily site mean)")
    p.add_argument("--grid-shape", default=",".join(map(str, d.grid_shape)),
                   help=f"lat,lon cells of the {SYNTHETIC_GRID} simulator")
    p.add_argument("--chunk", default=",".join(map(str, d.chunk)),
                   help="lat,lon cells per dask block of a grid")
    p.add_argument("--allow-no-skill", action="store_true", default=d.allow_no_skill,
                   help="keep the RF-direct totals of classes whose forest has no cross-site skill "
                        "(leave-one-site-out NSE <= 0), flagged no_skill; otherwise they are withheld")
    p.add_argument("--scheduler", default=None,
                   help="dask.distributed scheduler ADDRESS (needs tpflux[distributed])")
    return p


@runio.cli
def main(argv: list[str] | None = None) -> int:
    return runio.run_job("project", parser(), argv, run)


def run(args, argv):
    from tpflux.projection import project

    return project(args.posterior, dataset=args.dataset, data=args.data, drivers=args.drivers,
                   train=args.train, scenarios=args.scenarios, mode=args.mode, n_draws=args.n_draws,
                   n_trees=args.n_trees, min_samples_leaf=args.min_samples_leaf, n_jobs=args.n_jobs,
                   cv_trees=args.cv_trees, flux_column=args.flux_column,
                   per_chamber=args.per_chamber, grid_shape=args.grid_shape, chunk=args.chunk,
                   scheduler=args.scheduler, allow_no_skill=args.allow_no_skill, seed=args.seed,
                   command_line=argv)


if __name__ == "__main__":
    sys.exit(main())
