"""The generated patient is the same to the bit for one generator version.

A cached patient is reused for as long as ``GENERATOR_VERSION`` stays the same, so any change to the
generator that is not meant to change the patient (a faster rasteriser, a cheaper landmark search) must
leave every voxel and landmark exactly as it was. This compares the 2 mm built-in patient's labels, CT
numbers, landmarks and directions with checksums recorded in ``tests/golden/generator_2mm.json``.

A change that is meant to change the patient sets a new ``GENERATOR_VERSION`` and records new checksums:
run this module once with ``SPINESIM_UPDATE_GOLDEN=1`` (it writes them and skips).

The labels are compared to the bit. The CT numbers and points are compared as sums, not digests, because
numpy picks its float32 transcendental loops (power, exp) by the CPU it runs on and OpenBLAS its kernels:
on an AVX-512 machine the same code makes 18 of the 2 mm patient's 5.6 million voxels 1 HU away from an
AVX2 machine's, and its landmarks 1e-14 mm away (measured, stop 28). The CT is recorded as its sum in each
axial slice and in each structure; a change of more than ``CPU_NOISE_HU_VOXELS`` in any of them (a few dozen
voxels moved by 1 HU) is a change of the patient. Landmarks and directions are compared to 1e-9.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from anatomy_models.spine.parameters import GENERATOR_VERSION

CHECKSUMS = Path(__file__).parents[2] / "golden" / "generator_2mm.json"


# How far a slice's or a structure's summed CT numbers may move with the CPU alone (HU x voxels): 18 voxels by
# 1 HU between AVX-512 and AVX2 machines, measured; any real change of the generator moves thousands.
CPU_NOISE_HU_VOXELS = 64
POINT_TOLERANCE = 1e-9


def _digest(array: np.ndarray) -> str:
    sha = hashlib.sha256()
    sha.update(str(array.dtype).encode() + str(array.shape).encode())
    sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()


def checksums(anatomy) -> dict:
    """The generator version, the labels' sha256 digest, the CT's sums by axial slice and by structure (label id),
    and the landmarks and directions."""
    labels, ct = anatomy.labels.array, anatomy.ct.array.astype(np.int64)
    slice_axis = int(np.argmax(np.abs(anatomy.ct.affine[2, :3])))  # the voxel axis along the patient's long axis
    other_axes = tuple(axis for axis in range(3) if axis != slice_axis)
    counts, sums = np.bincount(labels.ravel()), np.bincount(labels.ravel(), weights=ct.ravel())  # exact below 2**53
    return {"generator_version": GENERATOR_VERSION, "labels": _digest(labels),
            "ct_by_slice": ct.sum(axis=other_axes).tolist(),
            "ct_by_label": {str(label): int(sums[label]) for label in np.flatnonzero(counts)},
            "landmarks": {name: np.asarray(point, float).tolist() for name, point in sorted(anatomy.landmarks.items())},
            "directions": {name: np.asarray(v, float).tolist() for name, v in sorted(anatomy.directions.items())}}


def differences(measured: dict, recorded: dict) -> list[str]:
    """What differs between two :func:`checksums` beyond what the CPU alone changes."""
    changed = ["labels"] if measured["labels"] != recorded["labels"] else []
    for key in ("ct_by_slice", "ct_by_label"):
        now, then = measured[key], recorded[key]
        pairs = zip(now, then) if isinstance(now, list) else ((now.get(k, 0), then.get(k, 0)) for k in set(now) | set(then))
        if len(now) != len(then) or any(abs(a - b) > CPU_NOISE_HU_VOXELS for a, b in pairs):
            changed.append(key)
    for key in ("landmarks", "directions"):
        now, then = measured[key], recorded[key]
        if set(now) != set(then) or any(not np.allclose(now[k], then[k], rtol=0, atol=POINT_TOLERANCE) for k in now):
            changed.append(key)
    return changed


def test_the_2mm_patient_is_the_recorded_one(small_spine):
    measured = checksums(small_spine)
    if os.environ.get("SPINESIM_UPDATE_GOLDEN") == "1":
        CHECKSUMS.write_text(json.dumps(measured, indent=1) + "\n")
        pytest.skip(f"recorded {CHECKSUMS.name} for generator {GENERATOR_VERSION}")
    recorded = json.loads(CHECKSUMS.read_text())
    assert recorded["generator_version"] == GENERATOR_VERSION, (
        f"{CHECKSUMS.name} was recorded for generator {recorded['generator_version']}, this is generator "
        f"{GENERATOR_VERSION}: run this module with SPINESIM_UPDATE_GOLDEN=1 to record the new patient")
    changed = differences(measured, recorded)
    assert not changed, (f"the 2 mm patient's {', '.join(changed)} changed without a new GENERATOR_VERSION: "
                         "cached patients would no longer be what the generator makes")
