"""The case editor's preview says whether an expert path reaches the draft's target (issue 20: "check that an
expert path exists"), on the draft's own patient: the planner's textbook path, its depth from the skin, or why
there is none."""

from __future__ import annotations

import re

from frontends.casebook import department_catalogue, draft_of, library_scenario
from frontends.store import Store
from frontends.web import editor as editor_module
from frontends.web.editor import CaseEditor
from frontends.web.patients import Patients
from simulator.case.planner import plan_trajectory
from simulator.session.fold import Session
from tests.frontends.web.conftest import ANATOMY


def _editor(tmp_path) -> tuple[CaseEditor, dict]:
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    instructor = store.add_user("ada", "instructor", "correct horse battery")
    page: dict = {}
    editor = CaseEditor(store, instructor, department_catalogue(store), Patients(ANATOMY),
                        show=lambda **changes: page.update(changes))
    return editor, page


def test_the_preview_gives_the_expert_paths_depth_or_says_there_is_none(patient, tmp_path, monkeypatch):
    editor, page = _editor(tmp_path)
    draft = draft_of(library_scenario("tfesi-default")) | {"id": "tfesi-web-left", "patient": ANATOMY}
    editor.request("editor_preview", draft)
    assert page["editor_preview_src"].startswith("data:image/")
    said = re.search(r"An expert path reaches the target (\d+) mm from the skin\.", page["editor_text"])
    assert said, page["editor_text"]
    case = editor_module.case_from_draft(draft)
    anatomy, tracer = editor.patients.of(case)
    session = Session(case, anatomy, tracer=tracer)
    assert int(said.group(1)) == round(plan_trajectory(tracer, session.target, session.spec).depth_mm)

    def no_path(tracer, target, spec):
        raise editor_module.SpinesimError(f"no safe textbook path to the {target.description} with a 10 mm needle")

    monkeypatch.setattr(editor_module, "plan_trajectory", no_path)
    editor.request("editor_preview", draft)
    assert "No expert path: no safe textbook path to the" in page["editor_text"]
    assert "trainees cannot do this case" in page["editor_text"]
