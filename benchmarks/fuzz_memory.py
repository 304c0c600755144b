"""The long fuzz campaign's memory watch (a pytest plugin, loaded by :mod:`benchmarks.fuzz`): the peak
resident memory while each test (each fuzz target) ran, sampled every :data:`SAMPLE_S` from
``/proc/self/status``, printed at the end and saved in ``out/benchmarks/fuzz_memory.json``; and a ceiling
(``SPINESIM_FUZZ_MAX_RSS_GB``) past which the campaign stops itself, naming the test, rather than take a
shared machine's memory (stop 17's scale-10 campaign reached 18 GB; issue 23).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

# How often the resident memory is read, s: a fuzz example takes from milliseconds to seconds, and a
# growth without bound is what is looked for, not a millisecond's spike.
SAMPLE_S = 0.5
GB = 1024**3


def resident_bytes(status: Path = Path("/proc/self/status")) -> int:
    """This process's resident memory (``VmRSS``), bytes."""
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS line in {status}: not Linux's /proc")


class MemoryWatch:
    """Samples the resident memory in a daemon thread and keeps each test's peak.

    Parameters
    ----------
    ceiling_bytes : int
        Past this the watch interrupts the run (SIGINT: pytest stops and reports what ran).
    """

    def __init__(self, ceiling_bytes: int) -> None:
        self.ceiling_bytes = ceiling_bytes
        self.current = "(collection)"
        self.peaks: dict[str, int] = {}
        self.stopped_at: str | None = None
        self._done = threading.Event()
        threading.Thread(target=self._sample, daemon=True, name="fuzz memory watch").start()

    def _sample(self) -> None:
        while not self._done.wait(SAMPLE_S):
            rss, test = resident_bytes(), self.current
            self.peaks[test] = max(self.peaks.get(test, 0), rss)
            if rss > self.ceiling_bytes and self.stopped_at is None:
                self.stopped_at = test
                os.kill(os.getpid(), signal.SIGINT)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.current = nodeid

    def pytest_terminal_summary(self, terminalreporter) -> None:
        self._done.set()
        write = terminalreporter.write_line
        write(f"peak resident memory per test (GB; ceiling {self.ceiling_bytes / GB:.1f}):")
        for test, peak in sorted(self.peaks.items(), key=lambda item: -item[1]):
            write(f"  {peak / GB:6.2f}  {test}")
        if self.stopped_at is not None:
            write(f"STOPPED: over the ceiling during {self.stopped_at}")
        out = Path("out/benchmarks")
        out.mkdir(parents=True, exist_ok=True)
        (out / "fuzz_memory.json").write_text(json.dumps(
            {"ceiling_gb": self.ceiling_bytes / GB, "stopped_at": self.stopped_at,
             "peak_gb": {test: peak / GB for test, peak in self.peaks.items()}}, indent=1))


def pytest_configure(config: pytest.Config) -> None:
    ceiling_gb = float(os.environ.get("SPINESIM_FUZZ_MAX_RSS_GB", "8"))
    config.pluginmanager.register(MemoryWatch(int(ceiling_gb * GB)), "fuzz-memory-watch")
