"""The fluoroscopy image of each shot of an attempt, and the cine of each run, rendered again exactly
from its action log.

A shot's image depends only on the session state the ``fluoro_shot`` action left (C-arm pose,
needle, injections so far) and on a noise seed drawn from the scenario seed and the shot's number,
so ``spinesim run --images``, the web app's monitor and an instructor's replay all show the same
pixels for the same shot.

Timing: a pulse shows the state at the moment of the shot. Live fluoroscopy and DSA runs of
``seconds`` are cines (:func:`render_run`): ``seconds x frames_per_second`` frames
(:func:`simulator.imaging.dose.run_frames`) one pulse interval apart, the last at the end of the run,
each showing the contrast as it is at its moment (a vessel filling and washing out, an epidurogram
spreading). The last frame is the last-image hold: the image the monitor keeps when the beam stops,
and the one :func:`render_shot` returns. DSA subtracts a mask frame taken at the same pose without
contrast (clinical.md §2.6: DSA shows the vascular uptake against a subtracted background), all
acquired at the DSA technique (``simulator.imaging.dose.technique_for``: far more dose per frame,
less noise, a few frames per second).

A held run (``fluoro_shot`` with ``held``: the trainee held Live, or the foot pedal, while advancing) is
recorded when the beam stops: its ``seconds`` lie before the action. Frame ``i`` shows the moment
``start + i / rate`` and the session as it stood then (:func:`held_frame_state`: the needle of the last
action before it), so the frames streamed to the monitor while it was held and the frames of its cine
replayed from the log are the same frames (:func:`render_held_frame` draws both); its hold is its last
frame.

Technique: every frame is made at the kVp and tube charge the C-arm's exposure control sets for the patient
at the shot's pose (:func:`simulator.imaging.dose.shot_technique`: up its kV-mA curve through a thick
lateral or the pelvis), the same the dose counter counts, so the image's spectrum and noise and the
attempt's dose come from one choice.

Resolution: a live frame projects the anatomy with a ray per few detector pixels
(:func:`simulator.imaging.fluoro.live_projection_cell`: as fine as the CT's voxels, a quarter of the
rays for the 1 mm spine), so a new C-arm pose while Live is held gives its image within a pulse or
two; pulse shots and DSA project a ray per pixel.

Noise: the hold keeps the shot's seed, every earlier frame a seed drawn from it and the frame's
number; a live frame holds the quanta of the frames the recursive filter has averaged so far
(at most ``RECURSIVE_FILTER_FRAMES``), a DSA frame one acquisition's. Lag: the filter averages what
those frames showed, so in a held run a needle that moved during them shows at each place it stood
(:func:`earlier_needles`), the new part faint at first, the old fading: the lag of recursive filtering
("it can reduce temporal resolution and create a lag, particularly if there is excessive movement
between frames", radiopaedia.org/articles/recursive-filtration).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from anatomy_models.errors import SpinesimError
from simulator.imaging.dose import (PULSE_SECONDS, RECURSIVE_FILTER_FRAMES, Exposure, Technique, at_pulse_rate,
                                    beam_seconds, run_frames, shot_exposure, shot_technique, technique_for)
from simulator.imaging.fluoro import FluoroImage, live_projection_cell, render_fluoro
from simulator.session.fold import Session, SessionState


def shot_seed(scenario_seed: int, shot: int) -> int:
    """The quantum-noise seed of shot number ``shot`` (1-based) of an attempt.

    Examples
    --------
    >>> shot_seed(7, 1) == shot_seed(7, 1) != shot_seed(7, 2)
    True
    """
    return int(np.random.SeedSequence([scenario_seed, shot]).generate_state(1)[0])


def shown_at(state: SessionState, mode: str, seconds: float | None = None, held: bool = False) -> float:
    """Session time (s) of the frame a shot's image shows: a pulse's moment, a run's last frame (a held
    run's ends when it is recorded)."""
    return state.t + (0.0 if mode == "pulse" or held else (seconds or PULSE_SECONDS))


