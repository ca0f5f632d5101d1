"""Gridded projection cost: cell-day-draw evaluations per minute and peak memory vs grid size.

    python -m benchmarks.project [--sizes 8,16,32] [--days 365] [--draws 50] [--chunk 8]
                                 [--workers 2] [--json PATH]

Each grid size runs in a fresh subprocess (so peak memory is that size's own): forests are fitted
on the simulated sites (``data.synthetic``, same seed every time, not timed), a SYNTHETIC Tibetan
grid of n × n cells is simulated, and the dask-chunked projection (5 scenarios × 2 modes) is timed.
An evaluation is one flux value of one cell, day, draw, scenario and mode. Memory: the process's
resident set sampled every 20 ms during the projection, minus its size just before (working
memory), and the process peak. With a fixed block size the working memory should stay flat while
the cost grows linearly with the number of cells.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

SCENARIOS = (0.0, 0.5, 1.0, 1.5, 2.0)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os
    return pages * os.sysconf("SC_PAGE_SIZE")


class _PeakSampler:
    def __init__(self, every_s: float = 0.02):
        self.every_s, self.peak, self._stop = every_s, _rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def run_one(n: int, days: int, draws: int, chunk: int, workers: int, seed: int = 7) -> dict:
    """Project one n × n grid; returns timings and memory."""
    import resource

    import dask
    import numpy as np
    import xarray as xr

    from data.synthetic import simulate_observations
    from data.synthetic_grid import simulate_tibetan_grid
    from models import scenarios as sc
    from models.forest import ForestSpec, fit_class_forests, with_flux_class

    obs, _ = simulate_observations(seed)
    table = with_flux_class(obs.table)
    forests, _ = fit_class_forests(table, ForestSpec(n_trees=max(draws, 50), n_jobs=workers),
                                   drivers=("soil_temp_c",), seed=seed)
    classes = sorted(forests)
    E = xr.DataArray(np.random.default_rng(seed).normal(0.8, 0.1, (1, max(draws, 100), len(classes), 2)),
                     dims=("chain", "draw", "flux_class", "season"),
                     coords={"flux_class": classes, "season": ["growing", "non-growing"]})
    engine = sc.Engine(forests, SCENARIOS, sc.MODES, draws,
                       sc.draw_activation_energies(E, draws, seed, "julian"))
    setup = sc.GridSetup(engine, sc.class_shares(table, engine.classes), ("grassland", "wetland"),
                         ("soil_temp_c",))
    cube = simulate_tibetan_grid(n, n, n_days=days, seed=seed)
    before = _rss_bytes()
    with dask.config.set(scheduler="threads", num_workers=workers), _PeakSampler() as sampler:
        t0 = time.perf_counter()
        out = sc.project_grid(setup, cube, (chunk, chunk))
        wall = time.perf_counter() - t0
    land = int(np.isfinite(out["flux_mean"].isel(scenario_c=0, mode=0, flux_class=-1, period=0)).sum())
    evaluations = land * days * draws * len(engine.scenarios) * len(engine.modes)
    return {"cells": n * n, "land_cells": land, "days": days, "draws": draws, "chunk": chunk,
            "workers": workers, "seconds": wall, "evaluations": evaluations,
            "evaluations_per_minute": evaluations / wall * 60.0,
            "working_memory_mb": (sampler.peak - before) / 2 ** 20,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "region_total_net_control_tg": float(out["region_total"].sel(
                scenario_c=0.0, mode="rf", flux_class="total_net", period="annual").mean())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.project", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="8,16,32", help="grid edge lengths (cells), comma-separated")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--draws", type=int, default=50)
    p.add_argument("--chunk", type=int, default=8, help="block edge (cells)")
    p.add_argument("--workers", type=int, default=2, help="dask threads")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child process
    args = p.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.days, args.draws, args.chunk, args.workers)))
        return 0
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, "-m", "benchmarks.project", "--one", str(n), "--days", str(args.days),
               "--draws", str(args.draws), "--chunk", str(args.chunk), "--workers", str(args.workers)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{r['cells']:>6} cells ({r['land_cells']} land) × {r['days']} d × {r['draws']} draws × "
              f"{len(SCENARIOS)} scen × 2 modes: {r['seconds']:7.1f} s, "
              f"{r['evaluations_per_minute'] / 1e6:7.1f} M evaluations/min, working memory "
              f"{r['working_memory_mb']:6.0f} MB, process peak {r['peak_rss_mb']:6.0f} MB", flush=True)
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"cost ratio {b['seconds'] / a['seconds']:.1f}× for {b['land_cells'] / a['land_cells']:.1f}× "
              f"the land cells; working memory {a['working_memory_mb']:.0f} → {b['working_memory_mb']:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
