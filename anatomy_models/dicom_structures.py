"""An anatomy's labels as DICOM objects beside its exported CT series: a Segmentation (SEG) and an
RT Structure Set, both referencing the series' slices and frame of reference.

- SEG (:func:`write_dicom_seg`): one binary segment per structure present, labelled with its
  structure name (``L4.SAP.left``), made by highdicom, which checks the IOD as it builds it. Each
  segment carries a coded anatomic type from pydicom's SNOMED CT dictionary (the nearest concept it
  has: ``Vertebra`` for a vertebra's parts, ``Lamina of vertebra``, ``Dura mater``, ``Nerve``...);
  the exact structure is its label.
- RT Structure Set (:func:`write_rtstruct`): one ROI per structure, its outline on every slice as
  closed planar contours (``CLOSED_PLANAR``, LPS mm) traced through the voxel edges' midpoints
  (scikit-image's marching squares).

Both are de-identified as the series is (they copy the series' anonymous patient and study) and get
new UIDs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import LEVELS

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
MANUFACTURER = "spinesim"
# The SNOMED CT concept (a name in pydicom's code dictionary) of a structure by its tissue class.
_TISSUE_CONCEPT = {"cortical_bone": "Bone", "cancellous_bone": "Bone", "dura": "DuraMater", "csf": "CerebrospinalFluid",
                   "spinal_cord": "SpinalCord", "nerve": "Nerve", "ligament": "Ligament", "fat": "AdiposeTissue",
                   "muscle": "Muscle", "skin": "Skin", "blood": "Artery", "air": "Gas"}


def _concept(name: str, tissue: str):
    """The coded anatomic type of structure ``name`` (module docstring)."""
    from pydicom.sr.codedict import codes

    level = name.split(".")[0]
    if level == "S1":
        key = "Sacrum"
    elif level in LEVELS and ".lamina." in name:
        key = "LaminaOfVertebra"
    elif level in LEVELS and tissue in ("cortical_bone", "cancellous_bone"):
        key = "Vertebra"
    elif name.startswith(("coccyx", "ilium", "aorta")):
        key = {"coccyx": "Coccyx", "ilium": "Ilium", "aorta": "Aorta"}[name.split(".")[0]]
    else:
        key = _TISSUE_CONCEPT.get(tissue, "Tissue")
    return getattr(codes.SCT, key)


def _present(anatomy: Anatomy) -> list[tuple[int, str, str]]:
    if anatomy.labels is None:
        raise SpinesimError("this anatomy has no label map: there is nothing to write as a DICOM SEG or an RT "
                            "Structure Set", hint="export the CT alone, or import the CT with its labels (--labels)")
    present = set(np.unique(anatomy.labels.array).tolist())
    return [(label.id, label.name, label.tissue) for label in anatomy.label_table if label.id in present]


def _slices(ct_files: list[Path]) -> list[Dataset]:
    """The CT series' datasets in slice order (k = 0 first, as :func:`write_dicom_series` numbers them)."""
    return sorted((pydicom.dcmread(path) for path in ct_files), key=lambda ds: int(ds.InstanceNumber))


def write_dicom_seg(anatomy: Anatomy, ct_files: list[Path], path: str | Path) -> Path:
    """Write the anatomy's labels as a DICOM Segmentation of the CT series ``ct_files`` (written from
    this anatomy by :func:`~anatomy_models.dicom.write_dicom_series`) to ``path``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    structures = _present(anatomy)
    slices = _slices(ct_files)
    # Frame k of the series is the label map's k slice, transposed (rows run along j, as the CT's).
    numbers = np.zeros(int(anatomy.labels.array.max()) + 1, dtype=np.uint16)
    for number, (label_id, _, _) in enumerate(structures, start=1):
        numbers[label_id] = number
    frames = np.ascontiguousarray(numbers[anatomy.labels.array].transpose(2, 1, 0))
    algorithm = hd.AlgorithmIdentificationSequence(name="spinesim", version="1",
                                                   family=codes.cid7162.ArtificialIntelligence)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=number, segment_label=name, segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=_concept(name, tissue), algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm, tracking_uid=hd.UID(), tracking_id=name)
        for number, (_, name, tissue) in enumerate(structures, start=1)]
    seg = hd.seg.Segmentation(
        source_images=slices, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name=MANUFACTURER,
        software_versions="1", device_serial_number="0", series_description="spinesim structures")
    path = Path(path)
    seg.save_as(path)
    return path


def _contours(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines (n, 2) of a 2-D mask in (fractional) pixel indices of its two axes."""
    from skimage.measure import find_contours

    padded = np.pad(mask.astype(np.float32), 1)
    return [outline - 1.0 for outline in find_contours(padded, 0.5) if len(outline) >= 4]


