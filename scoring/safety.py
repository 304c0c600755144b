"""Safety flags: the unsafe events of an attempt, each with a severity (clinical.md §3, §6.3).

=============================  ========  ==================================================================
flag                           severity  when
=============================  ========  ==================================================================
``dural_puncture``             critical  the needle entered the dural sac in a transforaminal, facet or
                                         medial branch procedure (nothing there is near the dura)
``dural_puncture``             major     the same in an interlaminar or caudal epidural ("wet tap", its known
                                         risk: 0.8% lumbar, §3 [S48])
``intrathecal_injection``      critical  contrast or injectate with the tip in CSF or the subdural space
                                         (§3; §6.3: "dural puncture with injection")
``arterial_injection``         critical  injectate into an artery, or a contrast test into one that no live
                                         or DSA run showed (§3: arterial in the foramen = critical; §2.7:
                                         the arterial pattern washes out, missed on static images)
``venous_injection``           critical  injectate into a vein (intravascular injectate, issue 19)
``cord_contact``               critical  the tip entered the spinal cord or conus (§3)
``intradiscal_injection``      critical  contrast or injectate into a disc (§6.3 lists it with the critical
                                         events)
``intraneural_injection``      critical  contrast or injectate with the tip inside a nerve root or ganglion (§3)
``blind_injection``            critical  an injection (test or injectate) at a needle position no image
                                         showed: no fluoroscopy shot since the needle last moved, and no
                                         live or DSA run of the injection itself (§1: every step under imaging)
``root_contact``               major     paraesthesia (the shaft within 1.5 mm of a root) or the tip in a
                                         root or ganglion (§3)
``cauda_equina_contact``       major     the tip entered the cauda equina inside the sac
``intradiscal``                major     the tip entered a disc (§3)
``venous_injection``           major     a contrast test into a vein that no live or DSA run showed (§3)
``beyond_ventral_epidural``    major     the shaft went through the dural sac and out of its ventral side;
                                         or, transforaminal, the tip more than 2 mm ventral to the
                                         posterior vertebral-body line as the lateral view shows it (§3)
``wrong_level``                major     the final tip is on target at a neighbouring level (§3)
``too_high_in_sacral_canal``   major     caudal: the tip rose to within 15 mm of the dural sac's end, above
                                         S3 (Aggarwal 2009: S2 can lie 7 mm above the hiatus's apex) [ED]
``through_sacroiliac_joint``   major     sacroiliac joint: the tip went through the joint and out of its
                                         front, into the pelvis (the L5 and S1 ventral rami, the iliac
                                         vessels lie there) [ED]
``vascular_pattern_misread``   critical  a contrast test that ran into a vessel, named by the trainee as another
                                         pattern, then injectate at the same needle position (§2.7: the reading
                                         is the check that should have stopped it)
``ventral_ramus_lesion``       critical  an RF lesion reaching within 1 mm of a ventral ramus or root, or made
                                         where motor stimulation had twitched the leg (§2.5 [S39][S43])
``lesion_without_motor_test``  critical  an RF lesion with no motor stimulation at that cannula position
                                         before it (§2.5 [S39]: the leg-twitch test is the safety check)
``vessel_puncture``            minor     the tip entered a vessel (blood at the hub or not) without an injection
``repeated_bone_contact``      minor     more bone contacts than the rubric's tolerance
``excessive_shots``            minor     more fluoroscopy shots than the scenario's limit (§6.3)
``dose_above_reference_level`` minor     a dose-area product above the procedure's diagnostic reference level
                                         (Hustinx 2018, :mod:`scoring.exposure`), with the habit that gave most
                                         of it and its fix
``excessive_fluoro_time``      minor /   more beam-on time than the limit (§3 [S61]); major past
                               major     :data:`RADIATION_MAJOR_FACTOR` times it: continuous screening
                                         where pulses would do (§3 [S63])
``over_time``                  minor     longer than the scenario's time limit
``capsule_rupture``            minor     more into a facet joint than its capsule holds (§2.3)
``agent_choice``               minor     particulate steroid transforaminally (non-particulate is the
                                         choice there, §2.2 [S1][S19]; particulate emboli infarct the cord,
                                         §3 [S53]), or steroid in a diagnostic medial branch block (§2.4 [S3])
=============================  ========  ==================================================================

The contrast test and the injectate (clinical.md §2.2: "contrast test (1-2 mL) under live fluoroscopy,
ideally DSA; then local anaesthetic ± non-particulate steroid"). A contrast test that shows a vessel
under live fluoroscopy or DSA, with no injectate given before the needle is re-sited, is the test doing
its job: no flag (the feedback notes it). Intravascular, intrathecal, intradiscal and intraneural
injectate is a never-event whatever the agent. A contrast test that went intrathecal stays critical [ED]:
§6.3 lists "dural puncture with injection" among the critical events without regard to the agent, and,
unlike a vessel (a flash in under half, §5.4), the sac announces itself before any injection (CSF at the
hub), so a test is not what should catch it.

A flag is raised once per kind; ``count`` says how often it happened, ``t`` when it first did, and
``structure`` which structure it concerns (for the report's 3D view).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import LEVELS, clinical_name, in_group, level_below
from anatomy_models.tissues import BONE_TISSUES
from scenarios.schema import NERVE_PROCEDURES, RFA_NERVES, Scenario, TargetSpec
from scoring.exposure import HABITS, REFERENCE_LEVELS_MGY_CM2, main_habit
from scoring.metrics import (INJECTIONS, MGY_PER_GY, NEEDLE_MOVES, VASCULAR_PATTERNS, Metrics, contrast_runs, dap_text,
                             motor_tested)
from simulator.case.targets import CAUDAL_SAC_MARGIN_MM, target_for
from simulator.needle.sacral_contrast import dural_sac_end
from simulator.needle.trace import AIR, Tracer
from simulator.session.fold import AGENT_WORDS, LESION_ROOT_MARGIN_MM, READING_WORDS
from simulator.session.history import Attempt

Severity = Literal["critical", "major", "minor"]
SEVERITIES: tuple[str, ...] = ("critical", "major", "minor")
# The transforaminal "too deep" rule: tip this far ventral to the posterior vertebral-body line (mm),
# the same 2 mm the interlaminar rule of clinical.md §3 allows past the VILL [ED].
VENTRAL_TOLERANCE_MM = 2.0
# Beam-on time past this many times the scenario's limit is a major event: for a single level that is
# continuous screening where intermittent pulses would do, which multiplies the dose (§3 [S63]) [ED].
RADIATION_MAJOR_FACTOR = 1.5
_IN_SAC = ("dural_sac", "cauda_equina", "spinal_cord")


class Flag(BaseModel):
    """One kind of unsafe event in an attempt."""

    code: str
    severity: Severity
    title: str
    message: str
    t: float | None = None
    count: int = 1
    structure: str | None = None


class _Flags:
    def __init__(self) -> None:
        self.found: dict[str, Flag] = {}

    def add(self, code: str, severity: Severity, title: str, message: str, t: float | None = None,
            structure: str | None = None) -> None:
        if code in self.found:
            worse = SEVERITIES.index(severity) < SEVERITIES.index(self.found[code].severity)
            update = {"severity": severity, "message": message, "t": t, "structure": structure} if worse else {}
            self.found[code] = self.found[code].model_copy(update={"count": self.found[code].count + 1} | update)
        else:
            self.found[code] = Flag(code=code, severity=severity, title=title, message=message, t=t, structure=structure)

    def sorted(self) -> list[Flag]:
        return sorted(self.found.values(), key=lambda f: (SEVERITIES.index(f.severity), f.t if f.t is not None else 1e9))


def _words(name: str | None) -> str:
    """A structure's clinical name for a message ("an unnamed structure" when there is none)."""
    return "unnamed structure" if name is None else clinical_name(name)