@dataclass(frozen=True)
class CineRun:
    """A live or DSA run as the monitor plays it.

    Parameters
    ----------
    frames : tuple of FluoroImage
        In order; the last is the last-image hold.
    times_s : tuple of float
        Session time each frame shows, s.
    frames_per_second : float
        Pulse (or acquisition) rate.
    frame_exposure : Exposure
        The dose of one frame, metered as the dose counter meters it
        (:func:`simulator.imaging.dose.shot_exposure`).
    """

    frames: tuple[FluoroImage, ...]
    times_s: tuple[float, ...]
    frames_per_second: float
    frame_exposure: Exposure

    @property
    def hold(self) -> FluoroImage:
        """The last-image hold: the frame the monitor keeps when the beam stops."""
        return self.frames[-1]

    @property
    def reference_air_kerma_mgy(self) -> float:
        """Reference air kerma of the whole run: every frame's, mGy."""
        return self.frame_exposure.reference_air_kerma_mgy * len(self.frames)

    @property
    def dose_area_product_gy_cm2(self) -> float:
        """Dose-area product of the whole run, Gy cm^2."""
        return self.frame_exposure.dose_area_product_gy_cm2 * len(self.frames)


def frame_seed(seed: int, frame: int) -> int:
    """The noise seed of frame ``frame`` (0-based) of a run whose hold has ``seed``.

    >>> frame_seed(5, 0) == frame_seed(5, 0) != frame_seed(5, 1)
    True
    """
    return int(np.random.SeedSequence([seed, frame + 1]).generate_state(1)[0])


def held_frame_state(states: list[SessionState], at_s: float) -> SessionState:
    """The session as it stood at time ``at_s`` (s) of a held run: the state the last action at or before
    it left (``states`` in order, the first the attempt's start).

    >>> from scenarios.poses import CArmPose
    >>> states = [SessionState(carm=CArmPose(), t=t) for t in (0.0, 1.0, 1.0, 2.5)]
    >>> held_frame_state(states, 1.0) is states[2], held_frame_state(states, 2.4) is states[2]
    (True, True)
    """
    return next(state for state in reversed(states) if state.t <= at_s)


def held_frame_time(start_s: float, index: int, frames_per_second: float) -> float:
    """Session time (s) of frame ``index`` (0-based) of a held run that began at ``start_s``: one a pulse,
    to the microsecond, so that the run's start read from its log (its end less its seconds, a float
    subtraction) gives the moments the stream used.

    >>> held_frame_time(14.445 - 2.1, 3, 15.0), [held_frame_time(2.0, i, 4.0) for i in range(3)]
    (12.545, [2.0, 2.25, 2.5])
    """
    return round(start_s + index / frames_per_second, 6)


def held_frame_times(start_s: float, count: int, frames_per_second: float) -> tuple[float, ...]:
    """Session times (s) of the ``count`` frames of a held run that began at ``start_s``."""
    return tuple(held_frame_time(start_s, i, frames_per_second) for i in range(count))


def _states_until(session: Session, state: SessionState) -> list[SessionState]:
    """``session.states`` up to and including ``state`` (found by identity: states hold arrays)."""
    return session.states[:next(i for i, s in enumerate(session.states) if s is state) + 1]


