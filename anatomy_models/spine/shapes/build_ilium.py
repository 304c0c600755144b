"""Build ``hip_bone_sdf.npz`` (the real left hip bone as a signed-distance grid) from MRI2PSM's pelvic mesh.

Run once, by hand, from a checkout of github.com/manishsreenivasa/mri2psm (zlib licence, see
``hip_bone_README.md``)::

    python -m anatomy_models.spine.shapes.build_ilium MRI2PSM/sampleData/meshes/data_default_female_meshes.mat

The source holds both hip bones of one adult woman (Visible Human Project female, segmented from MRI by
the MRI2PSM authors) as one mesh, in mm, x posterior, y to the patient's right, z superior. This script
takes the left hip bone, smooths its 5 mm facets (two Loop subdivisions), turns it into a signed distance
(negative inside) on a 0.5 mm grid and resamples that on :data:`SPACING_MM` in the template's frame: u to
the left (lateral), v posterior, w superior, its origin at the centre of the auricular surface. It stores
the distances as int8 in steps of :data:`QUANTUM_MM`, clipped at :data:`CLIP_MM`, with the auricular
surface's normal and the crest's summit (template frame, mm). Over the iliac fossa the wing is thinned
(:func:`thin_fossa`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io
import trimesh
from scipy import ndimage

OUTPUT = Path(__file__).with_name("hip_bone_sdf.npz")
SPACING_MM = 1.0
QUANTUM_MM = 0.1
CLIP_MM = 12.0
FINE_MM = 0.5
MARGIN_MM = 10.0
# The auricular surface: the medial face of the posterior ilium (behind this v, above this w in the source
# bone's frame before centring, mm), the vertices within AURICULAR_DEPTH_MM of its most medial point [ED].
AURICULAR_REGION_MM = (90.0, -30.0)
AURICULAR_DEPTH_MM = 8.0
# The iliac fossa: the MRI segmentation draws the wing 4-10 mm thick (its median 7.8 mm), where the blade is
# two cortices with little cancellous bone between, thin enough to be translucent on a radiograph [ED: 1-3 mm
# in the fossa's centre, thicker toward the crest, the posterior ilium and the pelvic brim]. Over the fossa
# the wing is thinned to FOSSA_FRACTION of its thickness (never below FOSSA_MIN_MM): the thicker pillar from
# the acetabulum up to the iliac tubercle keeps its relief. The thinning fades out FOSSA_MARGINS_MM from the
# crest (starting 8 mm below its top, complete 12 mm further down), in front of the auricular surface (v from
# -25 to -40 mm) and above the pelvic brim (w from -35 to -20 mm) [ED].
FOSSA_FRACTION = 0.3
FOSSA_MIN_MM = 1.5
FOSSA_MARGINS_MM = {"crest": (8.0, 12.0), "auricular": (25.0, 15.0), "brim": (-35.0, 15.0)}
# The plate's local thickness is smoothed over this (a Gaussian's sigma, mm), and so is the thinning, so that
# no seam between two parts of the plate's medial axis shows as a line on a radiograph [ED].
SMOOTHING_MM = (3.0, 1.5)


def left_hip_bone(path: Path) -> trimesh.Trimesh:
    """The left hip bone of MRI2PSM's default pelvis in the template's axes (u left, v posterior, w up), mm."""
    data = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    pelvis = data["data_default_female_meshes"][0]
    mesh = trimesh.Trimesh(np.asarray(pelvis.vertices, float), np.asarray(pelvis.faces, int) - 1, process=True)
    bones = mesh.split(only_watertight=True)
    if len(bones) != 2:
        raise SystemExit(f"{path}: expected the two hip bones as two closed surfaces, found {len(bones)}")
    left = min(bones, key=lambda bone: bone.vertices[:, 1].mean())
    x, y, z = left.vertices.T
    # (x posterior, y right, z up) -> (u left, v posterior, w up) is a proper rotation: the faces keep their order.
    bone = trimesh.Trimesh(np.column_stack([-y, x, z]), left.faces, process=True)
    trimesh.repair.fix_normals(bone)
    return bone.subdivide_loop(2)


def auricular_surface(bone: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Centre and unit normal (pointing medially, toward the sacrum) of the plane fitted to the auricular
    surface: the medial face of the posterior ilium above the greater sciatic notch."""
    u, v, w = bone.vertices.T
    facing = bone.vertex_normals[:, 0] < -0.5
    region = facing & (v > AURICULAR_REGION_MM[0]) & (w > AURICULAR_REGION_MM[1])
    surface = bone.vertices[region & (u < u[region].min() + AURICULAR_DEPTH_MM)]
    centre = surface.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((surface - centre).T))
    normal = vectors[:, 0] * np.sign(-vectors[0, 0])
    return centre, normal


