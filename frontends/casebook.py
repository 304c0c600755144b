"""The department's own cases: an instructor makes a new case from a library case (the instructor's case
editor in the browser) or from a scenario file (``spinesim cases add``), and the department's database keeps
it (:meth:`frontends.store.Store.save_case`) beside the attempts and assignments that name it.

One way in: both paths end in :func:`save_case`, which takes a scenario validated exactly as a scenario file is
(:func:`scenarios.schema.scenario_from_yaml`: errors name the field and the fix), refuses an id another case
already has (a trainee's attempts are filed by the case's id), and stores the scenario's canonical YAML. The
editor first turns its form into that YAML (:func:`draft_yaml`): the library case's every field, with what the
instructor changed (the editor's fields are :data:`DRAFT_FIELDS`). Served, the department's cases are one
more group of the picker (:func:`department_catalogue`).

Examples
--------
>>> from frontends.store import Store
>>> store = Store("sqlite://")
>>> _ = store.add_user("ada", "instructor", "correct horse")
>>> draft = draft_of(library_scenario("tfesi-default")) | {"id": "tfesi-obese-right", "side": "right", "bmi": 38}
>>> case = save_case(store, case_from_draft(draft), by="ada", catalogue=department_catalogue(store))
>>> case.target.side, case.anatomy.generator["bmi"], department_catalogue(store).groups["tfesi-obese-right"]
('right', 38.0, 'department')
"""

from __future__ import annotations

import re
from typing import Sequence

import yaml

from anatomy_models.errors import SpinesimError
from anatomy_models.store import stored_anatomy_names, stored_anatomy_summary
from anatomy_models.structures import LEVELS, level_below
from frontends.store import Store
from scenarios.catalogue import Catalogue, read_catalogue
from scenarios.schema import (NERVE_PROCEDURES, RFA_NERVES, SACRAL_PROCEDURES, Scenario, library_scenarios,
                              scenario_from_yaml)

# The picker's group of the department's cases (after the library and any served folders).
DEPARTMENT = "department"
# What an editor's message names as the place of a problem (no file: the instructor's form).
EDITOR = "case editor"
# The patient's habitus and degeneration the editor offers, within normal adult ranges: BMI from the
# underweight to the class III obese of the TFESI depth series (clinical.md §4.9 [S23]; the generator
# accepts 16-60); degeneration is the generator's grade, 0 none to 3 severe.
HABITUS_RANGES: dict[str, tuple[float, float]] = {"bmi": (17.0, 45.0), "degeneration": (0.0, 3.0)}
# The editor's form: each field and the scenario field it sets (for messages in the form's own words).
DRAFT_FIELDS: dict[str, str] = {
    "base": "the library case", "id": "id", "title": "title", "brief": "brief", "difficulty": "difficulty",
    "level": "target.level", "side": "target.side", "bmi": "anatomy.generator.bmi",
    "degeneration": "anatomy.generator.degeneration", "objectives": "objectives", "hints": "hints",
    "fluoroscopy": "imaging.fluoroscopy", "dsa": "imaging.dsa", "ultrasound": "imaging.ultrasound",
    "patient": "anatomy.stored"}
_LABELS = {"patient": "Patient", "id": "Case id", "title": "Title", "brief": "Brief", "difficulty": "Difficulty",
           "level": "Level", "side": "Side", "bmi": "BMI", "degeneration": "Degeneration", "objectives": "Objectives",
           "hints": "Hints allowed", "fluoroscopy": "Fluoroscopy", "dsa": "DSA", "ultrasound": "Ultrasound"}
# What to do, for the refusals the schema's own message does not say it (a pattern).
_HINTS = {"id": "use lower-case letters, digits, '-' and '_' only, e.g. tfesi-l3l4-right"}
# The schema's refusals that quote a pattern, in the form's words.
_PROBLEMS = {"id": "a case id has no spaces or capitals and starts with a letter or digit"}
# Longest text the form accepts per field, characters (a brief is a paragraph).
MAX_TEXT_CHARS = 2000


def library_scenario(scenario_id: str) -> Scenario:
    """The library case ``scenario_id`` an instructor starts from.

    Raises
    ------
    SpinesimError
        If the library has no such case.
    """
    library = library_scenarios()
    if scenario_id not in library:
        raise SpinesimError(f"the library has no case {scenario_id!r}", where=f"{EDITOR}: the library case",
                            hint=f"start from one of: {', '.join(sorted(library))}")
    return library[scenario_id]


