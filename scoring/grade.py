"""The grade: four weighted parts scored 0-1, a 0-100 total, and the gates a pass must clear.

============  ==========================================================================================
part          how it is scored (each item 1 at or below its "good" value, 0 at its "bad" one, linear in
              between: :func:`ramp`; accuracy's distances fall smoothly instead: :func:`falloff`)
============  ==========================================================================================
accuracy      the outcome (half): where the injectate went, the right compartment and pattern, or
              without an injection the tip in the acceptance zone; tip-to-target distance (0.3) and
              depth error in the safety view (0.2), each by :func:`closeness`: 1 on the point, 3/4 at
              the rubric's ``tip_mm`` / ``depth_mm``, half that at twice it, never a cliff; the point is
              the target's or the safe plan's end (the expert's placement), whichever is nearer
safety        1, less 0.5 per major flag, 0.15 per minor flag and 0.1 per near miss; 0 with any
              critical flag
efficiency    mean of: shots, beam-on time and procedure time against the range of expert attempts
              (good up to 1.25x the reference attempt's, bad at the scenario's limit), the dose-area
              product against the same range (bad at twice its top: collimation, pulses rather than
              runs, few laterals and DSA only for the test are what lower it), redirections (good
              up to 1, bad at 3x the tolerance or tolerance + 3), bone contacts (tolerance, tolerance +
              6), path length over the expert's (``path_ratio``, twice it); times the accuracy part's
              score: speed that did not reach the target earns nothing (an attempt abandoned after 10 s
              is not efficient)
technique     contrast injected and its pattern right (0.25) and named right by the trainee (0.10, the
              share of contrast injections read right); contrast imaged live (0.15), by DSA where
              the scenario offers it (0.25), and every injectate tested so; the final position seen in the safety view before injecting,
              the multiplanar rule of clinical.md §1 (0.25); interlaminar: loss of resistance confirmed
              (0.15, otherwise shared out)
ablation      a radiofrequency ablation's accuracy is the nerve's course covered by its lesions (0.6, full
              at :data:`COVERAGE_GOOD`) and the cannula parallel to the nerve (0.4); its technique a
              concordant sensory response (0.2), a motor test before every lesion (0.3), local
              anaesthetic before the heat (0.2) and the final depth seen on lateral (0.3)
============  ==========================================================================================

Weights come from the scenario's rubric (default 40/25/20/15). Deductions come off the weighted
total: the rubric's ``hint_deduction`` points per hint revealed (default 0). Never-events cap the
grade: with any critical flag it is at most :data:`CRITICAL_GRADE_CAP`, below any safe attempt, and with
any major flag at most :data:`MAJOR_GRADE_CAP`, below a clean novice's (the points removed are listed
with the deductions). Pass gates: no critical flag (always),
the attempt finished, and the rubric's ``in_zone``, ``max_major_flags``, ``depth_confirmed`` (the final position
seen on the depth view before injecting: the multiplanar rule, clinical.md §1 [S8][S33]), ``contrast_check`` (every
contrast test imaged live or by DSA, and every injectate given where such a test went in: §6.3) and
``min_score``. The numbers not taken from clinical.md §6.3 are engineering defaults [ED].
"""

from __future__ import annotations

from pydantic import BaseModel

from scenarios.schema import Scenario
from scoring.checklist import in_words
from scoring.expert import ExpertComparison
from scoring.metrics import Metrics, read_correctly
from scoring.proximity import NearMiss
from scoring.safety import Flag
from simulator.case.targets import PARALLEL_DEG

SAFETY_PENALTY = {"major": 0.5, "minor": 0.15}
# Within a tolerance, this share of a distance item is earned by closeness: the precision that tells a
# consultant (on the point) from a resident (within the tolerance) [ED].
PRECISION_SHARE = 0.25
# The reference attempt (the planner's) is the economical end of expert practice; expert attempts take up
# to this factor more shots, beam-on time and time [ED], and re-aim at most this many times [ED].
EXPERT_RANGE = 1.25
EXPERT_REDIRECTS = 1
# The dose-area product scores nothing at this many times the top of the expert range [ED]. A scenario has
# no dose limit; published reference levels (clinical.md §3) are not used as the bad end because the dose
# model's absolute DAP is not calibrated to them (see simulator.imaging.dose), only its ratios are.
DOSE_BAD_FACTOR = 2.0
NEAR_MISS_PENALTY = 0.1
# The most an attempt with a critical / a major event can score [ED]: a critical event (a never-event:
# intrathecal, intravascular or intraneural injectate, an injection no image showed, cord contact) ranks
# below every safe attempt, a major one below a clean but imprecise novice (6 mm off, 24 shots: 34-77
# on the default cases, tests/scoring/test_grade_order.py).
CRITICAL_GRADE_CAP = 15.0
MAJOR_GRADE_CAP = 30.0


