"""What a covariate costs: the warm main job with and without ``--covariate`` on the same rows.

    python -m benchmarks.covariate_cost [--covariate wtd_m] [--repeats 3]

The covariate adds two parameters per flux class and nine cross-products per group (and per AR(1)
lag bucket) to the sufficient statistics; the likelihood stays a sum over groups, so the sampling
time should barely change. Both fits run on the default data's rows that have the covariate, warm
(one untimed run each first: compiled model and parsed table cached), alternating; the table gives
each repeat's sampling and end-to-end seconds and the median ratio with / without.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd


def main(argv: list[str] | None = None) -> int:
    import tpflux
    from tpflux.covariates import rows_with_covariate

    p = argparse.ArgumentParser(prog="python -m benchmarks.covariate_cost",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--covariate", default="wtd_m")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    obs = rows_with_covariate(tpflux.load_observations(), args.covariate)
    models = {"none": None, args.covariate: args.covariate}
    for covariate in models.values():  # warm-up: compile and cache
        tpflux.fit_ea(obs, covariate=covariate, progress=False)
    rows = []
    for k in range(args.repeats):
        for name, covariate in models.items():
            t0 = time.perf_counter()
            fit = tpflux.fit_ea(obs, covariate=covariate, progress=False)
            rows.append({"repeat": k, "model": name, "total_s": time.perf_counter() - t0,
                         "sampling_s": fit.diagnostics["sampling_seconds"],
                         "ess_bulk_min": fit.diagnostics["ess_bulk_min"],
                         "divergences": fit.diagnostics["divergences"]})
            print(f"repeat {k}: {name:<8} {rows[-1]['total_s']:5.1f} s "
                  f"(sampling {rows[-1]['sampling_s']:4.1f} s)", flush=True)
    table = pd.DataFrame(rows)
    medians = table.groupby("model")[["total_s", "sampling_s"]].median()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    ratio = medians.loc[args.covariate] / medians.loc["none"]
    print(f"median with / without {args.covariate}: total {ratio['total_s']:.2f}, "
          f"sampling {ratio['sampling_s']:.2f} ({len(obs.table)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