def level_choices(procedure: str) -> list[str]:
    """The editor's levels for ``procedure``: interspaces, nerves (blocks and ablations), or none (sacral).

    Examples
    --------
    >>> level_choices("transforaminal_epidural")[-2:], level_choices("radiofrequency_ablation")[0]
    (['L4-L5', 'L5-S1'], 'L3 medial branch')
    >>> level_choices("caudal_epidural")
    []
    """
    if procedure in SACRAL_PROCEDURES:
        return []
    if procedure == "radiofrequency_ablation":
        return list(RFA_NERVES)
    if procedure in NERVE_PROCEDURES:
        return [f"{level} medial branch" for level in LEVELS[1:-2]] + ["L5 dorsal ramus"]
    return [f"{level}-{level_below(level)}" for level in LEVELS[1:-1]]


def side_choices(procedure: str) -> list[str]:
    """The sides ``procedure`` allows (the schema's rule: midline only for interlaminar and caudal)."""
    if procedure == "caudal_epidural":
        return ["midline"]
    return ["left", "right"] + (["midline"] if procedure == "interlaminar_epidural" else [])


def draft_of(base: Scenario) -> dict:
    """The editor's form filled from case ``base`` (a library case, or a department case being edited; the new
    case's id left for the instructor). ``patient`` is the stored patient's name, or empty for a generated one."""
    generator = base.anatomy.generator or {}
    return {"base": base.id, "id": "", "title": base.title, "brief": base.brief, "difficulty": base.difficulty,
            "level": base.target.level or base.target.nerve, "side": base.target.side,
            "bmi": float(generator.get("bmi", 25.0)), "degeneration": float(generator.get("degeneration", 0.0)),
            "objectives": "\n".join(base.objectives), "hints": bool(base.hints),
            "fluoroscopy": base.imaging.fluoroscopy, "dsa": base.imaging.dsa, "ultrasound": base.imaging.ultrasound,
            "patient": base.anatomy.stored or ""}


def draft_yaml(draft: dict, base: Scenario | None = None) -> str:
    """The scenario file (YAML text) of the editor's ``draft``: its library case (or ``base``, the department
    case being edited) with the draft's changes.

    The patient is the stored patient the draft names (an uploaded CT: :func:`patients_to_build_on`), else the
    generated patient of the base case with the draft's BMI and degeneration. The patient text of the library
    case is kept only while the level and side are its own (it names them); the patient pages then fill the
    procedure's template with the new ones. A probe placed at the start is kept likewise. Hints allowed keeps
    the library case's hints; not allowed, none.

    Raises
    ------
    SpinesimError
        If the draft is not a form of :data:`DRAFT_FIELDS` or a field has the wrong kind of value (naming it).
    """
    if not isinstance(draft, dict) or set(draft) != set(DRAFT_FIELDS):
        raise SpinesimError("the case editor's form is incomplete or has unknown fields", where=EDITOR,
                            hint="reload the page")
    base = base or library_scenario(_text(draft, "base"))
    case = base.model_dump(mode="json", exclude_none=True)
    level, side = (_text(draft, "level") or None), _text(draft, "side")
    case.update(id=_text(draft, "id"), title=_text(draft, "title"), brief=_text(draft, "brief"),
                difficulty=_text(draft, "difficulty"), objectives=_lines(draft, "objectives"),
                hints=list(base.hints) if _flag(draft, "hints") else [],
                imaging={name: _flag(draft, name) for name in ("fluoroscopy", "dsa", "ultrasound")})
    target = dict(case["target"], side=side)
    if base.procedure in NERVE_PROCEDURES:
        target["nerve"] = level
    elif level is not None or base.procedure not in SACRAL_PROCEDURES:
        target["level"] = level
    case["target"] = target
    if (base.target.level or base.target.nerve, base.target.side) != (level, side):
        case.pop("patient", None)
        case["start"].pop("probe", None)
    if not case["imaging"]["ultrasound"]:
        case["start"].pop("probe", None)
    patient = _text(draft, "patient")
    habitus = {name: _within(draft, name, low, high) for name, (low, high) in HABITUS_RANGES.items()}
    if patient:
        case["anatomy"] = {"stored": _buildable(patient)}
    elif base.anatomy.kind() in ("builtin", "generator"):
        case["anatomy"] = {key: value for key, value in case["anatomy"].items() if key != "builtin"}
        case["anatomy"]["generator"] = dict(base.anatomy.generator or {}) | habitus
    elif base.anatomy.kind() == "stored":  # an edited case taken off its uploaded patient: a generated one
        case["anatomy"] = {"generator": habitus}
    return yaml.safe_dump(case, sort_keys=False, allow_unicode=True)


