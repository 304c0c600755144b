"""The department's own cases (issue 20): a case made from a library case in the editor's form validates as a
scenario file does and names the form's field when it does not; it is stored once under an id no other case
has, offered in the picker's department group, added from a file by `spinesim cases add` the same way, and
named in the CSV export."""

from __future__ import annotations

import csv

import pytest

from anatomy_models.errors import SpinesimError
from frontends.casebook import (DEPARTMENT, case_from_draft, department_catalogue, draft_of, draft_yaml, edit_case,
                                library_scenario, patients_to_build_on, remove_case, save_case, with_department_cases)
from frontends.cli import main
from frontends.store import Store
from scenarios.schema import library_scenarios


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    store.add_user("ada", "instructor", "correct horse")
    store.add_user("ben", "trainee", "battery staple")
    return store


@pytest.mark.parametrize("base", sorted(library_scenarios()))
def test_an_unchanged_draft_is_its_library_case(base):
    """The form filled from a library case, given an id, is that case again: every field the editor does not
    show is carried over, and the patient is the same generator patient (BMI and degeneration as they were)."""
    original = library_scenario(base)
    made = case_from_draft(draft_of(original) | {"id": "copy"})
    assert made.model_dump(exclude={"id", "anatomy"}) == original.model_dump(exclude={"id", "anatomy"})
    assert made.anatomy.spine_parameters() == original.anatomy.spine_parameters()
    assert made.anatomy.patient == original.anatomy.patient


def test_the_changes_of_a_draft_reach_the_case():
    draft = draft_of(library_scenario("tfesi-default")) | {
        "id": "tfesi-l3l4-right", "level": "L3-L4", "side": "right", "bmi": 38, "degeneration": 2.0,
        "objectives": " Find the right L3-L4 safe triangle. \n\n Inject under DSA.", "hints": False,
        "ultrasound": True, "difficulty": "advanced"}
    case = case_from_draft(draft)
    assert (case.target.level, case.target.side, case.target.approach) == ("L3-L4", "right", "subpedicular")
    assert case.anatomy.generator == {"bmi": 38.0, "degeneration": 2.0} and case.hints == []
    assert case.objectives == ["Find the right L3-L4 safe triangle.", "Inject under DSA."]
    assert case.imaging.ultrasound and case.difficulty == "advanced"
    assert case.patient is None  # the library's patient text names the left L4 level; the template fills the new one
    nerve = case_from_draft(draft_of(library_scenario("mbb-default")) | {"id": "mbb-l3", "level": "L3 medial branch"})
    assert (nerve.target.nerve, nerve.target.level) == ("L3 medial branch", None)


@pytest.mark.parametrize("change, named", [
    ({"id": "Right L3"}, "case editor: Case id (field 'id'): a case id has no spaces or capitals"),
    ({"id": "Right L3"}, "Use lower-case letters, digits, '-' and '_' only, e.g. tfesi-l3l4-right."),
    ({"level": "L4-L3"}, "case editor: Level (field 'target.level'): L4 and L3 are not adjacent levels"),
    ({"side": "midline"}, "case editor: Side (field 'target.side'): 'midline' only fits"),
    ({"title": ""}, "case editor: Title (field 'title'): String should have at least 1 character"),
    ({"bmi": 70}, "case editor: BMI (field 'anatomy.generator.bmi'): must be a number from 17 to 45, got '70'"),
    ({"degeneration": "2"}, "case editor: Degeneration (field 'anatomy.generator.degeneration'): must be a number"),
    ({"dsa": "yes"}, "case editor: DSA (field 'imaging.dsa'): must be ticked or not"),
    ({"difficulty": "expert"}, "case editor: Difficulty (field 'difficulty'): must be 'beginner'"),
])
def test_a_draft_that_does_not_validate_names_the_forms_field(change, named):
    draft = draft_of(library_scenario("tfesi-default")) | {"id": "new-case"} | change
    with pytest.raises(SpinesimError) as refused:
        case_from_draft(draft)
    assert str(refused.value).startswith(named) or str(refused.value).endswith(named)


