"""Every library scenario can be done on its anatomy at the product's own resolution (1 mm).

The scoring tests use 2 mm anatomies for speed; a case that only works at 2 mm would still be broken
for every trainee, so the expert path is planned here on the anatomy the simulator really serves.
"""

import pytest

from scenarios.needles import NeedleSpec
from scenarios.schema import library_scenarios
from simulator.case.planner import plan_trajectory
from simulator.case.targets import target_for
from simulator.needle.trace import tracer_for

LIBRARY = library_scenarios()
_anatomies = {}


def served_anatomy(scenario):
    key = scenario.anatomy.spine_parameters().cache_key()
    if key not in _anatomies:
        _anatomies[key] = scenario.anatomy.load()
    return _anatomies[key]


@pytest.mark.slow
@pytest.mark.parametrize("scenario_id", sorted(LIBRARY))
def test_the_expert_path_exists_at_1_mm(scenario_id):
    scenario = LIBRARY[scenario_id]
    anatomy = served_anatomy(scenario)
    tracer = tracer_for(anatomy)
    target = target_for(scenario, anatomy, tracer)
    trajectory = plan_trajectory(tracer, target, scenario.needle.spec())
    tip = trajectory.entry + trajectory.depth_mm * trajectory.direction
    assert target.zone.contains(tip, tracer.structure_at(tip), trajectory.trace.segments[-1].tissue)
