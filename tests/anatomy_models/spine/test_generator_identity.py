"""The generated patient is the same to the bit for one generator version.

A cached patient is reused for as long as ``GENERATOR_VERSION`` stays the same, so any change to the
generator that is not meant to change the patient (a faster rasteriser, a cheaper landmark search) must
leave every voxel and landmark exactly as it was. This compares the 2 mm built-in patient's labels, CT
numbers, landmarks and directions with checksums recorded in ``tests/golden/generator_2mm.json``.

A change that is meant to change the patient sets a new ``GENERATOR_VERSION`` and records new checksums:
run this module once with ``SPINESIM_UPDATE_GOLDEN=1`` (it writes them and skips).
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


def _digest(*arrays: np.ndarray) -> str:
    sha = hashlib.sha256()
    for array in arrays:
        sha.update(str(array.dtype).encode() + str(array.shape).encode())
        sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()


def _points_digest(points: dict[str, np.ndarray]) -> str:
    return _digest(np.array(sorted(points), dtype=str), *(np.asarray(points[k], np.float64) for k in sorted(points)))


def checksums(anatomy) -> dict:
    """The generator version and sha256 digests of a generated anatomy's arrays and points."""
    return {"generator_version": GENERATOR_VERSION,
            "labels": _digest(anatomy.labels.array), "ct": _digest(anatomy.ct.array),
            "landmarks": _points_digest(anatomy.landmarks), "directions": _points_digest(anatomy.directions)}


def test_the_2mm_patient_is_the_recorded_one(small_spine):
    measured = checksums(small_spine)
    if os.environ.get("SPINESIM_UPDATE_GOLDEN") == "1":
        CHECKSUMS.write_text(json.dumps(measured, indent=1) + "\n")
        pytest.skip(f"recorded {CHECKSUMS.name} for generator {GENERATOR_VERSION}")
    recorded = json.loads(CHECKSUMS.read_text())
    assert recorded["generator_version"] == GENERATOR_VERSION, (
        f"{CHECKSUMS.name} was recorded for generator {recorded['generator_version']}, this is generator "
        f"{GENERATOR_VERSION}: run this module with SPINESIM_UPDATE_GOLDEN=1 to record the new patient")
    changed = [key for key in ("labels", "ct", "landmarks", "directions") if measured[key] != recorded[key]]
    assert not changed, (f"the 2 mm patient's {', '.join(changed)} changed without a new GENERATOR_VERSION: "
                         "cached patients would no longer be what the generator makes")