class Component(BaseModel):
    """One part of the grade: its weight (normalised to sum 1), its 0-1 score and the points it gives."""

    name: str
    weight: float
    score: float
    points: float
    items: dict[str, float]


class Gate(BaseModel):
    """One condition of a pass."""

    name: str
    passed: bool
    detail: str


class Grade(BaseModel):
    score: float
    passed: bool
    components: list[Component]
    gates: list[Gate]
    deductions: dict[str, float] = {}


def ramp(value: float, good: float, bad: float) -> float:
    """1 at or below ``good``, 0 at or above ``bad``, linear in between.

    Examples
    --------
    >>> ramp(2.0, 3.0, 9.0), ramp(6.0, 3.0, 9.0), ramp(12.0, 3.0, 9.0)
    (1.0, 0.5, 0.0)
    """
    if value <= good:
        return 1.0
    if value >= bad:
        return 0.0
    return float((bad - value) / (bad - good))


def falloff(value: float, good: float) -> float:
    """1 at or below ``good``, then falling smoothly: 1/2 at twice ``good``, 1/5 at three times, never 0.

    Examples
    --------
    >>> falloff(2.0, 3.0), falloff(6.0, 3.0), round(falloff(7.0, 3.0), 3), falloff(9.0, 3.0)
    (1.0, 0.5, 0.36, 0.2)
    """
    if value <= good:
        return 1.0
    return float(1.0 / (1.0 + ((value - good) / good) ** 2))


def closeness(value: float, tolerance: float) -> float:
    """:func:`falloff` beyond the tolerance; within it, :data:`PRECISION_SHARE` of the item still rewards
    closeness (1 at 0, 1 - PRECISION_SHARE at the tolerance): no cliff anywhere.

    Examples
    --------
    >>> closeness(0.0, 4.0), closeness(2.0, 4.0), closeness(4.0, 4.0), closeness(8.0, 4.0)
    (1.0, 0.875, 0.75, 0.375)
    """
    return falloff(value, tolerance) * (1.0 - PRECISION_SHARE * min(value / tolerance, 1.0))


# Radiofrequency ablation (clinical.md §2.5: scored by the nerve covered and the cannula's angle to it, not
# by the tip's distance to a point): full marks for covering this fraction of the nerve's course [ED], the
# outcome met at half of it [ED], and the angle scored 1 when parallel (<= 20 deg, §6.3 [ED]) down to 0
# at 60 deg (end-on placement makes a lesion that barely reaches the nerve [S39][S41]).
COVERAGE_GOOD = 0.9
COVERAGE_ON_TARGET = 0.5
PARALLEL_GOOD_DEG, PARALLEL_BAD_DEG = PARALLEL_DEG, 60.0


def on_target(metrics: Metrics) -> bool:
    """The outcome an examiner looks at: the injectate where it belongs (right compartment and
    pattern: the injectate's compartment, else the last contrast test's), or, when nothing was injected,
    the tip in the acceptance zone; for an ablation, at least :data:`COVERAGE_ON_TARGET` of the nerve's
    course lesioned."""
    if metrics.nerve_coverage is not None:
        return metrics.nerve_coverage >= COVERAGE_ON_TARGET
    if metrics.injectate_pattern_correct is not None:
        return metrics.injectate_pattern_correct
    if metrics.contrast_pattern_correct is not None:
        return bool(metrics.contrast_pattern_correct)
    return metrics.in_zone


