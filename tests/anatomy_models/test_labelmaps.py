import nibabel as nib
import numpy as np
import pytest

from anatomy_models.errors import SpinesimError
from anatomy_models.labelmaps import (TOTALSEGMENTATOR_V1, TOTALSEGMENTATOR_V2, VERSE_LEVELS, LabelFormat,
                                      ct_from_labels, is_totalsegmentator_folder, on_ct_grid, parse_label_format,
                                      read_label_map, relabel_by_names, structure_for_name)
from anatomy_models.nifti import write_nifti
from anatomy_models.structures import LabelTable
from anatomy_models.tissues import TISSUES
from anatomy_models.volume import Volume

V1 = {name: i for i, name in enumerate(TOTALSEGMENTATOR_V1, start=1)}
V2 = {name: i for i, name in enumerate(TOTALSEGMENTATOR_V2, start=1)}
# TotalSegmentator class -> the spinesim structure it must become, and its tissue
EXPECTED = {
    "vertebrae_L4": ("L4", "cortical_bone"), "vertebrae_L5": ("L5", "cortical_bone"),
    "vertebrae_T12": ("T12", "cortical_bone"), "sacrum": ("S1", "cortical_bone"),
    "aorta": ("aorta", "blood"), "inferior_vena_cava": ("inferior_vena_cava", "blood"),
    "autochthon_left": ("muscle.erector_spinae.left", "muscle"), "autochthon_right": ("muscle.erector_spinae.right", "muscle"),
    "iliopsoas_left": ("muscle.psoas.left", "muscle"), "iliopsoas_right": ("muscle.psoas.right", "muscle"),
    "liver": ("totalseg.liver", "soft_tissue"), "vertebrae_T11": ("totalseg.vertebrae_T11", "cortical_bone"),
    "rib_left_12": ("totalseg.rib_left_12", "cortical_bone"), "iliac_artery_left": ("totalseg.iliac_artery_left", "blood"),
}
EXPECTED_V2_ONLY = {"vertebrae_S1": ("S1", "cortical_bone"), "spinal_cord": ("spinal_cord", "spinal_cord")}
GRID = Volume.from_spacing(np.zeros((40, 8, 6), np.uint8), (1.0, 1.0, 1.0), origin=(-20.0, 0.0, 0.0))


def slab_label_map(ids: list[int]) -> Volume:
    """One 2-voxel slab per id along i, so each id marks a known set of voxels."""
    array = np.zeros(GRID.shape, np.uint8)
    for n, label_id in enumerate(ids):
        array[2 * n:2 * n + 2, 2:6, 1:5] = label_id
    return GRID.with_array(array)


def check_mapping(result, classes: list[str], expected: dict) -> None:
    for n, cls in enumerate(classes):
        name, tissue = expected[cls]
        voxel_id = int(result.labels.array[2 * n, 3, 2])
        label = result.table.by_id(voxel_id)
        assert (label.name, label.tissue) == (name, tissue), cls


@pytest.mark.parametrize("version, ids, expected", [
    ("v1", V1, EXPECTED),
    ("v2", V2, {**EXPECTED, **EXPECTED_V2_ONLY}),
])
def test_totalsegmentator_multilabel_maps_by_class_name(tmp_path, version, ids, expected):
    classes = list(expected)
    path = write_nifti(slab_label_map([ids[c] for c in classes]), tmp_path / "seg.nii.gz")
    result = read_label_map(path, parse_label_format(f"totalsegmentator:{version}"))
    check_mapping(result, classes, expected)
    if version == "v2":  # the sacrum below S1 and the S1 segment are both spinesim's S1
        assert result.labels.array[2 * classes.index("sacrum"), 3, 2] == result.labels.array[2 * classes.index("vertebrae_S1"), 3, 2]


def test_same_ids_mean_different_structures_in_v1_and_v2(tmp_path):
    path = write_nifti(slab_label_map([18, 28]), tmp_path / "seg.nii.gz")
    v1 = read_label_map(path, LabelFormat("totalsegmentator", "v1"))
    v2 = read_label_map(path, LabelFormat("totalsegmentator", "v2"))
    assert [label.name for label in v1.table] == ["L5", "totalseg.vertebrae_T7"]
    assert [label.name for label in v2.table] == ["totalseg.small_bowel", "L4"]


def test_version_is_told_from_high_ids_or_from_the_ct(tmp_path):
    path = write_nifti(slab_label_map([V2["vertebrae_L4"], V2["costal_cartilages"]]), tmp_path / "v2.nii.gz")
    result = read_label_map(path, parse_label_format("totalsegmentator"))
    assert "TotalSegmentator v2 class table chosen: ids above 104 occur" in result.notes[0]

    # v1 ids of bones and soft tissue: bright where v1 says bone, so v1 (v2 would call id 18 small bowel)
    classes = ["vertebrae_L5", "vertebrae_L4", "liver", "aorta", "rib_left_3", "hip_left", "spleen"]
    labels = slab_label_map([V1[c] for c in classes])
    hu = np.where(np.isin(labels.array, [V1[c] for c in classes if "vertebrae" in c or "rib" in c or "hip" in c]), 900, 40)
    ct = GRID.with_array(hu.astype(np.int16))
    path = write_nifti(labels, tmp_path / "v1.nii.gz")
    result = read_label_map(path, parse_label_format("totalsegmentator"), ct=ct)
    assert "TotalSegmentator v1 class table chosen" in result.notes[0]
    check_mapping(result, classes[:2], EXPECTED)
    with pytest.raises(SpinesimError, match=r"v1\.nii\.gz: cannot tell whether .* v1 or the v2 class table"):
        read_label_map(path, parse_label_format("totalsegmentator"))


