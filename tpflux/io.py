"""Reading: observation tables from the registry or a user's files, and saved run folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data import registry, storage
from data.errors import DataError
from data.table import Observations, validate_observations


def load_observations(data: str | Path | None = None, *, dataset: str | None = "ch4-sites",
                      flux_column: str = "FCH4", per_chamber: bool = True, seed: int = 0) -> Observations:
    """The canonical observation table (``.table``) with what was dropped and why.

    ``data``: a FLUXNET-CH4 file or folder, a COSORE dataset folder or a chamber CSV; None uses
    ``dataset`` from the registry (``$TPFLUX_DATA``, else ``../shared/data``). ``seed`` only
    matters for the simulator (``dataset="synthetic"``).
    """
    return registry.load_observations(None if data is not None else dataset, data,
                                      flux_column=flux_column, per_chamber=per_chamber, seed=seed)


def observations_for(data: pd.DataFrame | Observations | None, config) -> Observations:
    """Observations for a fit: an in-memory table or ``Observations`` as given (validated), else
    what the config names (``config.data`` path or ``config.dataset``)."""
    if isinstance(data, Observations):
        return data
    if isinstance(data, pd.DataFrame):
        return Observations(table=validate_observations(data, source="table"))
    if data is not None:
        raise DataError(None, None, "data", f"cannot read observations from a {type(data).__name__}",
                        "pass a path, a canonical table (pandas DataFrame) or Observations")
    return load_observations(config.data, dataset=config.dataset, flux_column=config.flux_column,
                             per_chamber=config.per_chamber, seed=config.seed)


def result_classes() -> dict:
    """Job name → result class, for ``load``."""
    from tpflux.activation import ActivationEnergyFit
    from tpflux.carbon_budget import BudgetResult
    from tpflux.covariates import CovariateComparison
    from tpflux.crossvalidation import CrossValidation
    from tpflux.meta import ResponseRatioFit
    from tpflux.projection import Projection
    from tpflux.seasons import SeasonComparison

    classes = (ActivationEnergyFit, ResponseRatioFit, Projection, BudgetResult, SeasonComparison,
               CrossValidation, CovariateComparison)
    return {cls.JOB: cls for cls in classes}


def load(path: str | Path):
    """A saved run folder as the result object of the job that wrote it (``fit.save(path)`` or the
    command line's ``--out``); ``tpflux.load(p).summary()`` equals the saved run's ``summary()``."""
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(folder, None, None, "run folder does not exist",
                        "pass a folder written by fit.save() or a tpflux job's --out")
    marker = storage.read_marker(folder)
    if marker is not None:
        job = marker.get("job")
    else:
        from reports.load import detect_kind

        job = detect_kind(folder)
    classes = result_classes()
    if job not in classes:
        raise DataError(folder, None, None, f"run of an unknown job {job!r}",
                        "pass a folder written by a tpflux job")
    result = classes[job].load(folder)
    result.path = folder
    return result
