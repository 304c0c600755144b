"""A different patient on every attempt: a case keeps what it teaches and draws the rest from the
attempt's seed, which the action log records, so a replay (and its score) has exactly that patient."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from anatomy_models.spine import SpineParameters
from anatomy_models.spine.parameters import DRAWN_FIELDS
from frontends.store import Store
from frontends.web.patients import next_patient_seed
from scenarios.schema import library_scenarios, scenario_from_yaml
from simulator.case.planner import expert_actions, plan_trajectory
from simulator.case.targets import target_for
from simulator.needle.trace import tracer_for
from simulator.session.actions import read_log
from simulator.session.fold import Session, scenario_of_log
from simulator.session.replay import replay

LIBRARY = library_scenarios()
CASE = LIBRARY["tfesi-default"]
FIXED = """
id: pinned
title: One patient
brief: The same patient every time.
anatomy: {builtin: default, patient: fixed}
procedure: interlaminar_epidural
target: {level: L4-L5, side: left}
needle: {kind: tuohy, gauge: 20, length_in: 3.5}
"""


def test_two_attempts_at_one_case_have_different_patients(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    ben = store.add_user("ben", "trainee", "battery staple")
    seeds = []
    for _ in range(3):
        seeds.append(next_patient_seed(store, ben.id, CASE))
        attempt_id = store.start_attempt(ben.id, CASE.id, seeds[-1])
    # The stored attempt's log (the web app's download) names its drawn patient as a session's does.
    header = store.log_text(attempt_id, CASE.for_attempt(seeds[-1]).patient_seed).splitlines()[0]
    assert f'"patient":{seeds[-1]}' in header
    assert seeds[0] == CASE.seed and len(set(seeds)) == 3 and set(seeds) <= set(CASE.patient_seeds())
    # The first attempt has the case's own patient, the next ones drawn patients; they differ in the
    # skeleton (the generator turns each parameter into its anatomy: tests/anatomy_models/spine/
    # test_variants.py), not only in texture; the habitus is the case's.
    patients = [CASE.for_attempt(s).patient_seed for s in seeds]
    assert patients[0] is None and patients[1:] == seeds[1:]
    first, second = (CASE.anatomy.spine_parameters(seed=s) for s in seeds[1:])
    skeleton = ("sex", "size_scale", "lordosis_deg", "sacral_slope_deg", "facet_tropism_deg")
    assert [getattr(first, n) for n in skeleton] != [getattr(second, n) for n in skeleton]
    assert first.seed != second.seed and first.bmi == second.bmi == 25.0


def test_a_case_keeps_what_it_teaches_and_draws_the_rest_in_normal_ranges():
    for case in LIBRARY.values():
        kept = set(case.anatomy.generator or {})
        for seed in case.patient_seeds():
            drawn = case.anatomy.spine_parameters(seed=seed)
            own = case.anatomy.spine_parameters()
            taught = kept | {"bmi", "degeneration", "transitional", "spacing_mm"}
            assert all(getattr(drawn, name) == getattr(own, name) for name in taught)
            assert 0.9 <= drawn.size_scale <= 1.1 and 40 <= drawn.lordosis_deg <= 70
            assert abs(drawn.facet_tropism_deg) <= 8
    varied = {name for name in DRAWN_FIELDS
              if len({getattr(CASE.anatomy.spine_parameters(seed=s), name) for s in range(40)}) > 1}
    assert varied == set(DRAWN_FIELDS)


def test_a_pinned_case_has_one_patient_and_patient_goes_only_with_a_generated_one():
    pinned = scenario_from_yaml(FIXED)
    assert pinned.patient_seeds() == (pinned.seed,) and pinned.for_attempt(99).patient_seed is None
    assert pinned.anatomy.spine_parameters(seed=99) == pinned.anatomy.spine_parameters()
    one = scenario_from_yaml(FIXED.replace("patient: fixed", "patient: drawn") + "patient_seed: 7\n")
    assert one.patient_seeds() == (one.seed,) and one.for_attempt(99).patient_seed == 7
    with pytest.raises(SpinesimError, match="anatomy.patient': only goes with builtin or generator"):
        scenario_from_yaml(FIXED.replace("{builtin: default, patient: fixed}", "{stored: somebody, patient: drawn}"))


def test_the_same_log_replays_the_same_patient(tmp_path):
    attempt = CASE.for_attempt(CASE.patient_seeds()[2])
    anatomy = attempt.load_patient(spacing_mm=2.0)
    tracer = tracer_for(anatomy)
    target = target_for(attempt, anatomy, tracer)
    records = expert_actions(attempt, target, plan_trajectory(tracer, target, attempt.needle.spec()))
    log_path = tmp_path / "attempt.jsonl"
    session = Session(attempt, anatomy, tracer=tracer, log_path=log_path)
    for record in records:
        session.apply(record)
    session.close()
    # Replayed from the log alone, as `spinesim score` does: the header's seed draws the patient again.
    contents = read_log(log_path)
    assert contents.header["patient"] == attempt.patient_seed
    logged = scenario_of_log(CASE, contents.header, log_path)
    assert logged.anatomy.spine_parameters(spacing_mm=2.0, seed=logged.patient_seed) == anatomy_parameters(anatomy) \
        != CASE.anatomy.spine_parameters(spacing_mm=2.0)
    again = logged.load_patient(spacing_mm=2.0)
    np.testing.assert_array_equal(again.ct.array, anatomy.ct.array)
    replayed = replay(CASE, again, contents)
    assert [e.message for e in replayed.events] == [e.message for e in session.events]
    np.testing.assert_array_equal(replayed.needle.tip, session.needle.tip)


def anatomy_parameters(anatomy):
    return SpineParameters.from_mapping(anatomy.metadata["parameters"])
