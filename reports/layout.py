"""Fixed layouts for the report's grid figures: panels of a set size, margins and gaps in inches.

Matplotlib's constrained layout measures every tick label of every panel before a figure is drawn,
which costs about as much as drawing the ticks a second time. The grid figures have predictable
decorations (a title per panel, tick labels, axis labels on the outer panels, a figure title), so
their room is reserved here in inches instead; the tests check that no text of a figure leaves it
or runs into a neighbouring panel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


@dataclasses.dataclass(frozen=True)
class Margins:
    """Room around and between the panels, in inches."""

    left: float = 0.95    # y label and y tick labels of the first column
    right: float = 0.2
    top: float = 0.65     # figure title and the first row's panel titles
    bottom: float = 0.6   # x tick labels and x label of the last row
    wgap: float = 0.65    # y tick labels of the next column
    hgap: float = 0.75    # x tick labels of a row and the next row's titles


# Ticks per axis at most: a tick label is the costliest thing a panel draws, and five read as well.
TICKS = 5
TITLE_SIZE = 11  # points, of a figure title


def locator(ticks: int = TICKS) -> MaxNLocator:
    """At most about ``ticks`` ticks, at steps of 1, 2 or 5 times a power of ten."""
    return MaxNLocator(ticks, steps=[1, 2, 5, 10])


def _sizes(size, n: int) -> list[float]:
    return [float(size)] * n if np.ndim(size) == 0 else [float(x) for x in size]


def grid(rows: int, cols: int, panel: tuple[float | Sequence[float], float | Sequence[float]],
         margins: Margins = Margins(), ticks: int = TICKS, title: str | None = None,
         **subplots) -> tuple[Figure, np.ndarray]:
    """A figure of ``rows`` × ``cols`` panels of ``panel`` (width, height) inches each, the width
    optionally one per column and the height one per row; the figure's size follows from the
    panels and ``margins``, widened where needed to hold the figure ``title`` (drawn by
    ``suptitle``); at most about ``ticks`` ticks per axis. Returns (figure, 2-D array of axes)."""
    widths, heights = (_sizes(size, n) for size, n in zip(panel, (cols, rows)))
    m = margins
    width = m.left + m.right + sum(widths) + (cols - 1) * m.wgap
    if title is not None:
        short = max(0.0, text_width(title.splitlines(), TITLE_SIZE) + 0.3 - width)
        widths = [w + short / cols for w in widths]
        width += short
    height = m.top + m.bottom + sum(heights) + (rows - 1) * m.hgap
    fig = Figure(figsize=(width, height))
    # GridSpec gaps are fractions of the mean panel size.
    axes = fig.subplots(rows, cols, squeeze=False, **subplots,
                        gridspec_kw={"left": m.left / width, "right": 1 - m.right / width,
                                     "bottom": m.bottom / height, "top": 1 - m.top / height,
                                     "wspace": m.wgap / np.mean(widths), "hspace": m.hgap / np.mean(heights),
                                     "width_ratios": widths, "height_ratios": heights})
    for ax in axes.flat:
        ax.xaxis.set_major_locator(locator(ticks))
        ax.yaxis.set_major_locator(locator(ticks))
    if title is not None:
        suptitle(fig, title)
    return fig, axes


def text_width(texts, fontsize: float) -> float:
    """Width in inches of the widest of ``texts`` in the default font (for a margin that must
    hold tick labels whose length the data decide)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    prop = FontProperties(size=fontsize)
    return max((text_to_path.get_text_width_height_descent(str(t), prop, ismath=False)[0] for t in texts),
               default=0.0) / 72


def suptitle(fig: Figure, text: str, fontsize: float = TITLE_SIZE, **kwargs):
    """The figure title, 0.1 inch below the top edge (whatever the figure's height)."""
    return fig.suptitle(text, y=1 - 0.1 / fig.get_figheight(), va="top", fontsize=fontsize, **kwargs)
