"""An anatomy's labels as DICOM objects beside its CT series: a Segmentation and an RT Structure Set.

Planning systems and PACS read a patient's structures from one of two objects that reference the CT
slices by their SOP Instance UIDs, in the CT's frame of reference:

- a **Segmentation** (``SEG.dcm``, Segmentation Storage, PS3.3 A.51), written with highdicom: one binary
  segment per structure, labelled with its spinesim name and coded with standard terminology
  (:mod:`anatomy_models.terminology`), only the slices a structure is on;
- an **RT Structure Set** (``RTSTRUCT.dcm``, PS3.3 A.19), what radiotherapy and many navigation systems
  read: one ROI per structure, its outline on every slice it is on as closed planar contours in patient
  coordinates (mm), traced through voxel corners (the marching-squares outline of the label at half a
  voxel: ``skimage.measure.find_contours``), each referencing its CT slice.

Both are de-identified as the CT series is (anonymous patient, new UIDs; the content date and time a
Segmentation must carry are the Basic Profile's dummy values, :data:`~anatomy_models.deidentify.DUMMY_DATE`).
"""

from __future__ import annotations

import numpy as np
from highdicom import UID, AlgorithmIdentificationSequence
from highdicom.seg import SegmentAlgorithmTypeValues, Segmentation, SegmentationTypeValues, SegmentDescription
from highdicom.sr import CodedConcept
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage
from scipy import ndimage
from skimage.measure import find_contours

from anatomy_models.anatomy import Anatomy
from anatomy_models.deidentify import DUMMY, DUMMY_DATE, DUMMY_TIME, mark_deidentified
from anatomy_models.terminology import segment_codes

SEGMENTATION_FILE = "SEG.dcm"
STRUCTURE_SET_FILE = "RTSTRUCT.dcm"
CONTOUR_DATA = 0x30060050
_ALGORITHM = AlgorithmIdentificationSequence(name="spinesim", version="1", family=segment_codes("L4").category)
# The patient and study elements the label objects copy from the CT series they reference.
_SHARED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber", "FrameOfReferenceUID")


def present_labels(anatomy: Anatomy) -> list[tuple[int, str]]:
    """(label id, structure name) of every label the anatomy's map holds, in id order."""
    present = set(np.unique(anatomy.labels.array).tolist()) - {0}
    return [(label.id, label.name) for label in anatomy.label_table if label.id in present]


def segmentation(anatomy: Anatomy, slices: list[Dataset], series_number: int = 2) -> Dataset:
    """The anatomy's labels as a binary DICOM Segmentation of the CT series ``slices`` (its k-th slice is
    the volume's k-th); one segment per present label, numbered 1..N in label id order."""
    labels = present_labels(anatomy)
    ids = np.array([label_id for label_id, _ in labels])
    # Segment numbers 1..N per voxel, frames ordered as the slices (k, rows = j, columns = i).
    number_of = np.zeros(int(anatomy.labels.array.max()) + 1, np.uint16)
    number_of[ids] = np.arange(1, len(ids) + 1)
    frames = np.ascontiguousarray(number_of[anatomy.labels.array].transpose(2, 1, 0))
    descriptions = [_description(number, name) for number, (_, name) in enumerate(labels, start=1)]
    seg = Segmentation(
        source_images=slices, pixel_array=frames, segmentation_type=SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=UID(), series_number=series_number,
        sop_instance_uid=UID(), instance_number=1, manufacturer="spinesim", manufacturer_model_name="spinesim",
        software_versions="spinesim", device_serial_number=DUMMY, content_description="spinesim structures",
        series_description="spinesim structures", content_label="STRUCTURES")
    _blank_creation_times(seg)
    return seg


def _description(number: int, name: str) -> SegmentDescription:
    coded = segment_codes(name)
    description = SegmentDescription(
        segment_number=number, segment_label=name, segmented_property_category=coded.category,
        segmented_property_type=coded.type, algorithm_type=SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=_ALGORITHM,
        anatomic_regions=[coded.region] if coded.region is not None else None)
    if coded.modifier is not None:  # the side (PS3.3 C.8.20.2: Segmented Property Type Modifier, CID 244)
        description.SegmentedPropertyTypeModifierCodeSequence = [
            CodedConcept(coded.modifier.value, coded.modifier.scheme_designator, coded.modifier.meaning)]
    return description


def _blank_creation_times(dataset: Dataset) -> None:
    """The dates and times a new object records of its making, as the Basic Profile's dummy values (Type 1:
    Content Date/Time) or left out (Type 3: Series, Instance Creation, and the library's own contribution
    with its date)."""
    for keyword in ("SeriesDate", "SeriesTime", "InstanceCreationDate", "InstanceCreationTime",
                    "ContributingEquipmentSequence"):
        if keyword in dataset:
            delattr(dataset, keyword)
    dataset.ContentDate, dataset.ContentTime = DUMMY_DATE, DUMMY_TIME
    mark_deidentified(dataset)


