"""Mesh anatomy: named surface meshes -> structures -> a voxelised label map and a CT; and STL and GLB export.

A source is a mesh file or a folder of them (STL, OBJ, PLY, OFF, GLB/GLTF via trimesh; VTK/VTP via
pyvista). A file holding one part is named by its file stem; a scene gives one structure per named
node (GLB/GLTF nodes; OBJ objects ``o``, or groups ``g`` in an OBJ without objects). A name that is
a spinesim structure or a TotalSegmentator class keeps its meaning; a YAML table
``{mesh name: structure name}`` / ``{mesh name: {name: ..., tissue: ...}}`` names the others; any
other part becomes ``mesh.part_N``. File, folder and node names are never kept
in the anatomy (:func:`anatomy_models.labelmaps.generic_structure`): they often carry a patient's name.

Coordinates are LPS millimetres. Other units are scaled (``units="m"|"cm"``; glTF's own unit is the
metre, so GLB/GLTF files from 3D tools usually need ``units="m"``); a file whose header says
``SPACE=RAS`` (3D Slicer's convention for model files) has x and y negated. A GLB that spinesim wrote
declares its frame (:data:`GLTF_FRAME`) and is read back into LPS millimetres whatever ``units`` says.

Inside/outside uses the winding number, not parity: for each voxel centre it is counted with
signed ray crossings along +i, -i, +j, -j, +k and -k (6 rays) and averaged; a voxel is inside when
the average exceeds 1/2. For a closed, consistently oriented mesh all six agree and equal the exact
generalised winding number, so the result is exact. A ray through a hole in an open mesh miscounts
by one, but the other rays outvote it, so meshes with holes, overlapping shells or duplicated parts
still fill correctly. Face orientation is made consistent first (per connected part, outward).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numba
import numpy as np
import trimesh
from scipy import ndimage

from anatomy_models.anatomy import Anatomy
from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from anatomy_models.labelmaps import ct_from_labels, generic_structure, known_structure
from anatomy_models.structures import LabelTable, in_group
from anatomy_models.surfaces import label_surface
from anatomy_models.tissues import TISSUES
from anatomy_models.volume import Volume, check_image_size
from anatomy_models.yaml_source import read_yaml_file

ProgressCallback = Callable[[float, float, str], None]

TRIMESH_SUFFIXES = (".stl", ".obj", ".ply", ".off", ".glb", ".gltf")
PYVISTA_SUFFIXES = (".vtk", ".vtp")
MESH_SUFFIXES = TRIMESH_SUFFIXES + PYVISTA_SUFFIXES
UNITS_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
# Beyond this many voxels a grid is refused rather than exhausting memory: voxelising keeps about
# 8 bytes per voxel of work arrays (labels, CT, the winding accumulator, the body mask).
MAX_GRID_VOXELS = 300_000_000


def is_mesh_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in MESH_SUFFIXES


@dataclass(frozen=True)
class NamedMesh:
    """One named triangle mesh in LPS millimetres.

    Attributes
    ----------
    name : str
        Its name in the source (file stem or scene node name).
    vertices : numpy.ndarray, shape (n, 3)
        LPS mm.
    faces : numpy.ndarray, shape (m, 3)
        Vertex indices of each triangle.
    source : Path
        The file it came from.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    source: Path


# --------------------------------------------------------------------------- reading
def _checked(name: str, vertices: np.ndarray, faces: np.ndarray, path: Path) -> NamedMesh:
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    where = f"part {name!r}"
    if len(faces) == 0:
        raise SpinesimError("the mesh has no faces (empty mesh)", path=path, where=where)
    if not np.all(np.isfinite(vertices)):
        raise SpinesimError(f"{int(np.sum(~np.isfinite(vertices).all(axis=1)))} vertices are NaN or infinite",
                            path=path, where=where, hint="repair or re-export the mesh")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise SpinesimError("faces refer to vertices that do not exist", path=path, where=where)
    extent = np.ptp(vertices[np.unique(faces)], axis=0)
    if np.any(extent <= 0):
        raise SpinesimError(f"the mesh is flat (extent {extent.tolist()} mm): it encloses no volume", path=path, where=where)
    return NamedMesh(name, vertices, faces, path)


def _declares_ras(path: Path) -> bool:
    with open(path, "rb") as stream:
        return b"SPACE=RAS" in stream.read(4096)