def render_held_frame(session: Session, state: SessionState, at_s: float, index: int, shot: int,
                      technique: Technique, *, pixels: int | None = None) -> FluoroImage:
    """Frame ``index`` (0-based) of the held live run that is shot number ``shot`` of the attempt, showing
    ``state`` (:func:`held_frame_state` at ``at_s``) with the contrast as it is at ``at_s``; the web's
    monitor streams these while Live is held and :func:`render_run` replays them, pixel for pixel.

    ``technique``: the live technique at the run's pulse rate (:func:`technique_for`); the frame is made at the
    kVp and tube charge the exposure control sets at the state's pose (:func:`shot_technique`)."""
    carm = session.carm(state)
    exposure = shot_technique(session.anatomy, carm, "live", technique)
    if pixels is not None:
        carm = carm.with_(detector_pixels=pixels)
    held = min(index + 1, RECURSIVE_FILTER_FRAMES)
    dose = replace(exposure, averaged_frames=held)
    return render_fluoro(session.anatomy, carm, state.needle, session.contrast(at_s), dose=dose,
                         seed=frame_seed(shot_seed(session.scenario.seed, shot), index),
                         projection_cell=live_projection_cell(session.anatomy, carm),
                         needle_trail=earlier_needles(_states_until(session, state), at_s, held,
                                                      technique.frames_per_second))


def earlier_needles(states: list[SessionState], at_s: float, held: int, frames_per_second: float) -> tuple:
    """The needle of each of the ``held - 1`` frames before the one at ``at_s`` (s) that the recursive filter
    still averages into it, newest first, as the session (``states`` in order) stood at each; empty when
    the needle stood still over them (the frame then needs no averaging of needles).

    Their moments are found from ``at_s`` alone (one pulse apart, to the microsecond), so a frame streamed
    while Live is held and the same frame of the replayed cine average the same needles.

    >>> from scenarios.poses import CArmPose
    >>> states = [SessionState(carm=CArmPose(), t=0.0)]
    >>> earlier_needles(states, 1.0, 4, 15.0)
    ()
    """
    needle = held_frame_state(states, at_s).needle
    # Never before the first state (a microsecond's rounding must not lose it).
    moments = (max(round(at_s - k / frames_per_second, 6), states[0].t) for k in range(1, held))
    needles = tuple(held_frame_state(states, moment).needle for moment in moments)
    return () if all(earlier is needle for earlier in needles) else needles


#: The frames a cine keeps: a C-arm's loop store replays the last frames of a run, not all of a long one
#: (10 s at the default 15 pulses/s) [ED]. A run may last 600 s; all its frames (1 MB each at 512 px) would
#: not fit in a workstation's memory.
CINE_LOOP_FRAMES = 150


def render_run(session: Session, state: SessionState, mode: str, seconds: float | None = None,
               frames_per_second: float | None = None, *, pixels: int | None = None,
               technique: Technique = Technique(), held: bool = False) -> CineRun:
    """The cine of the live or DSA run that left ``state`` (one of ``session.states``): its last
    :data:`CINE_LOOP_FRAMES` frames.

    Parameters
    ----------
    session : Session
        The attempt (its anatomy, target and injections).
    state : SessionState
        The state right after the ``fluoro_shot`` action.
    mode : {"live", "dsa"}
    seconds : float, optional
        Beam-on time, s (default one pulse time).
    frames_per_second : float, optional
        A live run's pulse rate (default the technique's); DSA runs at its acquisition rate.
    pixels : int, optional
        Detector pixels across (default the C-arm's own).
    technique : Technique
        Fluoroscopy technique (the session's C-arm).
    held : bool
        A held live run (the ``fluoro_shot``'s ``held``): its ``seconds`` end at ``state.t`` and each frame
        shows the session as it stood at its moment (:func:`render_held_frame`).
    """
    carm = session.carm(state)
    fluoro = at_pulse_rate(technique, frames_per_second)
    run = shot_technique(session.anatomy, carm, mode, fluoro, seconds)  # the exposure control's kVp and mAs
    frame_exposure = shot_exposure(session.anatomy, carm, mode, fluoro)
    if pixels is not None:
        carm = carm.with_(detector_pixels=pixels)
    rate = run.frames_per_second  # a live run's pulse rate; DSA's own acquisition rate
    count = run_frames(beam_seconds(seconds), rate)
    first = max(0, count - CINE_LOOP_FRAMES)
    if held:
        times = held_frame_times(state.t - seconds, count, rate)[first:]
        states = _states_until(session, state)
        frames = tuple(render_held_frame(session, held_frame_state(states, t), t, i, state.fluoro_shots, run,
                                         pixels=pixels) for i, t in enumerate(times, start=first))
        return CineRun(frames=frames, times_s=times, frames_per_second=rate,
                       frame_exposure=frame_exposure)
    end = shown_at(state, mode, seconds)
    times = tuple(end - (count - 1 - i) / rate for i in range(first, count))
    seed = shot_seed(session.scenario.seed, state.fluoro_shots)
    mask = render_fluoro(session.anatomy, carm, state.needle, dose=run, seed=seed + 1) if mode == "dsa" else None
    cell = live_projection_cell(session.anatomy, carm) if mode == "live" else 1
    frames = []
    for i, t in enumerate(times, start=first):
        quanta = 1 if mode == "dsa" else min(i + 1, RECURSIVE_FILTER_FRAMES)
        frames.append(render_fluoro(session.anatomy, carm, state.needle, session.contrast(t),
                                    dose=replace(run, averaged_frames=quanta),
                                    seed=seed if i == count - 1 else frame_seed(seed, i), subtract=mask,
                                    projection_cell=cell))
    return CineRun(frames=tuple(frames), times_s=times, frames_per_second=rate,
                   frame_exposure=frame_exposure)