def test_file_with_its_own_label_table_is_read_by_name(tmp_path):
    labels = slab_label_map([19, 101])  # v1 ids of L4 and autochthon_right; the file's table says so
    xml = ("<CaretExtension><VolumeInformation Index=\"0\"><LabelTable>"
           "<Label Key=\"19\"><![CDATA[vertebrae_L4]]></Label><Label Key=\"101\"><![CDATA[autochthon_right]]></Label>"
           "</LabelTable></VolumeInformation></CaretExtension>")
    image = nib.Nifti1Image(labels.array, np.eye(4))
    image.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode()))
    nib.save(image, str(tmp_path / "ml.nii.gz"))
    for label_format in (None, parse_label_format("totalsegmentator")):
        result = read_label_map(tmp_path / "ml.nii.gz", label_format)
        assert [label.name for label in result.table] == ["L4", "muscle.erector_spinae.right"]


def test_per_class_folder_is_detected_and_mapped(tmp_path):
    folder = tmp_path / "segmentations"
    classes = ["vertebrae_L4", "vertebrae_L5", "spinal_cord", "liver", "autochthon_left", "iliopsoas_right"]
    full = slab_label_map(list(range(1, len(classes) + 1)))
    for n, cls in enumerate(classes):
        write_nifti(full.with_array((full.array == n + 1).astype(np.uint8)), folder / f"{cls}.nii.gz")
    write_nifti(full.with_array(np.zeros(full.shape, np.uint8)), folder / "kidney_cyst_left.nii.gz")  # empty mask
    (folder / "statistics.json").write_text("{}")
    assert is_totalsegmentator_folder(folder)
    result = read_label_map(folder)
    expected = {**EXPECTED, **EXPECTED_V2_ONLY}
    check_mapping(result, classes, expected)
    assert "totalseg.kidney_cyst_left" not in result.table


@pytest.mark.parametrize("verse_id, name", [
    (19, "T12"), (20, "L1"), (23, "L4"), (24, "L5"), (25, "verse.L6"), (26, "S1"), (28, "verse.T13"),
    (1, "verse.C1"), (7, "verse.C7"), (18, "verse.T11"),
])
def test_verse_ids(tmp_path, verse_id, name):
    path = write_nifti(slab_label_map([verse_id]), tmp_path / "verse.nii.gz")
    result = read_label_map(path, parse_label_format("verse"))
    assert result.table.by_id(int(result.labels.array[0, 3, 2])).name == name
    assert result.table.by_name(name).tissue == "cortical_bone"
    assert VERSE_LEVELS[verse_id] in name or name == "S1"


def test_ids_outside_the_table_are_kept_by_number_with_a_warning(tmp_path):
    """One id a table does not know is a structure named by its number, never a refusal of the file."""
    path = write_nifti(slab_label_map([20, 30]), tmp_path / "verse.nii.gz")
    result = read_label_map(path, parse_label_format("verse"))
    assert result.table.by_id(int(result.labels.array[0, 3, 2])).name == "L1"
    assert result.table.by_id(int(result.labels.array[2, 3, 2])).name == "label_30"
    assert result.table.by_name("label_30").tissue == "soft_tissue"  # no CT to tell
    assert len(result.warnings) == 1 and "30 are not in the VerSe table" in result.warnings[0]
    path = write_nifti(slab_label_map([V2["vertebrae_L4"], 200]), tmp_path / "big.nii.gz")
    result = read_label_map(path, parse_label_format("totalsegmentator:v2"))
    assert {label.name for label in result.table} == {"L4", "label_200"}
    assert "TotalSegmentator class table" in result.warnings[0]


def test_unknown_ids_take_their_tissue_from_the_ct(tmp_path):
    """With the CT, the tissue class of an unknown id is that of its median CT number."""
    ids = [23, 30, 31, 32]
    hu = np.full(GRID.shape, 40, np.int16)
    for n, value in enumerate([900, 1100, -100, -1000]):
        hu[2 * n:2 * n + 2] = value
    ct = GRID.with_array(hu)
    path = write_nifti(slab_label_map(ids), tmp_path / "verse.nii.gz")
    result = read_label_map(path, parse_label_format("verse"), ct=ct)
    tissues = {label.name: label.tissue for label in result.table}
    assert tissues == {"L4": "cortical_bone", "label_30": "cortical_bone", "label_31": "fat", "label_32": "air"}


