"""Label maps from other tools, translated into spinesim's structure names (``structures.py``).

Sources understood:

- **TotalSegmentator** (task ``total``), v1 and v2: a multilabel file (``--ml``) or a folder of
  per-class masks (``vertebrae_L4.nii.gz``, ...). Classes are matched by *name*: a multilabel file's
  own label table (the NIfTI header extension TotalSegmentator writes) wins; without one the id ->
  name table of the version (``TOTALSEGMENTATOR_V1`` / ``TOTALSEGMENTATOR_V2``) is used, chosen by the
  user (``totalsegmentator:v1|v2``) or, for plain ``totalsegmentator``, by the ids present and, with a
  CT, by which table's bone classes are the bright ones.
- **VerSe** vertebra masks (ids 1-28, ``VERSE_LEVELS``).
- **Slicer segmentations** (``.seg.nrrd``) and NIfTI files with a label table: segment names.
- **A user's label table** (YAML/JSON list of ``{id, name, tissue}``, :meth:`LabelTable.from_file`).

Names that are part of spinesim's vocabulary keep their meaning (``L4``, ``spinal_cord``); the other
classes keep their own name under a prefix (``totalseg.liver``, ``verse.C5``, ``seg.tumour``) with a
tissue class chosen from what kind of thing they are (bone, muscle, vessel, air, ...). An id that the
table does not list is kept, never refused: it becomes a structure named by its number (``label_37``)
whose tissue class the CT numbers under it decide (soft tissue without a CT), with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from anatomy_models.errors import SpinesimError
from anatomy_models.nifti import is_nifti_path, nifti_label_names, nifti_stem, read_nifti
from anatomy_models.nrrd import is_nrrd_path, is_segmentation_file, read_nrrd, read_segmentation
from anatomy_models.structures import Label, LabelTable, vocabulary_tissue
from anatomy_models.tissues import TISSUES, tissue_from_hu
from anatomy_models.volume import Volume

ProgressCallback = Callable[[float, float, str], None]

# --------------------------------------------------------------------------- TotalSegmentator
# Source: wasserth/TotalSegmentator, totalsegmentator/map_to_binary.py, class_map["total_v1"] (v1) and
# class_map["total"] (v2), read at commit 0275d3046117a9615a9876e6e4eefd5156843f1c. Ids are 1..n in
# the order listed. The rib ids 92-115 of v2 differ between v2 releases (the map at commit
# 4cb664c1507782a7e503a203cd619406fbb06abe lists them as rib_right_4, rib_right_3, rib_left_1..12,
# rib_right_1, 2, 5..12); every other class, the spine included, has the same id in both. Multilabel
# files that carry their own label table are read by name and are immune to this.
TOTALSEGMENTATOR_V1: tuple[str, ...] = (
    "spleen", "kidney_right", "kidney_left", "gallbladder", "liver", "stomach", "aorta",
    "inferior_vena_cava", "portal_vein_and_splenic_vein", "pancreas", "adrenal_gland_right",
    "adrenal_gland_left", "lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right",
    "lung_middle_lobe_right", "lung_lower_lobe_right",
    "vertebrae_L5", "vertebrae_L4", "vertebrae_L3", "vertebrae_L2", "vertebrae_L1",  # 18-22
    "vertebrae_T12", "vertebrae_T11", "vertebrae_T10", "vertebrae_T9", "vertebrae_T8", "vertebrae_T7",
    "vertebrae_T6", "vertebrae_T5", "vertebrae_T4", "vertebrae_T3", "vertebrae_T2", "vertebrae_T1",
    "vertebrae_C7", "vertebrae_C6", "vertebrae_C5", "vertebrae_C4", "vertebrae_C3", "vertebrae_C2",
    "vertebrae_C1", "esophagus", "trachea", "heart_myocardium", "heart_atrium_left",
    "heart_ventricle_left", "heart_atrium_right", "heart_ventricle_right", "pulmonary_artery", "brain",
    "iliac_artery_left", "iliac_artery_right", "iliac_vena_left", "iliac_vena_right", "small_bowel",
    "duodenum", "colon",
    *(f"rib_left_{n}" for n in range(1, 13)), *(f"rib_right_{n}" for n in range(1, 13)),  # 58-81
    "humerus_left", "humerus_right", "scapula_left", "scapula_right", "clavicula_left",
    "clavicula_right", "femur_left", "femur_right", "hip_left", "hip_right", "sacrum", "face",
    "gluteus_maximus_left", "gluteus_maximus_right", "gluteus_medius_left", "gluteus_medius_right",
    "gluteus_minimus_left", "gluteus_minimus_right", "autochthon_left", "autochthon_right",
    "iliopsoas_left", "iliopsoas_right", "urinary_bladder",  # 100-104
)
TOTALSEGMENTATOR_V2: tuple[str, ...] = (
    "spleen", "kidney_right", "kidney_left", "gallbladder", "liver", "stomach", "pancreas",
    "adrenal_gland_right", "adrenal_gland_left", "lung_upper_lobe_left", "lung_lower_lobe_left",
    "lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right", "esophagus", "trachea",
    "thyroid_gland", "small_bowel", "duodenum", "colon", "urinary_bladder", "prostate",
    "kidney_cyst_left", "kidney_cyst_right",
    "sacrum", "vertebrae_S1", "vertebrae_L5", "vertebrae_L4", "vertebrae_L3", "vertebrae_L2",  # 25-30
    "vertebrae_L1", "vertebrae_T12", "vertebrae_T11", "vertebrae_T10", "vertebrae_T9", "vertebrae_T8",
    "vertebrae_T7", "vertebrae_T6", "vertebrae_T5", "vertebrae_T4", "vertebrae_T3", "vertebrae_T2",
    "vertebrae_T1", "vertebrae_C7", "vertebrae_C6", "vertebrae_C5", "vertebrae_C4", "vertebrae_C3",
    "vertebrae_C2", "vertebrae_C1", "heart", "aorta", "pulmonary_vein", "brachiocephalic_trunk",
    "subclavian_artery_right", "subclavian_artery_left", "common_carotid_artery_right",
    "common_carotid_artery_left", "brachiocephalic_vein_left", "brachiocephalic_vein_right",
    "atrial_appendage_left", "superior_vena_cava", "inferior_vena_cava", "portal_vein_and_splenic_vein",
    "iliac_artery_left", "iliac_artery_right", "iliac_vena_left", "iliac_vena_right", "humerus_left",
    "humerus_right", "scapula_left", "scapula_right", "clavicula_left", "clavicula_right", "femur_left",
    "femur_right", "hip_left", "hip_right", "spinal_cord", "gluteus_maximus_left",
    "gluteus_maximus_right", "gluteus_medius_left", "gluteus_medius_right", "gluteus_minimus_left",
    "gluteus_minimus_right", "autochthon_left", "autochthon_right", "iliopsoas_left", "iliopsoas_right",
    "brain", "skull",  # 90-91
    *(f"rib_left_{n}" for n in range(1, 13)), *(f"rib_right_{n}" for n in range(1, 13)),  # 92-115
    "sternum", "costal_cartilages",  # 116-117
)
TOTALSEGMENTATOR_VERSIONS: dict[str, tuple[str, ...]] = {"v1": TOTALSEGMENTATOR_V1, "v2": TOTALSEGMENTATOR_V2}
TOTALSEGMENTATOR_CLASSES: frozenset[str] = frozenset(TOTALSEGMENTATOR_V1) | frozenset(TOTALSEGMENTATOR_V2)

# TotalSegmentator class -> spinesim structure. v2's "total" task has no intervertebral discs (they
# are in its separate "vertebrae_body" task, as one class for all levels). Its "sacrum" is the sacrum
# below S1 and "vertebrae_S1" the S1 segment; spinesim's S1 stands for the whole sacrum, so both map
# there. "iliopsoas" includes iliacus; its lumbar part is the psoas.
TOTALSEGMENTATOR_TO_SPINESIM: dict[str, str] = {
    **{f"vertebrae_{level}": level for level in ("T12", "L1", "L2", "L3", "L4", "L5", "S1")},
    "sacrum": "S1",
    "spinal_cord": "spinal_cord",
    "aorta": "aorta",
    "inferior_vena_cava": "inferior_vena_cava",
    "autochthon_left": "muscle.erector_spinae.left",
    "autochthon_right": "muscle.erector_spinae.right",
    "iliopsoas_left": "muscle.psoas.left",
    "iliopsoas_right": "muscle.psoas.right",
    # "tissue_types" task classes
    "subcutaneous_fat": "fat",
    "skeletal_muscle": "muscle",
}

# --------------------------------------------------------------------------- VerSe
# Source: anjany/verse README.md ("label corresponds to the vertebral label"): 1-7 C1-C7, 8-19 T1-T12,
# 20-25 L1-L6 (L6: a sixth, transitional lumbar vertebra), 26 sacrum and 27 coccyx (not labelled in
# the dataset), 28 an additional 13th thoracic vertebra T13.
VERSE_LEVELS: dict[int, str] = {
    **{n: f"C{n}" for n in range(1, 8)},
    **{n + 7: f"T{n}" for n in range(1, 13)},
    **{n + 19: f"L{n}" for n in range(1, 7)},
    26: "sacrum", 27: "coccyx", 28: "T13",
}
VERSE_TO_SPINESIM: dict[str, str] = {**{level: level for level in ("T12", "L1", "L2", "L3", "L4", "L5")}, "sacrum": "S1"}

# --------------------------------------------------------------------------- tissue by kind of class
# First match wins; applied to the lower-cased class or segment name.
_KIND_RULES: tuple[tuple[str, str], ...] = (
    (r"myocardium", "muscle"),
    (r"cartilage", "cartilage"),
    (r"disc", "disc_annulus"),
    (r"cyst|bladder|effusion|gallbladder", "water"),
    (r"subarachnoid|ventricle$|csf", "csf"),
    (r"vertebra|sacrum|coccyx|rib|skull|sternum|humerus|scapula|clavicula|femur|hip_|patella|tibia|fibula"
     r"|tarsal|carpal|phalanges|ulna|radius|hyoid|bone|spine|^[ctls]\d{1,2}$", "cortical_bone"),
    (r"arter|vein|vena|aorta|trunk|appendage|heart|atrium|sinus|vessel|blood", "blood"),
    (r"lung|trachea|bronch|larynx_air|nasal_cavity|auditory_canal|gas|^air$", "air"),
    (r"fat", "fat"),
    (r"ligament|flavum", "ligament"),
    (r"dura", "dura"),
    (r"cord", "spinal_cord"),
    (r"nerve|root|ganglion|cauda", "nerve"),
    (r"skin", "skin"),
    (r"muscle|gluteus|autochthon|psoas|masseter|temporalis|pterygoid|tongue|digastric|sternocleidomastoid"
     r"|constrictor|trapezius|platysma|levator|scalene|sterno_thyroid|thyrohyoid|prevertebral|quadriceps"
     r"|thigh|sartorius|deltoid|spinatus|subscapularis|coracobrachial|pectoralis|serratus|teres|triceps"
     r"|rectus|oblique|erector|multifidus|quadratus", "muscle"),
)


def tissue_of_kind(name: str) -> str:
    """A tissue class for a structure known only by name (``"rib_left_3"`` -> ``"cortical_bone"``).

    Examples
    --------
    >>> [tissue_of_kind(n) for n in ("vertebrae_C5", "iliac_vena_left", "lung_lower_lobe_left", "liver")]
    ['cortical_bone', 'blood', 'air', 'soft_tissue']
    """
    lower = name.lower()
    for pattern, tissue in _KIND_RULES:
        if re.search(pattern, lower):
            return tissue
    return "soft_tissue"


def _name_part(raw: str) -> str:
    """``raw`` made into one valid dotted-name part (letters, digits, underscores)."""
    part = re.sub(r"[^A-Za-z0-9_]+", "_", raw.strip()).strip("_")
    return part or "unnamed"


def known_structure(raw: str) -> tuple[str, str] | None:
    """Structure name and tissue class when ``raw`` is a vocabulary name or a TotalSegmentator class, else None.

    Examples
    --------
    >>> known_structure("vertebrae_L4"), known_structure("rib_left_3"), known_structure("DOE_JANE")
    (('L4', 'cortical_bone'), ('totalseg.rib_left_3', 'cortical_bone'), None)
    """
    tissue = vocabulary_tissue(raw)
    if tissue is not None:
        return raw, tissue
    if raw in TOTALSEGMENTATOR_TO_SPINESIM:
        name = TOTALSEGMENTATOR_TO_SPINESIM[raw]
        return name, vocabulary_tissue(name) or tissue_of_kind(name)
    if raw in TOTALSEGMENTATOR_CLASSES:
        return f"totalseg.{raw}", tissue_of_kind(raw)
    return None


def structure_for_name(raw: str, prefix: str) -> tuple[str, str]:
    """Spinesim structure name and tissue class for a structure called ``raw`` by some source's label table.

    Vocabulary names are kept, TotalSegmentator classes are translated, anything else is kept under
    ``prefix`` (``"seg"`` -> ``seg.tumour``) with a tissue chosen by :func:`tissue_of_kind`. For names
    that come from file or folder names use :func:`generic_structure` instead: those often carry a
    patient's name.

    Examples
    --------
    >>> structure_for_name("vertebrae_L4", "seg"), structure_for_name("L4-L5.disc.nucleus", "seg")
    (('L4', 'cortical_bone'), ('L4-L5.disc.nucleus', 'disc_nucleus'))
    >>> structure_for_name("rib_left_3", "seg"), structure_for_name("Segment 1", "mesh")
    (('totalseg.rib_left_3', 'cortical_bone'), ('mesh.Segment_1', 'soft_tissue'))
    """
    return known_structure(raw) or (f"{prefix}.{_name_part(raw)}", tissue_of_kind(raw))


def generic_structure(raw: str, prefix: str, number: int) -> tuple[str, str]:
    """Like :func:`structure_for_name` for a name taken from a file or folder: known names are kept, any
    other becomes ``<prefix>.part_<number>`` (its tissue still guessed from the name, which is not kept).

    Examples
    --------
    >>> generic_structure("L4", "mesh", 1), generic_structure("DOE^JANE bone", "mesh", 2)
    (('L4', 'cortical_bone'), ('mesh.part_2', 'cortical_bone'))
    """
    return known_structure(raw) or (f"{prefix}.part_{number}", tissue_of_kind(raw))


# --------------------------------------------------------------------------- relabelling
@dataclass(frozen=True)
class LabelMap:
    """A label map in spinesim's terms: ids on a grid, their label table, and what was done to them
    (``notes``) or what the user should check (``warnings``: ids the table did not know)."""

    labels: Volume
    table: LabelTable
    notes: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)


_UNKNOWN = re.compile(r"^label_(\d+)$")


def unknown_id_structure(label_id: int) -> str:
    """The structure name of a label id that no table names: ``label_<id>``.

    Examples
    --------
    >>> unknown_id_structure(37), is_unknown_id_structure("label_37"), is_unknown_id_structure("L4")
    ('label_37', True, False)
    """
    return f"label_{label_id}"


def is_unknown_id_structure(name: str) -> bool:
    """True for a structure named by number because its source did not name its id."""
    return bool(_UNKNOWN.match(name))


def _unknown_ids_warning(unknown: list[int], table_name: str) -> str:
    shown = ", ".join(map(str, unknown[:10])) + (", ..." if len(unknown) > 10 else "")
    return (f"label id(s) {shown} are not in the {table_name}: kept as structures named by number "
            f"({unknown_id_structure(unknown[0])}, ...), their tissue class read from the CT numbers (soft tissue "
            f"without a CT); to name them, give your own table with --label-format table:FILE")


def _integer_ids(volume: Volume, path: Path | None) -> np.ndarray:
    array = volume.array
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.all(np.mod(array, 1) == 0):
            raise SpinesimError("a label map must hold whole numbers; this one has fractional or NaN values", path=path,
                                hint="give the segmentation's label image, not a probability map")
        array = array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise SpinesimError(f"a label map must hold integers, got {array.dtype}", path=path)
    if array.size and array.min() < 0:
        raise SpinesimError(f"a label map cannot hold negative ids (found {int(array.min())})", path=path)
    return array


def present_ids(array: np.ndarray) -> list[int]:
    """The non-zero ids that occur in an integer array, sorted."""
    values = np.unique(array)
    return [int(v) for v in values if v != 0]


def _own_structure(name: str, tissue: str | None) -> tuple[str, str] | None:
    """``(name, tissue)`` of a segment spinesim wrote (its tissue tag names a tissue class and its name is a
    valid structure name), else None."""
    valid_name = all(_name_part(part) == part for part in re.split(r"[.\-]", name))
    return (name, tissue) if tissue in TISSUES and valid_name else None


def relabel_by_names(source: Volume, names: dict[int, str], prefix: str, *, path: Path | None = None,
                     table_name: str = "label table", tissues: dict[int, str] | None = None) -> LabelMap:
    """Translate a label map whose ids have source names into spinesim structures.

    An id whose tissue class ``tissues`` gives (the tags of a segmentation spinesim exported) keeps its
    name as it is. Several source ids may land on one structure (TotalSegmentator's sacrum and S1 both become ``S1``).
    Only ids that occur get a row. Ids that occur but are not in ``names`` are kept as ``label_<id>``
    (soft tissue until :func:`with_unknown_tissues_from_ct`), with a warning.
    """
    array = _integer_ids(source, path)
    ids = present_ids(array)
    unknown = [i for i in ids if i not in names]
    table = LabelTable()
    lookup = np.zeros(max(ids, default=0) + 1, dtype=np.uint16)
    for source_id in ids:
        if source_id in names:
            own = _own_structure(names[source_id], (tissues or {}).get(source_id))
            name, tissue = own or structure_for_name(names[source_id], prefix)
        else:
            name, tissue = unknown_id_structure(source_id), "soft_tissue"
        lookup[source_id] = (table.by_name(name) if name in table else table.add(name, tissue)).id
    warnings = (_unknown_ids_warning(unknown, table_name),) if unknown else ()
    return LabelMap(source.with_array(lookup[array]), table, warnings=warnings)


def relabel_with_table(source: Volume, table: LabelTable, path: Path | None = None) -> LabelMap:
    """A label map read with the user's own table: ids keep their values; ids the table does not list
    are kept as ``label_<id>`` (soft tissue until :func:`with_unknown_tissues_from_ct`), with a warning."""
    array = _integer_ids(source, path)
    listed = {label.id for label in table}
    unknown = [i for i in present_ids(array) if i not in listed]
    if not unknown:
        return LabelMap(source.with_array(array.astype(np.uint16)), table)
    extended = LabelTable([*table, *(Label(i, unknown_id_structure(i), "soft_tissue") for i in unknown)])
    return LabelMap(source.with_array(array.astype(np.uint16)), extended,
                    warnings=(_unknown_ids_warning(unknown, "label table"),))


def with_unknown_tissues_from_ct(label_map: LabelMap, ct: Volume) -> LabelMap:
    """``label_map`` with the tissue class of each structure named by number (``label_37``) read from the
    median CT number of its voxels (:func:`anatomy_models.tissues.tissue_from_hu`); ``ct`` shares its grid."""
    ids = [label.id for label in label_map.table if is_unknown_id_structure(label.name)]
    if not ids:
        return label_map
    array = label_map.labels.array
    tissues: dict[int, str] = {}
    for label_id in ids:
        hu = ct.array[array == label_id]
        if hu.size:
            index, names = tissue_from_hu(np.median(hu))
            tissues[label_id] = names[int(index)]
    table = LabelTable([replace(label, tissue=tissues.get(label.id, label.tissue)) for label in label_map.table])
    return replace(label_map, table=table)


# --------------------------------------------------------------------------- formats
@dataclass(frozen=True)
class LabelFormat:
    """How to read a label map's ids: ``kind`` is ``totalsegmentator``, ``verse`` or ``table``."""

    kind: str
    version: str | None = None  # "v1" / "v2" for TotalSegmentator; None: decide from the file
    table_path: Path | None = None


LABEL_FORMAT_HELP = "totalsegmentator, totalsegmentator:v1, totalsegmentator:v2, verse or table:FILE"


def parse_label_format(text: str) -> LabelFormat:
    """Parse a ``--label-format`` value.

    Examples
    --------
    >>> parse_label_format("totalsegmentator:v1")
    LabelFormat(kind='totalsegmentator', version='v1', table_path=None)
    """
    kind, _, argument = text.strip().partition(":")
    kind = kind.lower()
    if kind == "totalsegmentator" and argument.lower() in ("", "v1", "v2"):
        return LabelFormat(kind, argument.lower() or None)
    if kind == "verse" and not argument:
        return LabelFormat(kind)
    if kind == "table" and argument:
        return LabelFormat(kind, table_path=Path(argument))
    raise SpinesimError(f"unknown label format {text!r}", hint=f"use one of {LABEL_FORMAT_HELP}")


def _bone_agreement(labels: np.ndarray, ct: np.ndarray, classes: tuple[str, ...], ids: list[int]) -> float:
    """Fraction of present classes whose 'is bone' (from the table) matches 'is bright' (mean HU > 200)."""
    counts = np.bincount(labels.ravel(), minlength=max(ids) + 1)
    sums = np.bincount(labels.ravel(), weights=ct.ravel().astype(np.float64), minlength=max(ids) + 1)
    agree = 0
    for label_id in ids:
        is_bone = label_id <= len(classes) and tissue_of_kind(classes[label_id - 1]) == "cortical_bone"
        agree += is_bone == (sums[label_id] / counts[label_id] > 200.0)
    return agree / len(ids)


def _totalsegmentator_version(array: np.ndarray, path: Path, ct: Volume | None) -> tuple[str, str]:
    """Which TotalSegmentator id table a multilabel file without its own table follows, and why."""
    ids = present_ids(array)
    if ids and max(ids) > len(TOTALSEGMENTATOR_V1):
        return "v2", f"ids above {len(TOTALSEGMENTATOR_V1)} occur"
    if ct is not None and ids and ct.shape == array.shape:
        scores = {v: _bone_agreement(array, ct.array, classes, ids) for v, classes in TOTALSEGMENTATOR_VERSIONS.items()}
        best = max(scores, key=scores.get)
        other = min(scores, key=scores.get)
        if scores[best] >= 0.8 and scores[best] - scores[other] >= 0.2:
            return best, (f"its bone classes match the bright CT voxels ({scores[best]:.0%} of classes agree, "
                          f"{scores[other]:.0%} for {other})")
    raise SpinesimError("cannot tell whether this TotalSegmentator label map follows the v1 or the v2 class table "
                        "(the file has no label table of its own)", path=path,
                        hint="give --label-format totalsegmentator:v1 or totalsegmentator:v2")


def is_totalsegmentator_folder(path: str | Path) -> bool:
    """True for a folder whose NIfTI files are mostly named after TotalSegmentator classes."""
    path = Path(path)
    if not path.is_dir():
        return False
    stems = [nifti_stem(p) for p in path.iterdir() if p.is_file() and is_nifti_path(p)]
    return bool(stems) and sum(s in TOTALSEGMENTATOR_CLASSES for s in stems) * 2 > len(stems)


def _class_order(stem: str) -> tuple[int, str]:
    return (TOTALSEGMENTATOR_V2.index(stem) if stem in TOTALSEGMENTATOR_V2 else len(TOTALSEGMENTATOR_V2), stem)


def read_totalsegmentator_folder(path: str | Path, *, progress: ProgressCallback | None = None) -> LabelMap:
    """A folder of TotalSegmentator per-class masks (``<class>.nii.gz``) as one spinesim label map.

    Empty masks are skipped. Every mask is put on the first mask's grid (nearest neighbour if it is
    on another). Where masks overlap, the class later in TotalSegmentator's v2 order keeps the voxel.
    """
    path = Path(path)
    files = sorted((p for p in path.iterdir() if p.is_file() and is_nifti_path(p)), key=lambda p: _class_order(nifti_stem(p)))
    if not files:
        raise SpinesimError("no NIfTI masks (.nii / .nii.gz) in this folder", path=path)
    grid: Volume | None = None
    labels: np.ndarray | None = None
    table = LabelTable()
    notes: list[str] = []
    overlapping = 0
    for done, file in enumerate(files):
        if progress:
            progress(done, len(files), file.name)
        mask_volume = read_nifti(file)
        # File names other than TotalSegmentator's classes may carry a patient's name: never kept.
        name, tissue = generic_structure(nifti_stem(file), "totalseg", done + 1)
        if grid is None:
            grid = mask_volume
            labels = np.zeros(grid.shape, dtype=np.uint16)
        elif not same_grid(mask_volume, grid):
            mask_volume = mask_volume.resample_like(grid, order=0)
            notes.append(f"the mask of {name} was on another grid and was resampled (nearest neighbour)")
        mask = _integer_ids(mask_volume, file) > 0
        if not mask.any():
            continue
        label = table.by_name(name) if name in table else table.add(name, tissue)
        overlapping += int(np.count_nonzero(labels[mask] != 0))
        labels[mask] = label.id
    if progress:
        progress(len(files), len(files), "done")
    if overlapping:
        notes.append(f"{overlapping} voxels were in more than one mask; the later class kept them")
    return LabelMap(grid.with_array(labels), table, tuple(notes))


def read_label_map(path: str | Path, label_format: LabelFormat | None = None, *,
                   progress: ProgressCallback | None = None, ct: Volume | None = None) -> LabelMap:
    """Read a label map from ``path`` and translate it into spinesim structures.

    Parameters
    ----------
    path : path
        A ``.seg.nrrd``, a label image (``.nii``, ``.nii.gz``, ``.nrrd``) or a folder of
        TotalSegmentator per-class masks.
    label_format : LabelFormat, optional
        How to read the ids. Without it the file must say so itself: a Slicer segmentation or a
        NIfTI with a label table (read by names), or a TotalSegmentator per-class folder.
    ct : Volume, optional
        The CT the label map belongs to; when given, the result is on the CT's grid (resampled with
        nearest neighbour if it was not, with a note) and TotalSegmentator's version can be told from it.
    """
    path = Path(path)
    if not path.exists():
        raise SpinesimError("no such label map file or folder", path=path)
    kind = label_format.kind if label_format else None
    if path.is_dir():
        if kind not in (None, "totalsegmentator") or not (kind or is_totalsegmentator_folder(path)):
            raise SpinesimError("a label folder must hold TotalSegmentator per-class masks (<class>.nii.gz)", path=path,
                                hint="give a single label image, or use --label-format totalsegmentator")
        result = read_totalsegmentator_folder(path, progress=progress)
    elif is_nrrd_path(path) and is_segmentation_file(path) and kind != "table":
        segmentation = read_segmentation(path)
        result = relabel_by_names(segmentation.labels, segmentation.names, "seg", path=path, table_name="segment list",
                                  tissues=segmentation.tissues)
        if segmentation.overlapping_voxels:
            result = replace(result, notes=(f"{segmentation.overlapping_voxels} voxels belong to "
                                            "overlapping segments; the later segment kept them",))
    else:
        result = _read_label_image(path, label_format, ct)
    return with_unknown_tissues_from_ct(on_ct_grid(result, ct, path), ct) if ct is not None else result


def _read_label_image(path: Path, label_format: LabelFormat | None, ct: Volume | None) -> LabelMap:
    if is_nifti_path(path):
        source = read_nifti(path)
        names = nifti_label_names(path)
    elif is_nrrd_path(path):
        source, names = read_nrrd(path), None
    else:
        raise SpinesimError("not a label map format spinesim reads", path=path,
                            hint="give a .nii, .nii.gz, .nrrd, .nhdr or .seg.nrrd file, or a TotalSegmentator folder")
    if label_format is None:
        if names is None:
            raise SpinesimError("this label image does not say what its ids mean", path=path,
                                hint=f"give --label-format ({LABEL_FORMAT_HELP})")
        return relabel_by_names(source, names, "seg", path=path, table_name="file's own label table")
    if label_format.kind == "table":
        table = LabelTable.from_file(label_format.table_path)
        return relabel_with_table(source, table, path)
    if label_format.kind == "verse":
        return relabel_by_names(source, {i: VERSE_TO_SPINESIM.get(n, n) for i, n in VERSE_LEVELS.items()},
                                "verse", path=path, table_name="VerSe table (ids 1-28)")
    notes: list[str] = []
    if names is not None and label_format.version is None:
        classes = names
        notes.append("TotalSegmentator classes read by name from the file's own label table")
    else:
        version = label_format.version
        if version is None:
            # Checked on the CT grid only when the grids match; else the ids alone decide.
            version, reason = _totalsegmentator_version(_integer_ids(source, path), path,
                                                        ct if ct is not None and same_grid(source, ct) else None)
            notes.append(f"TotalSegmentator {version} class table chosen: {reason}")
        classes = dict(enumerate(TOTALSEGMENTATOR_VERSIONS[version], start=1))
    mapped = relabel_by_names(source, classes, "totalseg", path=path, table_name="TotalSegmentator class table")
    return replace(mapped, notes=tuple(notes))


# --------------------------------------------------------------------------- grids
def same_grid(a: Volume, b: Volume, tolerance_voxels: float = 0.01) -> bool:
    """True if ``a`` and ``b`` have the same shape and their corners agree to a small fraction of a voxel."""
    if a.shape != b.shape:
        return False
    tolerance = tolerance_voxels * float(min(a.spacing.min(), b.spacing.min()))
    return bool(np.abs(a.corners() - b.corners()).max() <= tolerance)


def on_ct_grid(label_map: LabelMap, ct: Volume, path: Path | None = None) -> LabelMap:
    """``label_map`` on exactly the CT's grid: resampled with nearest neighbour if it was elsewhere.

    Raises
    ------
    SpinesimError
        If the two grids do not overlap, or no labelled voxel falls inside the CT.
    """
    labels = label_map.labels
    if same_grid(labels, ct):
        return replace(label_map, labels=ct.with_array(labels.array))
    low_l, high_l = labels.bounds()
    low_c, high_c = ct.bounds()
    if np.any(high_l <= low_c) or np.any(high_c <= low_l):
        raise SpinesimError(f"the label map's grid ({_box(low_l, high_l)}) does not overlap the CT's ({_box(low_c, high_c)})",
                            path=path, hint="check that the label map belongs to this CT (and is in the same coordinates)")
    resampled = labels.resample_like(ct, order=0)
    if not resampled.array.any():
        raise SpinesimError("no labelled voxel of the label map falls inside the CT", path=path,
                            hint="check that the label map belongs to this CT")
    note = (f"label map resampled onto the CT grid with nearest neighbour "
            f"({' x '.join(map(str, labels.shape))} at {_mm(labels.spacing)} mm -> "
            f"{' x '.join(map(str, ct.shape))} at {_mm(ct.spacing)} mm)")
    return replace(label_map, labels=resampled, notes=label_map.notes + (note,))


def _mm(values: np.ndarray) -> str:
    return " x ".join(f"{v:.3g}" for v in values)


def _box(low: np.ndarray, high: np.ndarray) -> str:
    return ", ".join(f"{lo:.0f}..{hi:.0f}" for lo, hi in zip(low, high)) + " mm LPS"


# --------------------------------------------------------------------------- CT numbers from labels
def ct_from_labels(labels: Volume, table: LabelTable, *, body: np.ndarray | None = None) -> Volume:
    """A CT (int16 HU) painted from structures: each labelled voxel gets its tissue's CT number.

    Unlabelled voxels are air, or soft tissue where ``body`` (a boolean array, e.g. inside a skin
    surface) is True. CT numbers come from the tissue table (``tissues.py``).
    """
    ids = np.asarray(labels.array)
    lookup = np.full(max([label.id for label in table], default=0) + 1, TISSUES["air"].hu, dtype=np.float32)
    for label in table:
        lookup[label.id] = TISSUES[label.tissue].hu
    hu = lookup[ids]
    if body is not None:
        hu[(ids == 0) & body] = TISSUES["soft_tissue"].hu
    return labels.with_array(np.clip(np.rint(hu), -32768, 32767).astype(np.int16))
