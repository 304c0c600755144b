"""Mesh voxelising: spinesim's winding-number fill against trimesh's ray-parity ``contains``.

The same sphere (5120 triangles, radius 20 mm) is filled on the same 2 mm grid (26^3 voxel
centres) by both; the ratio is spinesim's time over trimesh's (goal: at most a hundredth), and the
two must agree on the voxels. (trimesh without embree casts one ray per point: minutes on a
1 mm grid, which is why the grid is coarse.)
"""

from __future__ import annotations

import time

import numpy as np
import trimesh

from anatomy_models.meshes import winding_inside
from anatomy_models.volume import Volume
from benchmarks.measure import Measurement, best_time


def run() -> list[Measurement]:
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=20.0)
    grid = Volume.from_spacing(np.zeros((26, 26, 26), np.uint8), (2.0, 2.0, 2.0), origin=(-25.0, -25.0, -25.0))
    centres = grid.voxel_to_world(np.argwhere(np.ones(grid.shape, bool)))
    winding_inside(mesh.vertices, mesh.faces, grid.shape, grid.affine)  # compile the kernels first
    ours = best_time(lambda: winding_inside(mesh.vertices, mesh.faces, grid.shape, grid.affine))
    start = time.perf_counter()
    contained = mesh.contains(centres)
    theirs = time.perf_counter() - start
    agreement = np.mean(winding_inside(mesh.vertices, mesh.faces, grid.shape, grid.affine).ravel() == contained)
    return [
        Measurement("fill a 5120-triangle sphere on 26^3 voxels", ours, theirs, "s", "trimesh.contains", goal_max=0.01),
        Measurement("voxels where both agree", float(agreement), 1.0, "fraction", "all voxels", goal_min=0.999),
    ]
