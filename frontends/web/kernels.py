"""The ultrasound's numba kernels compiled into numba's on-disk cache as the server starts, so that no trainee
waits for them.

numba compiles a kernel the first time a process calls it and keeps the machine code in its cache (``cache=True``:
beside the sources, or under ``NUMBA_CACHE_DIR``); a later process loads it from there. On a fresh installation
(or after an update changed the renderer's source) the cache is empty, and the first ultrasound frame a trainee
asked for cost its workstation the compile: 31 s of CPU, 90 s on a 2-core machine at load 8 and nearly 4 minutes at
load 15, with nothing on the page meanwhile (measured at stop 24 on the 1 mm patient). The workstations cannot compile
before they fork (:mod:`frontends.web.zygote`: a child of a process that has compiled a parallel kernel dies at its
first parallel loop), so the portal starts one ordinary child as it starts (:func:`start_compiling`), holding a lock
on a file in the portal's folder while it renders an ultrasound frame the way a workstation does (its patient
memory-mapped, a probe placed, a needle in: :func:`frontends.web.workstation.warm_up`). A workstation asked for its first frame
meanwhile waits for that child instead of compiling the same kernels beside it, and the page says so
(:class:`UltrasoundKernels`). Once compiled, a marker beside numba's cache names the renderer's source as it was
(:func:`compiled_marker`), so that the next start only checks it (0.8 s of CPU, the imports)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

LOCK_NAME = "ultrasound-kernels.lock"
# What the ultrasound monitor says while a workstation waits for the server's compile.
PREPARING_TEXT = ("Preparing the ultrasound for its first use on this server (compiling its imaging kernels, "
                  "about a minute)…")


def start_compiling(folder: Path, settings: dict, log: Path) -> subprocess.Popen:
    """Start the child that compiles the ultrasound kernels (``python -m frontends.web.compile_ultrasound``), holding an
    exclusive lock on ``folder / LOCK_NAME`` until it ends: taken here, before this returns, so that no workstation
    started after it can miss it. ``settings`` are the workstations' (the patient override, the scenario
    folders); the child's output goes to ``log``."""
    lock = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        command = [sys.executable, "-m", "frontends.web.compile_ultrasound", json.dumps(settings)]
        with open(log, "ab") as output:
            # The child's copy of the descriptor holds the lock (one open file, one lock) until it exits.
            return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                    pass_fds=(lock,))
    finally:
        os.close(lock)


class UltrasoundKernels:
    """A workstation's view of the server's compile: :meth:`wait` returns once it has ended (at once when it has,
    or when the workstation runs with no portal: ``folder`` None)."""

    def __init__(self, folder: str | Path | None) -> None:
        self._lock_path = None if folder is None else Path(folder) / LOCK_NAME
        self._ready = threading.Event()
        if self._lock_path is None or not self._lock_path.exists():
            self._ready.set()

    def wait(self, show: Callable[[str], None]) -> None:
        """Return once the server's compile has ended; if it has not yet, first ``show`` what the trainee waits for
        (:data:`PREPARING_TEXT`)."""
        if self._ready.is_set():
            return
        descriptor = os.open(self._lock_path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                show(PREPARING_TEXT)
                fcntl.flock(descriptor, fcntl.LOCK_SH)
        finally:
            os.close(descriptor)
        self._ready.set()


def compiled_marker() -> Path:
    """The file beside numba's cache of the ultrasound renderer that says its kernels were compiled from the source
    as it is now (its size and modification time, what numba's own index checks)."""
    from numba.core.registry import CPUDispatcher

    from simulator.imaging import ultrasound

    source = Path(ultrasound.__file__).stat()
    kernel = next(value for value in vars(ultrasound).values() if isinstance(value, CPUDispatcher))
    cache_folder = Path(kernel._cache._cache_path)  # numba's own choice: beside the source, or NUMBA_CACHE_DIR
    return cache_folder / f"spinesim-compiled-{source.st_size}-{source.st_mtime_ns}"
