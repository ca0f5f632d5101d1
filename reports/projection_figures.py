"""Figures of a projection: from its summary table and maps, or from a saved run folder.

    python -m reports.projection_figures RUN_DIR [--out DIR]

* ``projection_totals.png``: totals with their equal-tailed intervals by scenario × period, one panel per
  flux class, the two modes side by side.
* ``projection_change.png``: change versus control (%) by period × scenario — where warming acts
  most (growing vs non-growing season, spring-thaw and autumn-freeze transitions).
* ``projection_maps.png`` (grid runs): annual net flux at control and its change at the warmest
  scenario, per mode.

The figure functions take the ``projection_summary.csv`` table or the ``projection_maps.nc``
Dataset and return a matplotlib Figure, neither drawn nor registered with pyplot (the backend is
left alone); ``make_figures`` saves them for a run folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from data import storage
from models.conventions import CI_LABEL

PERIOD_ORDER = ("annual", "growing", "non-growing", "spring_thaw", "autumn_freeze")
MODE_LABEL = {"rf": "RF-direct", "arrhenius": "posterior scaling"}
TOTALS_FILE, CHANGE_FILE, MAPS_FILE = "projection_totals.png", "projection_change.png", "projection_maps.png"
DPI = 130


def _headline_rows(summary: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows a figure shows: the region, or the mean over sites."""
    if "region" in summary.columns:
        where = summary["region"].iloc[0]
        return summary[summary["region"] == where], str(where)
    return summary[summary["site"] == "all_sites_mean"], "mean over sites"


def _layout(rows: pd.DataFrame) -> tuple[list, list, list, list]:
    """Classes, periods, modes and scenarios present, in display order."""
    return (sorted(rows["flux_class"].unique()), [p for p in PERIOD_ORDER if p in set(rows["period"])],
            [m for m in MODE_LABEL if m in set(rows["mode"])], sorted(rows["scenario_c"].unique()))


