"""The procedure's checklist, scored from the action log, each item with the steps that decided it.

No validated procedure-specific checklist exists for fluoroscopic lumbar injections (clinical.md §6.2);
the Spine Intervention Society technique steps are its natural source [S5][S33]: square the level on
AP, place the needle in a trajectory view, advance under intermittent imaging, confirm depth in an
orthogonal view (the multiplanar rule, §1 [S8][S33]), inject contrast under live fluoroscopy (DSA for
transforaminal, §2.2 [S1][S19], §2.7 [S22]) before any injectate and read its pattern. Items take the
3-point form of the task-specific checklists in the ASRA pattern (§6.2 [S131]: done / partly / not
done). Every item carries its evidence: the steps of the log (1-based number, time, what the step
showed) that decided it, so an examiner can check each tick against the timeline.

==============================  ======================================================================
item (key)                      done / partly (otherwise not done); procedures
==============================  ======================================================================
``level_squared``               a shot on the target's AP (within :data:`SQUARED_TOLERANCE_DEG` of
                                it: its endplate squared, or for an interlaminar target tilted caudally
                                to open the window, :data:`COUNT_VIEW_WORDS`) before the skin puncture /
                                only after it, or an AP off it (§1 [S5][S33], §2.1); all
``trajectory_view``             a shot in the trajectory view (or along the path then punctured)
                                before the puncture / only after it (§1, §2.6 [S5][S33]); all
``entry_site``                  the first puncture inside the skin region the textbook cone enters
                                through / a later one (§2.1-§2.4) [ED]; all where the target has one
``imaged_advance``              every needle move followed by an image (interlaminar: or a loss-of-
                                resistance test) before the next, one down the trajectory view, no live
                                run to steer / half of them (§1: "keep it a dot while advancing";
                                §3 [S63]: continuous screening raises dose); all
``depth_view_early``            the depth view taken with the needle in before its last advance / only
                                after it (the multiplanar rule, §1 [S8][S33]); all
``loss_of_resistance``          resistance felt, then lost at the final position before injecting /
                                tested but no true loss there (a false loss is debriefed, §2.1 [S13]);
                                interlaminar, caudal (the sacrococcygeal ligament)
``depth_confirmed``             the final position shown on the depth view before injecting / the depth
                                view only at an earlier position (§1 [S8][S33], §6.3); all
``on_bone``                     the final advance stops on bone (the SAP-TP junction, §2.4 [S3]) /
                                bone met earlier but not at the end; medial branch block
``contrast_live``               every contrast test imaged live, by DSA where the scenario offers it,
                                and every injectate given where such a test went in (the needle unmoved
                                since) / some, or live only where DSA was there, or an injectate given
                                untested (§2.2 [S1][S19], §6.3); all
``contrast_volume``             each injection within the procedure's range (§2.6) / below it or up to
                                twice its top; all
``expected_pattern``            the last injection imaged, its pattern the procedure's and the trainee
                                naming it so / imaged and the procedure's, but never named or named
                                wrong (§2.7: seen means read); a wrong pattern followed by re-siting is
                                good practice, not a fault; all
``contrast_on_ap``              the spread imaged on AP after the last injection / imaged, but not on
                                AP (§1: AP shows the spread pattern; §2.7); all
``parallel_placement``          RFA: every lesion with the cannula within 20° of the nerve's course /
                                within 40° (§2.5 [S39]; §6.3 [ED]); radiofrequency ablation
``sensory_test``                RFA: a concordant sensory response at 50 Hz at or below 0.5 V before the
                                first lesion / a response only above it (§2.5 [S39][S41]); RFA
``motor_test``                  RFA: motor stimulation at 2 Hz at every lesion's position before it, no
                                leg twitch lesioned / some lesions tested (§2.5 [S39][S43]); RFA
``local_anaesthetic``           RFA: local anaesthetic through the cannula before the first lesion (§2.5
                                [S39]) / only after it; RFA
``second_lesion``               RFA: a second lesion after repositioning along the groove / a second one
                                at the same position (§2.5 [S39][S42]); RFA
``below_s3``                    caudal: every tip position at least 15 mm below the dural sac's end
                                (at or below S3) and the final one seen on lateral / below it but never
                                seen on lateral (Aggarwal 2009) [ED margin]; caudal epidural
``caudal_third``                sacroiliac joint: the final tip in the joint's caudal part (the lower
                                40% of its labelled height) / in the joint above it (Dussault 2000);
                                sacroiliac joint injection
``few_passes``                  redirections and re-punctures within the rubric's tolerance / up to two
                                more (§6.3 [ED]); not done without a puncture; all
==============================  ======================================================================

The depth view is the target's own (the contralateral oblique for the interlaminar approach, lateral
for the others), the one the metrics and the grade use, so the checklist never disagrees with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
from pydantic import BaseModel

from anatomy_models.structures import clinical_name
from scoring.metrics import (CONTRAST_CHECK_S, EXPECTED_PATTERNS, INJECTIONS, NEEDLE_MOVES, VIEW_TOLERANCE_DEG, Metrics,
                             contrast_runs, injection_window, motor_tested, nerve_angle_deg, tested_injectates)
from simulator.case.targets import CAUDAL_SAC_MARGIN_MM, PARALLEL_DEG, below_sac_end
from simulator.needle.ablation import SENSORY_CRITERION_V
from simulator.needle.contrast import APPEARANCE
from simulator.needle.sacral_contrast import dural_sac_end
from simulator.session.fold import AGENT_WORDS, Step
from simulator.session.history import Attempt

Status = Literal["done", "partly", "not_done"]
STATUS_POINTS: dict[str, float] = {"done": 1.0, "partly": 0.5, "not_done": 0.0}
STATUS_WORDS: dict[str, str] = {"done": "done", "partly": "partly", "not_done": "not done"}
# An endplate reads as squared (one line, not an ellipse) when the beam is within this angle of the
# squared AP [ED]; the wider VIEW_TOLERANCE_DEG names a view in general.
SQUARED_TOLERANCE_DEG = 5.0
# Contrast per injection by procedure, mL (clinical.md §2.6); the medial branch block's "small" is
# read as at most the 0.5 mL a block uses per nerve (§2.4 [S3]) [ED].
CONTRAST_ML_RANGE: dict[str, tuple[float, float]] = {
    "interlaminar_epidural": (1.0, 5.0), "transforaminal_epidural": (1.0, 2.0),
    "facet_intra_articular": (0.1, 0.5), "medial_branch_block": (0.1, 0.5),
    # The sacroiliac joint holds 0.6-2.5 mL (simulator.needle.sacral_contrast): an arthrogram takes up to 1 mL;
    # a caudal epidurogram 2-10 mL to show the sacral roots [ED].
    "sacroiliac_joint_injection": (0.2, 1.0), "caudal_epidural": (2.0, 10.0)}
# Moves that push the tip on (a withdrawal needs no image before the next step).
_DEEPENING = ("place_needle", "advance", "redirect")
# Each procedure's trajectory and depth views in words (clinical.md §2.6).
VIEW_WORDS: dict[str, tuple[str, str]] = {
    "interlaminar_epidural": ("AP with the interlaminar window open (or down the barrel)", "contralateral oblique"),
    "transforaminal_epidural": ("ipsilateral oblique (Scotty dog, SAP under the pedicle)", "lateral"),
    "facet_intra_articular": ("oblique that opens the joint line", "lateral"),
    "medial_branch_block": ("ipsilateral oblique onto the SAP-TP junction", "lateral"),
    "radiofrequency_ablation": ("caudal-oblique down the groove, parallel to the nerve", "lateral"),
    "sacroiliac_joint_injection": ("contralateral oblique that separates the anterior and posterior joint lines",
                                   "lateral"),
    "caudal_epidural": ("lateral of the sacrum, down the canal through the hiatus", "lateral"),
}
# The AP the level is counted on (the target's first view), in words. An interlaminar target's is tilted caudally to
# open the window along the needle (simulator.case.targets.INTERLAMINAR_CRANIAL_DEG): its endplates are not squared
# on it, the window is open (§2.1: "AP with cranio-caudal tilt to open the interlaminar window").
COUNT_VIEW_WORDS: dict[str, str] = {"interlaminar_epidural": "the AP tilted caudally to open its interlaminar window"}
_SQUARED_AP = "the AP with its endplate squared"


class Evidence(BaseModel):
    """One step of the log behind an item: its 1-based number, time (s), action type and what it showed."""

    step: int
    t: float
    action: str
    note: str


class ChecklistItem(BaseModel):
    """One checklist step: as the checklist states it, its status and why, its source, its evidence."""

    key: str
    step: str
    status: Status
    detail: str
    source: str
    evidence: list[Evidence] = []


@dataclass(frozen=True)
class _Log:
    """The attempt as the items read it: its steps, target views and where the needle went in and settled."""

    attempt: Attempt
    metrics: Metrics

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.attempt.steps

    @property
    def procedure(self) -> str:
        return self.attempt.scenario.procedure

    def beam(self, step: Step) -> np.ndarray:
        return self.attempt.session.carm(step.after).beam_direction

    def angle_to_view_deg(self, step: Step, index: int) -> float:
        """Angle (degrees) between a shot's beam and the target's view ``index`` (0 AP, 1 trajectory, 2 depth)."""
        return _angle_deg(self.beam(step), self.attempt.session.target.views[index].carm.beam_direction)

    def in_view(self, step: Step, index: int, tolerance_deg: float = VIEW_TOLERANCE_DEG) -> bool:
        return self.angle_to_view_deg(step, index) <= tolerance_deg

    def down_the_barrel(self, step: Step, direction: np.ndarray | None) -> bool:
        return direction is not None and _angle_deg(self.beam(step), direction) <= VIEW_TOLERANCE_DEG

    def shots(self, start: int = 0, stop: int | None = None) -> list[Step]:
        """The fluoroscopy shots among steps ``[start, stop)`` (0-based indices)."""
        return [s for s in self.steps[start:stop] if s.action.type == "fluoro_shot"]

    def first(self, kind: str) -> int:
        """Index of the first step of ``kind`` (the number of steps if there is none)."""
        return next((i for i, s in enumerate(self.steps) if s.action.type == kind), len(self.steps))

    def settled(self) -> int:
        """Index just after the last needle move before the injection point (the first injectate, else the
        first contrast test; or the end): from here the needle stood where it injected (or ended)."""
        return injection_window(self.steps)[0]

    def injected(self) -> int:
        """Index of the first injection made where the needle settled (the number of steps if none)."""
        return injection_window(self.steps)[1]

    def moves(self) -> list[int]:
        """Indices of the steps that pushed the tip on (a puncture at depth 0 does not)."""
        return [i for i, s in enumerate(self.steps) if s.action.type in _DEEPENING and s.after.needle is not None
                and s.after.needle is not s.before.needle
                and s.after.needle.depth_mm > 0.0]

    def view_words(self, step: Step) -> str:
        """The view a shot was taken in, named by the nearest of the target's views or the needle's axis."""
        names = [(view.name, _angle_deg(self.beam(step), view.carm.beam_direction))
                 for view in self.attempt.session.target.views]
        if step.after.needle is not None:
            names.append(("down the barrel of the needle", _angle_deg(self.beam(step), step.after.needle.direction)))
        name, angle = min(names, key=lambda pair: pair[1])
        if angle <= VIEW_TOLERANCE_DEG:
            return name
        pose = step.after.carm
        return (f"C-arm {'LAO' if pose.primary_deg >= 0 else 'RAO'} {abs(pose.primary_deg):.0f}°, "
                f"{'cranial' if pose.secondary_deg >= 0 else 'caudal'} {abs(pose.secondary_deg):.0f}°")

    def evidence(self, step: Step) -> Evidence:
        return Evidence(step=step.number, t=step.t, action=step.action.type, note=self.note(step))

    def note(self, step: Step) -> str:
        """What a step did and showed, in words."""
        action, kind = step.action, step.action.type
        tip = f"tip in {in_words(step.after.tip_structure)}" if step.after.needle is not None else "no needle"
        if kind == "fluoro_shot":
            number = next(e.data["shot"] for e in step.events if e.kind == "fluoro_shot")
            return f"{action.mode} shot {number}, {self.view_words(step)}, {tip}"
        if kind == "place_needle":
            return f"skin puncture{self.entry_words(step)}, {tip}"
        if kind in ("advance", "withdraw"):
            bone = next((e for e in step.events if e.kind == "bone_contact"), None)
            depth = f"{step.after.needle.depth_mm:.0f} mm" if step.after.needle is not None else "out"
            return f"{kind} {action.mm:.1f} mm to {depth}, " + (f"on bone ({in_words(bone.data['structure'])}), "
                                                              if bone else "") + tip
        if kind == "redirect":
            return f"redirected (pass {step.after.passes}), {tip}"
        if kind == "inject_contrast":
            pattern = next(e.data["pattern"] for e in step.events if e.kind == "contrast")
            return f"{action.ml:g} mL contrast, {in_words(pattern)} pattern, {tip}"
        if kind == "inject_medication":
            return f"{action.ml:g} mL {AGENT_WORDS[action.agent]} (injectate), {tip}"
        if kind == "stimulate":
            return next(e.message for e in step.events if e.kind == "stimulation")
        if kind == "lesion":
            made = next(e for e in step.events if e.kind == "lesion")
            return f"{made.message}, {100 * made.data['coverage']:.0f}% of the nerve's course covered so far"
        if kind == "read_contrast":
            return next(e.debrief for e in step.events if e.kind == "contrast_read")
        if kind == "check_loss_of_resistance":
            test = next(e for e in step.events if e.kind == "loss_of_resistance")
            return f"{test.message}{' (a false loss)' if test.data['false_loss'] else ''}, {tip}"
        return kind.replace("_", " ")

    def entry_words(self, step: Step) -> str:
        target = self.attempt.session.target
        if target.entry_point is None or step.after.needle is None:
            return ""
        return f" {np.linalg.norm(step.after.needle.entry - target.entry_point):.0f} mm from the textbook entry"


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two lines (directions up to sign), degrees."""
    return float(np.degrees(np.arccos(np.clip(abs(np.dot(a, b)) / np.linalg.norm(a) / np.linalg.norm(b), 0.0, 1.0))))


