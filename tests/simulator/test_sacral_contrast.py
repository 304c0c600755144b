"""The sacrum's contrast looks against what they must show: the sacroiliac arthrogram stays in the joint until
the joint is full and then spreads beside it; the caudal epidurogram rises up the canal and outlines the sacral
roots on both sides (the Christmas tree); a tip on the canal's front wall is in the venous plexus and washes
out; iodine is conserved in every look. On the 2 mm patient, targets from its landmarks and labels."""

from __future__ import annotations

import numpy as np
import pytest

from anatomy_models.structures import in_group
from simulator.case.targets import CAUDAL_ADVANCE_MM, CAUDAL_SAC_MARGIN_MM, canal_axis
from simulator.needle.contrast import ROOT_SLEEVE_MM, contrast_volume
from simulator.needle.sacral_contrast import (CAUDAL_ROOT_SLEEVE_MM, SI_CAPSULE_ML, SI_RIM_MM, _in_plane_edge_mm, _near,
                                              dural_sac_end, inject_sacral, sacral_look)
from simulator.needle.trace import tracer_for

IODINE = 300.0  # mg/mL, the medium


@pytest.fixture(scope="module")
def tracer(small_spine):
    return tracer_for(small_spine)


def _caudal_tip(tracer):
    apex = tracer.anatomy.landmark("sacral_hiatus.apex")
    return apex + CAUDAL_ADVANCE_MM * canal_axis(tracer, apex)


def _filled(tracer, spread, seconds, threshold=1.0):
    """World points (mm) and structures of the voxels holding more than ``threshold`` mg/mL."""
    volume = spread.concentration(seconds)
    points = volume.voxel_to_world(np.argwhere(volume.array > threshold))
    return points, [tracer.structure_at(p) for p in points]


def test_the_sacroiliac_arthrogram_stays_in_the_joint_until_it_is_full(tracer, small_spine):
    tip = small_spine.landmark("sacroiliac_joint.left.inferior_third")
    assert sacral_look(tracer, tip) == "sacroiliac_arthrogram"
    small = inject_sacral(tracer, tip, 0.5, IODINE)
    points, names = _filled(tracer, small, 10.0)
    assert small.pattern == "intra_articular" and not small.ruptured
    assert np.mean([in_group(n, "sacroiliac_joint.left") for n in names]) > 0.9, "0.5 mL stays in the joint"
    # A line up the joint: far taller than it is thick.
    assert np.ptp(points[:, 2]) >= 15.0
    large = inject_sacral(tracer, tip, 2.5, IODINE)
    _, names = _filled(tracer, large, 10.0)
    outside = np.mean([not in_group(n, "sacroiliac_joint") for n in names])
    assert large.ruptured and 2.5 > SI_CAPSULE_ML and outside > 0.25, "beyond what it holds it spreads beside it"
    for spread, ml in ((small, 0.5), (large, 2.5)):
        assert spread.iodine_mg(10.0) == pytest.approx(ml * IODINE, rel=1e-6)


