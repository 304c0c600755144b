"""Radiation of an attempt from its fluoroscopy shots, without rendering a single image.

Each ``fluoro_shot`` is counted by :func:`simulator.imaging.dose.add_fluoro_shot`, the function the web
app's live dose counter counts with too: the exposure control metered on a few rays through the
CT (never a DRR), a pulse one frame, live fluoroscopy and DSA runs ``seconds x frame rate`` frames at
their own technique.
"""

from __future__ import annotations

from simulator.imaging.dose import DoseLedger, Technique, add_fluoro_shot, at_pulse_rate
from simulator.session.history import Attempt


def attempt_dose(attempt: Attempt, technique: Technique = Technique()) -> DoseLedger:
    """The radiation of every ``fluoro_shot`` of the attempt, in order."""
    ledger = DoseLedger()
    for step in attempt.steps:
        if step.action.type == "fluoro_shot":
            carm = attempt.session.carm(step.after)
            ledger = add_fluoro_shot(ledger, attempt.session.anatomy, carm, step.action.mode, step.action.seconds,
                                     at_pulse_rate(technique, step.action.frames_per_second))
    return ledger
