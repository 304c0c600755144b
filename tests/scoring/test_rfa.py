"""Radiofrequency ablation graded as an examiner would (issue 21): the planner's expert above a competent
single parallel lesion, above a novice's end-on lesion, above every unsafe attempt, and each unsafe one
failing with its never-event named. Attempts are scripted from the anatomy (the planner, the target's
nerve course, the labelled roots), never typed coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.grade import CRITICAL_GRADE_CAP
from simulator.case.planner import EXPERT_MOTOR_V, EXPERT_SENSORY_V, find_trajectory, plan_trajectory
from simulator.case.targets import needle_direction
from simulator.session.words import action_title
from tests.scoring.attempts import Script, expert_log, path_to, structure_points

# rfa-l4-medial-branch-left: the L5 SAP-TP junction lies in the groove beside the real SAP; since generator 14
# it is where a needle from behind lands on solid bone there (a ray grazing the L5 process's sloping upper
# border ended on a 0.4 mm sliver, no bone on the 2 mm grid, and the expert's cannula stopped 4.5 mm short
# of it: nerve coverage 0.74; now 0.98).
CASES = ("rfa-l4-medial-branch-left", "rfa-l5-dorsal-ramus-right")
LESION = {"temperature_c": 80.0, "seconds": 90.0}


def _test_and_lesion(script: Script, *, sensory: bool = True, motor: bool = True) -> Script:
    if sensory:
        script.add("stimulate", mode="sensory", volts=EXPERT_SENSORY_V)
    if motor:
        script.add("stimulate", mode="motor", volts=EXPERT_MOTOR_V)
    script.add("inject_medication", ml=1.0, agent="local_anaesthetic")
    return script.add("lesion", 60.0, **LESION)


def competent_log(session):
    """The planned parallel path, imaged, tested, and one lesion: no repositioning for a second."""
    path = plan_trajectory(session.tracer, session.target, session.spec)
    script = Script(session).view(0).view(1).place(path.entry, path.direction)
    script.advance_to(0.6 * path.depth_mm).add("fluoro_shot", 1.0).view(2).advance_to(path.depth_mm + 1.0)
    script.add("fluoro_shot", 1.0)
    return _test_and_lesion(script).add("finish", 95.0).actions


def novice_log(session):
    """The medial branch block's approach (20 deg oblique, no caudal tilt): the cannula lands on the same
    bone end-on to the nerve, after extra shots and a redirection; tested, one lesion."""
    target = session.target
    sign = 1.0 if session.scenario.target.side == "left" else -1.0
    path = find_trajectory(session.tracer, target.point, needle_direction(20.0, sign, 0.0), 15.0,
                           max_depth_mm=session.spec.length_mm - 10.0, on_bone=True)
    script = Script(session)
    for _ in range(3):
        script.view(0)
    script.place(path.entry, path.direction).advance_to(0.4 * path.depth_mm).add("fluoro_shot", 1.0)
    script.add("redirect", aim=[float(v) for v in path.tip + np.array([0.0, 0.0, 6.0])]).add("fluoro_shot", 1.0)
    script.add("redirect", direction=[float(v) for v in path.direction]).add("fluoro_shot", 1.0)
    script.advance_to(path.depth_mm + 1.0).add("fluoro_shot", 1.0).view(2)
    return _test_and_lesion(script).add("finish", 95.0).actions


def unmotored_log(session):
    """The expert's attempt without any motor stimulation."""
    return [a for a in expert_log(session) if not (a["type"] == "stimulate" and a["mode"] == "motor")]


SHORT_OF_THE_ROOT_MM = 2.5


def depth_of_the_root(session, path) -> float:
    """How deep along ``path`` its needle first meets a nerve root's surface (mm): the path ends at a
    root voxel's centre, which it can reach after running inside the root for a few millimetres."""
    depths = np.arange(0.0, path.depth_mm + 0.25, 0.25)
    distance = session.tracer.nerve_root_distance(path.entry + depths[:, None] * path.direction)
    return float(depths[np.argmax(distance <= 0.0)])