def _accuracy(scenario: Scenario, metrics: Metrics, expert: ExpertComparison) -> dict[str, float]:
    if metrics.nerve_coverage is not None:
        angle = metrics.cannula_nerve_angle_deg
        return {"nerve_coverage": 0.6 * min(metrics.nerve_coverage / COVERAGE_GOOD, 1.0),
                "parallel": 0.4 * (0.0 if angle is None or not metrics.lesions
                                   else ramp(angle, PARALLEL_GOOD_DEG, PARALLEL_BAD_DEG))}
    tolerances = scenario.tolerances()
    if metrics.tip_to_target_mm is None or metrics.depth_error_mm is None:
        return {"outcome": 0.0, "tip_distance": 0.0, "depth": 0.0}
    tip_mm, depth_mm = metrics.tip_to_target_mm, abs(metrics.depth_error_mm)
    # "The point" is the target's landmark or the end of the safe plan, whichever the tip is nearer: where no safe
    # path reaches the landmark itself (a transforaminal target beside the root: the planner ends 1.5-2.1 mm off
    # it), an examiner does not count the expert's placement, the planned point, as imprecision.
    if expert.tip_to_plan_mm is not None:
        tip_mm = min(tip_mm, expert.tip_to_plan_mm)
        depth_mm = min(depth_mm, abs(expert.depth_error_to_plan_mm))
    return {"outcome": 0.5 * on_target(metrics),
            "tip_distance": 0.3 * closeness(tip_mm, tolerances.tip_mm),
            "depth": 0.2 * closeness(depth_mm, tolerances.depth_mm)}


def _safety(flags: list[Flag], near_misses: list[NearMiss]) -> dict[str, float]:
    if any(f.severity == "critical" for f in flags):
        return {"critical": -1.0}
    items = {f.code: -SAFETY_PENALTY[f.severity] * f.count for f in flags}
    items.update({f"near_miss_{n.group}": -NEAR_MISS_PENALTY for n in near_misses if n.near_miss})
    return items


def _efficiency(scenario: Scenario, metrics: Metrics, expert: ExpertComparison,
                accuracy: float) -> dict[str, float]:
    limits, tolerances = scenario.limits, scenario.tolerances()
    items = {
        "shots": _against_experts(metrics.fluoro_shots, expert.expert_shots, limits.shots),
        "fluoro_seconds": _against_experts(metrics.fluoro_seconds, expert.expert_fluoro_seconds, limits.fluoro_seconds),
        "time": _against_experts(metrics.procedure_time_s, expert.expert_time_s, limits.time_s),
        "redirects": ramp(metrics.redirects, min(EXPERT_REDIRECTS, tolerances.redirects),
                          max(3 * tolerances.redirects, tolerances.redirects + 3)),
        "bone_contacts": ramp(metrics.bone_contacts, tolerances.bone_contacts, tolerances.bone_contacts + 6),
    }
    if expert.expert_dose_area_product_gy_cm2:
        items["dose"] = _against_experts(metrics.dose_area_product_gy_cm2, expert.expert_dose_area_product_gy_cm2,
                                         DOSE_BAD_FACTOR * EXPERT_RANGE * expert.expert_dose_area_product_gy_cm2)
    if expert.path_ratio is not None:
        items["path_length"] = ramp(expert.path_ratio, tolerances.path_ratio, 2.0 * tolerances.path_ratio)
    return {name: accuracy * value / len(items) for name, value in items.items()}


def _against_experts(value: float, expert_value: float | None, limit: float) -> float:
    """1 within the range of expert attempts (EXPERT_RANGE times the reference attempt's value), 0 at the
    scenario's limit (at least half as much again); without a reference, 1 at 2/3 of the limit, 0 at twice it."""
    if expert_value is None:
        return ramp(value, 2.0 * limit / 3.0, 2.0 * limit)
    good = EXPERT_RANGE * expert_value
    return ramp(value, good, max(limit, 1.5 * good))


def _technique(scenario: Scenario, metrics: Metrics) -> dict[str, float]:
    if metrics.nerve_coverage is not None:
        # The ablation's checks (clinical.md §2.5 [S39][S43]): sensory confirmation, a motor test before
        # every lesion, local anaesthetic before the heat, and the final depth on the lateral view.
        return {"sensory_test": 0.2 * bool(metrics.sensory_confirmed),
                "motor_test": 0.3 * bool(metrics.lesions_motor_tested),
                "local_anaesthetic": 0.2 * bool(metrics.anaesthetised_before_lesion),
                "depth_view": 0.3 * metrics.depth_view_checked}
    items = {
        "contrast_pattern": 0.25 * bool(metrics.contrast_pattern_correct),
        "contrast_read": 0.10 * (read_correctly(metrics) or 0.0),
        # DSA where the scenario offers it earns full marks; live fluoroscopy alone there, most of them; an
        # injectate given where no imaged test went in earns none.
        "contrast_check": 0.25 * (1.0 if metrics.dsa_used is not False else 0.6) * bool(metrics.contrast_checked)
                          * (metrics.injectate_tested is not False),
        "depth_view": 0.25 * metrics.depth_view_checked,
    }
    if metrics.loss_of_resistance_confirmed is not None:
        items["loss_of_resistance"] = 0.15 * metrics.loss_of_resistance_confirmed
    else:
        items = {name: value / 0.85 for name, value in items.items()}
    return items


