"""What is in a dataset: per-site rows, date range, flux classes, seasons, rows dropped and why.

    python -m data.inspect [--dataset NAME | --data PATH] [--seasons SCHEME] [--json]

The first thing to run on your own files: it reads them exactly as the models will.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd

from data.errors import DataError
from data.registry import add_observation_arguments, observations_from_args
from data.seasons import SCHEMES, assign_seasons
from data.table import Observations, flux_class


def describe(obs: Observations, dataset: str, scheme: str = "julian") -> dict:
    """The JSON object of the command-line contract, plus class and season counts."""
    t = obs.table
    sites = (t.groupby("site", sort=True)
             .agg(ecosystem=("ecosystem", "first"), method=("method", "first"), n_rows=("flux", "size"),
                  first=("date", "min"), last=("date", "max"), latitude=("latitude", "first"),
                  longitude=("longitude", "first"))
             .reset_index())
    sites["first"] = sites["first"].dt.strftime("%Y-%m-%d")
    sites["last"] = sites["last"].dt.strftime("%Y-%m-%d")
    classes = flux_class(t).fillna("zero_flux")
    counts = _class_season_counts(classes, assign_seasons(t, scheme))
    return {
        "dataset": dataset,
        "synthetic": obs.synthetic,
        "n_rows": int(len(t)),
        "sites": sites.to_dict(orient="records"),
        "skipped_sites": obs.skipped_sites,
        "dropped": {k: int(v) for k, v in obs.dropped.items()},
        "season_scheme": scheme,
        "class_season_rows": {c: {s: int(n) for s, n in row.items()} for c, row in counts.iterrows()},
    }


def _class_season_counts(classes: pd.Series, seasons: pd.Series) -> pd.DataFrame:
    """Rows per class × season, as ``pd.crosstab`` tabulates them (classes sorted, seasons in
    their order, seasons without rows left out), counted on integer codes: a crosstab of a
    file-sized table builds several file-sized intermediates."""
    class_code, names = pd.factorize(classes, sort=True)
    labels = seasons.cat.categories
    counts = np.bincount(class_code * len(labels) + seasons.cat.codes.to_numpy(),
                         minlength=len(names) * len(labels)).reshape(len(names), len(labels))
    table = pd.DataFrame(counts, index=pd.Index(names, name=classes.name), columns=labels)
    return table.loc[:, counts.sum(axis=0) > 0]


def render_text(info: dict) -> str:
    tag = " [SYNTHETIC DATA]" if info["synthetic"] else ""
    lines = [f"{info['dataset']}{tag}: {info['n_rows']} rows at {len(info['sites'])} sites"]
    sites = pd.DataFrame(info["sites"])
    if len(sites):
        lines.append(sites.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for site, why in info["skipped_sites"].items():
        lines.append(f"skipped site {site}: {why}")
    for reason, n in info["dropped"].items():
        lines.append(f"dropped {n} rows: {reason}")
    lines.append(f"rows by flux class × season ({info['season_scheme']}):")
    lines.append(pd.DataFrame(info["class_season_rows"]).T.fillna(0).astype(int).to_string())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data.inspect", description=__doc__.split("\n\n")[0])
    add_observation_arguments(p)
    p.add_argument("--seasons", default="julian", choices=SCHEMES)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        obs = observations_from_args(args)
        info = describe(obs, args.data or args.dataset, args.seasons)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=1) if args.json else render_text(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
