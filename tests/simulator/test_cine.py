"""Live fluoroscopy and DSA runs as cines (simulator.session.shots.render_run): frames at the pulse
rate, the contrast's time course in them, the last-image hold, the dose frame by frame, and a replay
that reproduces every frame."""

import numpy as np
import pytest

from scenarios.schema import load_scenario
from simulator.imaging.dose import DoseLedger, Technique, add_fluoro_shot, at_pulse_rate
from simulator.session import shots
from simulator.session.actions import action_record
from simulator.session.fold import Session
from simulator.session.replay import replay
from simulator.session.shots import render_run, render_shot
from tests.simulator.attempts import nearest_points, place_toward

PIXELS = 96


@pytest.fixture(scope="module")
def arterial_run(small_spine):
    """A transforaminal needle in the L4 radicular artery, 1 mL of contrast at 12 s and a 4 s live run
    at 4 pulses/s started with the injection (the session, the run's step and its cine)."""
    session = Session(load_scenario("tfesi-default"), small_spine)
    artery = nearest_points(session, "radicular_artery.L4.left", session.target.point)
    depth = place_toward(session, artery, root_clearance_mm=0.0, avoid_groups=("dural_sac",),
                         avoid_tissues=("disc_annulus", "disc_nucleus", "air"))
    session.apply({"type": "advance", "t": 10, "mm": depth})
    assert session.apply({"type": "inject_contrast", "t": 12, "ml": 1.0})[0].data["pattern"] == "arterial"
    session.apply({"type": "fluoro_shot", "t": 12, "mode": "live", "seconds": 4.0, "frames_per_second": 4.0})
    step = session.steps[-1]
    return session, step, render_run(session, step.after, "live", 4.0, 4.0, pixels=PIXELS)


def test_a_run_has_its_pulse_rate_times_its_length_in_frames_ending_with_the_hold(arterial_run):
    session, step, run = arterial_run
    assert len(run.frames) == 16 and run.frames_per_second == 4.0
    np.testing.assert_allclose(np.diff(run.times_s), 0.25)
    assert run.times_s[-1] == pytest.approx(16.0)
    held = render_shot(session, step.after, "live", 4.0, 4.0, pixels=PIXELS)
    np.testing.assert_array_equal(run.hold.pixels, held.pixels)
    assert len({frame.seed for frame in run.frames}) == 16  # each frame its own quantum noise


def test_the_artery_fills_then_washes_out_within_about_a_second(arterial_run):
    """The iodine the frames see (their line integrals above the anatomy's) rises while the bolus runs
    in (2 s at 0.5 mL/s) and is below a tenth of its peak at most 1.25 s after it."""
    session, step, run = arterial_run
    empty = render_run(session, session.states[step.number - 2], "live", 0.25, 4.0, pixels=PIXELS).hold
    iodine = np.array([float((frame.line_integrals - empty.line_integrals).sum()) for frame in run.frames])
    times = np.asarray(run.times_s) - 12.0
    peak = int(np.argmax(iodine))
    assert times[peak] == pytest.approx(2.0) and np.all(np.diff(iodine[:peak + 1]) > 0)
    cleared = times[peak:][iodine[peak:] < 0.1 * iodine[peak]][0]
    assert cleared - times[peak] <= 1.25
    assert iodine[-1] < 0.05 * iodine[peak]  # 2 s after the peak: exp(-4)


def test_a_runs_dose_is_its_frames_dose_as_the_counter_counts_it(arterial_run):
    session, step, run = arterial_run
    carm = session.carm(step.after)  # the session's C-arm, as the report counts it, whatever the cine's pixels
    ledger = add_fluoro_shot(DoseLedger(), session.anatomy, carm, "live", 4.0, at_pulse_rate(Technique(), 4.0))
    assert ledger.frames == len(run.frames)
    assert run.reference_air_kerma_mgy == pytest.approx(ledger.reference_air_kerma_mgy, rel=1e-12)
    assert run.dose_area_product_gy_cm2 == pytest.approx(ledger.dose_area_product_gy_cm2, rel=1e-12)
    faster = add_fluoro_shot(DoseLedger(), session.anatomy, carm, "live", 4.0, at_pulse_rate(Technique(), 15.0))
    assert faster.frames == 60 and faster.reference_air_kerma_mgy == pytest.approx(15 / 4 * run.reference_air_kerma_mgy)


def test_a_replayed_run_shows_the_same_frames(arterial_run, small_spine):
    session, step, run = arterial_run
    again = replay(session.scenario, small_spine, [action_record(a) for a in session.actions], tracer=session.tracer)
    rerun = render_run(again, again.steps[step.number - 1].after, "live", 4.0, 4.0, pixels=PIXELS)
    assert rerun.times_s == run.times_s
    for first, second in zip(run.frames, rerun.frames, strict=True):
        np.testing.assert_array_equal(first.pixels, second.pixels)


def test_a_dsa_run_is_acquired_at_its_own_rate_against_one_mask(arterial_run):
    session, step, _ = arterial_run
    dsa = render_run(session, step.after, "dsa", 2.0, pixels=PIXELS)
    assert len(dsa.frames) == 6 and all(frame.subtracted for frame in dsa.frames)
    np.testing.assert_array_equal(dsa.hold.pixels, render_shot(session, step.after, "dsa", 2.0, pixels=PIXELS).pixels)


def test_a_long_run_keeps_its_last_frames_as_a_c_arms_loop_store_does(arterial_run, monkeypatch):
    """A run may last 600 s (9000 frames at 15 pulses/s, 1 MB each): its cine is its last CINE_LOOP_FRAMES
    frames, the same pixels as the full run's last ones (each frame's noise and filter from its place in the run)."""
    session, step, run = arterial_run
    monkeypatch.setattr(shots, "CINE_LOOP_FRAMES", 5)
    loop = render_run(session, step.after, "live", 4.0, 4.0, pixels=PIXELS)
    assert loop.times_s == run.times_s[-5:]
    for kept, full in zip(loop.frames, run.frames[-5:]):
        np.testing.assert_array_equal(kept.pixels, full.pixels)