def read_mesh_file(path: str | Path, *, units: str = "mm") -> list[NamedMesh]:
    """The named meshes in one file, in LPS mm (see the module docstring for names, units and RAS).

    Raises
    ------
    SpinesimError
        Unreadable or corrupt file, no faces, NaN vertices, a flat part, unknown units.
    """
    path = Path(path)
    if units not in UNITS_TO_MM:
        raise SpinesimError(f"unknown mesh units {units!r}", hint="use mm, cm or m")
    if not path.is_file():
        raise SpinesimError("mesh file not found", path=path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise SpinesimError(f"not a mesh format spinesim reads ({suffix or 'no suffix'})", path=path,
                            hint=f"use one of {', '.join(MESH_SUFFIXES)}")
    parts, in_patient_frame = (_read_pyvista(path), False) if suffix in PYVISTA_SUFFIXES else _read_trimesh(path)
    scale = np.ones(3) if in_patient_frame else np.full(3, UNITS_TO_MM[units])
    if _declares_ras(path):
        scale[:2] *= -1.0
    return [_checked(name, vertices * scale, faces, path) for name, vertices, faces in parts]


def _check_binary_stl_size(path: Path) -> None:
    """A binary STL states its triangle count; a shorter file is truncated (trimesh would read it as empty)."""
    with open(path, "rb") as stream:
        head = stream.read(84)
    size = path.stat().st_size
    if len(head) < 84 or head[:5].lower() == b"solid" and b"\0" not in head:
        return  # ASCII STL (or too short to be binary): trimesh parses and judges it
    expected = 84 + 50 * int(np.frombuffer(head[80:84], "<u4")[0])
    if size != expected:
        raise SpinesimError(f"binary STL header announces {(expected - 84) // 50} triangles ({expected} bytes) but the file "
                            f"has {size} bytes: truncated or corrupt", path=path, hint="re-export the mesh")


def _obj_split(path: Path) -> dict[str, bool]:
    """trimesh's options that make each object (``o``) of an OBJ one part, or each group (``g``) in a file
    without objects (trimesh merges them otherwise, and names a group inside an object ``object_group``)."""
    if path.suffix.lower() != ".obj":
        return {}
    with open(path, "rb") as stream:
        has_objects = any(line.startswith(b"o ") for line in stream)
    return {"split_objects": has_objects, "split_groups": not has_objects, "group_material": False}


def _read_trimesh(path: Path) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], bool]:
    """The file's named parts, and whether they were brought into LPS mm from a spinesim GLB's declared frame."""
    if path.suffix.lower() == ".stl":
        _check_binary_stl_size(path)
    try:
        scene = trimesh.load_scene(str(path), process=False, **_obj_split(path))
    # Third-party parsers raise anything on a corrupt file (struct.error, KeyError, IndexError, ...):
    # all of it means "this file cannot be read", said once, naming the file.
    except Exception as error:  # noqa: BLE001
        raise SpinesimError(f"cannot read the mesh ({type(error).__name__}: {error})", path=path,
                            hint="check that the file is complete and in the format its suffix says") from None
    nodes = [node for node in scene.graph.nodes_geometry
             if isinstance(scene.geometry.get(scene.graph[node][1]), trimesh.Trimesh)]
    if not nodes:
        raise SpinesimError("the file holds no triangle mesh (empty mesh)", path=path)
    parts = []
    in_patient_frame = scene.metadata.get(GLTF_FRAME_KEY) == GLTF_FRAME
    for node in nodes:
        transform, geometry_name = scene.graph[node]
        if in_patient_frame:
            transform = GLTF_TO_LPS_MM @ transform
        mesh = scene.geometry[geometry_name]
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        if vertices.ndim != 2 or vertices.shape[1] != 3:  # a damaged OBJ line can leave vertices of one coordinate
            raise SpinesimError(f"the mesh's vertices are not x y z triples (read as shape {vertices.shape})",
                                path=path, hint="check that the file is complete and in the format its suffix says")
        vertices = trimesh.transform_points(vertices, transform)
        parts.append((path.stem if len(nodes) == 1 else str(node), vertices, np.asarray(mesh.faces)))
    return parts, in_patient_frame