def in_words(name: str | None) -> str:
    """A structure or contrast pattern name in clinical words ("ligamentum_flavum.L4-L5" -> "L4-L5
    ligamentum flavum", "intra_articular" -> "intra-articular"); a dash for none."""
    if name is None:
        return "–"
    if name in APPEARANCE:
        return name.replace("intra_", "intra-").replace("_", " ")
    return clinical_name(name)


def _item(log: _Log, key: str, status: Status, detail: str, steps: list[Step] = ()) -> ChecklistItem:
    trajectory, depth = VIEW_WORDS[log.procedure]
    text, source = ITEMS[key]
    step = text.format(trajectory=trajectory, depth=depth, count=COUNT_VIEW_WORDS.get(log.procedure, _SQUARED_AP))
    return ChecklistItem(key=key, step=step, status=status, detail=detail, source=source,
                         evidence=[log.evidence(s) for s in steps])


# --------------------------------------------------------------------------- the items
def _level_squared(log: _Log) -> ChecklistItem:
    puncture = log.first("place_needle")
    squared = [s for s in log.shots() if log.in_view(s, 0, SQUARED_TOLERANCE_DEG)]
    before = [s for s in squared if s.number <= puncture]
    count_view = COUNT_VIEW_WORDS.get(log.procedure, _SQUARED_AP)
    if before:
        return _item(log, "level_squared", "done", f"the target level was counted on {count_view} before the skin "
                     "puncture", before[:1])
    ap = [s for s in log.shots() if log.in_view(s, 0)]
    if squared or ap:
        shown = (squared or ap)[:1]
        seen = "the window was not open" if log.procedure in COUNT_VIEW_WORDS else "the endplate was not a single line"
        off = f"AP {log.angle_to_view_deg(shown[0], 0):.0f}° from {count_view}: {seen}"
        why = f"the level was counted on {count_view} only after the skin puncture" if squared else off
        return _item(log, "level_squared", "partly", why, shown)
    return _item(log, "level_squared", "not_done", "no AP image: the level was never counted", [])