def write_rtstruct(anatomy: Anatomy, ct_files: list[Path], path: str | Path) -> Path:
    """Write the anatomy's labels as an RT Structure Set on the CT series ``ct_files`` to ``path``."""
    structures = _present(anatomy)
    slices = _slices(ct_files)
    first = slices[0]
    ds = Dataset()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
                    "StudyDate", "StudyTime", "ReferringPhysicianName", "AccessionNumber", "FrameOfReferenceUID"):
        if keyword in first:
            setattr(ds, keyword, getattr(first, keyword))
    ds.SOPClassUID, ds.SOPInstanceUID = RT_STRUCTURE_SET_STORAGE, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "RTSTRUCT", generate_uid(), 3, 1
    ds.Manufacturer, ds.SeriesDescription = MANUFACTURER, "spinesim structures"
    ds.StructureSetLabel, ds.StructureSetDate, ds.StructureSetTime = "spinesim", "", ""
    ds.OperatorsName, ds.PositionReferenceIndicator = "", ""
    references = Sequence([Dataset() for _ in slices])
    for item, image in zip(references, slices):
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = image.SOPClassUID, image.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID, series.ContourImageSequence = first.SeriesInstanceUID, references
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (the IOD's usual value)
    study.ReferencedSOPInstanceUID, study.RTReferencedSeriesSequence = first.StudyInstanceUID, Sequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = first.FrameOfReferenceUID, Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    rois, contours, observations = Sequence(), Sequence(), Sequence()
    labels, grid = anatomy.labels.array, anatomy.labels
    for number, (label_id, name, tissue) in enumerate(structures, start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, first.FrameOfReferenceUID, name
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        rois.append(roi)
        items = Sequence()
        for k in np.flatnonzero((labels == label_id).any(axis=(0, 1))):
            for outline in _contours(labels[:, :, k] == label_id):
                ijk = np.column_stack([outline, np.full(len(outline), float(k))])
                points = grid.voxel_to_world(ijk)
                item = Dataset()
                image = Dataset()
                image.ReferencedSOPClassUID = slices[k].SOPClassUID
                image.ReferencedSOPInstanceUID = slices[k].SOPInstanceUID
                item.ContourImageSequence = Sequence([image])
                item.ContourGeometricType, item.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
                item.ContourData = [f"{value:.3f}" for value in points.ravel()]
                items.append(item)
        contour = Dataset()
        contour.ReferencedROINumber, contour.ROIDisplayColor, contour.ContourSequence = number, _colour(tissue), items
        contours.append(contour)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.RTROIInterpretedType, observation.ROIInterpreter = "ORGAN", ""
        observations.append(observation)
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = rois, contours, observations
    ds.ApprovalStatus = "UNAPPROVED"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return path


def _colour(tissue: str) -> list[int]:
    """A display colour by tissue class (bone ivory, nerve yellow, fat pale yellow, ...)."""
    return {"cortical_bone": [241, 214, 145], "cancellous_bone": [241, 214, 145], "nerve": [244, 214, 49],
            "dura": [111, 184, 210], "csf": [85, 188, 255], "fat": [230, 220, 70], "ligament": [150, 98, 83],
            "disc_annulus": [205, 167, 142], "disc_nucleus": [144, 238, 144], "spinal_cord": [244, 214, 49],
            "blood": [216, 101, 79], "muscle": [192, 104, 88]}.get(tissue, [128, 174, 128])
