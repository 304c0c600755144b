"""The workstation's request handlers without a browser: a click becomes an action and the page is sent
what it shows; a refused click changes nothing; the Report tab lists the report's rows with the dose in
the live counter's unit; the instructor's review lists the attempt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from frontends.store import Store
from frontends.web.handlers import Handlers
from frontends.web.patients import Patients
from frontends.web.views import ATTEMPT_FIELDS
from scenarios.schema import library_scenarios
from scoring.metrics import MGY_PER_GY, dap_text
from simulator.case.planner import plan_trajectory
from tests.frontends.postgres import postgresql_server
from tests.frontends.web.conftest import ANATOMY


@pytest.fixture()
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'spinesim.db'}")


@pytest.fixture(scope="module")
def postgresql_url():
    with postgresql_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def department_store(request, tmp_path):
    """The store on SQLite and on a real PostgreSQL server (Debian's, on loopback: tests/frontends/postgres.py),
    for the web app's department flows (issue 20: the web tests on the database a hospital would run)."""
    if request.param == "sqlite":
        return Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    return Store(request.getfixturevalue("postgresql_url"))


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
    assert not page.get("contrast_given")
    handlers.inject(1.0)
    assert page["contrast_given"]
    with pytest.raises(SpinesimError, match="unknown contrast pattern 'blob'"):
        handlers.read_contrast("blob")
    handlers.read_contrast("vascular")
    read = next(e for e in page["events"] if e["message"].startswith("you read the contrast"))
    assert read["message"] == "you read the contrast as vascular" and "right" not in read["message"]
    handlers.medicate("2", "local_anaesthetic")
    with pytest.raises(SpinesimError, match="field 'agent'"):
        handlers.medicate(2, "morphine")
    logged = store.actions(handlers.attempt.attempt_id)
    assert [a["type"] for a in logged[-3:]] == ["inject_contrast", "read_contrast", "inject_medication"]
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
    case = library_scenarios()["tfesi-default"]  # the report repeats the case's difficulty and objectives
    assert (page["report"]["difficulty"], page["report"]["objectives"]) == (case.difficulty, list(case.objectives))
    assert page["report_page"] == f"reports/attempt-{attempt_id}-3.html"
    assert (tmp_path / f"attempt-{attempt_id}-3.html").exists()
    rows = {row["label"]: row["value"] for row in page["report_rows"]}
    assert f" mGy / {dap_text(counter / MGY_PER_GY)} (expert " in rows["Reference air kerma / DAP"]
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


def test_a_new_attempt_starts_its_fields_afresh(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("tfesi-default")
    handlers.nudge(0, 0, 5, 5)
    page |= {"contrast_ml": 0.3, "step_mm": 12.0, "live_seconds": 9.0}  # what the trainee typed
    handlers.finish()
    handlers.new_attempt()
    handlers.start_attempt("tfesi-default")
    assert {name: page[name] for name in ATTEMPT_FIELDS} == ATTEMPT_FIELDS


def test_a_click_outside_the_imaged_circle_is_no_skin_entry(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("tfesi-default")
    with pytest.raises(SpinesimError, match="no image to pick on"):
        handlers.pick(256, 256, 512, 512)
    handlers.shot()
    with pytest.raises(SpinesimError, match="outside the X-ray image"):
        handlers.pick(4, 4, 512, 512)  # the black corner: no X-rays reach it
    assert page["entry_text"] == "" and page["pick_marker"] is None
    handlers.pick(256, 256, 512, 512)
    assert page["pick_marker"] == {"x": 50.0, "y": 50.0}
    # In a physician's words (the central ray of the start view lies on the midline, at the target's level);
    # the coordinates only for those who hover.
    assert page["entry_text"].startswith("skin on the midline") and "L4-L5 disc" in page["entry_text"]
    assert "LPS" not in page["entry_text"] and page["entry_lps"].endswith("mm (LPS)")


def test_the_safety_banner_goes_when_the_needle_moves_on_without_one(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("tfesi-default")
    session = handlers.attempt.session
    path = plan_trajectory(session.tracer, session.target, session.spec)
    handlers.attempt.act({"type": "place_needle", "entry": path.entry.tolist(), "direction": path.direction.tolist()})
    for _ in range(60):  # on along the planned line until the needle meets something the trainee feels
        handlers.advance(3)
        if page.get("alert_show"):
            break
    assert page["alert_show"], "the planned line met nothing that raises a banner"
    handlers.shot()  # an image does not take the banner down
    assert page["alert_show"]
    handlers.withdraw(10)
    assert not page["alert_show"]


def test_the_report_tab_and_the_review_round_a_grade_alike(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("facet-default")
    handlers.finish()
    attempt_id = handlers.attempt.attempt_id
    store.finish_attempt(attempt_id, store.attempt(attempt_id).report | {"grade": 54.5})  # a half
    ada = store.add_user("ada", "instructor", "correct horse")
    review, review_page = _handlers(store, ada, tmp_path)
    review.open_attempt(attempt_id)
    rows = review.review_view(ben.id, "facet-default")["review_rows"]
    assert review_page["report"]["grade_text"] == rows[0]["grade"] == "54"


def test_an_abandoned_attempt_is_kept_as_abandoned_and_not_graded(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("facet-default")
    handlers.shot()
    attempt_id = handlers.attempt.attempt_id
    handlers.abandon()
    stored = store.attempt(attempt_id)
    assert (stored.status, stored.report, stored.actions) == ("abandoned", None, 2)
    assert not page["attempt_active"] and f"Attempt {attempt_id} abandoned" in page["notice_text"]
    assert store.peer_grades("facet-default") == [] and store.unfinished_attempt(ben.id) is None
    with pytest.raises(SpinesimError, match="no attempt in progress"):
        handlers.shot()
    with pytest.raises(SpinesimError, match="is abandoned, not in progress"):
        store.abandon_attempt(attempt_id)
    ada = store.add_user("ada", "instructor", "correct horse")
    review, review_page = _handlers(store, ada, tmp_path)
    row = review.review_view(ben.id, "facet-default")["review_rows"][0]
    assert (row["status"], row["outcome"], row["grade"]) == ("abandoned", "abandoned", "")
    review.open_attempt(attempt_id)
    assert (review_page["report"]["outcome"], review_page["report"]["grade_text"]) == ("abandoned", "–")
    assert review_page["report_peers"] == ""
    handlers.start_attempt("facet-default")  # the next attempt starts as usual
    assert page["attempt_active"] and page["notice_text"] == ""


def test_the_bevel_turned_on_screen_goes_in_with_the_needle_and_is_named_in_the_patients_directions(patient, store,
                                                                                                    tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("tfesi-default")
    handlers.shot()
    handlers.pick(256, 256, 512, 512)
    handlers.insert(0, 0, 90)  # straight in (anterior); a quarter turn from cranial, right-handed about the shaft
    assert store.actions(handlers.attempt.attempt_id)[-1]["bevel_roll_deg"] == 90
    assert page["bevel_text"] == "Bevel faces the patient's right"
    handlers.redirect(0, 0, 180)
    assert handlers.attempt.session.state.needle.bevel_roll_deg == 180 and page["bevel_text"] == "Bevel faces caudal"
    with pytest.raises(SpinesimError, match="bevel: 'up' is not a number"):
        handlers.redirect(0, 0, "up")


def test_a_refused_value_is_named_as_the_trainee_typed_it(patient, store, tmp_path):
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("facet-default")
    with pytest.raises(SpinesimError) as refused:
        handlers.live(-2)
    assert str(refused.value) == "The live or DSA run must be more than 0 s (you entered -2.0)"
    with pytest.raises(SpinesimError, match="^The LAO / RAO angle can be at most"):
        handlers.move_carm(400, 0)


def test_a_live_run_plays_as_a_cine_on_the_monitor_and_replays_the_same_frames(patient, store, tmp_path):
    """Live fluoroscopy of 0.5 s at the C-arm's 15 pulses/s: the monitor shows 8 frames at the pulse rate,
    then holds the last image; Replay run shows the same frames again."""
    ben = store.add_user("ben", "trainee", "battery staple")
    shown: list[tuple[str, str]] = []
    page: dict = {}

    def show(**changes) -> None:
        page.update(changes)
        if "fluoro_src" in changes:
            shown.append((changes["fluoro_src"], changes.get("fluoro_caption", "")))

    handlers = Handlers(store, ben, library_scenarios(), Patients(ANATOMY), tmp_path, show=show)
    handlers.start_attempt("tfesi-default")
    with pytest.raises(SpinesimError, match="no live or DSA run"):
        handlers.play_run()
    handlers.shot()
    assert page["has_run"] is False
    session = handlers.attempt.session
    path = plan_trajectory(session.tracer, session.target, session.spec)
    handlers.attempt.act({"type": "place_needle", "entry": path.entry.tolist(), "direction": path.direction.tolist(),
                          "depth_mm": path.depth_mm})
    handlers.inject(1.0)
    shown.clear()
    handlers.live(0.5)
    hold = handlers.attempt.last_shot.data_url
    frames = [src for src, caption in shown if "frame " in caption]
    numbers = [caption.split("frame ")[1] for _, caption in shown if "frame " in caption]
    assert numbers == [f"{n}/8" for n in range(1, 9)]
    assert frames[-1] == hold and len(set(frames)) == 8 and shown[-1][0] == hold and page["has_run"]
    shown.clear()
    handlers.play_run()
    assert [src for src, caption in shown if "frame " in caption] == frames and page["fluoro_src"] == hold


def test_comments_at_a_replay_step_and_assigned_cases_first(patient, department_store, tmp_path):
    """Issue 20: an instructor comments on a trainee's attempt at a step of its replay; the trainee reads it
    when opening the attempt; a trainee's assigned cases head the picker, soonest due first."""
    from datetime import datetime, timezone

    from frontends.web.views import scenario_items
    from scenarios.catalogue import read_catalogue

    ben = department_store.add_user("ben", "trainee", "battery staple")
    ada = department_store.add_user("ada", "instructor", "correct horse")
    handlers, page = _handlers(department_store, ben, tmp_path)
    handlers.start_attempt("facet-default")
    handlers.shot()
    handlers.finish()
    attempt_id = handlers.attempt.attempt_id
    review, review_page = _handlers(department_store, ada, tmp_path)
    with pytest.raises(SpinesimError, match="no attempt is open"):
        review.comment("Good.", None)
    review.open_attempt(attempt_id)
    review.comment("Square the endplate before this shot.", 2)
    review.comment("A tidy attempt overall.", None)
    assert [(c["author"], c["where"], c["text"]) for c in review_page["report_comments"]] == [
        ("ada", "at step 2", "Square the endplate before this shot."), ("ada", "on the attempt", "A tidy attempt overall.")]
    assert review_page["comment_text"] == ""
    with pytest.raises(SpinesimError, match="step 99 is not in attempt"):
        review.comment("Too far.", 99)
    handlers.open_attempt(attempt_id)
    assert [c["text"] for c in page["report_comments"]][0] == "Square the endplate before this shot."

    department_store.assign("tfesi-default", by="ada", user="ben", due=datetime(2027, 1, 15, tzinfo=timezone.utc))
    department_store.assign("facet-default", by="ada", user="ben")  # done already? no: assigned after the attempt
    items = scenario_items(read_catalogue(), department_store.assignments_for(ben.id))
    assert items[0] == {"type": "subheader", "title": "Assigned to you"}
    assert items[1]["value"] == "tfesi-default" and items[1]["title"].endswith("· due 2027-01-15")
    assert items[2]["value"] == "facet-default" and items[3]["type"] == "subheader"


def test_a_report_page_cut_short_is_never_served(patient, store, tmp_path, monkeypatch):
    """The full report page is written whole or not at all: a write that fails halfway (a crash, a full disk)
    leaves no page, and opening the attempt again writes it whole (a torn page used to stay for good)."""
    ben = store.add_user("ben", "trainee", "battery staple")
    handlers, page = _handlers(store, ben, tmp_path)
    handlers.start_attempt("tfesi-default")
    handlers.shot()
    real_write_text = Path.write_text

    def torn(path, text, *args, **kwargs):
        real_write_text(path, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", torn)
    with pytest.raises(SpinesimError, match="cannot be written .No space left on device.*previous copy"):
        handlers.finish()
    monkeypatch.setattr(Path, "write_text", real_write_text)
    attempt_id = handlers.attempt.attempt_id
    assert not list(tmp_path.glob("attempt-*.html"))
    handlers.open_attempt(attempt_id)
    written, = tmp_path.glob("attempt-*.html")
    assert written.read_text(encoding="utf-8").rstrip().lower().endswith("</html>")
