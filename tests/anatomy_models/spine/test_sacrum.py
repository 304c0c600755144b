"""The sacrum and the sacroiliac joints of the generated patient: patent foramina, the hiatus below S4
between the cornua, the joint space, and the sacral measurements against published morphometry.

Labelmap checks use the 2 mm fixture; measurements that need better than a voxel use the implicit
model with the cavities cut as the painter cuts them (the blended bone, then each cavity removed).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from anatomy_models.spine.sacrum import (SACRUM_SCALE, SEGMENTS, SI_HALF_HEIGHT_MM, SI_HALF_LENGTH_MM, foramen_channel,
                                         foramina, load_sacrum, real_sacrum, sacroiliac_joint, segment_frames)
from anatomy_models.spine.sdf import SmoothUnion
from anatomy_models.spine.skeleton import BONE_BLEND_MM

SIDES = ("left", "right")
# Nastoulis et al., Folia Morphol 2023;82:603 (155 dry sacra): hiatus height, AP depth at the apex,
# intercornual distance (mm); the apex at S4 in 78.7 %.
HIATUS_HEIGHT_MM, HIATUS_APEX_DEPTH_MM, INTERCORNUAL_MM = 19.05, 5.39, 12.41


# The real sacrum's size against published adult sacra (mm): breadth across the alae 103.6 and straight length
# promontory-apex 107.55 (30 dry sacra, and 30 male sacra, Bangladesh J Anat 2017;15(2)); S1 endplate
# ~45-50 x ~30 (Wagner et al., Spine J 2017;17:1141). See sacrum.SACRUM_SCALE.
SACRAL_BREADTH_MM, SACRAL_LENGTH_MM, S1_ENDPLATE_MM = 103.6, 107.55, (47.5, 30.0)


@pytest.fixture(scope="module")
def model(model_2mm):
    """The built-in patient's model at 2 mm, the session's (tests/conftest.py: four files read it)."""
    return model_2mm


def painted_sdf(model, bone: str):
    """The signed distance of ``bone`` as painted: its parts blended, its cavities cut out."""
    union = SmoothUnion([shape for _, shape in model.bones[bone]], BONE_BLEND_MM)
    cavities = model.cavities.get(bone, [])

    def sdf(points: np.ndarray) -> np.ndarray:
        coords = tuple(points[:, i].astype(np.float32) for i in range(3))
        values = union.sdf(*coords).astype(np.float64)
        for cavity in cavities:
            values = np.maximum(values, -cavity.sdf(*coords).astype(np.float64))
        return values
    return sdf


def crossings(sdf, start: np.ndarray, direction: np.ndarray, length_mm: float, step_mm: float = 0.05) -> np.ndarray:
    """Distances along the ray where the shape's inside/outside changes."""
    t = np.arange(0.0, length_mm, step_mm)
    inside = sdf(start[None, :] + t[:, None] * direction[None, :]) < 0
    return t[1:][inside[1:] != inside[:-1]]


def labels_along(anatomy, a: np.ndarray, b: np.ndarray, step_mm: float = 0.5) -> list[str]:
    names = {label.id: label.name for label in anatomy.label_table}
    t = np.linspace(0.0, 1.0, int(np.linalg.norm(b - a) / step_mm) + 2)
    ijk = np.rint(anatomy.labels.world_to_voxel(a[None, :] + t[:, None] * (b - a)[None, :])).astype(int)
    return [names.get(int(anatomy.labels.array[tuple(index)]), "") for index in ijk]


def is_sacrum(name: str) -> bool:
    return name == "S1" or name.startswith("S1.")