def test_the_sacroiliac_arthrogram_outlines_the_inferior_recess_then_climbs_the_joint(tracer, small_spine):
    """From the joint's inferior third (Fortin 1999): 0.3 mL already reaches the inferior recess (contrast within
    4 mm of the joint's lowest point) and 1 mL climbs at least 10 mm higher up the joint; the contrast outlines
    the joint: a voxel of its margin (within SI_RIM_MM of the cleft's edge) holds at least 3x what one of the
    middle of its faces holds (the readers saw the earlier even fill as "a pool outside the joint")."""
    tip = small_spine.landmark("sacroiliac_joint.left.inferior_third")
    joint_points = tracer.volume.voxel_to_world(np.argwhere(np.isin(tracer.codes,
                                                                    tracer.codes_in_group("sacroiliac_joint.left"))))
    small_points, _ = _filled(tracer, inject_sacral(tracer, tip, 0.3, IODINE, seed=[2, 0]), 5.0)
    large = inject_sacral(tracer, tip, 1.0, IODINE, seed=[2, 0])
    large_points, _ = _filled(tracer, large, 5.0)
    assert small_points[:, 2].min() <= joint_points[:, 2].min() + 4.0, "the inferior recess first"
    assert large_points[:, 2].max() >= small_points[:, 2].max() + 10.0, "then cranially along the joint"
    volume = large.concentration(5.0)
    joint = np.isin(tracer.volume.resample_like(volume, order=0).array, tracer.codes_in_group("sacroiliac_joint.left"))
    edge = _in_plane_edge_mm(joint, volume)
    filled = joint & (volume.array > 0)
    margin, faces = volume.array[filled & (edge <= SI_RIM_MM)], volume.array[filled & (edge > SI_RIM_MM)]
    assert margin.mean() >= 3.0 * faces.mean(), (margin.mean(), faces.mean())


def test_the_caudal_epidurogram_rises_up_the_canal_along_the_sacral_roots_on_both_sides(tracer):
    tip = _caudal_tip(tracer)
    assert sacral_look(tracer, tip) == "caudal_epidurogram"
    spread = inject_sacral(tracer, tip, 3.0, IODINE)
    assert spread.pattern == "epidural" and spread.iodine_mg(20.0) == pytest.approx(900.0, rel=1e-6)
    points, names = _filled(tracer, spread, 20.0)
    # 3 mL rises ~47 mm up the canal on this patient (with no preference for the canal's axis, 37 mm).
    assert points[:, 2].max() - tip[2] >= 42.0, "it rises up the canal"
    roots = tracer.nerve_root_distance(points)
    sacral = np.array([p for p, d in zip(points, roots) if d <= ROOT_SLEEVE_MM])
    sleeve = [n for n, d in zip(names, roots) if d <= ROOT_SLEEVE_MM and not in_group(n, "epidural_space")]
    assert len(sacral) and sleeve, "it outlines the sacral roots, out along their sleeves"
    assert (sacral[:, 0] > tip[0] + 5.0).any() and (sacral[:, 0] < tip[0] - 5.0).any(), "on both sides"
    assert not any(in_group(n, "dural_sac") for n in names)


def test_the_caudal_epidurogram_outlines_the_roots_out_of_the_s3_foramina_not_a_filled_canal(tracer):
    """3 mL from the hiatus, 20 s on: a Christmas tree, not a filled box. In the canal, the voxels within the roots'
    cuff (CAUDAL_ROOT_SLEEVE_MM) hold on average at least 1.5 times what its fat away from the roots holds (2.4 on
    the 2 mm patient; filled evenly 0.7, the blind reader's "same black blob", issue 16), and the column climbs to
    the S3 foramina and out along both S3 roots: at least 0.03 mL of the medium in each S3 root's cuff outside the
    canal (0.12 and 0.11; filled evenly 0.01)."""
    tip = _caudal_tip(tracer)
    volume = inject_sacral(tracer, tip, 3.0, IODINE).concentration(20.0)
    codes = tracer.volume.resample_like(volume, order=0).array
    canal = np.isin(codes, tracer.codes_in_group("epidural_space"))
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    for side in ("left", "right"):
        root = np.isin(codes, tracer.codes_in_group(f"nerve_root.S3.{side}"))
        sleeve = _near(root, volume, CAUDAL_ROOT_SLEEVE_MM) & ~canal & ~root
        assert volume.array[sleeve].sum() * voxel_ml / IODINE >= 0.03, side
    cuff = _near(np.isin(codes, tracer.root_codes()), volume, CAUDAL_ROOT_SLEEVE_MM)
    filled = canal & (volume.array > 0)
    outlined = volume.array[filled & cuff].mean() / volume.array[filled & ~cuff].mean()
    assert outlined >= 1.5, outlined


