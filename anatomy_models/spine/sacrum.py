"""The sacrum and coccyx: S1 (body with the promontory and endplate, pedicles, superior articular
processes, alae) continuing into the fused segments S2-S5, then the coccyx.

The fused segments turn backward going down (the sacral kyphosis) with their posterior walls in one
line (the front of the sacral canal). Lateral masses beside each segment carry the auricular
surfaces of the sacroiliac joints (S1-S3). Behind the canal the fused laminae form the dorsal wall
with the median sacral crest; it ends at the apex of the sacral hiatus (S4), below which the
unfused S5 laminae leave the canal open between the sacral cornua. Four pairs of foramina let the
S1-S4 roots out: each channel leaves the canal laterally and splits into a ventral foramen (the
ventral ramus, larger, lateral) and a dorsal foramen (the dorsal ramus, medial).

Cavities (the canal, the foramina, the hiatus, the sacroiliac joint's sacral side) are cut from the
blended bone when it is painted (:func:`sacral_cavities`), like the facet joints' spaces, so no
fillet between parts can close them.

Sources: hiatus apex at S4 in 78.7 %, base at S5 in 89 %, height 19.05 +- 8.65 mm, AP depth at the
apex 5.39 +- 1.84 mm, intercornual distance 12.41 +- 3.16 mm (Nastoulis et al., Folia Morphol 2023;
82:603, 155 dry sacra); intercornual distance 11.95 +- 2.78 mm (Aggarwal et al., Surg Radiol Anat
2009, 114 sacra). Sacral breadth at the alae ~100-110 mm and anterior height ~100-105 mm (textbook
adult values, [ED]); the segment sizes, canal sizes above the hiatus and foramen positions are [ED]
continuing the S1 values of the morphometry table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from anatomy_models.errors import SpinesimError
from anatomy_models.spine.sdf import (Frame, Intersection, Primitive, Shape, SmoothUnion, ellipsoid, f32, half_space,
                                      rounded_box, tapered_box)
from anatomy_models.spine.vertebra import (LAMINA_INCLINATION_DEG, LAMINA_TAPER, SIDE_SIGN, VertebraLayout, body_part,
                                           lamina_part, pars_part, pedicle_part, placed_in_vertebra, rod_in_vertebra,
                                           spinous_process_part)


@dataclass(frozen=True)
class SacralSegment:
    """One fused segment below S1 (or a coccygeal one), mm and degrees [ED]."""

    name: str
    width_mm: float           # body, transverse
    depth_mm: float           # body, antero-posterior
    height_mm: float
    turn_deg: float           # forward turn from the segment above (the sacral kyphosis) [ED]
    breadth_mm: float         # the whole sacrum across the lateral masses at this level
    canal_transverse_mm: float
    canal_ap_mm: float        # S4: the hiatus apex depth, 5.39 mm (Nastoulis et al. 2023)


# S2-S5: the anterior height S1 (26 mm) + 24 + 20 + 16 + 13 = ~100 mm; breadth 105 mm at the alae
# narrowing to ~40 mm at S5 (its lower lateral angles) [ED].
SEGMENTS = (SacralSegment("S2", 42.0, 28.0, 24.0, 6.0, 86.0, 26.0, 11.0),
            SacralSegment("S3", 34.0, 22.0, 20.0, 8.0, 68.0, 22.0, 8.0),
            SacralSegment("S4", 26.0, 17.0, 16.0, 10.0, 50.0, 18.0, 5.4),
            SacralSegment("S5", 20.0, 13.0, 13.0, 10.0, 38.0, 14.0, 4.5))
# Coccyx: three small segments (~30 mm in all) behind a 2 mm sacrococcygeal joint [ED].
COCCYX = (SacralSegment("Co1", 16.0, 11.0, 11.0, 15.0, 24.0, 0.0, 0.0),
          SacralSegment("Co2", 12.0, 9.0, 9.0, 15.0, 12.0, 0.0, 0.0),
          SacralSegment("Co3", 8.0, 7.0, 8.0, 8.0, 8.0, 0.0, 0.0))
SACROCOCCYGEAL_GAP_MM = 2.0
# The S1 laminae end this far below the S1 pedicle centre, at the top of S2's dorsal wall [ED]; below them the
# fused S1-S2 laminae (:func:`_s1_s2_roof`) slope forward onto S2's wall. The laminae lean back going down
# (vertebra.LAMINA_INCLINATION_DEG): at 30 mm their lower edge stood 18 mm behind S2's dorsal surface, a
# plate 3-4 mm under the skin of the median sacral crest on ultrasound (issue 21).
DORSAL_PLATE_DROP_MM = 16.0
ROOF_CREST_MM = 6.0             # see _s1_s2_roof [ED]
DORSAL_WALL_MM = 6.0            # the fused laminae behind the canal, S2-S4 [ED]
HIATUS_APEX_FRACTION = 0.5      # the apex half-way down S4 (Nastoulis et al. 2023: apex at S4)
INTERCORNUAL_MM = 12.4          # Nastoulis et al. 2023 (12.41 +- 3.16 mm)
CORNU_RADII_MM = (3.5, 4.0, 6.0)  # the S5 inferior articular processes, pointing down [ED]
TUBEROSITY_BEHIND_BODY_MM = 10.0  # the S1 lateral mass's back, behind the S1 body's posterior wall [ED]
ALA_REACH_MM = 27.0             # ala beyond the S1 body's lateral margin (breadth ~105 mm) [ED]
# The sacral base's lateral parts (the alae and the lateral masses under them) are capped by one arch across
# the sacrum, a cylinder along the antero-posterior axis: the alae's upper border starts ALA_TOP_BELOW_RIM_MM
# under the endplate's rim at the body's lateral margin and falls ALA_DROP_MM, ever more steeply, to its lateral
# end over the sacroiliac joint, so the view squared to S1's endplate (cranial tilt) shows the alae as sloping
# shoulders, not one flat bar with square corners across the sacrum (issue 15's "two straight horizontal lines";
# the alar border runs down and out into the arcuate line on AP radiographs) [ED].
ALA_TOP_BELOW_RIM_MM = 5.0
ALA_DROP_MM = 13.0
ARCH_BLEND_MM = 3.0
# The alae's upper surface also falls forward, toward the pelvic brim (the arcuate line runs on from the ala's
# front): the arch's axis is tilted ALA_FORWARD_SLOPE_DEG from S1's antero-posterior axis, about a line across
# the sacrum at the lateral masses' back (the sacral tuberosity), so that nowhere does it rise above the arch
# it was [ED]. Along that axis the arch was a surface ruled parallel to the beam of the view squared to S1's
# endplate, its cortex seen edge-on over the alae's whole depth: two razor-thin lines sloping out from the
# endplate.
ALA_FORWARD_SLOPE_DEG = 20.0
# S1's body is rounded at its lateral upper and lower corners (the ring apophysis's rim) by this radius on AP [ED].
S1_BODY_CORNER_MM = 5.0
# The sacral base (S1's superior endplate and its rim) is a shallow dish, not a plane: its rim falls
# S1_BASE_FALL_MM (lateral, posterior) below the promontory's crest at the body's lateral and posterior margins,
# and the crest, S1_PROMONTORY_BEHIND_MM behind the anterior margin, rolls over into the front of the body as a
# rounded lip (the promontory). A plane rim, squared to the beam, drew one straight dense line across the whole
# body ("the S1 endplate line, edge to edge", issue 15). The sacral base is ~45-50 mm wide and ~30 mm deep with
# a concave surface (dry-bone and CT morphometry, e.g. Wagner et al., Spine J 2017;17:1141, 92 sacra);
# the falls are [ED].
S1_BASE_FALL_MM = (2.5, 1.5)
S1_PROMONTORY_BEHIND_MM = 5.0
S1_BASE_DOME_DEPTH_MM = 60.0   # the dome's vertical semi-axis: a shallow cap over the endplate [ED]
# Sacral foramina, (width, height) mm, ventral then dorsal, for the S1..S4 roots. Saluja et al., J Clin
# Diagn Res 2018;12(6):AC01 (108 dry adult sacra): the first anterior foramen 12.2 wide x 13.0 high, the
# first posterior 7.7 x 10.4, the second anterior 13.1 x 12.9, the second posterior 7.3 x 7.1; the first
# posterior 8.5 +- 1.6 mm across on CT (Kim et al., Korean J Pain 2023;36:98, 632 patients); the third
# anterior ~10 mm high (Ebraheim et al., Orthopedics 1998;21:703). [ED]: S2's anterior a little under
# S1's (Saluja's two are equal within 2 %), S3's width and S4's, tapering as the segments narrow. The
# anterior foramina are the larger (the ventral rami are the thicker branches).
# The S1 dorsal foramen's centre from the midline: 23.5 +- 2.8 mm (range 16.2-32.2) on 3D-CT of 632 patients
# (S1ds, Kim et al., Korean J Pain 2023;36:98, table 2); it lies lateral to the intermediate crest (the fused
# articular processes), below and a little lateral to the S1 superior articular process.
S1_DORSAL_FORAMEN_MIDLINE_MM = 23.5
FORAMEN_SIZES_MM = (((12.2, 13.0), (7.7, 10.4)),
                    ((12.0, 12.4), (7.3, 7.1)),
                    ((9.0, 10.0), (6.0, 6.0)),
                    ((7.0, 7.5), (5.0, 4.8)))
# No two foramina are alike and the two sides are never mirror images [ED, dry sacra]: each opening's
# width and height are scaled, its oval turned and its centre moved by seeded draws of these
# standard deviations (clipped at twice them), and a smaller lobe (half its size, at 0.4 of its
# size from its centre, in a drawn direction) makes its outline irregular.
FORAMEN_SIZE_SD = 0.04
FORAMEN_TURN_SD_DEG = 12.0
FORAMEN_SHIFT_SD_MM = 0.7
FORAMEN_SEED = 1917             # the draws are the same for every patient: the sacrum's shape is not a parameter
LUMBARIZED_GAP_MM = 5.0         # rudimentary disc between a lumbarised S1 and S2 [ED]
# Sacroiliac joint: a 2 mm space (1-3 mm on CT), the auricular surface on the lateral masses of
# S1-S3, its plane turned 20 degrees from the sagittal plane with the front lateral (the sacrum is
# a wedge, wider in front) [ED].
SI_GAP_MM = 2.0
SI_AXIAL_DEG = 20.0
SI_HALF_LENGTH_MM = 17.0        # antero-posterior half extent of the auricular surface [ED]
SI_HALF_HEIGHT_MM = 24.0        # cranio-caudal half extent (the auricular surface spans S1-S3) [ED]
AURICULAR_MASS_MM = 22.0        # the sacral lateral mass medial to the auricular surface [ED]
# Behind the auricular surface the joint opens backward between the ilium's medial edge and the sacrum's
# lateral crest: the posterior cleft that ultrasound shows as a hypoechoic gap between the two bony lines
# and fluoroscopy as the joint's posterior (medial) line. It is 2 mm wide at its top and 4 mm at its foot
# (issue 21: 2-4 mm, opening caudally; the ultrasound-guided injection enters its lower part [ED]); from the
# foot of the joint up to SI_CLEFT_TOP_FRACTION of its height (above it the interosseous ligament fills
# the gap and the ilium lies over the sacrum) [ED]. It is cut this far behind the auricular surface, through
# the dorsal surfaces of both bones; the joint space's label reaches SI_CLEFT_LABEL_MM into it, the rest
# keeps the soft tissue there.
SI_CLEFT_MM = (2.0, 4.0)
SI_CLEFT_TOP_FRACTION = 0.4
SI_CLEFT_DEPTH_MM = 45.0
SI_CLEFT_LABEL_MM = 8.0
SI_CUT_BEVEL_DEG = 30.0        # see SacroiliacJoint._bevelled [ED]
SI_CREST_BEHIND_MM = 14.0     # the lateral sacral crest behind the auricular surface, along the cleft [ED]


def sacral_layout_adjustments(layout: VertebraLayout, lumbarized: bool = False) -> None:
    """S1's lamina is the top of the fused dorsal wall (a free lamina when S1 is lumbarised)."""
    drop = (18.0 if lumbarized else DORSAL_PLATE_DROP_MM) * layout.geometry.scale
    layout.lamina_bottom_z = layout.pedicle_z - drop


