"""Structure names and the label table (label id -> structure name -> tissue class).

Names are stable dotted strings. A name also names a group: ``L4`` covers ``L4`` and every ``L4.*``
structure; ``ligamentum_flavum`` covers every level. The vocabulary below is the contract between
the generator, the importers, the needle, the renderers and scoring. ``{L}`` is a level from
:data:`LEVELS`, ``{L}-{M}`` an interspace (``L4-L5``), ``{s}`` a side (``left``/``right``, the
patient's).

Structures (label names) and their tissue class:

================================  =================  ==============================================
name                              tissue             notes
================================  =================  ==============================================
``{L}`` (whole vertebra)          cortical_bone      importers (TotalSegmentator, VerSe) give this
``{L}.body``                      cortical_bone      with the parts below, the generator's vertebra
``{L}.pedicle.{s}``               cortical_bone
``{L}.lamina.{s}``                cortical_bone
``{L}.spinous_process``           cortical_bone
``{L}.transverse_process.{s}``    cortical_bone
``{L}.SAP.{s}`` / ``{L}.IAP.{s}`` cortical_bone      superior / inferior articular process
``S1.ala.{s}``                    cortical_bone      sacrum; S1 also has body, pedicles, SAPs
``S1.dorsal_wall``                cortical_bone      the sacral canal's back wall (fused S2-S4 laminae,
                                                     median sacral crest), down to the hiatus apex
``S1.cornu.{s}``                  cortical_bone      sacral cornu, either side of the sacral hiatus
``coccyx``                        cortical_bone      below the sacrococcygeal joint
``ilium.{s}``                     cortical_bone      iliac wing and crest, posterior ilium with the PSIS
                                                     and auricular surface (as far as the image holds it)
``sacroiliac_joint.{s}``          cartilage          joint space between the auricular surfaces
``{L}-{M}.disc.annulus``          disc_annulus       group ``{L}-{M}.disc`` is the whole disc
``{L}-{M}.disc.nucleus``          disc_nucleus
``S1-S2.disc.annulus``            disc_annulus       only with a lumbarised S1 (rudimentary disc)
``facet_joint.{L}-{M}.{s}``       cartilage          joint space and capsule
``ligamentum_flavum.{L}-{M}``     ligament
``interspinous_ligament.{L}-{M}`` ligament
``supraspinous_ligament``         ligament
``epidural_space``                fat                posterior epidural fat, the space around the sac
                                                     and the foraminal fat around the exiting roots
``dural_sac.dura``                dura               the membrane; group ``dural_sac`` adds its content
``dural_sac.csf``                 csf
``spinal_cord``                   spinal_cord        ends at the conus
``cauda_equina``                  nerve              roots inside the sac below the conus
``nerve_root.{L}.{s}``            nerve              exiting root below pedicle ``{L}``; ``S2``-``S4``:
                                                     sacral roots, out through their sacral foramina
``dorsal_root_ganglion.{L}.{s}``  nerve
``radicular_artery.{L}.{s}``      blood              in the foramen below pedicle ``{L}``;
                                                     ``.adamkiewicz`` suffix for the dominant one
``aorta``, ``inferior_vena_cava`` blood
``common_iliac_artery.{s}``       blood              and ``common_iliac_vein.{s}``: below the bifurcations
``muscle.{name}.{s}``             muscle             erector_spinae, multifidus, psoas, quadratus_lumborum,
                                                     abdominal_wall (obliques, transversus),
                                                     gluteus_maximus, gluteus_medius (with the minimus)
``fat``                           fat                subcutaneous fat
``skin``                          skin
``soft_tissue``                   soft_tissue        viscera and everything else inside the skin
``bowel_gas``                     air                gas in the colon and small bowel
``colon_content``                 air                stool mottled with gas in the ascending and descending
                                                     colon (its CT numbers are drawn by the CT synthesis)
``kidney.{s}``                    soft_tissue
``retroperitoneal_fat.{s}``       fat                round psoas, quadratus lumborum and kidney
``rib.T12.{s}``                   cortical_bone      the 12th rib
================================  =================  ==============================================

The generated sacrum labels its fused lower segments (S2-S5, bodies and lateral masses) ``S1``
itself, so the group ``S1`` is the whole sacrum. Bone and disc names start with their level so that the group
``L4`` is exactly the L4 vertebra;
everything else starts with its kind (``nerve_root.L5.left``), so groups like ``nerve_root`` work.
Label 0 is outside any structure: its tissue comes from the CT number.

Landmarks (points, LPS mm) and directions (unit vectors) use the same vocabulary:

- ``{L}.body.center``; ``{L}.superior_endplate.center`` / ``{L}.inferior_endplate.center`` and the
  directions ``{L}.superior_endplate.normal`` / ``{L}.inferior_endplate.normal`` (pointing away from
  the body, i.e. into the disc)
- ``{L}.pedicle.{s}.center``, ``{L}.pedicle.{s}.six_oclock`` (inferior margin, as seen on AP)
- ``{L}.spinous_process.tip``, ``{L}.transverse_process.{s}.tip``
- ``{L}.SAP_TP_junction.{s}`` (medial branch target: the L3 medial branch crosses ``L4.SAP_TP_junction``),
  ``S1.SAP_ala_junction.{s}`` (the L5 dorsal ramus crosses the sacral ala there); both on the dorsal
  bone surface in the groove
- ``facet_joint.{L}-{M}.{s}.inferior_recess``, ``facet_joint.{L}-{M}.{s}.center``
- ``{L}-{M}.interlaminar_window.center``, ``{L}-{M}.ventral_interlaminar_line.{s}``
- ``{L}-{M}.safe_triangle.{s}`` (subpedicular TFESI target under pedicle ``{L}``),
  ``{L}-{M}.kambin_triangle.{s}``
- ``conus.tip``
- ``S1.dorsal_foramen.{s}`` (centre of the S1 dorsal foramen), ``sacral_hiatus.apex`` (in the canal
  under the apex of the hiatus), ``S1.cornu.{s}.tip``, ``sacroiliac_joint.{s}.inferior_third``
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import yaml

from anatomy_models.errors import SpinesimError
from anatomy_models.tissues import TISSUES
from anatomy_models.yaml_source import read_yaml_file

# Vertebral levels the product models, cranial to caudal (S1 stands for the sacrum).
LEVELS: tuple[str, ...] = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
SIDES: tuple[str, ...] = ("left", "right")

_NAME = re.compile(r"^[A-Za-z0-9_]+(?:[.\-][A-Za-z0-9_]+)*$")


def check_level(level: str) -> str:
    """``level`` if it is a modelled vertebral level, else a clear error."""
    if level not in LEVELS:
        raise SpinesimError(f"unknown vertebral level {level!r}", hint=f"use one of {', '.join(LEVELS)}")
    return level


def check_side(side: str) -> str:
    if side not in SIDES:
        raise SpinesimError(f"unknown side {side!r}", hint="use 'left' or 'right' (the patient's side)")
    return side


def level_below(level: str) -> str:
    """The next level caudally (``L4`` -> ``L5``)."""
    index = LEVELS.index(check_level(level))
    if index + 1 >= len(LEVELS):
        raise SpinesimError(f"no modelled level below {level}")
    return LEVELS[index + 1]


def interspace(upper: str) -> str:
    """The name of the interspace below ``upper`` (``L4`` -> ``L4-L5``)."""
    return f"{upper}-{level_below(upper)}"


def in_group(name: str, group: str) -> bool:
    """True if structure ``name`` is ``group`` or part of it (``L4.pedicle.left`` is in ``L4``)."""
    return name == group or name.startswith(group + ".")


@dataclass(frozen=True)
class Label:
    """One row of a label table: a label id, its structure name and its tissue class."""

    id: int
    name: str
    tissue: str


class LabelTable:
    """The mapping label id -> structure name -> tissue class of a label map.

    Id 0 is background and is never listed.

    Examples
    --------
    >>> table = LabelTable([Label(1, "L4", "cortical_bone"), Label(2, "L4.pedicle.left", "cortical_bone"),
    ...                     Label(3, "dural_sac", "dura")])
    >>> table.ids_in_group("L4")
    [1, 2]
    >>> table.by_name("dural_sac").tissue
    'dura'
    """

    def __init__(self, labels: Iterable[Label] = ()) -> None:
        self._by_id: dict[int, Label] = {}
        self._by_name: dict[str, Label] = {}
        for label in labels:
            self._add(label)

    def _add(self, label: Label, where: str | None = None) -> None:
        if not isinstance(label.id, int) or not 0 < label.id < 65536:
            raise SpinesimError(f"label id must be an integer 1-65535, got {label.id!r}", where=where)
        if not isinstance(label.name, str) or not _NAME.match(label.name):
            raise SpinesimError(f"invalid structure name {label.name!r}", where=where,
                                hint="use letters, digits and underscores, joined by '.' or '-' (e.g. 'L4.pedicle.left')")
        if label.tissue not in TISSUES:
            raise SpinesimError(f"unknown tissue class {label.tissue!r} for {label.name!r}", where=where,
                                hint=f"use one of: {', '.join(sorted(TISSUES))}")
        if label.id in self._by_id:
            raise SpinesimError(f"label id {label.id} is used twice ({self._by_id[label.id].name!r} and {label.name!r})", where=where)
        if label.name in self._by_name:
            raise SpinesimError(f"structure {label.name!r} is listed twice", where=where)
        self._by_id[label.id] = label
        self._by_name[label.name] = label

    def add(self, name: str, tissue: str) -> Label:
        """Append a structure with the next free id and return its row."""
        label = Label(max(self._by_id, default=0) + 1, name, tissue)
        self._add(label)
        return label

    # ------------------------------------------------------------------ lookups
    def __iter__(self) -> Iterator[Label]:
        return iter(sorted(self._by_id.values(), key=lambda label: label.id))

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def by_id(self, label_id: int) -> Label:
        try:
            return self._by_id[int(label_id)]
        except KeyError:
            raise SpinesimError(f"label id {label_id} is not in the label table") from None

    def by_name(self, name: str) -> Label:
        try:
            return self._by_name[name]
        except KeyError:
            close = [n for n in self._by_name if name.lower() in n.lower()][:5]
            hint = f"did you mean {', '.join(close)}?" if close else None
            raise SpinesimError(f"no structure named {name!r} in the label table", hint=hint) from None

    def ids_in_group(self, group: str) -> list[int]:
        """Ids of every structure that is ``group`` or part of it; an error if there is none."""
        ids = [label.id for label in self if in_group(label.name, group)]
        if not ids:
            raise SpinesimError(f"no structure named {group!r} (or inside it) in the label table")
        return ids

    def tissue_lookup(self) -> tuple[np.ndarray, list[str]]:
        """A vectorised id -> tissue map: (index array of length max id + 1, tissue names).

        ``names[lookup[labels]]`` is the tissue of every labelled voxel; label 0 maps to index 0,
        named ``"unlabelled"`` (its tissue comes from the CT number, see ``Anatomy.tissue_map``).
        """
        names = ["unlabelled"] + sorted({label.tissue for label in self})
        lookup = np.zeros(max(self._by_id, default=0) + 1, dtype=np.uint8)
        for label in self:
            lookup[label.id] = names.index(label.tissue)
        return lookup, names

    # ------------------------------------------------------------------ serialisation
    def to_list(self) -> list[dict[str, Any]]:
        return [{"id": label.id, "name": label.name, "tissue": label.tissue} for label in self]

    @classmethod
    def from_list(cls, rows: Any, *, source: str | Path | None = None,
                  lines: list[int | None] | None = None) -> LabelTable:
        """Build a table from ``[{"id": 1, "name": "L4", "tissue": "cortical_bone"}, ...]``."""
        if not isinstance(rows, list):
            raise SpinesimError("a label table must be a list of {id, name, tissue} entries", path=source)
        table = cls()
        for index, row in enumerate(rows):
            line = lines[index] if lines and index < len(lines) else None
            where = f"line {line}" if line else f"entry {index + 1}"
            if not isinstance(row, dict):
                raise SpinesimError(f"expected a mapping with id, name and tissue, got {row!r}", path=source, where=where)
            missing = [key for key in ("id", "name", "tissue") if key not in row]
            if missing:
                raise SpinesimError(f"missing field(s) {', '.join(missing)}", path=source, where=where)
            try:
                table._add(Label(row["id"], row["name"], row["tissue"]), where=where)
            except SpinesimError as error:
                raise SpinesimError(error.problem, path=source, where=where, hint=error.hint) from None
        return table

    @classmethod
    def from_file(cls, path: str | Path) -> LabelTable:
        """Read a label table from YAML or JSON (a list of {id, name, tissue}); errors name the line."""
        path = Path(path)
        node, rows = read_yaml_file(path, kind="YAML/JSON")
        lines = [item.start_mark.line + 1 for item in node.value] if isinstance(node, yaml.SequenceNode) else None
        return cls.from_list(rows, source=path, lines=lines)


def _vocabulary_patterns() -> list[tuple[re.Pattern[str], str]]:
    level = "(?:" + "|".join(LEVELS) + ")"
    side = "(?:" + "|".join(SIDES) + ")"
    space = f"{level}-{level}"
    rows = [
        (rf"{level}(?:\.body|\.spinous_process|\.(?:pedicle|lamina|transverse_process|SAP|IAP)\.{side})?", "cortical_bone"),
        (rf"S1\.(?:ala|cornu)\.{side}|S1\.dorsal_wall|coccyx", "cortical_bone"),
        (rf"sacroiliac_joint\.{side}", "cartilage"),
        (rf"{space}\.disc\.annulus", "disc_annulus"),
        (rf"{space}\.disc\.nucleus", "disc_nucleus"),
        (rf"facet_joint\.{space}\.{side}", "cartilage"),
        (rf"(?:ligamentum_flavum|interspinous_ligament)\.{space}|supraspinous_ligament", "ligament"),
        (r"epidural_space|fat", "fat"),
        (r"dural_sac\.dura", "dura"),
        (r"dural_sac\.csf", "csf"),
        (r"spinal_cord", "spinal_cord"),
        (rf"cauda_equina|(?:nerve_root|dorsal_root_ganglion)\.{level}\.{side}|nerve_root\.S[2-4]\.{side}", "nerve"),
        (rf"radicular_artery\.{level}\.{side}(?:\.adamkiewicz)?|aorta|inferior_vena_cava", "blood"),
        (rf"muscle\.(?:erector_spinae|multifidus|psoas|quadratus_lumborum)\.{side}", "muscle"),
        (r"skin", "skin"),
        (r"soft_tissue", "soft_tissue"),
        (r"bowel_gas", "air"),
        (r"colon_content", "air"),
        (rf"kidney\.{side}", "soft_tissue"),
        (rf"retroperitoneal_fat\.{side}", "fat"),
        (rf"rib\.T12\.{side}", "cortical_bone"),
    ]
    return [(re.compile(f"^(?:{pattern})$"), tissue) for pattern, tissue in rows]


_VOCABULARY = _vocabulary_patterns()


def vocabulary_tissue(name: str) -> str | None:
    """The tissue class of ``name`` if it is a structure of the vocabulary above, else None.

    Examples
    --------
    >>> vocabulary_tissue("L4.pedicle.left"), vocabulary_tissue("L4-L5.disc.nucleus"), vocabulary_tissue("spleen")
    ('cortical_bone', 'disc_nucleus', None)
    """
    for pattern, tissue in _VOCABULARY:
        if pattern.match(name):
            return tissue
    return None


# Parts of a vertebra named with a side, as a clinician says them.
_VERTEBRA_PARTS = {"pedicle": "pedicle", "lamina": "lamina", "transverse_process": "transverse process",
                   "SAP": "superior articular process", "IAP": "inferior articular process"}
# Whole structures with a fixed clinical name; sided ones get the side in front ("left multifidus").
_FIXED_NAMES = {
    "epidural_space": "epidural space", "fat": "fat", "skin": "skin", "soft_tissue": "soft tissue",
    "bowel_gas": "bowel gas", "colon_content": "stool in the colon",
    "air": "air", "muscle": "muscle", "dural_sac": "dural sac", "dural_sac.dura": "dura",
    "dural_sac.csf": "CSF in the dural sac", "spinal_cord": "spinal cord", "cauda_equina": "cauda equina",
    "supraspinous_ligament": "supraspinous ligament", "aorta": "aorta", "inferior_vena_cava": "inferior vena cava",
    "ligamentum_flavum": "ligamentum flavum", "nerve_root": "nerve root",
    "dorsal_root_ganglion": "dorsal root ganglion",
    "radicular_artery": "radicular artery", "facet_joint": "facet joint",
    "S1.dorsal_wall": "posterior wall of the sacral canal", "coccyx": "coccyx", "sacroiliac_joint": "sacroiliac joint",
}
_MUSCLES = {"erector_spinae": "erector spinae", "multifidus": "multifidus", "psoas": "psoas",
            "quadratus_lumborum": "quadratus lumborum", "abdominal_wall": "abdominal wall muscles",
            "gluteus_maximus": "gluteus maximus", "gluteus_medius": "gluteus medius"}
# Prefixes importers put before names they could not translate (labelmaps.structure_for_name).
_IMPORT_PREFIXES = ("totalseg.", "seg.", "mesh.", "label.")


def _clinical_patterns() -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    level = "(?P<level>" + "|".join(LEVELS) + ")"
    side = r"\.(?P<side>" + "|".join(SIDES) + ")"
    space = "(?P<space>(?:" + "|".join(LEVELS) + ")-(?:" + "|".join(LEVELS) + "))"
    parts = "(?P<part>" + "|".join(_VERTEBRA_PARTS) + ")"
    muscles = "(?P<muscle>" + "|".join(_MUSCLES) + ")"
    rows = [
        ("S1", lambda m: "sacrum"),
        (level, lambda m: f"{m['level']} vertebra"),
        (rf"{level}\.body", lambda m: f"{m['level']} vertebral body"),
        (rf"{level}\.spinous_process", lambda m: f"{m['level']} spinous process"),
        (rf"{level}\.{parts}{side}", lambda m: f"{m['side']} {m['level']} {_VERTEBRA_PARTS[m['part']]}"),
        (rf"S1\.ala{side}", lambda m: f"{m['side']} sacral ala"),
        (rf"S1\.cornu{side}", lambda m: f"{m['side']} sacral cornu"),
        (rf"sacroiliac_joint{side}", lambda m: f"{m['side']} sacroiliac joint"),
        (rf"nerve_root\.(?P<level>S[2-4]){side}", lambda m: f"{m['side']} {m['level']} nerve root"),
        (rf"ilium{side}", lambda m: f"{m['side']} ilium"),
        (rf"rib\.T12{side}", lambda m: f"{m['side']} 12th rib"),
        (rf"kidney{side}", lambda m: f"{m['side']} kidney"),
        (rf"retroperitoneal_fat{side}", lambda m: f"{m['side']} retroperitoneal fat"),
        (rf"{space}\.disc", lambda m: f"{m['space']} disc"),
        (rf"{space}\.disc\.annulus", lambda m: f"{m['space']} disc annulus"),
        (rf"{space}\.disc\.nucleus", lambda m: f"{m['space']} disc nucleus"),
        (rf"facet_joint\.{space}{side}", lambda m: f"{m['side']} {m['space']} facet joint"),
        (rf"ligamentum_flavum\.{space}", lambda m: f"{m['space']} ligamentum flavum"),
        (rf"interspinous_ligament\.{space}", lambda m: f"{m['space']} interspinous ligament"),
        (rf"nerve_root\.{level}{side}", lambda m: f"{m['side']} {m['level']} nerve root"),
        (rf"dorsal_root_ganglion\.{level}{side}", lambda m: f"{m['side']} {m['level']} dorsal root ganglion"),
        (rf"radicular_artery\.{level}{side}", lambda m: f"{m['side']} {m['level']} radicular artery"),
        (rf"radicular_artery\.{level}{side}\.adamkiewicz", lambda m: f"{m['side']} {m['level']} artery of Adamkiewicz"),
        (rf"common_iliac_(?P<vessel>artery|vein){side}", lambda m: f"{m['side']} common iliac {m['vessel']}"),
        (rf"muscle\.{muscles}{side}", lambda m: f"{m['side']} {_MUSCLES[m['muscle']]}"),
        (rf"muscle\.{muscles}", lambda m: _MUSCLES[m["muscle"]]),
    ]
    return [(re.compile(f"^(?:{pattern})$"), words) for pattern, words in rows]


_CLINICAL = _clinical_patterns()


def clinical_name(name: str) -> str:
    """Structure ``name`` as a clinician says it: no underscores, no dots, the side and level first.

    Covers every name of the vocabulary above (and its groups); a name from elsewhere (an importer's
    ``totalseg.rib_left_3``) loses its prefix and is spelled out word by word.

    Examples
    --------
    >>> clinical_name("muscle.multifidus.left"), clinical_name("dural_sac.csf"), clinical_name("L4.SAP.left")
    ('left multifidus', 'CSF in the dural sac', 'left L4 superior articular process')
    >>> clinical_name("ligamentum_flavum.L4-L5"), clinical_name("nerve_root.L5.left")
    ('L4-L5 ligamentum flavum', 'left L5 nerve root')
    >>> clinical_name("totalseg.rib_left_3")
    'rib left 3'
    """
    if name in _FIXED_NAMES:
        return _FIXED_NAMES[name]
    for pattern, words in _CLINICAL:
        match = pattern.match(name)
        if match:
            return words(match)
    for prefix in _IMPORT_PREFIXES:
        name = name.removeprefix(prefix)
    return re.sub(r"[._\s]+", " ", name).strip()