def safety_flags(attempt: Attempt, metrics: Metrics) -> list[Flag]:
    """Every flag the attempt earned, most severe first."""
    scenario = attempt.scenario
    flags = _Flags()
    _event_flags(attempt, flags)
    _injection_flags(attempt, flags)
    _injectate_flags(attempt, flags)
    _unseen_injections(attempt, flags)
    _misread_vascular(attempt, flags)
    _beyond_ventral(attempt, flags)
    _wrong_level(attempt, flags)
    _ablation_flags(attempt, flags)
    _sacral_flags(attempt, flags)
    limits, tolerances = scenario.limits, scenario.tolerances()
    if metrics.bone_contacts > tolerances.bone_contacts:
        flags.add("repeated_bone_contact", "minor", "Repeated bone contact",
                  f"{metrics.bone_contacts} bone contacts (tolerance {tolerances.bone_contacts}): each one is a jab "
                  "of the periosteum and a sign the trajectory view was not used")
    if metrics.fluoro_shots > limits.shots:
        flags.add("excessive_shots", "minor", "Excessive fluoroscopy shots",
                  f"{metrics.fluoro_shots} shots, more than the limit of {limits.shots}")
    if metrics.fluoro_seconds > limits.fluoro_seconds:
        major = metrics.fluoro_seconds > RADIATION_MAJOR_FACTOR * limits.fluoro_seconds
        flags.add("excessive_fluoro_time", "major" if major else "minor", "Excessive fluoroscopy time",
                  f"{metrics.fluoro_seconds:.1f} s of beam-on time, "
                  + (f"more than {RADIATION_MAJOR_FACTOR:g} times the limit of {limits.fluoro_seconds:g} s: radiation "
                     "the patient and the team did not need" if major
                     else f"more than the limit of {limits.fluoro_seconds:g} s"))
    _reference_level(scenario, metrics, flags)
    if metrics.procedure_time_s > limits.time_s:
        flags.add("over_time", "minor", "Over time",
                  f"{metrics.procedure_time_s:.0f} s, longer than the limit of {limits.time_s:g} s")
    return flags.sorted()


