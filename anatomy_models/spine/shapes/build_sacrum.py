"""Build ``sacrum_sdf.npz`` (a real adult sacrum and coccyx as signed-distance grids) from the Visible Human
Male surfaces of Andreassen et al. (Sci Data 2023; CC BY 4.0, see ``sacrum_README.md``).

Run once, by hand, with the two surfaces of the data set (github.com/ingvilddevold/muscle-growth keeps a copy)::

    python -m anatomy_models.spine.shapes.build_sacrum VHM_Left_Bone_Sacrum_smooth.stl VHM_Left_Bone_Coccyx_smooth.stl

The surfaces are in mm, x across the body, y anterior, z inferior (the cryosection stack's order); this script
turns them into the template's axes (u to the left, v posterior, w superior: a half-turn about x, so the faces
keep their order), finds S1's superior endplate (:func:`endplate_frame`) and re-expresses both bones in the
endplate's frame squared to the sacrum's midline (:func:`midline_frame`): origin at the endplate's centre moved
onto the midline, w along its normal (out of the sacral base), v posterior in its plane, u across. The bone's own
canal, foramina and the holes of the segmentation are filled (:func:`filled_sections`, :func:`closed`): the
generator carves its own canal, foramina and hiatus into the solid, where its nerve roots, epidural fill and
targets are. The distances are stored as int8 in steps of :data:`QUANTUM_MM`, clipped at :data:`CLIP_MM`, with the
measurements :func:`measurements` makes on the unfilled bone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import trimesh
from scipy import ndimage

OUTPUT = Path(__file__).with_name("sacrum_sdf.npz")
SPACING_MM = 1.0
QUANTUM_MM = 0.1
CLIP_MM = 12.0  # at most 12.7: int8 steps of QUANTUM_MM
FINE_MM = 0.5
MARGIN_MM = 10.0
# S1's endplate: the surface facing up and forward (the first guess of its normal, template axes), in the
# midline (ENDPLATE_HALF_WIDTH_MM), within ENDPLATE_TOP_MM of the bone's highest point along that normal; the
# plane fitted to it is refined, ENDPLATE_ROUNDS times, on the surface within ENDPLATE_PLANE_MM of it whose
# normal is within acos(ENDPLATE_COS) of its own, always within ENDPLATE_HALF_WIDTH_MM of the midline: inside
# the body (26 mm half-width on the source), off the alae and the bases of the superior articular processes,
# which face up and back and tilted the plane 7 degrees back when the refinement reached 30 mm out [ED].
ENDPLATE_GUESS = np.array([0.0, -0.5, 0.85])
ENDPLATE_HALF_WIDTH_MM = 15.0
ENDPLATE_TOP_MM = 15.0
ENDPLATE_PLANE_MM = 2.0
ENDPLATE_COS = 0.85
ENDPLATE_ROUNDS = 6
# The frame is then squared to the sacrum's own midline (midline_frame): turned about its posterior axis (within
# MIDLINE_ROLL_DEG, in steps of MIDLINE_ROLL_STEP_DEG) so that the middle of the bone's extent across, every
# MIDLINE_STEP_MM from MIDLINE_W_MM[0] to [1] along the normal, runs along it, and moved across onto that middle:
# the endplate's own sideways tilt and its centre are the specimen's, 2-5 mm off its bilateral midline, which
# left the lower sacrum 5 mm to one side of the patient's midline and its dorsal surface 4-6 mm further back on
# that side than on the other, under the generator's symmetric canal and foramina [ED].
MIDLINE_W_MM = (-20.0, -100.0)
MIDLINE_STEP_MM = 10.0
MIDLINE_ROLL_DEG = 8.0
MIDLINE_ROLL_STEP_DEG = 0.1
# The endplate's width and depth are measured on the section ENDPLATE_SECTION_MM under the fitted plane (under
# the ring apophysis's rim, above the alae): the depth along the midline from the front to the canal, the width
# the widest over the body's anterior ENDPLATE_WIDTH_BAND_MM (from 5 mm behind its front; behind it the alae
# join the body) [ED].
ENDPLATE_SECTION_MM = 4.0
ENDPLATE_WIDTH_BAND_MM = (5.0, 12.0)
# The foramina (7-13 mm across, sacrum.FORAMEN_SIZES_MM) are closed by a closing of this radius after the
# canal and the holes of each section are filled [ED].
CLOSING_MM = 7.0
# The canal's profile (canal_profile): sampled every PROFILE_STEP_MM of w; a row whose lumen behind the S1 body's
# posterior wall spans more than PROFILE_AP_MM[1] is a hole of the segmentation in a body, not the canal, and one
# under PROFILE_AP_MM[0] a pinch of the segmentation between S1's and S2's laminae; the rest is smoothed by a
# running median of PROFILE_MEDIAN rows [ED].
PROFILE_STEP_MM = 2.0
# The auricular surfaces: on the lateral masses of S1-S3, from AURICULAR_W_MM[0] to [1] along the endplate's
# normal (the source's S1 endplate to its S3), the surface within AURICULAR_DEPTH_MM of the most lateral [ED].
AURICULAR_W_MM = (-10.0, -60.0)
AURICULAR_DEPTH_MM = 8.0
PROFILE_AP_MM = (3.0, 15.0)
PROFILE_MEDIAN = 5


def template_mesh(path: Path) -> trimesh.Trimesh:
    """The surface at ``path`` in the template's axes (u left, v posterior, w up), mm."""
    mesh = trimesh.load(path, force="mesh")
    x, y, z = mesh.vertices.T
    bone = trimesh.Trimesh(np.column_stack([x, -y, -z]), mesh.faces, process=True)
    trimesh.repair.fix_normals(bone)
    return bone