@dataclass(frozen=True)
class SegmentFrame:
    """A segment placed in S1's local frame: centre, unit superior and posterior axes, scaled sizes."""

    segment: SacralSegment
    centre: np.ndarray
    up: np.ndarray
    back: np.ndarray
    width: float
    depth: float
    height: float
    breadth: float
    canal_transverse: float
    canal_ap: float

    def point(self, x: float, y: float, z: float) -> np.ndarray:
        """S1-local point of (x lateral, y posterior, z superior) in this segment's frame."""
        return self.centre + np.array([x, 0.0, 0.0]) + self.back * y + self.up * z


def segment_frames(layout: VertebraLayout, gap_mm: float = 0.0, segments=SEGMENTS,
                   start: tuple[np.ndarray, float] | None = None) -> list[SegmentFrame]:
    """S2-S5 in S1's local frame, each turned forward from the one above, their posterior walls in line
    (the front of the sacral canal); ``gap_mm`` separates S2 from S1 (a lumbarised S1)."""
    scale = layout.geometry.scale
    if start is None:
        corner, tilt = np.array([0.0, layout.depth / 2.0, -layout.height / 2.0 - gap_mm]), 0.0
    else:
        corner, tilt = start
    frames = []
    for segment in segments:
        tilt += math.radians(segment.turn_deg)
        # The curve is concave forward: going down, each segment's axis turns toward the front.
        up = np.array([0.0, math.sin(tilt), math.cos(tilt)])
        back = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
        depth, height = segment.depth_mm * scale, segment.height_mm * scale
        centre = corner - back * depth / 2.0 - up * height / 2.0
        frames.append(SegmentFrame(segment, centre, up, back, segment.width_mm * scale, depth, height,
                                   segment.breadth_mm * scale, segment.canal_transverse_mm * scale,
                                   segment.canal_ap_mm * scale))
        corner = centre + back * depth / 2.0 - up * height / 2.0
    return frames


def coccyx_frames(layout: VertebraLayout, gap_mm: float = 0.0) -> list[SegmentFrame]:
    """The coccygeal segments below S5, across the sacrococcygeal joint."""
    s5 = segment_frames(layout, gap_mm)[-1]
    corner = s5.centre + s5.back * s5.depth / 2.0 - s5.up * (s5.height / 2.0 + SACROCOCCYGEAL_GAP_MM)
    tilt = math.atan2(s5.up[1], s5.up[2])
    return segment_frames(layout, gap_mm, COCCYX, (corner, tilt))


def dorsal_foramen_center(layout: VertebraLayout, side: str) -> np.ndarray:
    """Local centre of the S1 dorsal foramen: :data:`S1_DORSAL_FORAMEN_MIDLINE_MM` from the midline, in the dorsal
    wall below and lateral to the S1 superior articular process, level with the laminae's lateral edge at mid
    thickness."""
    s = SIDE_SIGN[side]
    z = layout.pedicle_z - 17.0 * layout.geometry.scale
    point = layout.lamina_ventral_point(1.0, z, side) + layout.lamina_normal(side) * layout.lamina_thickness / 2
    return np.array([s * S1_DORSAL_FORAMEN_MIDLINE_MM * layout.geometry.scale, point[1], point[2]])


@dataclass(frozen=True)
class Opening:
    """One foramen's opening (ventral or dorsal), mm: the oval's half-width and half-height, the turn of
    its height axis from the sacrum's long axis (degrees, toward lateral), and its irregular lobe
    (S1-local offset from the channel's axis, and its radius)."""

    half_width: float
    half_height: float
    turn_deg: float
    lobe_offset: np.ndarray
    lobe_radius: float

    @property
    def radius(self) -> float:
        """The largest half-axis (how far from the centre the rim can be)."""
        return max(self.half_width, self.half_height)


