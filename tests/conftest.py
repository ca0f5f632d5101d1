"""Shared fixtures: real data through the registry, simulated data with known truth, mock sampling."""

from __future__ import annotations

import functools

import numpy as np
import pytest


@pytest.fixture
def mock_pymc_sample(monkeypatch):
    """Replace NUTS by prior draws (plus the sample stats the pipeline reads): seconds, not minutes."""
    import pymc as pm
    from pymc.testing import mock_sample

    stats = {"diverging": lambda size: np.zeros(size, dtype=bool),
             "tree_depth": lambda size: np.full(size, 3)}
    monkeypatch.setattr(pm, "sample", functools.partial(mock_sample, sample_stats=stats))
    yield


@pytest.fixture(scope="session")
def synthetic_sites():
    """(Observations, truth) from the simulator, seed 0."""
    from data.synthetic import simulate_observations

    return simulate_observations(0)
