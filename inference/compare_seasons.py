"""Compare season schemes for the activation-energy model by PSIS-LOO on the same observations.

    python -m inference.compare_seasons [--dataset NAME | --data PATH] [--schemes julian,freeze-thaw,none]

Fits model M1 once per scheme on the observations every scheme keeps (a class too small in one
scheme's seasons is dropped from all), then ranks the schemes by expected log predictive density
(ELPD) with the difference to the best and its standard error. Writes ``season_comparison.csv`` and
``diagnostics.json`` (one verdict per scheme).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from data.registry import add_observation_arguments, observations_from_args
from data.seasons import SCHEMES
from data.table import Observations
from inference import ea_fitting, runio
from models.arrhenius import ArrheniusConfig, ArrheniusData


def common_observations(obs: Observations, schemes: list[str], config: ArrheniusConfig,
                        max_rounds: int = 5) -> dict[str, ArrheniusData]:
    """Prepared data per scheme, restricted to the rows every scheme keeps."""
    table = obs.table
    for _ in range(max_rounds):
        sub = Observations(table=table, dropped=obs.dropped, synthetic=obs.synthetic)
        prepared = {s: ea_fitting.prepare(sub, s, config) for s in schemes}
        keys = None
        for data in prepared.values():
            k = pd.MultiIndex.from_frame(data.obs[["site", "date"]])
            keys = k if keys is None else keys.intersection(k)
        if all(len(d.obs) == len(keys) for d in prepared.values()):
            return prepared
        mask = pd.MultiIndex.from_frame(table[["site", "date"]]).isin(keys)
        table = table.loc[mask].reset_index(drop=True)
    raise RuntimeError("season schemes did not agree on a common set of observations")


def parser() -> argparse.ArgumentParser:
    p = runio.base_parser("compare_seasons", __doc__.split("\n\n")[0])
    add_observation_arguments(p)
    p.add_argument("--schemes", default="julian,freeze-thaw,none",
                   help=f"comma-separated schemes from {', '.join(SCHEMES)}")
    p.add_argument("--min-obs", type=int, default=20, help="minimum observations per class × season")
    runio.add_sampling_args(p)
    return p


@runio.cli
def main(argv: list[str] | None = None) -> int:
    import arviz as az

    args = parser().parse_args(argv)
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    obs = observations_from_args(args)
    config = ArrheniusConfig(min_obs=args.min_obs)
    prepared = common_observations(obs, schemes, config)
    n = len(next(iter(prepared.values())).obs)
    runio.progress(f"{n} observations common to schemes {', '.join(schemes)}")
    trees, verdicts = {}, {}
    for scheme, data in prepared.items():
        n_s, n_c = len(data.seasons), len(data.classes)
        runio.progress(f"fitting scheme '{scheme}' ({n_s} season{'s' * (n_s != 1)}, "
                       f"{n_c} class{'es' * (n_c != 1)})")
        idata = ea_fitting.sample(data, config, chains=args.chains, draws=args.draws, tune=args.tune,
                                  seed=args.seed)
        trees[scheme] = ea_fitting.assemble(idata, data, config, seed=args.seed, ppc_draws=1)
        verdicts[scheme] = runio.diagnose(trees[scheme], ea_fitting.GATED_VARIABLES)
    table = az.compare(trees, round_to="none").reset_index(names="scheme")
    table.insert(1, "n_obs", n)
    out = runio.out_dir("compare_seasons", args.out)
    runio.write_csv(out / "season_comparison.csv", table)
    failed = [s for s, d in verdicts.items() if d["verdict"] != "pass"]
    diag = {"schemes": verdicts, "verdict": "fail" if failed else "pass",
            "failed": [f"scheme {s}: " + "; ".join(verdicts[s]["failed"]) for s in failed]}
    runio.write_json(out / "diagnostics.json", diag)
    cols = [c for c in ("scheme", "rank", "elpd", "p", "elpd_diff", "dse", "weight", "warning")
            if c in table]
    print(f"PSIS-LOO comparison on {n} common observations (higher ELPD is better):")
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return runio.gate_exit(diag | {"r_hat_max": max(d["r_hat_max"] for d in verdicts.values()),
                                   "ess_bulk_min": min(d["ess_bulk_min"] for d in verdicts.values()),
                                   "ess_tail_min": min(d["ess_tail_min"] for d in verdicts.values()),
                                   "divergences": sum(d["divergences"] for d in verdicts.values())},
                           args.allow_unconverged, "more --tune/--draws")


if __name__ == "__main__":
    sys.exit(main())
