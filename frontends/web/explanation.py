"""The patient explanation from the browser: the self-contained page of
:func:`frontends.explain.explanation_html`, of a case (the expert path on the case's patient) or of an
attempt (its own patient and its final needle), written once into the workstation's reports folder, which
the workstation serves to its own user as ``reports/``.

The page of a case shows the target and the expert's needle path, so a trainee may open it only once they
have finished an attempt at the case; an instructor at any time. The page of an attempt is for whoever may
open the attempt (its trainee, or an instructor), once it has ended.
"""

from __future__ import annotations

from pathlib import Path

from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from frontends.store import Store, User
from frontends.web.attempt import LiveAttempt
from frontends.web.patients import Patients
from scenarios.schema import Scenario
from simulator.session.actions import LogContents


def check_may_explain(store: Store, user: User, scenario: Scenario, attempting: bool) -> None:
    """Refuse the explanation to a trainee who is doing an attempt or has not finished one at ``scenario``.

    Raises
    ------
    SpinesimError
        If ``user`` is a trainee and ``attempting`` or without a finished attempt at the case.
    """
    if user.role == "instructor":
        return
    if attempting:
        raise SpinesimError("the patient explanation shows the target and the expert's path",
                            hint="finish the attempt first")
    if not store.attempts(user_id=user.id, scenario_id=scenario.id, status="finished"):
        raise SpinesimError(f"the patient explanation of {scenario.title!r} shows the target and the expert's path",
                            hint="finish an attempt at this case first")


def explanation_view(scenario: Scenario, patients: Patients, reports: Path) -> dict:
    """Write the page of ``scenario`` into ``reports`` unless it is there, and link it (``explain_page``,
    relative to the page) for the case it explains (``explain_for``)."""
    from frontends.explain import explanation_html  # the 3D scene and the pictures load only when asked for

    page = reports / f"explain-{scenario.id}.html"
    if not page.exists():
        anatomy, _ = patients.of(scenario)
        text = explanation_html(scenario, anatomy)
        with atomic_path(page) as temporary:
            temporary.write_text(text, encoding="utf-8")
    return {"explain_for": scenario.id, "explain_page": f"reports/{page.name}"}


def attempt_explanation_view(attempt: LiveAttempt, reports: Path) -> dict:
    """Write the page of the ended ``attempt`` (its patient, its last needle and what it injected) into
    ``reports`` unless it is there, and link it (``explain_attempt_page``) for the attempt
    (``explain_attempt_for``).

    Raises
    ------
    SpinesimError
        If the attempt is still in progress, or never placed a needle (nothing to show the patient).
    """
    from frontends.explain import explanation_html

    if attempt.store.attempt(attempt.attempt_id).status == "in_progress":
        raise SpinesimError("the attempt is still in progress", hint="finish it, then explain it to the patient")
    session = attempt.session
    page = reports / f"explain-attempt-{attempt.attempt_id}.html"
    if not page.exists():
        log = LogContents(actions=attempt.store.actions(attempt.attempt_id))
        text = explanation_html(session.scenario, session.anatomy, log=log)
        with atomic_path(page) as temporary:
            temporary.write_text(text, encoding="utf-8")
    return {"explain_attempt_for": attempt.attempt_id, "explain_attempt_page": f"reports/{page.name}"}
