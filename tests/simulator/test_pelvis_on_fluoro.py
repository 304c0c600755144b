"""The sacrum and the pelvis on fluoroscopy (issue 15's blind read, stop 28: "on the AP the sacrum and pelvis are
LIGHTER than the lumbar spine"): on a real AP the S1 body and the sacroiliac joints are at least as dense as the
lumbar bodies, and a lateral's rays meet the generated body, not a cut face of its volume.

The truth: a real abdominal CT (tests/data/totalsegmentator_lumbar, TotalSegmentator's test case, 3 mm): the
straight AP ray through the centre of its S1 label crosses 249 mm of body against 246 mm through L4's, and 1.36 times
L4's bone (HU mm above 40 HU in voxels over 150 HU); through its sacroiliac joints about twice L4's bone. So the S1
body's and each sacroiliac joint's line integral on the AP is no less than L4's body's.
"""

from __future__ import annotations

import numpy as np
import pytest

from frontends.commands.fluoro import carm_for_view
from simulator.imaging.drr import anatomy_line_integrals
from tests.anatomy_models.spine.test_field_of_view import continuation_water_mm

PIXELS = 192
PATCH = 2  # the mean over a (2 PATCH + 1)-pixel square, ~6 mm at the patient


def _label_centre(anatomy, name: str) -> np.ndarray:
    """World point (LPS mm) at the mean of the voxels labelled ``name``."""
    index = np.argwhere(anatomy.labels.array == anatomy.label_table.by_name(name).id).mean(axis=0)
    return (np.asarray(anatomy.ct.affine, float) @ np.r_[index, 1.0])[:3]


def _line_integral_at(image: np.ndarray, carm, point: np.ndarray) -> float:
    u, v = np.rint(carm.project(np.asarray(point, float)[None])[0]).astype(int)
    assert carm.field_mask()[v, u], f"{point} projects outside the field"
    return float(image[v - PATCH:v + PATCH + 1, u - PATCH:u + PATCH + 1].mean())


def test_the_s1_body_and_the_sacroiliac_joints_are_as_dense_as_l4_on_the_ap(spine_1mm):
    """A straight AP centred on L5 holds L4 and the sacrum: the line integral through the S1 body's and each
    sacroiliac joint's centre is no less than through L4's body (built-in patient, generator 68: L4 4.95, S1 5.04,
    the joints 5.16 and 5.13; generator 62, whose anterior abdominal wall followed the sacrum back to 29 mm behind
    L4's, gave L4 4.92, S1 4.43, the joints 4.58 and 4.56: red)."""
    carm = carm_for_view(spine_1mm, "ap", "L5", "left", None, 0.0, PIXELS)
    image = np.asarray(anatomy_line_integrals(spine_1mm, carm))
    l4 = _line_integral_at(image, carm, _label_centre(spine_1mm, "L4.body"))
    for name in ("S1.body", "sacroiliac_joint.left", "sacroiliac_joint.right"):
        here = _line_integral_at(image, carm, _label_centre(spine_1mm, name))
        assert here >= l4, f"{name}'s line integral {here:.2f} is below L4's body's {l4:.2f} on the AP"


@pytest.mark.parametrize("side", ["left", "right"])
def test_no_ray_of_a_lateral_of_l5_leaves_through_the_volumes_side(spine_1mm, side):
    """Every ray in a lateral of L5's field crosses the generated body, none the projector's water beyond a face of
    the volume (simulator.imaging.drr.body_extension): the buttocks and hips are inside the grid."""
    carm = carm_for_view(spine_1mm, "lateral", "L5", side, None, None, 96)
    water = continuation_water_mm(spine_1mm.ct, carm)[carm.field_mask()]
    assert not (water > 0.01).any(), (f"{int((water > 0.01).sum())} rays of the lateral's field cross up to "
                                      f"{water.max():.1f} mm beyond the volume's side")