def _reference_level(scenario: Scenario, metrics: Metrics, flags: _Flags) -> None:
    """A minor flag for a DAP above the procedure's diagnostic reference level, naming the habit that gave most
    of it and its fix."""
    level = REFERENCE_LEVELS_MGY_CM2.get(scenario.procedure)
    dap = metrics.dose_area_product_gy_cm2
    if level is None or dap * MGY_PER_GY <= level:
        return
    habit = main_habit(metrics.dose_by_habit_gy_cm2)
    words, fix = HABITS[habit]
    share = metrics.dose_by_habit_gy_cm2[habit] / dap
    flags.add("dose_above_reference_level", "minor", "Dose above the reference level",
              f"{dap_text(dap)} of dose-area product, above the diagnostic reference level of {level:.0f} mGy·cm² for "
              f"this procedure; {share:.0%} of it came from {words}: {fix}")


def _event_flags(attempt: Attempt, flags: _Flags) -> None:
    interlaminar = attempt.scenario.procedure in ("interlaminar_epidural", "caudal_epidural")
    injected_vessels = {i.structure for i in attempt.final.injections + attempt.final.medications
                        if i.pattern in VASCULAR_PATTERNS}
    for event in attempt.events:
        kind, t, where = event.kind, event.t, event.data.get("structure")
        if kind == "dural_puncture":
            flags.add("dural_puncture", "major" if interlaminar else "critical", "Dural puncture",
                      f"the needle punctured the dura {event.data['depth_mm']:.0f} mm from the skin", t, where)
        elif kind == "cord_contact":
            flags.add("cord_contact", "critical", "Spinal cord contact", "the needle entered the spinal cord or conus",
                      t, where)
        elif kind == "cauda_equina_contact":
            flags.add("cauda_equina_contact", "major", "Cauda equina contact",
                      "the needle entered the nerve roots inside the dural sac", t, where)
        elif kind == "paraesthesia":
            distance = event.data["distance_mm"]
            near = "touched a nerve root" if distance < 0.05 else f"came within {distance:.1f} mm of a nerve root"
            flags.add("root_contact", "major", "Nerve root contact",
                      f"the needle {near}: the patient felt a shooting pain down the leg", t, _nearest_root(attempt, t))
        elif kind == "root_penetration":
            flags.add("root_contact", "major", "Nerve root contact", f"the needle entered the {_words(where)}", t,
                      where)
        elif kind == "intradiscal":
            flags.add("intradiscal", "major", "Intradiscal needle", f"the needle entered the {_words(where)}", t, where)
        elif kind == "vessel_puncture" and where not in injected_vessels:
            flags.add("vessel_puncture", "minor", "Vessel puncture",
                      f"the tip entered the {_words(where)}" + (" (an artery)" if event.data.get("arterial") else "")
                      + ("; blood showed at the hub" if any(e.kind == "blood_flashback" and e.t == t for e in attempt.events)
                         else "; no blood showed at the hub (a flash shows in under half of them)"),
                      t, where)
        elif kind == "capsule_rupture":
            flags.add("capsule_rupture", "minor", "Facet capsule rupture", event.message, t, where)