def _trajectory_view(log: _Log) -> ChecklistItem:
    puncture = log.first("place_needle")
    path = log.steps[puncture].after.needle.direction if puncture < len(log.steps) else None
    before = [s for s in log.shots(0, puncture) if log.in_view(s, 1) or log.down_the_barrel(s, path)]
    if before:
        return _item(log, "trajectory_view", "done", "the entry was planned in the trajectory view", before[:1])
    after = [s for s in log.shots(puncture) if s.after.needle is not None
             and (log.in_view(s, 1) or log.down_the_barrel(s, s.after.needle.direction))]
    if after:
        return _item(log, "trajectory_view", "partly", "the trajectory view came only after the skin puncture",
                     after[:1])
    return _item(log, "trajectory_view", "not_done", "no image in the trajectory view", [])


def _entry_site(log: _Log) -> ChecklistItem:
    target = log.attempt.session.target
    punctures = [s for s in log.steps if s.action.type == "place_needle"]
    # In the textbook entry region: the line from the puncture to the target within the cone of textbook
    # directions (on oblique skin the region's edge lies further from its centre than its nominal radius).
    inside = [s for s in punctures
              if _angle_deg(target.point - s.after.needle.entry, target.textbook_direction) <= target.cone_deg + 0.5]
    region = f"in the textbook entry region (about {target.entry_radius_mm:.0f} mm around the textbook entry)"
    if punctures and inside and inside[0] is punctures[0]:
        return _item(log, "entry_site", "done", f"the first puncture was {region}", punctures[:1])
    if inside:
        return _item(log, "entry_site", "partly", f"only a later puncture was {region}", [punctures[0], inside[0]])
    return _item(log, "entry_site", "not_done", f"no puncture {region}" if punctures else "no puncture",
                 punctures[:1])


