"""The buttocks: gluteal muscles and buttock fat behind the sacrum and ilia, to published thicknesses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from anatomy_models.spine.generator import build_model
from anatomy_models.spine.glutes import CLEFT_BLEND_MM, CLEFT_OPEN_MM, GLUTEUS_MEDIUS_MM
from anatomy_models.spine.parameters import SpineParameters
from anatomy_models.spine.pelvis import ARC_CENTRE_OFFSET_MM
from anatomy_models.spine.sacrum import sacroiliac_joint
from simulator.imaging.carm import ap
from simulator.imaging.drr import anatomy_line_integrals

# Frank et al. 2019, men: -33.56 + 0.078 x age + 3.042 x BMI, for the model's man of 55 at BMI 25, by hand.
PUBLISHED_FAT_BMI25_MM = 46.8
# The maximus's upper border, the posterior superior iliac spine to the top of the greater trochanter: about
# 10 cm down over 13 cm out [ED, anatomy_models.spine.glutes], written out here, not read from the module.
PSIS_TO_TROCHANTER_FALL = 100.0 / 130.0


def _column(anatomy, x_mm: float, z_mm: float) -> tuple[np.ndarray, list[str]]:
    """y (mm) and label names of the voxels along y at (x, z), from the back of the grid forward."""
    i, _, k = np.rint(anatomy.labels.world_to_voxel([[x_mm, 0.0, z_mm]])[0]).astype(int)
    names = {label.id: label.name for label in anatomy.label_table}
    column = anatomy.labels.array[i, :, k][::-1]
    y = anatomy.labels.voxel_to_world(np.array([[i, j, k] for j in range(anatomy.labels.shape[1])]))[::-1, 1]
    return y, [names.get(int(v), "outside") for v in column]


def _joint(model, side: str) -> np.ndarray:
    """The sacroiliac joint's centre (mm): the posterior superior iliac spine lies just behind it, level with S2."""
    return sacroiliac_joint(model.skeleton.layouts["S1"], side).frame.origin


def _without_buttocks(trunk):
    return type(trunk)(trunk.profile, trunk.supraspinous, trunk.erectors, trunk.midline_fat_mm, trunk.flank_fat_mm,
                       trunk.paramedian_extra_mm)


def _world_z(band, x: float, level: float) -> float:
    """The world height (mm) at ``x`` of the maximus band's own (sheared) height ``level``."""
    return level - float(band.level(np.float32(x), np.float32(0.0)))


def test_buttock_fat_over_the_gluteus_maximus_is_as_thick_as_published(small_spine, model_2mm):
    """Down the middle of the left buttock below the sacroiliac joint: skin, then fat as thick as the
    regression of Frank et al. (BMI 25, a man in the fifties: 46.8 mm) within two voxels, then the
    gluteus maximus."""
    band = model_2mm.trunk.buttocks.maximus[0]
    x = float(band.tube.cx[0])
    z = _world_z(band, x, float(band.tube.z[1]) - 20.0)
    y, names = _column(small_spine, x, z)
    tissue = [n for n in names if n != "outside"]
    assert tissue[0] == "skin", tissue[:3]
    fat = next(i for i, n in enumerate(tissue) if n not in ("skin", "fat")) * small_spine.labels.spacing[1]
    assert fat == pytest.approx(PUBLISHED_FAT_BMI25_MM, abs=4.0), fat
    first_muscle = next(n for n in tissue if n not in ("skin", "fat"))
    assert first_muscle == "muscle.gluteus_maximus.left"


def test_buttock_fat_grows_with_bmi_and_the_sacral_triangle_stays_thin():
    """The buttock's fat grows 3 mm per BMI unit in men (Frank et al. 2019); over the sacrum in the midline, at
    the posterior superior iliac spines' level above the natal cleft, the skin stays where the back's own fat
    puts it, so the buttocks rise either side of the sacral triangle."""
    apex = {}
    for bmi in (25.0, 35.0):
        model = build_model(SpineParameters(bmi=bmi, spacing_mm=2.0))
        trunk, band = model.trunk, model.trunk.buttocks.maximus[0]
        tube, x = band.tube, np.float32(band.tube.cx[0])
        level = tube.z[1] - 20.0
        z = np.float32(_world_z(band, float(x), level))
        skin = float(trunk.back_y(np.array([x], np.float32), np.array([z]))[0])
        muscle = float(np.interp(level, tube.z, tube.cy) + np.interp(level, tube.z, tube.ay))
        apex[bmi] = skin - muscle
        plain = _without_buttocks(trunk)
        spines = np.array([_joint(model, "left")[2]], np.float32)
        midline = float(trunk.back_y(np.zeros(1, np.float32), spines)[0])
        assert midline == pytest.approx(float(plain.back_y(np.zeros(1, np.float32), spines)[0]), abs=2.0)
        assert skin > midline + 30.0, (bmi, skin, midline)
    assert apex[25.0] == pytest.approx(PUBLISHED_FAT_BMI25_MM, abs=1.0)
    assert apex[35.0] - apex[25.0] == pytest.approx(10 * 3.042, abs=1.0)


