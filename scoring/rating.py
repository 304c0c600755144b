"""The global rating scale: OSATS-style items scored 1-5 against written anchors, computed from the log.

Global rating scales rate a performance on 5-point items anchored in words (clinical.md §6.2 [S131];
the 9-item GRS beside a 22-item checklist of [S134]); an examiner rates what they saw. Here each score
is computed from the metrics, the safety flags, the near misses and the checklist, by the anchors below.
The anchors are ours [ED]: tunable, not validated (§6.2: no validated scale exists for fluoroscopic
lumbar injections). Limits and tolerances are the scenario's (§3, §6.3).

====================  ==============================  ==============================  ===========================
item                  1                               3                               5
====================  ==============================  ==============================  ===========================
respect for tissue    a critical event (2: a major)   a minor tissue event (vessel    no event, no near miss (4:
                                                      puncture, bone contacts over    one near miss, or bone met
                                                      the tolerance, capsule          twice beyond what the
                                                      rupture) or two near misses     target rests on)
needle placement      tip farther than 3x the tip     tip within 2x the tip           in the target zone at the
                      tolerance, in the sac, a root,  tolerance (2: within 3x)        right depth (4: in the zone)
                      a vessel or a disc, or none
                      ablation: no lesion (2: a       ablation: parallel or half      ablation: parallel, the
                      lesion, neither)                the nerve covered               nerve covered (4: half)
economy of motion     more redirections than the      redirections within the         one pass (4: one redirection)
                      tolerance + 2, or a path over   tolerance and a path within     and a path within 1.2x the
                      3x the expert's                 2x the expert's                 expert's (4: 1.5x)
economy of imaging    more than 1.5x the shot limit   at most the shot and beam-time  at most 60% of the shot
                      or 2x the beam-time limit       limits                          limit and 1/3 of the
                                                                                      beam-time limit
use of imaging        under 30% of the checklist's    60% of them (4: 80%)            all of them (95% or more)
                      imaging items done
flow of the           no injection reached, over      within the time limit and at    within 1/4 of the time limit
procedure             1.5x the time limit, or more    most 3 images repeated          and no image repeated
                      than 6 images repeated with
                      nothing changed
overall               a critical event (2: a major    the mean of the other items, rounded; at most 3 when less
                      one)                            than 75% of the checklist is done
====================  ==============================  ==============================  ===========================

The scores between anchors (2 and 4) sit at the thresholds of :func:`band`. An attempt with no image
at all has the best economy of imaging and the worst use of imaging: radiation spared is not skill.
"""

from __future__ import annotations

from pydantic import BaseModel

from anatomy_models.structures import in_group
from scoring.checklist import IMAGING_ITEMS, ChecklistItem, Evidence, checklist_points, in_words
from scoring.expert import ExpertComparison
from scoring.grade import COVERAGE_GOOD, COVERAGE_ON_TARGET, PARALLEL_GOOD_DEG
from scoring.metrics import NEEDLE_MOVES, Metrics
from scoring.proximity import NearMiss
from scoring.safety import Flag
from simulator.case.targets import UNSAFE_GROUPS, UNSAFE_TISSUES
from simulator.session.fold import Step
from simulator.session.history import Attempt

