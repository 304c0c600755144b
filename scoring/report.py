"""The report of an attempt, and ``score``: a pure function of (scenario, anatomy, action log).

``score`` replays the log, measures it, raises safety flags, measures near misses, compares with the
expert path, grades and writes feedback, and scores the procedure's checklist and global rating scale
(reported beside the grade). It reads only the scenario, the anatomy's labels, CT and
landmarks and the log; it never renders an image (the HTML report renders its images separately,
:mod:`frontends.report`). The same inputs give the same report, field for field.

Examples
--------
>>> from anatomy_models.spine import SpineParameters
>>> from anatomy_models.store import generated_anatomy  # the generated patient, kept under SPINESIM_HOME
>>> from scenarios.schema import load_scenario
>>> from simulator.case.planner import expert_actions, plan_trajectory
>>> from simulator.session.fold import Session
>>> scenario = load_scenario("facet-default")
>>> anatomy = generated_anatomy(SpineParameters(spacing_mm=2.0))
>>> session = Session(scenario, anatomy)
>>> log = expert_actions(scenario, session.target, plan_trajectory(session.tracer, session.target, session.spec))
>>> report = score(scenario, anatomy, log)
>>> report.passed, report.grade >= 85, report.flags
(True, True, [])
>>> [item.status for item in report.checklist].count("done"), len(report.checklist), report.global_rating.total
(12, 12, 35)
>>> [label for label, _ in metric_rows(report)][:2]
['Tip to target', 'Tip in the target zone']
>>> dict(metric_rows(report))["Reference air kerma / DAP"]  # doctest: +ELLIPSIS
'... mGy / ... mGy·cm² (expert ... mGy·cm²)'
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel

from anatomy_models.anatomy import Anatomy
from scenarios.schema import Scenario
from scoring.checklist import STATUS_WORDS, ChecklistItem, checklist, evidence_text, in_words
from scoring.expert import ExpertComparison, compare, expert_for
from scoring.feedback import FeedbackItem, feedback
from scoring.grade import Component, Gate, grade
from scoring.metrics import Metrics, dap_text, measure
from scoring.proximity import NearMiss, closest_approaches, with_expert
from scoring.rating import GlobalRating, global_rating
from scoring.safety import Flag, safety_flags
from simulator.needle.trace import Tracer
from simulator.session.actions import LogContents
from simulator.session.fold import READING_OF_PATTERN
from simulator.session.history import Attempt, replay_attempt
from simulator.session.words import action_summary, action_title, event_title

REPORT_FORMAT_VERSION = 1


class TimelineEvent(BaseModel):
    """An event of the timeline: ``kind`` the engine's identifier (for styling), ``title`` and ``message`` the
    words a person reads."""

    kind: str
    title: str = ""
    severity: str
    message: str


class TimelineEntry(BaseModel):
    """One action of the attempt (``action`` its title in words) and what it caused."""

    t: float
    action: str
    summary: str
    events: list[TimelineEvent]


class NeedlePose(BaseModel):
    """A needle's pose, LPS mm (entry and tip) and unit direction."""

    entry: tuple[float, float, float]
    direction: tuple[float, float, float]
    depth_mm: float
    tip: tuple[float, float, float]


class TargetSummary(BaseModel):
    description: str
    point: tuple[float, float, float]
    zone_radius_mm: float
    landmark: str | None
    views: list[str]


class Report(BaseModel):
    """Everything the grade of one attempt rests on; serialises to JSON (``model_dump_json``)."""

    spinesim_report: int = REPORT_FORMAT_VERSION
    scenario_id: str
    scenario_title: str
    procedure: str
    seed: int
    anatomy: str
    target: TargetSummary
    grade: float
    passed: bool
    components: list[Component]
    deductions: dict[str, float] = {}
    gates: list[Gate]
    metrics: Metrics
    flags: list[Flag]
    near_misses: list[NearMiss]
    feedback: list[FeedbackItem]
    expert: ExpertComparison
    needle: NeedlePose | None
    timeline: list[TimelineEntry]
    # Reported beside the grade, not part of it (scoring.checklist, scoring.rating); empty in reports
    # stored before they existed.
    checklist: list[ChecklistItem] = []
    global_rating: GlobalRating | None = None


