"""The instructor's Cases tab: the case editor. Pick a library case, change what the new case teaches (its
id, title, brief, difficulty, level and side, the patient's BMI and degeneration, objectives, whether hints
and which imaging are allowed), preview its patient with the target ringed, save it to the department's
cases and assign it to a trainee or a cohort with a due date.

The validation and the storage are :mod:`frontends.casebook`'s, the same as ``spinesim cases add``; a saved
case joins this workstation's picker at once, and every workstation started afterwards (a trainee logging in)
reads it from the database. Requests come from the browser and are checked here before they reach the store.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from anatomy_models.errors import SpinesimError
from frontends.casebook import (DEPARTMENT, HABITUS_RANGES, case_from_draft, draft_of, level_choices, library_scenario,
                                save_case, side_choices)
from frontends.store import Store, User
from frontends.web.inputs import choice, clipped
from frontends.web.patients import Patients
from frontends.web.review import preview_view
from frontends.web.views import scenario_items
from scenarios.catalogue import LIBRARY, Catalogue

DIFFICULTIES = ("beginner", "intermediate", "advanced")
# Every request of the Cases tab and how many values it carries.
EDITOR_REQUESTS = {"editor_base": 1, "editor_preview": 1, "editor_save": 1, "editor_assign": 4}


class CaseEditor:
    """The Cases tab of one instructor's workstation (see the module docstring).

    Parameters
    ----------
    store, user, catalogue, patients
        The department's database, the instructor, the server's cases (a saved case is added to it) and the
        workstation's patients (for the preview).
    show : callable
        ``show(**changes)`` pushes changed state to the page now.
    """

    def __init__(self, store: Store, user: User, catalogue: Catalogue, patients: Patients,
                 show: Callable[..., None]) -> None:
        self.store, self.user, self.catalogue, self.patients = store, user, catalogue, patients
        self._set = show

    def request(self, name, *values):
        """Handle the Cases tab's request ``name`` (an instructor's only).

        Raises
        ------
        SpinesimError
            If the request is unknown, carries another number of values, or the user is a trainee.
        """
        if not isinstance(name, str) or name not in EDITOR_REQUESTS:
            raise SpinesimError(f"unknown request {clipped(name)}", hint="reload the page")
        if len(values) != EDITOR_REQUESTS[name]:
            raise SpinesimError(f"request {name!r} carries {len(values)} values, not {EDITOR_REQUESTS[name]}",
                                hint="reload the page")
        if self.user.role != "instructor":
            raise SpinesimError("only an instructor authors and assigns cases")
        return getattr(self, name)(*values)

    def view(self) -> dict:
        """The tab as it opens: the first library case in the form, whom cases can be assigned to."""
        if self.user.role != "instructor":
            return {}
        first = next(key for key, group in sorted(self.catalogue.groups.items()) if group == LIBRARY)
        return {"editor_bases": [{"value": key, "title": f"{key} · {scenario.title}"}
                                 for key, scenario in sorted(self.catalogue.scenarios.items())
                                 if self.catalogue.groups[key] == LIBRARY],
                "editor_difficulties": list(DIFFICULTIES), "editor_ranges": HABITUS_RANGES,
                "editor_text": "", "editor_preview_src": "", "editor_saved": None} | self._people() | self._cases() \
            | self._base_view(first)

    def editor_base(self, base) -> None:
        """The form refilled from library case ``base``, with the levels and sides its procedure allows."""
        self._set(**self._base_view(base), editor_preview_src="", editor_text="")

    def _base_view(self, base) -> dict:
        chosen = library_scenario(choice(base, [k for k, g in self.catalogue.groups.items() if g == LIBRARY],
                                         "library case"))
        return {f"draft_{name}": value for name, value in draft_of(chosen).items()} | {
                "editor_levels": level_choices(chosen.procedure), "editor_sides": side_choices(chosen.procedure),
                "editor_procedure": chosen.procedure.replace("_", " ")}

    def editor_preview(self, draft) -> None:
        """The draft's patient (AP view, target ringed), once it validates as a case."""
        case = case_from_draft(_with_id(draft))
        self._set(editor_text=f"Rendering the preview of {case.title}…")
        shown = preview_view(case, self.patients)
        self._set(editor_preview_src=shown["preview_src"], editor_text=shown["preview_text"])

    def editor_save(self, draft) -> None:
        """Validate the draft and keep it as a department case; it joins the pickers."""
        case = save_case(self.store, case_from_draft(draft), by=self.user.name, catalogue=self.catalogue)
        self._set(editor_text=f"Saved {case.id} to the department's cases; assign it below.", editor_saved=case.id,
                  scenario_items=scenario_items(self.catalogue), **self._cases())

    def editor_assign(self, scenario_id, trainee, cohort, due) -> None:
        """Assign department case ``scenario_id`` to ``trainee`` or ``cohort`` (one of them), due ``due``
        (YYYY-MM-DD, the end of that day UTC; empty for none)."""
        departmental = [key for key, group in self.catalogue.groups.items() if group == DEPARTMENT]
        case = choice(scenario_id, departmental, "department case")
        people = self._people()
        trainee = choice(trainee, people["editor_trainees"], "trainee") if trainee else None
        cohort = choice(cohort, people["editor_cohorts"], "cohort") if cohort else None
        deadline = _due(due)
        self.store.assign(case, by=self.user.name, user=trainee, cohort=cohort, due=deadline)
        when = f", due {deadline:%Y-%m-%d}" if deadline else ""
        self._set(editor_text=f"Assigned {case} to {trainee or 'cohort ' + str(cohort)}{when}.")

    def _people(self) -> dict:
        return {"editor_trainees": sorted(u.name for u in self.store.users() if u.role == "trainee"),
                "editor_cohorts": sorted(self.store.cohorts())}

    def _cases(self) -> dict:
        return {"editor_cases": sorted(key for key, group in self.catalogue.groups.items() if group == DEPARTMENT)}


def _with_id(draft):
    """A draft to preview: its id may still be empty (the preview needs none)."""
    if isinstance(draft, dict) and not draft.get("id"):
        return draft | {"id": "preview"}
    return draft


def _due(due) -> datetime | None:
    """The due date typed in the browser (YYYY-MM-DD) as the end of that day, UTC; None when empty.

    Examples
    --------
    >>> _due("2027-03-01").isoformat(), _due("")
    ('2027-03-01T23:59:59+00:00', None)
    """
    if due in (None, ""):
        return None
    try:
        day = datetime.strptime(due, "%Y-%m-%d") if isinstance(due, str) and len(due) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise SpinesimError(f"due date: {clipped(due)} is not a date", hint="pick a day (YYYY-MM-DD) or leave it empty")
    return day.replace(hour=23, minute=59, second=59, tzinfo=timezone.utc)
