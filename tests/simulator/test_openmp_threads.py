"""The compiled loops' OpenMP threads sleep when idle (``simulator.imaging`` sets ``OMP_WAIT_POLICY``): a
workstation shares its two cores with the others, and spinning threads took them (benchmarks/bench_cine.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A parallel projection, then the wait policy libgomp was started with (its environment at the launch).
_SCRIPT = """
import os
import numpy as np
from anatomy_models.volume import Volume
from simulator.imaging.carm import CArm
from simulator.imaging.drr import line_integrals
line_integrals(Volume.from_spacing(np.ones((8, 8, 8), np.float32), (1, 1, 1)), CArm(detector_pixels=8))
print(os.environ["OMP_WAIT_POLICY"])
"""


@pytest.mark.parametrize("given, started", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_projectors_threads_sleep_when_idle_unless_the_user_said_otherwise(given, started):
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if given is not None:
        environment["OMP_WAIT_POLICY"] = given
    environment["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-c", _SCRIPT], env=environment, capture_output=True, text=True,
                            timeout=300, check=True)
    assert result.stdout.split()[-1] == started
