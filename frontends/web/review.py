"""The instructor's Review tab: attempts by trainee and scenario, opening any attempt for its report
and replay, a trainee's learning curve, and the preview of a scenario's patient with its target."""

from __future__ import annotations

from anatomy_models.errors import SpinesimError
from frontends.store import Attempt as StoredAttempt
from frontends.store import Store, User
from frontends.web.attempt import LiveAttempt, scenario_preview
from frontends.web.curve import learning_curve_svg
from frontends.web.inputs import MAX_ID, choice, integer
from frontends.web.patients import Patients
from scenarios.schema import Scenario
from simulator.session.fold import Session


def review_view(store: Store, scenarios: dict[str, Scenario], user: User, trainee=None, scenario=None) -> dict:
    """The attempts table (newest first), filtered by ``trainee`` (a user id) and ``scenario`` as chosen
    in the browser, and the chosen trainee's learning curve. Nothing for a trainee.

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
    done = [a for a in store.attempts(user_id=trainee) if a.report is not None] if trainee is not None else []
    return {"review_trainees": [{"value": u.id, "title": f"{u.name} ({u.role})"} for u in store.users()],
            "review_rows": [_review_row(a) for a in reversed(rows)],
            "curve_svg": learning_curve(done) if done else ""}


def _review_row(attempt: StoredAttempt) -> dict:
    report = attempt.report
    return {"id": attempt.id, "user": attempt.user_name, "scenario": attempt.scenario_id,
            "started": attempt.started.astimezone().strftime("%Y-%m-%d %H:%M"),
            "status": attempt.status.replace("_", " "),
            "outcome": "" if report is None else ("pass" if report["passed"] else "fail"),
            "grade": "" if report is None else f"{report['grade']:.0f}",
            "time": f"{attempt.elapsed_s / 60:.1f} min", "actions": attempt.actions}


def learning_curve(done: list[StoredAttempt]) -> str:
    """SVG of a trainee's graded attempts, oldest first: grade, shots and time (min), pass or fail."""
    series = [("Grade", [a.report["grade"] for a in done]),
              ("Shots", [a.report["metrics"]["fluoro_shots"] for a in done]),
              ("Time (min)", [round(a.report["metrics"]["procedure_time_s"] / 60, 2) for a in done])]
    return learning_curve_svg(series, passed=[a.report["passed"] for a in done])


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
    scenario = scenarios[stored.scenario_id]
    anatomy, tracer = patients.of(scenario)
    return LiveAttempt.resume(store, stored.id, scenario, anatomy, tracer)


def preview_view(scenario: Scenario, patients: Patients) -> dict:
    """The scenario preview: an AP image of its patient with the target ringed, and what the target is."""
    anatomy, tracer = patients.of(scenario)
    target = Session(scenario, anatomy, tracer=tracer).target
    return {"preview_src": scenario_preview(scenario, anatomy, tracer),
            "preview_text": f"Target: {target.description} (ringed in red on the AP view)."}
