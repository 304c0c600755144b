"""The patient explanation of an attempt from the browser: the page of its own patient and its own needle (not
the expert's), for whoever may open the attempt, once it has ended; an attempt without a needle is refused."""

from __future__ import annotations

import pytest

from anatomy_models.errors import SpinesimError
from frontends.store import Store
from frontends.web.handlers import Handlers
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from simulator.case.planner import plan_trajectory
from tests.frontends.web.conftest import ANATOMY


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'spinesim.db'}")


def _handlers(store, user, reports) -> tuple[Handlers, dict]:
    page: dict = {}
    # The full HTML report (written after a report opens) is not needed here: `later` drops it (seconds each).
    return Handlers(store, user, library_scenarios(), Patients(ANATOMY), reports,
                    show=lambda **changes: page.update(changes), later=lambda work: None), page


def test_an_ended_attempt_is_explained_with_its_own_needle_for_its_trainee_and_the_instructor(patient, store,
                                                                                             tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    trainee, page = _handlers(store, ben, tmp_path)
    with pytest.raises(SpinesimError, match="no attempt is open"):
        trainee.explain_attempt()
    trainee.start_attempt("ilesi-default")
    session = trainee.attempt.session
    path = plan_trajectory(session.tracer, session.target, session.spec)
    trainee.attempt.act({"type": "place_needle", "entry": path.entry.tolist(), "direction": path.direction.tolist(),
                         "depth_mm": path.depth_mm * 0.8})  # short of the target: not the expert's needle
    trainee.finish()
    attempt_id = page["report"]["attempt_id"]
    trainee.explain_attempt()
    name = f"explain-attempt-{attempt_id}.html"
    assert page["explain_attempt_for"] == attempt_id and page["explain_attempt_page"] == f"reports/{name}"
    text = (tmp_path / name).read_text(encoding="utf-8")
    assert "a practice attempt" in text and "a careful, textbook approach" not in text

    ada = store.add_user("ada", "instructor", "correct horse")
    instructor, shown = _handlers(store, ada, tmp_path)
    instructor.open_attempt(attempt_id)
    instructor.explain_attempt()  # the page is written once: the instructor gets the same link
    assert shown["explain_attempt_page"] == f"reports/{name}"

    trainee.new_attempt()
    trainee.start_attempt("ilesi-default")
    trainee.finish()  # no needle: nothing to show a patient
    with pytest.raises(SpinesimError, match="never placed a needle"):
        trainee.explain_attempt()
