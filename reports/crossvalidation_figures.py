"""Figure of the leave-one-site-out check (tpflux.crossvalidate_ea): the PIT histogram."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy import stats

from models.conventions import CI_LABEL, CI_QUANTILES


def pit_histogram(pit: np.ndarray, n_bins: int = 10) -> Figure:
    """Histogram of probability integral transforms with the band of a uniform bin count:
    ∪-shaped when the predictive intervals are too narrow, ∩-shaped when too wide, sloped when
    the predictions are biased."""
    fig = Figure(figsize=(5.0, 3.4))
    ax = fig.subplots()
    n = len(pit)
    counts, edges = np.histogram(pit, bins=n_bins, range=(0.0, 1.0))
    lo, hi = stats.binom.ppf([CI_QUANTILES[0], CI_QUANTILES[2]], max(n, 1), 1.0 / n_bins)
    ax.axhspan(lo, hi, color="0.85", label=f"{CI_LABEL} of a uniform bin count")
    ax.axhline(n / n_bins, color="0.4", lw=0.8)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:blue",
           edgecolor="white", label=f"held-out groups (n = {n})")
    ax.set_xlim(0, 1)
    ax.set_xlabel("PIT = P(predicted < observed mean ln|F|), unitless")
    ax.set_ylabel("site × class × season groups (count)", fontsize=9)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts
    ax.set_title("Leave-one-site-out new-site predictions", fontsize=10)
    ax.set_ylim(0, max(counts.max(), hi) * 1.35)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
