"""Forest plot of a response-ratio meta-analysis run (``python -m inference.fit_rr``).

Each experiment's observed RR with its sampling interval (exp(yi ± z·√vi) at the project's
interval probability, marker area ∝ weight 1/vi), grouped by moderator level; under each group
the pooled RR (diamond: posterior median and interval) and the prediction interval for a new
experiment (thin bar). Reads only the saved run folder (or a fit's DataTree and summary:
``ResponseRatioFit.plot_forest()``). The Figure is built without pyplot: it is neither shown nor
registered, and importing this module leaves matplotlib's backend alone.

    python -m reports.forest_rr RUN_DIR [--out PATH]     (default RUN_DIR/figures/forest_rr.png)

The same command also draws, into RUN_DIR/figures/, the funnel plot (``funnel_rr.png``) and, where
the run holds their tables, the leave-one-study-out influence (``leave1out_rr.png``), the
cumulative estimates by year (``cumulative_rr.png``) and the τ-prior sensitivity
(``prior_sensitivity_rr.png``): ``funnel_figure``, ``influence_figure``, ``cumulative_figure``,
``sensitivity_figure``; ``save_all`` draws them all.
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
from reports import layout

TREE_FILE, SUMMARY_FILE = "rr_posterior.nc", "rr_summary.csv"
# Extra tables of a run (inference/fit_rr.py writes them; reports never import inference).
SENSITIVITY_FILE, LEAVE1OUT_FILE, CUMULATIVE_FILE = ("rr_prior_sensitivity.csv", "rr_leave1out.csv",
                                                     "rr_cumulative.csv")
FOREST_FIGURE, FUNNEL_FIGURE = "forest_rr.png", "funnel_rr.png"
LNRR_AXIS = "lnRR = ln(treatment / control flux), dimensionless"


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
    fig = Figure(figsize=(9.0, 1.6 + 0.19 * rows))
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
        labels.append(f"pooled RR {p['median']:.2f} [{p['low']:.2f}, {p['high']:.2f}]"
                      + (f"; PI {p['pred_low']:.2f}–{p['pred_high']:.2f}"
                         if np.isfinite(p["pred_low"]) else ""))
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
    ax.set_ylabel("experiment (study · site) and pooled RR", fontsize=8)
    ax.set_ylim(y + 1, 1)
    ax.set_xlabel("response ratio RR (treatment / control flux, unitless), log scale")
    title = (f"Response ratios by {moderator}: experiments with {CI_LABEL}s;\n"
             "pooled RR (diamond) and prediction interval for a new experiment (bar)")
    if "beta" in tree["posterior"].to_dataset():
        title += "\n(pooled at the reference level, or the mean, of the further moderators)"
    if int(tree.attrs.get("synthetic", 0)):
        title = "SYNTHETIC data — " + title
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    # Room for the row labels, the bold level headers (drawn as text, which the layout does not
    # measure) and the axis label left of them.
    room = max(layout.text_width(labels, 7), layout.text_width([f"{moderator}: {lv}" for lv in levels], 8.5))
    fig.subplots_adjust(left=max(fig.subplotpars.left, (room + 0.55) / fig.get_figwidth()))
    return fig


def funnel_figure(tree: xr.DataTree) -> Figure:
    """Funnel plot: each experiment's residual lnRR (observed − posterior median of the moderators'
    fitted part) against its standard error √vi, with the pseudo-confidence funnel ±z·SE around
    zero; asymmetry hints at small-study effects (the Egger-type test quantifies it)."""
    exp = experiments(tree)
    post = tree["posterior"].to_dataset()
    fitted = post["fitted"].median(("chain", "draw")).to_numpy() if "fitted" in post else 0.0
    resid = exp["yi"].to_numpy() - fitted
    se = np.sqrt(exp["vi"].to_numpy())
    z = stats.norm.ppf(CI_QUANTILES[2])
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.subplots()
    top = se.max() * 1.05
    ax.plot([-z * top, 0, z * top], [top, 0, top], color="0.4", lw=0.8, ls="--",
            label=f"{CI_LABEL} funnel around 0")
    for level in dict.fromkeys(exp["level"]):
        m = (exp["level"] == level).to_numpy()
        ax.scatter(resid[m], se[m], s=16, alpha=0.8, label=str(level))
    ax.axvline(0.0, color="0.2", lw=0.8)
    ax.set_ylim(top, 0)  # precise experiments at the top, as in metafor's funnel()
    ax.set_xlabel(f"residual {LNRR_AXIS}")
    ax.set_ylabel("standard error of lnRR (√vi, lnRR units)")
    ax.legend(fontsize=7, title=tree.attrs.get("moderator", "level"), title_fontsize=7)
    ax.set_title("Funnel plot: residual response ratio against its standard error", fontsize=9)
    fig.tight_layout()
    return fig


def _interval_rows(ax, labels, mid, lo, hi, *, color="tab:blue", offset=0.0, label=None):
    """Median and interval per row, top to bottom; ``offset`` shifts a second series off the first."""
    y = np.arange(len(labels))[::-1]
    ax.errorbar(mid, y + offset,
                xerr=[np.asarray(mid) - np.asarray(lo), np.asarray(hi) - np.asarray(mid)],
                fmt="o", ms=4, color=color, ecolor=color, elinewidth=1, capsize=2, label=label)
    ax.set_yticks(y, labels, fontsize=7)
    return y


def _by_level(ax, rows: pd.DataFrame, labels_of) -> None:
    """One series per level, offset vertically so that the intervals do not hide each other."""
    levels = list(dict.fromkeys(rows["level"]))
    for k, level in enumerate(levels):
        r = rows[rows["level"] == level]
        _interval_rows(ax, labels_of(r), r["median"], r["ci_low"], r["ci_high"], color=f"C{k}",
                       offset=0.15 * (k - (len(levels) - 1) / 2), label=str(level))
    # Right of the panel: inside it would cover intervals.
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)


def influence_figure(table: pd.DataFrame) -> Figure:
    """Leave-one-study-out: lnRR per level with each study left out (median and interval), against
    the full-data posterior mean (dashed); hollow markers are refits (Pareto k > 0.7)."""
    rows = table[table["quantity"] == "lnRR"]
    levels = list(dict.fromkeys(rows["level"]))
    fig = Figure(figsize=(4.0 * len(levels), 1.2 + 0.22 * rows["study"].nunique()))
    axes = np.atleast_1d(fig.subplots(1, len(levels), sharey=True, squeeze=False)[0])
    for ax, level in zip(axes, levels):
        r = rows[rows["level"] == level]
        y = _interval_rows(ax, [f"without {s}" for s in r["study"]], r["median"], r["ci_low"],
                           r["ci_high"])
        refit = r["refit"].astype(bool).to_numpy()
        ax.scatter(r["median"].to_numpy()[refit], y[refit], s=30, facecolor="white",
                   edgecolor="tab:red", zorder=3)
        ax.axvline(float(r["full_mean"].iloc[0]), color="0.3", ls="--", lw=0.8)
        ax.set_xlabel(LNRR_AXIS, fontsize=8)
        ax.set_title(f"{level}", fontsize=8)
    axes[0].set_ylabel("study left out", fontsize=8)
    fig.suptitle(f"Leave-one-study-out influence: lnRR ({CI_LABEL}); dashed = all studies; "
                 "hollow = refitted (Pareto k > 0.7)", fontsize=9)
    fig.tight_layout()
    return fig


def cumulative_figure(table: pd.DataFrame) -> Figure:
    """Cumulative meta-analysis: lnRR per level after each study is added in year order."""
    rows = table[table["quantity"] == "lnRR"]
    fig = Figure(figsize=(6.5, 1.6 + 0.3 * rows["step"].nunique()))
    ax = fig.subplots()
    _by_level(ax, rows, lambda r: [f"+ {s} ({y:g}), {n} studies"
                                   for s, y, n in zip(r["study"], r["year"], r["step"])])
    ax.axvline(0.0, color="0.3", lw=0.8)
    ax.set_xlabel(LNRR_AXIS)
    ax.set_ylabel("study added (year)", fontsize=8)
    ax.set_title(f"Cumulative estimates, studies added by year ({CI_LABEL}s)", fontsize=9)
    fig.tight_layout()
    return fig


def sensitivity_figure(table: pd.DataFrame) -> Figure:
    """τ-prior sensitivity: τ and each level's lnRR (median and interval) under each prior."""
    fig = Figure(figsize=(9.0, 1.5 + 0.3 * table["tau_prior"].nunique()))
    ax_tau, ax_rr = fig.subplots(1, 2, sharey=True)
    tau = table[table["quantity"] == "tau"].drop_duplicates("tau_prior")
    _interval_rows(ax_tau, list(tau["tau_prior"]), tau["median"], tau["ci_low"], tau["ci_high"])
    ax_tau.set_xlabel("between-experiment SD τ (lnRR units)")
    ax_tau.set_ylabel("prior on τ", fontsize=8)
    _by_level(ax_rr, table[table["quantity"] == "lnRR"], lambda r: list(r["tau_prior"]))
    ax_rr.set_xlabel(LNRR_AXIS)
    fig.suptitle(f"Sensitivity to the τ prior (median and {CI_LABEL})", fontsize=9)
    fig.tight_layout()
    return fig