@pytest.mark.parametrize("side", SIDES)
def test_every_dorsal_foramen_is_a_hole_in_bone_that_leads_to_the_canal(small_spine, model, side):
    s1 = model.skeleton.layouts["S1"]
    for foramen in foramina(s1, side):
        outlet, dorsal, canal = (s1.world(p) for p in (foramen.dorsal_outlet, foramen.dorsal, foramen.canal))
        # Along the channel: in through the dorsal foramen, on to the canal's lateral recess.
        along = labels_along(small_spine, outlet, dorsal) + labels_along(small_spine, dorsal, canal)
        assert not any(is_sacrum(name) for name in along), f"{foramen.level} {side}: bone in the foramen {along}"
        assert along[-1] in ("epidural_space", f"nerve_root.{foramen.level}.{side}",
                             f"dorsal_root_ganglion.{foramen.level}.{side}"), \
            f"{foramen.level} {side} ends in {along[-1]}"
        # A hole, not a gap beside the bone: parallel rays a few millimetres off its axis meet bone.
        axis = (dorsal - outlet) / np.linalg.norm(dorsal - outlet)
        across = np.cross(axis, [0.0, 0.0, 1.0])
        across /= np.linalg.norm(across)
        off = foramen.dorsal_radius + 2.0  # bone within 2 mm of its rim on every side
        for shift in (across * off, -across * off, np.cross(axis, across) * off, -np.cross(axis, across) * off):
            ray = labels_along(small_spine, outlet + shift - 5.0 * axis, dorsal + shift + 5.0 * axis)
            assert any(is_sacrum(name) for name in ray), \
                f"{foramen.level} {side}: no bone {shift.round(1)} off the foramen"


def test_hiatus_opens_below_s4_between_the_cornua(small_spine, model):
    s1 = model.skeleton.layouts["S1"]
    apex = small_spine.landmark("sacral_hiatus.apex")
    s4, s5 = segment_frames(s1)[2:4]
    up = s1.frame.vector(s4.up)
    top, bottom = s1.world(s4.point(0, 0, s4.height / 2.0)), s1.world(s4.point(0, 0, -s4.height / 2.0))
    assert (top - apex) @ up > 0 > (bottom - apex) @ up, "the hiatus apex is not at S4"
    left, right = small_spine.landmark("S1.cornu.left.tip"), small_spine.landmark("S1.cornu.right.tip")
    assert left[0] > apex[0] > right[0]
    # Below the apex, down to the cornua, the canal is open backward: no bone from the canal out
    # behind the sacrum; above the apex the dorsal wall closes it.
    for frame, below in ((s4, 4.0), (s5, 0.0)):
        back = s1.frame.vector(frame.back)
        start = apex - up * below if below else 0.5 * (left + right) + up * 3.0 - back * 2.0
        assert not any(is_sacrum(name) for name in labels_along(small_spine, start, start + back * 25.0))
    above = apex + up * 8.0
    assert "S1.dorsal_wall" in labels_along(small_spine, above, above + s1.frame.vector(s4.back) * 20.0)


def test_hiatus_measures_as_published(model):
    sdf = painted_sdf(model, "S1")
    s1 = model.skeleton.layouts["S1"]
    s4 = segment_frames(s1)[2]
    up, back = s1.frame.vector(s4.up), s1.frame.vector(s4.back)
    apex = model.landmarks["sacral_hiatus.apex"]
    # AP depth of the canal at the apex: from the S4 body's back to the dorsal wall's lower edge.
    start = apex + up * 3.0 - back * 20.0  # just above the wall's rounded lower margin
    front, wall = crossings(sdf, start, back, 40.0)[:2]
    assert wall - front == pytest.approx(HIATUS_APEX_DEPTH_MM, rel=0.1)
    # Intercornual distance: between the cornua's medial faces, across the hiatus.
    left, right = model.landmarks["S1.cornu.left.tip"], model.landmarks["S1.cornu.right.tip"]
    base = 0.5 * (left + right)
    middle = base + up * 3.0
    to_left = crossings(sdf, middle, np.array([1.0, 0.0, 0.0]), 20.0)[0]
    to_right = crossings(sdf, middle, np.array([-1.0, 0.0, 0.0]), 20.0)[0]
    assert to_left + to_right == pytest.approx(INTERCORNUAL_MM, rel=0.1)
    # Height of the hiatus: from the apex down the sacrum to the cornua's tips (its base).
    assert (apex - base) @ up == pytest.approx(HIATUS_HEIGHT_MM, rel=0.1)


