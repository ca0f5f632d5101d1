"""tpflux: Bayesian hierarchical models of the temperature dependence of greenhouse-gas fluxes.

    import tpflux
    fit = tpflux.fit_ea()                      # real default data: FLUXNET-CH4 wetlands + Hongyuan
    fit.summary()                              # the table ea_summary.csv holds
    fit.diagnostics["verdict"]                 # the convergence gate
    fit.plot_temperature_response()            # a matplotlib Figure, not drawn or saved
    fit.save("run"); tpflux.load("run")        # the run folder the command line writes

Each job of the command line (``python -m inference.<job>``) is one function here returning a
result object with ``.datatree``, ``.summary()``, ``.diagnostics``, ``.config`` and ``.save()``.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _load_layers() -> None:
    """Import the suite's own ``data``, ``models``, ``inference`` and ``reports`` packages.

    They sit beside this package (in the checkout, or in site-packages). A working directory with
    folders of the same names comes first on ``sys.path`` and would shadow them, so they are
    imported from this package's own root; a same-named module imported earlier is an error.
    """
    root = str(Path(__file__).resolve().parent.parent)
    for name in ("data", "models", "inference", "reports"):
        module = sys.modules.get(name)
        if module is not None:
            where = Path(getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), ""))
            if not str(where.resolve()).startswith(root):
                raise ImportError(f"a module named '{name}' from {where} was imported before tpflux, "
                                  f"which needs its own '{name}' package from {root}; import tpflux first")
            continue
        sys.path.insert(0, root)
        try:
            importlib.import_module(name)
        finally:
            sys.path.remove(root)


_load_layers()

from tpflux.activation import ActivationEnergyConfig, ActivationEnergyFit, fit_ea  # noqa: E402
from tpflux.carbon_budget import BudgetResult, BudgetRunConfig, budget  # noqa: E402
from tpflux.io import load, load_observations  # noqa: E402
from tpflux.meta import ResponseRatioConfig, ResponseRatioFit, fit_rr  # noqa: E402
from tpflux.projection import Projection, ProjectionConfig, project  # noqa: E402
from tpflux.reporting import build_report  # noqa: E402
from tpflux.seasons import SeasonComparison, SeasonComparisonConfig, compare_seasons  # noqa: E402

try:
    __version__ = version("tpflux")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "load_observations",
    "fit_ea",
    "fit_rr",
    "project",
    "budget",
    "compare_seasons",
    "load",
    "build_report",
    "ActivationEnergyConfig",
    "ActivationEnergyFit",
    "ResponseRatioConfig",
    "ResponseRatioFit",
    "ProjectionConfig",
    "Projection",
    "BudgetRunConfig",
    "BudgetResult",
    "SeasonComparisonConfig",
    "SeasonComparison",
]
