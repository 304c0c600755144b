"""Workstations forked from one process that has already imported them (a zygote), so that every
workstation of a server shares the pages of the imported modules copy-on-write instead of each holding
its own (issue 20: importing costs a workstation ~110 MB, most of it Python objects private to each
process; ``python -m benchmarks memory`` measures what a workstation costs with and without).

The zygote is Python's fork server (:mod:`multiprocessing`'s ``forkserver`` start method): a process the
portal starts once, which imports :data:`PRELOADED` and then forks a child for each workstation asked
for. It is single-threaded and holds no socket, event loop, database connection or patient when it forks;
each workstation opens its own after the fork. The numba kernels are *not* compiled in it: with numba's
GNU OpenMP threading layer, a child of a process that has compiled a parallel kernel terminates at its
first parallel loop ("fork() called from a process already using GNU OpenMP, this is unsafe"; measured
here with numba 0.68: compiling alone is enough), and the workqueue layer, which forks safely, aborts
when two threads of a workstation image at once.

Stopping: the portal stops its workstations as it stops (Ctrl-C, SIGTERM), and a workstation ends on SIGTERM
as a process of multiprocessing's should, through its exit handlers (:func:`stop_cleanly_on_terminate`); however
the portal ends (killed too),
Linux kills the zygote when the portal dies and each workstation when the zygote dies
(:func:`frontends.web.portal_link.die_with_parent`, :mod:`frontends.web.zygote_ready`): no workstation outlives
its portal. The zygote is started from the portal's main thread (its event loop): Linux's parent-death
signal follows the thread that started it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from pathlib import Path

# What a workstation imports before its first page (frontends.web.workstation and what its warm-up, its
# handlers and its reports import when first used), imported once in the zygote. click and rich: the fork
# server runs the portal's main module (``python -m frontends.cli serve``) again in each child
# (multiprocessing's preparation of a child), so the command line's libraries are better shared than
# imported in each; frontends.cli itself is not preloaded (runpy warns when the module it runs is loaded).
# Last, frontends.web.zygote_ready makes the zygote die with the portal and freezes what is imported (a
# workstation's garbage collections then leave its pages shared).
PRELOADED = ("frontends.web.workstation", "frontends.web.layout", "frontends.report",
             "scoring.report", "simulator.case.planner", "simulator.case.targets", "simulator.imaging.probe",
             "simulator.session.replay", "simulator.session.scans", "simulator.session.shots", "trame.app",
             "click", "rich.console", "rich.progress", "frontends.web.zygote_ready")


def zygote() -> multiprocessing.context.BaseContext:
    """The fork server's context, its preloaded modules set (it starts with the first workstation)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOADED))
    return context


class ForkedWorkstation:
    """A workstation process forked by the zygote, with the parts of :class:`subprocess.Popen` the portal
    uses: ``stdin`` (a spare's assignment is written there), ``poll``, ``wait``, ``terminate``, ``kill`` and
    ``returncode``. It is forked in a thread of its own (:meth:`_fork`): until the zygote has imported
    everything (seconds, more on a busy server), asking it for a child waits, and the portal's event loop must
    not. Meanwhile it counts as running; stopped meanwhile, it is stopped as soon as it exists."""

    _forking = threading.Lock()  # multiprocessing's bookkeeping of children is not thread-safe

    def __init__(self, process: multiprocessing.Process, stdin, given: list[Connection]) -> None:
        self.process, self.stdin = process, stdin
        self._stopped: int | None = None  # the signal asked for before the process existed
        self._started, self._lock = False, threading.Lock()
        self._forked = threading.Thread(target=self._fork, args=(given,), name="fork a workstation", daemon=True)
        self._forked.start()

    def _fork(self, given: list[Connection]) -> None:
        with self._forking:
            self.process.start()
        for connection in given:  # the child has its own copies now
            connection.close()
        with self._lock:
            self._started, stopped = True, self._stopped
        if stopped is not None:
            os.kill(self.process.pid, stopped)

    @property
    def returncode(self) -> int | None:
        return None if self._forked.is_alive() else self.process.exitcode

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._forked.join(timeout)
        if not self._forked.is_alive():
            self.process.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"workstation {self.process.name}", timeout)
        return self.returncode

    def _signal(self, number: int) -> None:
        with self._lock:
            self._stopped, started = number, self._started
        if started and self.process.exitcode is None:
            os.kill(self.process.pid, number)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)


def start_workstation(settings: dict, log: Path, *, spare: bool, warm_fd: int | None = None) -> ForkedWorkstation:
    """Fork a workstation (:func:`frontends.web.workstation.main`) from the zygote with ``settings`` (what
    :class:`frontends.web.workstation.WorkstationConfig` reads), its output appended to ``log``; a ``spare``
    reads its assignment from the returned process's ``stdin`` and says it is warm on ``warm_fd`` (this
    process's end stays open here: close it). Call it from the portal's main thread: the zygote, started by
    the first call, dies with the thread that started it (:mod:`frontends.web.zygote_ready`)."""
    context = zygote()
    forkserver.ensure_running()  # started here, in this thread (it does not wait for the imports)
    given = []
    stdin = None
    if spare:
        reading, writing = os.pipe()
        given.append(Connection(reading, writable=False))
        stdin = open(writing, "wb")
    if warm_fd is not None:
        given.append(Connection(os.dup(warm_fd), readable=False))
    process = context.Process(target=_workstation, args=(settings, str(log), spare, *given),
                              name="spinesim-workstation", daemon=True)
    return ForkedWorkstation(process, stdin, given)


def stop_cleanly_on_terminate() -> None:
    """Make SIGTERM end this forked process by ``SystemExit``, so multiprocessing runs its exit handlers.

    numba, launching its threads in a child of the fork server, takes a multiprocessing lock: a named
    semaphore that multiprocessing's resource tracker (shared with the portal) records, and that the
    lock's exit handler removes. Killed by SIGTERM's default action, a workstation never ran it, and the
    tracker, ending with the portal, warned "There appear to be 1 leaked semaphore objects to clean up at
    shutdown" (issue 23; tests/frontends/web/test_zygote_stop.py).
    """
    def terminate(number, _frame) -> None:
        raise SystemExit(128 + number)

    signal.signal(signal.SIGTERM, terminate)


def _workstation(settings: dict, log: str, spare: bool, *given: Connection) -> None:
    """In the forked child: the log as standard output and error, a spare's assignment pipe as standard input
    and its warm pipe's descriptor in the settings, then the workstation's main (stopped cleanly by SIGTERM)."""
    stop_cleanly_on_terminate()
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for descriptor in (1, 2):
        os.dup2(output, descriptor)
    os.close(output)
    given = list(given)
    if spare:
        os.dup2(given.pop(0).fileno(), 0)
        sys.stdin = open(0, closefd=False)
    if given:
        settings = dict(settings, warm_fd=os.dup(given.pop(0).fileno()))
    os.environ.update(SPINESIM_WORKSTATION=json.dumps(settings), TRAME_SERVER="1")
    from frontends.web.workstation import main

    main()