def _imaged_advance(log: _Log) -> ChecklistItem:
    interlaminar = log.procedure == "interlaminar_epidural"
    guides = ("fluoro_shot", "check_loss_of_resistance") if interlaminar else ("fluoro_shot",)
    moves = log.moves()
    seen, unseen = [], []
    for index in moves:
        following = next((s for s in log.steps[index + 1:] if s.action.type in guides + NEEDLE_MOVES
                          + INJECTIONS + ("finish",)), None)
        (seen if following is not None and following.action.type in guides else unseen).append(log.steps[index])
    with_needle = [s for s in log.shots() if s.before.needle is not None]
    barrel = [s for s in with_needle if log.in_view(s, 1) or log.down_the_barrel(s, s.after.needle.direction)]
    steering = [s for s in with_needle if s.action.mode != "pulse" and not _after_injection(log, s)]
    if not moves or not with_needle:
        return _item(log, "imaged_advance", "not_done", "the needle was never imaged in the patient", [])
    if not unseen and barrel and not steering:
        return _item(log, "imaged_advance", "done", f"each of {len(moves)} moves imaged, in the trajectory view "
                     "among others, with pulsed shots", barrel[:1])
    faults = ([f"{len(unseen)} of {len(moves)} moves not imaged before the next"] if unseen else []) + (
        [] if barrel else ["never imaged down the trajectory view"]) + (
        [f"{len(steering)} live run(s) used to steer"] if steering else [])
    status: Status = "partly" if len(seen) >= 0.5 * len(moves) else "not_done"
    return _item(log, "imaged_advance", status, "; ".join(faults), ((unseen + steering + barrel) or with_needle)[:4])


def _after_injection(log: _Log, shot: Step) -> bool:
    """Whether a shot is the run that images an injection (within CONTRAST_CHECK_S of it, needle unmoved)."""
    for step in reversed(log.steps[:shot.number - 1]):
        if step.action.type in NEEDLE_MOVES or shot.t - step.t > CONTRAST_CHECK_S:
            return False
        if step.action.type == "inject_contrast":
            return True
    return False


def _depth_view_early(log: _Log) -> ChecklistItem:
    settled = log.settled()
    last_move = max((i for i in log.moves() if i < settled), default=None)
    depth = [s for s in log.shots() if s.before.needle is not None and log.in_view(s, 2)]
    if last_move is None or not depth:
        return _item(log, "depth_view_early", "not_done", "the needle was never shown on the depth view", [])
    early = [s for s in depth if s.number <= last_move]
    if early:
        return _item(log, "depth_view_early", "done", "the needle was followed on the depth view before its last "
                     "advance", early[:1] + [log.steps[last_move]])
    return _item(log, "depth_view_early", "partly", "the depth view came only after the last advance",
                 [log.steps[last_move]] + depth[:1])


def _depth_confirmed(log: _Log) -> ChecklistItem:
    settled, stop = log.settled(), log.injected()
    final = [s for s in log.shots(settled, stop) if s.before.needle is not None and log.in_view(s, 2)]
    if final and log.metrics.depth_view_checked:
        return _item(log, "depth_confirmed", "done", "the final position was seen on the depth view", final[:1])
    earlier = [s for s in log.shots(0, settled) if s.before.needle is not None and log.in_view(s, 2)]
    if earlier:
        return _item(log, "depth_confirmed", "partly", "the depth view showed an earlier needle position, not the "
                     "final one", earlier[-1:] + ([log.steps[settled - 1]] if settled else []))
    return _item(log, "depth_confirmed", "not_done", "the final position was never seen on the depth view", [])