def structure_set(anatomy: Anatomy, slices: list[Dataset], series_number: int = 3) -> Dataset:
    """The anatomy's labels as an RT Structure Set on the CT series ``slices``: one ROI per present label,
    its closed planar contours on each slice, in patient coordinates (mm)."""
    instance = UID()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = RTStructureSetStorage, instance
    for keyword in _SHARED:
        setattr(ds, keyword, getattr(slices[0], keyword))
    ds.PositionReferenceIndicator = ""
    mark_deidentified(ds)
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", UID(), series_number
    ds.SeriesDescription = "spinesim structures"
    ds.OperatorsName = ""
    ds.Manufacturer = "spinesim"
    ds.SoftwareVersions = "spinesim"
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "spinesim"
    ds.StructureSetDate, ds.StructureSetTime = "", ""
    frame = Dataset()
    frame.FrameOfReferenceUID = slices[0].FrameOfReferenceUID
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired), as PS3.3 C.8.8.5 asks
    study.ReferencedSOPInstanceUID = slices[0].StudyInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = slices[0].SeriesInstanceUID
    series.ContourImageSequence = Sequence([_image_reference(s) for s in slices])
    study.RTReferencedSeriesSequence = Sequence([series])
    frame.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    rois, roi_contours, observations = [], [], []
    boxes = ndimage.find_objects(anatomy.labels.array)
    for number, (label_id, name) in enumerate(present_labels(anatomy), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, frame.FrameOfReferenceUID, name
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        rois.append(roi)
        contours = Dataset()
        contours.ReferencedROINumber = number
        contours.ROIDisplayColor = list(_colour(label_id))
        contours.ContourSequence = Sequence(_contours(anatomy, label_id, boxes[label_id - 1], slices))
        roi_contours.append(contours)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.RTROIInterpretedType = "ORGAN"
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = Sequence(rois)
    ds.ROIContourSequence = Sequence(roi_contours)
    ds.RTROIObservationsSequence = Sequence(observations)
    return ds


def _image_reference(slice_: Dataset) -> Dataset:
    reference = Dataset()
    reference.ReferencedSOPClassUID = slice_.SOPClassUID
    reference.ReferencedSOPInstanceUID = slice_.SOPInstanceUID
    return reference


def _contours(anatomy: Anatomy, label_id: int, box: tuple[slice, slice, slice], slices: list[Dataset]) -> list[Dataset]:
    """Closed planar contours of label ``label_id`` (inside its bounding ``box``) on each slice it is on
    (outlines at half a voxel, holes included as their own contours), in patient mm through the affine."""
    mask = anatomy.labels.array[box] == label_id
    i0, j0, k0 = box[0].start, box[1].start, box[2].start
    affine = anatomy.labels.affine
    items = []
    for k in np.flatnonzero(mask.any(axis=(0, 1))) + k0:
        padded = np.pad(mask[:, :, k - k0], 1).astype(np.float32)  # a closed outline even at the box's edge
        for line in find_contours(padded, 0.5):
            line = _corners(line)
            ijk = np.column_stack([line[:-1, 0] - 1 + i0, line[:-1, 1] - 1 + j0, np.full(len(line) - 1, k)])
            if len(ijk) < 3:
                continue
            world = ijk @ affine[:3, :3].T + affine[:3, 3]
            item = Dataset()
            item.ContourImageSequence = Sequence([_image_reference(slices[k])])
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(world)
            # Written as the decimal string DICOM stores (pydicom would otherwise make an object of each number).
            item.add(DataElement(CONTOUR_DATA, "DS", "\\".join(f"{v:.2f}" for v in world.ravel()),
                                 already_converted=True))
            items.append(item)
    return items


def _corners(line: np.ndarray) -> np.ndarray:
    """A closed traced outline (first point repeated last) without the points inside its straight runs: the
    same polygon, exactly, in a fraction of the points.

    >>> square = np.array([[0, 0], [0, 1], [0, 2], [1, 2], [2, 2], [2, 1], [2, 0], [1, 0], [0, 0]], float)
    >>> _corners(square).tolist()
    [[0.0, 0.0], [0.0, 2.0], [2.0, 2.0], [2.0, 0.0], [0.0, 0.0]]
    """
    points = line[:-1]
    before, after = points - np.roll(points, 1, axis=0), np.roll(points, -1, axis=0) - points
    turning = np.abs(before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]) > 1e-9
    kept = points[turning]
    return np.vstack([kept, kept[:1]])


def _colour(label_id: int) -> tuple[int, int, int]:
    """A stable display colour per label (golden-angle hues), so neighbouring structures differ."""
    hue = (label_id * 0.618033988749895) % 1.0
    sector, fraction = divmod(hue * 6.0, 1.0)
    rising, falling = int(255 * fraction), int(255 * (1 - fraction))
    return [(255, rising, 0), (falling, 255, 0), (0, 255, rising), (0, falling, 255), (rising, 0, 255),
            (255, 0, falling)][int(sector)]
