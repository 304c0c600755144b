"""The sacrum, modelled as S1 (body, pedicles, superior articular processes, alae, dorsal plate)
continuing into the fused lower segments, which carry the label ``S1`` itself.

Sizes are [ED]: an adult sacrum is about 100-110 mm wide across the alae, its S1 body about as wide
as L5's, and it curves backward (kyphosis) below S1; the dorsal plate is the fused laminae with the
median crest. The S1 dorsal and ventral foramina let the S1 root out (clinical.md §2.2, S1 TFESI).
"""

from __future__ import annotations

import numpy as np

from anatomy_models.spine.sdf import Difference, Shape, SmoothUnion, elliptic_rod, rounded_box
from anatomy_models.spine.vertebra import (SIDE_SIGN, VertebraLayout, _placed, _segment, body_part, lamina_part,
                                           pars_part, pedicle_part, spinous_process_part)

LOWER_SACRUM_LENGTH_MM = 48.0   # S2-S3 below the S1 body, along the sacral axis [ED]
SACRAL_KYPHOSIS_MM = 16.0       # backward offset of the lower end from the S1 axis [ED]
DORSAL_PLATE_DROP_MM = 42.0     # dorsal plate below the S1 pedicle centre [ED]
ALA_REACH_MM = 26.0             # ala beyond the S1 body's lateral margin [ED]


def sacral_layout_adjustments(layout: VertebraLayout) -> None:
    """S1 has a long fused dorsal plate and only a small spinous tubercle (median sacral crest)."""
    layout.lamina_bottom_z = layout.pedicle_z - DORSAL_PLATE_DROP_MM * layout.geometry.scale


def dorsal_foramen_center(layout: VertebraLayout, side: str) -> np.ndarray:
    """Local centre of the S1 dorsal foramen, in the dorsal plate below the S1 pedicle."""
    s = SIDE_SIGN[side]
    z = layout.pedicle_z - 17.0 * layout.geometry.scale
    point = layout.lamina_ventral_point(0.75, z, side) + layout.lamina_normal(side) * layout.lamina_thickness / 2
    return point + np.array([s * 1.0, 0.0, 0.0])


def foramen_channel(layout: VertebraLayout, side: str) -> Shape:
    """The S1 nerve's channel from the sacral canal out through the dorsal and ventral foramina."""
    dorsal = dorsal_foramen_center(layout, side)
    s = SIDE_SIGN[side]
    ventral = np.array([s * (layout.geometry.dims.canal_transverse_mm / 2.0 + 5.0), -layout.depth / 2.0 + 4.0,
                        layout.pedicle_z - 24.0 * layout.geometry.scale])
    back = dorsal + np.array([0.0, 8.0, -2.0])
    return SmoothUnion([_segment(layout, ventral, dorsal, 4.5, 4.5), _segment(layout, dorsal, back, 4.0, 4.0)], 1.0)


def sacrum_parts(layout: VertebraLayout, concavity_top: float) -> list[tuple[str, Shape]]:
    """Labelled parts of the sacrum (SAPs come from the L5-S1 facet joints)."""
    scale = layout.geometry.scale
    width, depth, height = layout.width, layout.depth, layout.height
    parts: list[tuple[str, Shape]] = [("S1.body", body_part(layout, concavity_top, 0.0, 0.0)),
                                      ("S1.spinous_process", spinous_process_part(layout))]
    # Lower sacral body (S2-S3): tapers and curves backward; the label ``S1`` is the whole sacrum.
    top = np.array([0.0, 0.0, -height / 2.0 + 6.0])
    bottom = np.array([0.0, SACRAL_KYPHOSIS_MM * scale, -height / 2.0 - LOWER_SACRUM_LENGTH_MM * scale])
    parts.append(("S1", _segment(layout, top, bottom, 0.36 * width, 0.3 * depth)))
    channels = [foramen_channel(layout, side) for side in SIDE_SIGN]
    for side, s in SIDE_SIGN.items():
        parts.append((f"S1.pedicle.{side}", pedicle_part(layout, side)))
        plate = lamina_part(layout, side)
        parts.append((f"S1.lamina.{side}", Difference(plate, channels[0 if side == "left" else 1], 1.0)))
        parts.append((f"S1.lamina.{side}", pars_part(layout, side)))
        # Ala: a thick wing from the body's side, its upper surface a little below the endplate.
        half = (ALA_REACH_MM * scale / 2.0 + 4.0, 0.42 * depth, 0.45 * height)
        ala_center = (s * (width / 2.0 + ALA_REACH_MM * scale / 2.0 - 4.0), 0.12 * depth, -3.0)
        ala = _placed(layout, ala_center, (1, 0, 0), (0, 1, 0), rounded_box(half, 7.0), half)
        parts.append((f"S1.ala.{side}", Difference(ala, channels[0 if side == "left" else 1], 1.0)))
        # Lateral mass below the ala (S2-S3 part of the auricular region), labelled as the sacrum.
        mass_top = np.array([s * (width / 2.0 + 10.0), 0.15 * depth, -height / 2.0])
        mass_bottom = np.array([s * (width / 2.0 - 6.0), 0.15 * depth + SACRAL_KYPHOSIS_MM * scale,
                                -height / 2.0 - 0.8 * LOWER_SACRUM_LENGTH_MM * scale])
        parts.append(("S1", Difference(_segment(layout, mass_top, mass_bottom, 13.0, 11.0), channels[0 if side == "left" else 1], 1.0)))
    return parts