def _loss_of_resistance(log: _Log) -> ChecklistItem:
    tests = [s for s in log.steps if s.action.type == "check_loss_of_resistance"]
    if not tests:
        return _item(log, "loss_of_resistance", "not_done", "loss of resistance was never tested", [])
    final = [s for s in log.steps[log.settled():log.injected()]
             if s.action.type == "check_loss_of_resistance"]
    lost = [s for s in final if _feel(s)["feel"] == "lost"]
    firm = [s for s in tests if _feel(s)["feel"] in ("high", "moderate") and (not lost or s.number < lost[0].number)]
    if lost and not _feel(lost[-1])["false_loss"] and firm:
        return _item(log, "loss_of_resistance", "done", "resistance in the ligament, then lost at the final position",
                     firm[-1:] + lost[-1:])
    if lost and _feel(lost[-1])["false_loss"]:
        return _item(log, "loss_of_resistance", "partly", "the loss felt was false: the tip was not in the epidural "
                     "space (air loss of resistance misleads in about a quarter of cases, §2.1): contrast tells",
                     lost[-1:])
    why = "loss at the final position without a resistance felt first" if lost else (
        "no loss of resistance at the final position before injecting")
    return _item(log, "loss_of_resistance", "partly", why, (lost or tests)[-1:])


def _below_s3(log: _Log) -> ChecklistItem:
    """Caudal: every tip position at least the margin below the dural sac's end, and the final one seen on lateral."""
    tracer = log.attempt.session.tracer
    high = [s for s in log.steps if s.after.needle is not None and not below_sac_end(tracer, s.after.needle.tip)]
    if high:
        end = dural_sac_end(tracer)
        gap = float(np.linalg.norm(high[0].after.needle.tip - end))
        return _item(log, "below_s3", "not_done", f"the tip rose to {gap:.0f} mm from the dural sac's end (keep it "
                     f"{CAUDAL_SAC_MARGIN_MM:g} mm or more below it, at or below S3)", high[:1])
    seen = [s for s in log.shots(log.settled(), log.injected()) if s.before.needle is not None and log.in_view(s, 2)]
    if seen:
        return _item(log, "below_s3", "done", "the tip stayed low in the canal and was seen there on lateral", seen[:1])
    return _item(log, "below_s3", "partly", "the tip stayed low in the canal, but no lateral showed where it ended", [])


def _caudal_third(log: _Log) -> ChecklistItem:
    """Sacroiliac joint: the final tip in the joint, in its caudal part (the lower 40% of the labelled joint's
    height, the caudal third with the label's margin) [ED]."""
    final = log.attempt.final
    joint = f"sacroiliac_joint.{log.attempt.scenario.target.side}"
    moves = [log.steps[i] for i in log.moves()]
    if final.needle is None or not moves:
        return _item(log, "caudal_third", "not_done", "no needle was placed", [])
    low, high = joint_height(log.attempt.session.tracer, joint)
    inside = final.tip_structure is not None and final.tip_structure.startswith(joint)
    caudal = final.needle.tip[2] <= low + CAUDAL_PART * (high - low)
    if inside and caudal:
        return _item(log, "caudal_third", "done", "the needle entered the joint in its caudal third", moves[-1:])
    if inside:
        return _item(log, "caudal_third", "partly", "the needle is in the joint, but above its caudal third, where "
                     "the iliac overhang and the interosseous ligament block the way", moves[-1:])
    return _item(log, "caudal_third", "not_done", "the needle did not end in the joint", moves[-1:])


# The caudal part of a sacroiliac joint: the lower fraction of its labelled height [ED].
CAUDAL_PART = 0.4


def joint_height(tracer, joint: str) -> tuple[float, float]:
    """The lowest and highest z (mm) of the joint's labelled voxels."""
    ijk = np.argwhere(np.isin(tracer.codes, tracer.codes_in_group(joint)))
    z = tracer.volume.voxel_to_world(ijk)[:, 2] if len(ijk) else np.zeros(1)
    return float(z.min()), float(z.max())


def _feel(step: Step) -> dict:
    return next(e.data for e in step.events if e.kind == "loss_of_resistance")


def _on_bone(log: _Log) -> ChecklistItem:
    settled = log.settled()
    last_move = max((i for i in log.moves() if i < settled), default=None)
    contacts = [s for s in log.steps if any(e.kind == "bone_contact" for e in s.events)]
    if last_move is not None and log.steps[last_move] in contacts:
        return _item(log, "on_bone", "done", "the last advance stopped on bone at the target", [log.steps[last_move]])
    if contacts:
        return _item(log, "on_bone", "partly", "bone was met, but the final position is off it", contacts[-1:])
    return _item(log, "on_bone", "not_done", "the needle never touched bone", [])


def _injections(log: _Log) -> list[int]:
    return [i for i, s in enumerate(log.steps) if s.action.type == "inject_contrast"]


def _contrast_live(log: _Log) -> ChecklistItem:
    injections = _injections(log)
    if not injections:
        return _item(log, "contrast_live", "not_done", "no contrast was injected", [])
    dsa = log.attempt.scenario.imaging.dsa
    runs = {i: contrast_runs(log.steps, i) for i in injections}
    imaged = [i for i in injections if runs[i]]
    by_dsa = [i for i in imaged if any(r.action.mode == "dsa" for r in runs[i])]
    shown = [s for i in injections for s in [log.steps[i]] + runs[i][:1]][:6]
    wanted = "DSA" if dsa else "live fluoroscopy"
    tested = tested_injectates(log.steps)
    untested = [s for s, ok in zip((s for s in log.steps if s.action.type == "inject_medication"), tested) if not ok]
    if untested:
        why = f"{len(untested)} injectate(s) given where no contrast test imaged live or by DSA had gone in"
        return _item(log, "contrast_live", "partly" if imaged else "not_done", why, (shown + untested[:2])[-6:])
    if len(imaged) == len(injections) and (not dsa or len(by_dsa) == len(injections)):
        return _item(log, "contrast_live", "done", f"every contrast test imaged by {wanted}"
                     + (", then the injectate" if tested else ""), shown)
    if imaged:
        why = (f"{len(imaged)} of {len(injections)} injections imaged live" if len(imaged) < len(injections) else
               "imaged live, not by the DSA this scenario offers (live fluoroscopy misses some arterial injections)")
        return _item(log, "contrast_live", "partly", why, shown)
    return _item(log, "contrast_live", "not_done", "no injection was imaged by live fluoroscopy or DSA", shown)


