"""The fluoroscopy image of each shot of an attempt, rendered again exactly from its action log.

A shot's image depends only on the session state the ``fluoro_shot`` action left (C-arm pose,
needle, injections so far) and on a noise seed drawn from the scenario seed and the shot's number,
so ``spinesim run --images``, the web app's monitor and an instructor's replay all show the same
pixels for the same shot.

Timing: a pulse shows the state at the moment of the shot; live fluoroscopy and DSA runs of
``seconds`` show their last frame, the one the monitor holds when the beam stops (contrast has
spread for those seconds more). DSA subtracts a mask frame taken at the same pose without contrast
(clinical.md §2.6: DSA shows the vascular uptake against a subtracted background), both acquired
at the DSA technique (``simulator.imaging.dose.technique_for``: far more dose per frame, less noise).
"""

from __future__ import annotations

import numpy as np

from simulator.imaging.dose import PULSE_SECONDS, technique_for
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


def render_shot(session: Session, state: SessionState, mode: str, seconds: float | None = None, *,
                pixels: int | None = None) -> FluoroImage:
    """The image of the shot that left ``state`` (one of ``session.states``), taken in ``mode``.

    Parameters
    ----------
    session : Session
        The attempt (its anatomy, target and injections).
    state : SessionState
        The state right after the ``fluoro_shot`` action.
    mode : {"pulse", "live", "dsa"}
    seconds : float, optional
        Beam-on time of a live or DSA run, s (default one pulse).
    pixels : int, optional
        Detector pixels across (default the C-arm's own), e.g. for a smaller report image.
    """
    carm = session.carm(state)
    if pixels is not None:
        carm = carm.with_(detector_pixels=pixels)
    seed = shot_seed(session.scenario.seed, state.fluoro_shots)
    technique = technique_for(mode, seconds=seconds)
    mask = render_fluoro(session.anatomy, carm, state.needle, dose=technique, seed=seed + 1) if mode == "dsa" else None
    return render_fluoro(session.anatomy, carm, state.needle, session.contrast(shown_at(state, mode, seconds)),
                         dose=technique, seed=seed, subtract=mask)