def _nearest_root(attempt: Attempt, t: float) -> str | None:
    """The root the needle was nearest to at time ``t`` (for the 3D view)."""
    needle = next((n for time, n in attempt.needles() if time == t), None)
    tracer = attempt.session.tracer
    if needle is None:
        return None
    samples = needle.entry + np.linspace(0.0, needle.depth_mm, 64)[:, None] * needle.direction
    point = samples[int(np.argmin(tracer.nerve_root_distance(samples)))]
    roots = tracer.volume.voxel_to_world(np.argwhere(np.isin(tracer.codes, tracer.root_codes())))
    if len(roots) == 0:
        return None
    ijk = tracer.volume.world_to_voxel(roots[np.argmin(np.linalg.norm(roots - point, axis=1))])
    return tracer.names[int(tracer.codes[tuple(np.rint(ijk).astype(int))])]


def _injection_flags(attempt: Attempt, flags: _Flags) -> None:
    """The contrast tests' flags. A vascular test imaged live or by DSA raises none: it did its job, and
    an injectate given through it anyway is flagged as such (:func:`_injectate_flags`)."""
    steps = attempt.steps
    seen = {step.after.injections[-1] for index, step in enumerate(steps)
            if step.action.type == "inject_contrast" and contrast_runs(steps, index)}
    for injection in attempt.final.injections:
        pattern, t, where = injection.pattern, injection.t, injection.structure
        if pattern in VASCULAR_PATTERNS and injection in seen:
            continue
        if pattern in ("intrathecal", "subdural"):
            flags.add("intrathecal_injection", "critical", "Intrathecal injection",
                      f"{injection.ml:g} mL of contrast went {'into the CSF' if pattern == 'intrathecal' else 'subdural'}",
                      t, where)
        elif pattern == "arterial":
            flags.add("arterial_injection", "critical", "Arterial injection",
                      f"{injection.ml:g} mL of contrast went into the {_words(where)} and no live or DSA run showed "
                      "it: the injectate would have followed (with particulate steroid this can infarct the spinal "
                      "cord)", t, where)
        elif pattern == "venous":
            flags.add("venous_injection", "major", "Venous injection",
                      f"{injection.ml:g} mL of contrast went into the {_words(where)} and no live or DSA run showed it",
                      t, where)
        elif pattern == "intradiscal":
            flags.add("intradiscal_injection", "critical", "Intradiscal injection",
                      f"{injection.ml:g} mL of contrast went into the {_words(where)}: a risk of discitis", t, where)


