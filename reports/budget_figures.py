"""Figure of the carbon-budget consistency run, drawn from its saved outputs only.

    python -m reports.budget_figures RUN_DIR [--variant NAME] [--format png|pdf]

Reads ``RUN_DIR/budget_draws.nc`` and ``RUN_DIR/budget_summary.csv`` (written by
``python -m inference.budget``) and writes ``RUN_DIR/figures/budget_consistency_<variant>.<fmt>``:
as Fig. 1 of Jian et al. (2022), two panels — GPP and soil respiration — each with the density of the direct
(literature) estimate and of the estimate implied by the other flux; the direct distribution's
interval (the project's convention) is drawn as a band and the part of the implied density inside
it (the agreement region) is shaded; medians and intervals are in the legend, the agreement
probability in the panel's title. Bayesian posteriors, when present, are overlaid as lines.
With a random-forest run, ``budget_rf_map.<fmt>`` maps the upscaled annual soil respiration.

``consistency_figure`` and ``rf_map_figure`` build the Figures from the draws tree (as
``BudgetResult.plot_consistency()`` / ``.plot_rf_map()`` do) without pyplot: neither shown nor
registered, and importing this module leaves matplotlib's backend alone. ``save_consistency`` and
``save_rf_map`` draw a saved run folder's figures into ``RUN_DIR/figures/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from data import storage
from data.errors import DataError
from models.conventions import CI_LABEL, CI_QUANTILES

DRAWS_FILE, SUMMARY_FILE = "budget_draws.nc", "budget_summary.csv"

COLOURS = {"direct": "#00BFC4", "implied": "#F8766D"}
UNIT = "Pg C yr$^{-1}$"
LABELS = {"GPP": ("GPP$_{lit}$ (non-model estimates)", "GPP implied by R$_S$"),
          "RS": ("R$_S$ (literature)", "R$_S$ implied by GPP")}


def _density(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from scipy import stats

    x = np.asarray(x, dtype=float)
    if x.size > 5000:  # the curve does not need every draw
        x = x[np.linspace(0, x.size - 1, 5000).astype(int)]
    return stats.gaussian_kde(x)(grid)


def _panel(ax, flux: str, direct: np.ndarray, implied: np.ndarray, p_agree: float | None,
           bayes: xr.Dataset | None) -> None:
    lo, _, hi = np.quantile(direct, CI_QUANTILES)
    both = np.concatenate([direct, implied])
    span = both.max() - both.min()
    grid = np.linspace(both.min() - 0.05 * span, both.max() + 0.05 * span, 600)
    f_direct, f_implied = _density(direct, grid), _density(implied, grid)
    ax.axvspan(lo, hi, color=COLOURS["direct"], alpha=0.10, lw=0)
    ax.fill_between(grid, f_direct, color=COLOURS["direct"], alpha=0.45, lw=0)
    ax.fill_between(grid, f_implied, color=COLOURS["implied"], alpha=0.45, lw=0)
    inside = (grid >= lo) & (grid <= hi)
    ax.fill_between(grid[inside], f_implied[inside], color=COLOURS["implied"], alpha=0.9, lw=0,
                    hatch="///", edgecolor="white")
    for key, values, label in (("direct", direct, LABELS[flux][0]),
                               ("implied", implied, LABELS[flux][1])):
        q_lo, q_mid, q_hi = np.quantile(values, CI_QUANTILES)
        ax.plot([], [], color=COLOURS[key], lw=6, alpha=0.6,
                label=f"{label}: {q_mid:.0f} ({q_lo:.0f}–{q_hi:.0f})")
    if bayes is not None:
        for key in ("direct", "implied"):
            var = f"{flux}_{key}"
            if var in bayes:
                ax.plot(grid, _density(bayes[var].values, grid), color=COLOURS[key], lw=1.5,
                        ls="--", label=f"Bayesian posterior, {key} (peak may be clipped)")
    name = "GPP" if flux == "GPP" else "Soil respiration R$_S$"
    title = name
    if p_agree is not None and np.isfinite(p_agree):
        title += f": P(agree) = {100 * p_agree:.1f} % (dark shading)"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"{name} ({UNIT})")
    ax.set_ylabel(f"probability density (per {UNIT})")
    # Headroom: the legend sits above the curves.
    ax.set_ylim(0, max(f_direct.max(), f_implied.max()) * 1.6)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.85, edgecolor="none",
              title=f"median ({CI_LABEL})", title_fontsize=7)


def _variant(draws: xr.Dataset, variant: str | None) -> str:
    variants = [str(v) for v in draws["variant"].values]
    variant = variant or variants[0]
    if variant not in variants:
        raise DataError(None, None, "--variant", f"variant '{variant}' is not in this run",
                        f"pick one of {', '.join(variants)}")
    return variant


def consistency_figure(draws: xr.DataTree, summary: pd.DataFrame, variant: str | None = None) -> Figure:
    """The two-panel GPP / soil-respiration consistency Figure (the caller saves it).

    ``draws``: the run's ``budget_draws.nc`` tree (group ``resampling``, optionally ``bayes``);
    ``summary``: its ``budget_summary.csv`` table; ``variant``: default the headline (first).
    """
    resampling = draws["resampling"].to_dataset()
    variant = _variant(resampling, variant)
    bayes = draws["bayes"].to_dataset() if "bayes" in draws.children else None
    fig = Figure(figsize=(7, 7.5))
    axes = fig.subplots(2, 1)
    sel = resampling.sel(variant=variant)
    for ax, flux in zip(axes, ("GPP", "RS")):
        row = summary[(summary["quantity"] == f"p_agree_{flux}") & (summary["variant"] == variant)
                      & (summary["method"] == "resampling")]
        p = float(row["median"].iloc[0]) if len(row) else None
        _panel(ax, flux, sel[f"{flux}_direct"].values, sel[f"{flux}_implied"].values, p, bayes)
    axes[0].set_title(f"Variant '{variant}' · {axes[0].get_title()}", fontsize=10)
    fig.suptitle(f"Light band: {CI_LABEL} of the direct estimate", fontsize=9)
    fig.tight_layout()
    return fig


def rf_map_figure(draws: xr.DataTree) -> Figure | None:
    """The map of random-forest upscaled annual soil respiration (None without the RF part)."""
    from models.budget import PUBLISHED

    if "rf_map" not in draws.children:
        return None
    ds = draws["rf_map"].to_dataset()
    totals = draws["rf"].to_dataset()["tree_total"].values
    lo, mid, hi = np.quantile(totals, CI_QUANTILES)
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    # rasterised: drawn as vectors, one path per grid cell, the PDF took ~40 s to write (1 s now)
    im = ax.pcolormesh(ds["lon"], ds["lat"], ds["rs_annual"], shading="auto", cmap="YlOrBr",
                       rasterized=True)
    fig.colorbar(im, ax=ax, label="annual R$_S$ (g C m$^{-2}$ yr$^{-1}$)")
    ax.set_title(f"Random-forest upscaled soil respiration: {mid:.0f} ({lo:.0f}–{hi:.0f}) "
                 f"Pg C yr$^{{-1}}$ ({CI_LABEL}; Jian et al. 2022: {PUBLISHED['RS_rf_global'][0]:.0f})",
                 fontsize=9)
    ax.set_xlabel("Longitude (°E)")
    ax.set_ylabel("Latitude (°N)")
    fig.tight_layout()
    return fig


def _read_draws(run_dir: Path) -> xr.DataTree:
    path = Path(run_dir) / DRAWS_FILE
    if not path.exists():
        raise DataError(path, None, None, "file not found", "run python -m inference.budget first")
    return storage.read_datatree(path)


def save_consistency(run_dir: str | Path, variant: str | None = None, fmt: str = "png") -> Path:
    """The consistency figure of a saved budget run folder, as
    ``RUN_DIR/figures/budget_consistency_<variant>.<fmt>``; returns its path."""
    run_dir = Path(run_dir)
    draws = _read_draws(run_dir)
    variant = _variant(draws["resampling"].to_dataset(), variant)
    fig = consistency_figure(draws, storage.read_csv(run_dir / SUMMARY_FILE), variant)
    return storage.save_figure(fig, run_dir / "figures" / f"budget_consistency_{variant}.{fmt}", dpi=150)


def save_rf_map(run_dir: str | Path, fmt: str = "png") -> Path | None:
    """The random-forest map of a saved budget run folder as ``RUN_DIR/figures/budget_rf_map.<fmt>``
    (None when the run has no random-forest part)."""
    fig = rf_map_figure(_read_draws(Path(run_dir)))
    if fig is None:
        return None
    return storage.save_figure(fig, Path(run_dir) / "figures" / f"budget_rf_map.{fmt}", dpi=150)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.budget_figures", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="output folder of python -m inference.budget")
    p.add_argument("--variant", default=None, help="resampling variant to draw (default: the headline)")
    p.add_argument("--format", default="png", choices=["png", "pdf", "svg"])
    args = p.parse_args(argv)
    try:
        print(save_consistency(args.run_dir, args.variant, args.format))
        rf = save_rf_map(args.run_dir, args.format)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if rf is not None:
        print(rf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
