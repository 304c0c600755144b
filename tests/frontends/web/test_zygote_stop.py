"""A workstation stopped by SIGTERM leaves multiprocessing nothing to clean up (issue 23: ``serve`` printed
"resource_tracker: There appear to be 1 leaked semaphore objects to clean up at shutdown" on stop).

numba, launching its threads in a child of the fork server, takes a named semaphore that the resource
tracker records; killed by SIGTERM's default action, the child never removed it. A small portal here (a
process of its own, whose resource tracker ends with it and prints there) forks such a child through the
fork server, as the zygote forks workstations, has it project a DRR (numba's threads start), stops it with
SIGTERM as the portal does, ends, and must have printed nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
_PORTAL = textwrap.dedent("""
    import multiprocessing, sys, time
    from pathlib import Path
    from tests.frontends.web.test_zygote_stop import workstation_like

    ready = Path(sys.argv[1])
    child = multiprocessing.get_context("forkserver").Process(target=workstation_like, args=(str(ready),))
    child.start()
    deadline = time.monotonic() + 240
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), "the child never imaged"
    child.terminate()
    child.join(60)
    print(f"child ended with {child.exitcode}", flush=True)
""")


def workstation_like(ready: str) -> None:
    """In the fork server's child: what the zygote's workstations do on SIGTERM, then a DRR, then wait."""
    import numpy as np

    from anatomy_models.volume import Volume
    from frontends.web.zygote import stop_cleanly_on_terminate
    from simulator.imaging.carm import CArm
    from simulator.imaging.drr import line_integrals

    stop_cleanly_on_terminate()
    line_integrals(Volume.from_spacing(np.ones((8, 8, 8), np.float32), (1, 1, 1)), CArm(detector_pixels=8))
    Path(ready).touch()
    time.sleep(120)


def test_a_workstation_stopped_by_sigterm_leaves_no_semaphore_behind(tmp_path):
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", _PORTAL, str(tmp_path / "imaged")], env=environment, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "child ended with" in result.stdout
    assert "leaked" not in result.stderr and "resource_tracker" not in result.stderr, result.stderr
    assert result.stderr.strip() == ""