@dataclass(frozen=True)
class Foramen:
    """One sacral foramen pair's channel (S1-local points): from the ventral outlet in front of the
    sacrum, through the ventral foramen, across the canal's lateral recess, out of the dorsal foramen."""

    level: str                  # the root that leaves through it: S1 .. S4
    side: str
    ventral_outlet: np.ndarray
    ventral: np.ndarray
    canal: np.ndarray
    dorsal: np.ndarray          # the dorsal foramen's centre, in the dorsal wall
    dorsal_outlet: np.ndarray
    ventral_opening: Opening
    dorsal_opening: Opening

    @property
    def ventral_radius(self) -> float:
        return self.ventral_opening.radius

    @property
    def dorsal_radius(self) -> float:
        return self.dorsal_opening.radius


def foramen_draws(index: int, side: str) -> np.ndarray:
    """The seeded draws of foramen ``index`` (0 for S1) on ``side``: per opening (ventral, dorsal) the
    width and height factors, the turn (degrees), the centre's shift (x, z, mm) and the lobe's direction
    (radians), a (2, 6) array; the two sides' draws are independent.

    >>> left, right = foramen_draws(0, "left"), foramen_draws(0, "right")
    >>> left.shape, bool(np.allclose(left, foramen_draws(0, "left"))), bool(np.allclose(left, right))
    ((2, 6), True, False)
    >>> bool(np.all(np.abs(left[:, :2] - 1.0) <= 2 * FORAMEN_SIZE_SD))
    True
    """
    rng = np.random.default_rng([FORAMEN_SEED, index, 0 if side == "left" else 1])
    normal = np.clip(rng.standard_normal((2, 5)), -2.0, 2.0)
    sizes = 1.0 + FORAMEN_SIZE_SD * normal[:, :2]
    turns = FORAMEN_TURN_SD_DEG * normal[:, 2:3]
    shifts = FORAMEN_SHIFT_SD_MM * normal[:, 3:5]
    lobes = rng.uniform(0.0, 2.0 * math.pi, (2, 1))
    return np.hstack([sizes, turns, shifts, lobes])


def _opening(size_mm: tuple[float, float], draw: np.ndarray, scale: float) -> Opening:
    half_width, half_height = (0.5 * size * factor * scale for size, factor in zip(size_mm, draw[:2]))
    reach = 0.4 * (half_width + half_height)
    lobe = np.array([math.cos(draw[5]) * reach, 0.0, math.sin(draw[5]) * reach])
    return Opening(half_width, half_height, float(draw[2]), lobe, 0.25 * (half_width + half_height))


def _shift(draw: np.ndarray) -> np.ndarray:
    return np.array([draw[3], 0.0, draw[4]])


def foramina(layout: VertebraLayout, side: str, gap_mm: float = 0.0) -> list[Foramen]:
    """The S1-S4 foramina of one side. S1's points are those its root follows (neural.py)."""
    s = SIDE_SIGN[side]
    scale = layout.geometry.scale
    d = layout.geometry.dims
    dorsal = dorsal_foramen_center(layout, side)
    ventral = np.array([s * (d.canal_transverse_mm / 2.0 + 5.0), -layout.depth / 2.0 + 4.0,
                        layout.pedicle_z - 24.0 * scale])
    canal = np.array([s * (d.canal_transverse_mm / 2.0 - 2.0), layout.depth / 2.0 + 3.0,
                      layout.pedicle_z - 18.0 * scale])
    draws = foramen_draws(0, side)
    ventral_opening, dorsal_opening = (_opening(size, draw, scale) for size, draw in zip(FORAMEN_SIZES_MM[0], draws))
    ventral, dorsal = ventral + _shift(draws[0]), dorsal + _shift(draws[1])
    result = [Foramen("S1", side, ventral + np.array([s * 3.0, -12.0, -6.0]), ventral, canal, dorsal,
                      dorsal + np.array([0.0, 9.0, -2.0]), ventral_opening, dorsal_opening)]
    frames = segment_frames(layout, gap_mm)
    for index, (upper, lower) in enumerate(zip(frames[:-1], frames[1:]), start=1):
        draws = foramen_draws(index, side)
        ventral_opening, dorsal_opening = (_opening(size, draw, scale)
                                           for size, draw in zip(FORAMEN_SIZES_MM[index], draws))
        rv, rd = ventral_opening.half_width, dorsal_opening.half_width
        # At the junction of the two segments; the ventral foramen just lateral to the lower body's
        # front, the dorsal one just outside the canal behind it (the arcs converge caudally).
        z = -upper.height / 2.0
        ventral = upper.point(s * (lower.width / 2.0 + rv - 1.0), -upper.depth / 2.0 + 3.0, z) + _shift(draws[0])
        canal = upper.point(s * (upper.canal_transverse / 2.0 - 1.5), upper.depth / 2.0 + upper.canal_ap / 2.0, z)
        behind = upper.depth / 2.0 + upper.canal_ap + DORSAL_WALL_MM * scale
        # (S4's lie beside the hiatus: at least 4 mm of bone between them and its edge.)
        x = max(upper.canal_transverse / 2.0 + rd, INTERCORNUAL_MM * scale / 2.0 + rd + 4.0)
        dorsal = upper.point(s * x, behind - 2.0, z) + _shift(draws[1])
        outlet = ventral - upper.back * 12.0 + np.array([s * 3.0, 0.0, 0.0]) - upper.up * 4.0
        result.append(Foramen(f"S{index + 1}", side, outlet, ventral, canal, dorsal, dorsal + upper.back * 9.0,
                              ventral_opening, dorsal_opening))
    return result


def _channel_rod(layout: VertebraLayout, start: np.ndarray, end: np.ndarray, opening: Opening,
                 side: str) -> Primitive:
    """A rod from ``start`` to ``end`` with the oval section of ``opening``: its rounded ends reach past
    both points, so consecutive rods of a channel overlap instead of pinching where they meet."""
    along = (end - start) / np.linalg.norm(end - start)
    reach = min(opening.half_width, opening.half_height)
    turn = math.radians(opening.turn_deg)
    up = np.array([SIDE_SIGN[side] * math.sin(turn), 0.0, math.cos(turn)])
    return rod_in_vertebra(layout, start - along * reach, end + along * reach, opening.half_width,
                           opening.half_height, up=up)


def _lobe(layout: VertebraLayout, start: np.ndarray, end: np.ndarray, opening: Opening, side: str) -> Primitive:
    """The opening's irregular lobe: a thinner rod beside the channel's axis over the same stretch."""
    offset = opening.lobe_offset * np.array([SIDE_SIGN[side], 1.0, 1.0])
    lobe = Opening(opening.lobe_radius, opening.lobe_radius, 0.0, offset, 0.0)
    return _channel_rod(layout, start + offset, end + offset, lobe, side)


def foramen_channel(layout: VertebraLayout, foramen: Foramen) -> list[Shape]:
    """The cavity of one foramen (cut from the sacrum when painted): rods from the ventral outlet through the
    ventral foramen, across the canal's recess and out through the dorsal foramen, with each opening's lobe."""
    ventral, dorsal, side = foramen.ventral_opening, foramen.dorsal_opening, foramen.side
    # The channel narrows from the ventral opening to the dorsal one across the canal's recess.
    inner = Opening(0.5 * (ventral.half_width + dorsal.half_width), 0.5 * (ventral.half_height + dorsal.half_height),
                    0.0, ventral.lobe_offset, 0.0)
    return [_channel_rod(layout, foramen.ventral_outlet, foramen.ventral, ventral, side),
            _channel_rod(layout, foramen.ventral, foramen.canal, inner, side),
            _channel_rod(layout, foramen.canal, foramen.dorsal, dorsal, side),
            _channel_rod(layout, foramen.dorsal, foramen.dorsal_outlet, dorsal, side),
            _lobe(layout, foramen.ventral_outlet, foramen.ventral, ventral, side),
            _lobe(layout, foramen.dorsal, foramen.dorsal_outlet, dorsal, side)]


def canal_stations(layout: VertebraLayout, gap_mm: float = 0.0) -> list[tuple[np.ndarray, float, float]]:
    """(S1-local centre, transverse, AP) of the sacral canal from S1's pedicles to the bottom of S5."""
    d = layout.geometry.dims
    stations = [(np.array([0.0, layout.depth / 2.0 + d.canal_ap_mm / 2.0, layout.pedicle_z]),
                 d.canal_transverse_mm, d.canal_ap_mm)]
    for frame in segment_frames(layout, gap_mm):
        for z in (frame.height / 2.0, -frame.height / 2.0) if frame.segment.name == "S2" else (0.0,):
            stations.append((frame.point(0.0, frame.depth / 2.0 + frame.canal_ap / 2.0, z), frame.canal_transverse,
                             frame.canal_ap))
    last = segment_frames(layout, gap_mm)[-1]
    stations.append((last.point(0.0, last.depth / 2.0 + last.canal_ap / 2.0, -last.height / 2.0 - 1.0),
                     last.canal_transverse, last.canal_ap))
    return stations


