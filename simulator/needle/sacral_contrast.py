"""Contrast on the sacrum: the sacroiliac arthrogram, the caudal epidurogram and the sacral venous plexus.

Three patterns the lumbar model of :mod:`simulator.needle.contrast` does not show, built on its fill
(the geodesic fill order, the tapered fill, the confined diffusion) and read as its pattern names, so the
trainee names them as a physician does (intra-articular, epidural, vascular):

=======================  ==========================================  ============================================
look                     tip in                                      spread
=======================  ==========================================  ============================================
sacroiliac arthrogram    ``sacroiliac_joint.*``                      the inferior recess (a thin curved line
(``intra_articular``)                                                under the joint) first, then cranially along
                                                                     the joint's margin (its outline, the faces
                                                                     in contact holding little); beyond what the
                                                                     joint holds the common extra-articular
                                                                     spread into the tissue around it
caudal epidurogram       ``epidural_space`` in the sacral canal,     up the canal and out along every sacral root
(``epidural``)           below the dural sac's end                   through its foramina on both sides: the
                                                                     "Christmas tree"
sacral venous plexus     the same, against the canal's front wall    thin paired channels on the canal's front
(``venous``)             (within :data:`PLEXUS_MM` of the bone in    wall and out along the foramina to the
                         front of the tip, where the plexus lies)    lateral sacral veins; washes out in seconds
=======================  ==========================================  ============================================

Sources: the sacroiliac joint holds 0.6-2.5 mL (Kennedy et al. review; Tzu Chi Med J 2019, PMC6905244) and
extra-articular spread is common (Fortin et al., AJNR 1999;20:1429: extravasation in 61% of arthrograms,
posteriorly, at the superior recess toward the ala and ventrally toward the lumbosacral plexus).
The caudal epidurogram fills the sacral canal and outlines the sacral roots (the "Christmas tree");
intravascular uptake is the caudal approach's main risk, 3.1% (clinical.md §3 [S48]), the valveless sacral
venous plexus lying on the canal's front wall. Numbers without a source are [ED].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from anatomy_models.structures import in_group
from anatomy_models.tissues import BONE_TISSUES, CONTRAST_IODINE_MG_PER_ML
from anatomy_models.volume import Volume
from simulator.needle.contrast import Compartment, ContrastSpread, SpreadModel, lopsided
from simulator.needle.contrast_fill import (OFFSETS, SPILL_FILL_FRACTION, SPILL_STEP_COST, SPILL_TISSUES, crop_world,
                                            fill_order, layer_height, same_kind_neighbours, start_voxel, tissue_texture)
from simulator.needle.trace import Tracer

# The sacroiliac arthrogram (Fortin et al., AJNR 1999;20:1429; Kennedy et al., Tzu Chi Med J 2019): contrast
# first outlines the joint's inferior recess as a thin curved line, then runs cranially along the joint; the
# capsule's extravasation (posteriorly, at the superior recess, ventrally) is a later variation, beyond what
# the joint holds. The joint's cleft is a film between cartilage whose faces lie in contact: it holds little
# in the middle of its faces (SI_FACE_FILL_FRACTION) and most along its margin (SI_RIM_FILL_FRACTION within
# SI_RIM_MM of the cleft's edge, in the joint's plane), where the synovium's folds distend; along the margin
# the injectate runs SI_RIM_STEP_COST per mm against SI_FACE_STEP_COST across the faces, so it outlines the
# joint rather than flooding its faces. The inferior recess is a thin pouch along the joint's lower margin
# (SI_CAPSULE_MM of soft tissue around the margin's lowest SI_RECESS_POLE_MM, holding SI_RECESS_FILL_FRACTION)
# that fills first (_SI_RECESS_STEP_COST): a thin curved line under the joint. Capacity in all: ~1.2 mL at
# the product's grids, within the 0.6-2.5 mL measured [ED].
SI_FACE_FILL_FRACTION = 0.06
SI_RIM_FILL_FRACTION = 1.0
SI_RIM_MM = 5.0
SI_RIM_STEP_COST = 0.5
SI_FACE_STEP_COST = 4.0
SI_CAPSULE_MM = 1.5
SI_RECESS_POLE_MM = 4.0
SI_RECESS_FILL_FRACTION = 0.5
SI_CAPSULE_ML = 1.2
_SI_RECESS_STEP_COST = 0.3
# The joint's margin is no ruled band: the synovium's folds and the cartilage's wear let the outlining contrast
# reach further into the faces in places and leave gaps in others. Drawn a fixed SI_RIM_MM from the label's edge
# it traced the label's straight sides, "a kite of straight segments" (issue 16). The band's inner border moves by
# a seeded field of SI_RIM_MEANDER_MM (sd) with correlation lengths SI_MEANDER_CORRELATION_MM [ED].
SI_RIM_MEANDER_MM = 1.5
SI_MEANDER_CORRELATION_MM = (5.0, 5.0, 5.0)
_SI_MEANDER_STREAM = 7
# Soft tissue beside the joint takes the extra-articular part (Fortin 1999) [ED].
SI_SPILL_FILL_FRACTION = 0.3
# The caudal epidurogram: the sacral canal's fat holds 0.8 of its volume; up the canal cranio-caudal steps
# cost 0.6 of a transverse one, and along a root's sleeve 0.4: the roots light up out of the foramina as the
# column rises (the Christmas tree) [ED].
CAUDAL_FILL_FRACTION = 0.45
_CAUDAL_SLEEVE_STEP_COST = 0.4
CAUDAL_ROOT_SLEEVE_MM = 2.5
# In the canal the injectate runs along the roots, which it outlines as it climbs (the "Christmas tree": the sacral
# roots as branches off the column, out of their foramina), rather than filling the canal's fat to its bony walls:
# the fat farther than CAUDAL_ROOT_SLEEVE_MM from a root holds CANAL_FAT_SHARE of the canal's share and a step
# through it costs _CANAL_FAT_STEP_COST times more. Filled evenly, the label's box-shaped canal was one dark oval on
# AP, the roots lost in it, the blind reader's "same black blob" (issue 16) [ED].
CANAL_FAT_SHARE = 0.3
_CANAL_FAT_STEP_COST = 2.0
# The sacral venous plexus lies against the canal's front wall: a tip within this distance (mm) of the bone in
# front of it is in the plexus [ED].
PLEXUS_MM = 1.0
# Its channels: paired, this far (mm) either side of the midline, one voxel across, and along each sacral
# root out of the canal (the veins run with the roots to the lateral sacral veins) [ED].
PLEXUS_CHANNEL_X_MM = 3.5
PLEXUS_RUN_MM = 40.0

MODELS: dict[str, SpreadModel] = {
    # Holds SI_CAPSULE_ML, then spills beside the joint; persists (an arthrogram).
    # Graded from the tip (tapering), its margin irregular with the synovium's folds (a seeded texture).
    "sacroiliac_arthrogram": SpreadModel(SI_RIM_FILL_FRACTION, half_extent_mm=(40.0, 40.0, 45.0),
                                         capsule_ml=SI_CAPSULE_ML, texture_mm=(1.5, 1.5, 1.5), texture_cost_gain=0.3,
                                         texture_capacity_gain=0.4, smoothing_mm=0.6, taper=True),
    # Spreads up the canal over tens of seconds like any epidurogram (clinical.md §2.7), tapering. Not a mirror
    # image: 5 mL from a needle turned to one side covered 2.7 times the area on that side as on the other (41,369
    # against 15,165 pixels), 13.6% of patients more on the other side, and the roots filled unequally (L5 18%, S1
    # 36% on the needle's side; Lee et al., Skeletal Radiol 2012;41:1613): from the midline one side's steps cost
    # e^(+-0.5) typically (log sd 1.0, e^1 = 2.7, the ratio measured), each root's sleeve e^(+-0.6) [ED].
    "caudal_epidurogram": SpreadModel(CAUDAL_FILL_FRACTION, spread_gain=0.8, spread_time_s=30.0,
                                      cranio_caudal_cost=0.35, half_extent_mm=(45.0, 45.0, 90.0),
                                      texture_mm=(2.0, 2.0, 2.0), texture_cost_gain=0.25, texture_capacity_gain=0.4,
                                      smoothing_mm=1.0, taper=True, side_bias=0.5, root_bias=0.4),
    # Washes out within seconds (§2.7), as the lumbar venous pattern.
    "sacral_venous": SpreadModel(1.0, half_extent_mm=(40.0, 40.0, 50.0), washout_time_s=2.0, blood_fraction=0.5,
                                 spills=False),
}
APPEARANCE = {
    "sacroiliac_arthrogram": "intra-articular (sacroiliac arthrogram): the inferior recess as a thin curved line, "
                             "then the joint outlined as it fills cranially; extra-articular spread beside it "
                             "beyond ~1 mL",
    "caudal_epidurogram": "epidural (caudal epidurogram): up the sacral canal and out along the sacral roots on both "
                          "sides, a Christmas tree; persists",
    "sacral_venous": "intravascular (sacral venous plexus): thin channels on the canal's front wall and out of the "
                     "foramina, washes out within seconds",
}
# Which pattern of simulator.needle.contrast each look is read as.
PATTERN_OF = {"sacroiliac_arthrogram": "intra_articular", "caudal_epidurogram": "epidural", "sacral_venous": "venous"}
PLEXUS = "sacral_venous_plexus"


@dataclass(eq=False)
class SacralSpread(ContrastSpread):
    """A :class:`~simulator.needle.contrast.ContrastSpread` whose spread follows one of :data:`MODELS`."""

    look: str = "caudal_epidurogram"

    @property
    def model(self) -> SpreadModel:
        return MODELS[self.look]

    @property
    def appearance(self) -> str:
        return APPEARANCE[self.look]


def sacral_look(tracer: Tracer, tip: np.ndarray) -> str | None:
    """Which look of :data:`MODELS` contrast injected at ``tip`` takes (None: not a sacral compartment).

    The sacral canal is the epidural space below the dural sac's end; there, a tip within :data:`PLEXUS_MM` of
    the bone in front of it (across the canal, perpendicular to the body's long axis) is in the plexus.
    """
    tip = np.asarray(tip, dtype=np.float64)
    name = tracer.names[int(tracer.codes_at(tip[None])[0])]
    if in_group(name, "sacroiliac_joint"):
        return "sacroiliac_arthrogram"
    if not in_group(name, "epidural_space") or not _in_sacral_canal(tracer, tip):
        return None
    bone = tracer.trace(tip, np.array([0.0, -1.0, 0.0]), PLEXUS_MM + 2.0).first_bone()
    return "sacral_venous" if bone is not None and bone.depth_in_mm <= PLEXUS_MM else "caudal_epidurogram"


def _in_sacral_canal(tracer: Tracer, tip: np.ndarray) -> bool:
    """Whether ``tip`` lies below the dural sac's end in a patient with a sacrum (in the sacral canal)."""
    end = dural_sac_end(tracer)
    return end is not None and bool(tip[2] < end[2]) and tracer.codes_in_group("S1").size > 0


def dural_sac_end(tracer: Tracer) -> np.ndarray | None:
    """The caudal tip of the dural sac (its lowest labelled voxel), LPS mm; None without a labelled sac.
    Kept on the anatomy."""
    return tracer.anatomy.derived(("sacral_contrast.dural_sac_end",), lambda: _lowest_voxel(tracer, "dural_sac"))


def _lowest_voxel(tracer: Tracer, group: str) -> np.ndarray | None:
    codes = tracer.codes_in_group(group)
    ijk = np.argwhere(np.isin(tracer.codes, codes)) if codes.size else np.zeros((0, 3))
    if len(ijk) == 0:
        return None
    points = tracer.volume.voxel_to_world(ijk)
    return points[int(np.argmin(points[:, 2]))]


def sacral_compartment(tracer: Tracer, tip: np.ndarray) -> Compartment | None:
    """The compartment (read as its :mod:`~simulator.needle.contrast` pattern) of a sacral tip, else None."""
    look = sacral_look(tracer, tip)
    if look is None:
        return None
    name = tracer.names[int(tracer.codes_at(np.asarray(tip, dtype=np.float64)[None])[0])]
    codes = tracer.codes_in_group(name if look == "sacroiliac_arthrogram" else "epidural_space")
    return Compartment(PATTERN_OF[look], PLEXUS if look == "sacral_venous" else name, codes)


def inject_sacral(tracer: Tracer, tip: Sequence[float] | np.ndarray, volume_ml: float,
                  iodine_mg_per_ml: float = CONTRAST_IODINE_MG_PER_ML,
                  seed: int | Sequence[int] = 0) -> SacralSpread | None:
    """Contrast injected at a sacral tip (:func:`sacral_look`), or None where the lumbar model applies.

    Parameters and result as :func:`simulator.needle.contrast.inject`.
    """
    tip = np.asarray(tip, dtype=np.float64)
    look = sacral_look(tracer, tip)
    if look is None:
        return None
    compartment = sacral_compartment(tracer, tip)
    model = MODELS[look]
    grid = tracer.volume.crop(tip - model.half_extent_mm, tip + model.half_extent_mm)
    codes = grid.array
    inside = np.isin(codes, compartment.codes)
    tissues = np.array(tracer.tissues)
    soft = np.isin(codes, [c for c, t in enumerate(tissues) if t in SPILL_TISSUES])
    recess = sleeve = canal_fat = np.zeros_like(inside)
    spill = np.zeros_like(inside)
    rim = np.zeros(inside.shape)
    if look == "sacroiliac_arthrogram":
        entropy = [int(seed)] if np.ndim(seed) == 0 else [int(v) for v in seed]
        meander_mm = SI_RIM_MEANDER_MM * tissue_texture(grid, SI_MEANDER_CORRELATION_MM, [*entropy, _SI_MEANDER_STREAM])
        rim = np.clip(1.0 - (_in_plane_edge_mm(inside, grid) + meander_mm) / SI_RIM_MM, 0.0, 1.0)
        recess = _inferior_pole(inside & (rim > 0), grid, SI_CAPSULE_MM, SI_RECESS_POLE_MM) & soft & ~inside
        joint = inside.copy()
        inside |= recess
        spill = soft & ~inside & ~np.isin(codes, tracer.root_codes())
    elif look == "caudal_epidurogram":
        near_roots = _near(np.isin(codes, tracer.root_codes()), grid, CAUDAL_ROOT_SLEEVE_MM)
        sleeve = near_roots & soft & ~inside & ~np.isin(codes, tracer.codes_in_group("dural_sac"))
        canal_fat = inside & ~near_roots
        inside |= sleeve
    else:
        inside = _plexus_channels(tracer, codes, grid, tip, inside)
    step_cost = np.where(inside, np.select([recess, sleeve], [_SI_RECESS_STEP_COST, _CAUDAL_SLEEVE_STEP_COST], 1.0),
                         np.where(spill, SPILL_STEP_COST, np.inf))
    voxel_ml = float(abs(np.linalg.det(grid.affine[:3, :3]))) / 1000.0
    fill = np.select([recess, sleeve], [SI_RECESS_FILL_FRACTION, CAUDAL_FILL_FRACTION], model.fill_fraction)
    if look == "sacroiliac_arthrogram":
        step_cost = np.where(joint, SI_FACE_STEP_COST + (SI_RIM_STEP_COST - SI_FACE_STEP_COST) * rim, step_cost)
        fill = np.where(joint, SI_FACE_FILL_FRACTION + (SI_RIM_FILL_FRACTION - SI_FACE_FILL_FRACTION) * rim, fill)
    spill_fill = SI_SPILL_FILL_FRACTION if look == "sacroiliac_arthrogram" else SPILL_FILL_FRACTION
    capacity = np.where(inside, fill, spill_fill) * voxel_ml
    capacity = np.where(canal_fat, CANAL_FAT_SHARE * capacity, capacity)
    step_cost = np.where(canal_fat, _CANAL_FAT_STEP_COST * step_cost, step_cost)
    if look == "caudal_epidurogram":
        # Lopsided, its roots outlined unequally, as the lumbar epidurogram: the patient's left is left of the
        # canal's middle (the epidural space's mean x in the crop).
        x = crop_world(grid)[..., 0]
        left = x > x[inside & ~sleeve].mean()
        step_cost = lopsided(step_cost, tracer, codes, grid, model, inside & ~sleeve, sleeve, left, seed)
    if model.texture_mm is not None:
        texture = tissue_texture(grid, model.texture_mm, seed)
        step_cost = np.where(inside, step_cost * np.exp(model.texture_cost_gain * texture), step_cost)
        gain = np.clip(1.0 + model.texture_capacity_gain * texture, 0.2, 2.0)
        capacity = np.where(inside, capacity * gain, capacity)
    start = start_voxel(grid, tip, inside)
    if start is None:
        start = _nearest(grid, tip, inside)
    step_vectors = OFFSETS @ grid.affine[:3, :3].T
    lengths = np.linalg.norm(step_vectors * np.array([1.0, 1.0, model.cranio_caudal_cost]), axis=1)
    if model.washout_time_s is not None:
        needed = volume_ml / model.blood_fraction
    else:
        needed = volume_ml * model.spread_factor(np.inf) * (3.0 if model.taper else 1.0)
    limit = np.inf if model.capsule_ml is None else model.capsule_ml * model.spread_factor(np.inf)
    order, cost = fill_order(np.ascontiguousarray(step_cost), start, OFFSETS, lengths, capacity.ravel(),
                              inside.ravel(), limit, needed)
    ijk = np.stack(np.unravel_index(order, grid.shape), axis=1)
    in_compartment = inside.ravel()[order]
    neighbours = (same_kind_neighbours(order, in_compartment, grid.shape) if model.smoothing_mm > 0
                  else np.zeros((0, 2), np.int64))
    tissue = tracer.tissues[int(tracer.codes_at(tip[None])[0])]
    return SacralSpread(
        pattern=compartment.pattern, structure=compartment.structure, tissue=tissue, volume_ml=float(volume_ml),
        iodine_mg_per_ml=float(iodine_mg_per_ml),
        ruptured=model.capsule_ml is not None and volume_ml > model.capsule_ml,
        grid=grid.with_array(np.zeros(grid.shape, np.uint8)), order=order, cost_mm=cost,
        height_mm=(layer_height(grid, inside, tip)[tuple(ijk.T)] if model.gravity_gain else np.zeros(order.size)),
        capacity_ml=capacity.ravel()[order], in_compartment=in_compartment, neighbours=neighbours, look=look)


def _near(mask: np.ndarray, grid: Volume, distance_mm: float) -> np.ndarray:
    """Voxels within ``distance_mm`` of ``mask`` (half a voxel's slack)."""
    if not mask.any():
        return np.zeros(mask.shape, bool)
    slack = 0.5 * float(np.min(grid.spacing))
    return ndimage.distance_transform_edt(~mask, sampling=grid.spacing) <= distance_mm + slack


def _inferior_pole(joint: np.ndarray, grid: Volume, capsule_mm: float, pole_mm: float) -> np.ndarray:
    """The capsule's inferior recess: within ``capsule_mm`` of the joint, within ``pole_mm`` of its lower end."""
    if not joint.any():
        return np.zeros(joint.shape, bool)
    z = grid.voxel_to_world(np.argwhere(np.ones(joint.shape, bool)))[:, 2].reshape(joint.shape)
    return _near(joint, grid, capsule_mm) & (z <= z[joint].min() + pole_mm)


def _in_plane_edge_mm(joint: np.ndarray, grid: Volume) -> np.ndarray:
    """For each voxel of a thin joint (a sheet), its distance (mm) within the sheet's plane to the sheet's edge:
    the joint seen along the crop axis it is thinnest along (its footprint), and the distance inside that
    footprint to its outline. Zero off the joint's footprint.

    Examples
    --------
    >>> sheet = np.zeros((3, 9, 9), bool); sheet[1, 1:8, 1:8] = True
    >>> edge = _in_plane_edge_mm(sheet, Volume(np.zeros((3, 9, 9)), np.eye(4)))
    >>> float(edge[1, 4, 4]), float(edge[1, 1, 4])
    (4.0, 1.0)
    """
    if not joint.any():
        return np.zeros(joint.shape)
    thin_axis = int(np.argmin([np.ptp(np.nonzero(joint)[a]) * grid.spacing[a] for a in range(3)]))
    footprint = joint.any(axis=thin_axis)
    spacing = [grid.spacing[a] for a in range(3) if a != thin_axis]
    edge = ndimage.distance_transform_edt(footprint, sampling=spacing)
    return np.broadcast_to(np.expand_dims(edge, thin_axis), joint.shape)


def _plexus_channels(tracer: Tracer, codes: np.ndarray, grid: Volume, tip: np.ndarray,
                     epidural: np.ndarray) -> np.ndarray:
    """The venous plexus on the crop: epidural voxels touching the canal's front wall, near two paramedian
    lines :data:`PLEXUS_CHANNEL_X_MM` from the tip's x and within :data:`PLEXUS_RUN_MM` of it in z; and the
    epidural voxels around each root in the foramina (the veins leaving with the roots)."""
    bone = np.isin(codes, [c for c, t in enumerate(tracer.tissues) if t in BONE_TISSUES])
    xyz = grid.voxel_to_world(np.argwhere(np.ones(codes.shape, bool))).reshape(codes.shape + (3,))
    # Bone in front: the neighbour one voxel toward -y (the axial grids spinesim builds run j along y).
    front = np.zeros_like(bone)
    if grid.affine[1, 1] > 0:
        front[:, 1:, :] = bone[:, :-1, :]
    else:
        front[:, :-1, :] = bone[:, 1:, :]
    half = 0.75 * float(np.min(grid.spacing))
    across = xyz[..., 0] - tip[0]
    paired = np.minimum(np.abs(across - PLEXUS_CHANNEL_X_MM), np.abs(across + PLEXUS_CHANNEL_X_MM))
    run = np.abs(xyz[..., 2] - tip[2]) <= PLEXUS_RUN_MM
    # A transverse bar at the tip's height joins the tip to both channels (the plexus's rungs).
    bar = (np.abs(xyz[..., 2] - tip[2]) <= half) & (np.abs(across) <= PLEXUS_CHANNEL_X_MM + half)
    wall = epidural & front & (((paired <= half) & run) | bar)
    roots = _near(np.isin(codes, tracer.root_codes()), grid, 1.0)
    foraminal = epidural & roots & run & (np.abs(across) > PLEXUS_CHANNEL_X_MM)
    channels = wall | foraminal
    # The tip sits in front of the bar's voxels or on them: the voxels between it and the wall join too.
    near_tip = np.linalg.norm(xyz - tip, axis=-1) <= 1.5 * float(np.max(grid.spacing))
    channels |= near_tip & epidural
    # The tip's own voxel joins the channels it touches.
    centre = tuple(np.clip(np.rint(grid.world_to_voxel(tip)).astype(int), 0, np.array(codes.shape) - 1))
    channels[centre] = True
    return channels & ~bone


def _nearest(grid: Volume, tip: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The voxel of ``mask`` nearest ``tip`` (the tip's own voxel when the mask is empty)."""
    points = np.argwhere(mask)
    if len(points) == 0:
        return np.clip(np.rint(grid.world_to_voxel(tip)).astype(int), 0, np.array(mask.shape) - 1)
    return points[int(np.argmin(np.linalg.norm(grid.voxel_to_world(points) - tip, axis=1)))]
