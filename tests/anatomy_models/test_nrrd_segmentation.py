"""Slicer .seg.nrrd files: read files written the way Slicer writes them (by slicerio, the Slicer
project's own reader/writer, and by hand), and check slicerio reads what spinesim writes."""

import nrrd
import numpy as np
import pytest
import slicerio

from anatomy_models.errors import SpinesimError
from anatomy_models.nrrd import is_segmentation_file, read_segmentation, write_segmentation
from anatomy_models.volume import Volume

SHAPE = (12, 10, 8)
AFFINE = np.array([[0.8, 0, 0, -40.0], [0, 0.8, 0, 20.0], [0, 0, 2.5, 100.0], [0, 0, 0, 1]])


def boxes() -> dict[str, np.ndarray]:
    masks = {name: np.zeros(SHAPE, bool) for name in ("L4", "L5", "dural_sac.csf")}
    masks["L4"][1:5, 2:8, 1:4] = True
    masks["L5"][6:11, 2:8, 4:7] = True
    masks["dural_sac.csf"][3:8, 4:6, 2:6] = True  # overlaps both vertebrae
    return masks


def test_layered_file_written_by_slicerio_reads_with_names_and_geometry(tmp_path):
    segmentation = slicerio.create_segmentation(SHAPE, AFFINE)
    for name, mask in boxes().items():
        slicerio.add_segment(segmentation, mask, {"id": name, "name": name})
    slicerio.write_segmentation(str(tmp_path / "seg.seg.nrrd"), segmentation)
    assert np.asarray(slicerio.read_segmentation(str(tmp_path / "seg.seg.nrrd"))["voxels"]).ndim == 4  # layered form

    result = read_segmentation(tmp_path / "seg.seg.nrrd")
    assert result.names == {1: "L4", 2: "L5", 3: "dural_sac.csf"}
    np.testing.assert_allclose(result.labels.affine, AFFINE, atol=1e-9)
    masks = boxes()
    np.testing.assert_array_equal(result.labels.array == 3, masks["dural_sac.csf"])  # the later segment keeps overlaps
    np.testing.assert_array_equal(result.labels.array == 1, masks["L4"] & ~masks["dural_sac.csf"])
    assert result.overlapping_voxels == int((masks["dural_sac.csf"] & (masks["L4"] | masks["L5"])).sum())


def test_three_d_file_with_slicer_fields_reads(tmp_path):
    # Header as 3D Slicer writes it for non-overlapping segments: one label image, label values 5 and 9.
    array = np.zeros(SHAPE, np.uint8)
    array[1:5, 2:8, 1:4] = 5
    array[6:11, 2:8, 4:7] = 9
    header = {
        "space": "left-posterior-superior", "space directions": AFFINE[:3, :3].T, "space origin": AFFINE[:3, 3],
        "kinds": ["domain"] * 3, "encoding": "gzip",
        "Segment0_ID": "Segment_1", "Segment0_Name": "vertebrae_L4", "Segment0_LabelValue": "5",
        "Segment0_Layer": "0", "Segment0_Extent": "1 4 2 7 1 3", "Segment0_Color": "1 0 0",
        "Segment1_ID": "Segment_2", "Segment1_Name": "Vertebra L5 (Dr. notes)", "Segment1_LabelValue": "9",
        "Segment1_Layer": "0", "Segment1_Extent": "6 10 2 7 4 6", "Segment1_Color": "0 1 0",
        "Segmentation_MasterRepresentation": "Binary labelmap",
    }
    nrrd.write(str(tmp_path / "three.seg.nrrd"), array, header)
    assert is_segmentation_file(tmp_path / "three.seg.nrrd")
    result = read_segmentation(tmp_path / "three.seg.nrrd")
    assert result.names == {1: "vertebrae_L4", 2: "Vertebra L5 (Dr. notes)"}
    np.testing.assert_array_equal(result.labels.array, np.select([array == 5, array == 9], [1, 2], 0))


def test_old_layered_file_without_label_values(tmp_path):
    masks = boxes()
    layers = np.stack([masks[n] for n in masks]).astype(np.uint8)
    directions = np.vstack([np.full(3, np.nan), AFFINE[:3, :3].T])
    header = {"space": "left-posterior-superior", "space directions": directions, "space origin": AFFINE[:3, 3],
              "kinds": ["list", "domain", "domain", "domain"],
              **{f"Segment{i}_Name": name for i, name in enumerate(masks)}}
    nrrd.write(str(tmp_path / "old.seg.nrrd"), layers, header)
    result = read_segmentation(tmp_path / "old.seg.nrrd")
    assert result.names == {1: "L4", 2: "L5", 3: "dural_sac.csf"}
    np.testing.assert_array_equal(result.labels.array == 2, masks["L5"] & ~masks["dural_sac.csf"])