def test_gluteus_medius_covers_the_outer_face_of_the_iliac_wing(small_spine, model_2mm):
    """Out from the iliac wing along its arc's radii (the wing's outer face is square to them), 10 mm below
    the sacroiliac joint's centre: bone, then the medius, as thick as the medius and minimus measure
    together (Whiler et al. 2017: 38.8 mm) within two voxels."""
    joint = _joint(model_2mm, "left")
    centre = joint + np.array([-ARC_CENTRE_OFFSET_MM[0], -ARC_CENTRE_OFFSET_MM[1], -10.0])
    medius = small_spine.label_table.by_name("muscle.gluteus_medius.left").id
    wing = small_spine.label_table.by_name("ilium.left").id
    t = np.arange(0.0, 250.0, 0.5)
    # Not at 55°: there the real hip bone's posterior ilium (anatomy_models.spine.pelvis) lies inside the
    # medius's arc, which still follows the analytic wing's outline.
    for angle in np.radians([35.0, 45.0]):
        samples = centre[None, :] + t[:, None] * np.array([np.cos(angle), np.sin(angle), 0.0])[None, :]
        values = small_spine.labels.sample(samples, order=0, fill=0).astype(int)
        run = t[values == medius]
        assert len(run) > 0, np.degrees(angle)
        assert t[values == wing].max() < run.min() + 3.0  # outside the wing
        assert run.max() - run.min() == pytest.approx(GLUTEUS_MEDIUS_MM, abs=4.0), np.degrees(angle)


def test_the_buttock_rises_from_an_oblique_border_not_a_level_one(model_2mm):
    """Where the buttock first stands 10 mm proud of the back falls laterally along its upper border, the line
    from the posterior superior iliac spine to the top of the greater trochanter (Tixa; about 10 cm down over
    13 cm out [ED], see anatomy_models.spine.glutes), within a third: a level border drew a straight bar across
    an AP of the pelvis (readers, stop 23)."""
    model, plain = model_2mm, _without_buttocks(model_2mm.trunk)
    trunk = model.trunk
    for side, sign in (("left", 1.0), ("right", -1.0)):
        joint = _joint(model, side)
        heights = np.arange(joint[2] + 60.0, joint[2] - 200.0, -1.0, dtype=np.float32)
        out = np.arange(10.0, 111.0, 20.0)
        rises = []
        for x in joint[0] + sign * out:
            across = np.full(len(heights), x, np.float32)
            proud = trunk.back_y(across, heights) - plain.back_y(across, heights) > 10.0
            assert proud.any(), (side, x)
            rises.append(float(heights[np.argmax(proud)]))
        fall = -np.polyfit(out, rises, 1)[0]
        assert fall == pytest.approx(PSIS_TO_TROCHANTER_FALL, rel=1 / 3), (side, rises)


def test_the_buttocks_meet_in_the_midline_below_the_top_of_the_natal_cleft(model_2mm):
    """Below the sacral rhombus's lower corner (as far below the posterior superior iliac spines as they lie off
    the midline: Schuenke 2007), once they have closed in (CLEFT_BLEND_MM), the cheeks touch across the cleft: the midline's skin stands within the cleft's
    open mouth (CLEFT_OPEN_MM) of the buttocks' crowns, not at the back's own level, an open trough that drew a
    lucent band down the pelvis on an AP and made S1 lighter than the tissue beside it."""
    model, plain = model_2mm, _without_buttocks(model_2mm.trunk)
    trunk = model.trunk
    joint = _joint(model, "left")
    z = np.float32(joint[2] - abs(joint[0]) - CLEFT_BLEND_MM - 10.0)
    across = np.arange(-150.0, 151.0, 2.0, dtype=np.float32)
    skin = trunk.back_y(across, np.full(len(across), z, np.float32))
    midline = float(skin[len(across) // 2])
    crown = float(skin.max())
    assert crown - midline == pytest.approx(CLEFT_OPEN_MM, abs=5.0), (crown, midline)
    assert midline > float(plain.back_y(np.zeros(1, np.float32), np.array([z]))[0]) + 20.0


def test_s1_attenuates_more_than_the_tissue_beside_the_sacrum_on_the_caudal_ap(small_spine):
    """On the AP tilted 15 deg caudal at L5 (the L5-S1 root injection's view), the ray through S1's body
    crosses more attenuation than the ray 2 cm lateral to the sacrum's edge at the same height (the posterior
    ilium and the buttock's soft tissue; 3 cm out is already the intensifier's rim), on both sides, by more
    than 5 mm of water's worth (0.1) [ED]. The buttocks' level upper border put a band of their full
    thickness there, and S1 showed lighter than its surroundings (readers, stop 23: "a white oval hole
    where S1 should be darkest")."""
    carm = ap(small_spine, "L5", detector_pixels=128).with_(secondary_deg=-15.0)
    integrals, field = anatomy_line_integrals(small_spine, carm), carm.field_mask()
    centre = np.asarray(small_spine.landmark("S1.body.center"), np.float64)
    sacrum = [label.id for label in small_spine.label_table if label.name.split(".")[0] == "S1"]
    along = np.arange(0.0, 150.0, 1.0)
    values = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        row = centre[None, :] + sign * along[:, None] * np.array([1.0, 0.0, 0.0])[None, :]
        # The sacrum's edge at S1's height: its outermost voxel across the whole front-to-back depth there.
        depth = np.arange(-40.0, 60.0, 1.0)
        labels = np.stack([small_spine.labels.sample(row + np.array([0.0, dy, 0.0]), order=0, fill=0) for dy in depth])
        edge = along[np.isin(labels.astype(int), sacrum).any(axis=0)].max()
        beside = centre + sign * np.array([edge + 20.0, 0.0, 0.0])
        pixels = carm.project(np.stack([centre, beside]))[:, :2]
        assert all(field[int(round(v)), int(round(u))] for u, v in pixels), (side, pixels)
        values[side] = [float(ndimage.map_coordinates(integrals, [[v], [u]], order=1)[0]) for u, v in pixels]
    for side, (through_s1, beside) in values.items():
        assert through_s1 > beside + 0.1, (side, values)
