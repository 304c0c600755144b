"""A 3D scene for the browser: anatomy surfaces, needles and points, as compact JSON.

A :class:`Scene` holds triangle meshes (each with a colour, an opacity, a label and a highlight
flag), polylines and point markers, in LPS millimetres. :meth:`Scene.to_json` encodes it for the
dependency-free WebGL viewer ``assets/viewer3d.js`` (orbit, zoom, per-mesh colour, opacity and
visibility, labels): vertex positions quantised to 16 bits over each mesh's own bounding box
(a 100 mm structure keeps 1.5 um steps) and triangle indices as 16-bit integers, both
little-endian and base64 encoded. Meshes are decimated to a triangle budget first, so a scene of
the lumbar spine around one level stays a few hundred kilobytes. Every item has a label for the
legend; ``tagged`` items also carry it as a tag in the picture. Annotations are words about a point
("where the medicine goes"): a callout box off the point, joined to it by a leader line, placed
outward from the focus so that it does not cover the anatomy it names.

:func:`anatomy_scene` builds the usual scene from an anatomy: the structures near a point of
interest, cut to a box around it; :func:`needle_tube` turns a needle into a mesh. The attempt
report (``frontends.report``) and the patient explanation use them.

The JSON layout (version 1)::

    {"version": 1, "units": "mm", "frame": "LPS", "title": str, "focus": [x, y, z],
     "view": {"azimuth_deg": a, "elevation_deg": e, "distance_mm": d},
     "meshes": [{"name", "label", "tagged": bool, "color": [r, g, b] (0-1), "opacity", "highlight": bool,
                 "origin": [x, y, z], "scale": [sx, sy, sz], "positions": base64 uint16 (n, 3),
                 "indices": base64 uint16 (m, 3), "anchor": [x, y, z]}],
     "lines": [{"name", "label", "tagged", "color", "opacity", "points": [[x, y, z], ...]}],
     "markers": [{"name", "label", "tagged", "color", "position": [x, y, z], "size_px"}],
     "annotations": [{"name", "text", "color", "position": [x, y, z]}]}

``position = origin + scale * quantised``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pyvista as pv
from vtkmodules.vtkFiltersCore import vtkQuadricClustering

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.surfaces import label_surface
from simulator.needle.shaft import Needle

SCENE_FORMAT_VERSION = 1
# A mesh keeps at most this many triangles (and always fewer than 65536 vertices, for 16-bit indices).
MAX_TRIANGLES = 6000
_UINT16 = 65535

Color = tuple[float, float, float]


@dataclass(frozen=True)
class SceneMesh:
    """A triangle mesh: ``vertices`` (n, 3) LPS mm, ``faces`` (m, 3) vertex indices."""

    name: str
    label: str
    vertices: np.ndarray
    faces: np.ndarray
    color: Color
    opacity: float = 1.0
    highlight: bool = False
    tagged: bool = False


@dataclass(frozen=True)
class ScenePolyline:
    name: str
    label: str
    points: np.ndarray
    color: Color
    opacity: float = 1.0
    tagged: bool = False


@dataclass(frozen=True)
class SceneMarker:
    name: str
    label: str
    position: tuple[float, float, float]
    color: Color
    size_px: float = 10.0
    tagged: bool = True


@dataclass(frozen=True)
class SceneAnnotation:
    """Words about a point (LPS mm), shown as a callout with a leader line."""

    name: str
    text: str
    position: tuple[float, float, float]
    color: Color = (1.0, 1.0, 1.0)


@dataclass
class Scene:
    """What the viewer shows, and from where it first looks.

    Parameters
    ----------
    focus : (3,) LPS mm
        The point the camera orbits.
    azimuth_deg, elevation_deg : float
        First view direction: azimuth about the long axis from posterior (0) toward the patient's
        left (+90), elevation toward the head; degrees.
    distance_mm : float
        Camera distance from the focus, mm.
    """

    title: str
    focus: tuple[float, float, float]
    azimuth_deg: float = 35.0
    elevation_deg: float = 15.0
    distance_mm: float = 260.0
    meshes: list[SceneMesh] = field(default_factory=list)
    lines: list[ScenePolyline] = field(default_factory=list)
    markers: list[SceneMarker] = field(default_factory=list)
    annotations: list[SceneAnnotation] = field(default_factory=list)

    def add_mesh(self, mesh: SceneMesh) -> None:
        self.meshes.append(mesh)

    def to_json(self) -> dict:
        """The scene as JSON-serialisable data (module docstring)."""
        return {
            "version": SCENE_FORMAT_VERSION, "units": "mm", "frame": "LPS", "title": self.title,
            "focus": [round(float(v), 3) for v in self.focus],
            "view": {"azimuth_deg": self.azimuth_deg, "elevation_deg": self.elevation_deg,
                     "distance_mm": self.distance_mm},
            "meshes": [_mesh_json(m) for m in self.meshes],
            "lines": [{"name": line.name, "label": line.label, "tagged": line.tagged, "color": _color(line.color),
                       "opacity": line.opacity, "points": np.round(line.points, 2).tolist()} for line in self.lines],
            "markers": [{"name": m.name, "label": m.label, "tagged": m.tagged, "color": _color(m.color),
                         "position": [round(float(v), 3) for v in m.position], "size_px": m.size_px}
                        for m in self.markers],
            "annotations": [{"name": a.name, "text": a.text, "color": _color(a.color),
                             "position": [round(float(v), 3) for v in a.position]} for a in self.annotations],
        }


def _color(color: Color) -> list[float]:
    return [round(float(c), 4) for c in color]


def _mesh_json(mesh: SceneMesh) -> dict:
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if len(vertices) > _UINT16 + 1:
        raise SpinesimError(f"mesh {mesh.name!r} has {len(vertices)} vertices; decimate it below 65536")
    origin = vertices.min(axis=0)
    scale = np.maximum(vertices.max(axis=0) - origin, 1e-6) / _UINT16
    quantised = np.rint((vertices - origin) / scale).astype("<u2")
    return {"name": mesh.name, "label": mesh.label, "tagged": mesh.tagged, "color": _color(mesh.color),
            "opacity": mesh.opacity,
            "highlight": mesh.highlight, "origin": origin.round(4).tolist(), "scale": scale.tolist(),
            "positions": base64.b64encode(quantised.tobytes()).decode("ascii"),
            "indices": base64.b64encode(np.asarray(mesh.faces, dtype="<u2").tobytes()).decode("ascii"),
            "anchor": vertices.mean(axis=0).round(3).tolist()}


def decimated(surface: pv.PolyData, max_triangles: int = MAX_TRIANGLES) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) of ``surface`` triangulated and decimated to at most ``max_triangles``.

    Decimation is quadric clustering (vertices merged per cubic bin at the error-minimising point):
    some 20 times faster than edge-collapse decimation for the same budget, and even in detail. The
    bin starts where two triangles per bin of surface would meet the budget and grows until it does.
    """
    surface = surface.triangulate().clean()
    if surface.n_cells > max_triangles:
        extent = np.ptp(np.asarray(surface.points), axis=0)
        bin_mm = float(np.sqrt(2.0 * surface.area / max_triangles))
        while True:
            clustering = vtkQuadricClustering()
            clustering.SetInputData(surface)
            clustering.SetNumberOfDivisions(*(int(d) for d in np.maximum(np.ceil(extent / bin_mm), 1)))
            clustering.Update()
            reduced = pv.wrap(clustering.GetOutput()).clean()
            if reduced.n_cells <= max_triangles:
                surface = reduced
                break
            bin_mm *= 1.25
    faces = np.asarray(surface.faces).reshape(-1, 4)[:, 1:]
    return np.asarray(surface.points, dtype=np.float64), faces


