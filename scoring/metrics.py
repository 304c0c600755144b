"""What an attempt measured: accuracy, effort, radiation and technique (clinical.md §6.1, §6.3).

Every number comes from the replayed attempt (:mod:`simulator.session.history`) and the anatomy's labels and
landmarks; nothing is rendered. Offsets are given in the target's anatomical frame so that feedback
can speak the trainee's language (cranial/caudal, ventral/dorsal, medial/lateral).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import level_below
from scenarios.schema import NERVE_PROCEDURES, Scenario
from scoring.exposure import attempt_dose, dose_by_habit
from simulator.case.targets import Target
from simulator.needle.ablation import SENSORY_CRITERION_V, coverage
from simulator.needle.trace import AIR
from simulator.session.fold import READING_OF_PATTERN, LesionMade, SessionState
from simulator.session.history import Attempt

# Contrast patterns that confirm each procedure's target (clinical.md §2.6, §2.7).
EXPECTED_PATTERNS = {"interlaminar_epidural": ("epidural",), "transforaminal_epidural": ("epidural",),
                     "facet_intra_articular": ("intra_articular",), "medial_branch_block": ("soft_tissue",),
                     "radiofrequency_ablation": ("soft_tissue",),
                     # The sacroiliac arthrogram and the caudal epidurogram (simulator.needle.sacral_contrast).
                     "sacroiliac_joint_injection": ("intra_articular",), "caudal_epidural": ("epidural",)}
# A contrast injection counts as checked when a live or DSA run starts within this many seconds after
# it, before the needle moves (clinical.md §6.3: contrast under live fluoroscopy, DSA for TFESI) [ED].
CONTRAST_CHECK_S = 5.0
# A shot counts as taken in a view when its beam is within this angle of the view's beam (degrees) [ED].
VIEW_TOLERANCE_DEG = 15.0
NEEDLE_MOVES = ("place_needle", "advance", "withdraw", "redirect")
# The contrast test and the therapeutic injectate (simulator.session.actions).
INJECTIONS = ("inject_contrast", "inject_medication")
# Patterns of a vessel taking the injection (clinical.md §2.7): the contrast test is there to show them.
VASCULAR_PATTERNS = ("arterial", "venous")


class Offset(BaseModel):
    """Final tip minus target in the target's anatomical frame, mm.

    ``cranial_mm`` + toward the head (along the endplate normal of the target level), ``ventral_mm`` +
    toward the belly (deeper, for a needle from the back), ``lateral_mm`` + away from the midline on
    the target's side (toward the patient's left for a midline target).
    """

    cranial_mm: float
    ventral_mm: float
    lateral_mm: float


MGY_PER_GY = 1000.0  # the metrics keep DAP in Gy·cm² (the dose model's unit); people read mGy·cm²


def dap_text(gy_cm2: float) -> str:
    """A dose-area product as a C-arm's dose display shows it: whole mGy·cm² from 10 up (an injection's DAP
    is tens to thousands of mGy·cm²), one decimal below.

    >>> dap_text(1.2345), dap_text(0.00456)
    ('1234 mGy·cm²', '4.6 mGy·cm²')
    """
    mgy_cm2 = gy_cm2 * MGY_PER_GY
    return f"{mgy_cm2:.0f} mGy·cm²" if mgy_cm2 >= 10 else f"{mgy_cm2:.1f} mGy·cm²"


class Metrics(BaseModel):
    """The measured attempt. Lengths in mm, times in s, doses in mGy and Gy cm^2."""

    finished: bool
    tip_structure: str | None
    tip_to_target_mm: float | None
    in_zone: bool
    offset: Offset | None
    depth_view: str
    depth_error_mm: float | None
    passes: int
    redirects: int  # every pass after the first: re-aimed under the skin or re-inserted
    bone_contacts: int
    fluoro_shots: int
    fluoro_seconds: float
    dsa_runs: int
    reference_air_kerma_mgy: float
    dose_area_product_gy_cm2: float
    # The DAP by the habit that gave it (scoring.exposure.HABITS keys), Gy cm^2.
    dose_by_habit_gy_cm2: dict[str, float] = {}
    procedure_time_s: float
    path_length_mm: float
    tissues_crossed: list[str]
    structures_touched: list[str]
    contrast_ml: float
    contrast_patterns: list[str]
    contrast_pattern_correct: bool | None
    # The trainee's last naming of each contrast injection's pattern (``ContrastReading`` words), None if never
    # named; the truth is READING_OF_PATTERN of contrast_patterns.
    contrast_readings: list[str | None] = []
    contrast_checked: bool | None
    injectate_ml: float = 0.0
    injectate_patterns: list[str] = []
    injectate_pattern_correct: bool | None = None
    injectate_tested: bool | None = None
    vascular_tests_caught: int = 0
    dsa_used: bool | None
    depth_view_checked: bool
    loss_of_resistance_checks: int
    loss_of_resistance_confirmed: bool | None
    hub_at_skin: bool
    hints_used: int = 0
    # Radiofrequency ablation (None for other procedures; clinical.md §2.5): the fraction of the nerve's
    # course in the groove inside the lesions, the largest angle between the cannula and the nerve at a
    # lesion, how many lesions, whether a concordant sensory response below the 0.5 V criterion came
    # before the first, whether every lesion followed a motor test at its position, whether local
    # anaesthetic went in before the first, and whether any lesion was made where the leg had twitched.
    nerve_coverage: float | None = None
    cannula_nerve_angle_deg: float | None = None
    lesions: int = 0
    sensory_confirmed: bool | None = None
    lesions_motor_tested: bool | None = None
    anaesthetised_before_lesion: bool | None = None
    lesioned_after_leg_twitch: bool | None = None


def anatomical_frame(scenario: Scenario, anatomy: Anatomy, target: Target) -> np.ndarray:
    """Rows: unit cranial, ventral and lateral axes (LPS) at the target (see :class:`Offset`)."""
    if scenario.procedure in NERVE_PROCEDURES:
        level = level_below(scenario.target.nerve_level)
    elif scenario.target.level is None:
        level = scenario.target.vertebra
    else:
        level = scenario.target.level.split("-")[1]
    try:
        cranial = anatomy.direction(f"{level}.superior_endplate.normal")
    except SpinesimError:
        cranial = np.array([0.0, 0.0, 1.0])
    ventral = np.array([0.0, -1.0, 0.0]) - np.dot([0.0, -1.0, 0.0], cranial) * cranial
    ventral /= np.linalg.norm(ventral)
    lateral = np.cross(cranial, ventral)  # cranial x ventral = (0,0,1) x (0,-1,0) = +x, the patient's left
    if scenario.target.side == "right":
        lateral = -lateral
    return np.stack([cranial, ventral, lateral])


def depth_error_mm(target: Target, tip: np.ndarray, direction: np.ndarray) -> float:
    """How far beyond (+) or short of (-) the target the tip is, as the safety (depth) view shows it.

    The view cannot see along its beam, so the offset is first projected onto the image plane; depth
    is then measured along the needle's own direction in that plane.
    """
    beam = target.views[-1].carm.beam_direction
    offset = tip - target.point
    in_plane = offset - np.dot(offset, beam) * beam
    along = direction - np.dot(direction, beam) * beam
    if np.linalg.norm(along) < 1e-6:
        return float(np.dot(offset, direction))
    return float(np.dot(in_plane, along / np.linalg.norm(along)))


def _beam_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(abs(np.dot(a, b)), 0.0, 1.0))))


def _crossed(attempt: Attempt) -> tuple[list[str], list[str]]:
    """Structures along the final shaft (skin to tip) and every structure any shaft crossed."""
    tracer = attempt.session.tracer
    touched: list[str] = []
    final: list[str] = []
    for _, needle in attempt.needles():
        names = [s.structure for s in tracer.trace(needle.entry, needle.direction, max(needle.depth_mm, 1e-6)).segments
                 if s.structure != AIR]
        touched.extend(n for n in names if n not in touched)
        final = names
    if attempt.final.needle is None:
        final = []
    return final, touched


def contrast_runs(steps, index: int) -> list:
    """The live and DSA runs that image the contrast test at step ``index`` (0-based): started within
    :data:`CONTRAST_CHECK_S` after it, before the needle moves."""
    runs = []
    for later in steps[index + 1:]:
        if later.t > steps[index].t + CONTRAST_CHECK_S or later.action.type in NEEDLE_MOVES:
            break
        if later.action.type == "fluoro_shot" and later.action.mode in ("live", "dsa"):
            runs.append(later)
    return runs


def _contrast_checks(attempt: Attempt) -> tuple[bool | None, bool | None]:
    """(every contrast test imaged live, any imaged by DSA); None when no contrast was injected."""
    checked, by_dsa, injected = True, False, False
    for index, step in enumerate(attempt.steps):
        if step.action.type != "inject_contrast":
            continue
        injected = True
        modes = [run.action.mode for run in contrast_runs(attempt.steps, index)]
        checked &= bool(modes)
        by_dsa |= "dsa" in modes
    if not injected:
        return None, None
    return checked, by_dsa


def caught_vascular_tests(steps) -> list[int]:
    """Indices of the contrast tests that showed a vessel under live fluoroscopy or DSA and that no
    injectate followed before the needle moved: the test dose doing its job (clinical.md §2.2, §2.7)."""
    caught = []
    for index, step in enumerate(steps):
        if step.action.type != "inject_contrast" or step.after.injections[-1].pattern not in VASCULAR_PATTERNS:
            continue
        following = next((s for s in steps[index + 1:] if s.action.type in NEEDLE_MOVES + ("inject_medication",)), None)
        if contrast_runs(steps, index) and (following is None or following.action.type != "inject_medication"):
            caught.append(index)
    return caught


def tested_injectates(steps) -> list[bool]:
    """For each injectate, whether a contrast test imaged live or by DSA went in at the same needle
    position before it (the needle unmoved since): contrast under live or DSA before injectate (§6.3)."""
    tested = []
    for index, step in enumerate(steps):
        if step.action.type != "inject_medication":
            continue
        since_move = []
        for earlier in range(index - 1, -1, -1):
            if steps[earlier].action.type in NEEDLE_MOVES:
                break
            since_move.append(earlier)
        tested.append(any(steps[i].action.type == "inject_contrast" and contrast_runs(steps, i) for i in since_move))
    return tested


def injection_window(steps) -> tuple[int, int]:
    """(first, stop) 0-based step indices: from just after the last needle move before the injection
    point (the first injectate, or without one the first contrast test) to the first injection made
    there. Between them the needle stood where it injected; without any injection, (after the last
    move, the end)."""
    kinds = [s.action.type for s in steps]
    point = kinds.index("inject_medication") if "inject_medication" in kinds else (
        kinds.index("inject_contrast") if "inject_contrast" in kinds else len(steps))
    first = 1 + max((i for i in range(point) if kinds[i] in NEEDLE_MOVES), default=-1)
    stop = next(i for i in range(first, len(steps) + 1) if i == len(steps) or kinds[i] in INJECTIONS)
    return first, stop


def _redirects(passes: int) -> int:
    """Redirections: every pass after the first, whether re-aimed under the skin or pulled out and
    re-inserted through a new puncture (both are a new pass at the target, clinical.md §6.1)."""
    return max(passes - 1, 0)


def _readings(final) -> list[str | None]:
    """The last reading of each contrast injection (None where it was never named)."""
    last = {reading.injection: reading.reading for reading in final.readings}
    return [last.get(index) for index in range(len(final.injections))]


def read_correctly(metrics: Metrics) -> float | None:
    """Share of the contrast injections whose pattern the trainee named right (an injection never named
    counts as missed); None without contrast. Reading the images is the skill the test dose needs (§2.7)."""
    if not metrics.contrast_patterns:
        return None
    right = [READING_OF_PATTERN[pattern] == reading
             for pattern, reading in zip(metrics.contrast_patterns, metrics.contrast_readings)]
    return sum(right) / len(metrics.contrast_patterns)


def nerve_angle_deg(target: Target, direction: np.ndarray) -> float:
    """Angle (degrees) between a cannula pointing along ``direction`` and the nerve's course: 0 parallel,
    90 end-on (crossing it), 180 pointing back along it."""
    return float(np.degrees(np.arccos(np.clip(np.dot(direction, target.nerve_direction), -1.0, 1.0))))


def motor_tested(state: SessionState, lesion: LesionMade) -> tuple[bool, bool]:
    """(a motor stimulation came before ``lesion`` at its cannula position, one of those twitched the leg)."""
    tests = [s for s in state.stimulations if s.mode == "motor" and s.pose == lesion.pose and s.t <= lesion.t]
    return bool(tests), any(s.leg for s in tests)


def ablation_metrics(attempt: Attempt) -> dict:
    """The radiofrequency ablation's fields of :class:`Metrics` (empty for other procedures)."""
    if attempt.scenario.procedure != "radiofrequency_ablation":
        return {}
    final, target = attempt.final, attempt.session.target
    lesions = final.lesions
    first = lesions[0].t if lesions else float("inf")
    tested = [motor_tested(final, lesion) for lesion in lesions]
    angles = [nerve_angle_deg(target, np.asarray(lesion.lesion.axis)) for lesion in lesions]
    if not angles and final.needle is not None:
        angles = [nerve_angle_deg(target, final.needle.direction)]
    return {
        "nerve_coverage": round(coverage([m.lesion for m in lesions], target.nerve_course), 4),
        "cannula_nerve_angle_deg": round(max(angles), 2) if angles else None, "lesions": len(lesions),
        "sensory_confirmed": any(s.mode == "sensory" and s.back and s.volts <= SENSORY_CRITERION_V and s.t <= first
                                 for s in final.stimulations),
        "lesions_motor_tested": all(ok for ok, _ in tested) if lesions else None,
        "anaesthetised_before_lesion": (any(m.agent == "local_anaesthetic" and m.t <= first for m in final.medications)
                                        if lesions else None),
        "lesioned_after_leg_twitch": any(leg for _, leg in tested) if lesions else None,
    }


