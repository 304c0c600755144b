"""Areal bone mineral density of a CT's lumbar vertebrae, measured the way a DXA scanner does (issue 15).

A fluoroscope's AP view and a DXA scan of the lumbar spine see the same thing: the bone mineral along AP
rays through the vertebra, over the soft tissue beside it. DXA reports it as areal bone mineral density
(aBMD, g/cm^2 of hydroxyapatite): the bone mineral content (BMC, g) in a box round each vertebra (as wide
as its body, bounded by the middles of the discs above and below) over the box's projected bone area. So
a CT whose bone is as dense as real bone gives the published aBMD of young adults, and one whose bodies
vanish on the AP does not.

Mineral from CT numbers: a voxel holding ``c`` mg/cm^3 of hydroxyapatite is ``c`` times
:func:`hu_per_mg_hydroxyapatite` HU above the tissue the mineral displaces: NIST mass attenuation (xraydb) of
hydroxyapatite Ca10(PO4)6(OH)2 (3.16 g/cm^3) displacing water, at the CT's effective energy
(``tissues.CT_EFFECTIVE_KEV``, 70 keV: 1.31 HU per mg/cm^3, the slope a QCT phantom calibrates on a scanner).
Inside a bone the mineral displaces marrow (:data:`MARROW_HU`); in the partial-volume voxels just outside its
labels, the soft tissue round it (``ct_synthesis.PERIOSTEAL_HU``, 40 HU). Counting the mineral over soft tissue
inside the bone too reads 9% less (0.993 against 1.091 g/cm^2 on the built-in patient, L1-L4).

Published values: L1-L4 aBMD of young adults 1.057 +- 0.110 g/cm^2 (men 21-30 years) and 1.064 +- 0.106
(women) in NHANES 2005-2008 (Looker et al., "Lumbar spine and proximal femur bone mineral density, bone mineral
content, and bone area: United States, 2005-2008", Vital Health Stat 11(251), 2012; the values as tabulated by
Varatharajan et al., Front. Endocrinol. 17:1748490, 2026, Table 3); per level, rising from L1 to L3 and L4 by
~8% (L1 0.999, L2 1.073, L3 1.081, L4 1.071 g/cm^2 in 766 adult men, Biology Direct 2025,
doi:10.1186/s13062-025-00627-w, Table 1; their ages were not checked: the per-level values are used for the
levels' pattern within a 12% tolerance). The posterior elements hold 51.4 +- 4.2% of a vertebra's mineral (L3 by
QCT, 574 subjects aged 6-25 years, constant after 17; Lee et al., J Bone Miner Res 24:1398, 2009).

``python -m anatomy_models.spine.bone_mineral [NAME]`` prints the table for an anatomy (the built-in
``default`` if none).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.spine.ct_synthesis import PERIOSTEAL_HU
from anatomy_models.tissues import CT_EFFECTIVE_KEV

HYDROXYAPATITE = "Ca10P6O26H2"
# Crystal density of hydroxyapatite, g/cm^3 (Elliott, "Structure and chemistry of the apatites and other calcium
# orthophosphates", 1994).
HYDROXYAPATITE_G_PER_CM3 = 3.16
SOFT_TISSUE_HU = PERIOSTEAL_HU
# What the mineral displaces inside a bone: marrow, red (haematopoietic, ~40 HU like soft tissue) with ~30% fat
# (-100 HU) in a young adult's lumbar body [ED]: 0.7 * 40 + 0.3 * -100, about water's 0 HU.
MARROW_HU = 0.0
# Voxels this far (mm) outside a bone's labels still hold its partial volume and the reconstruction blur's
# spread (half a voxel and ~0.8 mm FWHM, ct_synthesis).
PARTIAL_VOLUME_REACH_MM = 2.0
DXA_LEVELS = ("L1", "L2", "L3", "L4")
SPINE_ORDER = ("T12", "L1", "L2", "L3", "L4", "L5")  # superior to inferior: each level's neighbours
BODY_SEARCH_MM = 45.0  # a lumbar body reaches ~25 mm from its centre (width 40-50, depth 38-41 mm: clinical.md §4.1)
# The published values this module's table compares with (see the module docstring for the sources).
YOUNG_ADULT_L1_L4_G_PER_CM2 = (1.06, 0.11)                  # NHANES 2005-2008, 21-30 years, mean and SD
YOUNG_ADULT_BY_LEVEL_G_PER_CM2 = {"L1": 0.999, "L2": 1.073, "L3": 1.081, "L4": 1.071}
POSTERIOR_SHARE = (0.514, 0.042)                            # Lee et al. 2009, mean and SD


def hu_per_mg_hydroxyapatite(kev: float = CT_EFFECTIVE_KEV) -> float:
    """CT-number rise (HU) per mg/cm^3 of hydroxyapatite displacing water, at ``kev`` (NIST via xraydb).

    >>> round(hu_per_mg_hydroxyapatite(70.0), 2)
    1.31
    """
    import xraydb  # imported here: it opens a database

    mineral = xraydb.material_mu(HYDROXYAPATITE, kev * 1e3, density=1.0)
    water = xraydb.material_mu("H2O", kev * 1e3, density=1.0)
    return float((mineral - water / HYDROXYAPATITE_G_PER_CM3) / water)


@dataclass(frozen=True)
class ArealDensity:
    """One vertebra's DXA numbers: the box's bone area (cm^2) and mineral (g), and the body's own."""

    level: str
    area_cm2: float
    bmc_g: float
    body_area_cm2: float
    body_bmc_g: float
    posterior_share: float

    @property
    def bmd(self) -> float:
        """Areal BMD of the vertebra in its DXA box, g/cm^2."""
        return self.bmc_g / self.area_cm2

    @property
    def body_bmd(self) -> float:
        """Areal BMD of the body alone (its own mineral over its own projected area), g/cm^2."""
        return self.body_bmc_g / self.body_area_cm2


