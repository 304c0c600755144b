"""Live fluoroscopy while Live is held, without a browser: the frames streamed while the needle advances
are the frames of the run's cine replayed from the stored log (pixel for pixel), the needle moves in
them, the run is one held ``fluoro_shot`` whose dose is its frames', and a held run is a live run with
its seconds before it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from frontends.pictures.encode import jpeg_data_url
from frontends.store import Store
from frontends.web.attempt import LiveAttempt
from frontends.web.handlers import Handlers
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from simulator.case.planner import plan_trajectory
from simulator.imaging.dose import tap_frames
from simulator.session.actions import parse_action
from tests.frontends.web.conftest import ANATOMY

ADVANCES = 4
STEP_S = 0.3  # the clock moves on this much between advances, s (4.5 pulses at 15 p/s)
STEP_MM = 4.0


@pytest.fixture(scope="module")
def held_run(patient, tmp_path_factory):
    """A transforaminal needle 20 mm short of its target; Live held for four advances of 4 mm, a frame
    streamed at each (the attempt's clock moved on by hand); then let go. Made once for the module (7 s
    each): the tests read it, and the one that holds Live again runs last and lets go."""
    tmp_path = tmp_path_factory.mktemp("held-run")
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    user = store.add_user("ben", "trainee", "battery staple")
    page: dict = {}
    streams: list = []
    handlers = Handlers(store, user, library_scenarios(), Patients(ANATOMY), tmp_path,
                        show=lambda **changes: page.update(changes), later=streams.append)
    handlers.start_attempt("tfesi-default")
    attempt = handlers.attempt
    session = attempt.session
    path = plan_trajectory(session.tracer, session.target, session.spec)
    attempt.act({"type": "place_needle", "entry": path.entry.tolist(), "direction": path.direction.tolist(),
                 "depth_mm": path.depth_mm - 20.0})
    handlers.shot()
    held_at = time.monotonic()
    handlers.live_hold(True)
    run = attempt.held
    assert run is not None and len(streams) == 1  # the stream was started beside the request
    streamed = {}
    for _ in range(ADVANCES):
        attempt._clock_origin -= STEP_S  # time passes
        index = run.frames_due(attempt.now()) - 1
        streamed[index] = attempt.held_frame(run, index)
        handlers.advance(STEP_MM)
    attempt._clock_origin -= STEP_S
    handlers.live_hold(False)
    page["real_seconds_held"] = time.monotonic() - held_at
    return store, attempt, streamed, page


def test_the_frames_streamed_while_held_are_the_replayed_cines_and_the_needle_moves_in_them(held_run, patient):
    store, attempt, streamed, page = held_run
    logged = store.actions(attempt.attempt_id)
    assert [a["type"] for a in logged[-ADVANCES - 1:]] == ["advance"] * ADVANCES + ["fluoro_shot"]
    shot = logged[-1]
    assert shot["held"] is True and shot["mode"] == "live"
    # The clock moved by hand, and the real time the advances took (however busy the machine).
    assert (ADVANCES + 1) * STEP_S <= shot["seconds"] <= (ADVANCES + 1) * STEP_S + page["real_seconds_held"] + 0.1
    assert attempt.held is None and attempt.last_shot.held and page["fluoro_src"] == attempt.last_shot.data_url

    resumed = LiveAttempt.resume(store, attempt.attempt_id, attempt.session.scenario, patient, attempt.session.tracer)
    frames, interval_s = resumed.cine(resumed.last_shot)
    assert interval_s == pytest.approx(1 / 15) and len(frames) == round(shot["seconds"] * 15)
    run = attempt.cine(attempt.last_shot)[0]
    for index, frame in streamed.items():
        assert jpeg_data_url(frame.pixels) == run[index] == frames[index]
    # The needle goes deeper frame by frame: along the path its tip took, each streamed frame is darker
    # (the monitor shows steel black) than the one before.
    carm = attempt.session.carm()
    tips = [carm.project(state.needle.tip) for state in attempt.session.states[-ADVANCES - 2:-1]]
    fractions = np.linspace(0.1, 0.9, 40)
    points = np.round(tips[0][None, :] + fractions[:, None] * (tips[-1] - tips[0])[None, :]).astype(int)
    along = [float(streamed[i].pixels[points[:, 1], points[:, 0]].astype(float).mean()) for i in sorted(streamed)]
    assert np.linalg.norm(tips[-1] - tips[0]) > 10 and np.all(np.diff(along) < -2), along
    # The hold is the run's last frame.
    assert resumed.last_shot.data_url == frames[-1] == attempt.last_shot.data_url


def test_a_held_runs_dose_is_its_frames_as_the_counter_counted_them(held_run):
    store, attempt, streamed, page = held_run
    shots = [shot for shot in attempt.shots]
    assert len(shots) == 2 and attempt.ledger.frames > 0
    seconds = store.actions(attempt.attempt_id)[-1]["seconds"]
    assert attempt.ledger.frames == tap_frames(15) + round(seconds * 15)  # the pulse's tap and every frame of the run


def test_live_cannot_be_held_twice_nor_another_shot_taken_while_it_is(held_run):
    store, attempt, streamed, page = held_run
    attempt.hold_live()
    with pytest.raises(SpinesimError, match="already running"):
        attempt.hold_live()
    with pytest.raises(SpinesimError, match="Release Live"):
        attempt.act({"type": "fluoro_shot"})
    attempt.release_live()
    with pytest.raises(SpinesimError, match="not running"):
        attempt.release_live()


@pytest.mark.parametrize("record, message", [
    ({"type": "fluoro_shot", "t": 5, "mode": "pulse", "held": True}, "a held run"),
    ({"type": "fluoro_shot", "t": 5, "mode": "live", "held": True}, "a held run"),
    ({"type": "fluoro_shot", "t": 5, "mode": "live", "seconds": 6, "held": True}, "start before"),
])
def test_a_held_run_is_a_live_run_with_its_seconds_before_it(record, message):
    with pytest.raises(SpinesimError, match=message):
        parse_action(record)
    assert parse_action(dict(record, mode="live", seconds=2.0)).held
