"""The labels exported as a DICOM SEG and an RT Structure Set beside the CT series, read back by
highdicom and pydicom and checked by dciodvfy (dicom3tools) where it is installed."""

import shutil
import subprocess

import highdicom as hd
import numpy as np
import pydicom
import pytest
from skimage.draw import polygon

from anatomy_models.anatomy import Anatomy
from anatomy_models.exports import export_anatomy
from anatomy_models.structures import LabelTable


@pytest.fixture(scope="module")
def exported(small_spine, tmp_path_factory):
    """A block of the 2 mm patient round L4 (bone, disc, sac, roots) exported as DICOM."""
    centre = np.rint(small_spine.ct.world_to_voxel(small_spine.landmark("L4.body.center"))).astype(int)
    block = tuple(slice(c - h, c + h) for c, h in zip(centre, (24, 24, 8)))
    labels = small_spine.labels.sub_volume(*block)
    present = set(np.unique(labels.array).tolist())
    table = LabelTable(label for label in small_spine.label_table if label.id in present)
    anatomy = Anatomy(ct=small_spine.ct.sub_volume(*block), label_table=table, labels=labels)
    out = tmp_path_factory.mktemp("dicom") / "series"
    files = export_anatomy(anatomy, "dicom", out)
    return anatomy, files


def test_seg_reads_back_exactly_by_name(exported):
    anatomy, files = exported
    seg_path = [f for f in files if f.name.endswith(".seg.dcm")][0]
    seg = hd.seg.segread(seg_path)
    names = {number: seg.get_segment_description(number).segment_label for number in seg.segment_numbers}
    assert sorted(names.values()) == sorted(label.name for label in anatomy.label_table)
    slices = sorted((pydicom.dcmread(f) for f in files if f.parent.name == "series"), key=lambda ds: ds.InstanceNumber)
    frames = seg.get_pixels_by_source_instance(source_sop_instance_uids=[ds.SOPInstanceUID for ds in slices],
                                               combine_segments=True, relabel=False, skip_overlap_checks=True)
    by_number = np.zeros(max(names) + 1, dtype=np.int64)
    for number, name in names.items():
        by_number[number] = anatomy.label_table.by_name(name).id
    back = by_number[frames].transpose(2, 1, 0)  # frames are (slice k, row j, column i)
    np.testing.assert_array_equal(back, anatomy.labels.array)
    assert seg.FrameOfReferenceUID == slices[0].FrameOfReferenceUID
    assert seg.get_segment_description(1).segmented_property_category.meaning == "Anatomical Structure"


def test_rtstruct_outlines_fill_back_to_the_masks(exported):
    anatomy, files = exported
    rt = pydicom.dcmread([f for f in files if f.name.endswith(".rtstruct.dcm")][0])
    names = {roi.ROINumber: roi.ROIName for roi in rt.StructureSetROISequence}
    assert sorted(names.values()) == sorted(label.name for label in anatomy.label_table)
    grid = anatomy.labels
    for contour in rt.ROIContourSequence:
        label = anatomy.label_table.by_name(names[contour.ReferencedROINumber])
        mask = anatomy.labels.array == label.id
        if mask.sum() < 40:
            continue
        filled = np.zeros_like(mask)
        for item in contour.ContourSequence:
            ijk = grid.world_to_voxel(np.asarray(item.ContourData, dtype=float).reshape(-1, 3))
            k = int(round(ijk[0, 2]))
            rows, columns = polygon(ijk[:, 0], ijk[:, 1], mask.shape[:2])
            filled[rows, columns, k] ^= True  # even-odd: a hole's outline empties it again
        dice = 2 * (filled & mask).sum() / (filled.sum() + mask.sum())
        # Outlines through the edges' midpoints lose half of each boundary voxel's corners.
        assert dice > 0.8, (label.name, dice)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) is not installed")
def test_both_objects_pass_dciodvfy(exported):
    _, files = exported
    for path in [f for f in files if f.name.endswith((".seg.dcm", ".rtstruct.dcm"))]:
        checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = [line for line in (checked.stdout + checked.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], (path.name, errors)