def totals_figure(summary: pd.DataFrame) -> Figure:
    """Totals (bars) with their intervals (whiskers) by scenario, flux class × period panels."""
    rows, label = _headline_rows(summary)
    classes, periods, modes, scenarios = _layout(rows)
    fig = Figure(figsize=(2.6 * len(periods), 2.2 * len(classes)), layout="constrained")
    axes = fig.subplots(len(classes), len(periods), squeeze=False, sharex=True)
    width = 0.8 / max(len(modes), 1)
    x = np.arange(len(scenarios))
    for i, cls in enumerate(classes):
        for j, period in enumerate(periods):
            ax = axes[i, j]
            for k, mode in enumerate(modes):
                r = (rows[(rows["flux_class"] == cls) & (rows["period"] == period) & (rows["mode"] == mode)]
                     .set_index("scenario_c").reindex(scenarios))
                err = np.vstack([r["total"] - r["ci_low"], r["ci_high"] - r["total"]])
                ax.bar(x + (k - (len(modes) - 1) / 2) * width, r["total"], width, yerr=err,
                       capsize=2, label=MODE_LABEL[mode])
            ax.set_xticks(x, [f"+{s:g}" for s in scenarios], fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            ax.set_xlabel("soil warming ΔT (°C)" if i == len(classes) - 1 else "", fontsize=8)
            if i == 0:
                ax.set_title(period.replace("_", " "), fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{cls}\n{rows['unit'].iloc[0]}", fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7)
    synthetic = bool(rows["synthetic"].any()) if "synthetic" in rows else False
    fig.suptitle(f"Projected CH4 totals, {label} (bars: mean, whiskers: {CI_LABEL})"
                 + (" — SYNTHETIC" if synthetic else ""), fontsize=10)
    return fig


def change_figure(summary: pd.DataFrame) -> Figure:
    """Change of the mean versus control (%) by period, one bar per warming scenario."""
    rows, label = _headline_rows(summary)
    rows = rows[rows["scenario_c"] != 0]
    classes, periods, modes, scenarios = _layout(rows)
    fig = Figure(figsize=(4.2 * len(modes), 2.3 * len(classes)), layout="constrained")
    axes = fig.subplots(len(classes), len(modes), squeeze=False, sharey="row")
    x = np.arange(len(periods))
    width = 0.8 / max(len(scenarios), 1)
    colors = matplotlib.colormaps["OrRd"](np.linspace(0.35, 0.95, len(scenarios)))
    for i, cls in enumerate(classes):
        for j, mode in enumerate(modes):
            ax = axes[i, j]
            for k, s in enumerate(scenarios):
                r = (rows[(rows["flux_class"] == cls) & (rows["mode"] == mode) & (rows["scenario_c"] == s)]
                     .set_index("period").reindex(periods))
                ax.bar(x + (k - (len(scenarios) - 1) / 2) * width, r["change_pct"], width,
                       color=colors[k], label=f"+{s:g} °C")
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xticks(x, [p.replace("_", "\n") for p in periods], fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            ax.set_xlabel("period" if i == len(classes) - 1 else "", fontsize=8)
            if i == 0:
                ax.set_title(MODE_LABEL[mode], fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{cls}\nchange vs control (%)", fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, title="ΔT", title_fontsize=7)
    fig.suptitle(f"Change versus control by period, {label}", fontsize=10)
    return fig


def maps_figure(maps) -> Figure:
    """Annual net flux at control and its change at the warmest scenario, per mode (a grid run's
    ``projection_maps.nc`` Dataset)."""
    mean = maps["flux_mean"].sel(flux_class="total_net", period="annual").load()
    synthetic = maps.attrs.get("synthetic") == "true"
    unit = maps["flux_mean"].attrs.get("units", "")
    modes = [str(m) for m in mean["mode"].values]
    warm = float(mean["scenario_c"].max())
    fig = Figure(figsize=(4.6 * (1 + len(modes)), 3.6), layout="constrained")
    axes = fig.subplots(1, 1 + len(modes), squeeze=False)
    control = mean.sel(scenario_c=0.0, mode=modes[0])
    lim = float(np.nanmax(np.abs(control))) if np.isfinite(control).any() else 1.0
    im = axes[0, 0].pcolormesh(mean["lon"], mean["lat"], control, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=axes[0, 0], label=unit)
    axes[0, 0].set_title("annual net flux, control", fontsize=9)
    change = [(mean.sel(scenario_c=warm, mode=m) - mean.sel(scenario_c=0.0, mode=m)) for m in modes]
    lim = max((float(np.nanmax(np.abs(c))) for c in change if np.isfinite(c).any()), default=0.0) or 1.0
    for k, (m, c) in enumerate(zip(modes, change)):
        ax = axes[0, k + 1]
        im = ax.pcolormesh(mean["lon"], mean["lat"], c, cmap="PuOr_r", vmin=-lim, vmax=lim)
        fig.colorbar(im, ax=ax, label=unit)
        ax.set_title(f"change at +{warm:g} °C, {MODE_LABEL.get(m, m)}", fontsize=9)
    for ax in axes[0]:
        ax.set_xlabel("longitude (°E)", fontsize=8)
        ax.set_ylabel("latitude (°N)", fontsize=8)
    fig.suptitle("Gridded CH4 projection (mean over draws)" + (" — SYNTHETIC grid" if synthetic else ""),
                 fontsize=10)
    return fig


def make_figures(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """All projection figures of a saved run into ``out_dir`` (default RUN_DIR/figures)."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "figures"
    summary = storage.read_csv(run_dir / "projection_summary.csv", keep_default_na=True)
    figures = [(totals_figure(summary), TOTALS_FILE), (change_figure(summary), CHANGE_FILE)]
    if (run_dir / "projection_maps.nc").exists():
        maps = storage.read_datatree(run_dir / "projection_maps.nc").to_dataset()
        figures.append((maps_figure(maps), MAPS_FILE))
    return [storage.save_figure(fig, out_dir / name, dpi=DPI, bbox_inches="tight")
            for fig, name in figures]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.projection_figures", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="folder written by inference.project")
    p.add_argument("--out", type=Path, default=None, help="figure folder (default RUN_DIR/figures)")
    args = p.parse_args(argv)
    if not (args.run_dir / "projection_summary.csv").exists():
        print(f"error: {args.run_dir}:-:-: no projection_summary.csv — pass a folder written by "
              "python -m inference.project", file=sys.stderr)
        return 2
    for path in make_figures(args.run_dir, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
