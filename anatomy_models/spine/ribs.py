"""The 12th ribs: short floating ribs that leave the T12 body and run down and out behind the kidneys.

Each rib is a chain of tapered capsules in T12's frame: its head on the body's posterolateral side
at the pedicle's height (the 12th rib has a single costal facet on its own vertebra's body and no
costotransverse joint), its neck just in front of and below the transverse process's tip, then its
shaft bending laterally, downward and forward to a free tip about 11 cm from the head (the 12th rib
is the shortest, commonly 10-14 cm, and very variable [ED, Gray's Anatomy]). On an AP film the ribs
frame the T12 level, which is how a level is counted down from the last rib.
"""

from __future__ import annotations

import numpy as np

from anatomy_models.spine.sdf import Frame, Primitive, Shape, tapered_capsule
from anatomy_models.spine.vertebra import SIDE_SIGN, VertebraLayout

# The rib's course from the neck, in T12's local frame (u toward the rib's side, v posterior, w up), mm,
# and its radius (mm) at each point, head to tip [ED].
RIB_COURSE_MM = ((32.0, 4.0, -18.0), (28.0, -8.0, -26.0), (16.0, -16.0, -18.0))
RIB_RADII_MM = (5.0, 4.5, 4.0, 3.5, 3.0)


def rib_parts(t12: VertebraLayout) -> dict[str, list[tuple[str, Shape]]]:
    """The left and right 12th ribs as bone groups ``rib.T12.{side}``, one labelled part each (a chain)."""
    groups: dict[str, list[tuple[str, Shape]]] = {}
    for side, s in SIDE_SIGN.items():
        head = np.array([s * (t12.width / 2.0 - 3.0), t12.depth / 2.0 - 6.0, t12.pedicle_z])
        neck = np.asarray(t12.tp_tip[side], dtype=float) + np.array([-s * 6.0, -7.0, -5.0])
        local = [head, neck]
        for step in RIB_COURSE_MM:
            local.append(local[-1] + np.array([s * step[0], step[1], step[2]]))
        points = [t12.world(p) for p in local]
        label = f"rib.T12.{side}"
        parts = []
        for (a, b), (r_a, r_b) in zip(zip(points[:-1], points[1:]), zip(RIB_RADII_MM[:-1], RIB_RADII_MM[1:])):
            centre = 0.5 * (a + b)
            half = 0.5 * float(np.linalg.norm(b - a)) + r_a
            shape = Primitive(Frame.at(centre), tapered_capsule(a - centre, b - centre, r_a, r_b), (half,) * 3)
            parts.append((label, shape))
        groups[label] = parts
    return groups