def needle_tube(needle: Needle, radius_mm: float | None = None, sides: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) of the needle's shaft from hub to tip, a closed cylinder (LPS mm)."""
    radius = radius_mm if radius_mm is not None else needle.spec.outer_diameter_mm / 2.0
    tube = pv.Cylinder(center=(needle.hub + needle.tip) / 2.0, direction=needle.direction, radius=radius,
                       height=needle.spec.length_mm, resolution=sides, capping=True)
    return decimated(tube, 10 * sides)


@dataclass(frozen=True)
class Part:
    """One mesh of an anatomy scene: the structures in ``groups``, drawn in ``color`` at ``opacity``."""

    name: str
    label: str
    groups: tuple[str, ...]
    color: Color
    opacity: float = 1.0
    highlight: bool = False
    tagged: bool = False


def anatomy_scene(anatomy: Anatomy, title: str, focus: np.ndarray, parts: Sequence[Part], *,
                  exclude: Sequence[str] = (), half_size_mm: Sequence[float] = (70.0, 70.0, 75.0),
                  max_triangles: int = MAX_TRIANGLES) -> Scene:
    """A scene of anatomy around ``focus`` (LPS mm), cut to the box ``focus +- half_size_mm``.

    Parameters
    ----------
    parts : sequence of Part
        One mesh per part: the surface of every labelled structure of its groups inside the box;
        parts with no voxels there are left out.
    exclude : sequence of str
        Structures left out of every part that is not highlighted (they have a highlighted part of
        their own).
    """
    focus = np.asarray(focus, dtype=np.float64)
    half = np.asarray(half_size_mm, dtype=np.float64)
    if anatomy.labels is None:
        raise SpinesimError("this anatomy has no label map, so it has no structures to show in 3D")
    labels = anatomy.labels.crop(focus - half, focus + half)
    scene = Scene(title, tuple(focus.tolist()))
    present = set(np.unique(labels.array).tolist())
    excluded = {i for name in exclude for i in _ids(anatomy, name)}
    for part in parts:
        ids = {i for group in part.groups for i in _ids(anatomy, group)} & present
        if not part.highlight:
            ids -= excluded
        if not ids:
            continue
        vertices, faces = decimated(label_surface(labels, sorted(ids), smoothing_iterations=15), max_triangles)
        if len(faces):
            scene.add_mesh(SceneMesh(part.name, part.label, vertices, faces, part.color, part.opacity, part.highlight,
                                     part.tagged))
    return scene


def _ids(anatomy: Anatomy, group: str) -> list[int]:
    try:
        return anatomy.label_table.ids_in_group(group)
    except SpinesimError:
        return []
