"""The built-in patient: ``generate_spine(params) -> Anatomy``.

Builds the implicit model (alignment, skeleton, discs, ligaments, neural structures, vessels,
muscles, trunk), paints it onto a voxel grid in order of priority (skin first, bone and joints
last, so the more important structure wins where two overlap), fills the epidural compartment,
synthesises CT numbers and computes the landmarks from the construction.

Examples
--------
>>> from anatomy_models.spine import SpineParameters
>>> from anatomy_models.store import generated_anatomy  # generate_spine's patient, kept under SPINESIM_HOME
>>> anatomy = generated_anatomy(SpineParameters(spacing_mm=2.0, field_of_view="spine"))
>>> anatomy.ct.array.dtype, tuple(float(s) for s in anatomy.ct.spacing)
(dtype('int16'), (2.0, 2.0, 2.0))
>>> bool(anatomy.landmark("L4.pedicle.left.center")[0] > 0)   # the patient's left is +x
True
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numba
import numpy as np
from scipy import ndimage

from anatomy_models.anatomy import Anatomy
from anatomy_models.spine.alignment import INTERSPACE_NAMES, VERTEBRA_NAMES, align_spine
from anatomy_models.spine.ct_synthesis import (BoneRegion, SurfaceBand, bone_hu_from_depth, inside_fraction,
                                               synthesize_ct)
from anatomy_models.spine.glutes import Within, buttocks, gluteal_muscles
from anatomy_models.spine.landmarks import sacral_landmarks, spine_landmarks
from anatomy_models.spine.neural import build_neural
from anatomy_models.spine.parameters import GENERATOR_VERSION, SpineParameters
from anatomy_models.spine.pelvis import ilium_parts, sacral_clearance
from anatomy_models.spine.ribs import rib_parts
from anatomy_models.spine.sacrum import (coccyx_parts, coccyx_tip, foraminal_region, rudimentary_disc, sacral_canal,
                                         sacral_cavities, sacroiliac_joint)
from anatomy_models.spine.sdf import FAR_MM, Grid, Shape, smooth_min
from anatomy_models.spine.skeleton import BONE_BLEND_MM, Skeleton, build_skeleton
from anatomy_models.spine.soft_tissue import (LEAN_HALF_WIDTH_MM, SKIN_THICKNESS_MM, Trunk, bowel_gas_shapes,
                                              calibrate_midline_fat, canal_region, colon_content_shapes, disc_shapes,
                                              flavum_shapes, interspinous_shapes, kidney_shapes, muscle_shapes,
                                              retroperitoneal_fat_shapes, spine_profile, supraspinous_shape)
from anatomy_models.spine.trabecular import PELVIC_VERTICAL_SHARE
from anatomy_models.spine.vertebra import SIDE_SIGN
from anatomy_models.spine.vessels import build_vessels
from anatomy_models.structures import LabelTable
from anatomy_models.tissues import TISSUES
from anatomy_models.volume import Volume

ProgressCallback = Callable[[float, float, str], None]

# Cortical shell thickness (mm), cortical and cancellous core CT numbers (HU) by part kind. Each shell is painted at
# its real thickness and density: the CT synthesis (ct_synthesis) then gives it a clinical scanner's partial volume
# and kernel, once. The posterior elements (laminae with the pars, articular, transverse and spinous processes): a
# cortex of compact bone (1200 HU, the tissue table's, the middle of §5.1's +500 to +1900 [S102]; below fully dense
# ICRU cortical bone's 1594 HU for its porosity [ED], which with 1594 would also carry more mineral than the DXA's
# posterior share below allows) 1 mm thick (clinical.md §5.4: 1-1.5 mm; the lamina and the inferior articular process
# have the thickest cortex of the lumbar vertebra's regions, Odeh et al., Global Spine J 2021;11:34) over a cancellous
# core of 300 HU (§5.4's 300-450 [measured], its low end). Until generator 58 the cortex was 850 HU, "compact bone
# seen through the partial volume", which the synthesis then spread again: a transverse process, lamina or spinous
# process crested at 670-840 HU on the CT, under the 960 HU a real 1 mm compact cortex gives at 1 mm
# (tests/anatomy_models/spine/test_bone_density.py), and its edges seen along the beam (the TP's upper and lower
# borders on the AP, the laminae and spinous processes on the lateral) were faint (stop 25's readers:
# "semi-transparent paddles", the lateral's posterior elements missing). The core came down from 380 HU as the cortex
# went up so that the arches' mineral stays a real vertebra's: on the DXA (``python -m
# anatomy_models.spine.bone_mineral``, tests/anatomy_models/spine/test_bone_mineral.py) the L1-L4 posterior elements
# read 0.566 g/cm^2 (0.512 until generator 58), against the 0.545 of NHANES's young adults' 1.06 g/cm^2 split by Lee
# et al. 2009's posterior share (51.4%). The pedicle: the thickest walls, 1.5 mm of full cortical bone (the bright
# ring of the eye on AP and oblique views, seen end-on) [ED]. The body: its trabecular core at 205 HU, a young adult's
# (the patient the DXA test holds to NHANES's 21-30 years): L1 trabecular attenuation 226 +- 44 HU under 30 years at
# 120 kV, falling 2.5 HU a year (Jang et al., Radiology 2019;291:360, 20 374 CTs), L1-L4 227-236 +- 42 HU in women of
# 20-30 (Hendrickson et al., Iowa Orthop J 2018;38:25), within clinical.md §5.4's real lumbar CT (197-224 HU) and
# QCT's young adult trabecular BMD (150-180 mg/cm^3 at bone_mineral's 1.31 HU per mg/cm^3, 196-236 HU). 185 HU until
# generator 58, a patient in the late forties, left the bodies barely darker than the soft tissue beside them (stop
# 25's readers); the bodies' share of the L1-L4 DXA rose from 0.472 to 0.532 g/cm^2 (published 0.515), the total from
# 0.985 to 1.098 (1.06 +- 0.11; L1 1.110, 11% over its level's 0.999, the nearest to the test's 12%). Its shell is a
# thin porous membrane of fused trabeculae, ~0.3 mm (Silva et al. 1994; Ritzel et al. 1997; §5.4) of compact bone
# (1594 HU at the CT's 70 keV: ICRU cortical bone, 1.92 g/cm^3, clinical.md §5.2's attenuation). A radiograph resolves
# it: seen tangentially, the body's side wall is a line of more bone than the rays just inside it (the AP's concave
# vertical lines), 1.20 times as much over a young adult's 205 HU core. A 1 mm CT does not: spread over a voxel and
# the reconstruction blur, a shell with a real one's bone gives the tangential ray 1.04 of the rays inside it, and the
# walls vanished on every AP (issue 15). So the side wall carries what a radiograph of a real body shows: 0.75 mm of
# 1100 HU with the 1 mm endosteal ramp gives the tangential ray 1.17 of the inside's bone, within 0.05 of a real
# shell's (tests/anatomy_models/spine/test_body_shell.py), for 7% more bone on the central ray (0.5 mm until generator
# 58, tuned over the 185 HU core with the tissue table's 1200 HU as the real shell's: over the denser core its
# tangential ray fell to 0.97 of the inside's). The endplates are denser (subchondral bone plate) and the ring
# apophyses, the rims round the endplates, densest: see BODY_SHELL_MM_BY_FACING.
# The articular processes take a 1.2 mm cortex: each carries its facet's subchondral bone plate under the cartilage
# [ED]. The transverse process is a flat bar, thin front to back and thinning outward (Li et al. 2003, clinical.md
# §4.7 [S87]), whose upper and lower borders seen edge-on are the dense rim that outlines it on the AP: its cortex is
# set by which way its surface faces (TRANSVERSE_PROCESS_SHELL_MM_BY_FACING; 1.2 mm all round, generator 58-66).
# (1.5 mm of 850 HU over 380 until generator 58: L4's TP then crossed 17% more bone on the AP's rays, 4040 against
# 3450 HU mm above soft tissue, the median over its projected pixels.)
_POSTERIOR = ("lamina", "SAP", "IAP", "transverse_process", "spinous_process")
# The pelvic bones take one set each, so that no seam between two parts of one bone (where the nearest part,
# which names a voxel, changes: planes between boxes) shows as a straight line of denser or lighter bone on
# a radiograph (one source of issue 15's straight streaks in the sacrum, along the dorsal wall's and the
# lateral masses' boxes). The sacrum (its lateral masses, alae, dorsal wall, cornua, S1 laminae and spinous
# tubercle; not the S1 body, pedicles and articular processes): a cancellous core between the lumbar body's
# and the arch's, under a 1 mm cortex of 850 HU [ED: the sacral ala's cortex is thin and its
# cancellous bone sparse, the sacral insufficiency fracture's site]. The ilium: a 1.2 mm cortex, a little
# denser [ED]: the iliac fossa (3 mm) is then two cortices with a little cancellous bone between, and the
# crest a cancellous rim whose cortex shows as one dense line where the beam runs along it.
_PELVIC = {"sacrum": (1.0, 250.0, 850.0), "ilium": (1.2, 250.0, 1100.0)}
CORTEX_MM = {"body": 0.5, "pedicle": 1.5, **{kind: 1.0 for kind in _POSTERIOR}, "SAP": 1.2, "IAP": 1.2,
             **{bone: v[0] for bone, v in _PELVIC.items()}, "default": 1.5}
CORE_HU = {"body": 205.0, **{kind: 300.0 for kind in _POSTERIOR}, **{bone: v[1] for bone, v in _PELVIC.items()},
           "default": TISSUES["cancellous_bone"].hu}
CORTICAL_HU = {"body": 1100.0, **{kind: 1200.0 for kind in _POSTERIOR}, **{bone: v[2] for bone, v in _PELVIC.items()},
               "default": TISSUES["cortical_bone"].hu}
# The S1 body's cancellous bone is denser than the lumbar bodies' core (205 HU): 280 HU (95% CI 262-298) in circles
# of its cancellous bone on the pelvic CTs of 100 patients, the densest of the iliosacral region (Nakamura et al.,
# "Bone mineral density mapping of iliosacral region: the use of Hounsfield units to optimize transsacral screw
# trajectory", Military Medicine, 2020; the anterior ilium 254 HU at S1, the ala 152 HU less). Its shell and
# endplates are the lumbar bodies' (BODY_SHELL_MM_BY_FACING).
S1_BODY_CORE_HU = 280.0
# The body's shell thickness (mm) by how much its surface faces along the spine's axis (|cos| of the
# angle between the surface normal and the vertebra's superior axis): the side walls (0) keep the thinner
# shell; the rounded rims between wall and endplate (0.5-0.8), the ring apophyses, are the densest bone
# of the body on a lateral radiograph; the endplates themselves (1) are a subchondral plate, 0.8 mm on CT
# [ED: Silva et al. 1994 measured the endplate ~0.35 mm centrally and thicker at the rim; a clinical
# scan shows it about twice as thick, §5.4]. Thicker plates and rims (1 and 1.8 mm of 800 HU) framed the
# bodies as empty boxes on the lateral and AP views: the plates and rims keep the bone of 0.8 and 1.3 mm of
# 800 HU (generator 28) in the denser shell, 0.53 and 0.87 mm of 1100 HU (the bone above the core's scales
# with the thickness down to half the endosteal ramp).
BODY_SHELL_MM_BY_FACING = ((0.0, 0.45, 0.65, 0.85, 1.0), (0.75, 0.75, 0.87, 0.53, 0.53))
# The pedicle's cortical tube continues this far into the body (mm) before it merges with the
# body's trabecular bone [ED]: the funnel that makes the pedicle's "eye" on AP and oblique views. Its
# walls keep the CT number they had with the body's (generator 28): the eye and the Scotty dog's tests were
# set on it, and the body's denser side walls are for the walls seen tangentially, not the funnel.
PEDICLE_WALL_INTO_BODY_MM = 6.0
PEDICLE_FUNNEL_HU = 800.0
# The pedicle's medial wall, toward the canal, is thicker than its lateral one: 0.8-0.9 against 0.6 mm in sections
# of 20 adult L3 pedicles (Importance of microstructure of lumbar pedicle in screw placement, histology at the
# isthmus; the upper and lower walls 1.1-1.6 mm). The model's 1.5 mm (CORTEX_MM, a CT's partial volume) takes that
# ratio, 1.4, on the walls that face the midline: the AP's rays run along them, and a wall that the pedicle's
# medial turn (L5's 28 deg, clinical.md §4.2 [ED]) puts at a slant to the rays still carries bone enough to show.
PEDICLE_MEDIAL_CORTEX_MM = 2.1
# The transverse process's cortex (mm) by how much its surface faces along the spine's axis (|cos| of the angle
# between the surface normal and the vertebra's superior axis): the flat front and back faces (0) take the
# posterior elements' thinnest (cortex ~1-1.5 mm over a cancellous core, clinical.md §5.4 [measured]), the cranial
# and caudal borders (1) 2 mm [ED]. The AP and oblique views' rays run along those borders, so the process shows a
# dense outline round a lighter core, as a radiograph's does, not an even paddle (issue 15): with 1.2 mm all round
# the far process's border stood 0.005 over its core on the Scotty view's line integrals, with 1.0/1.5 mm 0.02 (of
# the process's 0.15 over the soft tissue beside it); on an elliptic section 5 x 8 mm, 1.0/2.0 mm gives the border's
# ray 1.40 times the centre's bone against 1.03 with 1.2 mm all round and 1.24 with 1.0/1.5 (0.05 mm grid, the
# endosteal ramp and the CT's 0.8 mm blur).
TRANSVERSE_PROCESS_SHELL_MM_BY_FACING = ((0.0, 1.0), (1.0, 2.0))
# How far (mm) beyond its own box a part of a real vertebra claims the outline's voxels (the nearest
# part names each voxel; beyond every part's reach the nearest labelled voxel does) [ED].
OUTLINE_PART_REACH_MM = 8.0
MUSCLES = ("quadratus_lumborum", "psoas", "erector_spinae", "multifidus")
TABLE_MARGIN_MM = 5.0
ABDOMINAL_WALL_MM = 12.0            # obliques and transversus (and latissimus behind) [ED]
FLANK_WALL_FROM_MM = 70.0           # off the midline, the wall muscles wrap round behind the flanks [ED]
# The grid's top above T12's centre: T12 whole with its 12th ribs' heads and the T11-T12 disc (half a
# body height, ~13 mm, and a disc, ~5 mm, with a margin) [ED].
FOV_TOP_ABOVE_T12_CENTRE_MM = 22.0
# The image's lower edge below the coccyx's tip: a caudal view tilted down the sacrum, and the linear probe's
# sagittal view of the hiatus (38 mm long, centred between the cornua ~30 mm above the tip), then meet soft
# tissue, not the volume's edge [ED].
COCCYX_MARGIN_MM = 45.0
# ... and this far (mm) below the hip bones' lowest point (the ischial tuberosities) [ED]: a steep cranial view
# of S1 (an outlet view, 40 deg) looks up through the pubis and ischia, which the floor cut 20 mm above their
# lowest point until generator 39 (the ray's bone beyond the cut was lost: the body beyond the floor is
# continued as water only, simulator.imaging.drr.body_extension).
PELVIS_MARGIN_MM = 5.0


@dataclass
class SpineModel:
    """Every implicit part of one generated patient, before rasterisation."""

    params: SpineParameters
    skeleton: Skeleton
    structures: dict[str, list[Shape]]   # label -> shapes (everything but bone, trunk and epidural)
    bones: dict[str, list[tuple[str, Shape]]]  # bone group (vertebra, ilium) -> labelled blended parts
    cavities: dict[str, list[Shape]]     # bone group -> spaces cut from it when painted (sacral canal, foramina)
    joints: dict[str, Shape]             # label -> joint space painted after the bones (sacroiliac joints)
    trunk: Trunk
    canal: list[Shape]
    dura_thickness_mm: float
    landmarks: dict[str, np.ndarray]
    directions: dict[str, np.ndarray]
    grid: Grid


def build_model(params: SpineParameters) -> SpineModel:
    """The implicit patient for ``params`` (cheap: no voxels yet)."""
    alignment = align_spine(params)
    skeleton = build_skeleton(alignment, params)
    t12 = skeleton.layouts["T12"]
    top_z = float(t12.frame.origin[2] + FOV_TOP_ABOVE_T12_CENTRE_MM)
    s1 = skeleton.layouts["S1"]
    lumbarized = params.transitional == "lumbarized_S1"
    si_joints = {side: sacroiliac_joint(s1, side, lumbarized) for side in SIDE_SIGN}
    ilia = ilium_parts(skeleton, si_joints, params.skeleton_scale)
    # The image reaches below the coccyx (the caudal approach needs the hiatus, cornua and coccyx) and below
    # the whole hip bones (the steep cranial views see their lower ring).
    bottom_z = min(float(s1.world(coccyx_tip(s1, lumbarized))[2]) - COCCYX_MARGIN_MM,
                   min(lowest_point_z(shape) for parts in ilia.values() for _, shape in parts) - PELVIS_MARGIN_MM)
    neural = build_neural(alignment, skeleton.layouts, params, top_z + TABLE_MARGIN_MM)
    vessels = build_vessels(skeleton.layouts, neural, params, top_z + TABLE_MARGIN_MM)
    profile = spine_profile(skeleton)
    muscles = muscle_shapes(profile, top_z + TABLE_MARGIN_MM, bottom_z - TABLE_MARGIN_MM, alignment.body)
    flavum = flavum_shapes(skeleton, params.degeneration)
    supraspinous = supraspinous_shape(skeleton, top_z + TABLE_MARGIN_MM)
    erectors = (muscles["muscle.erector_spinae.left"], muscles["muscle.erector_spinae.right"])
    trunk = calibrate_midline_fat(skeleton, flavum, supraspinous, erectors, profile, params)
    # The buttocks below the iliac crests: they change the back only below the L3-L4 level the fat is calibrated at.
    trunk.buttocks = buttocks(si_joints, bottom_z - TABLE_MARGIN_MM, params.bmi, params.sex, trunk.flank_fat_mm)
    structures: dict[str, list[Shape]] = {}
    kidneys = kidney_shapes(skeleton, profile)
    retroperitoneum = retroperitoneal_fat_shapes(muscles, kidneys)
    if params.bowel_gas:
        # Stool first: the gas pockets painted over it are the gas within the colon. Both lie in front of the
        # retroperitoneal fat, which holds the psoas, the quadratus lumborum and the kidneys.
        behind = [shape for shapes in retroperitoneum.values() for shape in shapes]
        structures["colon_content"] = colon_content_shapes(profile, params.seed, behind)
        structures["bowel_gas"] = bowel_gas_shapes(profile, params.seed, behind)
    # The retroperitoneal fat (round psoas, quadratus and kidneys) first: the organs and muscles fill its inside.
    structures.update(retroperitoneum)
    structures.update({f"kidney.{side}": [kidneys[f"kidney.{side}"]] for side in SIDE_SIGN})
    # The gluteal muscles before the back muscles, which win where the maximus meets the multifidus on the sacrum.
    shrink = SKIN_THICKNESS_MM + trunk.flank_fat_mm
    interior = Within(lambda x, y, z: trunk.section_sdf(x, y, z, shrink_mm=shrink))
    tuffier_z = float(skeleton.alignment.discs["L4-L5"].frame.origin[2])
    structures.update({k: [v] for k, v in gluteal_muscles(si_joints, tuffier_z, bottom_z - TABLE_MARGIN_MM,
                                                          trunk.buttocks, interior).items()})
    for name in MUSCLES:
        for side in SIDE_SIGN:
            structures[f"muscle.{name}.{side}"] = [muscles[f"muscle.{name}.{side}"]]
    structures.update({k: v for k, v in vessels.shapes.items() if not k.startswith("radicular_artery")})
    structures["supraspinous_ligament"] = [supraspinous]
    structures.update({k: [v] for k, v in interspinous_shapes(skeleton).items()})
    structures.update({k: [v] for k, v in disc_shapes(skeleton, params.degeneration).items()})
    if params.transitional == "lumbarized_S1":
        structures["S1-S2.disc.annulus"] = [rudimentary_disc(skeleton.layouts["S1"])]
    structures.update({k: [v] for k, v in flavum.items()})
    structures["dural_sac.dura"] = [neural.sac]
    structures["cauda_equina"] = neural.cauda
    structures["spinal_cord"] = [neural.cord]
    structures.update(neural.roots)
    structures.update({k: [v] for k, v in neural.ganglia.items()})
    structures.update({k: v for k, v in vessels.shapes.items() if k.startswith("radicular_artery")})
    landmarks, directions = spine_landmarks(skeleton, neural, flavum)
    grid = _grid(params, skeleton, trunk, profile, top_z, bottom_z)
    # The ribs first: T12's own parts win where a rib's head meets its body and pedicle.
    bones = rib_parts(skeleton.layouts["T12"])
    bones.update(skeleton.parts)
    bones.update(ilia)
    bones["coccyx"] = coccyx_parts(s1, lumbarized)
    cavities = {"S1": sacral_cavities(s1, lumbarized) + [joint.sacral_cut() for joint in si_joints.values()]}
    sacrum = [shape for _, shape in bones["S1"]]
    for side, joint in si_joints.items():
        ilium = bones[f"ilium.{side}"][0][1]
        cavities[f"ilium.{side}"] = [joint.iliac_cut(), sacral_clearance(joint, sacrum, [joint.sacral_cut()], ilium)]
    joints = {f"sacroiliac_joint.{side}": joint.space_shape() for side, joint in si_joints.items()}
    landmarks.update(sacral_landmarks(s1, si_joints, lumbarized))
    # The epidural compartment continues down the sacral canal to the hiatus and into the foramina.
    canal = canal_region(skeleton, flavum) + sacral_canal(s1, lumbarized) + foraminal_region(s1, lumbarized)
    return SpineModel(params, skeleton, structures, bones, cavities, joints, trunk, canal, neural.dura_thickness_mm,
                      landmarks, directions, grid)


def lowest_point_z(shape: Shape, step_mm: float = 2.0) -> float:
    """z (mm) of the lowest point inside ``shape``, to ``step_mm``: its sdf searched upward from its box's
    floor, one horizontal layer at a time (its box is loose: it holds the sdf's margin round the bone)."""
    x = np.arange(shape.lower[0], shape.upper[0] + step_mm, step_mm, dtype=np.float32)[:, None]
    y = np.arange(shape.lower[1], shape.upper[1] + step_mm, step_mm, dtype=np.float32)[None, :]
    for z in np.arange(shape.lower[2], shape.upper[2] + step_mm, step_mm):
        if (shape.sdf(x, y, np.full((1, 1), z, np.float32)) < 0).any():
            return float(z)
    raise ValueError("the shape holds no point")


def _grid(params: SpineParameters, skeleton: Skeleton, trunk: Trunk, profile, top_z: float, bottom_z: float) -> Grid:
    z = np.linspace(bottom_z, top_z, 24)
    if params.field_of_view == "torso":
        step = 4.0  # a coarse search for the outline's extent; the margin covers the step
        x = np.arange(-400.0, 400.0, step)[:, None, None]
        y = np.arange(-500.0, 400.0, step)[None, :, None]
        inside = trunk.section_sdf(x.astype(np.float32), y.astype(np.float32), z[None, None, :].astype(np.float32)) < 0
        xs, ys = np.nonzero(inside.any(axis=2))
        margin = np.array([TABLE_MARGIN_MM + step, TABLE_MARGIN_MM + step, TABLE_MARGIN_MM])
        lower = np.array([x.ravel()[xs.min()], y.ravel()[ys.min()], bottom_z]) - margin
        upper = np.array([x.ravel()[xs.max()], y.ravel()[ys.max()], top_z]) + margin
    else:
        back = float(np.max(trunk.posterior_y(z.astype(np.float32))))  # the buttocks rise behind the midline
        front = float(np.min(profile.values["y"] - profile.values["half_depth"])) - 45.0
        lower = np.array([-95.0, front, bottom_z - TABLE_MARGIN_MM])
        upper = np.array([95.0, back + TABLE_MARGIN_MM, top_z + TABLE_MARGIN_MM])
    h = params.spacing_mm
    origin = np.floor(lower / h) * h
    shape = tuple(int(n) for n in np.floor((upper - origin) / h).astype(int) + 1)
    return Grid(shape, tuple(float(o) for o in origin), h)


# ----------------------------------------------------------------------------- the label table
def label_names(model: SpineModel) -> list[tuple[str, str]]:
    """(structure name, tissue) of every label of the generated anatomy, in a fixed order."""
    rows = {"skin": "skin", "fat": "fat", "soft_tissue": "soft_tissue"}
    for parts in model.bones.values():
        rows.update({label: "cortical_bone" for label, _ in parts})
    rows.update({f"muscle.abdominal_wall.{side}": "muscle" for side in SIDE_SIGN})
    rows.update({label: "cartilage" for label in model.joints})
    for interspace in INTERSPACE_NAMES:
        rows[f"facet_joint.{interspace}.left"] = rows[f"facet_joint.{interspace}.right"] = "cartilage"
    rows["epidural_space"] = "fat"
    rows["dural_sac.csf"] = "csf"
    tissues = {"ligamentum_flavum": "ligament", "interspinous_ligament": "ligament", "supraspinous_ligament": "ligament",
               "dural_sac": "dura", "spinal_cord": "spinal_cord", "cauda_equina": "nerve", "nerve_root": "nerve",
               "dorsal_root_ganglion": "nerve", "muscle": "muscle", "bowel_gas": "air",
               # Stool holds gas: its CT numbers are drawn by the CT synthesis (ct_synthesis.STOOL_HU); for
               # the ultrasound it is gas-filled bowel, which reflects the whole beam like air.
               "colon_content": "air",
               "retroperitoneal_fat": "fat", "kidney": "soft_tissue"}
    for label in model.structures:
        if label.endswith(".disc.annulus") or label.endswith(".disc.nucleus"):
            rows[label] = "disc_" + label.rsplit(".", 1)[1]
        else:
            rows[label] = tissues.get(label.split(".")[0], "blood")
    return list(rows.items())


# ------------------------------------------------------------------------------- rasterising
def _paint(labels: np.ndarray, grid: Grid, shape: Shape, label_id: int, threshold: float = 0.0,
           within: int | None = None) -> None:
    """Label the voxels inside ``shape`` (sdf below ``threshold``), only those labelled ``within`` if given."""
    box, values = grid.evaluate(shape)
    if box is not None:
        inside = values < threshold
        if within is not None:
            inside &= labels[box] == within
        labels[box][inside] = label_id


def _cortex_mm(label: str) -> float:
    return CORTEX_MM.get(_kind(label), CORTEX_MM["default"])


def _cortical_hu(label: str) -> float:
    return CORTICAL_HU.get(_kind(label), CORTICAL_HU["default"])


def _core_hu(label: str) -> float:
    if label == "S1.body":
        return S1_BODY_CORE_HU
    return CORE_HU.get(_kind(label), CORE_HU["default"])


def _kind(label: str) -> str:
    """The part kind of a bone label: a vertebra's part, or the pelvic bone a part belongs to.

    >>> [_kind(label) for label in ("L4.SAP.left", "S1.body", "S1.SAP.left", "S1", "S1.dorsal_wall", "S1.lamina.left",
    ...                             "ilium.left", "coccyx")]
    ['SAP', 'body', 'SAP', 'sacrum', 'sacrum', 'sacrum', 'ilium', '']
    """
    parts = label.split(".")
    if parts[0] == "ilium":
        return "ilium"
    kind = parts[1] if len(parts) > 1 else ""
    if parts[0] == "S1" and kind not in ("body", "pedicle", "SAP", "IAP"):
        return "sacrum"
    return kind


def _paint_bone(labels: np.ndarray, grid: Grid, parts, ids: dict[str, int], joints: list[Shape],
                outline: Shape | None = None, frame=None) -> BoneRegion | None:
    """Paint one bone (its parts blended, the facet joint spaces cut out); returns its CT region.

    With an ``outline`` (a real vertebra shape) the bone is the outline and the parts only name its
    regions: each voxel takes the label of the nearest part. ``frame`` is a vertebra's (origin, rotation whose
    columns are its left and superior axes among others): its body's endplates and rims then get their denser
    shells (:data:`BODY_SHELL_MM_BY_FACING`), its pedicles' medial walls theirs (:data:`PEDICLE_MEDIAL_CORTEX_MM`).
    """
    boxes = [s for _, s in parts] + ([outline] if outline is not None else [])
    lower = np.min([s.lower for s in boxes], axis=0) - BONE_BLEND_MM
    upper = np.max([s.upper for s in boxes], axis=0) + BONE_BLEND_MM
    box = grid.box(lower, upper)
    if box is None:
        return None
    blended = np.full(grid.box_shape(box), FAR_MM, dtype=np.float32)
    nearest = blended.copy()
    walls: dict[str, np.ndarray] = {}  # the body's and the pedicles' sdfs, where the bone has them
    owner = np.zeros(blended.shape, dtype=np.int16)
    # A real outline reaches past the parts that name its regions: each part claims voxels further out.
    reach_mm = BONE_BLEND_MM if outline is None else OUTLINE_PART_REACH_MM
    cortex = np.zeros(len(parts) + 1, dtype=np.float32)
    core = np.zeros(len(parts) + 1, dtype=np.float32)
    cortical = np.zeros(len(parts) + 1, dtype=np.float32)
    for index, (label, shape) in enumerate(parts, start=1):
        cortex[index] = _cortex_mm(label)
        core[index] = _core_hu(label)
        cortical[index] = _cortical_hu(label)
        sub = grid.intersect(box, shape.lower - reach_mm, shape.upper + reach_mm)
        if sub is None:
            continue
        values = np.full(grid.box_shape(sub), FAR_MM, dtype=np.float32)
        shape.paint(values, grid, sub)
        local = tuple(slice(a.start - b.start, a.stop - b.start) for a, b in zip(sub, box))
        if outline is None:  # a real vertebra's bone is its outline: the parts only name its regions
            blended[local] = smooth_min(blended[local], values, BONE_BLEND_MM)
        closer = values < nearest[local]
        np.minimum(nearest[local], values, out=nearest[local])
        owner[local][closer] = index
        kind = _kind(label)
        if kind in ("body", "pedicle"):
            if kind not in walls:
                walls[kind] = np.full(blended.shape, FAR_MM, dtype=np.float32)
            np.minimum(walls[kind][local], values, out=walls[kind][local])
    if outline is not None:
        outline.paint(blended, grid, box)
        # Bone beyond every part's reach takes the label of the nearest labelled voxel.
        unowned = (owner == 0) & (blended < 0)
        if unowned.any():
            nearest_index = ndimage.distance_transform_edt(owner == 0, return_distances=False, return_indices=True)
            owner[unowned] = owner[tuple(i[unowned] for i in nearest_index)]
    # The joint spaces separate the articular processes of two vertebrae: no bone inside them.
    for joint in joints:
        sub = grid.intersect(box, joint.lower, joint.upper)
        if sub is None:
            continue
        values = np.full(grid.box_shape(sub), FAR_MM, dtype=np.float32)
        joint.paint(values, grid, sub)
        local = tuple(slice(a.start - b.start, a.stop - b.start) for a, b in zip(sub, box))
        np.maximum(blended[local], -values, out=blended[local])
    mask = blended < 0
    part_ids = np.array([0] + [ids[label] for label, _ in parts], dtype=labels.dtype)
    labels[box][mask] = part_ids[owner[mask]]
    del mask, nearest
    midline = pedicles = processes = None
    if frame is not None:
        x, y, z = grid.axes(box)
        lateral = frame.rotation[:, 0]
        across = sum((coordinate - origin) * share
                     for coordinate, origin, share in zip((x, y, z), frame.origin, lateral))
        midline = (-np.sign(across).astype(np.float32), lateral)
        pedicles = np.isin(owner, [index for index, (label, _) in enumerate(parts, start=1)
                                   if _kind(label) == "pedicle"])
        processes = np.isin(owner, [index for index, (label, _) in enumerate(parts, start=1)
                                    if _kind(label) == "transverse_process"])
    hu = _bone_hu(blended, owner, (cortex, core, cortical), walls.get("body"), walls.get("pedicle"),
                  None if frame is None else frame.rotation[:, 2], grid.spacing, pedicles, midline,
                  None if frame is None else processes)
    return BoneRegion(box, blended, hu)


# A bone's CT numbers are made this many rows (the box's first axis) at a time: the hip bones' boxes hold
# ten million voxels, and their temporaries whole were the generation's peak of memory.
BONE_HU_ROWS = 16


def _bone_hu(sdf_mm: np.ndarray, owner: np.ndarray, by_part: tuple[np.ndarray, np.ndarray, np.ndarray],
             body: np.ndarray | None, pedicle: np.ndarray | None, axis: np.ndarray | None,
             spacing_mm: float, pedicles: np.ndarray | None = None,
             midline: tuple[np.ndarray, np.ndarray] | None = None,
             processes: np.ndarray | None = None) -> np.ndarray:
    """CT numbers of a bone (shell and core, before its texture) over its box, from its signed distance
    ``sdf_mm``, the part that names each voxel (``owner``, an index into ``by_part``'s cortex thickness (mm),
    core and cortical CT numbers (HU)) and, for a vertebra, its body's and pedicles' signed distances (None
    where it has none) and superior ``axis`` (the body's endplates and rims then get their denser shells), the
    voxels its ``pedicles`` name and ``midline``, each voxel's sign toward the midline along the vertebra's left
    axis and that axis (the pedicles' medial walls then get theirs), and the voxels its transverse ``processes``
    name (their borders then get theirs, :data:`TRANSVERSE_PROCESS_SHELL_MM_BY_FACING`)."""
    cortex, core, cortical = by_part
    # Inside the body the pedicle keeps its own cortical walls for a few millimetres (its funnel).
    funnel = None
    if body is not None and pedicle is not None:
        funnel = (pedicle < 0) & (body < -0.5) & (body > -PEDICLE_WALL_INTO_BODY_MM)
    body_shell = None
    if axis is not None and body is not None:
        in_body = body < 0 if funnel is None else (body < 0) & ~funnel
        body_shell = np.zeros(sdf_mm.shape, dtype=np.float32)
        body_shell[in_body] = _body_shell_mm(body, in_body, axis, spacing_mm)
    pedicle_shell = walled = None
    if midline is not None and pedicles is not None and pedicles.any():
        # The funnel's walls are the pedicle's own surface; elsewhere the outline is the pedicle's surface.
        walled = pedicles if funnel is None else pedicles | funnel
        surface = sdf_mm if funnel is None else np.where(funnel, pedicle, sdf_mm)
        pedicle_shell = np.zeros(sdf_mm.shape, dtype=np.float32)
        pedicle_shell[walled] = _pedicle_shell_mm(surface, walled, *midline, spacing_mm)
    process_shell = None
    if axis is not None and processes is not None and processes.any():
        process_shell = np.zeros(sdf_mm.shape, dtype=np.float32)
        process_shell[processes] = np.interp(_facing_along(sdf_mm, processes, axis, spacing_mm),
                                             *TRANSVERSE_PROCESS_SHELL_MM_BY_FACING)
    hu = np.empty(sdf_mm.shape, dtype=np.float32)
    for start in range(0, sdf_mm.shape[0], BONE_HU_ROWS):
        rows = slice(start, start + BONE_HU_ROWS)
        parts = owner[rows]
        depth, shell, wall_hu = -sdf_mm[rows], cortex[parts], cortical[parts]
        if funnel is not None:
            here = funnel[rows]
            depth[here] = np.minimum(depth[here], -pedicle[rows][here])
            shell[here] = CORTEX_MM["pedicle"]
            wall_hu[here] = PEDICLE_FUNNEL_HU
        if body_shell is not None:
            in_body = body[rows] < 0 if funnel is None else (body[rows] < 0) & ~funnel[rows]
            shell[in_body] = body_shell[rows][in_body]
        if pedicle_shell is not None:
            here = walled[rows]
            shell[here] = pedicle_shell[rows][here]
        if process_shell is not None:
            here = processes[rows]
            shell[here] = process_shell[rows][here]
        hu[rows] = bone_hu_from_depth(depth, shell, core[parts], wall_hu)
    return hu


def _body_shell_mm(body_sdf_mm: np.ndarray, where: np.ndarray, axis: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Shell thickness (mm) of the body at the voxels ``where``, from how much the nearest surface
    (the gradient of the body's signed distance) faces along ``axis``: endplates and rims thicker
    than the side walls.

    >>> z = np.arange(-6.5, 7.0)[None, None, :] * np.ones((14, 14, 1))
    >>> slab = np.abs(z) - 5.0                     # a slab 10 mm thick: two endplates facing along z
    >>> inside = slab < 0
    >>> {round(v, 2) for v in _body_shell_mm(slab, inside, np.array([0.0, 0.0, 1.0]), 1.0).tolist()}
    {0.53}
    >>> {round(v, 2) for v in _body_shell_mm(slab, inside, np.array([1.0, 0.0, 0.0]), 1.0).tolist()}  # walls
    {0.75}
    >>> {round(v, 2) for v in _body_shell_mm(slab, inside, np.array([0.0, 0.6, 0.8]), 1.0).tolist()}  # a rim
    {0.62}
    """
    return np.interp(_facing_along(body_sdf_mm, where, axis, spacing_mm), *BODY_SHELL_MM_BY_FACING).astype(np.float32)


def _facing_along(sdf_mm: np.ndarray, where: np.ndarray, axis: np.ndarray, spacing_mm: float) -> np.ndarray:
    """How much the nearest surface (the gradient of ``sdf_mm``) faces along ``axis`` at the voxels ``where``: the
    |cos| of the angle between them, 0 (a wall along the axis) to 1 (a surface across it).

    >>> z = np.arange(-2.5, 3.0)[None, None, :] * np.ones((4, 4, 1))
    >>> slab = np.abs(z) - 2.0                      # a slab facing along z
    >>> _facing_along(slab, slab < 0, np.array([0.0, 0.6, 0.8]), 1.0).round(2).tolist()[:2]
    [0.8, 0.8]
    """
    gradient = np.stack([g[where] for g in np.gradient(sdf_mm, spacing_mm)], axis=1)
    norm = np.maximum(np.linalg.norm(gradient, axis=1), 1e-6)
    return np.abs(gradient @ (np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis))) / norm


def _pedicle_shell_mm(sdf_mm: np.ndarray, where: np.ndarray, toward_midline: np.ndarray, lateral: np.ndarray,
                      spacing_mm: float) -> np.ndarray:
    """Cortex thickness (mm) of the pedicle at the voxels ``where``, from how much the nearest surface (the
    gradient of ``sdf_mm``, outward) faces the midline (``toward_midline``, each voxel's sign along ``lateral``, the
    vertebra's left axis): :data:`PEDICLE_MEDIAL_CORTEX_MM` on the medial wall, the pedicle's own elsewhere.

    >>> u = np.arange(-9.5, 10.0)[:, None, None] * np.ones((20, 4, 4))
    >>> tube = np.abs(np.abs(u) - 6.0) - 2.0              # two walls 4 mm thick, at |u| 4-8 mm, either side
    >>> inside, lateral = tube < 0, np.array([1.0, 0.0, 0.0])
    >>> shell = np.zeros(u.shape)
    >>> shell[inside] = _pedicle_shell_mm(tube, inside, -np.sign(u).astype(np.float32), lateral, 1.0)
    >>> shell[14:18, 0, 0].round(2).tolist()            # the left wall at u 4.5, 5.5 (medial half), 6.5, 7.5
    [2.1, 2.1, 1.5, 1.5]
    >>> shell[2:6, 0, 0].round(2).tolist()              # the right wall at u -7.5, -6.5 (lateral half), -5.5, -4.5
    [1.5, 1.5, 2.1, 2.1]
    """
    gradient = np.stack([g[where] for g in np.gradient(sdf_mm, spacing_mm)], axis=1)
    norm = np.maximum(np.linalg.norm(gradient, axis=1), 1e-6)
    facing = (gradient @ np.asarray(lateral, dtype=np.float64)) * toward_midline[where] / norm
    return np.interp(facing, (0.0, 1.0), (CORTEX_MM["pedicle"], PEDICLE_MEDIAL_CORTEX_MM)).astype(np.float32)


def _paint_trunk(labels: np.ndarray, grid: Grid, model: SpineModel, ids: dict[str, int], skin_hu: float) -> SurfaceBand:
    """Paint skin, fat, the abdominal wall and the viscera; returns the skin surface's partial-volume band."""
    trunk, profile = model.trunk, model.trunk.profile
    x, y, _ = grid.axes(grid.full)
    band_ijk, band_share = [], []
    for start in range(0, grid.shape[2], 16):
        box = (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(start, min(start + 16, grid.shape[2])))
        z = grid.axes(box)[2]
        # The outline, its shrunk copy and the buttocks' test share the back's skin and the buttocks' distance,
        # evaluated once per slab (three times over, the buttocks' distance was half of the trunk's painting).
        back, buttocks = trunk.back_y(x, z), trunk.buttocks.sdf(x, y, z)
        outline = trunk.section_sdf(x, y, z, back=back, buttocks=buttocks)
        # The skin's surface is the strongest edge a radiograph sees: air against tissue.
        cut = np.argwhere(np.abs(outline) < 0.5 * grid.spacing)
        band_share.append(inside_fraction(outline[tuple(cut.T)], grid.spacing))
        band_ijk.append((cut + np.array([0, 0, start])).astype(np.int32))
        slab = labels[box]
        slab[outline < 0] = ids["skin"]
        slab[outline < -SKIN_THICKNESS_MM] = ids["fat"]
        lean = trunk.section_sdf(x, y, z, shrink_mm=trunk.flank_fat_mm + SKIN_THICKNESS_MM, back=back,
                                 buttocks=buttocks)
        # Behind the plane of the transverse processes the back muscles and fat take over; the
        # boundary curves forward toward the flanks. The abdominal wall lines the outline in front.
        half_width = np.float32(LEAN_HALF_WIDTH_MM)
        back_limit = profile.at("tp_y", z).astype(np.float32) + 8.0 - 45.0 * (x / half_width) ** 2
        in_front = y < back_limit
        # The wall muscles also wrap the flanks behind that line (latissimus, obliques) as a layer under the
        # fat, thinning toward the back muscles over 40 mm: a layer cut off at |x| = FLANK_WALL_FROM_MM, the
        # whole depth behind the flank, was a plane along the beam, a straight seam down an AP (issue 15).
        taper = np.clip((np.abs(x) - (FLANK_WALL_FROM_MM - 20.0)) / 40.0, 0.0, 1.0)
        behind_mm = (ABDOMINAL_WALL_MM * taper * taper * (3.0 - 2.0 * taper)).astype(np.float32)
        wall = (lean < 0) & (in_front | (lean > -behind_mm))
        # In the buttocks the gluteus maximus (painted later) lies under the buttock fat instead.
        wall &= ~(buttocks < 0)
        slab[wall & (x >= 0)] = ids["muscle.abdominal_wall.left"]
        slab[wall & (x < 0)] = ids["muscle.abdominal_wall.right"]
        slab[(lean < -ABDOMINAL_WALL_MM) & in_front] = ids["soft_tissue"]
    return SurfaceBand(np.concatenate(band_ijk), np.concatenate(band_share), skin_hu, TISSUES["air"].hu)


def _fill_epidural(labels: np.ndarray, grid: Grid, model: SpineModel, ids: dict[str, int], low_priority: np.ndarray) -> None:
    """Label as epidural every voxel the sac's surroundings reach in the canal region without crossing
    bone, disc, ligamentum flavum or a facet joint (6-connected flood fill), in front of the canal's
    posterior wall."""
    lower = np.min([s.lower for s in model.canal], axis=0)
    upper = np.max([s.upper for s in model.canal], axis=0)
    box = grid.box(lower, upper)
    region = np.zeros(grid.box_shape(box), dtype=bool)
    for shape in model.canal:
        sub = grid.intersect(box, shape.lower, shape.upper)
        if sub is None:
            continue
        values = np.full(grid.box_shape(sub), FAR_MM, dtype=np.float32)
        shape.paint(values, grid, sub)
        local = tuple(slice(a.start - b.start, a.stop - b.start) for a, b in zip(sub, box))
        region[local] |= values < 0
    local = labels[box]
    barrier_ids = [i for name, i in ids.items() if name.split(".")[0] in VERTEBRA_NAMES or name == "S1"
                   or ".disc." in name or name.startswith(("ligamentum_flavum", "facet_joint"))]
    barrier = np.isin(local, barrier_ids)
    sac = np.isin(local, [ids["dural_sac.dura"], ids["dural_sac.csf"]])
    components, _ = ndimage.label(region & ~barrier)
    reached = np.unique(components[sac & region])
    reached = reached[reached > 0]
    epidural = np.isin(components, reached) & low_priority[local]
    epidural &= ~_behind_canal_wall(epidural, local, box, grid, model, ids)
    local[epidural] = ids["epidural_space"]


# How far (mm) a voxel of the epidural fill looks forward for the canal's posterior wall in front of it.
CANAL_WALL_SEARCH_MM = 20.0


def _behind_canal_wall(candidates: np.ndarray, local: np.ndarray, box, grid: Grid, model: SpineModel,
                       ids: dict[str, int]) -> np.ndarray:
    """Which ``candidates`` (voxels of the epidural fill, in ``box``) lie behind the canal's posterior
    wall: going forward from them along the spine's local anterior axis, they meet the ligamentum
    flavum or the laminae, spinous processes or articular processes (or the sacrum's dorsal wall and
    cornua) before the dural sac.

    The epidural space ends at that wall; the fill can get round its edges (between the flavum and a
    lamina, into a crack of a thin bony edge, out through the dorsal sacral foramina), where a needle
    would feel a false loss of resistance before the flavum.
    """
    wall = np.zeros(max(ids.values()) + 1, dtype=bool)
    sac = wall.copy()
    for name, i in ids.items():
        parts = name.split(".")
        wall[i] = name.startswith("ligamentum_flavum") or (
            len(parts) > 1 and parts[0] in VERTEBRA_NAMES
            and parts[1] in ("lamina", "spinous_process", "SAP", "IAP", "dorsal_wall", "cornu"))
        sac[i] = name.startswith("dural_sac")
    ijk = np.argwhere(candidates)
    offset = np.array([b.start for b in box])
    points = np.asarray(grid.origin) + (ijk + offset) * grid.spacing
    # The local anterior axis of the spine at each point's height, from the vertebrae's frames.
    frames = sorted((v.frame.origin[2], -v.frame.rotation[:, 1]) for v in model.skeleton.layouts.values())
    z = np.array([f[0] for f in frames])
    forward = np.stack([np.interp(points[:, 2], z, [f[1][axis] for f in frames]) for axis in range(3)], axis=1)
    forward /= np.linalg.norm(forward, axis=1, keepdims=True)
    # The probe is as thick as the voxel: rays from the centre and from half a voxel to each side
    # across the axis, so that no ray from behind slips forward between the corner-touching voxels of
    # a thin oblique wall (the flavum's tip under a lamina) into the fill.
    across = np.cross(forward, [1.0, 0.0, 0.0])
    across /= np.maximum(np.linalg.norm(across, axis=1, keepdims=True), 1e-6)
    # Half a voxel at 1 mm; no more than half a millimetre on a coarse grid, whose thin fill it would empty.
    half = min(0.5, 0.5 / grid.spacing)
    starts = [ijk.astype(float)] + [ijk + sign * half * axis for axis in (np.array([[1.0, 0.0, 0.0]]), across)
                                    for sign in (-1.0, 1.0)]
    behind = np.zeros(len(points), dtype=bool)
    # The steps along a ray in voxels: half a voxel each, as far as CANAL_WALL_SEARCH_MM voxels (the search's
    # reach is that many millimetres on the 1 mm grid only; kept as it was, so the voxels stay the same).
    steps = np.arange(0.5, CANAL_WALL_SEARCH_MM, 0.5) * grid.spacing / grid.spacing
    for start in starts:
        _march_to_wall(np.ascontiguousarray(start, dtype=np.float64), forward, steps, local, wall, sac, behind)
    result = np.zeros(candidates.shape, dtype=bool)
    result[tuple(ijk[behind].T)] = True
    return result


@numba.njit(cache=True)
def _march_to_wall(starts, forward, steps, labels, wall, sac, behind):
    """Step each ray ``starts[i] + steps[s] * forward[i]`` (voxel indices, rounded to the nearest voxel) not yet
    ``behind``, in order, until it meets a label that is ``wall`` (then it is behind the wall) or ``sac``;
    outside ``labels`` it goes on. A ray's loop in numpy was a tenth of the generation's time on the 1 mm
    patient (the rays in front of the sac run through the bodies to the end of the search)."""
    for ray in range(starts.shape[0]):
        if behind[ray]:
            continue
        for step in steps:
            found = 0
            i = np.rint(starts[ray, 0] + forward[ray, 0] * step)
            j = np.rint(starts[ray, 1] + forward[ray, 1] * step)
            k = np.rint(starts[ray, 2] + forward[ray, 2] * step)
            if 0 <= i < labels.shape[0] and 0 <= j < labels.shape[1] and 0 <= k < labels.shape[2]:
                found = labels[int(i), int(j), int(k)]
            if wall[found]:
                behind[ray] = True
                break
            if sac[found]:
                break


def _keep_roots_in_sac(labels: np.ndarray, ids: dict[str, int]) -> None:
    """Make CSF of every root voxel of the cauda equina that touches (6-neighbour) anything outside
    the sac: where bone or disc was painted over the thin dura, or the sac's wall is a voxel thin.

    The roots float in the sac's CSF and leave it only in their sleeves (the exiting roots), so no
    structure outside the dura ever borders a root of the cauda.
    """
    cauda = ids["cauda_equina"]
    where = np.argwhere(labels == cauda)
    if len(where) == 0:
        return
    box = tuple(slice(max(int(lo) - 1, 0), int(hi) + 2) for lo, hi in zip(where.min(axis=0), where.max(axis=0)))
    local = labels[box]
    inside = np.zeros(max(ids.values()) + 1, dtype=bool)
    for name, i in ids.items():
        inside[i] = name.startswith(("cauda_equina", "dural_sac", "spinal_cord", "nerve_root", "dorsal_root_ganglion",
                                     "radicular_artery"))  # the Adamkiewicz artery's hairpin is intradural
    outside = np.pad(~inside[local], 1, constant_values=False)
    touching = np.zeros(local.shape, dtype=bool)
    for axis in range(3):
        for step in (-1, 1):
            touching |= np.roll(outside, step, axis=axis)[1:-1, 1:-1, 1:-1]
    local[touching & (local == cauda)] = ids["dural_sac.csf"]


def generate_spine(params: SpineParameters | None = None, *, progress: ProgressCallback | None = None) -> Anatomy:
    """Generate the parametric lumbar spine patient (T12 with its 12th ribs to the sacrum) as an :class:`Anatomy`.

    Parameters
    ----------
    params : SpineParameters, optional
        The patient; defaults to ``SpineParameters()`` (BMI 25, 1 mm grid, whole-torso field of view).
    progress : callable, optional
        ``progress(done, total, message)`` called as the work advances.
    """
    params = params or SpineParameters()
    report = progress or (lambda done, total, message="": None)
    report(0, 10, "building the model")
    model = build_model(params)
    grid = model.grid
    rows = label_names(model)
    table = LabelTable()
    for name, tissue in rows:
        table.add(name, tissue)
    ids = {label.name: label.id for label in table}
    labels = np.zeros(grid.shape, dtype=np.uint16)
    report(1, 10, "body outline")
    skin = _paint_trunk(labels, grid, model, ids, TISSUES["skin"].hu)
    report(3, 10, "soft tissues")
    for name, shapes in model.structures.items():
        if name == "dural_sac.dura":
            for shape in shapes:
                _paint(labels, grid, shape, ids["dural_sac.dura"])
                _paint(labels, grid, shape, ids["dural_sac.csf"], -model.dura_thickness_mm)
            continue
        # The roots of the cauda equina float in the sac's CSF; they leave it only in their sleeves
        # (the exiting nerve roots), so they never show outside the dura.
        within = ids["dural_sac.csf"] if name == "cauda_equina" else None
        for shape in shapes:
            _paint(labels, grid, shape, ids[name], within=within)
    report(5, 10, "bones")
    bone_regions = []
    for bone, parts in model.bones.items():
        joints = [joint.space_shape() for (interspace, _), joint in model.skeleton.joints.items()
                  if bone in interspace.split("-")] + model.cavities.get(bone, [])
        layout = model.skeleton.layouts.get(bone)
        painted = _paint_bone(labels, grid, parts, ids, joints, model.skeleton.outlines.get(bone),
                              None if layout is None else layout.frame)
        if painted is not None:
            # The pelvic bones' trabeculae run in arcs, not along the body axis (trabecular.PELVIC_VERTICAL_SHARE).
            pelvic = bone in ("S1", "coccyx") or bone.startswith("ilium")
            bone_regions.append(replace(painted, vertical_share=PELVIC_VERTICAL_SHARE) if pelvic else painted)
    for (interspace, side), joint in model.skeleton.joints.items():
        _paint(labels, grid, joint.space_shape(), ids[joint.name])
    for name, space in model.joints.items():
        _paint(labels, grid, space, ids[name])
    low = np.zeros(max(ids.values()) + 1, dtype=bool)
    low[0] = True
    for name, i in ids.items():
        if name in ("skin", "fat", "soft_tissue", "bowel_gas", "colon_content", "supraspinous_ligament") or \
                name.startswith(("muscle.", "retroperitoneal_fat", "kidney", "interspinous_ligament", "aorta",
                                 "inferior_vena_cava", "common_iliac")):
            low[i] = True
    report(6, 10, "epidural space")
    _fill_epidural(labels, grid, model, ids, low)
    _keep_roots_in_sac(labels, ids)
    report(7, 10, "CT numbers")
    ct = synthesize_ct(labels, table, bone_regions, grid.spacing, params.seed,
                       progress=lambda done, total, message: report(7 + 2.5 * done / total, 10, message), bands=(skin,))
    # The bones' distances and CT numbers (a quarter of a GB at 1 mm: the hip bones' boxes are large) are in the
    # CT now; held while the anatomy checks its labels, they were the generation's peak of memory.
    del bone_regions, skin
    lower, upper = np.asarray(grid.origin), np.asarray(grid.origin) + (np.asarray(grid.shape) - 1) * grid.spacing
    landmarks = {k: v for k, v in model.landmarks.items() if np.all(v >= lower) and np.all(v <= upper)}
    metadata = {
        "source": "generated:spine",
        "generator_version": GENERATOR_VERSION,
        "parameters": params.to_dict(),
        "cache_key": params.cache_key(),
        "lordosis_deg": round(model.skeleton.alignment.lordosis_deg(), 2),
        "midline_fat_mm": round(model.trunk.midline_fat_mm, 2),
        "adamkiewicz": next(n for n in ids if n.endswith(".adamkiewicz")),
    }
    report(10, 10, "done")
    return Anatomy(ct=Volume(ct, grid.affine), label_table=table, labels=Volume(labels, grid.affine),
                   landmarks=landmarks, directions=model.directions, metadata=metadata)