def _contrast_volume(log: _Log) -> ChecklistItem:
    injections = [log.steps[i] for i in _injections(log)]
    low, high = CONTRAST_ML_RANGE[log.procedure]
    span = f"{low:g}-{high:g} mL"
    if not injections:
        return _item(log, "contrast_volume", "not_done", "no contrast was injected", [])
    largest = max(injections, key=lambda s: s.action.ml)
    smallest = min(injections, key=lambda s: s.action.ml)
    if low <= smallest.action.ml and largest.action.ml <= high:
        return _item(log, "contrast_volume", "done", f"every injection within {span}", injections[:3])
    if largest.action.ml > 2.0 * high:
        return _item(log, "contrast_volume", "not_done", f"{largest.action.ml:g} mL, more than twice {span}", [largest])
    if largest.action.ml > high:
        return _item(log, "contrast_volume", "partly", f"{largest.action.ml:g} mL, above {span}", [largest])
    return _item(log, "contrast_volume", "partly", f"{smallest.action.ml:g} mL, below {span}: too little to show "
                 "the spread", [smallest])


def _imaging_of(log: _Log, index: int) -> list[Step]:
    """Shots after injection ``index`` and before the needle moves or another injection: the spread's images."""
    shots = []
    for step in log.steps[index + 1:]:
        if step.action.type in NEEDLE_MOVES + ("inject_contrast",):
            break
        if step.action.type == "fluoro_shot":
            shots.append(step)
    return shots


def _expected_pattern(log: _Log) -> ChecklistItem:
    injections = _injections(log)
    if not injections:
        return _item(log, "expected_pattern", "not_done", "no contrast was injected: the position was never confirmed",
                     [])
    expected = EXPECTED_PATTERNS[log.procedure]
    last = injections[-1]
    pattern = next(e.data["pattern"] for e in log.steps[last].events if e.kind == "contrast")
    seen = _imaging_of(log, last)
    resited = [log.steps[i] for i in injections[:-1]]
    earlier = f" after re-siting from {len(resited)} earlier injection(s)" if resited else ""
    if pattern in expected and seen:
        reading = _reading_of(log, len(injections))
        if reading is None or not reading[1]["correct"]:
            why = ("never named" if reading is None
                   else f"named {in_words(reading[1]['reading'])}")
            return _item(log, "expected_pattern", "partly",
                         f"the {in_words(pattern)} pattern was on the images{earlier} but {why}", [log.steps[last], seen[0]] + ([reading[0]] if reading else []))
        return _item(log, "expected_pattern", "done", f"the {in_words(pattern)} pattern was seen and named{earlier}",
                     resited[-2:] + [log.steps[last], seen[0], reading[0]])
    why = (f"the last injection gave the {in_words(pattern)} pattern, not {' or '.join(in_words(p) for p in expected)}"
           if pattern not in expected else "no image showed the spread of the last injection")
    return _item(log, "expected_pattern", "not_done", why, [log.steps[last]] + seen[:1])


def _reading_of(log: _Log, injection: int) -> tuple[Step, dict] | None:
    """(step, event data) of the trainee's last naming of injection ``injection`` (1-based), None if never named."""
    readings = [(step, e.data) for step in log.steps if step.action.type == "read_contrast"
                for e in step.events if e.kind == "contrast_read" and e.data["injection"] == injection]
    return readings[-1] if readings else None


def _contrast_named(log: _Log) -> ChecklistItem:
    injections = _injections(log)
    if not injections:
        return _item(log, "contrast_named", "not_done", "no contrast was injected", [])
    # The last reading of each injection counts (the event names the injection it read, 1-based).
    readings = {e.data["injection"]: (step, e.data) for step in log.steps if step.action.type == "read_contrast"
                for e in step.events if e.kind == "contrast_read"}
    if not readings:
        return _item(log, "contrast_named", "not_done", "the contrast pattern was never named", [])
    wrong = [f"{in_words(data['actual'])} read as {in_words(data['reading'])}" for _, data in readings.values()
             if not data["correct"]]
    unread = len(injections) - len(readings)
    steps = [step for step, _ in readings.values()][-2:]
    if not wrong and not unread:
        return _item(log, "contrast_named", "done", "every contrast pattern named right", steps)
    why = "; ".join(wrong + ([f"{unread} injection(s) never named"] if unread else []))
    return _item(log, "contrast_named", "partly" if len(wrong) < len(readings) else "not_done", why, steps)


def _contrast_on_ap(log: _Log) -> ChecklistItem:
    injections = _injections(log)
    if not injections:
        return _item(log, "contrast_on_ap", "not_done", "no contrast was injected", [])
    seen = _imaging_of(log, injections[-1])
    ap = [s for s in seen if log.in_view(s, 0)]
    if ap:
        return _item(log, "contrast_on_ap", "done", "the spread was imaged on AP", ap[:1])
    if seen:
        return _item(log, "contrast_on_ap", "partly", "the spread was imaged, but not on AP", seen[:1])
    return _item(log, "contrast_on_ap", "not_done", "no image after the last injection", [log.steps[injections[-1]]])


