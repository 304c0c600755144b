"""Small synthetic anatomies with known geometry, named with the structure vocabulary of
``anatomy_models/structures.py``: planar layers with interfaces at known depths, and a mini lumbar
segment (laminae, ligamentum flavum, epidural fat, dural sac with CSF, a root, an artery, a disc, a
facet joint, a transverse process) for the needle, contrast and session tests.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.structures import Label, LabelTable
from anatomy_models.tissues import TISSUES
from anatomy_models.volume import Volume

Region = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def painted_anatomy(shape: tuple[int, int, int], spacing_mm: float, origin: tuple[float, float, float],
                    structures: list[tuple[str, str, Region]], landmarks: dict | None = None,
                    air_outside: Region | None = None) -> Anatomy:
    """An anatomy painted structure by structure (later ones over earlier ones).

    Each structure is (name, tissue, region) with ``region(x, y, z)`` a boolean function of the LPS
    voxel-centre coordinates. Voxels no structure covers are air if ``air_outside`` says so, else
    unlabelled soft tissue. CT numbers come from the tissue table.
    """
    volume = Volume.from_spacing(np.zeros(shape, np.uint16), spacing=(spacing_mm,) * 3, origin=origin)
    ijk = np.indices(shape).reshape(3, -1).T
    x, y, z = volume.voxel_to_world(ijk).T.reshape(3, *shape)
    labels = np.zeros(shape, np.uint16)
    table = []
    for index, (name, tissue, region) in enumerate(structures, start=1):
        labels[region(x, y, z)] = index
        table.append(Label(index, name, tissue))
    hu_of = np.array([TISSUES["soft_tissue"].hu] + [TISSUES[t].hu for _, t, _ in structures], np.float32)
    ct = hu_of[labels]
    if air_outside is not None:
        air = air_outside(x, y, z) & (labels == 0)
        ct[air] = TISSUES["air"].hu
    return Anatomy(ct=volume.with_array(ct.astype(np.int16)), label_table=LabelTable(table),
                   labels=volume.with_array(labels), landmarks=landmarks or {}, metadata={"name": "phantom"})


@lru_cache(maxsize=None)
def layered_phantom() -> Anatomy:
    """Planar layers normal to y (cached: treat it as read-only) on a 64^3 grid of 1 mm voxels (centres at integer mm, 0..63).

    Air above y = 60.5, then skin, fat, muscle, ligament, epidural fat, a bone plate, and soft tissue
    below. Every interface is a plane y = const on a voxel face: see :data:`LAYER_TOPS`.
    """
    def between(low: float, high: float) -> Region:
        return lambda x, y, z: (y > low) & (y < high)
    structures = [
        ("skin", "skin", between(58.5, 60.5)),
        ("fat", "fat", between(50.5, 58.5)),
        ("muscle.erector_spinae.left", "muscle", between(36.5, 50.5)),
        ("ligamentum_flavum.L4-L5", "ligament", between(33.5, 36.5)),
        ("epidural_space", "fat", between(29.5, 33.5)),
        ("L4.lamina.left", "cortical_bone", between(20.5, 29.5)),
    ]
    return painted_anatomy((64, 64, 64), 1.0, (0.0, 0.0, 0.0), structures, air_outside=lambda x, y, z: y > 60.5)


# y of the top (posterior) face of each layer of :func:`layered_phantom`, mm.
LAYER_TOPS = {"skin": 60.5, "fat": 58.5, "muscle.erector_spinae.left": 50.5, "ligamentum_flavum.L4-L5": 36.5,
              "epidural_space": 33.5, "L4.lamina.left": 29.5}


def _segment_distance(x, y, z, a, b):
    """Distance of points (x, y, z) from the segment a-b (mm)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    ab = b - a
    t = np.clip(((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / ab.dot(ab), 0, 1)
    return np.sqrt((x - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2 + (z - a[2] - t * ab[2]) ** 2)


def box(x0, x1, y0, y1, z0, z1) -> Region:
    return lambda x, y, z: (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1) & (z >= z0) & (z <= z1)


@lru_cache(maxsize=None)
def mini_spine(spacing_mm: float = 1.0) -> Anatomy:
    """One lumbar motion segment (L4-L5, left side detailed), canal centred on x = 0, y = 0 (cached).

    Posterior skin at y = 40; from the back: fat, paraspinal muscle, laminae (L4 above z = 4, L5
    below z = -10) with the ligamentum flavum in the window between, a 3 mm posterior epidural fat
    pad, the dural sac (radius 7 mm, 1 mm dura, CSF inside), the L4-L5 disc in front of the sac, the
    left L4 root leaving through the foramen below the L4 pedicle, a radicular artery in the
    antero-superior foramen, the left L4-L5 facet joint and the left L5 transverse process.
    """
    def sac(radius):
        return lambda x, y, z: np.hypot(x, y + 1.0) <= radius
    body = box(-45, 45, -45, 40, -60, 60)
    structures = [
        ("fat", "fat", box(-45, 45, 28, 38.9, -60, 60)),
        ("skin", "skin", box(-45, 45, 38.9, 40, -60, 60)),
        ("muscle.erector_spinae.left", "muscle", box(0.1, 45, 13, 28, -60, 60)),
        ("muscle.erector_spinae.right", "muscle", box(-45, 0, 13, 28, -60, 60)),
        ("L4.lamina.left", "cortical_bone", box(0.1, 16, 6, 13, 4.1, 40)),
        ("L4.lamina.right", "cortical_bone", box(-16, 0, 6, 13, 4.1, 40)),
        ("L5.lamina.left", "cortical_bone", box(0.1, 16, 6, 13, -60, -10.1)),
        ("L5.lamina.right", "cortical_bone", box(-16, 0, 6, 13, -60, -10.1)),
        ("ligamentum_flavum.L4-L5", "ligament", box(-16, 16, 9, 12, -10, 4)),
        ("epidural_space", "fat", lambda x, y, z: (np.hypot(x, y + 1.0) <= 10) & (y > -8) & (y < 9) & (np.abs(x) < 12)),
        ("L4.pedicle.left", "cortical_bone", box(8, 16, -9, 6, 12, 26)),
        ("L5.pedicle.left", "cortical_bone", box(8, 16, -9, 6, -30, -16)),
        ("L4.body", "cortical_bone", box(-20, 20, -45, -9, 6.1, 40)),
        ("L5.body", "cortical_bone", box(-20, 20, -45, -9, -60, -6.1)),
        ("L4-L5.disc.annulus", "disc_annulus", box(-20, 20, -45, -9, -6, 6)),
        ("L4-L5.disc.nucleus", "disc_nucleus", box(-10, 10, -35, -17, -4, 4)),
        ("L5.SAP.left", "cortical_bone", box(17, 24, 0, 13, -14, 6)),
        ("facet_joint.L4-L5.left", "cartilage", box(15.1, 16.9, 6, 13, -12, 4)),
        ("L5.transverse_process.left", "cortical_bone", box(17, 40, -4, 2, -26, -18)),
        ("dural_sac.dura", "dura", sac(7.0)),
        ("dural_sac.csf", "csf", sac(6.0)),
        ("nerve_root.L4.left", "nerve", lambda x, y, z: _segment_distance(x, y, z, (6, -3, 9), (34, -3, -8)) <= 2.5),
        ("radicular_artery.L4.left", "blood", lambda x, y, z: _segment_distance(x, y, z, (30, -7, 10), (4, -7, 10)) <= 0.8),
    ]
    landmarks = {
        "L4-L5.interlaminar_window.center": [0.0, 10.5, -3.0],
        "L4-L5.ventral_interlaminar_line.left": [6.0, 9.0, -3.0],
        "L4-L5.safe_triangle.left": [14.0, -1.0, 10.0],
        "L4-L5.kambin_triangle.left": [14.0, -6.0, -2.0],
        "facet_joint.L4-L5.left.inferior_recess": [16.0, 9.5, -10.0],
        "facet_joint.L4-L5.left.center": [16.0, 9.5, -4.0],
        "L5.SAP_TP_junction.left": [18.0, 2.0, -18.0],
        "L4.superior_endplate.center": [0.0, -27.0, 40.0],
        "L4.inferior_endplate.center": [0.0, -27.0, 6.0],
        "L4.body.center": [0.0, -27.0, 23.0],
        "L5.body.center": [0.0, -27.0, -33.0],
        "L4.pedicle.left.six_oclock": [12.0, -1.5, 12.0],
    }
    directions = {"L4.inferior_endplate.normal": [0.0, 0.0, -1.0], "L4.superior_endplate.normal": [0.0, 0.0, 1.0],
                  "L5.superior_endplate.normal": [0.0, 0.0, 1.0]}
    n = int(round(90 / spacing_mm))
    anatomy = painted_anatomy((n, n, int(round(120 / spacing_mm))), spacing_mm, (-45.0 + spacing_mm / 2, -45.0 + spacing_mm / 2, -60.0 + spacing_mm / 2),
                              structures, landmarks, air_outside=lambda x, y, z: ~body(x, y, z))
    anatomy.directions = {k: np.asarray(v, float) for k, v in directions.items()}
    return anatomy
