"""Test DICOM made independently of spinesim's writer: CT slices built field by field with pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def ct_slice(stored: np.ndarray, *, position, orientation=AXIAL, spacing=(0.5, 0.5), series_uid: str,
             study_uid: str = "1.2.3.4", intercept: float = -1024.0, slope: float = 1.0, signed: bool = False,
             bits_stored: int = 12, modality: str = "CT", **extra) -> Dataset:
    """One CT slice dataset; ``stored`` is (rows, columns) of stored values; ``extra`` sets more keywords."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    instance = generate_uid()
    meta.MediaStorageSOPInstanceUID = instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = instance
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[study_uid])
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
    ds.PixelSpacing = [f"{v:.6f}" for v in spacing]
    ds.SliceThickness = "1.0"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleIntercept = f"{intercept:g}"
    ds.RescaleSlope = f"{slope:g}"
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(stored, dtype="<i2" if signed else "<u2").tobytes()
    return ds


def write_stack(folder: Path, stored: np.ndarray, positions, *, names=None, **kwargs) -> list[Path]:
    """Write slices ``stored[k]`` (k, rows, columns) at ``positions[k]`` (LPS mm) as one series."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = kwargs.pop("series_uid", None) or generate_uid()
    paths = []
    for k, (pixels, position) in enumerate(zip(stored, positions)):
        ds = ct_slice(pixels, position=position, series_uid=series_uid, **kwargs)
        ds.InstanceNumber = k + 1
        path = folder / (names[k] if names else f"slice{k:03d}.dcm")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def axial_positions(count: int, spacing: float = 2.0, origin=(-10.0, -20.0, 100.0)) -> list[np.ndarray]:
    return [np.asarray(origin) + np.array([0.0, 0.0, spacing * k]) for k in range(count)]


def stored_ramp(count: int, rows: int = 6, columns: int = 5, scale: int = 100) -> np.ndarray:
    """Stored 12-bit values that differ per slice, row and column (so any reordering shows)."""
    k, r, c = np.meshgrid(np.arange(count), np.arange(rows), np.arange(columns), indexing="ij")
    return (1024 + scale * k + 7 * r + c).astype(np.uint16)
