"""Shared fixtures: real data through the registry, simulated data with known truth, mock sampling."""

from __future__ import annotations

import pytest

from tests.helpers import mock_sampling


@pytest.fixture
def mock_pymc_sample(monkeypatch):
    """Replace NUTS by prior draws (plus the sample stats the pipeline reads): seconds, not minutes."""
    mock_sampling(monkeypatch)
    yield


@pytest.fixture(scope="session")
def synthetic_sites():
    """(Observations, truth) from the simulator, seed 0."""
    from data.synthetic import simulate_observations

    return simulate_observations(0)