def score(scenario: Scenario, anatomy: Anatomy, log: LogContents | Sequence[Any], *,
          tracer: Tracer | None = None) -> Report:
    """Grade an attempt.

    Parameters
    ----------
    scenario : Scenario
    anatomy : Anatomy
        The scenario's patient, the one the attempt was made on.
    log : LogContents or sequence
        The parsed action log (:func:`simulator.session.actions.read_log`), or the actions (models or JSON
        records) in order. A log header naming another scenario is refused; its seed is used.
    tracer : Tracer, optional
        Shared with other sessions on the same anatomy.

    Raises
    ------
    SpinesimError
        If the log does not replay on this scenario (an action invalid at its point).
    """
    attempt = replay_attempt(scenario, anatomy, log, tracer=tracer)
    return report_of(attempt)


def report_of(attempt: Attempt) -> Report:
    """The report of a replayed attempt (see :func:`score`)."""
    scenario, session = attempt.scenario, attempt.session
    metrics = measure(attempt)
    expert = expert_for(attempt)
    comparison = compare(attempt, metrics, expert)
    flags = safety_flags(attempt, metrics)
    approaches = with_expert(closest_approaches(attempt), expert.approaches if expert else None)
    result = grade(scenario, metrics, flags, approaches, comparison)
    target = session.target
    needle = attempt.final.needle
    steps = checklist(attempt, metrics)
    return Report(
        scenario_id=scenario.id, scenario_title=scenario.title, procedure=scenario.procedure, seed=scenario.seed,
        anatomy=anatomy_name(session.anatomy),
        target=TargetSummary(description=target.description, point=tuple(np.round(target.point, 3).tolist()),
                             zone_radius_mm=target.zone.radius_mm, landmark=target.landmark,
                             views=[view.name for view in target.views]),
        grade=result.score, passed=result.passed, components=result.components, deductions=result.deductions,
        gates=result.gates, metrics=metrics,
        flags=flags, near_misses=approaches, feedback=feedback(scenario, metrics, flags, approaches, comparison),
        expert=comparison,
        needle=None if needle is None else NeedlePose(entry=tuple(np.round(needle.entry, 3).tolist()), direction=tuple(np.round(needle.direction, 5).tolist()),
                                                      depth_mm=round(needle.depth_mm, 3), tip=tuple(np.round(needle.tip, 3).tolist())),
        timeline=timeline(attempt), checklist=steps,
        global_rating=global_rating(attempt, metrics, flags, approaches, comparison, steps))