def case_from_draft(draft: dict, base: Scenario | None = None) -> Scenario:
    """The editor's ``draft`` as a scenario, validated as a scenario file is; a refusal names the form's field.

    Raises
    ------
    SpinesimError
        Naming the form's field (and the scenario's), what is wrong and what to do.
    """
    text = draft_yaml(draft, base)
    try:
        return scenario_from_yaml(text, path=EDITOR)
    except SpinesimError as error:
        field = re.search(r"field '([^']+)'", error.where or "")
        named = field.group(1) if field else ""
        label = next((_LABELS[key] for key, path in DRAFT_FIELDS.items()
                      if key in _LABELS and named and (named == path or named.startswith(path + "."))), None)
        where = f"{label} (field '{named}')" if label else (f"field '{named}'" if named else None)
        problem = _PROBLEMS.get(named, error.problem) if "should match pattern" in error.problem else error.problem
        raise SpinesimError(problem, path=EDITOR, where=where, hint=error.hint or _HINTS.get(named)) from None


def save_case(store: Store, scenario: Scenario, *, by: str, catalogue: Catalogue) -> Scenario:
    """Keep ``scenario`` (validated: :func:`case_from_draft` or a scenario file) as a department case saved by
    instructor ``by``, and offer it in ``catalogue`` (the server's cases). Returns it.

    Raises
    ------
    SpinesimError
        If another case (library, served folder or department) has its id, or ``by`` is not an instructor.
    """
    if scenario.id in catalogue.scenarios:
        raise SpinesimError(f"the id {scenario.id!r} is taken by {catalogue.files[scenario.id]}", where="field 'id'",
                            hint="give the new case an id of its own (lower-case letters, digits, '-' and '_')")
    text = yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
    store.save_case(scenario.id, text, by=by)
    catalogue.add(scenario, DEPARTMENT, _source(scenario.id))
    return scenario


def edit_case(store: Store, scenario: Scenario, *, catalogue: Catalogue) -> Scenario:
    """Replace department case ``scenario.id`` with ``scenario`` (validated as :func:`save_case` takes it), in the
    database and in ``catalogue``; assignments still to do then get the edited case. Returns it.

    A case a trainee has attempted is not edited: an attempt is filed by its case's id and replayed and graded
    against that case, so an edit would change the record of work already done (a programme keeps it as it was,
    e.g. for its competency committee). Save the change as a new case instead.

    Raises
    ------
    SpinesimError
        If ``scenario.id`` is not a department case, or someone has attempted it.
    """
    _department_case(scenario.id, catalogue)
    attempts, _ = store.case_uses(scenario.id)
    if attempts:
        raise SpinesimError(f"{scenario.id!r} has {_count(attempts, 'attempt')} by trainees, graded against it as it "
                            "is; it is kept unchanged", where="field 'id'",
                            hint="save the changed case under a new id (and assign that one instead)")
    text = yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
    store.update_case(scenario.id, text)
    catalogue.scenarios[scenario.id] = scenario
    return scenario


def remove_case(store: Store, scenario_id: str, *, catalogue: Catalogue) -> None:
    """Delete department case ``scenario_id`` from the database and ``catalogue``: only a case nobody has attempted
    or been assigned. A trainee's attempts and assignments name their case, and a programme keeps them as they
    were (its trainees' record of training): such a case stays.

    Raises
    ------
    SpinesimError
        If it is not a department case, or it has attempts or assignments (naming how many).
    """
    _department_case(scenario_id, catalogue)
    attempts, assignments = store.case_uses(scenario_id)
    if attempts or assignments:
        used = " and ".join(_count(n, what) for n, what in ((attempts, "attempt"), (assignments, "assignment")) if n)
        raise SpinesimError(f"{scenario_id!r} has {used}; a trainee's record of training keeps the case they name",
                            hint="it stays in the department's cases; to change what trainees are given, make a new "
                                 "case and assign that one")
    store.remove_case(scenario_id)
    for table in (catalogue.scenarios, catalogue.groups, catalogue.files):
        table.pop(scenario_id, None)


