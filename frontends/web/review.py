"""The instructor's Review tab: attempts by trainee and scenario with each grade's percentile among the
attempts at the same case, opening any attempt for its report and replay, a trainee's learning curves
(a CUSUM per procedure, :mod:`scoring.curves`), the chosen attempts as a CSV download, and the preview of a
scenario's patient with its target."""

from __future__ import annotations

import base64
from html import escape

from anatomy_models.errors import SpinesimError
from frontends.store import Attempt as StoredAttempt
from frontends.store import Store, User, records_csv
from frontends.web.attempt import LiveAttempt, scenario_preview
from frontends.web.curve import cusum_svg, learning_curve_svg
from frontends.web.inputs import MAX_ID, choice, integer
from frontends.web.patients import Patients
from frontends.web.views import grade_text
from scenarios.schema import Scenario
from scoring.curves import ACCEPTABLE_FAILURE_RATE, UNACCEPTABLE_FAILURE_RATE, learning_curve, verdict_text
from scoring.peers import percentile_rank
from simulator.session.fold import Session


def review_view(store: Store, scenarios: dict[str, Scenario], user: User, trainee=None, scenario=None) -> dict:
    """The attempts table (newest first), filtered by ``trainee`` (a user id) and ``scenario`` as chosen
    in the browser, with the same attempts as a CSV download, and the chosen trainee's learning curves
    over the same attempts (one per procedure). Nothing for a trainee.

    Raises
    ------
    SpinesimError
        If the browser named no such trainee id (not a whole number in range) or scenario.
    """
    if user.role != "instructor":
        return {}
    trainee = None if trainee is None else integer(trainee, "trainee", 1, MAX_ID)
    scenario = None if scenario is None else choice(scenario, scenarios, "scenario")
    rows = store.attempts(user_id=trainee, scenario_id=scenario)
    peers = {key: store.peer_grades(key) for key in {a.scenario_id for a in rows if a.report is not None}}
    done = [a for a in rows if a.report is not None] if trainee is not None else []
    procedures = {key: case.procedure for key, case in scenarios.items()}
    return {"review_trainees": [{"value": u.id, "title": f"{u.name} ({u.role})"} for u in store.users()],
            "review_rows": [_review_row(a, peers) for a in reversed(rows)],
            "review_csv": "data:text/csv;base64," + base64.b64encode(records_csv(rows, procedures).encode()).decode(),
            "curve_svg": learning_curves(done, scenario)}


def _review_row(attempt: StoredAttempt, peers: dict[str, list[float]]) -> dict:
    report = attempt.report
    return {"id": attempt.id, "user": attempt.user_name, "scenario": attempt.scenario_id,
            "started": attempt.started.astimezone().strftime("%Y-%m-%d %H:%M"),
            "status": attempt.status.replace("_", " "),
            "outcome": ("abandoned" if attempt.status == "abandoned" else "" if report is None else
                        "pass" if report["passed"] else "fail"),
            "grade": "" if report is None else grade_text(report["grade"]),
            "percentile": "" if report is None else peer_percentile(report["grade"], peers[attempt.scenario_id]),
            "time": f"{attempt.elapsed_s / 60:.1f} min", "actions": attempt.actions}


def peer_percentile(grade: float, peer_grades: list[float]) -> str:
    """The grade's percentile among the finished attempts at its case, as the table shows it ("63 of 4").

    >>> peer_percentile(80, [60, 70, 80, 90])
    '63 of 4'
    """
    return f"{int(percentile_rank(grade, peer_grades) + 0.5)} of {len(peer_grades)}" if peer_grades else ""


def learning_curves(done: list[StoredAttempt], scenario: str | None = None) -> str:
    """HTML of a trainee's finished attempts (oldest first), one block per procedure: the CUSUM of their
    failures with its limits and verdict, then grade, shots and time. ``scenario``: the case they were
    filtered to, named in the titles. Empty without attempts."""
    by_procedure: dict[str, list[StoredAttempt]] = {}
    for attempt in done:
        by_procedure.setdefault(attempt.report["procedure"], []).append(attempt)
    return "".join(_procedure_curves(procedure, attempts, scenario) for procedure, attempts in by_procedure.items())


def _procedure_curves(procedure: str, done: list[StoredAttempt], scenario: str | None) -> str:
    passed = [a.report["passed"] for a in done]
    curve = learning_curve([not p for p in passed])
    name = procedure.replace("_", " ")
    title = f"{name}{f' at {scenario}' if scenario else ''}: {len(done)} attempt{'s' if len(done) != 1 else ''}"
    series = [("Grade", [a.report["grade"] for a in done]),
              ("Shots", [a.report["metrics"]["fluoro_shots"] for a in done]),
              ("Time (min)", [round(a.report["metrics"]["procedure_time_s"] / 60, 2) for a in done])]
    return (f'<div class="procedure-curve" data-procedure="{escape(procedure)}">'
            f'<div class="text-body-2 mb-1"><b>{escape(name)}</b>: {escape(verdict_text(curve))}</div>'
            + cusum_svg(curve, passed, title, acceptable=ACCEPTABLE_FAILURE_RATE,
                        unacceptable=UNACCEPTABLE_FAILURE_RATE)
            + learning_curve_svg(series, passed=passed) + "</div>")


def stored_attempt(store: Store, scenarios: dict[str, Scenario], patients: Patients, user: User,
                   attempt_id) -> LiveAttempt:
    """The attempt ``attempt_id`` (as the browser named it) rebuilt from the store for its report and
    replay: any attempt for an instructor, only their own for a trainee.

    Raises
    ------
    SpinesimError
        If the id is not a whole number in range, or names another user's attempt for a trainee.
    """
    stored = store.attempt(integer(attempt_id, "attempt", 1, MAX_ID))
    if user.role != "instructor" and stored.user_id != user.id:
        raise SpinesimError("that attempt is not yours")
    scenario = scenarios[stored.scenario_id].for_attempt(stored.seed)  # the attempt's patient
    anatomy, tracer = patients.of(scenario)
    return LiveAttempt.resume(store, stored.id, scenario, anatomy, tracer)


def preview_view(scenario: Scenario, patients: Patients) -> dict:
    """The scenario preview: an AP image of its patient with the target ringed, and what the target is."""
    anatomy, tracer = patients.of(scenario)
    target = Session(scenario, anatomy, tracer=tracer).target
    return {"preview_src": scenario_preview(scenario, anatomy, tracer),
            "preview_text": f"Target: {target.description} (ringed in red on the AP view)."}