def ventral_ramus_log(session):
    """Past the groove toward the nearest ventral ramus, stopping short of it (before its surface, as
    the path meets it): the motor test twitches the leg, and the lesion is made all the same."""
    roots = structure_points(session, "nerve_root", session.target.point)
    path = path_to(session, roots, allow=("nerve_root",), root_clearance_mm=0.0)
    script = Script(session).view(0).view(1).place(path.entry, path.direction)
    script.advance_to(depth_of_the_root(session, path) - SHORT_OF_THE_ROOT_MM).view(2)
    return _test_and_lesion(script).add("finish", 95.0).actions


UNSAFE = [(unmotored_log, "lesion_without_motor_test"), (ventral_ramus_log, "ventral_ramus_lesion")]


@pytest.mark.parametrize("case", CASES)
def test_the_expert_ablation_passes_clean_and_covers_the_nerve(graded, case):
    _, report = graded(case, expert_log)
    m = report.metrics
    assert report.passed and report.flags == [], (report.flags, [g for g in report.gates if not g.passed])
    assert m.lesions == 2 and m.nerve_coverage >= 0.9 and m.cannula_nerve_angle_deg <= 20.0
    assert m.sensory_confirmed and m.lesions_motor_tested and m.anaesthetised_before_lesion
    assert all(item.status == "done" for item in report.checklist), [i for i in report.checklist if i.status != "done"]


# rfa-l4-medial-branch-left: with the target on the groove's solid bone (generator 14) the scripted ventral-ramus
# attempt, aimed at the voxel of the L5 root nearest the target, ran inside the root for more than 2.5 mm before
# reaching it, and stopping 2.5 mm short of that voxel left the tip in the root (an intraneural injection first);
# the script now stops 2.5 mm short of where its path meets the root's surface.
@pytest.mark.parametrize("case", CASES)
def test_expert_above_competent_above_novice_above_unsafe(graded, case):
    expert, competent, novice = (graded(case, make)[1] for make in (expert_log, competent_log, novice_log))
    assert expert.grade > competent.grade > novice.grade, (expert.grade, competent.grade, novice.grade)
    assert competent.metrics.nerve_coverage < expert.metrics.nerve_coverage
    # End-on: the novice's cannula crosses the nerve, and the narrow lesion barely reaches it (§2.5).
    assert novice.metrics.cannula_nerve_angle_deg > 25.0  # well off parallel (20 deg is full marks)
    assert novice.metrics.nerve_coverage < competent.metrics.nerve_coverage
    assert any("degrees off the nerve" in item.text for item in novice.feedback)
    second = next(i for i in competent.checklist if i.key == "second_lesion")
    assert second.status == "not_done"
    placement = [next(i.score for i in r.global_rating.items if i.key == "needle_placement")
                 for r in (expert, competent, novice)]
    # The end-on cannula never scores above 3 (not parallel), and below the competent's 4. Which of 2 or 3
    # depends on the case: at L4 the flat approach is 42 deg off the 42.5 deg-tilted groove and its lesion
    # reaches 39% of the course (2); on the ala (25 deg tilt) the novice's cannula is only ~29 deg off and
    # its lesion reaches 51% of the course on the merged sacrum (3; it scored 2 on the old sacrum).
    assert placement[:2] == [5, 4] and placement[2] in (2, 3), placement
    for make, code in UNSAFE:
        unsafe = graded(case, make)[1]
        assert novice.grade > unsafe.grade and unsafe.grade <= CRITICAL_GRADE_CAP, (make.__name__, unsafe.grade)
        assert not unsafe.passed and (code, "critical") in {(f.code, f.severity) for f in unsafe.flags}
        title = next(f.title for f in unsafe.flags if f.code == code)
        assert unsafe.feedback[0].level == "critical" and title in unsafe.feedback[0].text


def test_the_leg_twitches_before_the_lesion_at_the_ventral_ramus(graded):
    log, report = graded("rfa-l4-medial-branch-left", ventral_ramus_log)
    motor = next(e for e in report.timeline if e.action == action_title("stimulate") and "motor" in e.summary + "".join(
        x.message for x in e.events))
    assert any("leg twitches" in x.message for x in motor.events), motor
    assert report.metrics.lesioned_after_leg_twitch
