"""Timing of the budget resampling: vectorised draws vs a per-draw loop (the R code's ``sapply``).

    python -m benchmarks.budget [--n-draws 10000]

Both give the same distribution (checked by their quantiles); only the cost differs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from data.jian2022 import load_budget_inputs
from models import budget as mb


def loop_means(rng: np.random.Generator, values: np.ndarray, sd: np.ndarray, n_draws: int,
               sample_size: int) -> np.ndarray:
    """One draw at a time, as ``sapply(rep(10, N), method3, x, s)`` does."""
    out = np.empty(n_draws)
    for k in range(n_draws):
        idx = rng.integers(0, values.size, sample_size)
        out[k] = rng.normal(values[idx], sd[idx]).mean()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.budget", description=__doc__.split("\n\n")[0])
    p.add_argument("--n-draws", type=int, default=mb.N_DRAWS)
    args = p.parse_args(argv)
    inputs = load_budget_inputs()
    rs = mb.select_rs(inputs.rs, mb.BudgetConfig())
    values = rs["value"].to_numpy()
    sd = mb.fill_sd(values, rs["sd"].to_numpy(), "max-cv")
    timings = {}
    for name, fn in (("vectorised", lambda r: mb.resample_means(r, values, sd, n_draws=args.n_draws)),
                     ("loop", lambda r: loop_means(r, values, sd, args.n_draws, mb.SAMPLE_SIZE))):
        start = time.perf_counter()
        draws = fn(np.random.default_rng(1))
        timings[name] = time.perf_counter() - start
        q = np.quantile(draws, mb.CI_QUANTILES)
        print(f"{name:>10}: {timings[name] * 1e3:8.1f} ms   RS quantiles {np.round(q, 1)}")
    print(f"speed-up {timings['loop'] / timings['vectorised']:.0f}×")
    start = time.perf_counter()
    mb.run_resampling(inputs, mb.BudgetConfig(n_draws=args.n_draws), seed=1)
    print(f"all {len(mb.VARIANTS)} variants incl. agreement, overlap, variance decomposition: "
          f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
