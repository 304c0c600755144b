"""The long fuzz campaign: the suite's property-based fuzz tests of hostile input, run longer.

    python -m benchmarks.fuzz [--scale 20] [pytest arguments ...]

Every reader and parser (DICOM, NIfTI, NRRD, meshes, YAML, scenarios, action logs, stored-anatomy
manifests and volumes) and the web app's browser-to-server requests have a hypothesis test that asserts
"a valid object or a SpinesimError naming the input, never anything else, never a hang". In the suite
each runs a bounded number of examples (seconds); here the same tests run ``--scale`` times as many
(:mod:`tests.fuzzing`), each run from a new random seed (pytest prints it with a failure). It is not
a speed benchmark, so it is not among ``python -m benchmarks``'s ratios; it exits non-zero on a failure,
with hypothesis's shrunk example in the output. Each test's peak resident memory is printed at the end
(:mod:`benchmarks.fuzz_memory`), and the campaign stops itself past ``--max-rss-gb``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ_FILES = ["tests/anatomy_models/test_hostile_dicom.py", "tests/anatomy_models/test_hostile_volumes.py",
              "tests/anatomy_models/test_hostile_yaml.py", "tests/anatomy_models/test_hostile_store.py",
              "tests/scenarios/test_hostile_scenarios.py", "tests/simulator/test_hostile_action_logs.py",
              "tests/frontends/web/test_fuzz_handlers.py"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=20, help="times the suite's examples per test (default 20)")
    parser.add_argument("--max-rss-gb", type=float, default=8.0,
                        help="stop the campaign if its resident memory passes this (default 8 GB)")
    options, pytest_args = parser.parse_known_args(argv)
    if options.scale < 1:
        parser.error("--scale must be at least 1")
    if options.max_rss_gb <= 0:
        parser.error("--max-rss-gb must be positive")
    environment = dict(os.environ, SPINESIM_FUZZ_SCALE=str(options.scale), PYTHONPATH=str(ROOT),
                       SPINESIM_FUZZ_MAX_RSS_GB=str(options.max_rss_gb))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "benchmarks.fuzz_memory",
               "-k", "fuzz", "-o", "addopts=", *FUZZ_FILES, *pytest_args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment)
    print(f"fuzz campaign at {options.scale}x the suite's examples: {time.perf_counter() - start:.0f} s, "
          f"{'no failure' if done.returncode == 0 else 'FAILED'}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
