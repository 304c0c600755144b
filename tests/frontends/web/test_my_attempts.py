"""Issue 20: a trainee's own past attempts (My attempts), each opened for its report and replay with the comments
an instructor left at its steps; another trainee's attempt is refused. The trainee replies where the instructor
commented, and the instructor reads the reply in Review. In a real browser:
tests/frontends/web/test_browser.py::test_the_trainee_reads_the_instructors_comment_at_its_step_in_my_attempts."""

from __future__ import annotations

import pytest

from anatomy_models.errors import SpinesimError
from frontends.store import Store
from frontends.web.attempt import LiveAttempt
from frontends.web.handlers import Handlers
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from tests.frontends.web.conftest import ANATOMY

PASSWORD = "a-long-password"
COMMENT = "Square the endplate before this shot."
REPLY = "The endplate was double: I tilted the C-arm 5 degrees caudal."


def finished_attempt(store: Store, user, scenario_id: str, patient) -> int:
    """A finished attempt of ``user`` at ``scenario_id``: one shot, then finish (3 replay steps: start, shot,
    finish)."""
    attempt = LiveAttempt.start(store, user.id, library_scenarios()[scenario_id], patient)
    attempt.act({"type": "fluoro_shot", "mode": "pulse"})
    attempt.act({"type": "finish"})
    return attempt.attempt_id


def _copy(store: Store, user, scenario_id: str, attempt_id: int) -> int:
    """Another finished attempt of ``user`` at ``scenario_id`` with the report of ``attempt_id`` (listed, not
    replayed: cheaper than acting it out)."""
    copy = store.start_attempt(user.id, scenario_id, 1)
    store.finish_attempt(copy, store.attempt(attempt_id).report)
    return copy


def _handlers(store, user, tmp_path) -> tuple[Handlers, dict]:
    """Handlers for ``user`` whose page is a dict; the full report page (tested in test_handlers.py) is not
    written."""
    page: dict = {}
    return Handlers(store, user, library_scenarios(), Patients(ANATOMY), tmp_path,
                    show=lambda **changes: page.update(changes), later=lambda work: None), page


def test_a_trainee_lists_and_opens_only_their_own_attempts_with_the_comments_at_their_steps(patient, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    ben, cy = (store.add_user(name, "trainee", PASSWORD) for name in ("ben", "cy"))
    ada = store.add_user("ada", "instructor", PASSWORD)
    first = finished_attempt(store, ben, "tfesi-default", patient)
    second = _copy(store, ben, "facet-default", first)
    theirs = _copy(store, cy, "tfesi-default", first)
    store.start_attempt(ben.id, "ilesi-default", 1)  # still in progress: resumed, not listed
    store.add_comment(first, ada.id, COMMENT, step=2)

    handlers, page = _handlers(store, ben, tmp_path)
    rows = handlers.request("my_attempts_view")["my_rows"]
    assert [row["id"] for row in rows] == [second, first]  # newest first, none of cy's
    cases = library_scenarios()
    assert [(row["case"], row["comments"]) for row in rows] == [(cases["facet-default"].title, 0),
                                                                (cases["tfesi-default"].title, 1)]
    assert all(row["outcome"] in ("pass", "fail") and row["grade"] for row in rows)

    handlers.request("open_attempt", first)
    assert page["tab"] == "report" and page["report"]["attempt_id"] == first
    assert [(c["author"], c["step"], c["text"]) for c in page["report_comments"]] == [("ada", 2, COMMENT)]
    with pytest.raises(SpinesimError, match="that attempt is not yours"):
        handlers.request("open_attempt", theirs)
    assert page["report"]["attempt_id"] == first  # the refusal left the open report as it was
    assert _handlers(store, ada, tmp_path)[0].my_attempts_view() == {}  # an instructor has the Review tab


def test_a_trainee_replies_where_the_instructor_commented_and_the_instructor_reads_the_reply(patient, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    ben, cy = (store.add_user(name, "trainee", PASSWORD) for name in ("ben", "cy"))
    ada = store.add_user("ada", "instructor", PASSWORD)
    first = finished_attempt(store, ben, "tfesi-default", patient)
    store.add_comment(first, ada.id, COMMENT, step=2)

    handlers, page = _handlers(store, ben, tmp_path)
    handlers.request("open_attempt", first)
    for step, refused in ((3, "has not commented at step 3"), (None, "has not commented on the whole attempt")):
        with pytest.raises(SpinesimError, match=refused):  # nothing to reply to there
            handlers.request("comment", REPLY, step)
    handlers.request("comment", REPLY, 2)
    assert page["comment_text"] == ""
    assert [(c["author"], c["reply"], c["where"], c["text"]) for c in page["report_comments"]] == [
        ("ada", False, "at step 2", COMMENT), ("ben", True, "reply at step 2", REPLY)]
    with pytest.raises(SpinesimError, match="a trainee replies on their own attempts only"):
        store.add_comment(first, cy.id, REPLY, step=2)  # another trainee, even where the instructor commented

    review, review_page = _handlers(store, ada, tmp_path)
    review.request("open_attempt", first)
    assert [(c["author"], c["where"], c["text"]) for c in review_page["report_comments"]][-1] == (
        "ben", "reply at step 2", REPLY)


def test_an_opened_report_comes_with_its_slider_at_the_last_step_in_the_same_message(patient, tmp_path):
    """The report and its replay's step arrive together: a report shown with the slider where the last one left it
    (until the last step's replay followed) had a slider moved meanwhile jump to the end when that came."""
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    ben = store.add_user("ben", "trainee", PASSWORD)
    first = finished_attempt(store, ben, "tfesi-default", patient)
    pushed: list[dict] = []
    handlers = Handlers(store, ben, library_scenarios(), Patients(ANATOMY), tmp_path,
                        show=lambda **changes: pushed.append(changes), later=lambda work: None)
    handlers.request("open_attempt", first)
    report = next(changes for changes in pushed if "replay_max" in changes)
    assert report["replay_max"] == 3 and report.get("replay_step") == 3
    assert report["replay_action"].startswith("3. ")
