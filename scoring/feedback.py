"""Feedback a resident can act on: what happened, in clinical words, and what to do next time.

Sentences are built from the flags, the metrics and the expert comparison. One headline comes first,
the point that matters most: a critical or major event, else where the injectate went or the tip
ended when that was wrong (with the fix for the direction it was off, per procedure, from
clinical.md §2), else the biggest process miss (contrast, the depth view, loss of resistance, then
effort: shots, time, redirections, path length). The rest follow by level. Advice is per procedure
(no transforaminal advice to a medial branch block) and cites only what the attempt did.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from scenarios.schema import NERVE_PROCEDURES, Scenario
from scoring.checklist import in_words
from scoring.expert import ExpertComparison
from scoring.exposure import HABITS, main_habit
from scoring.grade import COVERAGE_GOOD, EXPERT_RANGE, PARALLEL_GOOD_DEG
from scoring.metrics import Metrics, dap_text
from scoring.proximity import NearMiss
from scoring.safety import Flag
from simulator.needle.contrast import APPEARANCE
from simulator.session.fold import READING_OF_PATTERN

Level = Literal["critical", "warning", "tip", "good"]
# An offset component smaller than this (mm) is not worth a word [ED].
NOTABLE_MM = 1.5

# What to do when the tip ended off target in a direction (clinical.md §2.1-§2.4).
ADVICE: dict[str, dict[str, str]] = {
    "transforaminal_epidural": {
        "caudal": "on the lateral view, aim for the posterior-superior foramen, just under the pedicle",
        "cranial": "aim just below the pedicle's 6 o'clock position on the oblique view, not into the pedicle",
        "ventral": "stop in the posterior third of the foramen on lateral, behind the posterior vertebral-body line",
        "dorsal": "advance under the lateral view until the tip reaches the posterior-superior foramen",
        "lateral": "on AP the tip belongs under the pedicle's 6 o'clock, not lateral to the pedicle",
        "medial": "keep the tip under the 6 o'clock of the pedicle on AP: medial to it lie the dural sleeve and sac",
    },
    "interlaminar_epidural": {
        "caudal": "tilt the C-arm to open the interlaminar window on AP and aim at its centre",
        "cranial": "tilt the C-arm to open the interlaminar window on AP and aim at its centre",
        "ventral": "on the contralateral oblique stop at the ventral interlaminar line and confirm loss of resistance",
        "dorsal": "advance in 1-2 mm steps on the contralateral oblique, testing loss of resistance, until it is lost",
        "lateral": "enter just off the midline on the symptomatic side and aim at the window's centre",
        "medial": "enter just off the midline on the symptomatic side and aim at the window's centre",
    },
    "facet_intra_articular": {
        "caudal": "aim at the lower third of the joint line, the inferior recess, on the oblique that opens it",
        "cranial": "aim at the lower third of the joint line, the inferior recess, on the oblique that opens it",
        "ventral": "the joint is shallow: stop on entering the capsule instead of pushing through it",
        "dorsal": "touch the articular pillar at the joint line, then step into the capsule",
        "lateral": "rotate until the joint line is a lucent stripe and stay on it: lateral is the pillar's edge",
        "medial": "rotate until the joint line is a lucent stripe and stay on it: medial is the interlaminar space",
    },
    "medial_branch_block": {
        "caudal": "slide up to the notch where the SAP meets the upper border of the transverse process",
        "cranial": "the nerve lies in the groove at the top of the transverse process, below the pedicle: go lower",
        "ventral": "rest on the bone of the SAP-TP junction; the groove is on its dorsal surface",
        "dorsal": "advance until the tip touches bone at the SAP-TP junction",
        "lateral": "move medially onto the base of the SAP where it meets the transverse process",
        "medial": "move laterally to the junction of the SAP with the transverse process",
    },
}
# The sacroiliac joint's caudal third and the sacral canal above the hiatus (Dussault 2000; Aggarwal 2009).
ADVICE["sacroiliac_joint_injection"] = {
    "caudal": "aim at the caudal third of the joint, not its lowest tip, where the joint ends in ligament",
    "cranial": "aim lower: the caudal third of the joint, below the iliac overhang, is the way in",
    "ventral": "stop once the needle is in the joint: a few millimetres past the posterior joint line is enough",
    "dorsal": "advance along the joint line on the oblique until the needle gives into the joint",
    "lateral": "turn the C-arm until the two joint lines part and aim at the medial (posterior) one",
    "medial": "turn the C-arm until the two joint lines part and aim at the medial (posterior) one, not the sacrum",
}
ADVICE["caudal_epidural"] = {
    "caudal": "advance a little further through the sacrococcygeal ligament into the canal, watching on lateral",
    "cranial": "stop lower in the canal: on lateral keep the tip below S3, well short of the dural sac",
    "ventral": "flatten the needle once through the ligament so the tip stays off the canal's front wall",
    "dorsal": "advance through the ligament between the cornua until resistance is lost",
    "lateral": "enter in the midline between the two sacral cornua",
    "medial": "enter in the midline between the two sacral cornua",
}
ADVICE["radiofrequency_ablation"] = ADVICE["medial_branch_block"] | {
    "dorsal": "lay the cannula down the groove until the tip touches the bone at the SAP-TP junction",
}
# The L5 dorsal ramus is blocked on the sacrum, not on a transverse process (clinical.md §2.4 [S3]).
L5_DORSAL_RAMUS_ADVICE = {
    "caudal": "slide up to the notch where the base of the S1 SAP meets the upper border of the sacral ala",
    "cranial": "the nerve crosses the ala at the base of the S1 SAP, below the L5-S1 joint: go lower",
    "ventral": "rest on the bone of the sacral ala; beyond its upper edge lies the psoas",
    "dorsal": "advance until the tip touches bone where the S1 SAP meets the sacral ala",
    "lateral": "move medially onto the ala next to the base of the S1 SAP",
    "medial": "move laterally off the S1 SAP onto the sacral ala",
}
OPPOSITE = {"cranial": "caudal", "ventral": "dorsal", "lateral": "medial"}
# How the expected contrast looks, per procedure (clinical.md §2.7).
EXPECTED_LOOK = {
    "interlaminar_epidural": "an epidurogram: contrast along the undersurface of the lamina, bubbly, at the ventral "
                             "interlaminar line on the contralateral oblique",
    "transforaminal_epidural": "contrast outlining the root sleeve and flowing medially into the ventral epidural space",
    "facet_intra_articular": "an arthrogram filling the joint line and its recesses",
    "medial_branch_block": "a small blob at the tip with no vessel and no epidural spread",
    "radiofrequency_ablation": "a small blob at the tip with no vessel and no epidural spread",
    "sacroiliac_joint_injection": "an arthrogram: a thin curved line up the joint with its capsule outlined at the "
                                  "lower end (some spread beside the joint is common)",
    "caudal_epidural": "a caudal epidurogram: contrast rising up the sacral canal and out along the sacral roots on "
                       "both sides, like a Christmas tree",
}
# What to do after each flag, per procedure where the fix differs (clinical.md §2.1-§2.4, §3); a plain
# string is the same advice for every procedure.
FLAG_ADVICE: dict[str, str | dict[str, str]] = {
    "dural_puncture": {
        "interlaminar_epidural": "Advance in 1-2 mm steps on the contralateral oblique and test loss of resistance after "
                                 "each step once in the ligamentum flavum; stop at the ventral interlaminar line.",
        "transforaminal_epidural": "Keep the tip under the pedicle's 6 o'clock on AP, never medial to it, and check "
                                   "depth on the lateral before advancing further.",
        "facet_intra_articular": "The joint is shallow and lateral to the canal: stay on the joint line in the oblique "
                                 "that opens it and check depth on the lateral before advancing further.",
        "medial_branch_block": "The target is on bone outside the canal: aim for the base of the superior "
                               "articular process on the oblique and advance only until the tip touches bone.",
        "caudal_epidural": "Advance only a few millimetres past the sacrococcygeal ligament and watch the tip on "
                           "lateral: the dural sac ends at S2, lower in some patients; keep below S3.",
    },
    "intrathecal_injection": "Aspirate and look for CSF before injecting; stop at once when contrast outlines the "
                             "cauda equina or layers dependently.",
    "arterial_injection": {
        "transforaminal_epidural": "Inject contrast under DSA (or live fluoroscopy) and stop at the first thin, "
                                   "fast-clearing line; reposition before any injectate. Never inject particulate "
                                   "steroid transforaminally.",
        "default": "Inject contrast under live fluoroscopy and stop at the first thin, fast-clearing line; "
                   "reposition before any injectate.",
    },
    "cord_contact": {
        "interlaminar_epidural": "Check the level before advancing: the conus usually ends at L1-L2; stay at or below "
                                 "L2-L3 for interlaminar access and control depth on the contralateral oblique.",
        "default": "Check the level and the depth before advancing: the cord lies in the canal, medial and ventral to "
                   "the target; control depth on the lateral view.",
    },
    "intradiscal_injection": "Contrast filling the disc means the tip is in the annulus: withdraw to the posterior disc "
                             "margin on lateral before injecting again.",
    "root_contact": {
        "transforaminal_epidural": "A shooting pain down the leg means the needle is on the nerve: withdraw 1-2 mm and "
                                   "redirect, staying under the pedicle (the root runs below and lateral to the safe "
                                   "triangle).",
        "interlaminar_epidural": "A shooting pain down the leg means the needle is on the nerve: withdraw 1-2 mm "
                                 "and redirect toward the midline of the interlaminar window, away from the lateral "
                                 "recess.",
        "default": "A shooting pain down the leg means the needle is on the nerve: withdraw 1-2 mm and redirect onto "
                   "the bone of the posterior elements; the root runs ventral to them, in the foramen.",
    },
    "cauda_equina_contact": "The needle went through the dura into the sac: withdraw, and control depth on the "
                            "contralateral oblique or lateral view.",
    "intradiscal": {
        "transforaminal_epidural": "On lateral, stay behind the posterior disc margin: the disc lies in front of the "
                                   "foramen.",
        "default": "The disc lies ventral to the canal and the foramen: check depth on the lateral before advancing.",
    },
    "vascular_pattern_misread": "A thin line that branches or clears within a second or two is a vessel: name it "
                                "vascular, withdraw and re-site, and test again before any injectate.",
    "ventral_ramus_lesion": "Motor-test at 2 V before every lesion; a leg twitch means the active tip is near the "
                            "ventral ramus: withdraw and lay the cannula more dorsally along the groove, then test "
                            "again before heating.",
    "lesion_without_motor_test": "Before every lesion, and again after every move of the cannula, stimulate at 2 Hz "
                                 "up to 2 V: multifidus should twitch, the leg must not.",
    "venous_injection": {
        "caudal_epidural": "Thin channels that wash out are the sacral venous plexus on the canal's front wall: "
                           "withdraw 1-2 mm, flatten the needle and test again under live fluoroscopy.",
        "default": "Contrast that washes out along thin channels is venous: reposition before injecting.",
    },
    "too_high_in_sacral_canal": "Watch the tip on lateral as you advance up the canal and stop below S3: the dural "
                                "sac ends at S2, lower in some patients.",
    "through_sacroiliac_joint": "The joint is only a few centimetres deep: advance in small steps on the oblique and "
                                "stop as soon as the needle is in the joint; check on lateral.",
    "beyond_ventral_epidural": {
        "transforaminal_epidural": "Check depth on the lateral view more often: the tip must stay behind the posterior "
                                   "vertebral-body line.",
        "interlaminar_epidural": "On the contralateral oblique stop at the ventral interlaminar line: beyond it lie "
                                 "the sac and the disc.",
        "default": "Check depth on the lateral view more often: the target lies on the posterior elements.",
    },
    "wrong_level": "Count the levels on AP from the sacrum and from T12 before placing the needle, and check the "
                   "count again on the final images.",
    "intraneural_injection": "Pain on injection or a tip on the nerve is a stop sign: withdraw 1-2 mm, re-image and "
                             "test with contrast before any injectate.",
    "blind_injection": "Confirm the final position on the depth view, then inject under live fluoroscopy: only the "
                       "image shows where the injectate goes.",
    "excessive_shots": "Align the AP once, then stay in the trajectory view while advancing and switch to the depth "
                       "view only near the target.",
    "excessive_fluoro_time": "Use single pulses while positioning and live runs only for the contrast test.",
    "repeated_bone_contact": "Use the images to steer rather than walking the needle on bone.",
    "vessel_puncture": "Withdraw slightly, redirect, and test with contrast under live fluoroscopy before any "
                       "injectate.",
}
# The order in which feedback is read after its headline.
LEVEL_ORDER = {"critical": 0, "warning": 1, "tip": 2, "good": 3}
# Which point is the headline (lowest first): a safety event, where the injectate or the tip went
# wrong, a process miss, then effort; what went right only when nothing else is worth saying.
FLAG_RANK = {"critical": 0, "major": 1, "minor": 6}
OUTCOME_RANK = {"warning": 2, "tip": 4, "good": 8}
PROCESS_RANK = {"warning": 3, "tip": 5, "good": 8}
EFFORT_RANK = 7


class FeedbackItem(BaseModel):
    """One sentence of feedback; ``level`` orders and colours it."""

    level: Level
    text: str


def _direction_words(offset: dict[str, float], midline: bool) -> list[tuple[str, float]]:
    """(direction word, mm) for each notable component, largest first."""
    words = []
    for axis, value in offset.items():
        if abs(value) < NOTABLE_MM:
            continue
        if axis == "lateral" and midline:
            words.append(("to the patient's left" if value > 0 else "to the patient's right", abs(value)))
        else:
            words.append((axis if value > 0 else OPPOSITE[axis], abs(value)))
    return sorted(words, key=lambda w: -w[1])


def _mm(value: float) -> str:
    return f"{value:.0f} mm" if value >= 2.0 else f"{value:.1f} mm"


def feedback(scenario: Scenario, metrics: Metrics, flags: list[Flag], near_misses: list[NearMiss],
             expert: ExpertComparison) -> list[FeedbackItem]:
    """Feedback sentences: one headline first, then the rest, most important first.

    The headline is the one point that matters most: a critical event, else a major one, else where
    the injectate went or the tip ended when that was wrong, else the biggest process miss (technique,
    then a minor event, then effort), else what went right.
    """
    procedure = scenario.procedure
    ranked: list[tuple[int, FeedbackItem]] = [(FLAG_RANK[f.severity], _flag_item(f, procedure)) for f in flags]
    ranked += [(OUTCOME_RANK[i.level], i) for i in _contrast_outcome(scenario, metrics) + _accuracy(scenario, metrics)]
    blind = any(f.code == "blind_injection" for f in flags)
    ranked += [(PROCESS_RANK[i.level], i) for i in _technique(scenario, metrics, blind) + _near_misses(near_misses)]
    ranked += [(EFFORT_RANK, i) for i in _effort(scenario, metrics, expert, flags)]
    if all(item.level == "good" for _, item in ranked):
        clean = FeedbackItem(level="good", text="A clean, efficient attempt: nothing to correct.")
        ranked.append((EFFORT_RANK + 1, clean))
    order = sorted(ranked, key=lambda pair: pair[0])
    rest = sorted(order[1:], key=lambda pair: (LEVEL_ORDER[pair[1].level], pair[0]))
    return [order[0][1]] + [item for _, item in rest]


def _flag_item(flag: Flag, procedure: str) -> FeedbackItem:
    advice = FLAG_ADVICE.get(flag.code)
    if isinstance(advice, dict):
        advice = advice.get(procedure, advice.get("default"))
    when = f" at {flag.t:.0f} s" if flag.t is not None else ""
    text = f"{flag.title}{when}: {flag.message}." + (f" {advice}" if advice else "")
    return FeedbackItem(level={"critical": "critical", "major": "warning", "minor": "tip"}[flag.severity], text=text)


def _the(name: str | None) -> str:
    """A structure in words with its article ("the left multifidus", "CSF in the dural sac")."""
    words = in_words(name)
    return words if words.startswith("CSF") else f"the {words}"


def _contrast_outcome(scenario: Scenario, metrics: Metrics) -> list[FeedbackItem]:
    """Where the injectate went, when it went somewhere the target does not show."""
    procedure = scenario.procedure
    if not metrics.contrast_patterns or metrics.contrast_pattern_correct:
        return []
    wrong = metrics.contrast_patterns[-1]  # the last test decides (an earlier wrong one may have been re-sited)
    return [FeedbackItem(level="warning", text=f"The contrast gave the {in_words(wrong)} pattern "
                         f"({APPEARANCE[wrong].split(': ', 1)[-1]}); the target shows {EXPECTED_LOOK[procedure]}. "
                         "Reposition before injecting anything else.")]


def _ablation_outcome(metrics: Metrics) -> list[FeedbackItem]:
    """What the lesions did to the nerve: how much of its course they covered, and why (clinical.md §2.5)."""
    if not metrics.lesions:
        return [FeedbackItem(level="warning", text="No lesion was made: the nerve is untreated.")]
    covered, angle = metrics.nerve_coverage, metrics.cannula_nerve_angle_deg
    lesions = f"{metrics.lesions} lesion{'s' if metrics.lesions > 1 else ''}"
    percent = f"Your {lesions} covered {100 * covered:.0f}% of the nerve's course in the groove"
    if angle is not None and angle > PARALLEL_GOOD_DEG:
        return [FeedbackItem(level="warning", text=f"{percent}, with the cannula {angle:.0f} degrees off the nerve: "
                             "an RF lesion is narrow and reaches the nerve only along the active tip. Tilt the C-arm "
                             "caudally and come from below so the cannula lies along the groove, parallel to the "
                             "nerve.")]
    if covered < COVERAGE_GOOD:
        return [FeedbackItem(level="tip", text=f"{percent}: the cannula lay parallel; draw it back along the groove "
                             "by half its active tip, motor-test again, and make a second lesion to cover more of the "
                             "nerve.")]
    return [FeedbackItem(level="good", text=f"{percent}, the cannula parallel to it ({angle:.0f} degrees).")]


def _accuracy(scenario: Scenario, metrics: Metrics) -> list[FeedbackItem]:
    if metrics.passes == 0:
        return [FeedbackItem(level="warning", text="No needle was placed.")]
    if metrics.nerve_coverage is not None:
        return _ablation_outcome(metrics)
    if metrics.offset is None:
        return [FeedbackItem(level="warning", text="The needle was out of the patient at the end of the attempt: "
                                                   "finish with the tip at the target, where it was confirmed.")]
    tolerance = scenario.tolerances().tip_mm
    distance = metrics.tip_to_target_mm
    offset = metrics.offset
    tip = _the(metrics.tip_structure)
    words = _direction_words({"cranial": offset.cranial_mm, "ventral": offset.ventral_mm, "lateral": offset.lateral_mm},
                             scenario.target.side == "midline")
    if metrics.in_zone and distance <= tolerance:
        spread = (f", and the contrast gave the {in_words(metrics.contrast_patterns[-1])} pattern it should"
                  if metrics.contrast_pattern_correct else "")
        return [FeedbackItem(level="good", text=f"Your final tip was on target ({_mm(distance)} from the target point, "
                                                f"in {tip}){spread}.")]
    if not words:
        return [FeedbackItem(level="tip", text=f"Your final tip was {_mm(distance)} from the target but in "
                                               f"{tip}, outside the acceptance zone.")]
    main, size = words[0]
    advice = _advice(scenario).get(main)
    also = f" and {_mm(words[1][1])} {words[1][0]}" if len(words) > 1 else ""
    where = "in the target zone" if metrics.in_zone else f"in {tip}, outside the target zone"
    preposition = "of" if any(w.startswith("to the") for w, _ in words[:2]) else "to"
    text = f"Your final tip was {_mm(size)} {main}{also} {preposition} the target ({where})"
    if advice:
        text += f": {advice}"
    items = [FeedbackItem(level="tip" if metrics.in_zone else "warning", text=text + ".")]
    depth = metrics.depth_error_mm
    if depth is not None and abs(depth) > scenario.tolerances().depth_mm and main not in ("ventral", "dorsal"):
        items.append(FeedbackItem(level="tip", text=f"On the {metrics.depth_view} the tip was {_mm(abs(depth))} "
                                  f"{'beyond' if depth > 0 else 'short of'} the target depth."))
    return items


def _advice(scenario: Scenario) -> dict[str, str]:
    """What to do per direction of a miss, for this procedure and target."""
    if scenario.procedure in NERVE_PROCEDURES and scenario.target.nerve_level == "L5":
        return L5_DORSAL_RAMUS_ADVICE
    return ADVICE[scenario.procedure]


def _technique(scenario: Scenario, metrics: Metrics, blind: bool) -> list[FeedbackItem]:
    """Process misses; ``blind``: an injection no image showed was flagged (its flag says what to do)."""
    procedure = scenario.procedure
    if metrics.nerve_coverage is not None:
        return _ablation_technique(metrics)
    items = []
    if metrics.contrast_pattern_correct is None:
        items.append(FeedbackItem(level="warning", text=f"You injected no contrast: confirm the position with "
                                  f"{EXPECTED_LOOK[procedure]} before any injectate."))
    if metrics.contrast_checked is False and not blind:
        imaged = "DSA" if scenario.imaging.dsa else "live fluoroscopy"
        items.append(FeedbackItem(level="warning", text=f"Inject contrast under {imaged}, starting the run as you "
                                  "inject: intravascular spread clears within seconds, so only a run during the "
                                  "injection shows it."))
    elif metrics.dsa_used is False:
        items.append(FeedbackItem(level="warning", text="Use DSA for the contrast test: live fluoroscopy misses some "
                                  "intravascular injections that subtraction shows."))
    items += _readings(metrics)
    if metrics.vascular_tests_caught:
        items.append(FeedbackItem(level="good", text="Your contrast test caught a vascular uptake and no injectate "
                                  "went there: that is what the test dose is for (re-site, then test again)."))
    if metrics.injectate_tested is False:
        items.append(FeedbackItem(level="warning", text="You gave the injectate where no contrast test under live "
                                  "fluoroscopy or DSA had gone in: after every move of the needle, test again first."))
    if metrics.offset is not None and not metrics.depth_view_checked:
        items.append(FeedbackItem(level="warning", text=f"Confirm the final tip on the {metrics.depth_view} before "
                                  "injecting: a position seen in one view only can be far too deep or shallow."))
    if metrics.loss_of_resistance_confirmed is False:
        items.append(FeedbackItem(level="warning", text="Confirm loss of resistance at the final position before "
                                  "injecting: it tells you the tip has left the ligamentum flavum."))
    if metrics.hub_at_skin:
        items.append(FeedbackItem(level="tip", text="The needle went in to its hub: when the target is this deep, "
                                  "choose a longer needle (5 in, 127 mm) before you start."))
    return items


def _readings(metrics: Metrics) -> list[FeedbackItem]:
    """How the trainee named each contrast pattern: a misread pattern with what it looks like."""
    items = []
    for pattern, reading in zip(metrics.contrast_patterns, metrics.contrast_readings):
        actual = READING_OF_PATTERN[pattern]
        look = APPEARANCE[pattern].split(": ", 1)[-1]
        if reading is None:
            items.append(FeedbackItem(level="tip", text=f"Name the pattern after each contrast run: this one was "
                                      f"{in_words(actual)} ({look})."))
        elif reading != actual:
            items.append(FeedbackItem(level="warning", text=f"You read {in_words(actual)} contrast as "
                                      f"{in_words(reading)}; {in_words(actual)} contrast shows as {look}."))
    return items


def _ablation_technique(metrics: Metrics) -> list[FeedbackItem]:
    """The ablation's process misses (clinical.md §2.5 [S39][S43]); the safety flags speak for lesions made
    without a motor test."""
    items = []
    if metrics.lesions and not metrics.sensory_confirmed:
        items.append(FeedbackItem(level="warning", text="Stimulate at 50 Hz before lesioning: the patient should feel "
                                  "concordant tingling or pressure in the back at 0.5 V or less; a higher threshold "
                                  "means the active tip is not on the nerve."))
    if metrics.lesions and not metrics.anaesthetised_before_lesion:
        items.append(FeedbackItem(level="tip", text="Inject 0.5-1 mL of local anaesthetic through the cannula after "
                                  "the motor test and before the heat: the lesion is painful."))
    if metrics.offset is not None and not metrics.depth_view_checked:
        items.append(FeedbackItem(level="warning", text=f"Confirm the cannula on the {metrics.depth_view} before "
                                  "lesioning: the tip belongs on the bone of the groove, not past it toward the "
                                  "foramen."))
    return items


def _near_misses(near_misses: list[NearMiss]) -> list[FeedbackItem]:
    items = []
    for approach in near_misses:
        if not approach.near_miss:
            continue
        expert = (f" (the expert path keeps {_mm(approach.expert_shaft_mm)})"
                  if approach.expert_shaft_mm is not None else "")
        where = _the(approach.structure) if approach.structure else approach.label
        items.append(FeedbackItem(level="warning", text=f"Near miss: the needle passed {_mm(approach.shaft_mm)} from "
                                  f"{where}{expert}."))
    return items


def _effort(scenario: Scenario, metrics: Metrics, expert: ExpertComparison, flags: list[Flag]) -> list[FeedbackItem]:
    limits, tolerances = scenario.limits, scenario.tolerances()
    items = []
    flagged = {f.code for f in flags}
    if metrics.fluoro_shots > 2 * limits.shots / 3 and "excessive_shots" not in flagged:
        baseline = f"; the expert path takes {expert.expert_shots}" if expert.expert_shots else ""
        items.append(FeedbackItem(level="tip", text=f"You took {metrics.fluoro_shots} fluoroscopy shots (limit "
                                  f"{limits.shots}{baseline}): align the AP once, then stay in the trajectory view while "
                                  "advancing and switch to the depth view only near the target."))
    if metrics.redirects > tolerances.redirects:
        items.append(FeedbackItem(level="tip", text=f"You needed {metrics.redirects} redirections or re-insertions: "
                                  "set the trajectory view so the needle is a dot before advancing, and correct early "
                                  "while it is shallow."))
    if expert.path_ratio is not None and expert.path_ratio > tolerances.path_ratio:
        items.append(FeedbackItem(level="tip", text=f"Your tip travelled {metrics.path_length_mm:.0f} mm, "
                                  f"{expert.path_ratio:.1f} times the expert's {expert.expert_path_length_mm:.0f} mm: "
                                  "fewer, more deliberate moves damage less tissue."))
    if expert.entry_distance_mm is not None and expert.entry_distance_mm > 10.0 and not metrics.in_zone:
        words = _direction_words(dict(zip(("cranial", "ventral", "lateral"), expert.entry_offset)),
                                 scenario.target.side == "midline")
        where = f" {words[0][0]} {'of' if words[0][0].startswith('to the') else 'to'}" if words else " from"
        items.append(FeedbackItem(level="tip", text=f"Your skin entry was {expert.entry_distance_mm:.0f} mm{where} the "
                                  f"expert's and your needle {expert.angle_deg:.0f} degrees off its line: plan the entry "
                                  "point in the trajectory view before puncturing."))
    if metrics.fluoro_seconds > 2 * limits.fluoro_seconds / 3 and "excessive_fluoro_time" not in flagged:
        items.append(FeedbackItem(level="tip", text=f"{metrics.fluoro_seconds:.0f} s of fluoroscopy: use single pulses "
                                  "while positioning and live runs only for the contrast test."))
    expert_dap = expert.expert_dose_area_product_gy_cm2
    habit = main_habit(metrics.dose_by_habit_gy_cm2)
    if (expert_dap and habit and metrics.dose_area_product_gy_cm2 > EXPERT_RANGE * expert_dap
            and "dose_above_reference_level" not in flagged):
        words, fix = HABITS[habit]
        items.append(FeedbackItem(level="tip", text=f"Your dose-area product was {dap_text(metrics.dose_area_product_gy_cm2)}"
                                  f", {metrics.dose_area_product_gy_cm2 / expert_dap:.1f} times the expert's "
                                  f"{dap_text(expert_dap)}, most of it from {words}: {fix}; keep lateral and oblique "
                                  "views few (each costs several AP frames)."))
    if metrics.hints_used:
        cost = metrics.hints_used * scenario.rubric.hint_deduction
        items.append(FeedbackItem(level="tip", text=f"You used {metrics.hints_used} of the {len(scenario.hints)} hints"
                                  + (f" ({cost:g} grade points off)" if cost else "")
                                  + ": next time try the case without them."))
    return items