def _tube(layout: VertebraLayout, stations, pad_mm: float = 0.0) -> list[Shape]:
    """Tapered boxes between consecutive (centre, transverse, AP) stations."""
    pieces = []
    for (a, wa, da), (b, wb, db) in zip(stations[:-1], stations[1:]):
        axis = b - a
        half_length = float(np.linalg.norm(axis)) / 2.0
        ha, hb = (da / 2.0 + pad_mm, wa / 2.0 + pad_mm), (db / 2.0 + pad_mm, wb / 2.0 + pad_mm)
        radius = 0.45 * min(ha + hb)
        # u along the canal, v its AP axis, w across (x): the section's halves (AP, transverse).
        up = np.cross(axis, [1.0, 0.0, 0.0])
        pieces.append(placed_in_vertebra(layout, (a + b) / 2.0, axis, -up,
                                         tapered_box(half_length + 0.5, ha, hb, radius),
                                         (half_length + 0.5, max(ha[0], hb[0]), max(ha[1], hb[1]))))
    return pieces


def sacral_canal(layout: VertebraLayout, lumbarized: bool = False) -> list[Shape]:
    """The sacral canal from S1's pedicles to S5, narrowing caudally (the epidural fill's region too)."""
    return _tube(layout, canal_stations(layout, LUMBARIZED_GAP_MM if lumbarized else 0.0))


def hiatus_apex(layout: VertebraLayout, lumbarized: bool = False) -> np.ndarray:
    """S1-local point at the apex of the sacral hiatus: the lower edge of the dorsal wall, in the
    midline, at the back of the canal."""
    s4 = segment_frames(layout, LUMBARIZED_GAP_MM if lumbarized else 0.0)[2]
    z = s4.height / 2.0 - HIATUS_APEX_FRACTION * s4.height
    return s4.point(0.0, s4.depth / 2.0 + s4.canal_ap, z)


def cornu_tip(layout: VertebraLayout, side: str, lumbarized: bool = False) -> np.ndarray:
    """S1-local lower tip of the sacral cornu of ``side``."""
    s5 = segment_frames(layout, LUMBARIZED_GAP_MM if lumbarized else 0.0)[3]
    r = CORNU_RADII_MM
    centre = _cornu_centre(layout, s5, side)
    return centre - s5.up * (r[2] - 1.0)  # a millimetre inside the tip: on the bone at 2 mm voxels too


def _cornu_centre(layout: VertebraLayout, s5: SegmentFrame, side: str) -> np.ndarray:
    half_gap = INTERCORNUAL_MM * layout.geometry.scale / 2.0
    return s5.point(SIDE_SIGN[side] * (half_gap + CORNU_RADII_MM[0]), s5.depth / 2.0 + s5.canal_ap + 2.0, -1.0)


@dataclass(frozen=True)
class SacroiliacJoint:
    """One sacroiliac joint: a plane between the sacrum's and the ilium's auricular surfaces.

    ``frame`` (world): origin at the joint's centre, u along the joint in the axial plane (forward
    and out), v its normal (out of the sacrum, toward the ilium), w along the sacrum (up)."""

    side: str
    frame: Frame
    gap_mm: float

    def _slab(self, u: tuple[float, float], v: tuple[float, float], w: tuple[float, float],
              rounding: float = 0.0) -> Primitive:
        """A box in the joint's frame over the ranges ``u``, ``v``, ``w`` (mm)."""
        half = ((u[1] - u[0]) / 2.0, (v[1] - v[0]) / 2.0, (w[1] - w[0]) / 2.0)
        centre = ((u[0] + u[1]) / 2.0, (v[0] + v[1]) / 2.0, (w[0] + w[1]) / 2.0)
        return Primitive(Frame(self.frame.point(centre), self.frame.rotation), rounded_box(half, rounding), half)

    def _bevelled(self, slab: Shape, bottom: float, top: float, outward: float) -> Shape:
        """``slab`` between a top and a bottom face at ``top`` and ``bottom`` (heights in the joint's plane)
        that close in by :data:`SI_CUT_BEVEL_DEG` going away from the joint toward ``outward`` (+1: the
        ilium's side), so that no face of a cut lies parallel to S1's endplate: squared to it (the S1 view),
        such a face is seen edge-on and draws a straight bar across the sacrum and the ilia."""
        t = math.tan(math.radians(SI_CUT_BEVEL_DEG))
        faces = []
        for height, up in ((top, 1.0), (bottom, -1.0)):
            normal = np.array([0.0, outward * t, up])
            n = self.frame.vector(normal / np.linalg.norm(normal))
            u = self.frame.vector((1.0, 0.0, 0.0))
            frame = Frame.from_axes(self.frame.point((0.0, 0.0, height)), u, np.cross(n, u))
            faces.append(Primitive(frame, half_space(), (400.0, 400.0, 400.0)))
        return Intersection([slab] + faces)

    def cleft_width_mm(self, w: float) -> float:
        """Width of the posterior cleft at height ``w`` in the joint's frame (mm): :data:`SI_CLEFT_MM` from
        its top to the joint's foot.

        >>> joint = SacroiliacJoint("left", Frame.at((0.0, 0.0, 0.0)), SI_GAP_MM)
        >>> [round(joint.cleft_width_mm(w), 2) for w in (joint.cleft_top, -SI_HALF_HEIGHT_MM)]
        [2.0, 4.0]
        """
        top, foot = self.cleft_top, -SI_HALF_HEIGHT_MM
        share = min(max((top - w) / (top - foot), 0.0), 1.0)
        return SI_CLEFT_MM[0] + (SI_CLEFT_MM[1] - SI_CLEFT_MM[0]) * share

    @property
    def cleft_top(self) -> float:
        """Height of the posterior cleft's top in the joint's frame (mm)."""
        return -SI_HALF_HEIGHT_MM + SI_CLEFT_TOP_FRACTION * 2.0 * SI_HALF_HEIGHT_MM

    def _cleft(self, u: tuple[float, float], v: tuple[float, float], w: tuple[float, float], edge: int) -> Primitive:
        """A slab behind the auricular surface whose ``edge`` face (-1: its v = v[0] face, +1: v[1]) is the
        cleft's wall on that side: at ``v`` there at the cleft's top, turned about u so that the cleft
        widens by the half of :data:`SI_CLEFT_MM`'s difference per side down to the foot."""
        turn = math.atan2((SI_CLEFT_MM[1] - SI_CLEFT_MM[0]) / 2.0, self.cleft_top + SI_HALF_HEIGHT_MM)
        c, s = math.cos(turn), math.sin(turn)
        # Turned so that its wall moves away from the cleft (toward the bone it bounds) going down.
        sign = -float(edge)
        tilt = np.array([[1.0, 0.0, 0.0], [0.0, c, sign * s], [0.0, -sign * s, c]])
        half = ((u[1] - u[0]) / 2.0, (v[1] - v[0]) / 2.0, (w[1] - w[0]) / 2.0)
        wall = v[0] if edge < 0 else v[1]
        pivot = np.array([(u[0] + u[1]) / 2.0, wall, self.cleft_top])
        centre_offset = tilt @ np.array([0.0, (v[0] + v[1]) / 2.0 - wall, (w[0] + w[1]) / 2.0 - self.cleft_top])
        rotation = self.frame.rotation @ tilt
        return Primitive(Frame(self.frame.point(pivot + centre_offset), rotation), rounded_box(half, 0.0), half)

    def space_shape(self) -> Shape:
        """The joint space (label ``sacroiliac_joint.{side}``) with the front of its posterior cleft."""
        g, length, height = self.gap_mm / 2.0, SI_HALF_LENGTH_MM + 3.0, SI_HALF_HEIGHT_MM + 3.0
        u, w, half = (-length - SI_CLEFT_LABEL_MM, -length + 4.0), (-height, self.cleft_top), SI_CLEFT_MM[0] / 2.0
        cleft = Intersection([self._cleft(u, (-half, 40.0), w, -1), self._cleft(u, (-40.0, half), w, 1)])
        return SmoothUnion([self._slab((-length, length), (-g, g), (-height, height)), cleft])

    def sacral_cut(self) -> Shape:
        """What the sacrum loses beyond its auricular surface (cut at paint time): out to the front, and
        behind it the posterior cleft's lateral side, but not above the joint, where the ala and the
        dorsal surface carry on."""
        g, length, height = self.gap_mm / 2.0, SI_HALF_LENGTH_MM, SI_HALF_HEIGHT_MM
        cleft = self._cleft((-length - SI_CLEFT_DEPTH_MM, -length + 2.0), (-SI_CLEFT_MM[0] / 2.0, 60.0),
                            (-height - 12.0, self.cleft_top), -1)
        front = self._slab((-length - 4.0, length + 30.0), (-g, 60.0), (-height - 30.0, height + 20.0))
        return SmoothUnion([self._bevelled(front, -height - 12.0, height + 2.0, 1.0), cleft])

    def iliac_cut(self) -> Shape:
        """What the ilium loses on the sacrum's side of the joint and of its posterior cleft (cut at paint time)."""
        g, length, height = self.gap_mm / 2.0, SI_HALF_LENGTH_MM, SI_HALF_HEIGHT_MM
        cleft = self._cleft((-length - SI_CLEFT_DEPTH_MM, -length + 2.0), (-60.0, SI_CLEFT_MM[0] / 2.0),
                            (-height - 12.0, self.cleft_top), 1)
        front = self._slab((-length - 4.0, length + 30.0), (-60.0, g), (-height - 30.0, height + 20.0))
        return SmoothUnion([self._bevelled(front, -height - 12.0, height + 2.0, -1.0), cleft])

    def auricular_mass(self) -> Shape:
        """The sacrum's lateral mass under its auricular surface, reaching past the joint's plane so
        that the joint's cut shapes the surface over its whole extent."""
        # Its top stays under the ala's dorsal surface (the L5 dorsal ramus's groove is above it).
        length, height = SI_HALF_LENGTH_MM + 2.0, SI_HALF_HEIGHT_MM
        mass = self._slab((-length, length), (-AURICULAR_MASS_MM, 6.0), (-height - 2.0, height - 6.0), 8.0)
        # Behind it, beside the posterior cleft, the sacrum's lateral crest reaches the cleft's wall [ED].
        crest = self._slab((-length - SI_CREST_BEHIND_MM, -length + 8.0), (-AURICULAR_MASS_MM, 6.0),
                           (-height - 2.0, self.cleft_top + 4.0), 3.0)
        return SmoothUnion([mass, crest])

    def point(self, u: float, v: float, w: float) -> np.ndarray:
        """World position of (u along the joint, v across it toward the ilium, w up), mm."""
        return self.frame.point((u, v, w))

    @property
    def inferior_third(self) -> np.ndarray:
        """The middle of the joint's inferior third (the injection target), in the joint space."""
        return self.frame.point((-0.3 * SI_HALF_LENGTH_MM, 0.0, -2.0 * SI_HALF_HEIGHT_MM / 3.0))