def patients_to_build_on() -> list[dict]:
    """The stored patients (uploaded CTs, imported or generated anatomies), each with ``name``, ``source``,
    ``structures``, ``landmarks`` and ``cases``: whether a case can be built on it (it has landmarks, so views and
    targets by level work, and is not damaged).

    Examples
    --------
    >>> [p for p in patients_to_build_on() if p["name"] == "no-such-patient"]
    []
    """
    patients = []
    for name in stored_anatomy_names():
        summary = stored_anatomy_summary(name)
        patients.append({key: summary[key] for key in ("name", "source", "structures", "landmarks")}
                        | {"cases": summary["landmarks"] > 0 and "damaged" not in summary})
    return patients


def department_catalogue(store: Store, folders: Sequence[str] = ()) -> Catalogue:
    """The cases a server offers (:func:`scenarios.catalogue.read_catalogue`) and the department's, in the
    :data:`DEPARTMENT` group. A stored case that no longer validates (a newer schema) is left out with a
    warning naming it, like a served file."""
    return with_department_cases(read_catalogue(folders), store)


def with_department_cases(catalogue: Catalogue, store: Store) -> Catalogue:
    """``catalogue`` with the department's cases as the database holds them now: saved or edited since it was
    read (another workstation's instructor) are read again, removed ones left out."""
    stored_cases = store.cases()
    kept = {stored.scenario_id for stored in stored_cases}
    for key in [key for key, group in catalogue.groups.items() if group == DEPARTMENT and key not in kept]:
        for table in (catalogue.scenarios, catalogue.groups, catalogue.files):
            table.pop(key, None)
    for stored in stored_cases:
        try:
            scenario = scenario_from_yaml(stored.yaml_text, path=_source(stored.scenario_id))
            if catalogue.groups.get(stored.scenario_id) == DEPARTMENT:
                catalogue.scenarios[stored.scenario_id] = scenario
            else:
                catalogue.add(scenario, DEPARTMENT, _source(stored.scenario_id))
        except SpinesimError as error:
            catalogue.warnings.append(str(error))
    return catalogue


def _department_case(scenario_id: str, catalogue: Catalogue) -> str:
    if catalogue.groups.get(scenario_id) != DEPARTMENT:
        known = sorted(key for key, group in catalogue.groups.items() if group == DEPARTMENT)
        raise SpinesimError(f"{scenario_id!r} is not one of the department's cases" + (
                            " (library and served cases are files, changed there)" if scenario_id in catalogue.groups
                            else ""), hint=f"the department's cases: {', '.join(known) or 'none yet'}")
    return scenario_id


def _buildable(patient: str) -> str:
    """``patient`` if a case can be built on that stored patient (:func:`patients_to_build_on`)."""
    where = f"{_LABELS['patient']} (field '{DRAFT_FIELDS['patient']}')"
    found = next((p for p in patients_to_build_on() if p["name"] == patient), None)
    if found is None:
        raise SpinesimError(f"no stored patient called {patient[:64]!r}", path=EDITOR, where=where,
                            hint="upload the patient's CT on the upload page first, or choose another")
    if not found["cases"]:
        raise SpinesimError(f"{patient!r} has no vertebra landmarks, so no level can be targeted on it", path=EDITOR,
                            where=where, hint="upload it again with its vertebra label map, or choose another")
    return patient


def _count(number: int, what: str) -> str:
    """``3 attempts``, ``1 assignment``."""
    return f"{number} {what}{'s' if number != 1 else ''}"


def _source(scenario_id: str) -> str:
    return f"the department case {scenario_id!r}"


# --------------------------------------------------------------------------- the form's values, checked
def _text(draft: dict, name: str) -> str:
    value = draft[name]
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise SpinesimError(f"must be text of at most {MAX_TEXT_CHARS} characters", path=EDITOR,
                            where=f"{_LABELS.get(name, name)} (field '{DRAFT_FIELDS[name]}')")
    return value.strip()


def _lines(draft: dict, name: str) -> list[str]:
    return [line.strip() for line in _text(draft, name).splitlines() if line.strip()]


def _flag(draft: dict, name: str) -> bool:
    if not isinstance(draft[name], bool):
        raise SpinesimError("must be ticked or not", path=EDITOR,
                            where=f"{_LABELS[name]} (field '{DRAFT_FIELDS[name]}')", hint="reload the page")
    return draft[name]


def _within(draft: dict, name: str, low: float, high: float) -> float:
    value = draft[name]
    where = f"{_LABELS[name]} (field '{DRAFT_FIELDS[name]}')"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise SpinesimError(f"must be a number from {low:g} to {high:g}, got {str(value)[:20]!r}", path=EDITOR,
                            where=where, hint="the editor keeps the patient within normal adult ranges")
    return float(value)