EXTRA_FIGURES = ((LEAVE1OUT_FILE, influence_figure, "leave1out_rr.png"),
                 (CUMULATIVE_FILE, cumulative_figure, "cumulative_rr.png"),
                 (SENSITIVITY_FILE, sensitivity_figure, "prior_sensitivity_rr.png"))


def _of_run(table_file: str, draw):
    def figure(run_dir: str | Path) -> Figure | None:
        path = Path(run_dir) / table_file
        return draw(storage.read_csv(path)) if path.exists() else None

    figure.__name__ = f"{draw.__name__}_of_run"
    figure.__doc__ = f"``{draw.__name__}`` of a run folder's {table_file}; None when it has none."
    return figure


# For the report builder, which supplies a run folder by name: a Figure, or None without the table.
influence_figure_of_run, cumulative_figure_of_run, sensitivity_figure_of_run = (
    _of_run(table, draw) for table, draw, _ in EXTRA_FIGURES)


def save_all(run_dir: str | Path) -> list[Path]:
    """Every figure of a saved fit_rr run folder (forest, funnel, and those of its extra tables)."""
    run_dir = Path(run_dir)
    paths = [save_forest(run_dir)]
    tree = storage.read_datatree(run_dir / TREE_FILE)
    figures = run_dir / "figures"
    paths.append(storage.save_figure(funnel_figure(tree), figures / FUNNEL_FIGURE, dpi=150))
    for table, draw, name in EXTRA_FIGURES:
        if (run_dir / table).exists():
            paths.append(storage.save_figure(draw(storage.read_csv(run_dir / table)),
                                             figures / name, dpi=150))
    return paths


def save_forest(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Draw the forest plot of a saved fit_rr run folder; returns the image path."""
    run_dir = Path(run_dir)
    tree_file, summary_file = run_dir / TREE_FILE, run_dir / SUMMARY_FILE
    for f in (tree_file, summary_file):
        if not f.exists():
            raise DataError(f, None, None, "file not found",
                            "pass a folder written by python -m inference.fit_rr")
    fig = forest_figure(storage.read_datatree(tree_file), storage.read_csv(summary_file))
    out = Path(path) if path is not None else run_dir / "figures" / FOREST_FIGURE
    return storage.save_figure(fig, out, dpi=150)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.forest_rr", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="folder written by python -m inference.fit_rr")
    p.add_argument("--out", type=Path, default=None,
                   help="image path (default RUN_DIR/figures/forest_rr.png)")
    args = p.parse_args(argv)
    try:
        if args.out is not None:
            print(save_forest(args.run_dir, args.out))
        else:
            print("\n".join(map(str, save_all(args.run_dir))))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
