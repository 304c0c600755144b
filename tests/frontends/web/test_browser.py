"""The simulator in a real browser (headless Chromium driven by Playwright): an expert attempt made with
the trainee's controls passes, an unsafe one shows the engine's flags, the monitor's pixels show the
needle move, and a server killed mid-attempt loses nothing."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from frontends.store import Store
from frontends.web.attempt import LiveAttempt
from scoring.peers import percentile_rank, percentile_text
from scoring.report import checklist_rows, metric_rows, rating_rows, score
from simulator.session.fold import Session
from simulator.session.words import action_title
from tests.frontends.web import browser as b
from tests.frontends.web.conftest import ANATOMY, PASSWORD, SCENARIO
from tests.frontends.web.test_my_attempts import COMMENT, REPLY, finished_attempt

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")
if not __import__("os").path.exists(b.CHROMIUM):
    pytest.skip("Chromium is not installed (./dev.sh installs it)", allow_module_level=True)


def _flag_codes(page) -> list[str]:
    return sorted(text.strip() for text in page.locator("#report-flags .flag-code").all_text_contents())


def _scored(database, page, scenario, anatomy):
    """The report scoring gives the attempt on screen, from its stored log."""
    return score(scenario, anatomy, Store(database).actions(b.attempt_id(page)))


def test_an_expert_attempt_through_the_controls_passes(server, page, trainee_name, expert, patient, database):
    session, actions = expert
    b.log_in(page, server.url, trainee_name, PASSWORD)
    trainee = b.Trainee(page, session.scenario, patient, database)
    trainee.start()
    for record in actions:
        trainee.perform(record)
    assert page.text_content("#report-outcome").strip() == "PASS"
    assert page.is_visible("#report-no-flags")
    expected = _scored(database, page, session.scenario, patient)
    assert expected.passed and int(page.text_content("#report-grade")) == round(expected.grade) >= 85
    # The metrics as the HTML report lists them: one formatting, scoring's.
    shown = [tuple(cell.strip() for cell in row.locator("td").all_text_contents())
             for row in page.locator("#report-metrics tr").all()]
    assert shown == metric_rows(expected)
    # The checklist and the global rating, from the same rows as the HTML report.
    steps = [row.locator("td").first.text_content().strip() for row in page.locator("#report-checklist tr").all()]
    assert steps == [step for step, *_ in checklist_rows(expected)]
    assert page.locator("#report-rating tr").count() == len(rating_rows(expected)) > 0
    # The full report (scoring's page with the 3D reveal) follows in the frame.
    page.wait_for_selector("#report-page", timeout=120_000)
    frame = page.frame_locator("#report-page")
    assert frame.locator("canvas").count() >= 1
    # The replay slider shows the image the monitor held at each step.
    assert page.get_attribute("#replay-image", "src").startswith("data:image/jpeg")


def test_an_unsafe_attempt_shows_the_flags_scoring_raises(server, page, trainee_name, expert, patient, database):
    session, actions = expert
    place = next(a for a in actions if a["type"] == "place_needle")
    # Past the epidural space into the dural sac's CSF along the expert's own line.
    path = session.tracer.trace(np.asarray(place["entry"]), np.asarray(place["direction"]), 150.0)
    csf = next(s for s in path.segments if s.tissue == "csf")
    depth = round(0.5 * (csf.depth_in_mm + csf.depth_out_mm), 2)
    plunge = [{"type": "fluoro_shot", "mode": "pulse"}, place, {"type": "advance", "mm": depth}]
    # What the engine says about the same needle path.
    reference = Session(session.scenario, patient)
    reference.apply({"type": "place_needle", "t": 1, "entry": place["entry"], "direction": place["direction"]})
    reference.apply({"type": "advance", "t": 2, "mm": depth})
    assert {"dural_puncture", "csf_flashback"} <= {e.kind for e in reference.unsafe_events()}

    b.log_in(page, server.url, trainee_name, PASSWORD)
    trainee = b.Trainee(page, session.scenario, patient)
    trainee.start()
    page.click("#hint")  # the scenario's hints, one at a time
    page.wait_for_selector(f"text={session.scenario.hints[0]}")
    assert f"{len(session.scenario.hints) - 1} left" in page.text_content("#hint")
    trainee.move_carm(next(a for a in actions if a["type"] == "set_carm")["primary_deg"],
                      next(a for a in actions if a["type"] == "set_carm")["secondary_deg"])
    for record in plunge:
        trainee.perform(record)
    assert page.is_visible("#alert")  # the trainee was told at once
    assert page.is_visible("#hub") and "CSF" in page.text_content("#hub")
    trainee.perform({"type": "finish"})
    assert page.text_content("#report-outcome").strip() == "FAIL"
    expected = _scored(database, page, session.scenario, patient)
    assert _flag_codes(page) == sorted(flag.code for flag in expected.flags)
    assert "dural_puncture" in _flag_codes(page) and not expected.passed


def test_the_monitor_shows_the_needle_advance(server, page, trainee_name, expert, patient):
    session, actions = expert
    place = next(a for a in actions if a["type"] == "place_needle")
    b.log_in(page, server.url, trainee_name, PASSWORD)
    trainee = b.Trainee(page, session.scenario, patient)
    trainee.start()
    trainee.shot()
    trainee.insert(place["entry"], place["direction"])
    # Nonsense typed in a field is refused in the trainee's words; nothing is saved, work goes on.
    saved = b.saved_actions(page)
    b.set_number(page, "#step", -3)
    page.click("#advance")
    page.wait_for_selector("#error-text")
    assert "The step must be more than 0 mm" in page.text_content("#error-text")
    assert "Traceback" not in page.content() and b.saved_actions(page) == saved
    trainee.advance(10.0)
    trainee.shot()
    before_screen, before = b.screen_pixels(page), b.image_pixels(page).astype(float)
    trainee.advance(15.0)
    trainee.shot()
    after_screen, after = b.screen_pixels(page), b.image_pixels(page).astype(float)
    # Where the shaft's new 15 mm projects, the image changed far more than the quantum noise elsewhere.
    entry, direction = np.asarray(place["entry"]), np.asarray(place["direction"])
    segment = trainee.shown.project(entry + np.linspace(12.0, 23.0, 40)[:, None] * direction)
    rows, cols = np.mgrid[0:512, 0:512]
    near = np.zeros((512, 512), bool)
    for u, v in segment:
        near |= (cols - u) ** 2 + (rows - v) ** 2 <= 2.0 ** 2
    change = np.abs(after - before)
    field = trainee.shown.field_mask() & ~near
    assert change[near].mean() > 3.0 * np.median(change[field])
    assert after[near].mean() < before[near].mean() - 20  # the steel shaft is dark where it now lies (bone black)
    # And Chromium painted it: the element's own screenshot changed too.
    assert np.abs(after_screen.astype(float) - before_screen).mean() > 1.0


def test_a_killed_server_loses_no_action_and_the_attempt_resumes(patient, database, trainee_name, expert, new_page,
                                                                  tmp_path):
    """On servers of its own (one killed, one started after it) on the shared store."""
    session, actions = expert
    place = next(a for a in actions if a["type"] == "place_needle")
    first = b.Server(database, ANATOMY, "--require-login", log=tmp_path / "first.log")
    try:
        page = new_page()
        b.log_in(page, first.url, trainee_name, PASSWORD)
        trainee = b.Trainee(page, session.scenario, patient)
        trainee.start()
        trainee.shot()
        trainee.insert(place["entry"], place["direction"])
        trainee.advance(8.0)
        b.act(page, "#lor")
        trainee.advance(4.0)
        shown = b.saved_actions(page)
        attempt = b.attempt_id(page)
        depth_shown = page.text_content("#count-depth").strip()
        below = b.descendant_pids(first.process.pid)  # the zygote and the workstations it forked
    finally:
        first.kill()
    page.context.close()
    assert below and b.wait_ended(below) == []  # a killed server leaves no orphan workstation behind
    stored = Store(database).actions(attempt)
    assert len(stored) == shown == 6
    assert [r["type"] for r in stored] == ["set_carm", "fluoro_shot", "place_needle", "advance",
                                           "check_loss_of_resistance", "advance"]

    second = b.Server(database, ANATOMY, "--require-login", log=tmp_path / "second.log")
    try:
        page = new_page()
        b.log_in(page, second.url, trainee_name, PASSWORD)
        page.wait_for_selector("#resume", state="visible")
        assert f"Attempt {attempt}" in page.text_content("#resume-text")
        page.click("#resume")
        b.wait_saved(page, shown)
        assert page.text_content("#count-depth").strip() == depth_shown
        assert page.get_attribute("#fluoro", "src").startswith("data:image/jpeg")  # the held image is back
        b.Trainee(page, session.scenario, patient).advance(2.0)
        assert len(Store(database).actions(attempt)) == shown + 1
        page.context.close()
    finally:
        second.stop()


def test_an_instructor_reviews_attempts_replays_them_and_sees_the_learning_curve(server, page, database,
                                                                                 instructor_name, trainee_name, expert,
                                                                                 patient):
    session, actions = expert
    store = Store(database)
    student = {user.name: user for user in store.users()}[trainee_name]
    for cut in (6, len(actions)):  # a short wrong attempt, then the expert's
        attempt = LiveAttempt.start(store, student.id, session.scenario, patient)
        for record in actions[:cut]:
            attempt.act({k: v for k, v in record.items() if k != "t"})
        if cut < len(actions):
            attempt.act({"type": "finish"})
    attempts = store.attempts(user_id=student.id)

    b.log_in(page, server.url, instructor_name, PASSWORD)
    page.click("#tab-review")
    b.choose(page, "#review-trainee", f"{trainee_name} (trainee)")
    page.wait_for_selector("#curve svg")
    assert page.locator("#curve circle").count() == (1 + 3) * 2  # the CUSUM and three measures, two attempts
    assert page.locator("#curve .cusum-lower").count() == page.locator("#curve .cusum-upper").count() == 1
    rows = page.locator("#review-table tbody tr")
    assert rows.count() == 2 and "pass" in rows.nth(0).text_content() and "fail" in rows.nth(1).text_content()
    # The expert's grade ranked among every finished attempt at the case (other tests on the shared store add theirs).
    expert_grade = store.attempt(attempts[-1].id).report["grade"]
    peers = store.peer_grades(session.scenario.id)
    rank = int(percentile_rank(expert_grade, peers) + 0.5)
    assert f"{rank} of {len(peers)}" in rows.nth(0).text_content() and rank > 50
    assert page.get_attribute("#review-csv", "href").startswith("data:text/csv;base64,")
    page.click(f"#open-{attempts[-1].id}")
    page.wait_for_selector("#report-outcome")
    assert page.text_content("#report-outcome").strip() == "PASS"
    assert page.text_content("#report-peers").strip() == f"Grade: {percentile_text(expert_grade, peers)}"
    # Step the replay back to the first shot: the image is that shot's, re-rendered from the log.
    first_shot = next(i for i, a in enumerate(actions, start=2) if a["type"] == "fluoro_shot")
    page.locator("[role=slider]").first.focus()
    page.keyboard.press("Home")
    for _ in range(first_shot):
        page.keyboard.press("ArrowRight")
    # Wait for that very step (on a busy machine the slider may still show the last step, also a shot).
    page.wait_for_function(f"() => document.querySelector('#replay-action').textContent.startsWith('{first_shot}. ')")
    assert f"{first_shot}. t = " in page.text_content("#replay-action")
    assert action_title("fluoro_shot") in page.text_content("#replay-action")
    final = LiveAttempt.resume(store, attempts[-1].id, session.scenario, patient)
    # The same image: equal pixels up to the last grey level (the server and this process may run the
    # projector's parallel loops on different numbers of threads, which moves float sums in the last bit).
    shown, expected = (np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("L"), float)
                       for src in (page.get_attribute("#replay-image", "src"), final.shots[0].data_url))
    assert shown.shape == expected.shape and np.mean(np.abs(shown - expected)) < 1.0
    page.click("#tab-review")
    page.click("#preview")
    page.wait_for_selector("#preview-image[src^='data:image/jpeg']")


def test_the_trainee_reads_the_instructors_comment_at_its_step_in_my_attempts(server, served_page, page, database,
                                                                              instructor_name, trainee_name, patient,
                                                                              tmp_path):
    """Issue 20: the instructor comments at step 2 of the trainee's finished attempt; the trainee opens it from
    My attempts, which lists only their own, and reads the comment when the replay is at step 2."""
    store = Store(database)
    users = {user.name: user for user in store.users()}
    mine = finished_attempt(store, users[trainee_name], SCENARIO, patient)
    b.log_in(page, server.url, instructor_name, PASSWORD)
    page.click("#tab-review")
    b.choose(page, "#review-trainee", f"{trainee_name} (trainee)")
    page.click(f"#open-{mine}")
    page.wait_for_function("id => document.querySelector('#replay-action')?.textContent.startsWith('3. ') && "
                           "document.body.textContent.includes('attempt ' + id + ' · ')", arg=mine)
    page.locator(".v-slider:has(#replay-slider) .v-slider-thumb").focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => document.querySelector('#replay-action').textContent.startsWith('2. ')")
    page.fill("#comment-text", COMMENT)
    page.click("#comment-step")
    page.wait_for_function("t => document.querySelector('#report-comments').textContent.includes(t)", arg=COMMENT)

    trainee = served_page(viewport={"width": 1400, "height": 1000})  # the trainee's own browser
    b.log_in(trainee, server.url, trainee_name, PASSWORD)
    trainee.click("#tab-mine")
    trainee.wait_for_selector(f"#mine-open-{mine}")
    own = [a.id for a in store.attempts(user_id=users[trainee_name].id) if a.status != "in_progress"]
    listed = trainee.locator("#my-attempts tbody tr td:first-child").all_text_contents()
    assert [int(text) for text in listed] == own[::-1]  # newest first, nobody else's
    # The picture once the tabs have slid (Vue's transition classes gone), not half-way.
    trainee.wait_for_function("() => !document.querySelector("
                             "'[class*=\"-enter-active\"], [class*=\"-leave-active\"]')")
    trainee.screenshot(path=tmp_path / "my-attempts.png")
    trainee.click(f"#mine-open-{mine}")
    trainee.wait_for_function("() => document.querySelector('#replay-action')?.textContent.startsWith('3. ')")
    # At the last step the comment is listed with the attempt's others, not beside the replay.
    assert COMMENT in trainee.text_content("#report-comments")
    assert trainee.locator("#replay-comments .v-alert").count() == 0
    # The trainee replies (a reply, not the instructor's comment buttons) where the instructor commented.
    assert trainee.locator("#comment-step").count() == 0 and trainee.locator("#reply-step").is_disabled()
    # The reply typed first, then the slider moved to the instructor's step (the order ops9 saw the replay jump
    # back in): the slider stays where it was put.
    trainee.fill("#comment-text", REPLY)
    trainee.locator(".v-slider:has(#replay-slider) .v-slider-thumb").focus()
    trainee.keyboard.press("ArrowLeft")
    # The comment beside the replay shows at once (the page filters by the slider's step); the step's words come
    # when the workstation has replayed it: wait for both.
    trainee.wait_for_selector("#replay-comments .v-alert")
    trainee.wait_for_function("() => document.querySelector('#replay-action').textContent.startsWith('2. ')")
    assert trainee.evaluate("() => document.querySelector('#replay-slider').value") == "2"
    shown = trainee.text_content("#replay-comments")
    assert COMMENT in shown and f"{instructor_name} · comment at step 2" in shown
    trainee.click("#reply-step")
    trainee.wait_for_function("t => document.querySelector('#replay-comments').textContent.includes(t)", arg=REPLY)
    assert f"{trainee_name} · reply at step 2" in trainee.text_content("#replay-comments")
    trainee.screenshot(path=tmp_path / "my-attempt-at-step-2.png")
    page.click("#tab-review")  # the instructor reads the reply in Review
    page.click(f"#open-{mine}")
    page.wait_for_function("t => document.querySelector('#report-comments').textContent.includes(t)", arg=REPLY)
