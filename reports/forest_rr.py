"""Forest plot of a response-ratio meta-analysis run (``python -m inference.fit_rr``).

Each experiment's observed RR with its 95 % sampling interval (exp(yi ± z·√vi), marker area ∝
weight 1/vi), grouped by moderator level; under each group the pooled RR (diamond: posterior
median and interval) and the prediction interval for a new experiment (thin bar). Reads only the
saved run folder (or a fit's DataTree and summary: ``ResponseRatioFit.plot_forest()``). The Figure
is built without pyplot: it is neither shown nor registered, and importing this module leaves
matplotlib's backend alone.

    python -m reports.forest_rr RUN_DIR [--out PATH]     (default RUN_DIR/figures/forest_rr.png)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib.ticker
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy import stats

from data import storage
from data.errors import DataError
from models.conventions import CI_LABEL, CI_QUANTILES

TREE_FILE, SUMMARY_FILE = "rr_posterior.nc", "rr_summary.csv"


def experiments(tree: xr.DataTree) -> pd.DataFrame:
    """One row per experiment: study, site, level, yi, vi (from the saved observed/constant data)."""
    const = tree["constant_data"].to_dataset()
    return pd.DataFrame({
        "study": const["exp_study"].to_numpy().astype(str),
        "site": const["exp_site"].to_numpy().astype(str),
        "level": const["exp_level"].to_numpy().astype(str),
        "yi": tree["observed_data"].to_dataset()["yi"].to_numpy(),
        "vi": const["vi"].to_numpy(),
    })


def _pooled(summary: pd.DataFrame, level: str) -> dict[str, float]:
    def value(q, col="median"):
        hit = summary[(summary["quantity"] == q) & (summary["level"] == level)]
        return float(hit[col].iloc[0]) if len(hit) else np.nan

    return {"median": value("RR"), "low": value("RR", "ci_low"), "high": value("RR", "ci_high"),
            "pred_low": value("RR_pred_low"), "pred_high": value("RR_pred_high")}


def forest_figure(tree: xr.DataTree, summary: pd.DataFrame) -> Figure:
    """The forest plot as a matplotlib Figure (the caller saves it)."""
    exp = experiments(tree)
    levels = [str(x) for x in tree["posterior"].to_dataset()["lnRR"].coords["level"].to_numpy()]
    z = stats.norm.ppf(CI_QUANTILES[2])
    moderator = tree.attrs.get("moderator", "level")
    rows = len(exp) + 3 * len(levels)
    fig = Figure(figsize=(8.0, 1.4 + 0.19 * rows))
    ax = fig.subplots()
    y, ticks, labels = 0.0, [], []
    weight = 1.0 / exp["vi"].to_numpy()
    size = 12 + 60 * weight / weight.max()
    for level in levels:
        group = exp[exp["level"] == level].sort_values(["study", "site"], kind="stable")
        ax.text(0.0, y, f"{moderator}: {level}", transform=ax.get_yaxis_transform(),
                ha="right", va="center", fontweight="bold", fontsize=8)
        y -= 1
        for i, row in group.iterrows():
            half = z * np.sqrt(row["vi"])
            ax.plot(np.exp([row["yi"] - half, row["yi"] + half]), [y, y], color="0.45", lw=0.9)
            ax.scatter(np.exp(row["yi"]), y, s=size[i], marker="s", color="0.25", zorder=3)
            ticks.append(y)
            site = row["site"]
            labels.append(site if site.startswith(row["study"]) else f"{row['study']} · {site}")
            y -= 1
        p = _pooled(summary, level)
        if np.isfinite(p["pred_low"]):
            ax.plot([p["pred_low"], p["pred_high"]], [y, y], color="tab:blue", lw=1.2, alpha=0.6)
        ax.fill([p["low"], p["median"], p["high"], p["median"]], [y, y + 0.35, y, y - 0.35],
                color="tab:blue", zorder=4)
        ticks.append(y)
        labels.append(f"pooled RR {p['median']:.2f} [{p['low']:.2f}, {p['high']:.2f}]")
        y -= 2
    ax.axvline(1.0, color="0.2", lw=0.8, ls="--")
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    steps = (1, 2, 5) if hi / lo < 200 else (1,)  # decades only on wide axes
    nice = [m * 10.0**e for e in range(-4, 5) for m in steps if lo <= m * 10.0**e <= hi]
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(nice))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_ylim(y + 1, 1)
    ax.set_xlabel("response ratio RR (treatment / control), log scale")
    title = (f"Response ratios by {moderator}: experiments with {CI_LABEL}s;\n"
             "pooled RR (diamond) and prediction interval for a new experiment (bar)")
    if int(tree.attrs.get("synthetic", 0)):
        title = "SYNTHETIC data — " + title
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def save_forest(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Draw the forest plot of a saved fit_rr run folder; returns the image path."""
    run_dir = Path(run_dir)
    tree_file, summary_file = run_dir / TREE_FILE, run_dir / SUMMARY_FILE
    for f in (tree_file, summary_file):
        if not f.exists():
            raise DataError(f, None, None, "file not found",
                            "pass a folder written by python -m inference.fit_rr")
    fig = forest_figure(storage.read_datatree(tree_file), storage.read_csv(summary_file))
    out = Path(path) if path is not None else run_dir / "figures" / "forest_rr.png"
    return storage.save_figure(fig, out, dpi=150)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.forest_rr", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="folder written by python -m inference.fit_rr")
    p.add_argument("--out", type=Path, default=None,
                   help="image path (default RUN_DIR/figures/forest_rr.png)")
    args = p.parse_args(argv)
    try:
        print(save_forest(args.run_dir, args.out))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