def _axis_aligned_spacing(anatomy: Anatomy) -> np.ndarray:
    affine = np.asarray(anatomy.ct.affine, dtype=float)
    linear = affine[:3, :3]
    if not np.allclose(linear, np.diag(np.diag(linear))) or np.any(np.diag(linear) <= 0):
        raise SpinesimError(f"{anatomy.name}: areal density needs a CT on an LPS-aligned grid",
                            hint=f"its affine's axes are {linear.tolist()}; resample it onto LPS axes")
    return np.diag(linear)


def _body_box(anatomy: Anatomy, name: str) -> tuple[slice, slice, slice] | None:
    """Index box of the voxels labelled ``{name}.body``, searched within :data:`BODY_SEARCH_MM` of its centre
    landmark (the landmark says where to look, the labels what is there); None without label, landmark or voxels."""
    if f"{name}.body" not in anatomy.label_table or f"{name}.body.center" not in anatomy.landmarks:
        return None
    labels = anatomy.labels.array
    centre = anatomy.ct.world_to_voxel(anatomy.landmark(f"{name}.body.center"))
    reach = BODY_SEARCH_MM / _axis_aligned_spacing(anatomy)
    search = tuple(slice(max(int(c - r), 0), max(int(c + r) + 1, 0)) for c, r in zip(centre, reach))
    found = np.nonzero(labels[search] == anatomy.label_table.by_name(f"{name}.body").id)
    if not found[0].size:
        return None
    return tuple(slice(s.start + int(f.min()), s.start + int(f.max()) + 1) for s, f in zip(search, found))