def _read_pyvista(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    import pyvista as pv

    try:
        data = pv.read(path)
        surface = data.extract_surface(algorithm="dataset_surface").triangulate()
    except Exception as error:  # noqa: BLE001 - as in _read_trimesh: any parser failure is a bad file
        raise SpinesimError(f"cannot read the mesh ({type(error).__name__}: {error})", path=path) from None
    if surface.n_cells == 0:
        raise SpinesimError("the mesh has no faces (empty or unreadable VTK file)", path=path)
    return [(path.stem, np.asarray(surface.points), surface.faces.reshape(-1, 4)[:, 1:])]


def read_mesh_source(path: str | Path, *, units: str = "mm") -> list[NamedMesh]:
    """Every named mesh in a mesh file, or in the mesh files of a folder (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and is_mesh_path(p))
        if not files:
            raise SpinesimError(f"no mesh files ({', '.join(MESH_SUFFIXES)}) in this folder", path=path)
        return [mesh for file in files for mesh in read_mesh_file(file, units=units)]
    return read_mesh_file(path, units=units)


def is_mesh_folder(path: str | Path) -> bool:
    """True for a folder holding at least one mesh file."""
    path = Path(path)
    return path.is_dir() and any(p.is_file() and is_mesh_path(p) for p in path.iterdir())


def read_mesh_names(path: str | Path) -> dict[str, tuple[str, str | None]]:
    """A YAML/JSON table mesh name -> (structure name, tissue or None); errors name the line.

    Examples of entries: ``vertebra_4: L4`` or ``body: {name: skin}`` or
    ``disc_45: {name: L4-L5.disc.annulus, tissue: disc_annulus}``.
    """
    path = Path(path)
    node, data = read_yaml_file(path)
    if not isinstance(data, dict):
        raise SpinesimError("a mesh name table must be a mapping {mesh name: structure name}", path=path)
    lines = {key.value: key.start_mark.line + 1 for key, _ in node.value} if node is not None else {}
    table: dict[str, tuple[str, str | None]] = {}
    for key, value in data.items():
        where = f"line {lines.get(str(key), '?')}, entry {key!r}"
        if isinstance(value, str):
            table[str(key)] = (value, None)
        elif isinstance(value, dict) and isinstance(value.get("name"), str):
            tissue = value.get("tissue")
            if tissue is not None and tissue not in TISSUES:
                raise SpinesimError(f"unknown tissue class {tissue!r}", path=path, where=where,
                                    hint=f"use one of: {', '.join(sorted(TISSUES))}")
            table[str(key)] = (value["name"], tissue)
        else:
            raise SpinesimError(f"expected a structure name or {{name, tissue}}, got {value!r}", path=path, where=where)
    return table


# --------------------------------------------------------------------------- winding number
@numba.njit(cache=True)
def _column_crossings(triangles, n_a, n_b, jitter_a, jitter_b, out_column, out_height, out_sign, store):
    """Walk every triangle over the grid columns (a, b) it covers; count (and store) each crossing.

    ``triangles`` has shape (m, 3, 3) in continuous index coordinates ordered (a, b, c), where c is
    the ray axis. A column is the line through the (jittered) voxel centres (a, b, *). Returns the
    crossing count.
    """
    count = 0
    for t in range(triangles.shape[0]):
        a0, b0, c0 = triangles[t, 0, 0], triangles[t, 0, 1], triangles[t, 0, 2]
        a1, b1, c1 = triangles[t, 1, 0], triangles[t, 1, 1], triangles[t, 1, 2]
        a2, b2, c2 = triangles[t, 2, 0], triangles[t, 2, 1], triangles[t, 2, 2]
        area = (a1 - a0) * (b2 - b0) - (b1 - b0) * (a2 - a0)
        if area == 0.0:
            continue
        lo_a = max(int(np.ceil(min(a0, a1, a2) - jitter_a)), 0)
        hi_a = min(int(np.floor(max(a0, a1, a2) - jitter_a)), n_a - 1)
        lo_b = max(int(np.ceil(min(b0, b1, b2) - jitter_b)), 0)
        hi_b = min(int(np.floor(max(b0, b1, b2) - jitter_b)), n_b - 1)
        for ia in range(lo_a, hi_a + 1):
            qa = ia + jitter_a
            for ib in range(lo_b, hi_b + 1):
                qb = ib + jitter_b
                w0 = (a2 - a1) * (qb - b1) - (b2 - b1) * (qa - a1)
                w1 = (a0 - a2) * (qb - b2) - (b0 - b2) * (qa - a2)
                w2 = (a1 - a0) * (qb - b0) - (b1 - b0) * (qa - a0)
                if area > 0.0:
                    inside = w0 > 0.0 and w1 > 0.0 and w2 > 0.0
                else:
                    inside = w0 < 0.0 and w1 < 0.0 and w2 < 0.0
                if not inside:
                    continue
                if store:
                    out_column[count] = ia * n_b + ib
                    out_height[count] = (w0 * c0 + w1 * c1 + w2 * c2) / area
                    out_sign[count] = 1 if area > 0.0 else -1
                count += 1
    return count


@numba.njit(cache=True)
def _add_column_windings(accumulator, n_b, jitter_c, columns, heights, signs):
    """Add, for each crossed column, the winding counts of its +c and -c rays to ``accumulator[a, b, :]``.

    ``columns``/``heights``/``signs`` are sorted by column, then height. For voxel k the ray towards
    +c meets the crossings above k, the ray towards -c those below (with the opposite sign), so
    up + down = total - 2 * below.
    """
    n_c = accumulator.shape[2]
    start = 0
    n = columns.shape[0]
    while start < n:
        end = start
        total = 0
        while end < n and columns[end] == columns[start]:
            total += signs[end]
            end += 1
        ia = columns[start] // n_b
        ib = columns[start] % n_b
        below = 0
        nxt = start
        for k in range(n_c):
            while nxt < end and heights[nxt] < k + jitter_c:
                below += signs[nxt]
                nxt += 1
            accumulator[ia, ib, k] += total - 2 * below
        start = end


def _oriented_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces with consistent winding inside each connected part, each part turned to face outward."""
    mesh = trimesh.Trimesh(vertices, faces, process=True, validate=False)
    trimesh.repair.fix_winding(mesh)
    oriented = np.asarray(mesh.faces).copy()
    points = np.asarray(mesh.vertices)
    for part in trimesh.graph.connected_components(mesh.face_adjacency, nodes=np.arange(len(oriented)), min_len=1):
        tri = points[oriented[part]]
        tri = tri - tri.reshape(-1, 3).mean(axis=0)
        # Signed volume of the part (divergence theorem); near-closed parts get its sign right too.
        if np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:
            oriented[part] = oriented[part][:, ::-1]
    return points[oriented]


def winding_inside(vertices: np.ndarray, faces: np.ndarray, shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """Boolean array (``shape``): voxel centres of the grid ``affine`` that the mesh encloses.

    Parameters
    ----------
    vertices : numpy.ndarray, shape (n, 3)
        LPS mm.
    faces : numpy.ndarray, shape (m, 3)
    shape : tuple of 3 int
    affine : numpy.ndarray, shape (4, 4)
        Voxel -> LPS mm of the grid.

    Examples
    --------
    >>> box = trimesh.creation.box(extents=(4.0, 4.0, 4.0))
    >>> grid = Volume.from_spacing(np.zeros((8, 8, 8)), (1.0, 1.0, 1.0), origin=(-3.5, -3.5, -3.5))
    >>> int(winding_inside(box.vertices, box.faces, grid.shape, grid.affine).sum())   # 4 x 4 x 4 voxels
    64
    """
    triangles = _oriented_faces(vertices, faces)
    inverse = np.linalg.inv(affine)
    index = triangles @ inverse[:3, :3].T + inverse[:3, 3]
    accumulator = np.zeros(shape, dtype=np.int16)
    # Every ray starts from the voxel centre moved by this tiny irrational offset (in voxels): it keeps
    # rays off shared edges and vertices and off faces through voxel centres (meshes built on
    # grid-aligned numbers hit them exactly), so no crossing is counted twice or missed, and all six
    # rays agree on which side of a face the voxel is.
    jitter = np.array([1.234567e-7, 2.718281e-7, 3.141592e-7])
    for axis in range(3):
        order = ((axis + 1) % 3, (axis + 2) % 3, axis)  # (a, b, c): a cyclic, right-handed order
        tri = np.ascontiguousarray(index[:, :, order])
        n_a, n_b = shape[order[0]], shape[order[1]]
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        j_a, j_b, j_c = jitter[list(order)]
        count = _column_crossings(tri, n_a, n_b, j_a, j_b, empty_i, empty_f, np.zeros(0, np.int8), False)
        columns, heights, signs = np.empty(count, np.int64), np.empty(count, np.float64), np.empty(count, np.int8)
        _column_crossings(tri, n_a, n_b, j_a, j_b, columns, heights, signs, True)
        sort = np.lexsort((heights, columns))
        _add_column_windings(np.transpose(accumulator, order), n_b, j_c, columns[sort], heights[sort],
                             signs[sort].astype(np.int64))
    # Six rays per voxel: inside when their mean winding exceeds 1/2 (abs: a mirrored grid flips signs).
    return np.abs(accumulator) > 3


# --------------------------------------------------------------------------- mesh -> anatomy
@dataclass(frozen=True)
class _Structure:
    name: str
    tissue: str
    meshes: tuple[NamedMesh, ...]


def _structure_names(meshes: list[NamedMesh], names: dict[str, tuple[str, str | None]]) -> list[tuple[str, str]]:
    """(structure, tissue) of each mesh: from the user's table, a known name, or ``mesh.part_N`` (N counts these)."""
    result = []
    unnamed = 0
    for mesh in meshes:
        if mesh.name in names:
            name, tissue = names[mesh.name]
            result.append((name, tissue or generic_structure(name, "mesh", 0)[1]))
            continue
        unnamed += known_structure(mesh.name) is None
        result.append(generic_structure(mesh.name, "mesh", unnamed))
    return result


def _structures(meshes: list[NamedMesh], names: dict[str, tuple[str, str | None]]) -> list[_Structure]:
    grouped: dict[str, tuple[str, list[NamedMesh]]] = {}
    for mesh, (name, tissue) in zip(meshes, _structure_names(meshes, names)):
        grouped.setdefault(name, (tissue, []))[1].append(mesh)
    return [_Structure(name, tissue, tuple(parts)) for name, (tissue, parts) in grouped.items()]


def mesh_grid(meshes: list[NamedMesh], spacing_mm: float, margin_mm: float) -> Volume:
    """An axis-aligned LPS grid (empty uint16 array) over the meshes' bounds plus a margin."""
    if not (np.isfinite(spacing_mm) and spacing_mm > 0):
        raise SpinesimError(f"voxel spacing must be a positive number of mm, got {spacing_mm}")
    points = np.concatenate([m.vertices for m in meshes])
    low = points.min(axis=0) - margin_mm
    shape = np.ceil((points.max(axis=0) + margin_mm - low) / spacing_mm) + 1
    if np.prod(shape) > MAX_GRID_VOXELS:
        raise SpinesimError(f"a {spacing_mm:g} mm grid over the meshes ({np.ptp(points, axis=0).round().tolist()} mm) "
                            f"would have {' x '.join(f'{n:.0f}' for n in shape)} voxels, more than the limit of "
                            f"{MAX_GRID_VOXELS:,} (about {np.prod(shape) * 8 / 1024 ** 3:,.1f} GiB of memory)",
                            hint="use a larger --spacing, or check --mesh-units (a model in metres read as mm is tiny, "
                                 "one in mm read as metres is huge)")
    shape = tuple(int(n) for n in shape)
    check_image_size(shape, np.uint16, what="the voxel grid of the meshes")
    return Volume.from_spacing(np.zeros(shape, np.uint16), (spacing_mm,) * 3, origin=low)


def _structure_mask(structure: _Structure, grid: Volume) -> tuple[tuple[slice, ...], np.ndarray]:
    """The structure's inside mask on the part of ``grid`` around it (its index box and the mask)."""
    vertices = np.concatenate([m.vertices for m in structure.meshes])
    ijk = grid.world_to_voxel(np.stack([vertices.min(axis=0), vertices.max(axis=0)]))
    box = tuple(slice(max(int(np.floor(lo)), 0), min(int(np.ceil(hi)) + 1, n))
                for lo, hi, n in zip(ijk.min(axis=0), ijk.max(axis=0), grid.shape))
    sub = grid.sub_volume(*box)
    offsets = np.cumsum([0] + [len(m.vertices) for m in structure.meshes[:-1]])
    faces = np.concatenate([m.faces + offset for m, offset in zip(structure.meshes, offsets)])
    return box, winding_inside(vertices, faces, sub.shape, sub.affine)


def voxelise_meshes(meshes: list[NamedMesh], *, spacing_mm: float = 1.0, margin_mm: float = 10.0,
                    names: dict[str, tuple[str, str | None]] | None = None,
                    progress: ProgressCallback | None = None) -> tuple[Volume, LabelTable, np.ndarray | None, list[str]]:
    """Label map of named meshes on a grid of ``spacing_mm`` over their bounds plus ``margin_mm``.

    Where structures overlap, the smaller one keeps the voxel (a nucleus inside its annulus, a
    vertebra inside a body outline). A structure named ``skin`` is taken as the body surface: its
    outermost voxel layer is labelled ``skin`` and its inside is returned as the body mask.

    Returns
    -------
    labels : Volume
        uint16 label ids.
    table : LabelTable
    body : numpy.ndarray of bool or None
        Inside the skin surface, if there is one.
    notes : list of str
    """
    structures = _structures(meshes, names or {})
    grid = mesh_grid(meshes, spacing_mm, margin_mm)
    masks = []
    for done, structure in enumerate(structures):
        if progress:
            progress(done, len(structures), structure.name)
        box, mask = _structure_mask(structure, grid)
        count = int(mask.sum())
        if count == 0:
            files = ", ".join(sorted({str(m.source) for m in structure.meshes}))
            raise SpinesimError(f"mesh {structure.meshes[0].name!r} encloses no voxel at {spacing_mm} mm spacing "
                                "(open sheet, zero volume, or smaller than a voxel)", path=files,
                                hint="use a finer --spacing or check --mesh-units")
        masks.append((count, structure, box, mask))
    if progress:
        progress(len(structures), len(structures), "painting labels")
    labels = np.zeros(grid.shape, dtype=np.uint16)
    table = LabelTable()
    body = None
    notes = [f"{len(meshes)} mesh part(s) voxelised at {spacing_mm:g} mm by winding number"]
    for count, structure, box, mask in sorted(masks, key=lambda item: -item[0]):
        label = table.add(structure.name, structure.tissue)
        if structure.name == "skin":
            body = np.zeros(grid.shape, dtype=bool)
            body[box] = mask
            mask = mask & ~ndimage.binary_erosion(mask, border_value=0)
            notes.append("the skin mesh outlines the body: its outer voxel layer is skin, its inside soft tissue")
        labels[box][mask] = label.id
    return grid.with_array(labels), table, body, notes


def mesh_anatomy(path: str | Path, *, spacing_mm: float = 1.0, units: str = "mm", names_path: str | Path | None = None,
                 margin_mm: float = 10.0, progress: ProgressCallback | None = None) -> Anatomy:
    """An anatomy from a mesh file or folder: voxelised labels and a CT painted from the tissue table.

    CT numbers are each structure's tissue HU; outside every structure air, or soft tissue inside a
    ``skin`` surface if the source has one.

    Parameters
    ----------
    spacing_mm : float
        Voxel size of the grid (mm).
    units : str
        Length unit of the mesh coordinates: ``"mm"`` (default), ``"cm"`` or ``"m"``.
    names_path : path, optional
        YAML table mesh name -> structure (:func:`read_mesh_names`).
    margin_mm : float
        Air (or body) around the meshes' bounds (mm).
    """
    path = Path(path)
    meshes = read_mesh_source(path, units=units)
    names = read_mesh_names(names_path) if names_path else None
    labels, table, body, notes = voxelise_meshes(meshes, spacing_mm=spacing_mm, margin_mm=margin_mm,
                                                 names=names, progress=progress)
    return Anatomy(ct=ct_from_labels(labels, table, body=body), label_table=table, labels=labels,
                   metadata={"source": "meshes", "import_notes": notes})


# --------------------------------------------------------------------------- STL export
_STL_RECORD = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])


