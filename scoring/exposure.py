"""Radiation of an attempt from its fluoroscopy shots, without rendering a single image.

Each shot's dose follows the fluoroscopy model (:mod:`simulator.dose`): automatic exposure control
sets the tube charge from the patient's transmission where it meters, the median line integral of the
exposed body in the central disc of the field (``simulator.fluoro``: radius a quarter of the detector
width). Here that median is metered on a few rays through the disc (the CT's attenuation sampled
along each ray) instead of a whole DRR, so scoring stays cheap and never calls the renderer. A pulse
is one frame; live fluoroscopy and DSA runs are ``seconds x frame rate`` frames.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from anatomy_models.anatomy import Anatomy
from anatomy_models.tissues import FLUORO_EFFECTIVE_KEV, hu_to_mu
from scoring.attempt import Attempt
from simulator.carm import CArm
from simulator.dose import DoseLedger, Technique, exposure_for
from simulator.session import carm_of

# The metering disc and the "is it body" threshold of the renderer's exposure control
# (simulator.fluoro: _MEASURING_RADIUS and _BODY_THRESHOLD).
METERING_RADIUS = 0.25
BODY_LINE_INTEGRAL = 0.05
# Rays: the centre and two rings of eight in the metering disc; samples every half voxel along each,
# over this far on either side of the isocentre (mm) [ED: the lumbar torso is < 50 cm deep].
_RINGS = (0.5, 1.0)
_HALF_LENGTH_MM = 300.0
_AIR_HU = -1000.0


def metering_rays(carm: CArm) -> np.ndarray:
    """Unit LPS directions (source -> detector) of the rays the exposure control meters on, (17, 3)."""
    centre = (carm.detector_pixels - 1) / 2.0
    radius = METERING_RADIUS * carm.detector_pixels
    angles = np.linspace(0.0, 2 * np.pi, 8, endpoint=False)
    u = [centre] + [centre + f * radius * np.cos(a) for f in _RINGS for a in angles]
    v = [centre] + [centre + f * radius * np.sin(a) for f in _RINGS for a in angles]
    return carm.ray_directions(np.array(u), np.array(v))


def metered_transmission(anatomy: Anatomy, carm: CArm, kev: float = FLUORO_EFFECTIVE_KEV) -> float:
    """``exp(-median p)`` of the body on the metering rays: what automatic exposure control sees."""
    step = 0.5 * float(np.min(anatomy.ct.spacing))
    distances = carm.source_to_isocenter_mm + np.arange(-_HALF_LENGTH_MM, _HALF_LENGTH_MM, step)
    points = carm.source[None, None, :] + distances[None, :, None] * metering_rays(carm)[:, None, :]
    ijk = anatomy.ct.world_to_voxel(points.reshape(-1, 3)).T
    hu = ndimage.map_coordinates(anatomy.ct.array, ijk, output=np.float32, order=1, mode="constant", cval=_AIR_HU,
                                 prefilter=False)
    line_integrals = (hu_to_mu(kev)(hu).reshape(points.shape[:2]) * step).sum(axis=1)
    body = line_integrals[line_integrals > BODY_LINE_INTEGRAL]
    return float(np.exp(-np.median(body))) if body.size else 1.0


def attempt_dose(attempt: Attempt, technique: Technique = Technique()) -> DoseLedger:
    """The radiation of every ``fluoro_shot`` of the attempt, in order."""
    ledger = DoseLedger()
    transmissions: dict[bytes, float] = {}
    anatomy = attempt.session.anatomy
    for step in attempt.steps:
        if step.action.type != "fluoro_shot":
            continue
        carm = carm_of(step.after.carm or {}, attempt.session.target.point)
        key = np.round(carm.projection_matrix, 6).tobytes()
        if key not in transmissions:
            transmissions[key] = metered_transmission(anatomy, carm)
        exposure = exposure_for(carm, technique, transmissions[key])
        if step.action.mode == "pulse" and step.action.seconds is None:
            ledger = ledger.add_shot(exposure)
        else:
            ledger = ledger.add_live(exposure, step.action.beam_seconds)
    return ledger