# Minor flags that mark needlessly handled tissue (the others are about dose and time).
TISSUE_FLAGS = ("vessel_puncture", "repeated_bone_contact", "capsule_rupture")
# Overall is at most this when less than CHECKLIST_FLOOR of the checklist's points were earned [ED].
CHECKLIST_FLOOR = 0.75
CHECKLIST_CAP = 3
# Anchors for scores 1..5 of each item (the module docstring's table, in full).
ANCHORS: dict[str, tuple[str, str, str, str, str]] = {
    "respect_for_tissue": ("a critical event", "a major event", "a minor tissue event or two near misses",
                           "one near miss, or bone met twice beyond the target's own", "no event, no near miss"),
    "needle_placement": ("tip beyond 3x the tolerance, in a structure no needle belongs in, or no needle",
                         "tip within 3x the tolerance",
                         "tip within 2x the tolerance", "in the target zone", "in the zone at the right depth"),
    "economy_of_motion": ("redirections beyond the tolerance + 2 or path over 3x the expert's",
                          "redirections within the tolerance + 2 and path within 3x",
                          "redirections within the tolerance and path within 2x",
                          "one redirection and path within 1.5x", "one pass and path within 1.2x the expert's"),
    "economy_of_imaging": ("shots over 1.5x the limit or beam time over 2x", "shots within 1.5x, beam time within 2x",
                           "within the shot and beam-time limits", "shots within 80%, beam time within 2/3",
                           "shots within 60%, beam time within 1/3 of the limits"),
    "use_of_imaging": ("under 30% of the imaging steps", "30% of the imaging steps", "60% of the imaging steps",
                       "80% of the imaging steps", "all imaging steps"),
    "flow": ("not carried to an injection, over 1.5x the time limit or more than 6 repeated images",
             "within 1.5x the time, at most 6 repeats",
             "within the time limit, at most 3 repeats", "within half the time limit, at most 1 repeat",
             "within 1/4 of the time limit, no image repeated"),
    "overall": ("a critical event", "a major event", "the items' mean: competent with faults",
                "the items' mean: good", "the items' mean: fluent, safe, economical"),
}
TITLES = {"respect_for_tissue": "Respect for tissue", "needle_placement": "Needle placement",
          "economy_of_motion": "Economy of needle motion", "economy_of_imaging": "Economy of imaging (radiation)",
          "use_of_imaging": "Use of imaging (knowledge of the views)", "flow": "Flow of the procedure",
          "overall": "Overall performance"}


class RatingItem(BaseModel):
    """One item of the scale: its 1-5 score, the anchor that score stands for, the measured reason."""

    key: str
    title: str
    score: int
    anchor: str
    reason: str
    evidence: list[Evidence] = []


class GlobalRating(BaseModel):
    """The scale's items and their sum (``maximum`` is 5 per item)."""

    items: list[RatingItem]
    total: int
    maximum: int


def band(value: float, limits: tuple[float, float, float, float]) -> int:
    """5 at or below ``limits[0]``, 4 at or below ``limits[1]``, ... 1 above ``limits[3]``.

    >>> band(0, (0, 1, 3, 5)), band(2, (0, 1, 3, 5)), band(9, (0, 1, 3, 5))
    (5, 3, 1)
    """
    return 5 - sum(value > limit for limit in limits)


def _rated(key: str, score: int, reason: str, evidence: list[Evidence] = ()) -> RatingItem:
    return RatingItem(key=key, title=TITLES[key], score=score, anchor=ANCHORS[key][score - 1], reason=reason,
                      evidence=list(evidence))


def _evidence(steps: list[Step]) -> list[Evidence]:
    """Short evidence for the scale: the step, its time and its events (the checklist words its own)."""
    return [Evidence(step=s.number, t=s.t, action=s.action.type,
                     note="; ".join(e.message for e in s.events if e.kind not in ("carm_moved",)) or
                     s.action.type.replace("_", " ")) for s in steps]


def _respect_for_tissue(attempt: Attempt, metrics: Metrics, flags: list[Flag], near: list[NearMiss]) -> RatingItem:
    severities = {f.severity for f in flags}
    misses = [n.label for n in near if n.near_miss]
    own_bone = 1 if attempt.session.target.on_bone else 0
    harmed = [s for s in attempt.steps if any(e.severity == "unsafe" or e.kind in ("bone_contact", "capsule_rupture")
                                              for e in s.events)]
    tissue = [f.title for f in flags if f.code in TISSUE_FLAGS]
    if "critical" in severities or "major" in severities:
        worst = "critical" if "critical" in severities else "major"
        score = 1 if worst == "critical" else 2
        reason = ", ".join(f.title for f in flags if f.severity == worst)
    elif tissue or len(misses) >= 2:
        score, reason = 3, ", ".join(tissue + [f"near miss: {m}" for m in misses])
    elif misses or metrics.bone_contacts - own_bone >= 2:
        score = 4
        reason = f"near miss: {misses[0]}" if misses else f"{metrics.bone_contacts} bone contacts"
    else:
        score, reason = 5, "no unsafe event and no near miss"
    return _rated("respect_for_tissue", score, reason, _evidence(harmed[:4]))