def endplate_frame(bone: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Centre and rotation (columns: across, posterior, normal) of the plane fitted to S1's superior endplate."""
    points, normals = bone.vertices, bone.vertex_normals
    midline = 0.5 * (points[:, 0].min() + points[:, 0].max())
    guess = ENDPLATE_GUESS / np.linalg.norm(ENDPLATE_GUESS)
    height = points @ guess
    chosen = (np.abs(points[:, 0] - midline) < ENDPLATE_HALF_WIDTH_MM) & (normals @ guess > 0.7)
    chosen &= height > height[chosen].max() - ENDPLATE_TOP_MM
    normal = guess
    for _ in range(ENDPLATE_ROUNDS):
        surface = points[chosen]
        centre = surface.mean(axis=0)
        _, vectors = np.linalg.eigh(np.cov((surface - centre).T))
        normal = vectors[:, 0] * np.sign(vectors[:, 0] @ guess)
        chosen = ((normals @ normal > ENDPLATE_COS) & (np.abs((points - centre) @ normal) < ENDPLATE_PLANE_MM)
                  & (np.abs(points[:, 0] - midline) < ENDPLATE_HALF_WIDTH_MM))
    posterior = np.cross(normal, [1.0, 0.0, 0.0])
    posterior /= np.linalg.norm(posterior)
    across = np.cross(posterior, normal)
    return centre, np.column_stack([across, posterior, normal])


def midline_frame(bone: trimesh.Trimesh, centre: np.ndarray, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The endplate's frame squared to the bone's midline (see :data:`MIDLINE_W_MM`): the roll about its
    posterior axis that makes the middles of the bone's sections run straight down its normal, and the centre
    moved across onto their mean."""
    heights = np.arange(MIDLINE_W_MM[0], MIDLINE_W_MM[1] - MIDLINE_STEP_MM / 2.0, -MIDLINE_STEP_MM)

    def middles(turn: np.ndarray) -> np.ndarray:
        points = (bone.vertices - centre) @ turn
        return np.array([np.mean([f(points[np.abs(points[:, 2] - w) < 1.0, 0]) for f in (np.min, np.max)])
                         for w in heights])

    def rolled(degrees: float) -> np.ndarray:
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        across, posterior, normal = rotation.T
        return np.column_stack([c * across + s * normal, posterior, c * normal - s * across])
    rolls = np.arange(-MIDLINE_ROLL_DEG, MIDLINE_ROLL_DEG + MIDLINE_ROLL_STEP_DEG / 2.0, MIDLINE_ROLL_STEP_DEG)
    best = rolled(min(rolls, key=lambda r: abs(np.polyfit(heights, middles(rolled(r)), 1)[0])))
    return centre + best[:, 0] * float(np.mean(middles(best))), best


def in_frame(bone: trimesh.Trimesh, centre: np.ndarray, rotation: np.ndarray) -> trimesh.Trimesh:
    """``bone`` in the endplate's frame (a proper rotation: the faces keep their order)."""
    return trimesh.Trimesh((bone.vertices - centre) @ rotation, bone.faces, process=True)


def mask(bone: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """``bone`` filled into a :data:`FINE_MM` voxel mask with :data:`MARGIN_MM` around it, and the origin."""
    voxels = bone.voxelized(FINE_MM).fill()
    pad = int(MARGIN_MM / FINE_MM)
    return np.pad(voxels.matrix, pad), voxels.translation - pad * FINE_MM


def filled_sections(inside: np.ndarray) -> np.ndarray:
    """``inside`` with the holes of every section across each axis filled: the canal (closed in front by the
    bodies, behind by the dorsal wall, down to the hiatus) and the foramina."""
    filled = inside.copy()
    for axis in range(3):
        filled |= np.stack([ndimage.binary_fill_holes(section) for section in np.moveaxis(filled, axis, 0)], axis=axis)
    return filled


def closed(inside: np.ndarray) -> np.ndarray:
    """``inside`` closed by a ball of :data:`CLOSING_MM` (a dilation then an erosion, by distances): it fills
    no outer concavity wider than the foramina."""
    dilated = ndimage.distance_transform_edt(~inside) * FINE_MM <= CLOSING_MM
    return inside | (ndimage.distance_transform_edt(dilated) * FINE_MM > CLOSING_MM)


def signed_distance(inside: np.ndarray) -> np.ndarray:
    """Signed distance (mm, negative inside) of a :data:`FINE_MM` mask."""
    outside_mm = ndimage.distance_transform_edt(~inside) * FINE_MM
    inside_mm = ndimage.distance_transform_edt(inside) * FINE_MM
    # Half a voxel each side puts the surface between the last inside and the first outside voxel.
    return np.where(inside, 0.5 * FINE_MM - inside_mm, outside_mm - 0.5 * FINE_MM).astype(np.float32)


def section(inside: np.ndarray, origin: np.ndarray, depth_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mask's section ``depth_mm`` under the endplate's plane (w = -depth_mm), with its u and v axes."""
    k = int(round((-depth_mm - origin[2]) / FINE_MM))
    u = origin[0] + FINE_MM * np.arange(inside.shape[0])
    v = origin[1] + FINE_MM * np.arange(inside.shape[1])
    return inside[:, :, k], u, v


def measurements(inside: np.ndarray, filled: np.ndarray, origin: np.ndarray) -> dict[str, float]:
    """The bone's sacral dimensions (mm), on the unfilled mask in the endplate's frame: S1's endplate width and
    depth, the alae's breadth (the widest across the bone), the sacral height (promontory to apex, straight),
    and the hiatus's apex (the lowest point of the dorsal wall over the canal in the midline) as its height
    above the apex of the sacrum, along the same line."""
    cut, u, v = section(inside, origin, ENDPLATE_SECTION_MM)
    midline = cut[np.abs(u) < 2.0].any(axis=0)
    front = int(np.argmax(midline))
    back = front + int(np.argmin(midline[front:]))
    band = cut[:, front + int(ENDPLATE_WIDTH_BAND_MM[0] / FINE_MM):front + int(ENDPLATE_WIDTH_BAND_MM[1] / FINE_MM)]
    width = max(float(np.ptp(u[band[:, k]])) + FINE_MM for k in range(band.shape[1]) if band[:, k].any())
    points = origin + FINE_MM * np.argwhere(inside)
    breadth = float(np.ptp(points[:, 0])) + FINE_MM
    # The promontory: the front of the endplate's section at the midline; the apex: the bone's lowest point in
    # the midline (the sacrum's far end from the promontory).
    promontory = np.array([0.0, v[front], -ENDPLATE_SECTION_MM])
    central = points[np.abs(points[:, 0]) < 5.0]
    apex = central[np.argmax(np.linalg.norm(central - promontory, axis=1))]
    axis = (promontory - apex) / np.linalg.norm(promontory - apex)
    return {"endplate_width_mm": width, "endplate_depth_mm": (back - front) * FINE_MM, "breadth_mm": breadth,
            "height_mm": float(np.linalg.norm(promontory - apex)), "promontory_mm": promontory, "apex_mm": apex,
            "hiatus_apex_mm": hiatus_apex(inside, filled, origin), "axis": axis}


def hiatus_apex(inside: np.ndarray, filled: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """The apex of the sacral hiatus (endplate frame, mm): the lowest point of the canal in the midline where
    it is still closed behind by the dorsal wall (the sections' filled holes, ``filled``, less the bone)."""
    i = int(round(-origin[0] / FINE_MM))
    lumen = (filled & ~inside)[i - 2:i + 3].any(axis=0)  # (v, w), a 2.5 mm thick mid-sagittal slab
    cells = np.argwhere(lumen)
    low = cells[np.argmin(cells[:, 1])]
    return origin + FINE_MM * np.array([i, low[0], low[1]])


def auricular_surface(bone: trimesh.Trimesh, side: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and unit outward normal (endplate frame) of the plane fitted to the auricular surface of the side
    ``side`` (+1 left, -1 right): the lateral face of the lateral masses (normals within 60 degrees of lateral)
    between AURICULAR_W_MM under the endplate, within AURICULAR_DEPTH_MM of the most lateral such point."""
    u, v, w = bone.vertices.T
    facing = (bone.vertex_normals[:, 0] * side > 0.5) & (w < AURICULAR_W_MM[0]) & (w > AURICULAR_W_MM[1])
    surface = bone.vertices[facing & (u * side > (u[facing] * side).max() - AURICULAR_DEPTH_MM)]
    centre = surface.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((surface - centre).T))
    normal = vectors[:, 0] * np.sign(vectors[0, 0] * side)
    return centre, normal


def canal_profile(inside: np.ndarray, filled: np.ndarray, origin: np.ndarray, top: tuple[float, float],
                  bottom_w: float) -> dict[str, np.ndarray]:
    """The sacral canal in the midline, every :data:`PROFILE_STEP_MM` of w from ``top`` (w, v of the S1 body's
    posterior wall under the endplate) down to ``bottom_w`` (the hiatus's apex): its front (the bodies'
    posterior walls), its back (the dorsal wall's inner face) and the bodies' anterior surface (v, mm). Rows
    where the canal's lumen behind the bodies is too deep or too shallow (:data:`PROFILE_AP_MM`) are dropped, the
    rest smoothed by a running median of :data:`PROFILE_MEDIAN` rows."""
    i = int(round(-origin[0] / FINE_MM))
    lumen = (filled & ~inside)[i - 2:i + 3].any(axis=0)
    bone = inside[i - 2:i + 3].any(axis=0)
    v = origin[1] + FINE_MM * np.arange(lumen.shape[0])
    rows = []
    for w in np.arange(top[0] - PROFILE_STEP_MM, bottom_w - PROFILE_STEP_MM / 2, -PROFILE_STEP_MM):
        k = int(round((w - origin[2]) / FINE_MM))
        behind = np.flatnonzero(lumen[:, k] & (v > top[1] - 2.0))
        if len(behind) and PROFILE_AP_MM[0] < v[behind[-1]] - v[behind[0]] < PROFILE_AP_MM[1]:
            rows.append((w, v[behind[0]], v[behind[-1]] + FINE_MM, v[np.flatnonzero(bone[:, k])[0]]))
    table = np.array(rows)
    smooth = ndimage.median_filter(table[:, 1:], size=(PROFILE_MEDIAN, 1), mode="nearest")
    first = np.array([[top[0], top[1], smooth[0, 1], smooth[0, 2]]])
    table = np.vstack([first, np.column_stack([table[:, 0], smooth])])
    return {"canal_w_mm": table[:, 0], "canal_front_v_mm": table[:, 1], "canal_back_v_mm": table[:, 2],
            "anterior_v_mm": table[:, 3]}


def build(sacrum_path: Path, coccyx_path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``sacrum_sdf.npz`` from the two surfaces."""
    sacrum, coccyx = template_mesh(sacrum_path), template_mesh(coccyx_path)
    centre, rotation = midline_frame(sacrum, *endplate_frame(sacrum))
    arrays: dict[str, np.ndarray] = {"spacing_mm": np.float64(SPACING_MM), "quantum_mm": np.float64(QUANTUM_MM),
                                     "source_endplate_centre_mm": centre, "source_rotation": rotation}
    for name, bone in (("sacrum", sacrum), ("coccyx", coccyx)):
        placed = in_frame(bone, centre, rotation)
        inside, fine_origin = mask(placed)
        filled = filled_sections(inside)
        if name == "sacrum":
            measured = measurements(inside, filled, fine_origin)
            back = measured["promontory_mm"][1] + measured["endplate_depth_mm"]
            measured.update(canal_profile(inside, filled, fine_origin, (-ENDPLATE_SECTION_MM, back),
                                          measured["hiatus_apex_mm"][2]))
            for key, side in (("left", 1.0), ("right", -1.0)):
                measured[f"auricular_{key}_centre_mm"], measured[f"auricular_{key}_normal"] = \
                    auricular_surface(placed, side)
            arrays.update({key: np.asarray(value, dtype=np.float64) for key, value in measured.items()})
        fine = signed_distance(closed(filled))
        low = np.floor(placed.bounds[0] - 3.0)
        high = np.ceil(placed.bounds[1] + 3.0)
        axes = [np.arange(a, b + SPACING_MM / 2, SPACING_MM) for a, b in zip(low, high)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        index = (grid - fine_origin) / FINE_MM
        sdf = ndimage.map_coordinates(fine, index.reshape(-1, 3).T, order=1, mode="nearest").reshape(grid.shape[:3])
        arrays[name] = np.clip(np.rint(sdf / QUANTUM_MM), -CLIP_MM / QUANTUM_MM, CLIP_MM / QUANTUM_MM).astype(np.int8)
        arrays[f"{name}_origin_mm"] = low
    return arrays


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    result = build(Path(sys.argv[1]), Path(sys.argv[2]))
    np.savez_compressed(OUTPUT, **result)
    print(OUTPUT, OUTPUT.stat().st_size, "bytes;",
          {k: np.round(v, 1) for k, v in result.items() if k not in ("sacrum", "coccyx")})