def _few_passes(log: _Log) -> ChecklistItem:
    tolerance = log.attempt.scenario.tolerances().redirects
    passes = [s for s in log.steps if s.action.type in ("place_needle", "redirect")]
    if not passes:
        return _item(log, "few_passes", "not_done", "the needle was never placed", [])
    extra = len(passes) - 1
    detail = f"{extra} redirection(s) or re-puncture(s), tolerance {tolerance}"
    status: Status = "done" if extra <= tolerance else "partly" if extra <= tolerance + 2 else "not_done"
    return _item(log, "few_passes", status, detail, passes[1:5] if extra else passes[:1])


def _lesion_steps(log: _Log) -> list[Step]:
    return [s for s in log.steps if s.action.type == "lesion"]


def _parallel_placement(log: _Log) -> ChecklistItem:
    lesions = _lesion_steps(log)
    if not lesions:
        return _item(log, "parallel_placement", "not_done", "no lesion was made", [])
    target = log.attempt.session.target
    angles = [nerve_angle_deg(target, s.before.needle.direction) for s in lesions]
    worst = max(angles)
    if worst <= PARALLEL_DEG:
        return _item(log, "parallel_placement", "done", f"the cannula lay within {worst:.0f}° of the nerve at every "
                     "lesion", lesions[:2])
    status: Status = "partly" if worst <= 2.0 * PARALLEL_DEG else "not_done"
    return _item(log, "parallel_placement", status, f"the cannula was {worst:.0f}° off the nerve's course at a lesion "
                 f"(parallel is within {PARALLEL_DEG:g}°; end-on, the lesion barely reaches the nerve)", lesions[:2])


def _sensory_test(log: _Log) -> ChecklistItem:
    first = log.first("lesion")
    tests = [s for s in log.steps[:first] if s.action.type == "stimulate" and s.action.mode == "sensory"]
    felt = [s for s in tests if s.after.stimulations[-1].back]
    below = [s for s in felt if s.action.volts <= SENSORY_CRITERION_V]
    if below:
        return _item(log, "sensory_test", "done", f"concordant sensation at {below[0].action.volts:g} V (50 Hz)",
                     below[:1])
    if felt:
        return _item(log, "sensory_test", "partly", f"concordant sensation only at {felt[0].action.volts:g} V, above "
                     f"the {SENSORY_CRITERION_V:g} V criterion: the tip is not on the nerve", felt[:1])
    return _item(log, "sensory_test", "not_done", "no concordant sensory response before lesioning" if tests else
                 "no sensory stimulation before lesioning", tests[:1])


def _motor_test(log: _Log) -> ChecklistItem:
    lesions = _lesion_steps(log)
    if not lesions:
        return _item(log, "motor_test", "not_done", "no lesion was made", [])
    final = log.attempt.final
    tested = [motor_tested(final, made) for made in final.lesions]
    motor = [s for s in log.steps if s.action.type == "stimulate" and s.action.mode == "motor"]
    if all(ok and not leg for ok, leg in tested):
        return _item(log, "motor_test", "done", "motor stimulation (2 Hz) before every lesion: multifidus, no leg",
                     motor[:2])
    if any(leg for _, leg in tested):
        return _item(log, "motor_test", "not_done", "a lesion was made where the leg had twitched",
                     motor[:2] + lesions[:1])
    status: Status = "partly" if any(ok for ok, _ in tested) else "not_done"
    return _item(log, "motor_test", status, f"{sum(not ok for ok, _ in tested)} of {len(tested)} lesions made with no "
                 "motor test at that position", lesions[:2])


def _local_anaesthetic(log: _Log) -> ChecklistItem:
    first = log.first("lesion")
    given = [s for s in log.steps if s.action.type == "inject_medication" and s.action.agent == "local_anaesthetic"]
    if any(s.number <= first for s in given):
        return _item(log, "local_anaesthetic", "done", "local anaesthetic through the cannula before the heat",
                     given[:1])
    if given:
        return _item(log, "local_anaesthetic", "partly", "local anaesthetic only after the first lesion", given[:1])
    return _item(log, "local_anaesthetic", "not_done", "no local anaesthetic before lesioning", [])


def _second_lesion(log: _Log) -> ChecklistItem:
    lesions = _lesion_steps(log)
    poses = log.attempt.final.lesions
    moved = [s for s, made in zip(lesions[1:], poses[1:]) if made.pose != poses[0].pose]
    if moved:
        return _item(log, "second_lesion", "done", "a second lesion after repositioning along the groove",
                     [lesions[0], moved[0]])
    if len(lesions) > 1:
        return _item(log, "second_lesion", "partly", "a second lesion at the same position adds little length",
                     lesions[:2])
    return _item(log, "second_lesion", "not_done", "one lesion only" if lesions else "no lesion was made", lesions[:1])