def areal_densities(anatomy: Anatomy, levels: tuple[str, ...] = DXA_LEVELS) -> list[ArealDensity]:
    """The DXA numbers of each of ``levels`` along AP rays (the grid's second axis, posterior-anterior).

    Each vertebra's box spans its body's left-right extent and, along the body axis, the middles of the
    discs above and below it (the middle between this body's end and the next body's); every bone in the
    box counts, as on a DXA scan (the vertebra above's inferior articular processes, say). Each bone
    voxel's mineral is ``(HU - MARROW_HU) / hu_per_mg_hydroxyapatite()`` (none below it); voxels within
    :data:`PARTIAL_VOLUME_REACH_MM` outside a bone's labels hold ``(HU - SOFT_TISSUE_HU)`` of it and belong
    to the nearest bone part. The posterior share is the vertebra's own mineral outside its body (Lee et al. 2009's).
    """
    if anatomy.labels is None:
        raise SpinesimError(f"{anatomy.name}: areal density needs a label map (which voxels are which vertebra)")
    spacing = _axis_aligned_spacing(anatomy)
    labels, ct = anatomy.labels.array, anatomy.ct.array
    table = anatomy.label_table
    bone_ids = [label.id for label in table if label.tissue == "cortical_bone"]
    names = {label.id: label.name for label in table}
    bodies = {name: box for name in SPINE_ORDER if (box := _body_box(anatomy, name)) is not None}
    for level in levels:
        if level not in bodies:
            raise SpinesimError(f"{anatomy.name}: no voxels labelled {level}.body near {level}.body.center",
                                hint="areal density needs each vertebra's body labelled and its centre landmark")
    ends = {name: (box[2].start, box[2].stop - 1) for name, box in bodies.items()}
    order = list(bodies)
    mg_per_hu = 1.0 / hu_per_mg_hydroxyapatite()
    reach = int(np.ceil(PARTIAL_VOLUME_REACH_MM / spacing.min()))
    results = []
    for level in levels:
        index = order.index(level)
        low, high = ends[level]
        # The grid's third axis runs inferior to superior: the vertebra above is the one before in ``order``.
        k0 = (ends[order[index + 1]][1] + low + 1) // 2 if index + 1 < len(order) else low
        k1 = (high + ends[order[index - 1]][0]) // 2 + 1 if index > 0 else high + 1
        i0, i1 = bodies[level][0].start, bodies[level][0].stop
        columns = (slice(max(i0 - reach, 0), i1 + reach), slice(None), slice(max(k0 - reach, 0), k1 + reach))
        rows = np.flatnonzero(np.isin(labels[columns], bone_ids).any(axis=(0, 2)))  # the bones' front-back extent
        box = (columns[0], slice(max(rows[0] - reach, 0), rows[-1] + reach + 1), columns[2])
        sub_labels, sub_ct = labels[box], ct[box].astype(np.float32)
        is_bone = np.isin(sub_labels, bone_ids)
        distance, nearest = ndimage.distance_transform_edt(~is_bone, sampling=spacing, return_indices=True)
        owner = sub_labels[tuple(nearest)]
        owned = distance <= PARTIAL_VOLUME_REACH_MM
        baseline = np.where(is_bone, np.float32(MARROW_HU), np.float32(SOFT_TISSUE_HU))
        mineral_g_per_cm3 = np.where(owned, np.maximum(sub_ct - baseline, 0.0) * mg_per_hu * 1e-3, 0.0)
        # g/cm^3 times the ray's step in cm: g/cm^2 per voxel; one pixel's area in cm^2.
        step_cm, pixel_cm2 = spacing[1] / 10.0, spacing[0] * spacing[2] / 100.0
        inner = (slice(i0 - box[0].start, i1 - box[0].start), slice(None), slice(k0 - box[2].start, k1 - box[2].start))
        level_ids = [i for i, name in names.items() if name.split(".")[0] == level and i in bone_ids]
        body_id = table.by_name(f"{level}.body").id
        areal = mineral_g_per_cm3[inner].sum(axis=1) * step_cm
        bone_pixels = is_bone[inner].any(axis=1)
        own = np.isin(owner, level_ids) & owned
        body_owned = (owner == body_id) & owned
        body_pixels = (sub_labels[inner] == body_id).any(axis=1)
        results.append(ArealDensity(
            level=level,
            area_cm2=float(bone_pixels.sum() * pixel_cm2),
            bmc_g=float(areal[bone_pixels].sum() * pixel_cm2),
            body_area_cm2=float(body_pixels.sum() * pixel_cm2),
            body_bmc_g=float((mineral_g_per_cm3 * body_owned)[inner].sum() * step_cm * pixel_cm2),
            posterior_share=float(1.0 - mineral_g_per_cm3[body_owned].sum() / mineral_g_per_cm3[own].sum()),
        ))
    return results


def l1_l4_bmd(rows: list[ArealDensity]) -> float:
    """The DXA report's L1-L4 aBMD: the levels' summed mineral over their summed area, g/cm^2."""
    return sum(row.bmc_g for row in rows) / sum(row.area_cm2 for row in rows)


def format_table(rows: list[ArealDensity]) -> str:
    """The published values next to the anatomy's, one line a level and the L1-L4 total."""
    lines = [f"{'level':6}{'aBMD g/cm2':>12}{'published':>11}{'body aBMD':>11}{'body BMC g':>12}{'BMC g':>8}"
             f"{'area cm2':>10}{'posterior %':>13}{'published %':>13}"]
    share, share_sd = POSTERIOR_SHARE
    for row in rows:
        published = YOUNG_ADULT_BY_LEVEL_G_PER_CM2[row.level]
        lines.append(f"{row.level:6}{row.bmd:12.3f}{published:11.3f}{row.body_bmd:11.3f}"
                     f"{row.body_bmc_g:12.2f}{row.bmc_g:8.2f}{row.area_cm2:10.1f}{100 * row.posterior_share:13.1f}"
                     f"{100 * share:9.1f}+-{100 * share_sd:.1f}")
    mean, sd = YOUNG_ADULT_L1_L4_G_PER_CM2
    lines.append(f"{'L1-L4':6}{l1_l4_bmd(rows):12.3f}{mean:11.3f} +- {sd:.2f} (NHANES 2005-2008, 21-30 years)")
    # The L1-L4 aBMD split into the bodies' mineral and the rest of the boxes', against the published total split
    # by Lee et al.'s share: which of the two is short.
    area = sum(row.area_cm2 for row in rows)
    body = sum(row.body_bmc_g for row in rows) / area
    lines.append(f"{'':6}of it bodies {body:.3f} (published {mean * (1 - share):.3f}), posterior elements "
                 f"{l1_l4_bmd(rows) - body:.3f} (published {mean * share:.3f}) g/cm2")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from anatomy_models.store import load_anatomy

    anatomy = load_anatomy(argv[0] if argv else "default")
    print(f"{anatomy.name}: hydroxyapatite {hu_per_mg_hydroxyapatite():.3f} HU per mg/cm3 at {CT_EFFECTIVE_KEV:g} keV, "
          f"soft tissue {SOFT_TISSUE_HU:g} HU")
    print(format_table(areal_densities(anatomy)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
