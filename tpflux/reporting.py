"""``build_report``: the HTML report, figures and tables of saved run folders."""

from __future__ import annotations

from pathlib import Path


def build_report(run) -> Path:
    """Write ``report.html``, ``figures/`` and ``tables/`` into a run folder (a path, or a result
    object that was saved: a fit, with its held-out check when ``RUN_DIR/crossvalidation`` holds
    one, a season comparison, …); returns the report's path."""
    from reports.build import build

    folder = getattr(run, "path", None) or run
    return build(Path(folder))
