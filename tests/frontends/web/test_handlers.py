"""The workstation's request handlers without a browser: a click becomes an action and the page is sent
what it shows; a refused click changes nothing; the Report tab lists the report's rows with the dose in
the live counter's unit; the instructor's review lists the attempt."""

from __future__ import annotations

import pytest

from anatomy_models.errors import SpinesimError
from frontends.store import Store
from frontends.web.handlers import Handlers
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from simulator.case.planner import plan_trajectory
from tests.frontends.web.conftest import ANATOMY


@pytest.fixture()
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'spinesim.db'}")


def _handlers(store, user, tmp_path) -> tuple[Handlers, dict]:
    """Handlers for ``user`` whose page is a dict: every change they push lands in it."""
    page: dict = {}
    handlers = Handlers(store, user, library_scenarios(), Patients(ANATOMY), tmp_path,
                        show=lambda **changes: page.update(changes))
    return handlers, page


def test_the_syringe_gives_the_contrast_test_and_the_injectate_apart(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("tfesi-default")
    session = handlers.attempt.session
    path = plan_trajectory(session.tracer, session.target, session.spec)
    handlers.attempt.act({"type": "place_needle", "entry": path.entry.tolist(), "direction": path.direction.tolist(),
                          "depth_mm": path.depth_mm})
    handlers.inject(1.0)
    handlers.medicate("2", "local_anaesthetic")
    with pytest.raises(SpinesimError, match="field 'agent'"):
        handlers.medicate(2, "morphine")
    logged = store.actions(handlers.attempt.attempt_id)
    assert [a["type"] for a in logged[-2:]] == ["inject_contrast", "inject_medication"]
    assert logged[-1]["ml"] == 2.0 and logged[-1]["agent"] == "local_anaesthetic"
    messages = [event["message"] for event in page["events"]]
    assert "2 mL of local anaesthetic injected" in messages and not any("it went" in m for m in messages)


def test_clicks_become_actions_and_the_report_tab_shows_the_dose_as_the_counter_did(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("tfesi-default")
    assert page["attempt_active"] and page["tab"] == "sim" and page["preset_names"] and page["action_count"] == 1
    handlers.shot()
    assert page["shots"] == 1 and page["fluoro_src"].startswith("data:image/jpeg;base64,")
    assert page["dap_mgy_cm2"] == round(handlers.attempt.ledger.dose_area_product_gy_cm2 * 1000, 1) > 0
    for refused, message in ((lambda: handlers.insert(0, 0), "no entry point picked"),
                             (lambda: handlers.advance("deep"), "step: 'deep' is not a number"),
                             (lambda: handlers.preset("sideways"), "unknown C-arm preset 'sideways'")):
        with pytest.raises(SpinesimError, match=message):
            refused()
    assert page["action_count"] == 2 and len(store.actions(handlers.attempt.attempt_id)) == 2
    counter = page["dap_mgy_cm2"]

    handlers.finish()
    attempt_id = handlers.attempt.attempt_id
    assert page["tab"] == "report" and page["report"]["attempt_id"] == attempt_id and page["replay_max"] == 3
    assert page["report_page"] == f"reports/attempt-{attempt_id}-3.html"
    assert (tmp_path / f"attempt-{attempt_id}-3.html").exists()
    rows = {row["label"]: row["value"] for row in page["report_rows"]}
    assert rows["Reference air kerma / DAP"].endswith(f" mGy / {counter:.1f} mGy·cm²")
    assert rows["Fluoroscopy shots"].startswith("1 (expert ")
    assert page["replay_step"] == 3 and page["replay_action"].startswith("3. t = ")
    with pytest.raises(SpinesimError, match="no attempt in progress"):
        handlers.shot()

    ada = store.add_user("ada", "instructor", "correct horse")
    review, review_page = _handlers(store, ada, tmp_path)
    view = review.review_view(ben.id, "tfesi-default")
    assert [row["id"] for row in view["review_rows"]] == [attempt_id] and "<svg" in view["curve_svg"]
    assert review.review_view(ben.id, "facet-default")["review_rows"] == []
    with pytest.raises(SpinesimError, match="unknown scenario"):
        review.review_view(None, "no-such-case")
    assert handlers.review_view() == {}  # a trainee has no Review tab
    other = store.add_user("cy", "trainee", "battery staple")
    with pytest.raises(SpinesimError, match="that attempt is not yours"):
        _handlers(store, other, tmp_path)[0].open_attempt(attempt_id)
    review.open_attempt(attempt_id)  # the instructor opens anyone's
    assert review_page["report"]["user"] == "ben" and review_page["report_rows"] == page["report_rows"]
    assert review_page["report_peers"] == page["report_peers"] == "50th percentile of 1 attempt at this case"
