"""Scoring tests share each scenario's anatomy, generated at 2 mm once per test session."""

from __future__ import annotations

import pytest

from scenarios.schema import Scenario

TEST_SPACING_MM = 2.0


@pytest.fixture(scope="session")
def anatomy_for(spinesim_home):
    """``anatomy_for(scenario)``: the scenario's anatomy on a 2 mm grid (the scenario's own source with
    only the grid changed), cached by its parameters for the whole session."""
    cache = {}

    def load(scenario: Scenario):
        key = scenario.anatomy.spine_parameters(spacing_mm=TEST_SPACING_MM).cache_key()
        if key not in cache:
            cache[key] = scenario.anatomy.load(spacing_mm=TEST_SPACING_MM)
        return cache[key]

    return load
