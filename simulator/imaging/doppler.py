"""Colour Doppler over a region of interest of a B-mode frame, from the anatomy's vessels.

What a sonographer switches on to keep a needle out of a vessel: inside a box on the B-mode frame,
blood moving along the beam is painted red (toward the probe) or blue (away), brighter the faster,
wrapping round (aliasing) beyond the velocity scale; flow across the beam (at 90 degrees) and slow
flow below the wall filter stay grey.

Flow comes from the labelled vessels (tissue ``blood``): each vessel's flow runs along its long axis
(the principal axis of its voxels), arteries away from the heart (caudally; a radicular artery
toward the canal), veins toward it (cranially), at a mean speed per vessel kind [ED: adult aorta
~40-100 cm/s, infrarenal IVC ~20 cm/s, iliac arteries ~40 cm/s, radicular arteries a few cm/s]
with a parabolic profile across the lumen (fastest on the axis). Not modelled: pulsatility, colour
speckle and blooming, the angle of a steered colour box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from anatomy_models.errors import SpinesimError

# Mean speed (cm/s) and direction rule of each vessel kind, by the label's first name part [ED].
VESSEL_FLOW: dict[str, tuple[float, str]] = {
    "aorta": (60.0, "caudal"), "common_iliac_artery": (40.0, "caudal"),
    "inferior_vena_cava": (20.0, "cranial"), "common_iliac_vein": (15.0, "cranial"),
    "radicular_artery": (8.0, "medial"),
}
# Default colour settings [ED]: velocity scale (the Nyquist limit, cm/s) and wall filter (cm/s).
SCALE_CM_S = 30.0
WALL_FILTER_CM_S = 2.0


@dataclass(frozen=True)
class DopplerBox:
    """The colour region of interest on a frame, in pixels (rows ``top`` to ``bottom``, columns
    ``left`` to ``right``, ends excluded), with its velocity scale and wall filter (cm/s)."""

    top: int
    bottom: int
    left: int
    right: int
    scale_cm_s: float = SCALE_CM_S
    wall_filter_cm_s: float = WALL_FILTER_CM_S

    def __post_init__(self) -> None:
        if not (0 <= self.top < self.bottom and 0 <= self.left < self.right):
            raise SpinesimError(f"a colour box needs top < bottom and left < right (pixels), got {self}")
        if not 0.0 <= self.wall_filter_cm_s < self.scale_cm_s:
            raise SpinesimError(f"the wall filter ({self.wall_filter_cm_s} cm/s) must be below the velocity scale "
                                f"({self.scale_cm_s} cm/s)")


def vessel_flow(anatomy) -> tuple[np.ndarray, np.ndarray]:
    """Blood velocity (cm/s, LPS) per label id, and each vessel voxel's profile factor.

    Returns
    -------
    velocity : ndarray (labels + 1, 3)
        Mean velocity of each labelled vessel (zero for other labels).
    profile : ndarray like ``anatomy.labels.array``, float32
        2 (1 - (r / R)^2) inside vessels (a parabolic profile whose mean is 1: r the distance from the
        lumen's axis, taken as R minus the distance to the wall), 0 elsewhere.
    """
    return anatomy.derived("doppler.flow", lambda: _vessel_flow(anatomy))


def _vessel_flow(anatomy) -> tuple[np.ndarray, np.ndarray]:
    if anatomy.labels is None:
        raise SpinesimError("colour Doppler needs a labelled anatomy (its vessels)", hint="load a labelled patient")
    labels = anatomy.labels.array
    velocity = np.zeros((int(labels.max()) + 1, 3))
    profile = np.zeros(labels.shape, np.float32)
    spacing = np.linalg.norm(anatomy.labels.affine[:3, :3], axis=0)
    for label in anatomy.label_table:
        kind = label.name.split(".")[0]
        if kind not in VESSEL_FLOW or label.id >= len(velocity):
            continue
        mask = labels == label.id
        points = anatomy.labels.voxel_to_world(np.argwhere(mask))
        if len(points) < 2:
            continue
        centred = points - points.mean(axis=0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        speed, rule = VESSEL_FLOW[kind]
        toward = {"caudal": [0.0, 0.0, -1.0], "cranial": [0.0, 0.0, 1.0],
                  "medial": [-np.sign(points[:, 0].mean()), 0.0, 0.0]}[rule]
        velocity[label.id] = speed * axis * (1.0 if axis @ toward >= 0 else -1.0)
        wall = ndimage.distance_transform_edt(mask, sampling=spacing)
        radius = max(float(wall.max()), 1e-6)
        profile[mask] = 2.0 * (1.0 - ((radius - wall[mask]) / radius) ** 2)
    return velocity, profile


def colour_doppler(anatomy, image, box: DopplerBox) -> np.ndarray:
    """The B-mode ``image`` (an ``UltrasoundImage``) as RGB (uint8) with colour flow inside ``box``.

    Each pixel of the box inside the field of view takes the velocity of the vessel voxel under it
    (nearest) times its profile factor; the component toward the probe (along minus the beam at that
    pixel) above the wall filter is shown red (toward) or blue (away), its brightness the speed over
    the scale, wrapping into the other colour past the scale (aliasing).
    """
    velocity, profile = vessel_flow(anatomy)
    rgb = np.repeat(image.pixels[..., None], 3, axis=2)
    rows = slice(box.top, min(box.bottom, image.pixels.shape[0]))
    cols = slice(box.left, min(box.right, image.pixels.shape[1]))
    r, c = np.mgrid[rows, cols]
    points = image.pixel_to_lps(r, c)
    ijk = np.rint(anatomy.labels.world_to_voxel(points.reshape(-1, 3))).astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(anatomy.labels.shape)), axis=1)
    ijk = np.clip(ijk, 0, np.asarray(anatomy.labels.shape) - 1)
    ids = np.where(inside, anatomy.labels.array[tuple(ijk.T)], 0).reshape(r.shape)
    factor = np.where(inside, profile[tuple(ijk.T)], 0.0).reshape(r.shape)
    # The beam at each pixel runs from the probe's beam origin (the apex of a convex array, the face
    # for a linear one) through the pixel; toward the probe is minus that.
    probe = image.probe
    if probe.kind == "linear":
        beam = np.broadcast_to(probe.axial, points.shape)
    else:
        apex = probe.position - probe.radius_mm * probe.axial
        beam = points - apex
        beam = beam / np.linalg.norm(beam, axis=-1, keepdims=True)
    toward_cm_s = -np.einsum("...i,...i->...", velocity[np.clip(ids, 0, len(velocity) - 1)], beam) * factor
    shown = (np.abs(toward_cm_s) > box.wall_filter_cm_s) & image.field_of_view[rows, cols]
    wrapped = (toward_cm_s + box.scale_cm_s) % (2.0 * box.scale_cm_s) - box.scale_cm_s   # aliasing
    level = np.clip(80.0 + 175.0 * np.abs(wrapped) / box.scale_cm_s, 0.0, 255.0).astype(np.uint8)
    colour = np.zeros(r.shape + (3,), np.uint8)
    colour[..., 0] = np.where(wrapped > 0, level, 0)
    colour[..., 2] = np.where(wrapped <= 0, level, 0)
    region = rgb[rows, cols]
    region[shown] = colour[shown]
    return rgb


__all__ = ["DopplerBox", "colour_doppler", "vessel_flow", "VESSEL_FLOW"]
