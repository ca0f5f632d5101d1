"""Figures of a projection: from its summary table and maps, or from a saved run folder.

    python -m reports.projection_figures RUN_DIR [--out DIR]

* ``projection_totals.png``: annual totals against soil warming ΔT, one panel per flux class
  (and net), a line with its equal-tailed interval band per mode.
* ``projection_change.png``: the paired annual change versus control against ΔT with its interval
  band, one panel per flux class, both modes; panels whose modes disagree in sign say so.
* ``projection_change_by_period.png``: the paired change at the warmest ΔT by period (annual,
  growing, non-growing, spring thaw, autumn freeze) with intervals — where warming acts most.
* ``projection_maps.png`` (grid runs): annual net flux at control and its change at the warmest
  scenario, per mode.

Withheld rows (incomplete records, RF-direct without cross-site skill) are not drawn; their panel
says so. The figure functions take the ``projection_summary.csv`` table or the
``projection_maps.nc`` Dataset and return a matplotlib Figure, neither drawn nor registered with
pyplot (the backend is left alone); ``make_figures`` saves them for a run folder.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from data import storage
from models.conventions import CI_LABEL

PERIOD_ORDER = ("annual", "growing", "non-growing", "spring_thaw", "autumn_freeze")
MODE_LABEL = {"arrhenius": "posterior scaling", "rf": "RF-direct"}  # display order
MODE_COLOR = {"arrhenius": "C0", "rf": "C1"}
TOTALS_FILE, CHANGE_FILE, MAPS_FILE = "projection_totals.png", "projection_change.png", "projection_maps.png"
PERIOD_FILE = "projection_change_by_period.png"
DPI = 130
MAX_COLUMNS = 3
SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def unit_label(unit: str) -> str:
    """``g CH4 m-2 yr-1`` → ``g CH₄ m⁻² yr⁻¹``."""
    words = []
    for w in str(unit).split():
        base = w.rstrip("-0123456789")
        power = w[len(base):]
        words.append("CH₄" if w == "CH4" else base + power.translate(SUPERSCRIPTS) if base else w)
    return " ".join(words)


def _headline_rows(summary: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows a figure shows: the region, or the mean over (complete) sites."""
    if "region" in summary.columns:
        where = summary["region"].iloc[0]
        return summary[summary["region"] == where], f"region {where}"
    return summary[summary["site"] == "all_sites_mean"], "mean over complete sites"


def _labels(rows: pd.DataFrame) -> list[str]:
    """Classes first, then the nets (total_net last)."""
    labels = sorted(rows["flux_class"].unique())
    return sorted(labels, key=lambda c: (c == "total_net", c.endswith("_net"), c))


def _panels(n: int, width: float = 3.5, height: float = 2.7) -> tuple[Figure, list]:
    ncols = min(MAX_COLUMNS, max(n, 1))
    nrows = math.ceil(max(n, 1) / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _mode_rows(rows: pd.DataFrame, label: str, mode: str, period: str = "annual") -> pd.DataFrame:
    return rows[(rows["flux_class"] == label) & (rows["mode"] == mode)
                & (rows["period"] == period)].sort_values("scenario_c")


def _withheld_note(rows: pd.DataFrame, label: str, modes) -> str:
    """What the panel of ``label`` leaves out, and why."""
    notes = []
    for mode in modes:
        r = _mode_rows(rows, label, mode)
        if "withheld" in r and len(r) and (r["withheld"] != "no").all():
            why = r["withheld"].iloc[0].replace("incomplete_record", "incomplete records").replace(
                "no_skill", f"no cross-site skill (NSE {r['forest_skill'].iloc[0]:.2f})").replace(";", ", ")
            notes.append(f"{MODE_LABEL[mode]} withheld: {why}")
    r = rows[(rows["flux_class"] == label) & (rows["period"] == "annual")]
    if "sign_disagreement" in r and r["sign_disagreement"].isin(["means", "intervals"]).any():
        kind = "intervals" if (r["sign_disagreement"] == "intervals").any() else "means"
        notes.append(f"modes disagree in sign of the change ({kind})")
    return "\n".join(notes)


def _title(ax, rows: pd.DataFrame, label: str, modes, sites: bool = True) -> None:
    """The label (and the sites an annual mean averages), then what the panel leaves out or
    flags."""
    r = rows[(rows["flux_class"] == label) & (rows["period"] == "annual")]
    sites = r["n_sites"].dropna() if sites and "n_sites" in r else pd.Series(dtype=float)
    note = _withheld_note(rows, label, modes)
    lines = note.count("\n") + 1 if note else 0
    ax.set_title(label.replace("_", " ") + (f" (n = {int(sites.iloc[0])} sites)" if len(sites) else ""),
                 fontsize=8.5, pad=5 + 9 * lines)
    if note:
        ax.text(0.5, 1.01, note, transform=ax.transAxes, ha="center", va="bottom", fontsize=6.5,
                color="firebrick" if "disagree" in note else "0.3")


def _axes_style(ax, ylabel: str, xticks=None) -> None:
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    if xticks is not None:
        ax.set_xticks(xticks, [f"{t:g}" for t in xticks])
        ax.set_xlabel("soil warming ΔT (°C)", fontsize=8)


def _legend(fig: Figure, axes) -> None:
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=len(handles), fontsize=7.5)