def write_stl(triangles: np.ndarray, path: str | Path, *, header: str = "spinesim SPACE=LPS units=mm") -> Path:
    """Write triangles (shape (m, 3, 3), LPS mm) as a binary STL; the header says SPACE=LPS for Slicer."""
    triangles = np.asarray(triangles, dtype=np.float64)
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    records = np.zeros(len(triangles), dtype=_STL_RECORD)
    records["normal"] = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    records["vertices"] = triangles
    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        stream.write(header.encode("ascii")[:80].ljust(80, b" "))
        stream.write(np.uint32(len(records)).tobytes())
        stream.write(records.tobytes())
    return path


# An exported surface keeps about this many triangles at most: a larger one is made again with a coarser
# marching-cubes step (which keeps it closed, where decimation would open it). A vertebra of the 1 mm
# patient has fewer; the skin drops from 1.3 M triangles (63 MB) to about 40 k.
MAX_EXPORT_TRIANGLES = 40_000
# A structure name whose first part is one of these is a part of that bone (``L4.pedicle.left`` of ``L4``).
_WHOLE_BONE = re.compile(r"^(?:T\d{1,2}|L\d|S\d|C\d|Co\d?|sacrum|coccyx)$")


def export_groups(names: list[str]) -> list[str]:
    """The structures an STL export writes, one file each: whole bones (every part of ``L4`` in ``L4``),
    whole discs (annulus and nucleus), everything else as it is named.

    Examples
    --------
    >>> export_groups(["L4.body", "L4.pedicle.left", "L4-L5.disc.annulus", "L4-L5.disc.nucleus", "skin"])
    ['L4', 'L4-L5.disc', 'skin']
    """
    groups = []
    for name in names:
        first = name.split(".")[0]
        group = first if _WHOLE_BONE.match(first) else (
            name.rsplit(".", 1)[0] if ".disc." in name else name)
        if group not in groups:
            groups.append(group)
    return groups


