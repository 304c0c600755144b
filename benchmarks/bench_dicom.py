"""DICOM CT loading: a 300-slice 512x512 series, time against SimpleITK and peak memory against the array.

The series is generated once into a temporary folder, each slice with a real scanner header
(pydicom's ``CT_small.dcm``: a GE header with private tags) and 12-bit unsigned pixels with
intercept -1024, the commonest CT layout. Timings are the best of three, alternating spinesim and
SimpleITK (file listing with ``GetGDCMSeriesFileNames`` plus ``ImageSeriesReader.Execute``: both
find and sort the files themselves). Peak memory is the peak resident set size (VmHWM) of a fresh
child process while it loads the series, minus its size just before, divided by the final array's
bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from benchmarks.measure import Measurement, best_time

SLICES, SIZE = 300, 512


def write_series(folder: Path, slices: int = SLICES, size: int = SIZE) -> None:
    """A realistic CT series: a water disc with a bone ring and noise, 0.7 mm pixels, 1 mm slices."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series, study = generate_uid(), generate_uid()
    y, x = np.mgrid[:size, :size] - size / 2
    radius = np.hypot(x, y)
    base = np.where(radius < 0.4 * size, 1024, 0) + np.where(np.abs(radius - 0.1 * size) < 6, 800, 0)
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(slices):
        ds = template.copy()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID, ds.StudyInstanceUID = series, study
        ds.Rows = ds.Columns = size
        ds.PixelSpacing = ["0.7", "0.7"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-179.2, -179.2, -150.0 + k * 1.0]
        ds.InstanceNumber = slices - k
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
        pixels = np.clip(base + rng.normal(0, 20, (size, size)), 0, 4095).astype("<u2")
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / f"{generate_uid()[-12:]}.dcm", enforce_file_format=True)


# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child started
# by a big parent would report the parent's size.
_CHILD = """
import json, sys
import SimpleITK as sitk
from anatomy_models.dicom import read_dicom_series
def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))
before = status("VmRSS")
if sys.argv[1] == "spinesim":
    nbytes = read_dicom_series(sys.argv[2]).volume.array.nbytes
else:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(sys.argv[2]))
    image = reader.Execute()
    nbytes = image.GetNumberOfPixels() * image.GetSizeOfPixelComponent()
print(json.dumps({"increase": max(status("VmHWM") - before, 0), "nbytes": nbytes}))
"""


def peak_memory(reader: str, folder: Path) -> dict:
    """Peak RSS increase (bytes) of a child process loading ``folder`` with ``reader``, and the array's bytes."""
    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    result = subprocess.run([sys.executable, "-c", _CHILD, reader, str(folder)], capture_output=True, text=True,
                            env=environment, check=True)
    return json.loads(result.stdout)


def run() -> list[Measurement]:
    import SimpleITK as sitk

    from anatomy_models.dicom import read_dicom_series

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "series"
        write_series(folder)

        def ours() -> None:
            read_dicom_series(folder)

        def simpleitk() -> None:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
            reader.Execute()

        ours()  # warm the page cache and imports for both
        simpleitk()
        ours_time, reference_time = float("inf"), float("inf")
        for _ in range(3):
            ours_time = min(ours_time, best_time(ours, repeats=1))
            reference_time = min(reference_time, best_time(simpleitk, repeats=1))
        memory = peak_memory("spinesim", folder)
        reference_memory = peak_memory("simpleitk", folder)
    megabyte = 2 ** 20
    return [
        Measurement(f"load {SLICES} x {SIZE}x{SIZE} CT series", ours_time, reference_time, "s",
                    "SimpleITK ImageSeriesReader", goal_max=1.5),
        Measurement("peak memory while loading (spinesim)", memory["increase"] / megabyte, memory["nbytes"] / megabyte,
                    "MiB", "final array", goal_max=2.0),
        Measurement("peak memory while loading (SimpleITK, for reference)", reference_memory["increase"] / megabyte,
                    reference_memory["nbytes"] / megabyte, "MiB", "final array"),
    ]