def _line_panels(summary: pd.DataFrame, value: str, low: str, high: str, ylabel: str,
                 title: str) -> Figure:
    """One panel per label: ``value`` against ΔT with the ``low``–``high`` band, per mode."""
    rows, where = _headline_rows(summary)
    labels = _labels(rows)
    modes = [m for m in MODE_LABEL if m in set(rows["mode"])]
    unit = unit_label(rows["unit"].iloc[0]) if len(rows) else ""
    fig, axes = _panels(len(labels))
    for ax, label in zip(axes, labels):
        for mode in modes:
            r = _mode_rows(rows, label, mode).dropna(subset=[value])
            if not len(r):
                continue
            no_skill = bool(r["no_skill"].astype(bool).any()) if "no_skill" in r else False
            ax.fill_between(r["scenario_c"], r[low], r[high], color=MODE_COLOR[mode], alpha=0.2, lw=0)
            ax.plot(r["scenario_c"], r[value], color=MODE_COLOR[mode], marker="o", ms=3,
                    ls="--" if no_skill and mode == "rf" else "-",
                    label=MODE_LABEL[mode] + (" (no forest skill)" if no_skill and mode == "rf" else ""))
        if value != "total":
            ax.axhline(0, color="k", lw=0.6)
        _title(ax, rows, label, modes)
        _axes_style(ax, f"{ylabel} ({unit})", sorted(rows["scenario_c"].unique()))
    _legend(fig, axes)
    synthetic = bool(rows["synthetic"].astype(bool).any()) if "synthetic" in rows else False
    fig.suptitle(f"{title}, {where} (lines: mean, bands: {CI_LABEL})"
                 + (" — SYNTHETIC" if synthetic else ""), fontsize=9.5)
    return fig


def totals_figure(summary: pd.DataFrame) -> Figure:
    """Annual totals against ΔT with their intervals, one panel per flux class, per mode."""
    return _line_panels(summary, "total", "ci_low", "ci_high", "annual total", "Projected annual CH₄")


def change_figure(summary: pd.DataFrame) -> Figure:
    """Paired annual change versus control against ΔT with its interval, one panel per class."""
    return _line_panels(summary, "change_vs_control", "change_ci_low", "change_ci_high",
                        "change vs control", "Annual change versus control (paired draws)")


def period_change_figure(summary: pd.DataFrame) -> Figure:
    """Paired change at the warmest ΔT by period, with intervals, one panel per flux class."""
    rows, where = _headline_rows(summary)
    warm = rows["scenario_c"].max()
    rows = rows[rows["scenario_c"] == warm]
    labels = _labels(rows)
    modes = [m for m in MODE_LABEL if m in set(rows["mode"])]
    periods = [p for p in PERIOD_ORDER if p in set(rows["period"])]
    unit = unit_label(rows["unit"].iloc[0]) if len(rows) else ""
    fig, axes = _panels(len(labels))
    x = np.arange(len(periods))
    for ax, label in zip(axes, labels):
        for k, mode in enumerate(modes):
            r = (rows[(rows["flux_class"] == label) & (rows["mode"] == mode)]
                 .set_index("period").reindex(periods))
            shift = (k - (len(modes) - 1) / 2) * 0.22
            err = np.vstack([r["change_vs_control"] - r["change_ci_low"],
                             r["change_ci_high"] - r["change_vs_control"]])
            ax.errorbar(x + shift, r["change_vs_control"], yerr=err, fmt="o", ms=3.5, capsize=2,
                        color=MODE_COLOR[mode], label=MODE_LABEL[mode])
        ax.axhline(0, color="k", lw=0.6)
        _title(ax, rows, label, modes, sites=False)
        _axes_style(ax, f"change at +{warm:g} °C ({unit})")
        ticks = [p.replace("_", "\n").replace("non-", "non-\n") for p in periods]
        if "n_sites" in rows:  # each period averages the sites complete for it
            n = (rows[rows["flux_class"] == label].drop_duplicates("period").set_index("period")
                 ["n_sites"].reindex(periods))
            ticks = [t + (f"\nn = {int(k)}" if pd.notna(k) else "") for t, k in zip(ticks, n)]
        ax.set_xticks(x, ticks, fontsize=7)
        ax.set_xlabel("period", fontsize=8)
    _legend(fig, axes)
    fig.suptitle(f"Change versus control at +{warm:g} °C by period, {where}\n(points: mean of paired "
                 f"changes, bars: {CI_LABEL}; n: complete sites averaged in each period)",
                 fontsize=9.5)
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
    fig.colorbar(im, ax=axes[0, 0], label=unit_label(unit))
    axes[0, 0].set_title("annual net flux, control", fontsize=9)
    change = [(mean.sel(scenario_c=warm, mode=m) - mean.sel(scenario_c=0.0, mode=m)) for m in modes]
    lim = max((float(np.nanmax(np.abs(c))) for c in change if np.isfinite(c).any()), default=0.0) or 1.0
    for k, (m, c) in enumerate(zip(modes, change)):
        ax = axes[0, k + 1]
        im = ax.pcolormesh(mean["lon"], mean["lat"], c, cmap="PuOr_r", vmin=-lim, vmax=lim)
        fig.colorbar(im, ax=ax, label=unit_label(unit))
        ax.set_title(f"change at +{warm:g} °C, {MODE_LABEL.get(m, m)}", fontsize=9)
    for ax in axes[0]:
        ax.set_xlabel("longitude (°E)", fontsize=8)
        ax.set_ylabel("latitude (°N)", fontsize=8)
    fig.suptitle("Gridded CH₄ projection (mean over draws)" + (" — SYNTHETIC grid" if synthetic else ""),
                 fontsize=10)
    return fig


def make_figures(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """All projection figures of a saved run into ``out_dir`` (default RUN_DIR/figures)."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "figures"
    summary = storage.read_csv(run_dir / "projection_summary.csv", keep_default_na=True)
    figures = [(totals_figure(summary), TOTALS_FILE), (change_figure(summary), CHANGE_FILE),
               (period_change_figure(summary), PERIOD_FILE)]
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
