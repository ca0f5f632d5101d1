"""Figure of a model comparison (compare_seasons, compare_covariate): ΔELPD of every model to the best."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.conventions import ELPD_DISTINCT_SE as SE_BAR
from reports.tables import label


def elpd_difference(summary: pd.DataFrame, by_class: pd.DataFrame | None = None,
                    ylabel: str = "season scheme / residuals") -> Figure:
    """One panel for all observations and one per flux class: each model's ELPD difference to
    the panel's best model (points) with ±``SE_BAR`` standard errors (lines)."""
    panels = [("all classes", summary)]
    if by_class is not None and len(by_class):
        panels += [(label(c), part) for c, part in by_class.groupby("flux_class", sort=True)]
    name = "model" if "model" in summary else "scheme"
    models = list(summary.sort_values("rank")[name])
    height = 0.9 + 0.32 * len(models)
    fig = Figure(figsize=(3.2 * len(panels) + 1.6, height), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True, squeeze=False)[0])
    y = np.arange(len(models))[::-1]
    for ax, (title, part) in zip(axes, panels):
        rows = part.set_index(name).reindex(models)
        ax.errorbar(rows["elpd_diff"], y, xerr=SE_BAR * rows["dse"].fillna(0), fmt="o", color="tab:blue",
                    ecolor="tab:blue", capsize=2, ms=4)
        ax.axvline(0.0, color="0.4", ls="--", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("ΔELPD to the best model (nats)")
    axes[0].set_yticks(y, models)
    axes[0].set_ylabel(ylabel)
    return fig