@pytest.mark.parametrize("side", SIDES)
def test_sacroiliac_joint_space_is_two_millimetres_between_sacrum_and_ilium(small_spine, model, side):
    target = model.landmarks[f"sacroiliac_joint.{side}.inferior_third"]
    joint_frame = sacroiliac_joint(model.skeleton.layouts["S1"], side).frame
    normal = joint_frame.rotation[:, 1]  # out of the sacrum toward the ilium
    sacrum, ilium = painted_sdf(model, "S1"), painted_sdf(model, f"ilium.{side}")
    start = target - normal * 10.0
    sacral_surface = crossings(sacrum, start, normal, 20.0)[0]
    iliac_surface = crossings(ilium, start, normal, 20.0)[0]
    # 1-3 mm on CT (the range); the model's 2 mm within a tenth of a millimetre per face.
    assert 1.0 <= iliac_surface - sacral_surface <= 3.0
    # On the labels: sacrum, then the joint space, then the ilium.
    along = labels_along(small_spine, start, start + normal * 20.0)
    joint = along.index(f"sacroiliac_joint.{side}")
    assert any(is_sacrum(name) for name in along[:joint]) and f"ilium.{side}" in along[joint:]


def section_area_mm2(shapes, centre: np.ndarray, axis: np.ndarray, reach_mm: float = 14.0,
                     step_mm: float = 0.2) -> float:
    """Area (mm²) of the patch of ``shapes`` (their union) around ``centre`` in the plane across ``axis``."""
    axis = axis / np.linalg.norm(axis)
    a = np.cross(axis, [0.0, 0.0, 1.0])
    a /= np.linalg.norm(a)
    b = np.cross(axis, a)
    t = np.arange(-reach_mm, reach_mm + step_mm / 2, step_mm)
    points = (centre[None, None, :] + t[:, None, None] * a[None, None, :] + t[None, :, None] * b[None, None, :])
    coords = tuple(points.reshape(-1, 3)[:, i].astype(np.float32) for i in range(3))
    inside = (np.min([shape.sdf(*coords) for shape in shapes], axis=0) < 0).reshape(len(t), len(t))
    patches, _ = ndimage.label(inside)
    middle = patches[len(t) // 2, len(t) // 2]
    assert middle > 0 and not np.isin(middle, np.r_[patches[0], patches[-1], patches[:, 0], patches[:, -1]])
    return float((patches == middle).sum()) * step_mm ** 2


def test_foramina_taper_caudally_ventral_larger_and_sides_differ(model):
    """The foramina as the painter cuts them, across each opening's channel half-way out of the bone:
    S1 > S2 > S3 > S4, each ventral opening larger than its dorsal one, S1's near the published sizes
    (Saluja et al. 2018: anterior 12.2 x 13.0 mm, posterior 7.7 x 10.4 mm), and the two sides a few per
    cent apart (seeded), never mirror copies. (That each dorsal foramen is a hole in bone is tested above.)"""
    s1 = model.skeleton.layouts["S1"]
    areas = {}
    for side in SIDES:
        for foramen in foramina(s1, side):
            cavities = foramen_channel(s1, foramen)
            dorsal, outlet = s1.world(foramen.dorsal), s1.world(foramen.dorsal_outlet)
            ventral, ventral_outlet = s1.world(foramen.ventral), s1.world(foramen.ventral_outlet)
            areas[foramen.level, side] = (
                section_area_mm2(cavities, 0.5 * (ventral + ventral_outlet), ventral - ventral_outlet),
                section_area_mm2(cavities, 0.5 * (dorsal + outlet), outlet - dorsal))
    for side in SIDES:
        ventral = [areas[f"S{n}", side][0] for n in range(1, 5)]
        dorsal = [areas[f"S{n}", side][1] for n in range(1, 5)]
        assert ventral == sorted(ventral, reverse=True) and dorsal == sorted(dorsal, reverse=True), (side, areas)
        assert all(v > 1.3 * d for v, d in zip(ventral, dorsal)), (side, areas)
        # The published ellipses, and the lobe that makes the outline irregular (up to a fifth more).
        assert np.pi / 4 * 12.2 * 13.0 * 0.9 < ventral[0] < np.pi / 4 * 12.2 * 13.0 * 1.35
        assert np.pi / 4 * 7.7 * 10.4 * 0.9 < dorsal[0] < np.pi / 4 * 7.7 * 10.4 * 1.35
    ratios = np.array([areas[key, "left"][k] / areas[key, "right"][k] for key in ("S1", "S2", "S3", "S4")
                       for k in (0, 1)])
    assert np.all(np.abs(ratios - 1.0) < 0.25) and np.mean(np.abs(ratios - 1.0)) > 0.02, ratios


# Kim et al., Korean J Pain 2023;36:98 (3D-CT, 632 patients), table 2: the S1 dorsal foramen's centre from the
# midline (S1ds), mean and SD, mm.
S1_DORSAL_FORAMEN_MIDLINE_MM, S1_DORSAL_FORAMEN_MIDLINE_SD_MM = 23.5, 2.8


@pytest.mark.parametrize("side", SIDES)
def test_s1_dorsal_foramen_lies_as_far_from_the_midline_as_published(model, side):
    """The S1 dorsal foramen as the painter cuts it: across the dorsal wall at the opening's height and
    depth, from the midline outward, the first hole in the bone beside the canal is centred within one SD of
    the published distance (it was 15.6 mm, under the laminae, on generator 22)."""
    sdf = painted_sdf(model, "S1")
    s1 = model.skeleton.layouts["S1"]
    dorsal = foramina(s1, side)[0].dorsal
    outward = s1.frame.vector([1.0 if side == "left" else -1.0, 0.0, 0.0])
    start = s1.world(np.array([0.0, dorsal[1], dorsal[2]]))
    edges = crossings(sdf, start, outward, 45.0)
    assert sdf(start[None, :])[0] < 0 and len(edges) >= 2, f"no hole in the dorsal wall: {edges}"
    centre = 0.5 * (edges[0] + edges[1])
    assert abs(centre - S1_DORSAL_FORAMEN_MIDLINE_MM) <= S1_DORSAL_FORAMEN_MIDLINE_SD_MM, (side, edges)


def test_alae_slope_down_and_out_as_rounded_shoulders(model):
    """The sacral base's lateral parts seen on the view squared to S1's endplate (cranial tilt): the alae's upper
    border falls from the body's lateral margin out to the sacroiliac joint, ever more steeply (a rounded shoulder),
    not a flat bar level with the endplate (issue 15: "two straight horizontal lines and rectangular corners").
    Heights of the sacrum's top, found from above along S1's axis, a third of the way back from its front."""
    sdf = painted_sdf(model, "S1")
    s1 = model.skeleton.layouts["S1"]
    down = s1.frame.vector([0.0, 0.0, -1.0])
    xs = np.linspace(s1.width / 2.0 + 2.0, s1.width / 2.0 + 24.0, 5)
    tops = []
    for x in xs:
        start = s1.world(np.array([x, -s1.depth / 6.0, s1.height]))
        tops.append(s1.height - crossings(sdf, start, down, 60.0, 0.1)[0])
    drops = -np.diff(tops)
    assert np.all(drops > 0) and tops[0] - tops[-1] >= 8.0, dict(zip(xs.round(1), np.round(tops, 1)))
    assert drops[-1] > 1.5 * drops[0], dict(zip(xs.round(1), np.round(tops, 1)))


def test_the_sacral_base_is_a_dish_under_the_promontory_and_the_alae_fall_forward(model):
    """No surface of the sacral base lies along the beam of the view squared to S1's endplate (cranial tilt): a
    plane rim drew one straight line across the body and the alae's arch, ruled along that beam, two razor
    lines (issue 15). Heights of the sacrum's top, found from above along S1's axis: the rim falls from the
    promontory's crest to the body's lateral and posterior margins, and the ala's top falls going forward."""
    sdf = painted_sdf(model, "S1")
    s1 = model.skeleton.layouts["S1"]
    down = s1.frame.vector([0.0, 0.0, -1.0])

    def top(x: float, y: float) -> float:
        return s1.height - crossings(sdf, s1.world(np.array([x, y, s1.height])), down, 60.0, 0.05)[0]
    crest = top(0.0, -s1.depth / 2.0 + 5.0)
    lateral, posterior = top(s1.width / 2.0 - 2.0, -s1.depth / 2.0 + 5.0), top(0.0, s1.depth / 2.0 - 2.0)
    assert crest - lateral >= 1.5 and crest - posterior >= 1.0, (crest, lateral, posterior)
    x = s1.width / 2.0 + 10.0
    back, front = top(x, s1.depth / 2.0 - 4.0), top(x, -s1.depth / 4.0)
    assert back - front >= 4.0, (back, front)


def dorsal_surface_mm(sdf, s1, x: float, z_values) -> np.ndarray:
    """How far back (mm, along S1's posterior axis from its centre) the sacrum's dorsal surface lies at
    S1-local heights ``z_values``, a line ``x`` mm off the midline (the last bone going back)."""
    back = s1.frame.vector([0.0, 1.0, 0.0])
    result = []
    for z in z_values:
        start = s1.world(np.array([x, 0.0, z]))
        t = np.arange(0.0, 90.0, 0.1)
        inside = sdf(start[None, :] + t[:, None] * back[None, :]) < 0
        result.append(t[np.nonzero(inside)[0][-1]] if inside.any() else np.nan)
    return np.array(result)


def test_s1_dorsal_plate_runs_on_into_the_s2_dorsal_surface(model):
    """The S1 laminae's lower edge does not stand out behind the sacrum's dorsal surface (it stood 18 mm
    behind S2's, 3 mm under the skin of the median sacral crest on ultrasound: issue 21): 8 mm off the
    midline (beside the crest) the dorsal surface steps by no more than 4 mm per 2 mm of height from the
    S1 pedicles down to S3."""
    sdf = painted_sdf(model, "S1")
    s1 = model.skeleton.layouts["S1"]
    s3 = segment_frames(s1)[1]
    z = np.arange(s1.pedicle_z - 4.0, float(s3.centre[2]), -2.0)
    surface = dorsal_surface_mm(sdf, s1, 8.0, z)
    assert not np.isnan(surface).any()
    assert np.max(np.abs(np.diff(surface))) <= 4.0, dict(zip(z.round(1), surface.round(1)))


@pytest.mark.parametrize("side", SIDES)
def test_sacroiliac_joint_opens_behind_in_a_cleft_widening_caudally(model, side):
    """Behind the auricular surface the joint is a cleft between the ilium's medial edge and the sacrum's
    lateral crest, open to the back, 2 mm wide at its top and 4 mm at its foot (issue 21)."""
    joint = sacroiliac_joint(model.skeleton.layouts["S1"], side)
    sacrum, ilium = painted_sdf(model, "S1"), painted_sdf(model, f"ilium.{side}")
    normal = joint.frame.rotation[:, 1]
    widths = []
    for w in (joint.cleft_top - 2.0, -SI_HALF_HEIGHT_MM + 2.0):
        centre = joint.point(-SI_HALF_LENGTH_MM - 6.0, 0.0, w)
        start = centre - normal * 12.0
        sacral_face = crossings(sacrum, start, normal, 24.0)
        iliac_face = crossings(ilium, start, normal, 24.0)
        assert len(sacral_face) and len(iliac_face), f"no bone either side of the cleft at w={w}"
        widths.append(iliac_face[0] - sacral_face[0])
        # Open to the back: from the cleft's middle, backward along the joint, no bone of either.
        back = -joint.frame.rotation[:, 0]
        line = centre[None, :] + np.arange(0.0, 40.0, 0.25)[:, None] * back[None, :]
        assert (sacrum(line) > 0).all() and (ilium(line) > 0).all(), f"the cleft is closed behind at w={w}"
    assert 1.8 <= widths[0] <= 2.6 and 3.4 <= widths[1] <= 4.4 and widths[1] > widths[0], widths


def test_volume_reaches_well_below_the_coccyx(small_spine):
    """A caudal view down the sacrum and the sagittal hiatus view meet soft tissue, not the volume's edge:
    at least 40 mm of volume below the coccyx's tip."""
    coccyx = np.argwhere(small_spine.labels.array == small_spine.label_table.by_name("coccyx").id)
    tip_z = small_spine.labels.voxel_to_world(coccyx)[:, 2].min()
    assert tip_z - small_spine.labels.affine[2, 3] >= 40.0


def test_the_real_sacrum_measures_as_published():
    """The template (shapes/sacrum_sdf.npz, as build_sacrum measured it on the source bone) at the reference man's
    scale: within 10 % of published adult sacra, and its hiatus's apex at S4 (Nastoulis et al. 2023: 78.7 %)."""
    m = load_sacrum().measured
    assert SACRUM_SCALE * m["breadth_mm"] == pytest.approx(SACRAL_BREADTH_MM, rel=0.1)
    assert SACRUM_SCALE * m["height_mm"] == pytest.approx(SACRAL_LENGTH_MM, rel=0.1)
    assert SACRUM_SCALE * m["endplate_width_mm"] == pytest.approx(S1_ENDPLATE_MM[0], rel=0.1)
    assert SACRUM_SCALE * m["endplate_depth_mm"] == pytest.approx(S1_ENDPLATE_MM[1], rel=0.1)
    # The hiatus's apex along the promontory-apex line, as a share of the sacrum's length, within S4's share of
    # the anterior height (SEGMENTS after S1's 26 mm).
    line = m["apex_mm"] - m["promontory_mm"]
    share = (m["hiatus_apex_mm"] - m["promontory_mm"]) @ line / (line @ line)
    heights = np.cumsum([26.0] + [segment.height_mm for segment in SEGMENTS])
    assert heights[2] / heights[-1] < share < heights[3] / heights[-1], share


# The template's frame is its S1 endplate's (build_sacrum.endplate_frame): the top of its bone over the endplate's
# middle (10 mm either side of the midline, 6 mm inside its front and back edges) may lean at most this much from
# the frame's plane, front to back or side to side (degrees). The fit that reached the alae left it 6.4 degrees
# off, which placed the whole sacrum turned back by as much on every patient [ED].
ENDPLATE_LEAN_DEG = 2.0


def test_the_template_frame_lies_on_its_s1_endplate():
    """Read off the stored signed distance: the bone's first point down each line along the frame's normal over
    the endplate's middle fits a plane leaning less than :data:`ENDPLATE_LEAN_DEG` from the frame's, and no point
    lies more than 1.5 mm off that plane (the endplate is flat where the frame says it is)."""
    template = load_sacrum()
    m = template.measured
    front, depth = m["promontory_mm"][1], float(m["endplate_depth_mm"])
    w = np.arange(15.0, -15.0, -0.1)
    tops = []
    for u in np.arange(-10.0, 10.5, 2.0):
        for v in np.arange(front + 6.0, front + depth - 6.0, 1.0):
            line = (np.full_like(w, u), np.full_like(w, v), w)
            index = [(c - o) / template.spacing_mm for c, o in zip(line, template.origin_mm)]
            inside = ndimage.map_coordinates(template.sdf_mm, index, order=1) < 0
            tops.append((u, v, w[np.argmax(inside)]))
    tops = np.array(tops)
    design = np.column_stack([tops[:, :2], np.ones(len(tops))])
    fit, *_ = np.linalg.lstsq(design, tops[:, 2], rcond=None)
    lean = np.degrees(np.arctan(np.abs(fit[:2])))
    assert (lean < ENDPLATE_LEAN_DEG).all(), lean
    assert np.abs(tops[:, 2] - design @ fit).max() < 1.5


# The template's frame is squared to the sacrum's midline (build_sacrum.midline_frame): the middle of the stored
# bone's extent across may lie this far from it (mm), from 20 to 100 mm under the endplate. Squared to the endplate
# alone it drifted 2 to 5 mm to the left going down, its dorsal surface 4-6 mm further back on the left than on
# the right 15 mm from the midline, under the generator's symmetric canal and foramina [ED].
MIDLINE_DRIFT_MM = 2.0


def test_the_template_is_centred_on_the_midline():
    """Read off the stored signed distance: every 10 mm down from 20 to 100 mm under the endplate, the bone's
    section is centred across within :data:`MIDLINE_DRIFT_MM` of the frame's midline."""
    template = load_sacrum()
    inside = template.sdf_mm < 0
    u = template.origin_mm[0] + template.spacing_mm * np.arange(inside.shape[0])
    middles = {}
    for w in np.arange(-20.0, -101.0, -10.0):
        k = int(round((w - template.origin_mm[2]) / template.spacing_mm))
        across = u[inside[:, :, k].any(axis=1)]
        middles[w] = (across.min() + across.max()) / 2.0
    assert max(abs(m) for m in middles.values()) <= MIDLINE_DRIFT_MM, middles


def test_the_real_sacrum_sits_on_the_s1_endplate(model):
    """Placed on the patient, the template's bone starts within 2.5 mm under S1's superior endplate at the body's
    centre and its lowest point lies behind and below the endplate (the sacrum runs down and back)."""
    s1 = model.skeleton.layouts["S1"]
    sacrum = real_sacrum(s1)

    def sdf(points: np.ndarray) -> np.ndarray:
        return sacrum.sdf(*(points[:, i].astype(np.float32) for i in range(3)))
    top = s1.world(np.array([0.0, 0.0, s1.height / 2.0 + 20.0]))
    first = crossings(sdf, top, -s1.frame.vector((0.0, 0.0, 1.0)), 40.0, 0.1)[0]
    assert abs(first - 20.0) <= 2.5, first
    apex = s1.frame.rotation.T @ (sacrum.frame.point(sacrum.scale * load_sacrum().measured["apex_mm"])
                                  - s1.frame.origin)
    assert apex[1] > 0.0 and apex[2] < -80.0, apex


# The longest the sacrum's lower outline lateral of S1's body may run flat on the view squared to S1's endplate (mm):
# the built sacrum's box-shaped lateral masses drew a flat floor over 7 mm there, the corners "where the pubis should
# be" (issue 15); the real bone's outline slopes down and in everywhere [ED].
FLAT_FLOOR_MM = 4.0


@pytest.mark.xfail(strict=True, reason="the patient's sacrum is still the built one (boxes): its lateral masses' "
                   "floor runs flat over 6 mm; the real sacrum (load_sacrum) is not yet its bone")
def test_the_lateral_masses_have_no_flat_floor_on_the_view_squared_to_s1(model):
    """Projected along the beam of the AP view tilted 40 degrees cranially (squared to S1's endplate), the lowest
    point of the sacrum's shadow (more than 5 mm of bone) in each 1 mm column from 30 to 62 mm either side of the
    midline never stays within half a millimetre over :data:`FLAT_FLOOR_MM`."""
    sdf = painted_sdf(model, "S1")
    s1 = model.skeleton.layouts["S1"]
    tilt = np.radians(40.0)
    beam, up = np.array([0.0, np.cos(tilt), np.sin(tilt)]), np.array([0.0, -np.sin(tilt), np.cos(tilt)])
    z, t = np.arange(-70.0, 10.0, 1.0), np.arange(-60.0, 90.0, 2.5)
    for side in (1.0, -1.0):
        x = side * np.arange(30.0, 62.0, 1.0)
        local = (x[:, None, None, None] * np.array([1.0, 0.0, 0.0]) + z[None, :, None, None] * up
                 + t[None, None, :, None] * beam)
        bone = sdf((local.reshape(-1, 3) @ s1.frame.rotation.T) + s1.frame.origin).reshape(local.shape[:3]) < 0
        shadow = bone.sum(axis=2) * 2.5 > 5.0
        floor = np.array([z[np.argmax(column)] for column in shadow if column.any()])
        flat = np.abs(np.diff(floor)) <= 0.5
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], flat.astype(int), [0]]))))[::2]
        assert (runs.max() if len(runs) else 0) < FLAT_FLOOR_MM, (side, floor.tolist())
