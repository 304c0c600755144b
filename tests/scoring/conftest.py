"""Scoring tests share their scripted attempts' reports: each (case, script) is played and scored once per
test session."""

from __future__ import annotations

import pytest

from scenarios.schema import library_scenarios
from scoring.report import score
from simulator.session.fold import Session


@pytest.fixture(scope="session")
def graded(anatomy_for):
    """``graded(case, make_log)``: (log, report) of the attempt ``make_log(session)`` scripts at library
    case ``case``, scored once for the whole session."""
    cache = {}
    library = library_scenarios()

    def grade(scenario_id, make_log):
        key = (scenario_id, make_log.__module__, make_log.__name__)
        if key not in cache:
            scenario = library[scenario_id]
            session = Session(scenario, anatomy_for(scenario))
            log = make_log(session)
            cache[key] = log, score(scenario, session.anatomy, log)
        return cache[key]

    return grade
