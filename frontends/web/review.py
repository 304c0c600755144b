"""The instructor's Review tab: attempts by trainee and scenario with each grade's percentile among the
attempts at the same case, opening any attempt for its report and replay, a trainee's learning curves
(a CUSUM per procedure, :mod:`scoring.curves`), the chosen attempts as CSV and xAPI downloads, the programme
view (per cohort and case, :mod:`frontends.programme`) and the preview of a scenario's patient with its
target; and the trainee's My attempts tab, their own attempts to open."""

from __future__ import annotations

import base64
from html import escape

from anatomy_models.errors import SpinesimError
from frontends.programme import ALL_TRAINEES, GRADE_BANDS, CaseSummary, programme_summaries
from frontends.store import Attempt as StoredAttempt
from frontends.store import Store, User, records_csv
from frontends.web.attempt import LiveAttempt, scenario_preview
from frontends.web.curve import cusum_svg, learning_curve_svg
from frontends.web.inputs import MAX_ID, choice, integer
from frontends.web.patients import Patients
from frontends.web.views import grade_text
from frontends.xapi import default_homepage, statements, statements_json
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
    cases = {key: (case.title, case.brief) for key, case in scenarios.items()}
    xapi = statements_json(statements(rows, cases, default_homepage()))
    return {"review_trainees": [{"value": u.id, "title": f"{u.name} ({u.role})"} for u in store.users()],
            "review_rows": [_review_row(a, peers) for a in reversed(rows)],
            "review_csv": "data:text/csv;base64," + base64.b64encode(records_csv(rows, procedures).encode()).decode(),
            "review_xapi": "data:application/json;base64," + base64.b64encode(xapi.encode()).decode(),
            "curve_svg": learning_curves(done, scenario)}


def my_attempts_view(store: Store, scenarios: dict[str, Scenario], user: User) -> dict:
    """A trainee's own past attempts (finished or abandoned, newest first) as the My attempts tab lists them:
    the case, when it started, the outcome and grade as the Review table shows them, and how many comments
    an instructor left on it. Nothing for an instructor (the Review tab lists everyone's)."""
    if user.role == "instructor":
        return {}
    rows = [a for a in store.attempts(user_id=user.id) if a.status != "in_progress"]
    peers = {key: store.peer_grades(key) for key in {a.scenario_id for a in rows if a.report is not None}}
    titles = {key: case.title for key, case in scenarios.items()}
    return {"my_rows": [_review_row(a, peers) | {"case": titles.get(a.scenario_id, a.scenario_id),
                                                 "comments": len(store.comments(a.id))}
                        for a in reversed(rows)]}


def programme_view(store: Store, scenarios: dict[str, Scenario], user: User, cohort=None, scenario=None) -> dict:
    """The programme view for an instructor: the cohorts to choose from and, for the cohort chosen (all
    trainees if none) and the scenario filter, a table per case and the cohort's CUSUM at each. Nothing
    for a trainee.

    Raises
    ------
    SpinesimError
        If the browser named no such cohort or scenario.
    """
    if user.role != "instructor":
        return {}
    cohorts = store.cohorts()
    names = [ALL_TRAINEES, *cohorts]
    cohort = ALL_TRAINEES if cohort is None else choice(cohort, names, "cohort")
    scenario = None if scenario is None else choice(scenario, scenarios, "scenario")
    procedures = {key: case.procedure for key, case in scenarios.items()}
    found = programme_summaries(store.attempts(), cohorts, cohort=cohort, scenario_id=scenario, procedures=procedures)
    return {"programme_cohorts": [{"value": name, "title": name.capitalize() if name == ALL_TRAINEES else name}
                                  for name in names],
            "programme_html": programme_html(found, {key: case.title for key, case in scenarios.items()})}


def programme_html(found: list[CaseSummary], titles: dict[str, str]) -> str:
    """HTML of the programme view: one table row per cohort and case (the case's id, its title in ``titles``
    on hovering), then each one's CUSUM. Empty without attempts."""
    if not found:
        return ""
    head = "".join(f"<th>{escape(title)}</th>" for title in (
        "Cohort", "Case", "Trainees", "Attempts", "Pass rate", "Grades", "CUSUM", "DAP (Gy·cm²)",
        "Fluoro time (s)", "Most frequent flags"))
    rows = "".join(_programme_row(row, titles.get(row.scenario_id, "")) for row in found)
    curves = "".join(
        f'<div class="programme-curve" data-cohort="{escape(row.cohort)}" data-scenario="{escape(row.scenario_id)}">'
        + cusum_svg(row.curve, list(row.passes_in_order), f"{row.cohort} at {row.scenario_id}: {row.finished} "
                    f"finished attempt{'s' if row.finished != 1 else ''}", acceptable=ACCEPTABLE_FAILURE_RATE,
                    unacceptable=UNACCEPTABLE_FAILURE_RATE) + "</div>"
        for row in found if row.finished)
    return (f'<table class="programme-table" id="programme-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>{curves}")


def _programme_row(row: CaseSummary, title: str) -> str:
    cells = [row.trainees,
             f"{row.finished}" + (f" (+{row.abandoned} abandoned)" if row.abandoned else ""),
             f"{row.pass_rate:.0%}" if row.pass_rate is not None else "–"]
    dose = (f"{row.dap_median_gy_cm2:.3f} (p75 {row.dap_p75_gy_cm2:.3f})" if row.dap_median_gy_cm2 is not None
            else "–")
    time = f"{row.fluoro_median_s:.1f} (p75 {row.fluoro_p75_s:.1f})" if row.fluoro_median_s is not None else "–"
    flags = ", ".join(f"{title} ×{count}" for title, count in row.flags) or "none"
    verdict = verdict_text(row.curve) if row.finished else "–"
    return (f'<tr data-cohort="{escape(row.cohort)}" data-scenario="{escape(row.scenario_id)}">'
            f"<td>{escape(row.cohort)}</td>"
            f'<td title="{escape(title)}">{escape(row.scenario_id)}<div class="procedure">'
            f'{escape(row.procedure.replace("_", " "))}</div></td>'
            + "".join(f"<td>{escape(str(cell))}</td>" for cell in cells)
            + f"<td>{grade_bars_svg(row.grade_counts)}</td>"
            + "".join(f"<td>{escape(cell)}</td>" for cell in (verdict, dose, time, flags)) + "</tr>")


def grade_bars_svg(counts: tuple[int, ...]) -> str:
    """A small bar chart of the finished attempts per grade band (:data:`frontends.programme.GRADE_BANDS`),
    failing bands red and passing ones green, each bar titled with its band and count.

    >>> svg = grade_bars_svg((1, 0, 2, 3))
    >>> svg.count("<rect") == 4 and "70-84: 2 attempts" in svg
    True
    """
    width, height, bar = 146, 34, 30
    top = max(max(counts), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="grade-bars" '
             f'font-family="Roboto, Arial, sans-serif" font-size="9">']
    for index, ((band, lower), count) in enumerate(zip(GRADE_BANDS, counts)):
        tall = 22 * count / top
        colour = "#2e7d32" if lower >= 70 else "#c62828"
        x = index * (bar + 6) + 1
        parts.append(f'<rect x="{x}" y="{24 - tall:.1f}" width="{bar}" height="{max(tall, 0.5):.1f}" fill="{colour}">'
                     f"<title>{band}: {count} attempt{'s' if count != 1 else ''}</title></rect>"
                     f'<text x="{x + bar / 2}" y="33" text-anchor="middle" fill="#546e7a">{band}</text>')
    return "".join(parts) + "</svg>"


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
