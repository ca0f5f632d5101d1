"""Figures of a projection run, from its saved outputs only.

    python -m reports.projection_figures RUN_DIR [--out DIR]

* ``projection_totals.png``: totals with their 95 % intervals by scenario × period, one panel per
  flux class, the two modes side by side.
* ``projection_change.png``: change versus control (%) by period × scenario — where warming acts
  most (growing vs non-growing season, spring-thaw and autumn-freeze transitions).
* ``projection_maps.png`` (grid runs): annual net flux at control and its change at the warmest
  scenario, per mode.

Reads ``projection_summary.csv`` and, for maps, ``projection_maps.nc``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

PERIOD_ORDER = ("annual", "growing", "non-growing", "spring_thaw", "autumn_freeze")
MODE_LABEL = {"rf": "RF-direct", "arrhenius": "posterior scaling"}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=130, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _headline_rows(summary: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """The rows a figure shows: the region, or the mean over sites."""
    if "region" in summary.columns:
        where = summary["region"].iloc[0]
        return summary[summary["region"] == where], str(where), "region"
    return summary[summary["site"] == "all_sites_mean"], "mean over sites", "site"


def totals_figure(summary: pd.DataFrame, path: Path) -> Path:
    rows, label, _ = _headline_rows(summary)
    classes = sorted(rows["flux_class"].unique())
    periods = [p for p in PERIOD_ORDER if p in set(rows["period"])]
    modes = [m for m in MODE_LABEL if m in set(rows["mode"])]
    scenarios = sorted(rows["scenario_c"].unique())
    fig, axes = plt.subplots(len(classes), len(periods), figsize=(2.6 * len(periods), 2.2 * len(classes)),
                             squeeze=False, sharex=True, layout="constrained")
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
            if i == 0:
                ax.set_title(period.replace("_", " "), fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{cls}\n{rows['unit'].iloc[0]}", fontsize=7)
    axes[-1, 0].set_xlabel("soil warming ΔT (°C)", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7)
    synthetic = bool(rows["synthetic"].any()) if "synthetic" in rows else False
    fig.suptitle(f"Projected CH4 totals, {label} (bars: mean, whiskers: 95 % interval)"
                 + (" — SYNTHETIC" if synthetic else ""), fontsize=10)
    return _save(fig, path)


def change_figure(summary: pd.DataFrame, path: Path) -> Path:
    rows, label, _ = _headline_rows(summary)
    rows = rows[rows["scenario_c"] != 0]
    classes = sorted(rows["flux_class"].unique())
    periods = [p for p in PERIOD_ORDER if p in set(rows["period"])]
    modes = [m for m in MODE_LABEL if m in set(rows["mode"])]
    scenarios = sorted(rows["scenario_c"].unique())
    fig, axes = plt.subplots(len(classes), len(modes), figsize=(4.2 * len(modes), 2.3 * len(classes)),
                             squeeze=False, sharey="row", layout="constrained")
    x = np.arange(len(periods))
    width = 0.8 / max(len(scenarios), 1)
    colors = plt.cm.OrRd(np.linspace(0.35, 0.95, len(scenarios)))
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
            if i == 0:
                ax.set_title(MODE_LABEL[mode], fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{cls}\nchange vs control (%)", fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, title="ΔT", title_fontsize=7)
    fig.suptitle(f"Change versus control by period, {label}", fontsize=10)
    return _save(fig, path)


def maps_figure(maps_path: Path, path: Path) -> Path:
    import xarray as xr

    with xr.open_dataset(maps_path, engine="h5netcdf") as ds:
        mean = ds["flux_mean"].sel(flux_class="total_net", period="annual").load()
        synthetic = ds.attrs.get("synthetic") == "true"
        unit = ds["flux_mean"].attrs.get("units", "")
    modes = [str(m) for m in mean["mode"].values]
    warm = float(mean["scenario_c"].max())
    fig, axes = plt.subplots(1, 1 + len(modes), figsize=(4.6 * (1 + len(modes)), 3.6), squeeze=False,
                             layout="constrained")
    control = mean.sel(scenario_c=0.0, mode=modes[0])
    im = axes[0, 0].pcolormesh(mean["lon"], mean["lat"], control, cmap="RdBu_r",
                               vmin=-np.nanmax(np.abs(control)), vmax=np.nanmax(np.abs(control)))
    fig.colorbar(im, ax=axes[0, 0], label=unit)
    axes[0, 0].set_title("annual net flux, control", fontsize=9)
    change = [(mean.sel(scenario_c=warm, mode=m) - mean.sel(scenario_c=0.0, mode=m)) for m in modes]
    lim = max(float(np.nanmax(np.abs(c))) for c in change) or 1.0
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
    return _save(fig, path)


def make_figures(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """All projection figures of ``run_dir`` into ``out_dir`` (default RUN_DIR/figures)."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "figures"
    summary = pd.read_csv(run_dir / "projection_summary.csv")
    written = [totals_figure(summary, out_dir / "projection_totals.png"),
               change_figure(summary, out_dir / "projection_change.png")]
    if (run_dir / "projection_maps.nc").exists():
        written.append(maps_figure(run_dir / "projection_maps.nc", out_dir / "projection_maps.png"))
    return written


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