def sacroiliac_joint(layout: VertebraLayout, side: str, lumbarized: bool = False) -> SacroiliacJoint:
    """The joint of ``side``: its centre over the S1-S2 lateral masses, the plane turned
    :data:`SI_AXIAL_DEG` from the sagittal plane (front out) in S1's frame."""
    s = SIDE_SIGN[side]
    scale = layout.geometry.scale
    s2 = segment_frames(layout, LUMBARIZED_GAP_MM if lumbarized else 0.0)[0]
    centre_local = s2.point(s * (0.5 * (layout.width / 2.0 + ALA_REACH_MM * scale + s2.breadth / 2.0) + 1.0),
                            -4.0, s2.height / 2.0 - 14.0)
    a = math.radians(SI_AXIAL_DEG)
    along = np.array([s * math.sin(a), -math.cos(a), 0.0])   # forward and out
    normal = np.array([s * math.cos(a), math.sin(a), 0.0])   # out of the sacrum (and back)
    f = layout.frame
    u, v = f.vector(along), f.vector(normal)
    # A mirror on the right keeps the frame's (u, v, w) right-handed with w along the sacrum (up).
    w = np.cross(u, v) if s > 0 else -np.cross(u, v)
    return SacroiliacJoint(side, Frame(f.point(centre_local), np.column_stack([u, v, w])), SI_GAP_MM)


def _box(layout: VertebraLayout, frame: SegmentFrame, centre, half, rounding: float) -> Primitive:
    return placed_in_vertebra(layout, centre, (1, 0, 0), frame.back, rounded_box(half, rounding), half)


def _lateral_border(layout: VertebraLayout, frame: SegmentFrame, s: float, top_x: float, bottom_x: float) -> Primitive:
    """The half-space inside the sacrum's lateral border over one segment: the border runs straight
    from ``top_x`` at the segment's top to ``bottom_x`` at its bottom (the sacrum's outline on AP
    narrows smoothly to the apex)."""
    top = frame.point(s * top_x, 0.0, frame.height / 2.0)
    bottom = frame.point(s * bottom_x, 0.0, -frame.height / 2.0)
    return _border_plane(layout, s, top, bottom, frame.back)


def _border_plane(layout: VertebraLayout, s: float, top: np.ndarray, bottom: np.ndarray, back: np.ndarray) -> Primitive:
    """The half-space medial to the line from ``top`` to ``bottom`` (S1-local points) swept along ``back``."""
    along = (top - bottom) / np.linalg.norm(top - bottom)
    lateral = np.array([s, 0.0, 0.0])
    normal = lateral - along * (lateral @ along) - back * (lateral @ back)
    back_world, normal_world = layout.frame.vector(back), layout.frame.vector(normal / np.linalg.norm(normal))
    frame = Frame.from_axes(layout.world((top + bottom) / 2.0), back_world, np.cross(normal_world, back_world))
    return Primitive(frame, half_space(), (400.0, 400.0, 400.0))


def _lower_segment_parts(layout: VertebraLayout, frames: list[SegmentFrame],
                         lumbarized: bool) -> list[tuple[str, Shape]]:
    """Bodies, lateral masses, dorsal wall and median crest of S2-S5, and the cornua."""
    scale = layout.geometry.scale
    parts: list[tuple[str, Shape]] = []
    apex = hiatus_apex(layout, lumbarized)
    next_breadth = {upper.segment.name: lower.breadth for upper, lower in zip(frames[:-1], frames[1:])}
    for frame in frames:
        name = frame.segment.name
        half = (frame.width / 2.0, frame.depth / 2.0, frame.height / 2.0 + 1.0)
        parts.append(("S1", _box(layout, frame, frame.centre, half, min(half) * 0.6)))
        # Lateral masses: from the body's side out to the sacrum's breadth, front to the dorsal surface.
        behind = frame.depth / 2.0 + frame.canal_ap + DORSAL_WALL_MM * scale
        if name == "S5":  # unfused laminae: the cornua stand out behind its lateral parts
            behind = frame.depth / 2.0 + frame.canal_ap + 2.0 * scale
        inner = frame.canal_transverse / 2.0 + 1.0
        if name in ("S4", "S5"):
            # Beside the hiatus the lateral masses reach in to its edge behind the canal (the
            # intermediate crests ending in the cornua), closing the S4 dorsal foramina medially.
            inner = min(inner, INTERCORNUAL_MM * scale / 2.0 + 1.0)
        below = next_breadth.get(name, frame.breadth * 0.6)
        for side, s in SIDE_SIGN.items():
            x0, x1 = inner, max(frame.breadth / 2.0, inner + 6.0)
            y0, y1 = -frame.depth / 2.0 + 2.0, behind - 1.0
            # Taller than the segment: the segments turn forward, opening wedges between their backs.
            mass_half = ((x1 - x0) / 2.0, (y1 - y0) / 2.0, frame.height / 2.0 + 3.5)
            centre = frame.point(s * (x0 + x1) / 2.0, (y0 + y1) / 2.0, 0.0)
            mass = _box(layout, frame, centre, mass_half, min(mass_half) * 0.3)
            border = _lateral_border(layout, frame, s, x1, max(below / 2.0, inner + 3.0))
            parts.append(("S1", Intersection([mass, border])))
        if name == "S5":
            continue
        # The dorsal wall: fused laminae behind the canal, down to the hiatus apex, with the crest.
        top_z = frame.height / 2.0 + 3.0
        bottom_z = -frame.height / 2.0 - 3.0
        if name == "S4":
            bottom_z = float((apex - frame.centre) @ frame.up)
        wall_half = (frame.canal_transverse / 2.0 + 7.0, DORSAL_WALL_MM * scale / 2.0, (top_z - bottom_z) / 2.0)
        wall_y = frame.depth / 2.0 + frame.canal_ap + DORSAL_WALL_MM * scale / 2.0
        parts.append(("S1.dorsal_wall", _box(layout, frame, frame.point(0.0, wall_y, (top_z + bottom_z) / 2.0),
                                             wall_half, 1.5)))
        # The crest's tubercle, over the wall's middle (S4's stays above the hiatus's apex).
        tubercle = (3.0 * scale, 4.0 * scale, 0.3 * (top_z - bottom_z))
        at = frame.point(0.0, wall_y + DORSAL_WALL_MM * scale / 2.0 + 1.5, (top_z + bottom_z) / 2.0)
        parts.append(("S1.dorsal_wall", placed_in_vertebra(layout, at, (1, 0, 0), frame.back, ellipsoid(tubercle),
                                                           tubercle)))
    s5 = frames[3]
    for side in SIDE_SIGN:
        r = tuple(x * scale for x in CORNU_RADII_MM)
        cornu = placed_in_vertebra(layout, _cornu_centre(layout, s5, side), (1, 0, 0), s5.back, ellipsoid(r), r)
        parts.append((f"S1.cornu.{side}", cornu))
    return parts