def test_written_segmentation_reads_back_and_in_slicerio(tmp_path):
    array = np.zeros(SHAPE, np.uint16)
    array[1:5, 2:8, 1:4] = 3
    array[6:11, 2:8, 4:7] = 7
    labels = Volume(array, AFFINE)
    path = write_segmentation(labels, {3: "L4", 7: "L4-L5.disc.annulus", 8: "L5"}, tmp_path / "out.seg.nrrd")
    back = read_segmentation(path)
    assert back.names == {1: "L4", 2: "L4-L5.disc.annulus", 3: "L5"}
    np.testing.assert_array_equal(back.labels.array, np.select([array == 3, array == 7], [1, 2], 0))
    slicer = slicerio.read_segmentation(str(path))
    assert [(s["name"], s["labelValue"], s["layer"]) for s in slicer["segments"]] == [
        ("L4", 3, 0), ("L4-L5.disc.annulus", 7, 0), ("L5", 8, 0)]
    assert slicer["segments"][0]["extent"] == [1, 4, 2, 7, 1, 3]
    np.testing.assert_allclose(slicer["ijkToLPS"], AFFINE)
    np.testing.assert_array_equal(slicer["voxels"], array)
    with pytest.raises(SpinesimError, match=r"label ids \[7\] have no segment name"):
        write_segmentation(labels, {3: "L4"}, tmp_path / "bad.seg.nrrd")


@pytest.mark.parametrize("case, message", [
    ("undescribed", r"voxel value\(s\) \[9\] in layer 0 belong to no segment"),
    ("no_fields", r"no SegmentN_ fields"),
    ("single_voxel", r"holds no voxel data"),
    ("bad_layer", r"field 'Segment0_Layer' is 3 but the file has 1 layer"),
    ("bad_value", r"field 'Segment0_LabelValue' must be an integer, got 'five'"),
])
def test_malformed_segmentations_name_the_file(tmp_path, case, message):
    array = np.zeros(SHAPE, np.uint8)
    array[1:3, 1:3, 1:3] = 5
    array[5, 5, 5] = 9
    fields = {"Segment0_Name": "L4", "Segment0_LabelValue": "5", "Segment0_Layer": "0"}
    if case == "no_fields":
        fields = {}
    elif case == "single_voxel":
        array = np.zeros((1, 1, 1), np.uint8)
    elif case == "bad_layer":
        fields["Segment0_Layer"] = "3"
    elif case == "bad_value":
        fields["Segment0_LabelValue"] = "five"
    header = {"space": "left-posterior-superior", "space directions": np.eye(3), **fields}
    nrrd.write(str(tmp_path / f"{case}.seg.nrrd"), array, header)
    with pytest.raises(SpinesimError, match=message) as caught:
        read_segmentation(tmp_path / f"{case}.seg.nrrd")
    assert str(caught.value).startswith(str(tmp_path / f"{case}.seg.nrrd"))


def test_export_of_the_built_in_patient_imports_back_with_every_name(small_spine, tmp_path):
    """`anatomy export --format nrrd` then import: the same structures, names, tissues and voxels (issue 22)."""
    from anatomy_models.exports import export_anatomy
    from anatomy_models.sources import import_anatomy

    ct_path, seg_path, _ = export_anatomy(small_spine, "nrrd", tmp_path / "out")
    again = import_anatomy(ct_path, labels=seg_path)
    expected = {(label.name, label.tissue) for label in small_spine.label_table}
    assert {(label.name, label.tissue) for label in again.label_table} == expected
    assert not again.metadata.get("import_warnings")
    for name in ("L4", "ilium.left", "muscle.abdominal_wall.right", "common_iliac_artery.left", "L4-L5.disc.nucleus"):
        np.testing.assert_array_equal(again.mask(name), small_spine.mask(name), err_msg=name)
    segments = slicerio.read_segmentation(str(seg_path), skip_voxels=True)["segments"]  # Slicer's own reader
    assert {(segment["name"], segment["tags"]["spinesim.tissue"]) for segment in segments} == expected


def test_each_written_segment_carries_its_standard_terminology_for_slicer(tmp_path):
    """Issue 22: segments carry standard terminology (SNOMED CT, as in a DICOM SEG), read by slicerio as Slicer
    reads it."""
    labels = Volume.from_spacing(np.zeros((4, 4, 2), np.uint8), (1.0, 1.0, 1.0))
    labels.array[0, 0, 0], labels.array[2, 2, 1] = 1, 2
    path = write_segmentation(labels, {1: "L4.pedicle.left", 2: "dural_sac.csf"}, tmp_path / "t.seg.nrrd",
                              tissues={1: "cortical_bone", 2: "csf"})
    segments = {s["name"]: s for s in slicerio.read_segmentation(str(path))["segments"]}
    pedicle = segments["L4.pedicle.left"]["terminology"]
    assert pedicle["type"] == ["SCT", "78972004", "Pedicle of vertebra"] and pedicle["typeModifier"][2] == "Left"
    assert pedicle["anatomicRegion"] == ["SCT", "11994002", "L4 vertebra"]
    assert segments["dural_sac.csf"]["terminology"]["type"][1] == "65216001"  # Cerebrospinal fluid
    assert segments["L4.pedicle.left"]["tags"] == {"spinesim.tissue": "cortical_bone"}
