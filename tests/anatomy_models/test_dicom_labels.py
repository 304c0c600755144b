"""The labels exported beside a CT series as a DICOM Segmentation and an RT Structure Set (issue 22): read
back by highdicom and pydicom into the same label map, coded with standard terminology, and valid by
dciodvfy (dicom3tools, an independent validator of the standard's IODs)."""

import subprocess

import highdicom as hd
import numpy as np
import pydicom
import pytest
from skimage.draw import polygon

from anatomy_models.anatomy import Anatomy
from anatomy_models.dicom import write_dicom_series
from anatomy_models.dicom_labels import SEGMENTATION_FILE, STRUCTURE_SET_FILE
from anatomy_models.structures import LabelTable
from anatomy_models.volume import Volume


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small anatomy of two vertebral parts with sides, a disc and an unknown structure (a ring, so one
    slice has a hole), written as a CT series with its label objects."""
    shape, spacing = (24, 20, 6), (1.5, 1.25, 2.0)
    ct = Volume.from_spacing(np.full(shape, -50, np.int16), spacing, origin=(-12.0, 30.0, -100.0))
    table = LabelTable()
    ids = {name: table.add(name, tissue).id for name, tissue in (
        ("L4.pedicle.left", "cortical_bone"), ("L4.body", "cortical_bone"), ("L4-L5.disc.nucleus", "disc_nucleus"),
        ("label_7", "soft_tissue"))}
    labels = np.zeros(shape, np.uint16)
    labels[2:8, 3:9, 1:5] = ids["L4.pedicle.left"]
    labels[10:20, 2:12, 0:3] = ids["L4.body"]
    labels[10:20, 2:12, 3:5] = ids["L4-L5.disc.nucleus"]
    labels[3:15, 12:19, 2:4] = ids["label_7"]
    labels[6:11, 14:17, 2] = 0  # a hole in the ring
    anatomy = Anatomy(ct=ct, label_table=table, labels=ct.with_array(labels), metadata={"source": "generated:test"})
    files = write_dicom_series(anatomy, tmp_path_factory.mktemp("labels") / "ct")
    return anatomy, files


def test_the_segmentation_reads_back_as_the_label_map_with_standard_codes(exported):
    anatomy, files = exported
    assert files[-2].name == SEGMENTATION_FILE and files[-1].name == STRUCTURE_SET_FILE
    seg = hd.seg.segread(files[-2])
    slices = [pydicom.dcmread(path) for path in files[:-2]]
    numbers = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[s.SOPInstanceUID for s in slices], combine_segments=True,
        skip_overlap_checks=True)  # (slices, rows, columns) of segment numbers
    names = {d.segment_number: d.segment_label for d in seg.SegmentSequence}
    id_of = {label.name: label.id for label in anatomy.label_table}
    back = np.vectorize(lambda n: id_of[names[n]] if n else 0)(numbers).transpose(2, 1, 0)
    np.testing.assert_array_equal(back, anatomy.labels.array)
    pedicle = next(d for d in seg.SegmentSequence if d.SegmentLabel == "L4.pedicle.left")
    assert pedicle.SegmentedPropertyTypeCodeSequence[0].CodeValue == "78972004"  # Pedicle of vertebra (SCT)
    assert pedicle.SegmentedPropertyTypeModifierCodeSequence[0].CodeMeaning == "Left"
    assert pedicle.AnatomicRegionSequence[0].CodeMeaning == "L4 vertebra"
    disc = next(d for d in seg.SegmentSequence if d.SegmentLabel == "L4-L5.disc.nucleus")
    assert disc.SegmentedPropertyTypeCodeSequence[0].CodeValue == "84020006"  # L4/L5 disc (CID 7604)
    assert seg.FrameOfReferenceUID == slices[0].FrameOfReferenceUID and seg.PatientID == slices[0].PatientID


def test_the_structure_set_outlines_each_structure_on_its_slices(exported):
    anatomy, files = exported
    rt = pydicom.dcmread(files[-1])
    slices = {s.SOPInstanceUID: s for s in (pydicom.dcmread(path) for path in files[:-2])}
    inverse = np.linalg.inv(anatomy.labels.affine)
    for roi, contours in zip(rt.StructureSetROISequence, rt.ROIContourSequence):
        label_id = anatomy.label_table.by_name(roi.ROIName).id
        drawn = np.zeros(anatomy.labels.shape, bool)
        for contour in contours.ContourSequence:
            image = slices[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
            world = np.asarray(contour.ContourData, float).reshape(-1, 3)
            assert np.allclose(world[:, 2], float(image.ImagePositionPatient[2]), atol=0.01)  # on its slice
            ijk = world @ inverse[:3, :3].T + inverse[:3, 3]
            k = int(round(ijk[0, 2]))
            inside = np.zeros(anatomy.labels.shape[:2], bool)
            inside[polygon(ijk[:, 0], ijk[:, 1], inside.shape)] = True
            drawn[:, :, k] ^= inside  # a hole's contour takes its voxels out again
        np.testing.assert_array_equal(drawn, anatomy.labels.array == label_id, err_msg=roi.ROIName)


def test_both_objects_pass_dciodvfy(exported):
    _, files = exported
    for path in files[-2:]:
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
        assert not errors, (path.name, errors)