def grade(scenario: Scenario, metrics: Metrics, flags: list[Flag], near_misses: list[NearMiss],
          expert: ExpertComparison) -> Grade:
    """Score the measured attempt and decide pass or fail."""
    weights = scenario.rubric.weights
    accuracy = _accuracy(scenario, metrics, expert)
    parts = {"accuracy": (weights.accuracy, accuracy),
             "safety": (weights.safety, _safety(flags, near_misses)),
             "efficiency": (weights.efficiency, _efficiency(scenario, metrics, expert, sum(accuracy.values()))),
             "technique": (weights.technique, _technique(scenario, metrics))}
    total_weight = sum(weight for weight, _ in parts.values())
    components = []
    for name, (weight, items) in parts.items():
        value = min(max((1.0 + sum(items.values())) if name == "safety" else sum(items.values()), 0.0), 1.0)
        share = weight / total_weight
        components.append(Component(name=name, weight=round(share, 4), score=round(value, 4),
                                    points=round(100.0 * share * value, 2),
                                    items={k: round(v, 4) for k, v in items.items()}))
    deductions = {"hints": round(metrics.hints_used * scenario.rubric.hint_deduction, 2)} if metrics.hints_used else {}
    before_cap = max(sum(c.points for c in components) - sum(deductions.values()), 0.0)
    cap = _cap(flags)
    if cap is not None and before_cap > cap[1]:
        deductions[cap[0]] = round(before_cap - cap[1], 2)
    score = round(min(before_cap, cap[1]) if cap else before_cap, 1)
    gates = _gates(scenario, metrics, flags, score)
    return Grade(score=score, passed=all(g.passed for g in gates), components=components, gates=gates,
                 deductions=deductions)


def _cap(flags: list[Flag]) -> tuple[str, float] | None:
    """The grade cap the worst flag sets (its name, the most points), None without a critical or major flag."""
    severities = {f.severity for f in flags}
    if "critical" in severities:
        return "cap: critical event", CRITICAL_GRADE_CAP
    if "major" in severities:
        return "cap: major event", MAJOR_GRADE_CAP
    return None


def _gates(scenario: Scenario, metrics: Metrics, flags: list[Flag], score: float) -> list[Gate]:
    rules = scenario.rubric.pass_gates
    critical = [f.title for f in flags if f.severity == "critical"]
    major = [f.title for f in flags if f.severity == "major"]
    gates = [Gate(name="no critical event", passed=not critical, detail=", ".join(critical) or "none"),
             Gate(name="attempt finished", passed=metrics.finished,
                  detail="finished" if metrics.finished else "the attempt was not finished")]
    if rules.in_zone:
        where = f"tip in {in_words(metrics.tip_structure)}" if metrics.tip_structure else "no needle"
        if metrics.contrast_patterns:
            where = f"{', '.join(in_words(p) for p in metrics.contrast_patterns)} spread, {where}"
        gates.append(Gate(name="on target", passed=on_target(metrics), detail=where))
    gates.append(Gate(name=f"at most {rules.max_major_flags} major event(s)", passed=len(major) <= rules.max_major_flags,
                      detail=", ".join(major) or "none"))
    if rules.depth_confirmed and (metrics.contrast_ml > 0.0 or metrics.injectate_ml > 0.0):
        seen = metrics.depth_view_checked
        gates.append(Gate(name=f"position confirmed on the {metrics.depth_view}", passed=seen,
                          detail=f"the final position was seen on the {metrics.depth_view} before injecting" if seen
                          else f"injected without seeing the final position on the {metrics.depth_view}"))
    if rules.contrast_check != "none":
        imaged = "DSA" if rules.contrast_check == "dsa" else "live fluoroscopy or DSA"
        ok = bool(metrics.contrast_checked) and (rules.contrast_check != "dsa" or bool(metrics.dsa_used))
        detail = ("no contrast injected" if metrics.contrast_checked is None else
                  f"contrast imaged with {imaged}" if ok else f"contrast not imaged with {imaged}")
        if ok and metrics.injectate_tested is False:
            ok, detail = False, f"an injectate given where no contrast test imaged with {imaged} went in"
        gates.append(Gate(name="contrast check", passed=ok, detail=detail))
    gates.append(Gate(name=f"score at least {rules.min_score:g}", passed=score >= rules.min_score, detail=f"{score:g}"))
    return gates