def _export_surfaces(anatomy: Anatomy, parts: bool, max_triangles: int,
                     progress: ProgressCallback | None) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(structure, vertices in LPS mm, triangles) of every structure an export writes: whole bones and discs
    (:func:`export_groups`), or with ``parts`` every row of the label table (``L4.pedicle.left``). A surface of
    more than ``max_triangles`` triangles is made again with a coarser marching-cubes step, so it stays as
    closed as the structure's voxels allow (decimating the fine one would open it).

    The skin is a shell a few voxels thick: made again on a coarser step it shatters into islands (156 on the
    built-in patient at MAX_GLB_TRIANGLES). It is exported as the body's envelope it forms, the surface of every
    labelled voxel, one closed surface."""
    if anatomy.labels is None:
        raise SpinesimError("this anatomy has no label map, so it has no structures to export as surfaces")
    present = set(np.unique(anatomy.labels.array).tolist()) - {0}
    names = [label.name for label in anatomy.label_table if label.id in present]
    groups = names if parts else export_groups(names)
    for done, group in enumerate(groups):
        if progress:
            progress(done, len(groups), group)
        surface = anatomy.surface(group).triangulate()
        if surface.n_cells > max_triangles or group == "skin":
            # The envelope has fewer triangles than the shell (its outer sheet alone): this step keeps it in the limit.
            step = max(math.ceil(math.sqrt(surface.n_cells / max_triangles)), 1)
            ids = sorted(present) if group == "skin" else anatomy.label_table.ids_in_group(group)
            surface = label_surface(anatomy.labels, ids, step_voxels=step)
        faces = surface.faces.reshape(-1, 4)[:, 1:]
        yield group, separated_vertices(np.asarray(surface.points), faces), faces


# :func:`separated_vertices` keeps the triangles' vertices at least MIN_VERTEX_GAP_MM apart, moving a vertex too
# near others by a multiple of VERTEX_SEPARATION_MM: a micrometre, below any printer's or viewer's resolution.
# The gap is above what readers weld (trimesh: 1e-8 mm; float32's step is 6e-5 mm a metre from the origin, but
# 1e-10 mm near it, where midline structures lie) and above float32's step anywhere in a patient.
MIN_VERTEX_GAP_MM = 1e-4
VERTEX_SEPARATION_MM = 1e-3


def separated_vertices(vertices: np.ndarray, faces: np.ndarray, *, max_rounds: int = 8) -> np.ndarray:
    """``vertices`` with the triangles' vertices at least :data:`MIN_VERTEX_GAP_MM` apart, so the surface reads
    back as closed as its triangles are.

    Taubin smoothing pulls some vertices of thin structures onto each other (to 1e-9 mm). STL keeps no vertex
    links: a reader welds near-equal positions, and a smoothed surface that is closed by its triangles reads
    back with collapsed triangles and edges shared by four (47 of the 1 mm patient's 124 STLs). Of vertices
    too near each other, the k-th (k = 0, 1, ...) moves k :data:`VERTEX_SEPARATION_MM` towards the centre of
    its own neighbours.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    vertices = vertices.astype(np.float64, copy=True)
    used = np.unique(faces)
    centres = np.zeros_like(vertices)
    neighbours = np.zeros(len(vertices))
    for a, b in ((0, 1), (1, 2), (2, 0)):
        np.add.at(centres, faces[:, a], vertices[faces[:, b]])
        np.add.at(neighbours, faces[:, a], 1.0)
    towards = centres / np.maximum(neighbours, 1.0)[:, None] - vertices
    lengths = np.linalg.norm(towards, axis=1, keepdims=True)
    towards = np.divide(towards, lengths, out=np.zeros_like(towards), where=lengths > 0)
    for _ in range(max_rounds):
        pairs = cKDTree(vertices[used]).query_pairs(MIN_VERTEX_GAP_MM, output_type="ndarray")
        if len(pairs) == 0:
            return vertices
        links = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(used), len(used)))
        _, group = connected_components(links, directed=False)
        order = np.argsort(group, kind="stable")
        rank = np.empty(len(used))
        rank[order] = np.arange(len(used)) - np.searchsorted(group[order], group[order])
        vertices[used] += (rank * VERTEX_SEPARATION_MM)[:, None] * towards[used]
    raise SpinesimError(f"{len(pairs)} pairs of an exported surface's vertices stay on top of each other",
                        hint="report this with the anatomy; the surface would not read back closed")


