"""The needle on fluoroscopy passes through the same chain as the anatomy it lies on."""
import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm
from simulator.imaging.drr import line_integrals
from simulator.imaging.fluoro import needle_as_projected, needle_blur_mm
from simulator.needle.shaft import Needle


def _spread_pixels(profile: np.ndarray) -> float:
    """Standard deviation (pixels) of a non-negative profile taken as a distribution."""
    weights = profile / profile.sum()
    at = np.arange(profile.size)
    mean = float(weights @ at)
    return float(np.sqrt(weights @ (at - mean) ** 2))


def test_the_needles_edges_are_as_soft_as_a_bone_edge_at_the_same_magnification():
    """A bone edge of the CT (a slab at the isocentre, its face in the plane of the central ray, hard labels on the
    built-in patient's 1 mm grid as the generator draws them) and the needle's shaft beside it, both at the
    isocentre: the line spread of the bone's edge (the derivative of its path-length profile across the face) and the needle's (its
    profile's spread less the shaft's own chord, a disc of radius r magnified M, variance (r M)^2 / 4, and the 4 x 4
    rays' pixel, 1/12 px^2) agree within 20%. Drawn sharp, the needle's spread was the pixel's alone (a sixth of
    the bone's at 1 mm): a pasted-on black vector (issue 16/21). A coarser CT's blur is its sampling's, not
    the detector's: the needle gets no more than a 1 mm CT's (needle_blur_mm)."""
    carm, voxel_mm = CArm(detector_pixels=384), 1.0
    half = 40
    count = int(2 * half / voxel_mm)
    bone = np.zeros((count, count, count), np.float32)
    x = -half + voxel_mm * (np.arange(count) + 0.5)
    bone[np.ix_(x > 0.0, np.abs(x) < 5.0, np.abs(x) < 30.0)] = 1.0  # path length in bone, mm per mm
    slab = Volume.from_spacing(bone, (voxel_mm,) * 3, origin=(x[0], x[0], x[0]))
    anatomy = Anatomy(ct=Volume.from_spacing(np.zeros((count,) * 3, np.int16), (voxel_mm,) * 3,
                                             origin=(x[0], x[0], x[0])))
    needle = Needle(entry=[-15.0, 0.0, -20.0], direction=[0.0, 0.0, 1.0], depth_mm=40.0)
    row = int(round(carm.project(np.array([[-15.0, 0.0, 0.0]]))[0, 1]))
    path = line_integrals(slab, carm)[row].astype(np.float64)
    steel = needle_as_projected(needle, carm, needle_blur_mm(anatomy, carm))[row].astype(np.float64)

    edge_column = int(round(carm.project(np.array([[0.0, 0.0, 0.0]]))[0, 0]))
    window = slice(edge_column - 12, edge_column + 13)
    # The difference of neighbouring pixels is a pixel's box (1/12 px^2), as the needle's 4 x 4 rays are.
    bone_sigma = np.sqrt(_spread_pixels(np.abs(np.diff(path[window]))) ** 2 - 1.0 / 12.0)
    shaft_column = int(round(carm.project(np.array([[-15.0, 0.0, 0.0]]))[0, 0]))
    chord_pixels = needle.spec.outer_diameter_mm / 2.0 * carm.magnification / carm.pixel_size_mm
    spread = _spread_pixels(steel[shaft_column - 12:shaft_column + 13])
    needle_sigma = np.sqrt(max(spread ** 2 - chord_pixels ** 2 / 4.0 - 1.0 / 12.0, 0.0))
    assert bone_sigma > 0.5
    assert needle_sigma == pytest.approx(bone_sigma, rel=0.2), (needle_sigma, bone_sigma)


def test_the_needle_is_drawn_from_its_tip_to_its_hub_end_as_projected():
    """The stop-26 expert needle of the TFESI on its Scotty dog view (LAO 20, cranial 2; the case's c01 in the blind
    read, "a floating 1.5 cm segment cut off at both ends inside the field"): the steel drawn at over 0.7 of the
    shaft's peak runs from the tip's projection (3 pixels: the Quincke bevel thins its last 1.5 mm) to the projection of
    the cannula's end inside the hub (2 pixels), all of it inside the field. It was drawn whole: the short segment was the needle 12.5 deg off the beam
    (tests/simulator/test_planner.py), the plastic hub faint over it. Here 101 px of 101 at 768."""
    carm = CArm(primary_deg=20.0, secondary_deg=2.0, isocenter=(0.0, 10.0, -45.0), detector_pixels=768)
    needle = Needle(entry=[48.0, 83.5, -53.1], direction=[-0.416, -0.893, 0.174], depth_mm=71.06)
    steel = needle_as_projected(needle, carm, 0.3)
    cannula_end = needle.hub - needle.spec.hub_length_mm * needle.direction
    tip, end = carm.project(np.array([needle.tip, cannula_end]))
    rows, columns = np.nonzero(steel > 0.7 * steel.max())
    axis = (end - tip) / np.linalg.norm(end - tip)
    along = (np.column_stack([columns, rows]) - tip) @ axis
    assert carm.field_mask()[rows, columns].all()
    assert abs(along.min()) <= 3.0 and abs(along.max() - np.linalg.norm(end - tip)) <= 2.0, \
        (along.min(), along.max(), np.linalg.norm(end - tip))