def test_user_label_table_keeps_ids(tmp_path):
    (tmp_path / "table.yaml").write_text("- {id: 3, name: L4, tissue: cortical_bone}\n"
                                         "- {id: 7, name: my_cyst, tissue: water}\n")
    path = write_nifti(slab_label_map([3, 7]), tmp_path / "labels.nii.gz")
    result = read_label_map(path, parse_label_format(f"table:{tmp_path / 'table.yaml'}"))
    assert result.labels.array[0, 3, 2] == 3 and result.table.by_id(7).name == "my_cyst"
    assert not result.warnings
    path = write_nifti(slab_label_map([3, 9]), tmp_path / "more.nii.gz")
    result = read_label_map(path, parse_label_format(f"table:{tmp_path / 'table.yaml'}"))
    assert result.labels.array[2, 3, 2] == 9 and result.table.by_id(9).name == "label_9"
    assert "9 are not in the label table" in result.warnings[0]


def test_broken_yaml_table_names_the_line(tmp_path):
    (tmp_path / "broken.yaml").write_text("- {id: 3, name: L4, tissue: cortical_bone}\n- {id: 7, name: [unclosed\n")
    path = write_nifti(slab_label_map([3]), tmp_path / "labels.nii.gz")
    with pytest.raises(SpinesimError, match=r"broken\.yaml: line 3, column 1: not valid YAML"):
        read_label_map(path, parse_label_format(f"table:{tmp_path / 'broken.yaml'}"))


def test_plain_label_image_without_format_asks_for_one(tmp_path):
    path = write_nifti(slab_label_map([3]), tmp_path / "labels.nii.gz")
    with pytest.raises(SpinesimError, match=r"labels\.nii\.gz: this label image does not say what its ids mean.*--label-format"):
        read_label_map(path)
    with pytest.raises(SpinesimError, match=r"unknown label format 'totalseg:v3'"):
        parse_label_format("totalseg:v3")


def test_label_map_on_another_grid_is_resampled_onto_the_ct(tmp_path):
    ct = Volume.from_spacing(np.zeros((20, 20, 20), np.int16), (1.0, 1.0, 1.0), origin=(0, 0, 0))
    coarse = np.zeros((10, 10, 10), np.uint8)
    coarse[2:6, 2:6, 2:6] = 23  # VerSe L4
    path = write_nifti(Volume.from_spacing(coarse, (2.0, 2.0, 2.0), origin=(0.5, 0.5, 0.5)), tmp_path / "coarse.nii.gz")
    result = read_label_map(path, parse_label_format("verse"), ct=ct)
    assert result.labels.shape == ct.shape and np.allclose(result.labels.affine, ct.affine)
    assert "resampled onto the CT grid with nearest neighbour" in result.notes[-1]
    # label voxels 2..5 (centres 4.5..10.5 mm, 2 mm wide) cover 3.5..11.5 mm: CT voxels 4..11
    assert result.labels.array[4:12, 4:12, 4:12].all() and np.count_nonzero(result.labels.array) == 8 ** 3


def test_label_map_that_misses_the_ct_is_refused(tmp_path):
    ct = Volume.from_spacing(np.zeros((20, 20, 20), np.int16), (1.0, 1.0, 1.0))
    far = Volume.from_spacing(slab_label_map([23]).array, (1.0, 1.0, 1.0), origin=(500.0, 0.0, 0.0))
    path = write_nifti(far, tmp_path / "far.nii.gz")
    with pytest.raises(SpinesimError, match=r"far\.nii\.gz: the label map's grid .* does not overlap the CT's"):
        read_label_map(path, parse_label_format("verse"), ct=ct)


def test_every_totalsegmentator_class_gets_a_valid_structure():
    table = LabelTable()
    for cls in sorted(set(TOTALSEGMENTATOR_V1) | set(TOTALSEGMENTATOR_V2)):
        name, tissue = structure_for_name(cls, "totalseg")
        if name not in table:
            table.add(name, tissue)  # validates the name and the tissue
    assert len(TOTALSEGMENTATOR_V1) == 104 and len(TOTALSEGMENTATOR_V2) == 117
    assert table.by_name("totalseg.lung_upper_lobe_left").tissue == "air"
    assert table.by_name("totalseg.costal_cartilages").tissue == "cartilage"
    assert table.by_name("totalseg.heart_myocardium").tissue == "muscle"


def test_relabel_and_ct_painting():
    labels = slab_label_map([5, 6])
    result = relabel_by_names(labels, {5: "vertebrae_L4", 6: "Blob"}, "seg")
    assert [label.name for label in result.table] == ["L4", "seg.Blob"]
    body = np.zeros(labels.shape, bool)
    body[:, :, :3] = True
    ct = ct_from_labels(result.labels, result.table, body=body)
    assert ct.array.dtype == np.int16
    assert ct.array[0, 3, 2] == TISSUES["cortical_bone"].hu
    assert ct.array[30, 0, 0] == TISSUES["soft_tissue"].hu and ct.array[30, 0, 5] == TISSUES["air"].hu
    assert on_ct_grid(result, GRID).labels.shape == GRID.shape
