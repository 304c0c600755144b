import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from anatomy_models.structures import Label, LabelTable, clinical_name, interspace, level_below, vocabulary_tissue


def test_levels_and_interspaces():
    assert level_below("L4") == "L5"
    assert interspace("L5") == "L5-S1"
    with pytest.raises(SpinesimError, match="unknown vertebral level 'L6'"):
        level_below("L6")


def test_groups_follow_dotted_names():
    table = LabelTable()
    for name in ["L4", "L4.pedicle.left", "L4-L5.disc", "L40", "ligamentum_flavum.L4-L5", "ligamentum_flavum.L3-L4"]:
        table.add(name, "ligament" if "flavum" in name else "cortical_bone")
    assert [table.by_id(i).name for i in table.ids_in_group("L4")] == ["L4", "L4.pedicle.left"]
    assert len(table.ids_in_group("ligamentum_flavum")) == 2
    with pytest.raises(SpinesimError, match="no structure named 'L3'"):
        table.ids_in_group("L3")


def test_tissue_lookup_maps_every_id():
    table = LabelTable([Label(1, "fat", "fat"), Label(5, "L1", "cortical_bone")])
    lookup, names = table.tissue_lookup()
    labels = np.array([0, 1, 5])
    assert [names[i] for i in lookup[labels]] == ["unlabelled", "fat", "cortical_bone"]


def test_yaml_errors_name_file_and_line(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("- {id: 1, name: L4, tissue: cortical_bone}\n- {id: 2, name: dural_sac, tissue: dura}\n")
    assert len(LabelTable.from_file(good)) == 2

    broken = tmp_path / "broken.yaml"
    broken.write_text("- {id: 1, name: L4, tissue: cortical_bone}\n- {id: 2, name: [unclosed\n")
    with pytest.raises(SpinesimError, match=r"broken.yaml: line \d+, column \d+: not valid YAML"):
        LabelTable.from_file(broken)

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- {id: 1, name: L4, tissue: cortical_bone}\n\n- {id: 1, name: L5, tissue: cortical_bone}\n")
    with pytest.raises(SpinesimError, match=r"wrong.yaml: line 3: label id 1 is used twice"):
        LabelTable.from_file(wrong)

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("- {id: 1, name: L4, tissue: granite}\n")
    with pytest.raises(SpinesimError, match=r"line 1: unknown tissue class 'granite'"):
        LabelTable.from_file(unknown)

    missing = tmp_path / "missing.yaml"
    missing.write_text("- {id: 1, name: L4}\n")
    with pytest.raises(SpinesimError, match="missing field"):
        LabelTable.from_file(missing)


@pytest.mark.parametrize("name, tissue", [
    ("L4", "cortical_bone"), ("T12.body", "cortical_bone"), ("L4.pedicle.left", "cortical_bone"),
    ("L5.SAP.right", "cortical_bone"), ("S1.ala.left", "cortical_bone"), ("L4-L5.disc.annulus", "disc_annulus"),
    ("L5-S1.disc.nucleus", "disc_nucleus"), ("facet_joint.L4-L5.left", "cartilage"),
    ("ligamentum_flavum.L3-L4", "ligament"), ("supraspinous_ligament", "ligament"), ("epidural_space", "fat"),
    ("dural_sac.dura", "dura"), ("dural_sac.csf", "csf"), ("spinal_cord", "spinal_cord"), ("cauda_equina", "nerve"),
    ("nerve_root.L5.right", "nerve"), ("dorsal_root_ganglion.L4.left", "nerve"),
    ("radicular_artery.L1.left.adamkiewicz", "blood"), ("aorta", "blood"), ("muscle.psoas.right", "muscle"),
    ("fat", "fat"), ("skin", "skin"), ("soft_tissue", "soft_tissue"), ("bowel_gas", "air"), ("colon_content", "air"),
    ("L6", None), ("L4.pedicle", None), ("muscle.psoas", None), ("liver", None),
])
def test_vocabulary_tissue_follows_the_naming_contract(name, tissue):
    assert vocabulary_tissue(name) == tissue


@pytest.mark.parametrize("name, words", [
    ("muscle.multifidus.left", "left multifidus"), ("epidural_space", "epidural space"),
    ("ligamentum_flavum.L4-L5", "L4-L5 ligamentum flavum"), ("nerve_root.L5.left", "left L5 nerve root"),
    ("L4.SAP.left", "left L4 superior articular process"), ("dural_sac.csf", "CSF in the dural sac"),
    ("facet_joint.L5-S1.right", "right L5-S1 facet joint"), ("L4-L5.disc.annulus", "L4-L5 disc annulus"),
    ("L4-L5.disc", "L4-L5 disc"), ("S1.ala.right", "right sacral ala"), ("S1", "sacrum"), ("L3", "L3 vertebra"),
    ("radicular_artery.L1.left.adamkiewicz", "left L1 artery of Adamkiewicz"),
    ("common_iliac_vein.right", "right common iliac vein"), ("totalseg.rib_left_3", "rib left 3"),
])
def test_clinical_names(name, words):
    assert clinical_name(name) == words


def test_every_structure_of_the_built_in_anatomy_has_a_clinical_name(small_spine):
    """Every name the built-in label table produces reads as words: no underscore, no dot, no raw name."""
    names = [label.name for label in small_spine.label_table]
    assert len(names) > 100
    for name in names:
        words = clinical_name(name)
        assert words and "_" not in words and "." not in words, (name, words)
    for group in ("dural_sac", "nerve_root", "ligamentum_flavum", "facet_joint", "L4-L5.disc", "muscle"):
        assert "_" not in clinical_name(group) and "." not in clinical_name(group), group