def render_shot(session: Session, state: SessionState, mode: str, seconds: float | None = None,
                frames_per_second: float | None = None, *, pixels: int | None = None, binned: bool = False,
                held: bool = False) -> FluoroImage:
    """The image of the shot that left ``state`` (one of ``session.states``), taken in ``mode``: a
    pulse's image, or a run's last-image hold (the last frame of :func:`render_run`, rendered alone).

    Parameters
    ----------
    session : Session
        The attempt (its anatomy, target and injections).
    state : SessionState
        The state right after the ``fluoro_shot`` action.
    mode : {"pulse", "live", "dsa"}
    seconds : float, optional
        Beam-on time of a live or DSA run, s (default one pulse).
    frames_per_second : float, optional
        The shot's pulse rate (default the C-arm's own).
    pixels : int, optional
        Detector pixels across (default the C-arm's own), e.g. for a smaller report image.
    binned : bool
        With ``pixels`` (a whole fraction of the C-arm's): each pixel is a bin of the C-arm's detector seen
        by one of its own rays (:meth:`simulator.imaging.carm.CArm.binned`), so the full image rendered next
        traces only its other rays: a new pose's preview.
    held : bool
        A held live run: its hold is its last frame (:func:`render_held_frame`).
    """
    if held:
        run = technique_for(mode, at_pulse_rate(Technique(), frames_per_second), seconds=seconds)
        count = run_frames(seconds, run.frames_per_second)
        last_s = held_frame_times(state.t - seconds, count, run.frames_per_second)[-1]
        states = _states_until(session, state)
        return render_held_frame(session, held_frame_state(states, last_s), last_s, count - 1, state.fluoro_shots,
                                 run, pixels=pixels)
    carm = session.carm(state)
    technique = shot_technique(session.anatomy, carm, mode, at_pulse_rate(Technique(), frames_per_second), seconds)
    if pixels is not None and binned:
        if carm.detector_pixels % pixels:
            raise SpinesimError(f"an image of {pixels} pixels across is not a binning of the C-arm's "
                                f"{carm.detector_pixels}", hint="ask for a whole fraction of its pixels")
        carm = carm.binned(carm.detector_pixels // pixels)
    elif pixels is not None:
        carm = carm.with_(detector_pixels=pixels)
    seed = shot_seed(session.scenario.seed, state.fluoro_shots)
    mask = render_fluoro(session.anatomy, carm, state.needle, dose=technique, seed=seed + 1) if mode == "dsa" else None
    return render_fluoro(session.anatomy, carm, state.needle, session.contrast(shown_at(state, mode, seconds)),
                         dose=technique, seed=seed, subtract=mask,
                         projection_cell=live_projection_cell(session.anatomy, carm) if mode == "live" else 1)