def measure(attempt: Attempt) -> Metrics:
    """The :class:`Metrics` of a replayed attempt."""
    scenario, session, final = attempt.scenario, attempt.session, attempt.final
    target = session.target
    needle = final.needle
    offset = depth_error = None
    if needle is not None:
        frame = anatomical_frame(scenario, session.anatomy, target)
        cranial, ventral, lateral = (frame @ (needle.tip - target.point)).round(3).tolist()
        offset = Offset(cranial_mm=cranial, ventral_mm=ventral, lateral_mm=lateral)
        depth_error = round(depth_error_mm(target, needle.tip, needle.direction), 3)
    dose = attempt_dose(attempt)
    tissues, touched = _crossed(attempt)
    patterns = [injection.pattern for injection in final.injections]
    injectate = [medication.pattern for medication in final.medications]
    tested = tested_injectates(attempt.steps)
    checked, by_dsa = _contrast_checks(attempt)
    settled = attempt.steps[slice(*injection_window(attempt.steps))]
    depth_beam = target.views[-1].carm.beam_direction
    depth_view_checked = needle is not None and any(
        s.action.type == "fluoro_shot"
        and _beam_angle_deg(session.carm(s.after).beam_direction, depth_beam) <= VIEW_TOLERANCE_DEG
        for s in settled)
    interlaminar = scenario.procedure == "interlaminar_epidural"
    # A false loss (the tip in fat or muscle, §2.1 [S13]) is felt but confirms nothing.
    lor_confirmed = (any(e.kind == "loss_of_resistance" and e.data["feel"] == "lost" and not e.data["false_loss"]
                         for s in settled for e in s.events) if interlaminar else None)
    expected = EXPECTED_PATTERNS[scenario.procedure]
    return Metrics(
        finished=final.finished, tip_structure=final.tip_structure,
        tip_to_target_mm=None if final.tip_to_target_mm is None else round(final.tip_to_target_mm, 3),
        in_zone=bool(needle is not None and final.in_target), offset=offset, depth_view=target.views[-1].name,
        depth_error_mm=depth_error, passes=final.passes, redirects=_redirects(final.passes),
        bone_contacts=final.bone_contacts,
        fluoro_shots=final.fluoro_shots, fluoro_seconds=round(final.fluoro_seconds, 3), dsa_runs=final.dsa_runs,
        reference_air_kerma_mgy=round(dose.reference_air_kerma_mgy, 4),
        dose_area_product_gy_cm2=round(dose.dose_area_product_gy_cm2, 5),
        dose_by_habit_gy_cm2={habit: round(dap, 5) for habit, dap in dose_by_habit(attempt).items()},
        procedure_time_s=round(final.t, 3), path_length_mm=round(attempt.path_length_mm(), 2),
        tissues_crossed=tissues, structures_touched=touched,
        contrast_ml=round(sum(i.ml for i in final.injections), 3), contrast_patterns=patterns,
        # The last test counts: a wrong pattern followed by re-siting is good practice (§2.2: "reposition").
        contrast_pattern_correct=patterns[-1] in expected if patterns else None,
        contrast_readings=_readings(final),
        contrast_checked=checked, injectate_ml=round(sum(m.ml for m in final.medications), 3),
        injectate_patterns=injectate, injectate_pattern_correct=all(p in expected for p in injectate) if injectate else None,
        injectate_tested=all(tested) if tested else None, vascular_tests_caught=len(caught_vascular_tests(attempt.steps)),
        dsa_used=by_dsa if scenario.imaging.dsa else None,
        depth_view_checked=depth_view_checked, loss_of_resistance_checks=final.lor_checks,
        loss_of_resistance_confirmed=lor_confirmed,
        hub_at_skin=bool(attempt.events_of("hub_at_skin")), hints_used=final.hints_shown, **ablation_metrics(attempt))

