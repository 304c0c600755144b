"""The workstation's request handlers without a browser: a click becomes an action and the page is sent
what it shows; a refused click changes nothing; the Report tab lists the report's rows with the dose in
the live counter's unit; the instructor's review lists the attempt."""

from __future__ import annotations

import numpy as np
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


def test_the_rf_generator_stimulates_and_lesions_where_the_procedure_is_an_ablation(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    assert handlers.scenario_view("tfesi-default")["rf_allowed"] is False
    assert handlers.scenario_view("rfa-l4-medial-branch-left")["rf_allowed"] is True
    handlers.start_attempt("rfa-l4-medial-branch-left")
    session = handlers.attempt.session
    path = plan_trajectory(session.tracer, session.target, session.spec)
    handlers.attempt.act({"type": "place_needle", "entry": path.entry.tolist(), "direction": path.direction.tolist(),
                          "depth_mm": path.depth_mm})
    handlers.stimulate("sensory", "0.5")
    assert "concordant tingling" in page["rf_text"]
    handlers.stimulate("motor", 2)
    assert page["rf_text"].endswith("the multifidus twitches")
    with pytest.raises(SpinesimError, match="field 'mode'"):
        handlers.stimulate("tetanic", 1)
    handlers.lesion("80", "90")
    assert page["rf_text"].startswith("lesion at 80 °C for 90 s")
    logged = store.actions(handlers.attempt.attempt_id)
    assert [a["type"] for a in logged[-3:]] == ["stimulate", "stimulate", "lesion"] and logged[-1]["seconds"] == 90.0


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


def test_align_with_the_beam_makes_the_needle_a_dot_and_a_nudge_moves_its_tip_on_the_image(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("tfesi-default")
    handlers.move_carm(25, 10)  # LAO 25 CRAN 10
    handlers.shot()
    handlers.align_beam()
    assert (page["needle_left"], page["needle_cranial"]) == (-25.0, -10.0)
    handlers.pick(256, 256, 512, 512)  # the centre of the image: the central ray
    handlers.insert(page["needle_left"], page["needle_cranial"])
    handlers.advance(30)
    carm, needle = handlers.attempt.session.carm(), handlers.attempt.session.state.needle
    hub, tip = carm.project(np.stack([needle.entry - 20.0 * needle.direction, needle.tip]))
    assert np.linalg.norm(hub - tip) < 1.0  # pixels: down the barrel

    handlers.nudge(page["needle_left"], page["needle_cranial"], 5, 0)  # tip toward the image's right
    handlers.redirect(page["needle_left"], page["needle_cranial"])
    handlers.advance(10)
    moved = handlers.attempt.session.state.needle
    entry, tip = carm.project(np.stack([moved.entry, moved.tip]))
    assert tip[0] - entry[0] > 5 and abs(tip[1] - entry[1]) < 0.2 * (tip[0] - entry[0])
    with pytest.raises(SpinesimError, match="nudge: 'far' is not a number"):
        handlers.nudge(0, 0, "far", 0)
    handlers.move_carm(90, 0)
    with pytest.raises(SpinesimError, match="cannot lie along the beam"):
        handlers.align_beam()