# Where injectate must never go (issue 19: intravascular, intrathecal or intraneural injectate; §6.3 adds
# the disc): pattern -> (flag code, title, where it went in words).
_INJECTATE_HARM = {
    "intrathecal": ("intrathecal_injection", "Intrathecal injection", "into the CSF"),
    "subdural": ("intrathecal_injection", "Intrathecal injection", "subdural"),
    "arterial": ("arterial_injection", "Arterial injection", "into the {where}"),
    "venous": ("venous_injection", "Venous injection", "into the {where}"),
    "intradiscal": ("intradiscal_injection", "Intradiscal injection", "into the {where}: a risk of discitis"),
}


def _injectate_flags(attempt: Attempt, flags: _Flags) -> None:
    """The injectate's flags: any compartment of :data:`_INJECTATE_HARM` is a never-event; the wrong agent
    for the procedure a minor one."""
    procedure = attempt.scenario.procedure
    for medication in attempt.final.medications:
        agent = AGENT_WORDS[medication.agent]
        if medication.pattern in _INJECTATE_HARM:
            code, title, where = _INJECTATE_HARM[medication.pattern]
            embolus = (": particulate steroid in an artery can infarct the spinal cord"  # §3 [S53]
                       if medication.pattern == "arterial" and medication.agent == "steroid_particulate" else "")
            flags.add(code, "critical", title, f"{medication.ml:g} mL of {agent} went "
                      + where.format(where=_words(medication.structure)) + embolus, medication.t, medication.structure)
        if (procedure == "transforaminal_epidural" and medication.agent == "steroid_particulate") or (
                procedure == "medial_branch_block" and medication.agent.startswith("steroid")):
            why = ("non-particulate steroid is the transforaminal choice: particulate emboli in a radicular artery "
                   "infarct the cord" if procedure == "transforaminal_epidural" else
                   "a diagnostic medial branch block uses local anaesthetic only")
            flags.add("agent_choice", "minor", "Choice of injectate", f"{agent}: {why}", medication.t)


def _misread_vascular(attempt: Attempt, flags: _Flags) -> None:
    """A vascular contrast pattern the trainee named as something else, then injectate with the needle unmoved."""
    steps = attempt.steps
    for index, step in enumerate(steps):
        read = next((e for e in step.events if e.kind == "contrast_read"), None)
        if read is None or read.data["actual"] != "vascular" or read.data["correct"]:
            continue
        for later in steps[index + 1:]:
            if later.action.type in NEEDLE_MOVES:
                break
            if later.action.type == "inject_medication":
                flags.add("vascular_pattern_misread", "critical", "Vascular pattern misread",
                          "the contrast test ran into a vessel and you read it as "
                          f"{READING_WORDS[read.data['reading']]}; {later.action.ml:g} mL of {AGENT_WORDS[later.action.agent]} followed at "
                          f"{later.t:.0f} s with the needle where the vessel had filled", step.t,
                          step.before.tip_structure)
                break


def _unseen_injections(attempt: Attempt, flags: _Flags) -> None:
    """Intraneural and blind injections (tests and injectate): found from the steps, the tip's structure
    at each injection and the shots around it."""
    steps = attempt.steps
    for index, step in enumerate(steps):
        if step.action.type not in INJECTIONS:
            continue
        what = f"{step.action.ml:g} mL of " + ("contrast" if step.action.type == "inject_contrast"
                                                else AGENT_WORDS[step.action.agent])
        tip = step.before.tip_structure
        if tip is not None and (in_group(tip, "nerve_root") or in_group(tip, "dorsal_root_ganglion")):
            flags.add("intraneural_injection", "critical", "Intraneural injection",
                      f"{what} injected with the tip inside the {_words(tip)}: injection into a nerve root can "
                      "injure it",
                      step.t, tip)
        if not _injection_imaged(steps, index):
            flags.add("blind_injection", "critical", "Injection without an image",
                      f"{what} injected where no image had shown the needle, and not imaged live "
                      "or by DSA", step.t, step.before.tip_structure)