def test_a_contrast_check_under_dsa_needs_dsa_allowed():
    base = library_scenario("tfesi-adamkiewicz-l1l2-left")
    assert base.rubric.pass_gates.contrast_check == "dsa"
    with pytest.raises(SpinesimError, match="'dsa' needs imaging.dsa: true"):
        case_from_draft(draft_of(base) | {"id": "new-case", "dsa": False})


def test_a_form_with_unknown_fields_is_refused():
    with pytest.raises(SpinesimError, match="incomplete or has unknown fields"):
        draft_yaml(draft_of(library_scenario("tfesi-default")) | {"id": "x", "anatomy": {"path": "/etc"}})


def test_saved_cases_are_offered_once_under_an_id_of_their_own(store):
    catalogue = department_catalogue(store)
    case = case_from_draft(draft_of(library_scenario("ilesi-default")) | {"id": "ilesi-obese", "bmi": 40})
    save_case(store, case, by="ada", catalogue=catalogue)
    assert catalogue.groups["ilesi-obese"] == DEPARTMENT
    again = department_catalogue(store)
    assert again.scenarios["ilesi-obese"] == case and again.group_names() == ["library", DEPARTMENT]
    [stored] = store.cases()
    assert (stored.scenario_id, stored.author) == ("ilesi-obese", "ada")
    for taken, by, message in (("ilesi-obese", "ada", "the id 'ilesi-obese' is taken by the department case"),
                               ("ilesi-default", "ada", "the id 'ilesi-default' is taken by scenarios/library"),
                               ("ilesi-new", "ben", "'ben' is a trainee; only an instructor saves")):
        with pytest.raises(SpinesimError, match=message):
            save_case(store, case.model_copy(update={"id": taken}), by=by, catalogue=department_catalogue(store))
    assert [c.scenario_id for c in store.cases()] == ["ilesi-obese"]


def test_a_stored_case_that_no_longer_validates_is_left_out_with_a_warning(store):
    store.save_case("broken-case", "id: broken-case\ntitle: x\n", by="ada")
    catalogue = department_catalogue(store)
    assert "broken-case" not in catalogue.scenarios
    assert catalogue.warnings == [
        "the department case 'broken-case': line 1, field 'brief': a required field is missing"]


def test_the_cases_command_adds_a_file_the_same_way_and_the_export_names_its_procedure(store, tmp_path, capsys):
    file = tmp_path / "si-obese.yaml"
    file.write_text(draft_yaml(draft_of(library_scenario("si-joint-left")) | {"id": "si-obese", "bmi": 42}),
                    encoding="utf-8")
    assert main(["cases", "add", str(file), "--by", "ada", "--db", store.url]) == 0
    assert "Added si-obese (sacroiliac_joint_injection)" in capsys.readouterr().out
    assert main(["cases", "add", str(file), "--by", "ada", "--db", store.url]) == 1
    assert "the id 'si-obese' is taken by the department case 'si-obese'" in capsys.readouterr().err
    assert main(["cases", "list", "--db", store.url]) == 0
    assert "si-obese" in capsys.readouterr().out
    store.start_attempt(store.user("ben").id, "si-obese", 1)
    output = tmp_path / "attempts.csv"
    assert main(["attempts", "export", "--format", "csv", "-o", str(output), "--db", store.url]) == 0
    [row] = csv.DictReader(output.read_text(encoding="utf-8").splitlines())
    assert (row["scenario"], row["procedure"]) == ("si-obese", "sacroiliac_joint_injection")


@pytest.fixture
def uploaded_patient(small_spine):
    """A stored patient as an upload leaves it (the 2 mm spine under a clinic's name), and one with no landmarks."""
    from anatomy_models.anatomy import Anatomy
    from anatomy_models.store import save_anatomy

    save_anatomy(small_spine, "clinic-ct-01")
    save_anatomy(Anatomy(ct=small_spine.ct), "clinic-ct-nolandmarks")  # a CT uploaded without its labels
    return "clinic-ct-01"


