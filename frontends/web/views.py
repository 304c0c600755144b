"""What the page shows: pure functions from an attempt, its session or the store's rows to the dict of
trame state the page is drawn from (names as :mod:`frontends.web.layout` uses them).

Nothing here reads the browser or changes the engine; the request handlers
(:mod:`frontends.web.handlers`) call these after each request and push what they return.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from frontends.store import Assignment
from frontends.store import Attempt as StoredAttempt
from frontends.store import Comment, Store, User
from frontends.web.attempt import LiveAttempt
from scenarios.catalogue import LIBRARY, Catalogue
from scenarios.schema import Scenario
from scoring.checklist import checklist_points
from scoring.metrics import MGY_PER_GY
from scoring.peers import percentile_text
from scoring.report import Report, checklist_rows, metric_rows, rating_rows
from simulator.case.controls import PROBE_VIEWS, SHUTTER_OPENINGS
from simulator.imaging.carm import MAGNIFICATION_MODES_CM
from simulator.needle.shaft import Needle
from simulator.session.actions import AGENTS
from simulator.session.fold import AGENT_WORDS, READING_WORDS, Event
from simulator.session.words import action_summary, action_title, event_title

# Events a trainee sees as a banner (in addition to the list).
_ALERT_KINDS = {"csf_flashback", "blood_flashback", "paraesthesia", "dural_puncture", "bone_contact", "hub_at_skin",
                "cord_contact", "cauda_equina_contact", "root_penetration", "vessel_puncture", "intradiscal",
                "capsule_rupture"}
_SEVERITY_COLOUR = {"info": "blue-grey", "warning": "amber-darken-2", "unsafe": "red-darken-2"}
# Events whose severity is the verdict the trainee must read from the images: a neutral chip while it runs.
_VERDICT_KINDS = {"contrast", "medication"}
# Shown elsewhere: the monitor and the hint list. What the trainee does not perceive at all
# (Event.perceived: the target, the structure entered, the contrast verdict) waits for the debrief.
_SHOWN_ELSEWHERE = {"probe_placed", "hint_shown"}


# The fields a trainee fills for one attempt, as a new attempt starts them (the last attempt's angles and
# volumes must not carry over into the next).
ATTEMPT_FIELDS = {"needle_left": 0.0, "needle_cranial": 0.0, "bevel_roll_deg": 0, "step_mm": 5.0, "contrast_ml": 1.0,
                  "live_seconds": 3.0,
                  "contrast_reading": None, "medication_ml": 2.0, "medication_agent": "steroid_nonparticulate",
                  "stim_volts": 0.5, "lesion_temperature": 80.0, "lesion_seconds": 90.0,
                  "us_step_mm": 2.0,
                  "us_step_deg": 5.0, "us_entry_end": "right"}


def initial_state(user: User, catalogue: Catalogue, first: str, assigned: Sequence[Assignment] = ()) -> dict:
    """Every state variable of the page, as it is before anything happens (``first``: the scenario picked;
    ``assigned``: the trainee's assignments, listed first in the picker)."""
    return ATTEMPT_FIELDS | {
        "tab": "sim", "action_count": 0, "user_name": user.name, "role": user.role,
        "scenario_items": scenario_items(catalogue, assigned), "explain_for": None, "explain_page": "",
        "explain_attempt_for": None, "explain_attempt_page": "",
        "scenario_id": first, "scenario": {}, "attempt_active": False, "attempt_id": None, "resume_id": None,
        "busy": False, "error_text": "", "error_show": False, "notice_text": "", "finish_confirm": False,
        "abandon_confirm": False, "alert_text": "", "alert_colour": "red-darken-2",
        "alert_show": False,
        "fluoro_src": "", "fluoro_caption": "", "has_run": False, "pick_marker": None, "entry_text": "", "entry_lps": "",
        "fluoro_zoom": 1,
        "carm_primary": 0.0, "carm_secondary": 0.0, "carm_label": "AP", "preset_names": [], "needle_items": [],
        "needle_number": 0,
        "carm_field_cm": MAGNIFICATION_MODES_CM[0], "carm_shutters": 1.0, "carm_fields": list(MAGNIFICATION_MODES_CM),
        "carm_openings": list(SHUTTER_OPENINGS),
        "needle_in": False, "depth_mm": 0.0, "bevel_text": "", "hub_text": "", "lor_text": "", "dsa_allowed": False,
        "contrast_given": False,
        "contrast_reading_items": [{"title": words[0].upper() + words[1:], "value": reading}
                                   for reading, words in READING_WORDS.items()],
        "rf_allowed": False, "rf_text": "",
        "medication_agents": [{"title": AGENT_WORDS[agent], "value": agent} for agent in AGENTS],
        "hints_shown": [], "hints_left": 0, "events": [],
        "us_allowed": False, "us_src": "", "us_caption": "", "us_preparing": False, "us_aspect": "1 / 1",
        "us_views": list(PROBE_VIEWS),
        "probe_on": False, "us_depth": 80.0, "us_gain": 0.0, "us_frequency": 3.5, "us_aim_marker": None,
        "us_aim_text": "",
        "report_scans": [], "replay_us_src": "", "replay_us_caption": "", "replay_us_aspect": "1 / 1",
        "timer_text": "00:00", "shots": 0, "fluoro_s": 0.0, "kerma_mgy": 0.0, "dap_mgy_cm2": 0.0, "passes": 0,
        "report": None, "report_rows": [], "report_checklist": [], "report_checklist_title": "", "report_rating": [],
        "report_rating_title": "", "report_page": "", "report_shots": [], "replay_max": 0, "replay_step": 0,
        "replay_src": "", "replay_caption": "", "replay_action": "", "replay_events": [],
        "review_trainees": [], "review_trainee": None, "review_scenario": None, "review_rows": [], "review_csv": "",
        "review_xapi": "", "review_cohort": None, "programme_cohorts": [], "programme_html": "",
        "report_comments": [], "comment_text": "", "my_rows": [],
        "report_peers": "", "curve_svg": "", "preview_id": first, "preview_src": "", "preview_text": "",
    }


def comment_rows(comments: Sequence[Comment]) -> list[dict]:
    """An attempt's comments for the page: author, whether it is the trainee's reply, where (a replay step or the
    attempt), when (UTC), text."""
    return [{"author": c.author, "reply": c.reply,
             "where": ("reply " if c.reply else "") + (f"at step {c.step}" if c.step else "on the attempt"),
             "step": c.step, "when": f"{c.created:%Y-%m-%d %H:%M} UTC", "text": c.text} for c in comments]


def scenario_items(catalogue: Catalogue, assigned: Sequence[Assignment] = ()) -> list[dict]:
    """The pickers' items: the trainee's assigned cases still to do first (soonest due first, with the due
    date), then each group's cases by id under a header naming the group (the library, then each served
    folder).

    Examples
    --------
    >>> from scenarios.catalogue import read_catalogue
    >>> scenario_items(read_catalogue())[:2]  # doctest: +ELLIPSIS
    [{'type': 'subheader', 'title': 'Library'}, {'value': 'caudal-default', 'title': ...}]
    """
    items = []
    to_do = [a for a in assigned if not a.done and a.scenario_id in catalogue.scenarios]
    if to_do:
        items.append({"type": "subheader", "title": "Assigned to you"})
        items += [{"value": a.scenario_id, "title": catalogue.scenarios[a.scenario_id].title
                   + (f" · due {a.due:%Y-%m-%d}" if a.due else ""),
                   "props": _item_props(catalogue.scenarios[a.scenario_id])} for a in to_do]
    for group in catalogue.group_names():
        items.append({"type": "subheader", "title": "Library" if group == LIBRARY else group})
        items += [{"value": key, "title": scenario.title, "props": _item_props(scenario)}
                  for key, scenario in sorted(catalogue.scenarios.items()) if catalogue.groups[key] == group]
    return items


def _item_props(scenario: Scenario) -> dict:
    """A picker item's second line (Vuetify applies an item's ``props`` to its list item): the case's
    difficulty and its learning objectives, which the case card then lists.

    >>> from scenarios.schema import load_scenario
    >>> _item_props(load_scenario("tfesi-default"))["subtitle"]
    'intermediate · 3 objectives'
    """
    count = len(scenario.objectives)
    objectives = f" · {count} objective{'s' if count != 1 else ''}" if count else ""
    return {"subtitle": f"{scenario.difficulty}{objectives}"}


def scenario_view(scenario: Scenario) -> dict:
    """The case card: title, brief, difficulty, learning objectives, procedure, needle and imaging; which
    imaging the controls offer."""
    imaging = [name.upper() if name == "dsa" else name for name, on in scenario.imaging.model_dump().items() if on]
    return {"scenario": {"title": scenario.title, "brief": scenario.brief, "difficulty": scenario.difficulty,
                         "objectives": list(scenario.objectives),
                         "procedure": scenario.procedure.replace("_", " "),
                         "needle": needle_words(scenario),
                         "imaging": ", ".join(imaging)},
            "needle_items": [{"title": choice_words(needle), "value": number}
                             for number, needle in enumerate(scenario.tray)], "needle_number": 0,
            "dsa_allowed": scenario.imaging.dsa, "us_allowed": scenario.imaging.ultrasound,
            "trame__title": page_title(scenario), "rf_allowed": scenario.needle.kind == "rf_cannula"}


def page_title(scenario: Scenario) -> str:
    """The browser tab's title: the product and the case (trame's own otherwise).

    Examples
    --------
    >>> from scenarios.schema import load_scenario
    >>> page_title(load_scenario("ilesi-default"))  # doctest: +ELLIPSIS
    'spinesim · ...'
    """
    return f"spinesim · {scenario.title}"


# The needle kinds as a clinician names them.
NEEDLE_WORDS = {"tuohy": "Tuohy", "quincke": "Quincke", "rf_cannula": "RF cannula"}


def needle_words(scenario: Scenario) -> str:
    """The needle on the case card: kind, gauge, length, and an RF cannula's active tip.

    Examples
    --------
    >>> from scenarios.schema import load_scenario
    >>> needle_words(load_scenario("rfa-l4-medial-branch-left")), needle_words(load_scenario("tfesi-default"))
    ('RF cannula 18 G, 100 mm, 10 mm active tip', 'Quincke 22 G, 89 mm')
    """
    return choice_words(scenario.needle)


def choice_words(needle) -> str:
    """A needle of the tray (a :class:`scenarios.schema.NeedleChoice`) as the case card names it."""
    spec = needle.spec()
    curved = "curved " if spec.curved_tip else ""
    tip = f", {spec.active_tip_mm:g} mm {curved}active tip" if spec.kind == "rf_cannula" else ""
    return f"{NEEDLE_WORDS[spec.kind]} {spec.gauge} G, {spec.length_mm:.0f} mm{tip}"


def resume_view(unfinished: StoredAttempt | None) -> dict:
    """The offer to resume the user's interrupted attempt, if there is one."""
    if unfinished is None:
        return {"resume_id": None, "resume_text": ""}
    return {"resume_id": unfinished.id, "resume_text": f"Attempt {unfinished.id} ({unfinished.scenario_id}) was "
                                                       f"interrupted after {unfinished.actions} actions."}


def carm_words(pose, label: str) -> str:
    """The C-arm as its card says it: the angles' ``label``, and the magnification field and the shutters
    when they are not at the full field and open.

    >>> from scenarios.poses import CArmPose
    >>> carm_words(CArmPose(field_cm=15, shutters=0.5), "LAO 25°"), carm_words(CArmPose(), "AP")
    ('LAO 25° · field 15 cm · shutters 50%', 'AP')
    """
    field = f" · field {pose.field_cm:g} cm" if pose.field_cm is not None else ""
    shutters = f" · shutters {pose.shutters:.0%}" if pose.shutters is not None else ""
    return label + field + shutters


def attempt_view(attempt: LiveAttempt, events: Sequence[Event] = (), *, needle_moved: bool = False) -> dict:
    """The simulator as the attempt stands: counters, needle, events (``events``: those the last action
    caused, shown as a banner or in the syringe's line), monitors, hints and probe settings.

    The safety banner speaks of the needle's last move: a move that raises nothing (``needle_moved``, a new
    pass, an advance, a withdrawal) takes an older banner down, so it never reads as a new event; an image
    or a syringe check leaves it up."""
    state = attempt.session.state
    view = {"attempt_active": not attempt.finished, "attempt_id": attempt.attempt_id,
            "action_count": len(attempt.session.actions),
            "carm_label": carm_words(state.carm, attempt.session.carm().label), "shots": state.fluoro_shots,
            "carm_field_cm": state.carm.field_cm or MAGNIFICATION_MODES_CM[0],
            "carm_shutters": state.carm.shutters or 1.0,
            "fluoro_s": round(state.fluoro_seconds, 1), "kerma_mgy": round(attempt.ledger.reference_air_kerma_mgy, 2),
            "dap_mgy_cm2": round(attempt.ledger.dose_area_product_gy_cm2 * MGY_PER_GY, 1), "passes": state.passes,
            "needle_in": state.needle is not None, "contrast_given": bool(state.injections),
            "depth_mm": round(state.needle.depth_mm, 1) if state.needle is not None else 0.0,
            "bevel_text": bevel_text(state.needle) if state.needle is not None else "",
            "hub_text": ("Clear fluid (CSF) at the hub" if state.tip_tissue == "csf" else
                         "Blood at the hub" if state.blood_at_hub else ""),
            "events": event_rows(live_events(attempt.session.events)[-60:][::-1])}
    for event in events:
        if event.kind == "loss_of_resistance":
            view["lor_text"] = event.message
        if event.kind in ("stimulation", "lesion"):
            view["rf_text"] = event.message
    alerts = [e for e in events if e.kind in _ALERT_KINDS and e.perceived]
    if needle_moved and not alerts:
        view["alert_show"] = False
    if alerts:
        view |= {"alert_text": " · ".join(e.message for e in alerts), "alert_show": True,
                 "alert_colour": "red-darken-2" if any(e.severity == "unsafe" for e in alerts) else "amber-darken-3"}
    shot = attempt.last_shot
    view |= {"fluoro_src": shot.data_url if shot else "", "fluoro_caption": shot.caption if shot else "",
             "has_run": attempt.last_run is not None}
    hints = attempt.session.scenario.hints
    view |= {"hints_shown": hints[:state.hints_shown], "hints_left": len(hints) - state.hints_shown}
    scan = attempt.scan
    view |= {"probe_on": scan is not None, "us_src": scan.data_url if scan else "",
             "us_caption": scan.caption if scan else "", "us_preparing": False,
             "us_aspect": scan.aspect if scan else "1 / 1"}
    if scan is not None:
        probe = scan.image.probe
        view |= {"us_depth": probe.depth_mm, "us_gain": probe.gain_db, "us_frequency": probe.frequency_mhz}
    return view


# The patient's directions along LPS axes (+x left, +y posterior, +z superior), as a physician names them.
_DIRECTIONS = (("the patient's left", "the patient's right"), ("posterior", "anterior"), ("cranial", "caudal"))


def facing_words(vector) -> str:
    """The patient direction a vector (LPS) points most along, in clinical words.

    Examples
    --------
    >>> facing_words([0.1, 0.2, -0.9]), facing_words([-1, 0, 0.3])
    ('caudal', "the patient's right")
    """
    axis = int(np.argmax(np.abs(vector)))
    return _DIRECTIONS[axis][0 if vector[axis] > 0 else 1]


def bevel_text(needle: Needle) -> str:
    """Which way the needle's bevel faces and, for a needle that steers by it, which way the tip drifts
    (away from the face, :mod:`simulator.needle.shaft`)."""
    face = needle.bevel_face
    steers = needle.spec.bevel_deflection_deg_per_cm > 0
    steer = f"; the tip drifts toward {facing_words(-face)} as it advances" if steers else ""
    return f"Bevel faces {facing_words(face)}{steer}"


def report_view(attempt: LiveAttempt, stored: StoredAttempt) -> dict:
    """The Report tab of an attempt (the store's row of it): grade, flags, feedback, metric rows, the
    filmstrip of its images and the replay's range. The full HTML page follows separately."""
    scenario = attempt.session.scenario
    report = (stored.report or attempt.report()) | {"attempt_id": stored.id, "user": stored.user_name,
                                                     "status": stored.status.replace("_", " "),
                                                     "difficulty": scenario.difficulty,
                                                     "objectives": list(scenario.objectives)}
    # An abandoned attempt is not graded: its report shows what happened, with no grade and no verdict.
    abandoned = stored.status == "abandoned"
    report |= {"grade_text": "–" if abandoned else grade_text(report["grade"]),
               "outcome": "abandoned" if abandoned else "pass" if report["passed"] else "fail"}
    return {"report": report, "report_rows": report_rows(report), **assessment_view(report),
            "report_peers": peers_text(attempt.store, stored),
            "replay_max": len(attempt.session.actions),
            "tab": "report", "report_page": "",
            "report_shots": [{"src": shot.data_url, "caption": shot.caption, "step": shot.action_index + 1}
                             for shot in attempt.shots],
            "report_scans": [{"src": scan.data_url, "caption": scan.caption, "step": scan.state_index}
                             for scan in attempt.scans()]}


def grade_text(grade: float) -> str:
    """A grade as every screen shows it: one rounding, Python's, for the Report tab and the Review table
    alike (JavaScript's toFixed rounded 54.5 up where Python rounds it to even).

    Examples
    --------
    >>> grade_text(54.5), grade_text(55.5), grade_text(54.51)
    ('54', '56', '55')
    """
    return f"{grade:.0f}"


def peers_text(store: Store, stored: StoredAttempt) -> str:
    """Where a finished attempt's grade stands among every finished attempt at its case (empty before it
    is finished)."""
    if stored.status != "finished" or stored.report is None:
        return ""
    return percentile_text(stored.report["grade"], store.peer_grades(stored.scenario_id))


def report_rows(report: dict) -> list[dict]:
    """The metrics table of a report (as JSON, the store keeps it so): :func:`scoring.report.metric_rows`,
    the same rows the HTML report lists."""
    return [{"label": label, "value": value} for label, value in metric_rows(Report.model_validate(report))]


def assessment_view(report: dict) -> dict:
    """The checklist and the global rating of a report (as JSON), formatted once by
    :func:`scoring.report.checklist_rows` and :func:`scoring.report.rating_rows` as the HTML report lists
    them; empty for a report stored before they existed."""
    graded = Report.model_validate(report)
    rating = graded.global_rating
    return {"report_checklist": [{"step": step, "status": status, "detail": detail, "evidence": evidence}
                                 for step, status, detail, evidence in checklist_rows(graded)],
            "report_checklist_title": (f"Checklist: {checklist_points(graded.checklist):g} of {len(graded.checklist)} steps"
                                       if graded.checklist else ""),
            "report_rating": [{"item": item, "score": score, "anchor": anchor, "reason": reason}
                              for item, score, anchor, reason in rating_rows(graded)],
            "report_rating_title": f"Global rating: {rating.total} / {rating.maximum}" if rating else ""}


def replay_view(attempt: LiveAttempt | None, step: int) -> dict:
    """The replay at ``step`` actions: the images the monitors held then, the action and its events."""
    if attempt is None:
        return {}
    session = attempt.session
    step = int(np.clip(step, 0, len(session.actions)))
    shot = attempt.shot_at(step)
    scan = attempt.scan_at(step)
    view = {"replay_src": shot.data_url if shot is not None else "",
            "replay_caption": shot.caption if shot is not None else "no image yet",
            "replay_us_src": scan.data_url if scan is not None else "",
            "replay_us_caption": scan.caption if scan is not None else "",
            "replay_us_aspect": scan.aspect if scan is not None else "1 / 1"}
    if step == 0:
        return view | {"replay_action": "0. start", "replay_events": []}
    action = session.actions[step - 1]
    summary = action_summary(action)
    events = session.steps[step - 1].events
    return view | {"replay_action": f"{step}. t = {action.t:.1f} s · {action_title(action.type)}"
                                    + (f": {summary}" if summary else ""),
                   "replay_events": event_rows(events, debrief=True)}


def live_events(events: Sequence[Event]) -> list[Event]:
    """The events the trainee's list shows while the attempt runs: what they perceive, not shown elsewhere."""
    return [e for e in events if e.perceived and e.kind not in _SHOWN_ELSEWHERE]


def event_rows(events: Sequence[Event], *, debrief: bool = False) -> list[dict]:
    """Events as the lists show them: time, kind, message (with the debrief's verdicts after the
    attempt) and the chip's colour for its severity."""
    return [{"t": f"{e.t:.1f}", "kind": event_title(e.kind), "message": e.debrief if debrief else e.message,
             "colour": _SEVERITY_COLOUR["info" if e.kind in _VERDICT_KINDS and not debrief else e.severity]}
            for e in events]


def lps_text(point) -> str:
    """A point (LPS mm), for those who ask for coordinates (the entry's tooltip)."""
    return f"L {point[0]:+.1f}  P {point[1]:+.1f}  S {point[2]:+.1f} mm (LPS)"