def crest_summit(bone: trimesh.Trimesh, centre: np.ndarray) -> np.ndarray:
    """The crest's summit (its highest point) in the template frame (mm, origin at the auricular surface's
    centre): what the generator puts at Tuffier's line."""
    return bone.vertices[np.argmax(bone.vertices[:, 2])] - centre


def signed_distance(bone: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (mm, negative inside) of ``bone`` on a :data:`FINE_MM` grid, and its origin."""
    voxels = bone.voxelized(FINE_MM).fill()
    inside = np.pad(voxels.matrix, int(MARGIN_MM / FINE_MM))
    origin = voxels.translation - MARGIN_MM
    outside_mm = ndimage.distance_transform_edt(~inside) * FINE_MM
    inside_mm = ndimage.distance_transform_edt(inside) * FINE_MM
    # Half a voxel each side puts the surface between the last inside and the first outside voxel.
    return np.where(inside, 0.5 * FINE_MM - inside_mm, outside_mm - 0.5 * FINE_MM).astype(np.float32), origin


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def thin_fossa(sdf: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """``sdf`` (mm, on :data:`SPACING_MM` from ``origin`` in the template frame) with the iliac fossa thinned.

    The plate's local half-thickness is the signed distance on its medial axis (the inside voxels whose depth
    is a local maximum), spread to every voxel from the nearest such voxel and smoothed; the surface then
    moves in by half the thickness the fossa loses, under the weight that fades the thinning out toward the
    crest, the auricular surface and the pelvic brim (:data:`FOSSA_MARGINS_MM`)."""
    inside = sdf < 0
    depth = -sdf
    axis = inside & (depth >= ndimage.maximum_filter(depth, size=3) - 1e-6) & (depth < CLIP_MM - 0.5)
    nearest = ndimage.distance_transform_edt(~axis, return_distances=False, return_indices=True)
    thickness = 2.0 * ndimage.gaussian_filter(depth[tuple(nearest)], SMOOTHING_MM[0] / SPACING_MM)
    u, v, w = np.meshgrid(*[origin[i] + SPACING_MM * np.arange(sdf.shape[i]) for i in range(3)], indexing="ij")
    # The crest's height over each (u, v) column: the highest inside voxel.
    top = origin[2] + SPACING_MM * (sdf.shape[2] - 1 - np.argmax(inside[:, :, ::-1], axis=2))
    top = np.where(inside.any(axis=2), top, -np.inf)[:, :, None]
    margins = FOSSA_MARGINS_MM
    weight = (_smoothstep((top - w - margins["crest"][0]) / margins["crest"][1])
              * _smoothstep((-v - margins["auricular"][0]) / margins["auricular"][1])
              * _smoothstep((w - margins["brim"][0]) / margins["brim"][1]))
    thinned = np.maximum(FOSSA_FRACTION * thickness, np.minimum(thickness, FOSSA_MIN_MM))
    loss = weight * (thickness - thinned) / 2.0
    return sdf + ndimage.gaussian_filter(loss, SMOOTHING_MM[1] / SPACING_MM)


def build(path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``hip_bone_sdf.npz`` from MRI2PSM's mesh file ``path``."""
    bone = left_hip_bone(path)
    centre, normal = auricular_surface(bone)
    fine, fine_origin = signed_distance(bone)
    low = np.floor(bone.bounds[0] - centre - 3.0)
    high = np.ceil(bone.bounds[1] - centre + 3.0)
    axes = [np.arange(a, b + SPACING_MM / 2, SPACING_MM) for a, b in zip(low, high)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1) + centre
    index = (grid - fine_origin) / FINE_MM
    sdf = ndimage.map_coordinates(fine, index.reshape(-1, 3).T, order=1, mode="nearest").reshape(grid.shape[:3])
    sdf = thin_fossa(np.clip(sdf, -CLIP_MM, CLIP_MM), low)
    quantised = np.clip(np.rint(sdf / QUANTUM_MM), -CLIP_MM / QUANTUM_MM, CLIP_MM / QUANTUM_MM).astype(np.int8)
    arrays = {"left": quantised, "origin_mm": low, "spacing_mm": np.float64(SPACING_MM),
              "quantum_mm": np.float64(QUANTUM_MM), "auricular_normal": normal,
              "crest_summit_mm": crest_summit(bone, centre)}
    return arrays


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    result = build(Path(sys.argv[1]))
    np.savez_compressed(OUTPUT, **result)
    print(OUTPUT, OUTPUT.stat().st_size, "bytes;", {k: np.round(v, 1) for k, v in result.items() if k != "left"})