def _injection_imaged(steps, index: int) -> bool:
    """Whether a fluoroscopy shot showed the needle where injection ``index`` went in: a shot after the
    needle's last move before it, or a live or DSA run after it before the needle moves again."""
    needle = steps[index].before.needle
    for step in reversed(steps[:index]):
        if step.after.needle is not needle:
            break
        if step.action.type == "fluoro_shot" and step.before.needle is needle:
            return True
    for step in steps[index + 1:]:
        if step.after.needle is not needle:
            return False
        if step.action.type == "fluoro_shot" and step.action.mode in ("live", "dsa"):
            return True
    return False


def _beyond_ventral(attempt: Attempt, flags: _Flags) -> None:
    tracer = attempt.session.tracer
    for t, needle in attempt.needles():
        segments = [s for s in tracer.trace(needle.entry, needle.direction, max(needle.depth_mm, 1e-6)).segments
                    if s.structure != AIR]
        through = next((i for i, s in enumerate(segments) if in_group(s.structure, "dural_sac")), None)
        if through is not None and any(not any(in_group(s.structure, g) for g in _IN_SAC) for s in segments[through:]):
            flags.add("beyond_ventral_epidural", "major", "Beyond the ventral epidural space",
                      "the needle passed through the dural sac and out of its ventral side", t, "dural_sac")
    if attempt.scenario.procedure != "transforaminal_epidural":
        return
    upper, lower = attempt.scenario.target.level.split("-")
    line = posterior_body_line(attempt.session.anatomy, tracer, upper,
                               (f"{upper}.body", f"{upper}-{lower}.disc", f"{lower}.body"))
    if line is None:
        return
    disc = tracer.codes_in_group(f"{upper}-{lower}.disc")
    for points, times in attempt.tip_paths():
        # A tip in the disc is the intradiscal flag's business; this one is for what lies beyond.
        beyond = np.where(np.isin(tracer.codes_at(points), disc), -np.inf, line.ventral_mm(points))
        if (beyond > VENTRAL_TOLERANCE_MM).any():
            # Reported at its deepest (the distance a lateral view shows), timed when it first crossed.
            first, deepest = int(np.argmax(beyond > VENTRAL_TOLERANCE_MM)), int(np.argmax(beyond))
            where = tracer.names[int(tracer.codes_at(points[deepest:deepest + 1])[0])]
            into = f", into the {clinical_name(where)}" if where != AIR else ""
            flags.add("beyond_ventral_epidural", "major", "Beyond the ventral epidural space",
                      f"the tip went {beyond[deepest]:.1f} mm ventral to the posterior vertebral-body line (on "
                      f"lateral){into}: past the foramen, where the disc, the vertebral body and the psoas lie",
                      float(times[first]), where if where != AIR else f"{upper}-{lower}.disc")


@dataclass(frozen=True)
class PosteriorLine:
    """The posterior outline of vertebral bodies and discs as a true lateral view of a vertebra shows it.

    Points are expressed in the vertebra's frame (rows of ``frame``: lateral, posterior and cranial unit
    axes, about ``origin``); ``boundary[k]`` is the most posterior coordinate of the structures in the
    k-th slab of ``slab_mm`` along the cranial axis, from ``start_mm``.
    """

    origin: np.ndarray
    frame: np.ndarray
    start_mm: float
    slab_mm: float
    boundary: np.ndarray

    def ventral_mm(self, points: np.ndarray) -> np.ndarray:
        """How far (mm) each point lies ventral to the outline at its height; -inf where the outline
        does not reach that height."""
        local = (np.asarray(points, dtype=np.float64) - self.origin) @ self.frame.T
        slab = np.floor((local[:, 2] - self.start_mm) / self.slab_mm).astype(int)
        inside = (slab >= 0) & (slab < len(self.boundary))
        result = np.full(len(local), -np.inf)
        result[inside] = self.boundary[slab[inside]] - local[inside, 1]
        return np.where(np.isfinite(result), result, -np.inf)