def export_structure_stls(anatomy: Anatomy, directory: str | Path, *, parts: bool = False,
                          max_triangles: int = MAX_EXPORT_TRIANGLES,
                          progress: ProgressCallback | None = None) -> list[Path]:
    """One binary STL per structure of ``anatomy`` in ``directory`` (:func:`_export_surfaces`), for 3D printing.

    Files are named ``<structure>.stl``, in LPS millimetres, with ``SPACE=LPS`` in the header (so
    3D Slicer places them without flipping), each closed and at most about ``max_triangles`` triangles.
    """
    directory = Path(directory)
    written = []
    for group, vertices, faces in _export_surfaces(anatomy, parts, max_triangles, progress):
        directory.mkdir(parents=True, exist_ok=True)
        written.append(write_stl(vertices[faces], directory / f"{group}.stl"))
    return written


# glTF's frame: +Y up, the asset's front toward +Z, metres (glTF 2.0 specification, "Coordinate System and
# Units"). A patient standing up in it: x = left (L), y = superior (S), z = anterior (-P).
LPS_MM_TO_GLTF = np.array([[0.001, 0.0, 0.0, 0.0], [0.0, 0.0, 0.001, 0.0], [0.0, -0.001, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
GLTF_TO_LPS_MM = np.linalg.inv(LPS_MM_TO_GLTF)
# The scene's extras in a GLB spinesim writes say how its vertices came from the patient's LPS millimetres, so
# spinesim (or any reader that looks) puts the structures back where the STL, NIfTI and DICOM exports have them.
GLTF_FRAME_KEY = "spinesim_frame"
GLTF_FRAME = "LPS millimetres to glTF: x = left, y = superior, z = anterior, metres"
# A whole-patient GLB fits a web viewer's download in this many bytes (issue 22's budget): the built-in 1 mm
# patient's structures at MAX_GLB_TRIANGLES each (python -m frontends.cli anatomy export default --format glb).
GLB_SIZE_BUDGET_BYTES = 20_000_000
MAX_GLB_TRIANGLES = 15_000
# Display colours by tissue class (RGB 0-1), the colours of an anatomy atlas: bone ivory, disc blue-grey, nerve
# yellow, vessels red, CSF and dura pale blue, muscle red-brown, fat and skin pale [ED].
GLB_TISSUE_COLOURS = {"cortical_bone": (0.93, 0.89, 0.78), "cancellous_bone": (0.93, 0.89, 0.78),
                      "disc_annulus": (0.62, 0.74, 0.86), "disc_nucleus": (0.45, 0.60, 0.85),
                      "cartilage": (0.75, 0.85, 0.90), "nerve": (0.98, 0.85, 0.25), "spinal_cord": (0.98, 0.85, 0.25),
                      "blood": (0.80, 0.12, 0.12), "csf": (0.60, 0.80, 0.95), "dura": (0.70, 0.85, 0.95),
                      "ligament": (0.85, 0.80, 0.55), "muscle": (0.70, 0.30, 0.25), "fat": (0.95, 0.88, 0.55),
                      "skin": (0.95, 0.80, 0.70)}
GLB_OTHER_COLOUR = (0.75, 0.75, 0.75)


def export_glb(anatomy: Anatomy, path: str | Path, *, parts: bool = False, max_triangles: int = MAX_GLB_TRIANGLES,
               progress: ProgressCallback | None = None) -> list[Path]:
    """One binary glTF (``.glb``) for 3D viewers: a named node per structure (:func:`_export_surfaces`), each a
    closed surface of at most about ``max_triangles`` triangles coloured by its tissue, in glTF's frame
    (:data:`LPS_MM_TO_GLTF`: metres, the patient upright, facing +Z), declared in the scene's extras
    (:data:`GLTF_FRAME`). Reads back with :func:`read_mesh_file`, one structure per node, in LPS millimetres."""
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise SpinesimError("a GLB export is one file ending in .glb", path=path, hint="name the output e.g. patient.glb")
    tissue = {label.name: label.tissue for label in anatomy.label_table}
    scene = trimesh.Scene(metadata={GLTF_FRAME_KEY: GLTF_FRAME})
    for group, vertices, faces in _export_surfaces(anatomy, parts, max_triangles, progress):
        first = next(label.name for label in anatomy.label_table if in_group(label.name, group))
        colour = GLB_TISSUE_COLOURS.get(tissue[first], GLB_OTHER_COLOUR)
        material = trimesh.visual.material.PBRMaterial(name=group, baseColorFactor=[*colour, 1.0],
                                                       metallicFactor=0.0, roughnessFactor=0.8)
        mesh = trimesh.Trimesh(trimesh.transform_points(vertices, LPS_MM_TO_GLTF), faces, process=False,
                               visual=trimesh.visual.TextureVisuals(material=material))
        scene.add_geometry(mesh, node_name=group, geom_name=group)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        Path(temporary).write_bytes(scene.export(file_type="glb"))
    return [path]


def describe_meshes(meshes: list[NamedMesh]) -> dict[str, Any]:
    """Counts, bounds and names of meshes, as printable strings."""
    points = np.concatenate([m.vertices for m in meshes])
    low, high = points.min(axis=0), points.max(axis=0)
    return {
        "parts": str(len(meshes)),
        "triangles": str(sum(len(m.faces) for m in meshes)),
        "extent (mm, LPS)": ", ".join(f"{lo:.1f}..{hi:.1f}" for lo, hi in zip(low, high)),
        "structures": ", ".join(name for name, _ in _structure_names(meshes, {})),
    }
