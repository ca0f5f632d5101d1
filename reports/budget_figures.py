"""Figure of the carbon-budget consistency run, drawn from its saved outputs only.

    python -m reports.budget_figures RUN_DIR [--variant NAME] [--format png|pdf]

Reads ``RUN_DIR/budget_draws.nc`` and ``RUN_DIR/budget_summary.csv`` (written by
``python -m inference.budget``) and writes ``RUN_DIR/figures/budget_consistency_<variant>.<fmt>``:
as Fig. 1 of Jian et al. (2022), two panels — GPP and soil respiration — each with the density of the direct
(literature) estimate and of the estimate implied by the other flux; the direct distribution's 95 %
interval is drawn as a band and the part of the implied density inside it (the agreement region) is
shaded; medians, intervals and the agreement probability are printed on the panel. Bayesian
posteriors, when present, are overlaid as lines. With a random-forest run, ``budget_rf_map.<fmt>``
maps the upscaled annual soil respiration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from models.conventions import CI_LABEL, CI_QUANTILES

COLOURS = {"direct": "#00BFC4", "implied": "#F8766D"}
LABELS = {"GPP": ("GPP$_{lit}$ (remote sensing)", "GPP implied by R$_S$"),
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
    text = []
    for key, values, label in (("direct", direct, LABELS[flux][0]),
                               ("implied", implied, LABELS[flux][1])):
        q_lo, q_mid, q_hi = np.quantile(values, CI_QUANTILES)
        ax.plot([], [], color=COLOURS[key], lw=6, alpha=0.6, label=label)
        text.append(f"{label}: {q_mid:.0f} ({q_lo:.0f}–{q_hi:.0f})")
    if bayes is not None:
        for key in ("direct", "implied"):
            name = f"{flux}_{key}"
            if name in bayes:
                ax.plot(grid, _density(bayes[name].values, grid), color=COLOURS[key], lw=1.5,
                        ls="--", label=f"Bayesian posterior ({key}; peak may be clipped)")
    if p_agree is not None and np.isfinite(p_agree):
        text.append(f"P(agree) = {100 * p_agree:.1f} % (shaded)")
    ax.text(0.02, 0.97, "\n".join(text), transform=ax.transAxes, va="top", fontsize=8)
    ax.set_xlabel(f"{'GPP' if flux == 'GPP' else 'Soil respiration R$_S$'} (Pg C yr$^{{-1}}$)")
    ax.set_ylabel("Density")
    ax.set_ylim(0, max(f_direct.max(), f_implied.max()) * 1.35)
    ax.legend(loc="upper right", fontsize=7, frameon=False)


def consistency_figure(run_dir: Path, variant: str | None = None, fmt: str = "png") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tree = xr.open_datatree(run_dir / "budget_draws.nc")
    draws = tree["resampling"].to_dataset()
    variant = variant or str(draws["variant"].values[0])
    if variant not in draws["variant"].values:
        raise SystemExit(f"error: variant '{variant}' not in this run "
                         f"({', '.join(map(str, draws['variant'].values))})")
    summary = pd.read_csv(run_dir / "budget_summary.csv")
    bayes = tree["bayes"].to_dataset() if "bayes" in tree.children else None
    fig, axes = plt.subplots(2, 1, figsize=(7, 7.5))
    for ax, flux in zip(axes, ("GPP", "RS")):
        sel = draws.sel(variant=variant)
        row = summary[(summary["quantity"] == f"p_agree_{flux}") & (summary["variant"] == variant)
                      & (summary["method"] == "resampling")]
        p = float(row["median"].iloc[0]) if len(row) else None
        _panel(ax, flux, sel[f"{flux}_direct"].values, sel[f"{flux}_implied"].values, p, bayes)
    axes[0].set_title(f"Variant '{variant}'; band: {CI_LABEL} of the direct estimate", fontsize=8)
    fig.tight_layout()
    out = run_dir / "figures" / f"budget_consistency_{variant}.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    tree.close()
    return out


def rf_map_figure(run_dir: Path, fmt: str = "png") -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tree = xr.open_datatree(run_dir / "budget_draws.nc")
    if "rf_map" not in tree.children:
        return None
    ds = tree["rf_map"].to_dataset()
    totals = tree["rf"].to_dataset()["tree_total"].values
    lo, mid, hi = np.quantile(totals, CI_QUANTILES)
    fig, ax = plt.subplots(figsize=(8, 4))
    im = ax.pcolormesh(ds["lon"], ds["lat"], ds["rs_annual"], shading="auto", cmap="YlOrBr")
    fig.colorbar(im, ax=ax, label="annual R$_S$ (g C m$^{-2}$ yr$^{-1}$)")
    ax.set_title(f"Random-forest upscaled soil respiration: {mid:.0f} ({lo:.0f}–{hi:.0f}) "
                 "Pg C yr$^{-1}$", fontsize=9)
    ax.set_xlabel("Longitude")
    ax.set_ylabel("Latitude")
    out = run_dir / "figures" / f"budget_rf_map.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)
    tree.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.budget_figures", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="output folder of python -m inference.budget")
    p.add_argument("--variant", default=None, help="resampling variant to draw (default: the headline)")
    p.add_argument("--format", default="png", choices=["png", "pdf", "svg"])
    args = p.parse_args(argv)
    if not (args.run_dir / "budget_draws.nc").exists():
        print(f"error: {args.run_dir}/budget_draws.nc not found — run python -m inference.budget first",
              file=sys.stderr)
        return 2
    print(consistency_figure(args.run_dir, args.variant, args.format))
    rf = rf_map_figure(args.run_dir, args.format)
    if rf is not None:
        print(rf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