def metric_rows(report: Report) -> list[tuple[str, str]]:
    """The report's metrics as a person reads them: (label, value with its unit), in display order.

    The one formatting of the metrics: the HTML report (:mod:`frontends.report`) and the web app's
    Report tab both list these rows, so they cannot disagree. Plain text (escape it for HTML).
    Doses in the units a C-arm's dose display shows: reference air kerma in mGy, DAP in mGy·cm²
    (an injection's DAP is tens to hundreds of mGy·cm²: whole numbers, not 0.0xx Gy·cm²).
    """
    m, expert = report.metrics, report.expert
    yes = {True: "yes", False: "no", None: "–"}
    offset = m.offset
    rows = [
        ("Tip to target", quantity_text(m.tip_to_target_mm, "mm")),
        ("Tip in the target zone", yes[m.in_zone] + (f" (in {in_words(m.tip_structure)})" if m.tip_structure else "")),
        ("Offset (cranial / ventral / lateral)", "–" if offset is None else
         f"{offset.cranial_mm:+.1f} / {offset.ventral_mm:+.1f} / {offset.lateral_mm:+.1f} mm"),
        (f"Depth error on the {m.depth_view}", quantity_text(m.depth_error_mm, "mm")),
        ("Passes / redirections or re-insertions", f"{m.passes} / {m.redirects}"),
        ("Bone contacts", str(m.bone_contacts)),
        ("Fluoroscopy shots", f"{m.fluoro_shots} (expert {expert.expert_shots if expert.available else '–'})"),
        ("Beam-on time", f"{m.fluoro_seconds:.1f} s (DSA runs: {m.dsa_runs})"),
        ("Reference air kerma / DAP", f"{m.reference_air_kerma_mgy:.2f} mGy / "
                                      f"{dap_text(m.dose_area_product_gy_cm2)}"
                                      + (f" (expert {dap_text(expert.expert_dose_area_product_gy_cm2)})"
                                         if expert.expert_dose_area_product_gy_cm2 else "")),
        ("Procedure time", f"{m.procedure_time_s:.0f} s"),
        ("Tip path length", f"{m.path_length_mm:.0f} mm "
                            f"(expert {quantity_text(expert.expert_path_length_mm, 'mm', 0)})"),
        ("Contrast", f"{m.contrast_ml:g} mL: " + (", ".join(in_words(p) for p in m.contrast_patterns) or "none")
         + ("" if m.contrast_pattern_correct is None
            else f" ({'correct' if m.contrast_pattern_correct else 'wrong'} pattern)")),
        ("Contrast named (yours / as it was)", " · ".join(
            f"{in_words(reading) if reading else 'not named'} / {in_words(READING_OF_PATTERN[pattern])}"
            for pattern, reading in zip(m.contrast_patterns, m.contrast_readings)) or "–"),
        ("Contrast imaged live / DSA", f"{yes[m.contrast_checked]} / {yes[m.dsa_used]}"),
        ("Final position checked on the depth view", yes[m.depth_view_checked]),
        ("Injectate", "none" if m.injectate_tested is None else
         f"{m.injectate_ml:g} mL: {', '.join(in_words(p) for p in m.injectate_patterns)} (where a contrast test imaged "
         f"live or by DSA went in: {yes[m.injectate_tested]})"),
        ("Tissues crossed (skin to tip)", " → ".join(in_words(name) for name in m.tissues_crossed) or "–"),
    ]
    if m.loss_of_resistance_confirmed is not None:
        rows.insert(14, ("Loss of resistance confirmed", f"{yes[m.loss_of_resistance_confirmed]} "
                                                          f"({m.loss_of_resistance_checks} checks)"))
    if m.nerve_coverage is not None:
        rows[2:2] = [
            ("Nerve covered by the lesions", f"{100 * m.nerve_coverage:.0f}% ({m.lesions} lesion(s))"),
            ("Cannula to nerve angle", quantity_text(m.cannula_nerve_angle_deg, "°", 0) + " (parallel: within 20°)"),
            ("Sensory / motor testing", f"concordant at ≤ 0.5 V: {yes[m.sensory_confirmed]}; motor test before every "
                                        f"lesion: {yes[m.lesions_motor_tested]}; lesion after a leg twitch: "
                                        f"{yes[m.lesioned_after_leg_twitch]}"),
        ]
    return rows


def checklist_rows(report: Report) -> list[tuple[str, str, str, str]]:
    """The checklist as a person reads it: (numbered step, status, why, evidence), plain text.

    Like :func:`metric_rows`, the one formatting of the checklist for the HTML report and the web app.
    """
    return [(f"{number}. {item.step}", STATUS_WORDS[item.status], item.detail, evidence_text(item.evidence))
            for number, item in enumerate(report.checklist, start=1)]


def rating_rows(report: Report) -> list[tuple[str, str, str, str]]:
    """The global rating scale as a person reads it: (item, "score / 5", the anchor it meets, what was
    measured), plain text; empty for a report stored before the scale existed."""
    if report.global_rating is None:
        return []
    return [(item.title, f"{item.score} / 5", item.anchor, item.reason) for item in report.global_rating.items]


def quantity_text(value: float | None, unit: str = "", digits: int = 1) -> str:
    """A number with its unit for a table cell; a dash for none.

    >>> quantity_text(-0.04, "mm"), quantity_text(-0.06, "mm"), quantity_text(None)
    ('0.0 mm', '-0.1 mm', '–')
    """
    if value is None:
        return "–"
    # z: a signed error that rounds to zero shows 0.0, not -0.0
    return f"{value:z.{digits}f}{(' ' + unit) if unit else ''}"


def anatomy_name(anatomy: Anatomy) -> str:
    """A name for the anatomy: its stored name, or the generator's parameter hash."""
    key = anatomy.metadata.get("cache_key")
    return f"generated:{key}" if key and not anatomy.metadata.get("name") else anatomy.name


def timeline(attempt: Attempt) -> list[TimelineEntry]:
    """Every action with a one-line summary and the events it caused, in clinical words (no identifiers, no
    coordinates: :mod:`simulator.session.words`)."""
    return [TimelineEntry(t=step.t, action=action_title(step.action.type), summary=action_summary(step.action),
                          events=[TimelineEvent(kind=e.kind, title=event_title(e.kind), severity=e.severity,
                                                message=e.debrief) for e in step.events])
            for step in attempt.steps]
