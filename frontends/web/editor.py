"""The instructor's Cases tab: the case editor. Pick a library case, change what the new case teaches (its
id, title, brief, difficulty, level and side, the patient: a generated one of a chosen BMI and degeneration or
a patient whose CT was uploaded (:mod:`frontends.web.upload`), objectives, whether hints and which imaging are
allowed), preview its patient with the target ringed and whether an expert path reaches the target, save it to the department's cases and assign it to a
trainee or a cohort with a due date. A saved case can be opened again, changed (until a trainee has attempted
it) or removed (while no attempt or assignment names it): :func:`frontends.casebook.edit_case`,
:func:`frontends.casebook.remove_case` say why not otherwise.

A refusal is shown next to the form's field it is about (``editor_errors``) as well as in the page's message.

The validation and the storage are :mod:`frontends.casebook`'s, the same as ``spinesim cases add``; a saved
case joins this workstation's picker at once, and every workstation started afterwards (a trainee logging in)
reads it from the database. Requests come from the browser and are checked here before they reach the store.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable

from anatomy_models.errors import SpinesimError
from frontends.casebook import (DEPARTMENT, DRAFT_FIELDS, HABITUS_RANGES, case_from_draft, draft_of, edit_case,
                                level_choices, library_scenario, patients_to_build_on, remove_case, save_case,
                                side_choices)
from frontends.store import Store, User
from frontends.web.inputs import choice, clipped
from frontends.web.patients import Patients
from frontends.web.review import preview_view
from frontends.web.views import scenario_items
from scenarios.catalogue import LIBRARY, Catalogue
from scenarios.schema import Scenario
from simulator.case.planner import plan_trajectory
from simulator.session.fold import Session

DIFFICULTIES = ("beginner", "intermediate", "advanced")
# Every request of the Cases tab and how many values it carries.
EDITOR_REQUESTS = {"editor_base": 1, "editor_preview": 1, "editor_save": 1, "editor_assign": 4, "editor_open": 1,
                   "editor_remove": 1, "editor_patients": 0}
# The patient picker's first entry: the library case's generated patient, shaped by the BMI and degeneration.
GENERATED_PATIENT = {"value": "", "title": "Generated patient (BMI and degeneration below)"}
# How the picker names where a stored patient came from (the upload page's words).
_SOURCES = {"nifti": "NIfTI", "nrrd": "NRRD", "seg.nrrd": "Slicer segmentation", "DICOM": "DICOM",
            "totalsegmentator": "TotalSegmentator"}


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
        try:
            result = getattr(self, name)(*values)
        except SpinesimError as error:
            self._set(editor_errors=field_errors(error))
            raise
        self._set(editor_errors={})
        return result

    def view(self) -> dict:
        """The tab as it opens: the first library case in the form, whom cases can be assigned to."""
        if self.user.role != "instructor":
            return {}
        first = next(key for key, group in sorted(self.catalogue.groups.items()) if group == LIBRARY)
        return {"editor_bases": [{"value": key, "title": f"{key} · {scenario.title}"}
                                 for key, scenario in sorted(self.catalogue.scenarios.items())
                                 if self.catalogue.groups[key] == LIBRARY],
                "editor_difficulties": list(DIFFICULTIES), "editor_ranges": HABITUS_RANGES, "editor_errors": {},
                "editor_confirm": None, "editor_text": "", "editor_preview_src": "", "editor_saved": None} \
            | self._people() | self._cases() | self._patients() | self._base_view(first)

    def editor_base(self, base) -> None:
        """The form refilled from library case ``base``, with the levels and sides its procedure allows."""
        self._set(**self._base_view(base), **self._patients(), editor_preview_src="", editor_text="")

    def editor_open(self, scenario_id) -> None:
        """The form filled from department case ``scenario_id``, to change it (Save keeps it under its id) or to
        make another case from it (a new id)."""
        case = self.catalogue.scenarios[choice(scenario_id, self._cases()["editor_cases"], "department case")]
        attempts, _ = self.store.case_uses(case.id)
        note = (f" Trainees have attempted it ({attempts}): save your changes under a new id." if attempts else
                " Save keeps it under its id; a new id makes another case.")
        self._set(**self._form(case, editing=case.id), **self._patients(), editor_preview_src="",
                  editor_text=f"Editing {case.id}.{note}")

    def editor_remove(self, scenario_id) -> None:
        """Delete department case ``scenario_id`` (:func:`frontends.casebook.remove_case` refuses a used one)."""
        case = choice(scenario_id, self._cases()["editor_cases"], "department case")
        self._set(editor_confirm=None)
        remove_case(self.store, case, catalogue=self.catalogue)
        self._set(editor_text=f"Removed {case} from the department's cases.", assign_case=None,
                  scenario_items=scenario_items(self.catalogue), **self._cases())

    def editor_patients(self) -> None:
        """The patient picker read again (a CT uploaded since the tab opened)."""
        self._set(**self._patients())

    def _base_view(self, base) -> dict:
        chosen = library_scenario(choice(base, [k for k, g in self.catalogue.groups.items() if g == LIBRARY],
                                         "library case"))
        return self._form(chosen, editing="")

    def _form(self, case, *, editing: str) -> dict:
        draft = draft_of(case) | ({"id": editing} if editing else {})
        return {f"draft_{name}": value for name, value in draft.items()} | {
                "editor_levels": level_choices(case.procedure), "editor_sides": side_choices(case.procedure),
                "editor_procedure": case.procedure.replace("_", " "), "editor_editing": editing}

    def _base(self, draft) -> Scenario | None:
        """The department case a draft was opened from (:meth:`editor_open`), else None (a library case)."""
        base = draft.get("base") if isinstance(draft, dict) else None
        return self.catalogue.scenarios[base] if self.catalogue.groups.get(base) == DEPARTMENT else None

    def editor_preview(self, draft) -> None:
        """The draft's patient (AP view, target ringed), once it validates as a case, and whether an expert
        path reaches its target (issue 20: a case no trainee can do is said so before it is saved)."""
        case = case_from_draft(_with_id(draft), self._base(draft))
        self._set(editor_text=f"Rendering the preview of {case.title}…")
        shown = preview_view(case, self.patients)
        self._set(editor_preview_src=shown["preview_src"],
                  editor_text=f"{shown['preview_text']} {self._expert_path(case)}")

    def _expert_path(self, case: Scenario) -> str:
        """Whether the planner's textbook path (the expert's, as tests/scenarios/test_library_solvable.py checks
        the library's cases) reaches the case's target on its patient with its needle, in a sentence."""
        anatomy, tracer = self.patients.of(case)
        session = Session(case, anatomy, tracer=tracer)
        try:
            path = plan_trajectory(tracer, session.target, session.spec)
        except SpinesimError as error:
            return (f"No expert path: {error.problem}. Choose another level, side or patient, or trainees "
                    "cannot do this case.")
        return f"An expert path reaches the target {path.depth_mm:.0f} mm from the skin."

    def editor_save(self, draft) -> None:
        """Validate the draft and keep it as a department case (it joins the pickers); a case opened with
        :meth:`editor_open` and saved under its own id is changed instead."""
        base = self._base(draft)
        case = case_from_draft(draft, base)
        if base is not None and case.id == base.id:
            edit_case(self.store, case, catalogue=self.catalogue)
            told = f"Saved the changes to {case.id}; assignments still to do get the changed case."
        else:
            save_case(self.store, case, by=self.user.name, catalogue=self.catalogue)
            told = f"Saved {case.id} to the department's cases; assign it below."
        self._set(editor_text=told, editor_saved=case.id, assign_case=case.id, editor_editing=case.id,
                  draft_base=case.id, scenario_items=scenario_items(self.catalogue), **self._cases())

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

    @staticmethod
    def _patients() -> dict:
        """The patient picker: the generated patient, then every stored patient a case can be built on."""
        return {"editor_patients": [GENERATED_PATIENT] + [
            {"value": p["name"], "title": f"{p['name']} · {_source_words(p['source'])}, {p['landmarks']} landmarks"}
            for p in patients_to_build_on() if p["cases"]]}


def _source_words(source: str) -> str:
    """Where a stored patient came from, in the upload page's words.

    Examples
    --------
    >>> _source_words("DICOM"), _source_words("generated:spine"), _source_words("meshes")
    ('DICOM CT', 'generated spine', 'meshes')
    """
    if source.startswith("generated"):
        return "generated spine"
    return f"{_SOURCES[source]} CT" if source in _SOURCES else source


def field_errors(error: SpinesimError) -> dict[str, str]:
    """The refusal ``error`` as the message to show next to the form's field it names (``{}`` when it names none).

    Examples
    --------
    >>> field_errors(SpinesimError("must be ticked or not", where="DSA (field 'imaging.dsa')"))
    {'dsa': 'must be ticked or not'}
    >>> field_errors(SpinesimError("L4 and L3 are not adjacent levels", where="Level (field 'target.level.x')",
    ...                            hint="pick adjacent levels"))
    {'level': 'L4 and L3 are not adjacent levels. Pick adjacent levels.'}
    >>> field_errors(SpinesimError("the database is busy"))
    {}
    """
    named = re.search(r"field '([^']+)'", error.where or "")
    field = named.group(1) if named else ""
    key = next((key for key, path in DRAFT_FIELDS.items() if field == path or field.startswith(path + ".")), None)
    if key is None:
        return {}
    message = error.problem + (". " + error.hint[0].upper() + error.hint[1:] if error.hint else "")
    return {key: message if message.endswith(".") or not error.hint else message + "."}


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