def vertebra_frame(anatomy: Anatomy, level: str) -> tuple[np.ndarray, np.ndarray]:
    """(origin, rows lateral-to-left / posterior / cranial) of vertebra ``level``: its body centre, the
    normal of its superior endplate and the line between its pedicles; the LPS axes where the anatomy
    lacks those landmarks (an imported CT)."""
    try:
        origin = anatomy.landmark(f"{level}.body.center")
        cranial = anatomy.direction(f"{level}.superior_endplate.normal")
        left = anatomy.landmark(f"{level}.pedicle.left.center") - anatomy.landmark(f"{level}.pedicle.right.center")
    except SpinesimError:
        return np.zeros(3), np.eye(3)
    left = left - np.dot(left, cranial) * cranial
    left /= np.linalg.norm(left)
    return origin, np.stack([left, np.cross(cranial, left), cranial])


def posterior_body_line(anatomy: Anatomy, tracer: Tracer, level: str, groups: tuple[str, ...]) -> PosteriorLine | None:
    """The :class:`PosteriorLine` of the voxels of ``groups`` seen in the frame of vertebra ``level``
    (None if they have no voxels); ``tracer`` is the anatomy's, and the line is kept on the anatomy."""
    return anatomy.derived(("safety.posterior_line", level, groups),
                           lambda: _posterior_body_line(anatomy, tracer, level, groups))


def _posterior_body_line(anatomy: Anatomy, tracer: Tracer, level: str, groups: tuple[str, ...]) -> PosteriorLine | None:
    codes = tracer.codes_in_groups(groups)
    ijk = np.argwhere(np.isin(tracer.codes, codes)) if codes.size else np.zeros((0, 3), int)
    if len(ijk) == 0:
        return None
    origin, frame = vertebra_frame(anatomy, level)
    local = (tracer.volume.voxel_to_world(ijk) - origin) @ frame.T
    slab = float(np.max(tracer.volume.spacing))
    start = float(local[:, 2].min())
    index = np.floor((local[:, 2] - start) / slab).astype(int)
    boundary = np.full(index.max() + 1, -np.inf)
    # The outline is the voxels' outer face: half a voxel behind the most posterior centre.
    np.maximum.at(boundary, index, local[:, 1] + 0.5 * slab)
    return PosteriorLine(origin, frame, start, slab, boundary)


def _ablation_flags(attempt: Attempt, flags: _Flags) -> None:
    """A lesion at the ventral ramus (too close, or where the leg twitched) and a lesion never motor-tested."""
    final = attempt.final
    for lesion in final.lesions:
        tested, leg = motor_tested(final, lesion)
        gap_mm = lesion.root_mm - 0.5 * lesion.lesion.width_mm
        if gap_mm < LESION_ROOT_MARGIN_MM:
            reach = "took in" if gap_mm <= 0.0 else f"reached within {gap_mm:.1f} mm of"
            flags.add("ventral_ramus_lesion", "critical", "Lesion at the ventral ramus",
                      f"the {lesion.lesion.width_mm:.0f} mm wide lesion {reach} the ventral ramus / nerve root: "
                      "a motor deficit and burning leg pain can follow", lesion.t)
        elif leg:
            flags.add("ventral_ramus_lesion", "critical", "Lesion at the ventral ramus",
                      "a lesion was made where motor stimulation had twitched the leg: the ventral ramus was within "
                      "reach of the heat", lesion.t)
        if not tested:
            flags.add("lesion_without_motor_test", "critical", "Lesion without motor testing",
                      "a lesion was made with no motor stimulation (2 Hz) at that cannula position: nothing showed "
                      "the ventral ramus was clear", lesion.t)