def _plane(layout: VertebraLayout, origin: np.ndarray, normal: np.ndarray) -> Primitive:
    """The half-space behind the plane through ``origin`` with outward ``normal`` (S1-local)."""
    n = layout.frame.vector(normal / np.linalg.norm(normal))
    u = np.cross(n, [1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.cross(n, [0.0, 1.0, 0.0])
    frame = Frame.from_axes(layout.world(origin), u, np.cross(n, u))
    return Primitive(frame, half_space(), (400.0, 400.0, 400.0))


def _s1_s2_roof(layout: VertebraLayout, s2: SegmentFrame) -> Shape:
    """The fused laminae between S1's and S2's dorsal wall (label ``S1.dorsal_wall``): the canal's roof under
    the S1 laminae's lower edge, its back sloping from that edge forward and down to S2's dorsal surface at
    the segment's middle (a ridge in the midline, falling forward laterally as the laminae do), so that the
    dorsal surface runs on without a step."""
    scale = layout.geometry.scale
    thickness = layout.lamina_thickness
    b = math.radians(LAMINA_INCLINATION_DEG)
    normal = np.array([0.0, math.cos(b), math.sin(b)])  # out of the laminae's back, in the midline
    edge = layout.lamina_ventral_point(0.0, layout.lamina_bottom_z) + normal * thickness * (1.0 + LAMINA_TAPER)
    foot = s2.point(0.0, s2.depth / 2.0 + s2.canal_ap + DORSAL_WALL_MM * scale, 0.0)
    under = layout.lamina_ventral_point(0.0, layout.lamina_bottom_z + 4.0 * scale)
    floor = s2.point(0.0, s2.depth / 2.0 + s2.canal_ap, s2.height / 2.0)
    # Out past the S1 dorsal foramina to the lateral masses (the lateral crest, 5 mm of bone beside them [ED]).
    foramen = dorsal_foramen_center(layout, "left")
    half_width = abs(foramen[0]) + FORAMEN_SIZES_MM[0][1][0] * scale / 2.0 + 5.0
    low, high = foot[2] - 2.0, layout.lamina_bottom_z + 8.0 * scale
    y0, y1 = min(floor[1], under[1]) - 2.0, edge[1] + 2.0
    half = (half_width, (y1 - y0) / 2.0, (high - low) / 2.0)
    box = placed_in_vertebra(layout, (0.0, (y0 + y1) / 2.0, (low + high) / 2.0), (1, 0, 0), (0, 1, 0),
                             rounded_box(half, 1.5), half)
    cuts = [box, _plane(layout, under, np.cross(floor - under, [1.0, 0.0, 0.0]))]  # the canal's side: in front
    for side in SIDE_SIGN:
        # The laminae's lateral lower corner, raised by the intermediate crest behind the S1 dorsal foramen [ED].
        lateral = layout.lamina_ventral_point(1.0, layout.lamina_bottom_z, side) + \
            layout.lamina_normal(side) * (thickness * (1.0 - LAMINA_TAPER) + ROOF_CREST_MM * scale)
        # Under the laminae's lower edge the roof slopes forward to S2; above it, it stays in front of their backs.
        for direction in (foot - edge, layout.lamina_lean):
            back = np.cross(lateral - edge, direction)
            cuts.append(_plane(layout, edge, back if back[1] > 0 else -back))
    return Intersection(cuts)


def sacral_base_arch(layout: VertebraLayout) -> Primitive:
    """The inside of the arch that caps the alae and the lateral masses: a cylinder through the alae's top at
    the body's lateral margin (:data:`ALA_TOP_BELOW_RIM_MM` under the rim) and :data:`ALA_DROP_MM` lower at their
    lateral end (``ALA_REACH_MM`` beyond the margin), at the body's posterior wall; its axis falls
    :data:`ALA_FORWARD_SLOPE_DEG` going forward. Its radius follows from the two points: with
    ``a = x2**2 - x1**2`` the chord's heights differ by ``drop`` when the centre lies ``(a / drop + drop) / 2``
    below the inner point."""
    scale = layout.geometry.scale
    x1, x2 = layout.width / 2.0, layout.width / 2.0 + ALA_REACH_MM * scale
    drop = ALA_DROP_MM * scale
    below = ((x2 ** 2 - x1 ** 2) / drop + drop) / 2.0
    radius = math.hypot(x1, below)
    top = layout.height / 2.0 - ALA_TOP_BELOW_RIM_MM * scale
    r = float(radius)
    slope = math.radians(ALA_FORWARD_SLOPE_DEG)
    axis = (0.0, math.cos(slope), math.sin(slope))  # backward and up: the arch falls going forward

    def sdf(u, v, w):
        return np.sqrt(u * u + w * w) - np.float32(r)
    back = layout.depth / 2.0 + TUBEROSITY_BEHIND_BODY_MM  # the lateral masses' back (sacrum_parts)
    return placed_in_vertebra(layout, (0.0, back, top - below), (1, 0, 0), axis, sdf, (r, 400.0, r))


def sacral_base_dome(layout: VertebraLayout) -> Primitive:
    """The cap over S1's body that makes the sacral base a shallow dish: an ellipsoid whose top is the
    promontory's crest (:data:`S1_PROMONTORY_BEHIND_MM` behind the anterior margin, 1 mm above the rim) and
    whose surface lies :data:`S1_BASE_FALL_MM` under the rim at the body's lateral and posterior margins. A cap
    ``h`` under its top at distance ``x`` from its axis has ``x = R * sqrt(1 - (1 - h / c) ** 2)`` for the
    semi-axes ``R`` across and ``c`` (:data:`S1_BASE_DOME_DEPTH_MM`) down."""
    scale = layout.geometry.scale
    c = S1_BASE_DOME_DEPTH_MM * scale
    lateral, posterior = (fall * scale + 1.0 for fall in S1_BASE_FALL_MM)
    crest_y = -layout.depth / 2.0 + S1_PROMONTORY_BEHIND_MM * scale

    def semi_axis(distance: float, fall: float) -> float:
        return distance / math.sqrt(1.0 - (1.0 - fall / c) ** 2)
    radii = (semi_axis(layout.width / 2.0, lateral), semi_axis(layout.depth / 2.0 - crest_y, posterior), c)
    # The rim's height at the crest (the body's top falls backward by its wedge; body_sdf).
    rim = layout.height / 2.0 - crest_y * math.tan(math.radians(layout.geometry.dims.body_wedge_deg) / 2.0)
    return placed_in_vertebra(layout, (0.0, crest_y, rim + 1.0 - c), (1, 0, 0), (0, 1, 0), ellipsoid(radii), radii)


def rounded_body(layout: VertebraLayout, body: Shape) -> Shape:
    """S1's body with its lateral upper and lower corners rounded by :data:`S1_BODY_CORNER_MM` on AP (the body
    cut by a box as wide and tall as it, long in depth, with those edges rounded) and its top a dish under
    :func:`sacral_base_dome`."""
    half = (layout.width / 2.0 + 0.5, layout.depth * 2.0, layout.height / 2.0 + 0.5)
    box = placed_in_vertebra(layout, (0.0, 0.0, 0.0), (1, 0, 0), (0, 1, 0),
                             rounded_box(half, S1_BODY_CORNER_MM * layout.geometry.scale), half)
    return Intersection([body, box, sacral_base_dome(layout)])


def rudimentary_disc(layout: VertebraLayout) -> Shape:
    """The thin disc between a lumbarised S1 and S2 (label ``S1-S2.disc.annulus``)."""
    width, depth = SEGMENTS[0].width_mm, SEGMENTS[0].depth_mm
    half = (0.5 * (layout.width + width * layout.geometry.scale) / 2.0, 0.5 * (layout.depth + depth) / 2.0,
            LUMBARIZED_GAP_MM / 2.0 + 1.5)
    return placed_in_vertebra(layout, (0.0, 0.0, -layout.height / 2.0 - LUMBARIZED_GAP_MM / 2.0), (1, 0, 0), (0, 1, 0),
                              rounded_box(half, 3.0), half)


def sacrum_parts(layout: VertebraLayout, concavity_top: float, lumbarized: bool = False) -> list[tuple[str, Shape]]:
    """Labelled parts of the sacrum (SAPs come from the L5-S1 facet joints; cavities are cut when painted)."""
    scale = layout.geometry.scale
    width, depth, height = layout.width, layout.depth, layout.height
    parts: list[tuple[str, Shape]] = [("S1.body", rounded_body(layout, body_part(layout, concavity_top, 0.0, 0.0)))]
    arch = sacral_base_arch(layout)
    parts += [("S1.spinous_process", shape) for shape in spinous_process_part(layout)]
    frames = segment_frames(layout, LUMBARIZED_GAP_MM if lumbarized else 0.0)
    parts += _lower_segment_parts(layout, frames, lumbarized)
    if not lumbarized:  # a lumbarised S1's laminae are free, over a rudimentary disc
        parts.append(("S1.dorsal_wall", _s1_s2_roof(layout, frames[0])))
    d = layout.geometry.dims
    for side, s in SIDE_SIGN.items():
        parts.append((f"S1.pedicle.{side}", pedicle_part(layout, side)))
        parts.append((f"S1.lamina.{side}", lamina_part(layout, side)))
        parts.append((f"S1.lamina.{side}", pars_part(layout, side)))
        # Ala: a wing from the body's side that grows taller and lower toward the sacroiliac joint.
        reach = ALA_REACH_MM * scale
        start = np.array([s * (width / 2.0 - 6.0), 0.05 * depth, -2.0])
        end = np.array([s * (width / 2.0 + reach), 0.18 * depth, -9.0])
        axis = end - start
        half_length = float(np.linalg.norm(axis)) / 2.0
        ala = placed_in_vertebra(layout, (start + end) / 2.0, axis, (0, 1, 0),
                                 tapered_box(half_length, (0.42 * depth, 0.45 * height), (0.5 * depth, 0.75 * height),
                                             7.0),
                                 (half_length, 0.5 * depth, 0.75 * height))
        parts.append((f"S1.ala.{side}", Intersection([ala, arch], ARCH_BLEND_MM)))
        # The S1 lateral mass under the ala, out to the auricular surface, back to the dorsal surface
        # (its sacral tuberosity behind the joint).
        x0, x1 = d.canal_transverse_mm / 2.0 + 1.0, width / 2.0 + reach
        # Its back stays in front of the L5 dorsal ramus's groove between the S1 SAP and the ala (the
        # old tuberosity's reach), which keeps ``S1.SAP_ala_junction`` where it was.
        y0, y1 = -depth / 2.0 + 3.0, depth / 2.0 + TUBEROSITY_BEHIND_BODY_MM
        z0, z1 = -height / 2.0 - 4.0, layout.pedicle_z - 6.0
        half = ((x1 - x0) / 2.0, (y1 - y0) / 2.0, (z1 - z0) / 2.0)
        mass = placed_in_vertebra(layout, (s * (x0 + x1) / 2.0, (y0 + y1) / 2.0, (z0 + z1) / 2.0), (1, 0, 0), (0, 1, 0),
                                  rounded_box(half, 5.0), half)
        # Its lateral border slopes in from the ala to S2's (the outline on AP has no step there).
        border = _border_plane(layout, s, np.array([s * x1, 0.0, z1]), np.array([s * frames[0].breadth / 2.0, 0.0, z0]),
                               np.array([0.0, 1.0, 0.0]))
        # Its top falls laterally under the ala's upper border (flat, parallel to S1's endplate, it drew a straight
        # bar across the sacrum on the view squared to the endplate).
        parts.append(("S1", Intersection([mass, border, arch], ARCH_BLEND_MM)))
        parts.append(("S1", Intersection([sacroiliac_joint(layout, side, lumbarized).auricular_mass(), arch],
                                         ARCH_BLEND_MM)))
    return parts


def coccyx_parts(layout: VertebraLayout, lumbarized: bool = False) -> list[tuple[str, Shape]]:
    """The coccyx (label ``coccyx``), its own bone below the sacrococcygeal joint."""
    parts = []
    for frame in coccyx_frames(layout, LUMBARIZED_GAP_MM if lumbarized else 0.0):
        half = (frame.width / 2.0, frame.depth / 2.0, frame.height / 2.0 + 0.5)
        parts.append(("coccyx", _box(layout, frame, frame.centre, half, min(half) * 0.7)))
        if frame.breadth > frame.width:  # Co1's transverse processes
            wings = (frame.breadth / 2.0, 0.35 * frame.depth, 0.3 * frame.height)
            parts.append(("coccyx", _box(layout, frame, frame.point(0.0, 0.1 * frame.depth, 0.15 * frame.height), wings,
                                         min(wings) * 0.8)))
    return parts


def dorsal_crest_points(layout: VertebraLayout, lumbarized: bool = False) -> list[np.ndarray]:
    """World points along the back of the sacrum and coccyx in the midline, S2 down to the coccyx's
    tip: the median sacral crest's tubercles, the cornua's backs over the hiatus, the coccyx's back.
    The supraspinous line (and the skin over it) continues down over them."""
    gap = LUMBARIZED_GAP_MM if lumbarized else 0.0
    scale = layout.geometry.scale
    points = []
    for frame in segment_frames(layout, gap)[:3]:
        wall_back = frame.depth / 2.0 + frame.canal_ap + DORSAL_WALL_MM * scale
        points.append(frame.point(0.0, wall_back + 3.0 * scale, 0.1 * frame.height))
    s5 = segment_frames(layout, gap)[3]
    points.append(_cornu_centre(layout, s5, "left") * np.array([0.0, 1.0, 1.0]) + s5.back * CORNU_RADII_MM[1] * scale)
    for frame in coccyx_frames(layout, gap):
        points.append(frame.point(0.0, frame.depth / 2.0, 0.0))
    return [layout.world(p) for p in points]


def coccyx_tip(layout: VertebraLayout, lumbarized: bool = False) -> np.ndarray:
    """S1-local lowest point of the coccyx."""
    last = coccyx_frames(layout, LUMBARIZED_GAP_MM if lumbarized else 0.0)[-1]
    return last.centre - last.up * last.height / 2.0


def sacral_cavities(layout: VertebraLayout, lumbarized: bool = False) -> list[Shape]:
    """What is cut from the blended sacrum when it is painted: the canal and the foramina (the hiatus
    is where the dorsal wall ends, above the unfused S5 laminae)."""
    gap = LUMBARIZED_GAP_MM if lumbarized else 0.0
    shapes = sacral_canal(layout, lumbarized)
    for side in SIDE_SIGN:
        for foramen in foramina(layout, side, gap):
            shapes += foramen_channel(layout, foramen)
    return shapes


def foraminal_region(layout: VertebraLayout, lumbarized: bool = False) -> list[Shape]:
    """The inner stretches of the foramina (canal to each foramen's opening): fat around the roots."""
    gap = LUMBARIZED_GAP_MM if lumbarized else 0.0
    shapes: list[Shape] = []
    for side in SIDE_SIGN:
        for foramen in foramina(layout, side, gap):
            shapes += foramen_channel(layout, foramen)[1:3]
    return shapes


def sacral_root_path(layout: VertebraLayout, foramen: Foramen, start: np.ndarray) -> list[np.ndarray]:
    """World points of a sacral root (S2-S4) from ``start`` (world, in the sac's end) down the canal's
    lateral part to its foramen and out through the ventral foramen (the ventral ramus)."""
    s = SIDE_SIGN[foramen.side]
    local_start = layout.frame.rotation.T @ (start - layout.frame.origin)
    points = [local_start]
    for centre, transverse, ap in canal_stations(layout)[1:]:
        if centre[2] < local_start[2] - 4.0 and centre[2] > foramen.canal[2] + 4.0:
            points.append(centre + np.array([s * (transverse / 2.0 - 3.0), -ap / 2.0 + 2.0, 0.0]))
    points += [foramen.canal, foramen.ventral, foramen.ventral_outlet]
    return [layout.world(p) for p in points]


# The real sacrum (shapes/sacrum_README.md): the Visible Human Male's, a signed-distance grid in the frame of its
# S1 superior endplate (origin at the endplate's centre, u left, v posterior in the endplate's plane, w along its
# normal), its own canal and foramina filled (the generator carves its own: sacral_cavities).
SACRUM_FILE = Path(__file__).with_name("shapes") / "sacrum_sdf.npz"
# The template's size for the reference man (skeleton scale 1). The Visible Human Male was a tall, heavy man:
# his sacrum measures 121 mm across the alae and 134 mm from the promontory to the apex (build_sacrum's
# measurements), against 101.5 +- 6.8 mm across and 107.6 +- 8.9 mm long in 30 male sacra (Bangladesh J Anat
# 2017;15(2), doi:10.3329/bja.v15i2.75216), 103.6 +- 6.8 and 106.7 +- 10.2 mm in 30 dry sacra ("Anatomical
# evaluation of sacrum in dry bones", discovery.researcher.life/article/4daff67b8543338f9a3a1306a43b5b7f) and a
# median 118.6 mm long on 29 Korean post-mortem CTs ("Atypical morphological variations of the sacrum in the
# Korean population", PMCT 3D study). 0.85 gives 103 mm across and 114 mm long, an S1 endplate 45 x 27 mm
# (Wagner et al., Spine J 2017;17:1141, 92 sacra: ~45-50 x ~30 mm) [ED within 10 % of each;
# tests/anatomy_models/spine/test_sacrum.py].
SACRUM_SCALE = 0.85
SACRUM_OUTSIDE_MM = 12.0   # the grid's clip (build_sacrum.CLIP_MM): beyond it, outside the bone


@dataclass(frozen=True)
class SacrumTemplate:
    """The sacrum's signed distances (mm, negative inside; float32, voxel (0, 0, 0) at ``origin_mm``) in its
    endplate's frame, and what build_sacrum measured on the source bone (mm, that frame)."""

    sdf_mm: np.ndarray
    origin_mm: np.ndarray
    spacing_mm: float
    measured: dict[str, np.ndarray]


@lru_cache(maxsize=None)
def load_sacrum() -> SacrumTemplate:
    """The sacrum from :data:`SACRUM_FILE` (cached: read once per process)."""
    try:
        with np.load(SACRUM_FILE) as data:
            sdf = data["sacrum"].astype(np.float32) * f32(data["quantum_mm"])
            origin = np.asarray(data["sacrum_origin_mm"], dtype=np.float64)
            spacing = float(data["spacing_mm"])
            measured = {key: np.asarray(data[key], dtype=np.float64) for key in data.files
                        if key not in ("sacrum", "coccyx")}
            measured["auricular_left_normal"]  # the newest key: a file built before it is stale
    except (OSError, KeyError) as error:
        raise SpinesimError(f"{SACRUM_FILE}: cannot read the sacrum ({error}); reinstall spinesim or rebuild the file "
                            "with anatomy_models/spine/shapes/build_sacrum.py (shapes/sacrum_README.md)") from error
    return SacrumTemplate(sdf, origin, spacing, measured)


def template_scale(layout: VertebraLayout) -> float:
    """The template's scale on the patient of ``layout``: :data:`SACRUM_SCALE` times the skeletal scale."""
    return SACRUM_SCALE * layout.geometry.scale


def _template_turn(layout: VertebraLayout) -> np.ndarray:
    """The rotation (S1-local) that lays the template's endplate on S1's superior endplate, which leans forward
    by half the body's wedge: (0, 0, 1) goes to (0, sin, cos)."""
    lean = math.radians(layout.geometry.dims.body_wedge_deg) / 2.0
    c, s = math.cos(lean), math.sin(lean)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def _template_origin(layout: VertebraLayout) -> np.ndarray:
    """S1-local position of the template's origin: the middle of its S1 endplate's depth (from the promontory to
    the canal) on the middle of the S1 body's endplate, in the midline."""
    m = load_sacrum().measured
    middle = np.array([0.0, m["promontory_mm"][1] + m["endplate_depth_mm"] / 2.0, 0.0])
    return np.array([0.0, 0.0, layout.height / 2.0]) - _template_turn(layout) @ (template_scale(layout) * middle)


def template_to_local(layout: VertebraLayout):
    """The map from a template point (mm, its endplate's frame) to S1-local mm on ``layout``'s patient."""
    origin, turn, scale = _template_origin(layout), _template_turn(layout), template_scale(layout)

    def to_local(point) -> np.ndarray:
        return origin + turn @ (scale * np.asarray(point, dtype=np.float64))
    return to_local


def sacrum_placement(layout: VertebraLayout) -> tuple[Frame, float]:
    """The template's frame in the world and its scale for the S1 of ``layout``: its endplate on S1's superior
    endplate, centred on it in the midline (:func:`template_to_local`)."""
    return (Frame(layout.world(_template_origin(layout)), layout.frame.rotation @ _template_turn(layout)),
            template_scale(layout))


@dataclass(eq=False)
class RealSacrum(Shape):
    """The sacrum ``template`` placed by ``frame`` (world) and ``scale``."""

    template: SacrumTemplate
    frame: Frame
    scale: float

    def __post_init__(self) -> None:
        t = self.template
        upper = t.origin_mm + (np.array(t.sdf_mm.shape) - 1) * t.spacing_mm
        corners = np.array([[a, b, c] for a in (t.origin_mm[0], upper[0]) for b in (t.origin_mm[1], upper[1])
                            for c in (t.origin_mm[2], upper[2])])
        world = np.array([self.frame.point(self.scale * corner) for corner in corners])
        self.lower, self.upper = world.min(axis=0), world.max(axis=0)

    def sdf(self, x, y, z):
        t = self.template
        u, v, w = np.broadcast_arrays(*self.frame.to_local(x, y, z))
        index = [(c / f32(self.scale) - f32(o)) / f32(t.spacing_mm) for c, o in zip((u, v, w), t.origin_mm)]
        outside = np.zeros(u.shape, dtype=bool)
        for axis, i in enumerate(index):
            outside |= (i < 0) | (i > t.sdf_mm.shape[axis] - 1)
        values = ndimage.map_coordinates(t.sdf_mm, [i.ravel() for i in index], order=1, mode="nearest")
        values = values.reshape(u.shape) * f32(self.scale)
        return np.where(outside, np.maximum(values, f32(SACRUM_OUTSIDE_MM * self.scale)), values)


def real_sacrum(layout: VertebraLayout) -> RealSacrum:
    """The real sacrum placed on the S1 of ``layout`` (:func:`sacrum_placement`)."""
    frame, scale = sacrum_placement(layout)
    return RealSacrum(load_sacrum(), frame, scale)