def test_a_case_on_an_uploaded_patient_names_it_and_loads_it(store, uploaded_patient, small_spine):
    """Issue 22: a case built on an uploaded CT takes the patient by its name (no generator), and loads that CT."""
    assert {"name": uploaded_patient, "cases": True}.items() <= next(
        p for p in patients_to_build_on() if p["name"] == uploaded_patient).items()
    draft = draft_of(library_scenario("tfesi-default")) | {"id": "tfesi-clinic", "patient": uploaded_patient}
    case = save_case(store, case_from_draft(draft), by="ada", catalogue=department_catalogue(store))
    assert case.anatomy.kind() == "stored" and case.anatomy.stored == uploaded_patient
    assert "stored: clinic-ct-01" in store.cases()[0].yaml_text and "bmi" not in store.cases()[0].yaml_text
    assert (case.load_patient().ct.array == small_spine.ct.array).all()
    assert draft_of(case)["patient"] == uploaded_patient  # opened again, the form shows the patient
    back = case_from_draft(draft_of(case) | {"id": case.id, "patient": "", "bmi": 30}, base=case)
    assert back.anatomy.generator == {"bmi": 30.0, "degeneration": 0.0}  # taken off the CT: a generated patient
    for patient, named in (("clinic-ct-02", "no stored patient called 'clinic-ct-02'. Upload the patient's CT"),
                           ("clinic-ct-nolandmarks", "has no vertebra landmarks")):
        with pytest.raises(SpinesimError, match=f"case editor: Patient \\(field 'anatomy.stored'\\): .*{named}"):
            case_from_draft(draft | {"patient": patient})


def test_a_case_is_edited_until_attempted_and_removed_only_when_nothing_names_it(store, capsys, tmp_path):
    """Issue 20: editing keeps the id and reaches every workstation; a case with attempts keeps what they were
    graded against, and one with attempts or assignments is not removed (a trainee's record of training)."""
    catalogue = department_catalogue(store)
    first = case_from_draft(draft_of(library_scenario("ilesi-default")) | {"id": "ilesi-obese", "bmi": 40})
    save_case(store, first, by="ada", catalogue=catalogue)
    elsewhere = department_catalogue(store)  # another workstation, read before the edit
    changed = case_from_draft(draft_of(first) | {"id": "ilesi-obese", "title": "Obese interlaminar"}, base=first)
    edit_case(store, changed, catalogue=catalogue)
    assert catalogue.scenarios["ilesi-obese"].title == "Obese interlaminar" == store.cases()[0].yaml_text.split(
        "title: ")[1].splitlines()[0]
    assert with_department_cases(elsewhere, store).scenarios["ilesi-obese"].title == "Obese interlaminar"
    with pytest.raises(SpinesimError, match="'ilesi-default' is not one of the department's cases"):
        edit_case(store, library_scenario("ilesi-default"), catalogue=catalogue)

    store.assign("ilesi-obese", by="ada", user="ben")
    with pytest.raises(SpinesimError, match="has 1 assignment; a trainee's record of training keeps"):
        remove_case(store, "ilesi-obese", catalogue=catalogue)
    store.start_attempt(store.user("ben").id, "ilesi-obese", 1)
    with pytest.raises(SpinesimError, match="has 1 attempt by trainees, graded against it.*under a new id"):
        edit_case(store, changed, catalogue=catalogue)
    file = tmp_path / "ilesi-obese.yaml"
    assert main(["cases", "show", "ilesi-obese", "--db", store.url]) == 0
    file.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["cases", "edit", str(file), "--db", store.url]) == 1
    assert main(["cases", "remove", "ilesi-obese", "--db", store.url]) == 1
    assert "has 1 attempt and 1 assignment" in capsys.readouterr().err
    assert [c.scenario_id for c in store.cases()] == ["ilesi-obese"]

    unused = case_from_draft(draft_of(library_scenario("ilesi-default")) | {"id": "ilesi-spare"})
    save_case(store, unused, by="ada", catalogue=catalogue)
    file.write_text(draft_yaml(draft_of(unused) | {"id": "ilesi-spare", "title": "Spare"}, base=unused),
                    encoding="utf-8")
    assert main(["cases", "edit", str(file), "--db", store.url]) == 0
    assert "Spare" in department_catalogue(store).scenarios["ilesi-spare"].title
    assert main(["cases", "remove", "ilesi-spare", "--db", store.url]) == 0
    assert "Removed ilesi-spare" in capsys.readouterr().out
    assert "ilesi-spare" not in with_department_cases(catalogue, store).scenarios
    assert [c.scenario_id for c in store.cases()] == ["ilesi-obese"]
