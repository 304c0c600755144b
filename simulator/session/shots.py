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

Noise: the hold keeps the shot's seed, every earlier frame a seed drawn from it and the frame's
number; a live frame holds the quanta of the frames the recursive filter has averaged so far
(at most ``RECURSIVE_FILTER_FRAMES``), a DSA frame one acquisition's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from simulator.imaging.dose import (PULSE_SECONDS, RECURSIVE_FILTER_FRAMES, Exposure, Technique, at_pulse_rate,
                                    beam_seconds, run_frames, shot_exposure, technique_for)
from simulator.imaging.fluoro import FluoroImage, render_fluoro
from simulator.session.fold import Session, SessionState


def shot_seed(scenario_seed: int, shot: int) -> int:
    """The quantum-noise seed of shot number ``shot`` (1-based) of an attempt.

    Examples
    --------
    >>> shot_seed(7, 1) == shot_seed(7, 1) != shot_seed(7, 2)
    True
    """
    return int(np.random.SeedSequence([scenario_seed, shot]).generate_state(1)[0])


def shown_at(state: SessionState, mode: str, seconds: float | None = None) -> float:
    """Session time (s) of the frame a shot's image shows: a pulse's moment, a run's last frame."""
    return state.t + (0.0 if mode == "pulse" else (seconds or PULSE_SECONDS))


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


def render_run(session: Session, state: SessionState, mode: str, seconds: float | None = None,
               frames_per_second: float | None = None, *, pixels: int | None = None,
               technique: Technique = Technique()) -> CineRun:
    """The cine of the live or DSA run that left ``state`` (one of ``session.states``).

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
    """
    carm = session.carm(state)
    if pixels is not None:
        carm = carm.with_(detector_pixels=pixels)
    fluoro = at_pulse_rate(technique, frames_per_second)
    run = technique_for(mode, fluoro, seconds)
    rate = run.frames_per_second  # a live run's pulse rate; DSA's own acquisition rate
    count = run_frames(beam_seconds(seconds), rate)
    end = shown_at(state, mode, seconds)
    times = tuple(end - (count - 1 - i) / rate for i in range(count))
    seed = shot_seed(session.scenario.seed, state.fluoro_shots)
    mask = render_fluoro(session.anatomy, carm, state.needle, dose=run, seed=seed + 1) if mode == "dsa" else None
    frames = []
    for i, t in enumerate(times):
        quanta = 1 if mode == "dsa" else min(i + 1, RECURSIVE_FILTER_FRAMES)
        frames.append(render_fluoro(session.anatomy, carm, state.needle, session.contrast(t),
                                    dose=replace(run, averaged_frames=quanta),
                                    seed=seed if i == count - 1 else frame_seed(seed, i), subtract=mask))
    return CineRun(frames=tuple(frames), times_s=times, frames_per_second=rate,
                   frame_exposure=shot_exposure(session.anatomy, carm, mode, fluoro))


def render_shot(session: Session, state: SessionState, mode: str, seconds: float | None = None,
                frames_per_second: float | None = None, *, pixels: int | None = None) -> FluoroImage:
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
    """
    carm = session.carm(state)
    if pixels is not None:
        carm = carm.with_(detector_pixels=pixels)
    seed = shot_seed(session.scenario.seed, state.fluoro_shots)
    technique = technique_for(mode, at_pulse_rate(Technique(), frames_per_second), seconds=seconds)
    mask = render_fluoro(session.anatomy, carm, state.needle, dose=technique, seed=seed + 1) if mode == "dsa" else None
    return render_fluoro(session.anatomy, carm, state.needle, session.contrast(shown_at(state, mode, seconds)),
                         dose=technique, seed=seed, subtract=mask)
