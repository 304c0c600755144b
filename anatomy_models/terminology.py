"""Standard codes for spinesim's structures, as DICOM Segmentations and 3D Slicer segments carry them.

Each structure (``anatomy_models.structures``) gets a segmented property category, a type, an optional
laterality modifier and, for a part of a vertebra, the vertebra as its anatomic region: SNOMED CT codes
from the DICOM standard's content mapping resource (PS3.16: the context groups CID 7150 Segmentation
Property Categories, CID 7151 Segmentation Property Types, CID 7604 Intervertebral Discs and CID 2
Anatomic Modifiers), read from pydicom's table of them (``pydicom.sr.codedict``, MIT). The same codes as
TotalSegmentator's SNOMED mapping (wasserth/TotalSegmentator, resources/totalsegmentator_snomed_mapping.csv,
Apache-2.0) where both name a structure, e.g. L4 vertebra 11994002.

A structure the standard has no code for (the psoas, the ligamentum flavum, a nerve root) takes the
nearest general one (skeletal muscle, ligament, nerve) with its side: its segment's label keeps the full
name. A name spinesim does not know (an imported map's ``label_99``) is a body tissue structure.

Examples
--------
>>> codes = segment_codes("L4.pedicle.left")
>>> codes.type.meaning, codes.modifier.meaning, codes.region.meaning
('Pedicle of vertebra', 'Left', 'L4 vertebra')
>>> segment_codes("L4-L5.disc.nucleus").type.meaning, segment_codes("label_99").type.meaning
('L4/L5 disc', 'Body tissue structure (body structure)')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

SCT = codes.SCT
ANATOMICAL_STRUCTURE = SCT.AnatomicalStructure
TISSUE = SCT.Tissue
SIDES = {"left": SCT.Left, "right": SCT.Right}

# Parts of a vertebra (the generator's and the imported CT's part labels) and their types.
_VERTEBRA_PARTS = {
    "pedicle": SCT.PedicleOfVertebra, "lamina": SCT.LaminaOfVertebra, "spinous_process": SCT.SpinousProcessOfVertebra,
    "transverse_process": SCT.TransverseProcessOrVertebra, "SAP": SCT.SuperiorArticularProcessOfVertebra,
    "IAP": SCT.InferiorArticularProcessOfVertebra,
}
# Structures named by their first word (and side, if they have one).
_BY_FIRST_WORD = {
    "coccyx": (ANATOMICAL_STRUCTURE, SCT.Coccyx), "ilium": (ANATOMICAL_STRUCTURE, SCT.Ilium),
    "sacroiliac_joint": (ANATOMICAL_STRUCTURE, SCT.SacroiliacJoint), "facet_joint": (ANATOMICAL_STRUCTURE, SCT.Joint),
    "ligamentum_flavum": (ANATOMICAL_STRUCTURE, SCT.Ligament),
    "interspinous_ligament": (ANATOMICAL_STRUCTURE, SCT.Ligament),
    "supraspinous_ligament": (ANATOMICAL_STRUCTURE, SCT.Ligament), "epidural_space": (TISSUE, SCT.AdiposeTissue),
    "spinal_cord": (ANATOMICAL_STRUCTURE, SCT.SpinalCord), "cauda_equina": (ANATOMICAL_STRUCTURE, SCT.Nerve),
    "nerve_root": (ANATOMICAL_STRUCTURE, SCT.Nerve), "dorsal_root_ganglion": (ANATOMICAL_STRUCTURE, SCT.Nerve),
    "radicular_artery": (ANATOMICAL_STRUCTURE, SCT.Artery), "aorta": (ANATOMICAL_STRUCTURE, SCT.Aorta),
    "inferior_vena_cava": (ANATOMICAL_STRUCTURE, SCT.InferiorVenaCava),
    "common_iliac_artery": (ANATOMICAL_STRUCTURE, SCT.CommonIliacArtery),
    "common_iliac_vein": (ANATOMICAL_STRUCTURE, SCT.CommonIliacVein), "fat": (TISSUE, SCT.SubcutaneousTissue),
    "skin": (ANATOMICAL_STRUCTURE, SCT.Skin), "soft_tissue": (TISSUE, SCT.SoftTissue),
    "bowel_gas": (SCT.Substance, SCT.Gas), "colon_content": (SCT.Substance, SCT.Feces),
    "kidney": (ANATOMICAL_STRUCTURE, SCT.Kidney), "retroperitoneal_fat": (TISSUE, SCT.AdiposeTissue),
    "rib": (ANATOMICAL_STRUCTURE, SCT.Rib),
}
_DURAL_SAC = {"dura": (ANATOMICAL_STRUCTURE, SCT.DuraMater), "csf": (SCT.Substance, SCT.CerebrospinalFluid)}
_MUSCLES = {"erector_spinae": SCT.ErectorSpinaeMuscle, "abdominal_wall": SCT.AbdominalWallMuscle}
_SACRUM_PARTS = ("ala", "dorsal_wall", "cornu", "body", "pedicle", "SAP")
_LEVEL = re.compile(r"^(T1[0-2]|T[1-9]|L[1-6]|S[1-5])$")
_DISC = re.compile(r"^(T1[0-2]|L[1-5])-(L[1-6]|S1)\.disc")


@dataclass(frozen=True)
class SegmentCodes:
    """A segment's terminology: category, type, laterality modifier and anatomic region (or None)."""

    category: Code
    type: Code
    modifier: Code | None = None
    region: Code | None = None


def _vertebra(level: str) -> Code | None:
    """The code of vertebra ``level`` (``S1`` is the sacrum: S1-S5 are fused), None past the standard's."""
    return SCT.Sacrum if level.startswith("S") else getattr(SCT, f"{level}Vertebra", None)


def segment_codes(name: str) -> SegmentCodes:
    """The standard codes of structure ``name`` (see the module docstring)."""
    words = name.split(".")
    side = SIDES.get(words[-1])
    level = words[0] if _LEVEL.match(words[0]) else None
    if level and _vertebra(level) is not None:
        vertebra = _vertebra(level)
        part = words[1] if len(words) > 1 else None
        if level.startswith("S") and part in _SACRUM_PARTS:
            return SegmentCodes(ANATOMICAL_STRUCTURE, SCT.Sacrum, side)
        if part in _VERTEBRA_PARTS:
            return SegmentCodes(ANATOMICAL_STRUCTURE, _VERTEBRA_PARTS[part], side, vertebra)
        return SegmentCodes(ANATOMICAL_STRUCTURE, vertebra, side, vertebra if part else None)
    disc = _DISC.match(name)
    if disc and getattr(SCT, f"{disc[1]}{disc[2]}Disc", None) is not None:
        return SegmentCodes(ANATOMICAL_STRUCTURE, getattr(SCT, f"{disc[1]}{disc[2]}Disc"))
    if words[0] == "dural_sac" and len(words) > 1 and words[1] in _DURAL_SAC:
        return SegmentCodes(*_DURAL_SAC[words[1]])
    if words[0] == "muscle" and len(words) > 1:
        return SegmentCodes(ANATOMICAL_STRUCTURE, _MUSCLES.get(words[1], SCT.SkeletalMuscle), side)
    if words[0] in _BY_FIRST_WORD:
        return SegmentCodes(*_BY_FIRST_WORD[words[0]], side)
    return SegmentCodes(TISSUE, SCT.BodyTissueStructure, side)
