"""3D scenes: the compact encoding round-trips within its quantisation, meshes stay within budget,
anatomy parts and highlights are cut where they should be, a needle tube has the needle's geometry."""

import base64

import numpy as np
import pytest
import pyvista as pv

from anatomy_models.errors import SpinesimError
from frontends.pictures.scene3d import (MAX_TRIANGLES, Part, Scene, SceneAnnotation, SceneMesh, anatomy_scene,
                                        decimated, needle_tube)
from scenarios.needles import NeedleSpec
from simulator.needle.shaft import Needle


def _decode(mesh: dict) -> tuple[np.ndarray, np.ndarray]:
    quantised = np.frombuffer(base64.b64decode(mesh["positions"]), dtype="<u2").reshape(-1, 3)
    faces = np.frombuffer(base64.b64decode(mesh["indices"]), dtype="<u2").reshape(-1, 3)
    return np.asarray(mesh["origin"]) + np.asarray(mesh["scale"]) * quantised, faces


def test_meshes_round_trip_within_half_a_quantisation_step():
    sphere = pv.Sphere(radius=23.0, center=(10.0, -40.0, 5.0), theta_resolution=40, phi_resolution=40)
    vertices, faces = decimated(sphere, 10_000)
    scene = Scene("sphere", (0.0, 0.0, 0.0))
    scene.add_mesh(SceneMesh("ball", "a ball", vertices, faces, (1.0, 0.5, 0.0), 0.5, highlight=True))
    data = scene.to_json()
    decoded, decoded_faces = _decode(data["meshes"][0])
    step = np.asarray(data["meshes"][0]["scale"])
    assert np.all(np.abs(decoded - vertices) <= step / 2 + 1e-4)
    assert np.array_equal(decoded_faces, faces)
    assert np.allclose(np.linalg.norm(decoded - (10.0, -40.0, 5.0), axis=1), 23.0, atol=0.01)
    assert data["meshes"][0]["highlight"] and data["meshes"][0]["opacity"] == 0.5


def test_meshes_are_decimated_to_the_budget_and_refused_beyond_16_bit_indices():
    dense = pv.Sphere(theta_resolution=300, phi_resolution=300)
    vertices, faces = decimated(dense, 2000)
    assert len(faces) <= 2000 and faces.max() < len(vertices)
    grid = np.zeros((70_000, 3))
    with pytest.raises(SpinesimError, match="decimate it below 65536"):
        Scene("big", (0, 0, 0), meshes=[SceneMesh("big", "", grid, np.zeros((1, 3), int), (1, 1, 1))]).to_json()


def test_anatomy_scene_cuts_parts_to_the_box_and_keeps_highlights_apart(small_spine):
    focus = small_spine.landmark("L4-L5.safe_triangle.left")
    root = "nerve_root.L4.left"
    parts = [Part("bone", "L4", ("L4",), (1, 1, 1)), Part("roots", "roots", ("nerve_root",), (1, 1, 0)),
             Part("flag", "root contact", (root,), (1, 0, 0), highlight=True), Part("none", "T12", ("T12",), (1, 1, 1))]
    scene = anatomy_scene(small_spine, "test", focus, parts, exclude=[root], half_size_mm=(40, 40, 40))
    by_name = {m.name: m for m in scene.meshes}
    assert set(by_name) == {"bone", "roots", "flag"}  # T12 lies outside the box
    for mesh in scene.meshes:
        assert np.all(np.abs(mesh.vertices - focus) <= 40.0 + 2 * 2.0) and len(mesh.faces) <= MAX_TRIANGLES
    assert by_name["flag"].highlight
    whole = anatomy_scene(small_spine, "test", focus, parts[1:2], half_size_mm=(40, 40, 40)).meshes[0]
    assert len(by_name["roots"].vertices) < len(whole.vertices)


def test_a_needle_tube_runs_from_hub_to_tip_at_its_radius():
    needle = Needle(entry=[10.0, 80.0, 0.0], direction=[0.0, -0.8, 0.6], depth_mm=50.0, spec=NeedleSpec("quincke", 22, 88.9))
    vertices, faces = needle_tube(needle, radius_mm=0.5)
    along = (vertices - needle.hub) @ needle.direction
    across = np.linalg.norm((vertices - needle.hub) - along[:, None] * needle.direction, axis=1)
    assert along.min() == pytest.approx(0.0, abs=1e-4) and along.max() == pytest.approx(88.9, abs=1e-4)
    assert np.all(across <= 0.5 + 1e-4) and across.max() == pytest.approx(0.5, abs=1e-4) and len(faces) > 0


def test_annotations_are_written_with_their_words_point_and_colour():
    scene = Scene("spine", (0.0, 0.0, 0.0))
    scene.annotations.append(SceneAnnotation("target", "where the medicine goes", (1.0, 2.5, -3.25), (0.2, 0.9, 0.4)))
    assert scene.to_json()["annotations"] == [{"name": "target", "text": "where the medicine goes",
                                               "color": [0.2, 0.9, 0.4], "position": [1.0, 2.5, -3.25]}]
