"""The needle on fluoroscopy passes through the same chain as the anatomy it lies on."""
import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm
from simulator.imaging.dose import Technique, technique_for
from simulator.imaging.drr import line_integrals
from simulator.imaging.fluoro import DetectorModel, needle_as_projected, needle_blur_mm, render_fluoro
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



def _tfesi_needle_on_ap(anatomy):
    """A needle on the left L4-L5 safe triangle from the Scotty-dog view's axis, seen on the AP of L4 (512 px): the
    shaft ~30 degrees off the beam, nearly end-on, so its line integral is the AP's largest (1.07 on the 1 mm patient,
    1.3 of the AP's window)."""
    from simulator.imaging.carm import ap, scotty_dog

    direction = -scotty_dog(anatomy, "L4", "left").beam_direction
    target = anatomy.landmark("L4-L5.safe_triangle.left")
    return Needle(entry=target - 70.0 * direction, direction=direction, depth_mm=68.0), ap(anatomy, "L4")


def _across_shaft(image, carm, needle, fractions, half=8.0, steps=33):
    """Profiles (rows) of ``image`` across the shaft's projection at ``fractions`` of its depth back from the tip,
    ``steps`` samples over +-``half`` pixels (bilinear), and each point's magnification."""
    from scipy.ndimage import map_coordinates

    rows, magnifications = [], []
    offsets = np.linspace(-half, half, steps)
    for fraction in fractions:
        point = needle.tip - fraction * needle.depth_mm * needle.direction
        start, end = carm.project(point), carm.project(point - 5.0 * needle.direction)
        along = (end - start) / np.linalg.norm(end - start)
        points = start[None, :] + offsets[:, None] * np.array([-along[1], along[0]])[None, :]
        rows.append(map_coordinates(image.astype(np.float64), [points[:, 1], points[:, 0]], order=1))
        magnifications.append(carm.source_to_detector_mm / carm.depth(point))
    return np.array(rows), offsets, np.array(magnifications)


def _half_maximum_width(profile, offsets):
    """Width (pixels) of a dark dip at the profile's centre at half its depth below the profile's ends."""
    base = np.median(np.r_[profile[:5], profile[-5:]])
    depth = base - profile
    centre = profile.size // 2
    half = 0.5 * depth[centre - 2:centre + 3].max()
    left, right = centre, centre
    while depth[left - 1] >= half:
        left -= 1
    while depth[right + 1] >= half:
        right += 1

    def crossing(outside, inside):
        return offsets[outside] + (half - depth[outside]) / (depth[inside] - depth[outside]) * (offsets[inside]
                                                                                               - offsets[outside])
    return crossing(right + 1, right) - crossing(left - 1, left)


def _shaft_width_pixels(diameter_pixels, sigma_pixels):
    """The half-maximum width (pixels) of a solid shaft's line integral across it (a disc's chord, ``diameter_pixels``
    across on the detector) seen through a Gaussian of ``sigma_pixels`` and a pixel's box: numerically, the analytic
    profile convolved."""
    x = np.linspace(-12.0, 12.0, 24001)
    chord = 2.0 * np.sqrt(np.clip((diameter_pixels / 2.0) ** 2 - x ** 2, 0.0, None))
    gaussian = np.exp(-x ** 2 / (2.0 * sigma_pixels ** 2))
    box = (np.abs(x) <= 0.5).astype(float)
    profile = np.convolve(np.convolve(chord, gaussian / gaussian.sum(), "same"), box / box.sum(), "same")
    above = x[profile >= profile.max() / 2.0]
    return float(above.max() - above.min())


def test_a_22_g_shaft_on_the_ap_is_as_wide_as_its_steel_through_the_chain(spine_1mm):
    """The shaft's half-maximum width on the monitor (noiseless, along its deep 60%) is what a 0.72 mm shaft gives at
    its magnification through the needle's and the detector's blur, within a pixel. Past the window's black end it
    was clipped into a flat black core 4.4-5.5 px wide against 3.2 (issue 16's blind read: "a 12-18 G look")."""
    needle, carm = _tfesi_needle_on_ap(spine_1mm)
    image = render_fluoro(spine_1mm, carm, needle, dose=None).pixels
    profiles, offsets, magnifications = _across_shaft(image, carm, needle, np.linspace(0.05, 0.6, 12))
    sigma = np.hypot(needle_blur_mm(spine_1mm, carm), DetectorModel().blur_mm) / carm.pixel_size_mm
    for profile, magnification in zip(profiles, magnifications):
        expected = _shaft_width_pixels(needle.spec.outer_diameter_mm * magnification / carm.pixel_size_mm, sigma)
        assert abs(_half_maximum_width(profile, offsets) - expected) <= 1.0, (_half_maximum_width(profile, offsets),
                                                                               expected)


def test_the_shaft_shows_the_noise_of_the_photons_that_reach_it(spine_1mm):
    """Fewer photons reach the detector behind the steel (a third behind the AP's TFESI shaft), so its pixels are as
    noisy as the tissue's or more, never black and smooth: the noise (two seeds' difference over the shaft's core)
    at least 0.75 of the same pixels' without the needle (0.9-0.95 measured; main had 0.01, 98% of the core at 0), and
    no pixel of it black."""
    needle, carm = _tfesi_needle_on_ap(spine_1mm)
    pulse = technique_for("pulse", Technique())
    fractions = np.linspace(0.05, 0.6, 24)
    core = slice(15, 18)

    def noise(shown):
        first, second = (_across_shaft(render_fluoro(spine_1mm, carm, shown, dose=pulse, seed=seed).pixels, carm,
                                       needle, fractions)[0][:, core] for seed in (11, 12))
        return float(np.std(first - second) / np.sqrt(2.0)), first

    with_needle, shaft = noise(needle)
    without, _ = noise(None)
    assert with_needle >= 0.75 * without, (with_needle, without)
    assert shaft.min() > 0.0
