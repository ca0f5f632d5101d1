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
import importlib.abc
import importlib.machinery
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# The suite's layers: top-level packages beside this one (in the checkout, or in site-packages).
_LAYERS = ("data", "models", "inference", "reports")
_ROOT = str(Path(__file__).resolve().parent.parent)


class _LayerFinder(importlib.abc.MetaPathFinder):
    """Find ``data``, ``models``, ``inference`` and ``reports`` beside tpflux, first of all finders.

    A working directory with folders of those names comes first on ``sys.path`` (notebooks,
    ``python -m``) and would otherwise shadow the suite's own packages."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in _LAYERS:
            return importlib.machinery.PathFinder.find_spec(fullname, [_ROOT])
        return None


def _install_layer_finder() -> None:
    for name in _LAYERS:
        module = sys.modules.get(name)
        if module is None:
            continue
        where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), "")
        if not str(Path(where).resolve()).startswith(_ROOT):
            raise ImportError(f"a module named '{name}' from {where} was imported before tpflux, which "
                              f"needs its own '{name}' package from {_ROOT}; import tpflux first")
    if not any(isinstance(f, _LayerFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LayerFinder())


_install_layer_finder()

# The public surface, imported on first use so that ``import tpflux`` stays light (and pymc-free).
_API = {
    "fit_ea": "activation", "ActivationEnergyConfig": "activation", "ActivationEnergyFit": "activation",
    "crossvalidate_ea": "crossvalidation", "CrossValidation": "crossvalidation",
    "fit_rr": "meta", "ResponseRatioConfig": "meta", "ResponseRatioFit": "meta",
    "project": "projection", "ProjectionConfig": "projection", "Projection": "projection",
    "budget": "carbon_budget", "BudgetRunConfig": "carbon_budget", "BudgetResult": "carbon_budget",
    "compare_seasons": "seasons", "SeasonComparisonConfig": "seasons", "SeasonComparison": "seasons",
    "compare_covariate": "covariates", "CovariateComparisonConfig": "covariates",
    "CovariateComparison": "covariates",
    "load": "io", "load_observations": "io", "build_report": "reporting",
}

try:
    __version__ = version("tpflux")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f"tpflux.{_API[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tpflux' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
