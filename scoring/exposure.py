"""Radiation of an attempt from its fluoroscopy shots, without rendering a single image, and where it came from.

Each ``fluoro_shot`` is counted by :func:`simulator.imaging.dose.add_fluoro_shot`, the function the web
app's live dose counter counts with too: the exposure control metered on a few rays through the
CT (never a DRR), a pulse one frame, live fluoroscopy and DSA runs ``seconds x frame rate`` frames at
their own technique.

The attempt's dose-area product is read against the national diagnostic reference level (DRL) of its
procedure (where the model can be held to it, :data:`REFERENCE_LEVELS_MGY_CM2`): the 75th percentile of
the doses of all centres, which a department's typical dose should not exceed (Belgian DRLs of 2011 for
pain procedures, as Hustinx, Steyaert, le Polain de Waroux and Forget compare them with 7664 procedures of a teaching hospital, Radiat Prot Dosimetry 179:271, 2018:
transforaminal 0.3 mGy·m² = 3000 mGy·cm², medial branch 0.25 mGy·m² = 2500 mGy·cm², epidural 0.05 mGy·m²
= 500 mGy·cm²; the hospital's interquartile ranges were 499-1067, 194-472 and 174-550 mGy·cm²). The
procedures the Belgian list leaves out take the level of the nearest one [ED]. :func:`dose_by_habit`
splits the DAP by the habit that gave it, so that the advice names the one to change.
"""

from __future__ import annotations

from simulator.imaging.carm import Collimation
from simulator.imaging.dose import DoseLedger, Technique, add_fluoro_shot, at_pulse_rate
from simulator.session.history import Attempt

# Diagnostic reference levels of DAP, mGy·cm², per procedure (Hustinx et al. 2018, above). [ED] where the
# Belgian list has none: a facet joint injection and a radiofrequency ablation work on the medial branch's
# bone under the same views; a sacroiliac joint injection is one needle into a joint under an oblique,
# given the medial branch's level too; the epidural level (500 mGy·cm²) holds for the interlaminar and the
# caudal epidural alike. On the built-in patient (2 mm) the expert's interlaminar epidurals of the library give
# 128-157 mGy·cm² at L3-L4 and L4-L5, 279 at L5-S1, and its caudal epidurals 407, their epidurogram run
# collimated on the contralateral oblique or lateral through the pelvis (simulator.case.planner.
# COLLIMATED_DEPTH_VIEW); uncollimated, with the caudal needle watched down its barrel, those two gave 704 and
# 1284: the lateral through the pelvis at L5-S1 is 32 cm of body, 33 cm water-equivalent at the 105-115 kVp the
# exposure control climbs to, against 21 cm and 23 cm on AP, so one of its frames costs 5-10 times an AP's.
REFERENCE_LEVELS_MGY_CM2: dict[str, float] = {
    "transforaminal_epidural": 3000.0, "medial_branch_block": 2500.0, "facet_intra_articular": 2500.0,
    "radiofrequency_ablation": 2500.0, "sacroiliac_joint_injection": 2500.0,
    "interlaminar_epidural": 500.0, "caudal_epidural": 500.0,
}
# Where an attempt's dose came from, in the words the advice uses, and the fix for each habit.
HABITS: dict[str, tuple[str, str]] = {
    "live": ("live fluoroscopy", "use single pulses while positioning and a short live run for the contrast test "
                                 "only"),
    "dsa": ("DSA runs", "run DSA once, for the vascular test, and keep it to a few seconds"),
    "magnification": ("magnified views", "stay in the full field: a magnification mode multiplies the dose of "
                                         "every frame; magnify only for a final check"),
    "open_field": ("an uncollimated field", "collimate to the target: the shutters cut the dose-area product in "
                                            "proportion to the field"),
    "pulses": ("single pulses", "take fewer pulses: align once, then stay in the trajectory view while advancing"),
}


def attempt_dose(attempt: Attempt, technique: Technique = Technique()) -> DoseLedger:
    """The radiation of every ``fluoro_shot`` of the attempt, in order."""
    ledger = DoseLedger()
    for step in attempt.steps:
        if step.action.type == "fluoro_shot":
            carm = attempt.session.carm(step.after)
            ledger = add_fluoro_shot(ledger, attempt.session.anatomy, carm, step.action.mode, step.action.seconds,
                                     at_pulse_rate(technique, step.action.frames_per_second))
    return ledger


def dose_by_habit(attempt: Attempt, technique: Technique = Technique()) -> dict[str, float]:
    """DAP of the attempt (Gy·cm²) by the habit that gave it (:data:`HABITS`): a live or DSA run counts to its
    kind; a pulse to the magnification mode it was taken in, else to the open field when the shutters were
    open, else to pulses. Sums to :func:`attempt_dose`'s DAP."""
    shares = dict.fromkeys(HABITS, 0.0)
    shots = [step for step in attempt.steps if step.action.type == "fluoro_shot"]
    for step, (kind, _, _, dap) in zip(shots, attempt_dose(attempt, technique).history, strict=True):
        carm = attempt.session.carm(step.after)
        if kind in ("live", "dsa"):
            shares[kind] += dap
        elif carm.full_field_mm is not None:
            shares["magnification"] += dap
        elif carm.collimation == Collimation():
            shares["open_field"] += dap
        else:
            shares["pulses"] += dap
    return shares


def main_habit(shares: dict[str, float]) -> str | None:
    """The habit that gave the most dose (None for no dose).

    >>> main_habit({"live": 0.4, "dsa": 1.1, "pulses": 0.2}), main_habit({"live": 0.0})
    ('dsa', None)
    """
    habit = max(shares, key=shares.get, default=None)
    return habit if habit is not None and shares[habit] > 0 else None