def _sacral_flags(attempt: Attempt, flags: _Flags) -> None:
    """Caudal: the tip too high in the canal; sacroiliac joint: the tip through the joint into the pelvis."""
    procedure, tracer = attempt.scenario.procedure, attempt.session.tracer
    if procedure == "caudal_epidural":
        end = dural_sac_end(tracer)
        for points, times in attempt.tip_paths():
            if end is None:
                return
            high = np.linalg.norm(points - end, axis=1) < CAUDAL_SAC_MARGIN_MM
            if high.any():
                first = int(np.argmax(high))
                gap = float(np.min(np.linalg.norm(points[high] - end, axis=1)))
                flags.add("too_high_in_sacral_canal", "major", "Needle too high in the sacral canal",
                          f"the tip rose to {gap:.0f} mm from the end of the dural sac, above S3: keep it "
                          f"{CAUDAL_SAC_MARGIN_MM:g} mm or more below the sac on lateral", float(times[first]),
                          "dural_sac")
                return
    elif procedure == "sacroiliac_joint_injection":
        joint = f"sacroiliac_joint.{attempt.scenario.target.side}"
        for t, needle in attempt.needles():
            segments = [s for s in tracer.trace(needle.entry, needle.direction, max(needle.depth_mm, 1e-6)).segments
                        if s.structure != AIR]
            entered = next((i for i, s in enumerate(segments) if in_group(s.structure, joint)), None)
            if entered is None:
                continue
            # Out of the joint's far side: past it along the shaft, in soft tissue (bone would stop the needle).
            out = segments[-1].structure
            if entered < len(segments) - 1 and not in_group(out, joint) and segments[-1].tissue not in BONE_TISSUES:
                flags.add("through_sacroiliac_joint", "major", "Through the sacroiliac joint",
                          f"the needle went through the joint and out of its front into the {_words(out)}: the L5 "
                          "and S1 ventral rami and the iliac vessels lie there", t, out)
                return


def _wrong_level(attempt: Attempt, flags: _Flags) -> None:
    """The final tip on target at a neighbouring level (and not at its own)."""
    final, session = attempt.final, attempt.session
    if final.needle is None or final.in_target:
        return
    tip = final.needle.tip
    for spec in _neighbouring_targets(attempt.scenario):
        try:
            other = target_for(attempt.scenario.model_copy(update={"target": spec}), session.anatomy, session.tracer)
        except SpinesimError:
            continue  # that level lacks the landmarks (the edge of the modelled spine)
        if other.zone.contains(tip, final.tip_structure or AIR, final.tip_tissue or AIR):
            flags.add("wrong_level", "major", "Wrong level",
                      f"the needle ended in the {other.description} instead of the {session.target.description}",
                      final.t, other.landmark)
            return


def _neighbouring_targets(scenario: Scenario) -> list[TargetSpec]:
    """The same target spec one level up and one level down (where such levels exist)."""
    spec = scenario.target
    found = []
    if spec.level is None and spec.nerve is None:
        return found  # the sacrum: no neighbouring level
    if scenario.procedure in NERVE_PROCEDURES:
        index = LEVELS.index(spec.nerve_level)
        for level in (LEVELS[i] for i in (index - 1, index + 1) if 0 <= i < len(LEVELS) - 1):
            nerve = f"{level} {'dorsal ramus' if level == 'L5' else 'medial branch'}"
            if scenario.procedure == "medial_branch_block" or nerve in RFA_NERVES:
                found.append(TargetSpec(nerve=nerve, side=spec.side))
        return found
    index = LEVELS.index(spec.level.split("-")[0])
    for upper in (LEVELS[i] for i in (index - 1, index + 1) if 0 <= i < len(LEVELS) - 1):
        found.append(TargetSpec(level=f"{upper}-{level_below(upper)}", side=spec.side, approach=spec.approach))
    return found
