"""Which structure may touch which in the generated patient (1 mm, the grid the simulator serves):
the cauda equina stays inside the dural sac, and no epidural fat lies behind the canal's posterior
wall (the ligamentum flavum and the laminae), where a needle would feel a false loss of resistance."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.spine.alignment import INTERSPACE_NAMES, VERTEBRA_NAMES
from anatomy_models.spine.measure import interspace_frame

pytestmark = pytest.mark.slow

# What a root of the cauda may border: the sac's content, the roots leaving it, the cord, and the
# Adamkiewicz artery's intradural hairpin.
INTRADURAL = ("cauda_equina", "dural_sac", "spinal_cord", "nerve_root", "dorsal_root_ganglion", "radicular_artery")


def test_the_cauda_equina_borders_only_the_sac_and_its_content(spine_1mm):
    labels = spine_1mm.labels.array
    intradural = np.isin(labels, [label.id for label in spine_1mm.label_table if label.name.startswith(INTRADURAL)])
    cauda = spine_1mm.mask("cauda_equina")
    assert cauda.sum() > 1000
    outside = np.pad(~intradural, 1)
    touching = np.zeros(cauda.shape, dtype=bool)
    for axis in range(3):
        for step in (-1, 1):
            touching |= np.roll(outside, step, axis=axis)[1:-1, 1:-1, 1:-1]
    assert int((cauda & touching).sum()) == 0


def _canal_back_wall_ids(anatomy) -> list[int]:
    ids = []
    for label in anatomy.label_table:
        parts = label.name.split(".")
        if label.name.startswith("ligamentum_flavum") or (
                len(parts) > 1 and parts[0] in VERTEBRA_NAMES and parts[1] in ("lamina", "spinous_process", "SAP", "IAP")):
            ids.append(label.id)
    return ids


@pytest.mark.parametrize("interspace", INTERSPACE_NAMES)
def test_no_epidural_fat_lies_behind_the_flavum_or_the_laminae(spine_1mm, interspace):
    """Rays straight back through the interlaminar window (1 mm apart, 28 x 24 mm around its centre):
    once a ray has left the sac and met the flavum or a lamina, it meets no epidural fat again."""
    labels = spine_1mm.labels.array
    wall = np.isin(labels, _canal_back_wall_ids(spine_1mm))
    epidural, sac = spine_1mm.mask("epidural_space"), spine_1mm.mask("dural_sac")
    frame = interspace_frame(spine_1mm, interspace)
    centre = spine_1mm.landmark(f"{interspace}.interlaminar_window.center")
    t = np.arange(-20.0, 60.0, 0.5)
    rays = behind = 0
    for u in np.arange(-14.0, 14.1, 1.0):
        for w in np.arange(-12.0, 12.1, 1.0):
            points = centre + u * frame.u + w * frame.w + t[:, None] * frame.v
            ijk = tuple(np.rint(spine_1mm.labels.world_to_voxel(points)).astype(int).T)
            in_sac = np.flatnonzero(sac[ijk])
            if len(in_sac) == 0:
                continue
            met = np.flatnonzero(wall[ijk][in_sac[-1]:])
            if len(met) == 0:
                continue
            rays += 1
            behind += bool(epidural[ijk][in_sac[-1] + met[0]:].any())
    assert rays > 300
    assert behind == 0
