"""The sacrum, modelled as S1 (body, pedicles, superior articular processes, alae, dorsal plate)
continuing into the fused lower segments S2-S4, which carry the label ``S1`` itself.

Sizes are [ED] (adult textbook proportions): the S1 body about as wide as L5's, segments narrowing
caudally and turning backward (the sacral kyphosis), alae reaching ~50 mm from the midline where the
lateral masses carry the sacroiliac joints, a dorsal plate of fused laminae with a median crest, and
dorsal and ventral foramina that let the S1 and S2 roots out (clinical.md §2.2, S1 TFESI).
"""

from __future__ import annotations

import math

import numpy as np

from anatomy_models.spine.sdf import Difference, Shape, SmoothUnion, ellipsoid, rounded_box, tapered_box
from anatomy_models.spine.vertebra import (SIDE_SIGN, VertebraLayout, _placed, _segment, body_part, lamina_part,
                                           pars_part, pedicle_part, spinous_process_part)

# Lower segments S2-S4: (width, depth, height) in mm and the extra backward turn of each, degrees [ED].
LOWER_SEGMENTS_MM = ((40.0, 28.0, 22.0), (31.0, 22.0, 18.0), (23.0, 16.0, 15.0))
SEGMENT_TURN_DEG = 13.0
DORSAL_PLATE_DROP_MM = 30.0     # the S1 dorsal plate below the S1 pedicle centre [ED]
DORSAL_PLATE_THICKNESS_MM = 7.0
ALA_REACH_MM = 27.0             # ala beyond the S1 body's lateral margin [ED]
FORAMEN_RADIUS_MM = 4.5


LUMBARIZED_GAP_MM = 5.0         # rudimentary disc between a lumbarised S1 and S2 [ED]


def sacral_layout_adjustments(layout: VertebraLayout, lumbarized: bool = False) -> None:
    """S1's lamina is the top of the fused dorsal plate (a free lamina when S1 is lumbarised)."""
    drop = (18.0 if lumbarized else DORSAL_PLATE_DROP_MM) * layout.geometry.scale
    layout.lamina_bottom_z = layout.pedicle_z - drop


def segment_frames(layout: VertebraLayout, gap_mm: float = 0.0) -> list[tuple[np.ndarray, np.ndarray, tuple[float, float, float]]]:
    """(centre, unit superior axis, (width, depth, height)) of S2-S4 in S1's local frame; ``gap_mm``
    separates S2 from S1 (a lumbarised S1)."""
    scale = layout.geometry.scale
    frames = []
    bottom = np.array([0.0, 0.0, -layout.height / 2.0 - gap_mm])
    tilt = 0.0
    for width, depth, height in LOWER_SEGMENTS_MM:
        tilt += math.radians(SEGMENT_TURN_DEG)
        up = np.array([0.0, -math.sin(tilt), math.cos(tilt)])  # turning backward going down
        size = (width * scale, depth * scale, height * scale)
        centre = bottom - up * size[2] / 2.0
        frames.append((centre, up, size))
        bottom = centre - up * size[2] / 2.0
    return frames


def dorsal_foramen_center(layout: VertebraLayout, side: str) -> np.ndarray:
    """Local centre of the S1 dorsal foramen, in the dorsal plate below the S1 superior articular process."""
    s = SIDE_SIGN[side]
    z = layout.pedicle_z - 17.0 * layout.geometry.scale
    point = layout.lamina_ventral_point(0.8, z, side) + layout.lamina_normal(side) * layout.lamina_thickness / 2
    return point + np.array([s * 1.0, 0.0, 0.0])


def _s2_foramen(layout: VertebraLayout, side: str, gap_mm: float) -> tuple[np.ndarray, np.ndarray]:
    centre, up, (width, depth, height) = segment_frames(layout, gap_mm)[0]
    s = SIDE_SIGN[side]
    back = np.cross(up, [1.0, 0.0, 0.0])  # posterior in the segment's frame
    lateral = np.array([s * (width / 2.0 + 1.0), 0.0, 0.0])
    return centre + lateral - back * (depth / 2.0 - 2.0), centre + lateral + back * (depth / 2.0 + 14.0)


def foramen_channels(layout: VertebraLayout, side: str, gap_mm: float = 0.0) -> Shape:
    """The S1 and S2 roots' channels from the sacral canal out through the ventral and dorsal foramina."""
    dorsal = dorsal_foramen_center(layout, side)
    s = SIDE_SIGN[side]
    ventral = np.array([s * (layout.geometry.dims.canal_transverse_mm / 2.0 + 5.0), -layout.depth / 2.0 + 4.0,
                        layout.pedicle_z - 24.0 * layout.geometry.scale])
    back = dorsal + np.array([0.0, 9.0, -2.0])
    s2_front, s2_back = _s2_foramen(layout, side, gap_mm)
    r = FORAMEN_RADIUS_MM * layout.geometry.scale
    return SmoothUnion([_segment(layout, ventral, dorsal, r, r), _segment(layout, dorsal, back, r - 0.5, r - 0.5),
                        _segment(layout, s2_front, s2_back, r - 1.0, r - 1.0)], 1.0)