def _left_over_right(volume, tip) -> float:
    """The iodine more than 2 mm to the patient's left (+x) of the tip against that more than 2 mm to its right."""
    x = volume.voxel_to_world(np.stack([np.arange(volume.shape[0]), np.zeros(volume.shape[0]),
                                        np.zeros(volume.shape[0])], axis=1))[:, 0]
    return float(volume.array[x > tip[0] + 2.0].sum() / volume.array[x < tip[0] - 2.0].sum())


def test_the_caudal_epidurogram_is_lopsided_not_a_mirror_image(tracer):
    """3 mL from the hiatus, six attempts' seeds, 20 s: the caudal epidurogram is not mirror-symmetric (Lee et al.,
    Skeletal Radiol 2012;41:1613: 2.7 times the area on one side, some patients more on the other): the log of the
    left's iodine over the right's is on average at least 0.3 from nought (0.64 measured: ratios 0.17-2.49), and each
    side is favoured in some attempt; a replay is exact. The tree mirrored about the midline (the blind readers of
    stop 24, issue 16) gave 0.11 (0.87-1.15)."""
    tip = _caudal_tip(tracer)
    ratios = [_left_over_right(inject_sacral(tracer, tip, 3.0, IODINE, seed=[11, n]).concentration(20.0), tip)
              for n in range(6)]
    assert np.mean(np.abs(np.log(ratios))) >= 0.3 and min(ratios) < 1.0 < max(ratios), np.round(ratios, 2)
    np.testing.assert_array_equal(inject_sacral(tracer, tip, 3.0, IODINE, seed=[11, 0]).concentration(20.0).array,
                                  inject_sacral(tracer, tip, 3.0, IODINE, seed=[11, 0]).concentration(20.0).array)


def test_a_tip_on_the_canals_front_wall_is_in_the_venous_plexus_and_washes_out(tracer):
    tip = _caudal_tip(tracer)
    wall = tracer.trace(tip, np.array([0.0, -1.0, 0.0]), 20.0).first_bone()
    on_wall = tip + np.array([0.0, -(wall.depth_in_mm - 0.5), 0.0])
    assert sacral_look(tracer, on_wall) == "sacral_venous"
    spread = inject_sacral(tracer, on_wall, 1.0, IODINE)
    assert spread.pattern == "venous" and spread.structure == "sacral_venous_plexus"
    during = contrast_volume([(spread, 1.5)]).array.sum()
    after = contrast_volume([(spread, 8.0)]).array.sum()
    assert during > 0 and after < 0.1 * during, "cleared within seconds of the bolus"
    points, _ = _filled(tracer, spread, 1.5)
    # Channels up and down the canal and to both sides, thin: far fewer voxels than an epidurogram of 1 mL.
    epidurogram, _ = _filled(tracer, inject_sacral(tracer, tip, 1.0, IODINE), 1.5)
    assert np.ptp(points[:, 2]) >= 20.0 and np.ptp(points[:, 0]) >= 5.0, (np.ptp(points, axis=0))
    assert len(points) < 0.5 * len(epidurogram), (len(points), len(epidurogram))


def test_the_caudal_target_keeps_the_margin_and_a_low_lying_sac_shrinks_it(tracer, spinesim_home):
    from anatomy_models.spine import SpineParameters
    from anatomy_models.store import generated_anatomy

    tip = _caudal_tip(tracer)
    normal = float(np.linalg.norm(tip - dural_sac_end(tracer)))
    low = tracer_for(generated_anatomy(SpineParameters(spacing_mm=2.0, dural_sac_end_mm=45.0)))
    lowered = float(np.linalg.norm(_caudal_tip(low) - dural_sac_end(low)))
    assert normal > lowered + 15.0, (normal, lowered)
    assert lowered >= CAUDAL_SAC_MARGIN_MM, "even over a low-lying sac the target stays below S3"
