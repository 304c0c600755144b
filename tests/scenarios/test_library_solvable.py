"""Every library scenario can be done on its anatomy: on the case's own patient at the product's own
resolution (1 mm), and on patients drawn for attempts (each attempt draws its own: schema
``Scenario.patient_seeds``) at 2 mm.

The scoring tests use 2 mm anatomies for speed; a case that only works at 2 mm would still be broken
for every trainee, so the expert path is planned here on the 1 mm anatomy the simulator really serves:
every case on the built-in patient (one 1 mm patient, shared with the session's ``spine_1mm``) and one
generator variant, the degenerated L4-L5 interlaminar case (the thinnest target of the variants: the
posterior epidural space narrowed by the flavum's hypertrophy, 3-7 mm deep, so the one the grid
changes most). The other variants' own patients are planned at 2 mm: their own patient at 1 mm cost
25-45 s each (a new patient every time, generated for this module alone), while what a variant changes
(a body mass, a curve, a transitional segment, a low sac, an artery's level) does not depend on the
grid, and at 2 mm the patient is the one the scoring tests already generate (``anatomy_for``).
The drawn patients test the ranges the draw covers (lordosis, size, sacral slope, facet asymmetry),
which do not depend on the grid: at 2 mm they cost a fifth of the time (a 1 mm patient is generated in
10-20 s on a loaded CI machine, and every drawn patient is new). The cases on the built-in patient share
their drawn patients, so each of them is planned on both draws; a case on a generator variant draws a
patient of its own for every seed (10-14 s of CPU each at 2 mm), so it is planned on one draw, the seeds
taking turns over the variants so that both draws of the ranges are still covered; a case whose patient is
fixed (``patient: fixed``) draws none, so only its own patient is planned on.
"""

import pytest

from scenarios.schema import library_scenarios
from simulator.case.planner import plan_trajectory
from simulator.case.targets import target_for
from simulator.needle.trace import tracer_for

LIBRARY = library_scenarios()
# Attempt seeds shared by every case, so cases on the same source share their drawn patients (a
# case's own pool differs by its seed; these are as good a sample of the same ranges).
DRAWN_SEEDS = (101, 202)


COARSE_SPACING_MM = 2.0
# The generator variant planned on its own patient at the product's grid (the module's docstring says why).
VARIANT_AT_1MM = "ilesi-degenerated-l4l5"


def _spacing_mm(scenario_id: str, seed: int | None) -> float | None:
    """The case's own patient at its own (1 mm) grid on the built-in patient and for ``VARIANT_AT_1MM``; a
    drawn patient, and another variant's own, at 2 mm."""
    own_at_1mm = not LIBRARY[scenario_id].anatomy.generator or scenario_id == VARIANT_AT_1MM
    return None if seed is None and own_at_1mm else COARSE_SPACING_MM


def _patient_key(case: tuple[str, int | None]) -> str:
    scenario_id, seed = case
    spacing_mm = _spacing_mm(scenario_id, seed)
    return LIBRARY[scenario_id].anatomy.spine_parameters(spacing_mm=spacing_mm, seed=seed).cache_key()


def _drawn_seeds(scenario_id: str) -> tuple[int, ...]:
    """The attempt seeds a case is planned on: both on the built-in patient (drawn patients shared by
    every case on it), one on a generator variant (taking turns), none where the patient is fixed."""
    anatomy = LIBRARY[scenario_id].anatomy
    if not anatomy.drawn:
        return ()
    if not anatomy.generator:
        return DRAWN_SEEDS
    return (DRAWN_SEEDS[VARIANTS.index(scenario_id) % len(DRAWN_SEEDS)],)


VARIANTS = sorted(scenario_id for scenario_id, scenario in LIBRARY.items() if scenario.anatomy.generator)
# Cases on one patient run one after the other and only that patient is held: all the patients at once
# would take several GB.
CASES = sorted(((scenario_id, seed) for scenario_id in LIBRARY for seed in (None, *_drawn_seeds(scenario_id))),
               key=_patient_key)
_held: dict = {}


def served_anatomy(scenario_id, seed=None):
    key = _patient_key((scenario_id, seed))
    if key not in _held:
        _held.clear()
        _held[key] = LIBRARY[scenario_id].anatomy.load(spacing_mm=_spacing_mm(scenario_id, seed), seed=seed)
    return _held[key]


@pytest.mark.slow
@pytest.mark.parametrize("scenario_id, seed", CASES)
def test_the_expert_path_exists(scenario_id, seed):
    scenario = LIBRARY[scenario_id]
    anatomy = served_anatomy(scenario_id, seed)
    tracer = tracer_for(anatomy)
    target = target_for(scenario, anatomy, tracer)
    trajectory = plan_trajectory(tracer, target, scenario.needle.spec())
    tip = trajectory.entry + trajectory.depth_mm * trajectory.direction
    assert target.zone.contains(tip, tracer.structure_at(tip), trajectory.trace.segments[-1].tissue)


def test_a_generator_variant_is_planned_on_its_own_1mm_patient():
    """The 1 mm variant still names a library case on a generator variant (renamed or made a built-in case, the
    variants would all be planned at 2 mm only)."""
    assert (VARIANT_AT_1MM, None) in CASES and LIBRARY[VARIANT_AT_1MM].anatomy.generator
    assert _spacing_mm(VARIANT_AT_1MM, None) is None