def _needle_placement(attempt: Attempt, metrics: Metrics) -> RatingItem:
    tolerances = attempt.scenario.tolerances()
    moves = [s for s in attempt.steps if s.action.type in NEEDLE_MOVES]
    if metrics.tip_to_target_mm is None:
        return _rated("needle_placement", 1, "no needle at the end", _evidence(moves[-1:]))
    final = attempt.final
    if any(in_group(final.tip_structure, g) for g in UNSAFE_GROUPS) or final.tip_tissue in UNSAFE_TISSUES:
        return _rated("needle_placement", 1,
                      f"the tip ended in {in_words(final.tip_structure)}, where no needle belongs",
                      _evidence(moves[-1:]))
    if metrics.nerve_coverage is not None:
        return _lesion_placement(attempt, metrics)
    depth_ok = metrics.depth_error_mm is not None and abs(metrics.depth_error_mm) <= tolerances.depth_mm
    tip = metrics.tip_to_target_mm
    if metrics.in_zone:
        score = 5 if depth_ok else 4
    else:
        score = 3 if tip <= 2.0 * tolerances.tip_mm else 2 if tip <= 3.0 * tolerances.tip_mm else 1
    depth = "–" if metrics.depth_error_mm is None else f"{metrics.depth_error_mm:+.1f} mm"
    reason = (f"tip {tip:.1f} mm from the target ({'in' if metrics.in_zone else 'outside'} the zone), depth error "
              f"{depth} on the {metrics.depth_view} (tolerances {tolerances.tip_mm:g} / {tolerances.depth_mm:g} mm)")
    return _rated("needle_placement", score, reason, _evidence(moves[-1:]))


def _lesion_placement(attempt: Attempt, metrics: Metrics) -> RatingItem:
    """An ablation's placement is judged by its lesions: the cannula parallel to the nerve, and how much of the
    nerve's course they covered (clinical.md §2.5), not by where the tip ended after the last reposition."""
    lesions = [s for s in attempt.steps if s.action.type == "lesion"]
    if not lesions:
        return _rated("needle_placement", 1, "no lesion was made", [])
    parallel = metrics.cannula_nerve_angle_deg <= PARALLEL_GOOD_DEG
    covered = metrics.nerve_coverage
    if parallel:
        score = 5 if covered >= COVERAGE_GOOD else 4 if covered >= COVERAGE_ON_TARGET else 3
    else:
        score = 3 if covered >= COVERAGE_ON_TARGET else 2
    reason = (f"the cannula {metrics.cannula_nerve_angle_deg:.0f}° from the nerve at a lesion, {100 * covered:.0f}% of "
              f"the nerve's course covered by {len(lesions)} lesion(s)")
    return _rated("needle_placement", score, reason, _evidence(lesions[:2]))


def _economy_of_motion(attempt: Attempt, metrics: Metrics, comparison: ExpertComparison) -> RatingItem:
    tolerance = attempt.scenario.tolerances().redirects
    passes = [s for s in attempt.steps if s.action.type in ("place_needle", "redirect")]
    if not passes:
        return _rated("economy_of_motion", 1, "the needle was never placed")
    extra = len(passes) - 1
    score = band(extra, (0, 1, tolerance, tolerance + 2))
    reason = f"{extra} redirection(s) or re-puncture(s) (tolerance {tolerance})"
    if comparison.path_ratio is not None:
        score = min(score, band(comparison.path_ratio, (1.2, 1.5, 2.0, 3.0)))
        reason += f", tip path {comparison.path_ratio:.2f}x the expert's"
    return _rated("economy_of_motion", score, reason, _evidence(passes[1:5]))