def rudimentary_disc(layout: VertebraLayout) -> Shape:
    """The thin disc between a lumbarised S1 and S2 (label ``S1-S2.disc.annulus``)."""
    width, depth, _ = LOWER_SEGMENTS_MM[0]
    half = (0.5 * (layout.width + width * layout.geometry.scale) / 2.0, 0.5 * (layout.depth + depth) / 2.0,
            LUMBARIZED_GAP_MM / 2.0 + 1.5)
    return _placed(layout, (0.0, 0.0, -layout.height / 2.0 - LUMBARIZED_GAP_MM / 2.0), (1, 0, 0), (0, 1, 0),
                   rounded_box(half, 3.0), half)


def sacrum_parts(layout: VertebraLayout, concavity_top: float, lumbarized: bool = False) -> list[tuple[str, Shape]]:
    """Labelled parts of the sacrum (SAPs come from the L5-S1 facet joints)."""
    scale = layout.geometry.scale
    d = layout.geometry.dims
    width, depth, height = layout.width, layout.depth, layout.height
    parts: list[tuple[str, Shape]] = [("S1.body", body_part(layout, concavity_top, 0.0, 0.0))]
    parts += [("S1.spinous_process", shape) for shape in spinous_process_part(layout)]
    gap = LUMBARIZED_GAP_MM if lumbarized else 0.0
    channels = {side: foramen_channels(layout, side, gap) for side in SIDE_SIGN}
    frames = segment_frames(layout, gap)
    canal_ap = d.canal_ap_mm
    for centre, up, (seg_width, seg_depth, seg_height) in frames:
        half = (seg_width / 2.0, seg_depth / 2.0, seg_height / 2.0 + 1.0)
        back = np.cross(up, (1.0, 0.0, 0.0))  # posterior in the segment's frame
        parts.append(("S1", _placed(layout, centre, (1, 0, 0), back, rounded_box(half, min(half) * 0.7), half)))
        # Dorsal plate of the fused laminae behind this segment's part of the canal, and the median crest.
        canal_ap *= 0.8
        plate_centre = centre + back * (seg_depth / 2.0 + canal_ap + DORSAL_PLATE_THICKNESS_MM / 2.0)
        plate_half = (seg_width / 2.0 + 6.0, DORSAL_PLATE_THICKNESS_MM / 2.0, seg_height / 2.0 + 1.0)
        plate = _placed(layout, plate_centre, (1, 0, 0), back, rounded_box(plate_half, 3.0), plate_half)
        crest_half = (3.0, 4.0, seg_height / 2.0 - 1.0)
        crest = _placed(layout, plate_centre + back * (DORSAL_PLATE_THICKNESS_MM / 2.0 + 2.0), (1, 0, 0), back,
                        rounded_box(crest_half, 2.5), crest_half)
        cut = SmoothUnion(list(channels.values()), 0.0)
        parts += [("S1", Difference(plate, cut, 1.0)), ("S1", crest)]
        # Lateral masses on both sides of the segment (the auricular region), narrowing caudally.
        for side, s in SIDE_SIGN.items():
            mass_half = (0.3 * seg_width, seg_depth / 2.0 + 2.0, seg_height / 2.0 + 1.0)
            mass_centre = centre + np.array([s * (seg_width / 2.0 + 0.2 * seg_width), 0.0, 0.0]) + back * 3.0
            mass = _placed(layout, mass_centre, (1, 0, 0), back, rounded_box(mass_half, min(mass_half) * 0.6), mass_half)
            parts.append(("S1", Difference(mass, channels[side], 1.0)))
    for side, s in SIDE_SIGN.items():
        parts.append((f"S1.pedicle.{side}", pedicle_part(layout, side)))
        plate = lamina_part(layout, side)
        parts.append((f"S1.lamina.{side}", Difference(plate, channels[side], 1.0)))
        parts.append((f"S1.lamina.{side}", pars_part(layout, side)))
        # Ala: a wing from the body's side that grows taller and lower toward the sacroiliac joint.
        reach = ALA_REACH_MM * scale
        start = np.array([s * (width / 2.0 - 6.0), 0.05 * depth, -2.0])
        end = np.array([s * (width / 2.0 + reach), 0.18 * depth, -9.0])
        axis = end - start
        half_length = float(np.linalg.norm(axis)) / 2.0
        ala = _placed(layout, (start + end) / 2.0, axis, (0, 1, 0),
                      tapered_box(half_length, (0.42 * depth, 0.45 * height), (0.5 * depth, 0.75 * height), 7.0),
                      (half_length, 0.5 * depth, 0.75 * height))
        parts.append((f"S1.ala.{side}", Difference(ala, channels[side], 1.0)))
        # The sacral tuberosity behind the ala, beside the dorsal plate (the lateral crest region).
        radii = (9.0 * scale, 6.0 * scale, 12.0 * scale)
        tuberosity = _placed(layout, (s * (width / 2.0 + 10.0), 0.5 * depth + 4.0, -height / 2.0 - 4.0), (1, 0, 0),
                             (0, 1, 0), ellipsoid(radii), radii)
        parts.append(("S1", tuberosity))
    return parts