# The items: (text, source). {trajectory} and {depth} are the procedure's views (VIEW_WORDS).
ITEMS: dict[str, tuple[str, str]] = {
    "level_squared": ("Target level counted on {count} before the puncture", "§1 [S5][S33]; §2.1"),
    "trajectory_view": ("Skin entry planned in the trajectory view: {trajectory}", "§1, §2.6 [S5][S33]"),
    "entry_site": ("Skin puncture at the planned entry site", "§2.1-§2.4; entry region [ED]"),
    "imaged_advance": ("Needle advanced under intermittent (pulsed) imaging, kept down the trajectory view",
                       "§1; §3 [S63]"),
    "depth_view_early": ("Advance followed on the depth view ({depth}) before the target is reached",
                         "§1 multiplanar rule [S8][S33]"),
    "loss_of_resistance": ("Loss of resistance: resistance in the ligament, lost at the epidural space",
                           "§2.1 [S12][S13]"),
    "below_s3": ("Tip kept low in the sacral canal (at or below S3), clear of the dural sac's end, on lateral",
                 "Aggarwal 2009; [ED] margin"),
    "caudal_third": ("Needle into the caudal third of the sacroiliac joint", "Dussault 2000"),
    "depth_confirmed": ("Final depth confirmed on the {depth} before injecting", "§1 [S8][S33]; §6.3"),
    "on_bone": ("Needle rests on bone at the SAP-TP junction", "§2.4 [S3]"),
    "contrast_live": ("Contrast injected under live fluoroscopy (DSA where available) before any injectate",
                      "§2.2 [S1][S19]; §2.7 [S22]; §6.3"),
    "contrast_volume": ("Contrast volume within the procedure's range", "§2.6"),
    "expected_pattern": ("Expected contrast pattern seen before finishing (re-sited if not)", "§2.7"),
    "contrast_named": ("Contrast pattern named from the images (epidural, intrathecal, vascular, ...)", "§2.7"),
    "contrast_on_ap": ("Contrast spread checked on AP", "§1; §2.7"),
    "few_passes": ("No more redirections than the tolerance", "§6.3 [ED]"),
    "parallel_placement": ("Cannula laid parallel to the nerve in the groove (within 20°)", "§2.5 [S39]; §6.3 [ED]"),
    "sensory_test": ("Sensory stimulation (50 Hz): concordant sensation at or below 0.5 V", "§2.5 [S39][S41]"),
    "motor_test": ("Motor stimulation (2 Hz) before every lesion: multifidus twitch, no leg twitch",
                   "§2.5 [S39][S43]"),
    "local_anaesthetic": ("Local anaesthetic through the cannula before lesioning", "§2.5 [S39]"),
    "second_lesion": ("Second lesion after repositioning along the groove", "§2.5 [S39][S42]"),
}
_ITEM_RULES: dict[str, Callable[[_Log], ChecklistItem]] = {
    "level_squared": _level_squared, "trajectory_view": _trajectory_view, "entry_site": _entry_site,
    "imaged_advance": _imaged_advance, "depth_view_early": _depth_view_early, "loss_of_resistance": _loss_of_resistance,
    "depth_confirmed": _depth_confirmed, "on_bone": _on_bone, "contrast_live": _contrast_live,
    "contrast_volume": _contrast_volume, "expected_pattern": _expected_pattern, "contrast_named": _contrast_named,
    "contrast_on_ap": _contrast_on_ap,
    "few_passes": _few_passes, "parallel_placement": _parallel_placement, "sensory_test": _sensory_test,
    "motor_test": _motor_test, "local_anaesthetic": _local_anaesthetic, "second_lesion": _second_lesion,
    "below_s3": _below_s3, "caudal_third": _caudal_third,
}
_COMMON_START = ("level_squared", "trajectory_view", "entry_site", "imaged_advance", "depth_view_early")
_COMMON_END = ("contrast_live", "contrast_volume", "expected_pattern", "contrast_named", "contrast_on_ap",
               "few_passes")
CHECKLISTS: dict[str, tuple[str, ...]] = {
    "interlaminar_epidural": _COMMON_START + ("loss_of_resistance", "depth_confirmed") + _COMMON_END,
    "transforaminal_epidural": _COMMON_START + ("depth_confirmed",) + _COMMON_END,
    "facet_intra_articular": _COMMON_START + ("depth_confirmed",) + _COMMON_END,
    "medial_branch_block": _COMMON_START + ("depth_confirmed", "on_bone") + _COMMON_END,
    "radiofrequency_ablation": _COMMON_START + ("depth_confirmed", "on_bone", "parallel_placement", "sensory_test",
                                                "motor_test", "local_anaesthetic", "second_lesion", "few_passes"),
    "sacroiliac_joint_injection": _COMMON_START + ("depth_confirmed", "caudal_third") + _COMMON_END,
    "caudal_epidural": _COMMON_START + ("loss_of_resistance", "depth_confirmed", "below_s3") + _COMMON_END,
}
# The items about images: the global rating's "use of imaging" reads them.
IMAGING_ITEMS = ("level_squared", "trajectory_view", "imaged_advance", "depth_view_early", "depth_confirmed",
                 "contrast_live", "contrast_on_ap")


def checklist(attempt: Attempt, metrics: Metrics) -> list[ChecklistItem]:
    """The procedure's checklist, each item scored from the attempt's steps with its evidence.

    Parameters
    ----------
    attempt : Attempt
        The replayed attempt.
    metrics : Metrics
        Its measurements (:func:`scoring.metrics.measure`).

    Returns
    -------
    list of ChecklistItem
        In the procedure's order (:data:`CHECKLISTS`); ``entry_site`` only where the target has a
        textbook skin entry.
    """
    log = _Log(attempt, metrics)
    keys = [k for k in CHECKLISTS[attempt.scenario.procedure]
            if k != "entry_site" or attempt.session.target.entry_point is not None]
    return [_ITEM_RULES[key](log) for key in keys]


def checklist_points(items: list[ChecklistItem]) -> float:
    """Done counts 1, partly 0.5, not done 0.

    >>> checklist_points([ChecklistItem(key="a", step="", status="done", detail="", source=""),
    ...                   ChecklistItem(key="b", step="", status="partly", detail="", source="")])
    1.5
    """
    return sum(STATUS_POINTS[item.status] for item in items)


def evidence_text(evidence: list[Evidence]) -> str:
    """The evidence as one line ("step 14 at 52 s: pulse shot 5, lateral, tip in epidural space; ...")."""
    return "; ".join(f"step {e.step} at {e.t:.0f} s: {e.note}" for e in evidence) or "–"