def _economy_of_imaging(attempt: Attempt, metrics: Metrics) -> RatingItem:
    limits = attempt.scenario.limits
    score = min(band(metrics.fluoro_shots / limits.shots, (0.6, 0.8, 1.0, 1.5)),
                band(metrics.fluoro_seconds / limits.fluoro_seconds, (1.0 / 3.0, 2.0 / 3.0, 1.0, 2.0)))
    shots = [s for s in attempt.steps if s.action.type == "fluoro_shot"]
    reason = (f"{metrics.fluoro_shots} shots (limit {limits.shots}), {metrics.fluoro_seconds:.1f} s beam-on "
              f"(limit {limits.fluoro_seconds:g} s)")
    return _rated("economy_of_imaging", score, reason, _evidence(shots[-1:]))


def _use_of_imaging(items: list[ChecklistItem]) -> RatingItem:
    imaging = [(number, item) for number, item in enumerate(items, start=1) if item.key in IMAGING_ITEMS]
    points = checklist_points([item for _, item in imaging])
    score = band(1.0 - points / len(imaging), (0.05, 0.2, 0.4, 0.7))
    missed = [str(number) for number, item in imaging if item.status != "done"]
    reason = f"{points:g} of {len(imaging)} imaging steps of the checklist" + (
        f" (short on item {', '.join(missed)})" if missed else "")
    return _rated("use_of_imaging", score, reason)


def repeated_images(attempt: Attempt) -> list[Step]:
    """Shots taken with nothing changed since the previous one: the needle, the C-arm and the contrast as
    they were (the run that images an injection is a change: the injection)."""
    repeated, previous = [], None
    for step in attempt.steps:
        if step.action.type != "fluoro_shot":
            continue
        if previous is not None and (previous.after.needle is step.after.needle and
                                     previous.after.carm == step.after.carm and
                                     previous.after.injections == step.after.injections):
            repeated.append(step)
        previous = step
    return repeated


def _flow(attempt: Attempt, metrics: Metrics) -> RatingItem:
    limit = attempt.scenario.limits.time_s
    repeats = repeated_images(attempt)
    if not attempt.final.injections and not attempt.final.medications:
        return _rated("flow", 1, "the procedure was not carried through to an injection", _evidence(repeats[:4]))
    score = min(band(metrics.procedure_time_s / limit, (0.25, 0.5, 1.0, 1.5)), band(len(repeats), (0, 1, 3, 6)))
    reason = (f"{metrics.procedure_time_s:.0f} s (limit {limit:g} s), "
              f"{len(repeats)} image(s) repeated with nothing changed")
    return _rated("flow", score, reason, _evidence(repeats[:4]))


def _overall(items: list[RatingItem], flags: list[Flag], checklist_fraction: float) -> RatingItem:
    mean = sum(item.score for item in items) / len(items)
    score = int(mean + 0.5)
    reason = f"mean of the items {mean:.1f}"
    severities = {f.severity for f in flags}
    if "critical" in severities or "major" in severities:
        score = 1 if "critical" in severities else 2
        reason += f"; capped by a {'critical' if score == 1 else 'major'} event"
    elif checklist_fraction < CHECKLIST_FLOOR and score > CHECKLIST_CAP:
        score = CHECKLIST_CAP
        reason += f"; capped: {100 * checklist_fraction:.0f}% of the checklist done"
    return _rated("overall", score, reason)


def global_rating(attempt: Attempt, metrics: Metrics, flags: list[Flag], near_misses: list[NearMiss],
                  comparison: ExpertComparison, items: list[ChecklistItem]) -> GlobalRating:
    """The global rating scale of an attempt (the module docstring's anchors).

    Parameters
    ----------
    attempt : Attempt
    metrics : Metrics
    flags : list of Flag
    near_misses : list of NearMiss
    comparison : ExpertComparison
        The attempt beside the expert path (its path ratio).
    items : list of ChecklistItem
        The attempt's checklist (:func:`scoring.checklist.checklist`).
    """
    rated = [_respect_for_tissue(attempt, metrics, flags, near_misses), _needle_placement(attempt, metrics),
             _economy_of_motion(attempt, metrics, comparison), _economy_of_imaging(attempt, metrics),
             _use_of_imaging(items), _flow(attempt, metrics)]
    fraction = checklist_points(items) / max(len(items), 1) if items else 0.0
    rated.append(_overall(rated, flags, fraction))
    return GlobalRating(items=rated, total=sum(item.score for item in rated), maximum=5 * len(rated))

