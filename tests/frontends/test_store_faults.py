"""Fault injection at every write step of the attempts' database (issue 23): a trainee's next action, the
attempt's finish, an instructor's comment and a department case are written to an SQLite store while strace
makes the k-th file-system call on the database's files fail with "disk full" or I/O error, or kills the
process there, for every k. Afterwards the store opens, SQLite finds it intact, the attempt's earlier actions
are all there, and everything the writer was told was saved is there: a write that failed half-way loses
nothing that was acknowledged, and the writer hears a clear error, never an internal one.

The writer is a process forked from this one (no new interpreter per step) and stopped until strace is
attached to it, so each of the ~40 runs costs a fork and an strace, not an import of SQLAlchemy."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from anatomy_models.errors import SpinesimError
from frontends.store import Store

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(STRACE is None or not sys.platform.startswith("linux"),
                                reason="strace's fault injection (Debian's strace) on Linux")

# The calls by which SQLite changes its files (the database, its write-ahead log and shared index): a failure
# or a crash can come at any of them.
WRITE_CALLS = "openat,write,pwrite64,fsync,fdatasync,ftruncate,unlink"
# What each step reports to the test once the store has it (one byte per step through a pipe).
STEPS = ("action", "finished", "comment", "case")
CASE_YAML = "id: faults-case\n"


def _database(folder: Path) -> Path:
    """An attempt in progress with two actions, by trainee ben, and instructor ada: the state before the writes."""
    path = folder / "pristine.db"
    store = Store(f"sqlite:///{path}")
    store.add_user("ada", "instructor", "correct horse")
    ben = store.add_user("ben", "trainee", "battery staple")
    attempt = store.start_attempt(ben.id, "tfesi-default", 7)
    store.append_action(attempt, 1, {"type": "start", "t": 0.0})
    store.append_action(attempt, 2, {"type": "fluoro_shot", "t": 1.0})
    store.engine.dispose()
    with sqlite3.connect(path) as db:  # everything in the main file, no write-ahead log left beside it
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _writes(store: Store, report: int) -> None:
    """The writes under test, each acknowledged on ``report`` once the store returned."""
    store.append_action(1, 3, {"type": "fluoro_shot", "t": 3.0})
    os.write(report, b"a")
    store.finish_attempt(1, {"grade": 90.0, "passed": True})
    os.write(report, b"f")
    store.add_comment(1, store.user("ada").id, "Check the lateral before injecting.", step=3)
    os.write(report, b"c")
    store.save_case("faults-case", CASE_YAML, by="ada")
    os.write(report, b"s")
    store.engine.dispose()


def _run_writer(path: Path, inject: str | None) -> tuple[str, str, set[str]]:
    """Run :func:`_writes` on ``path`` in a forked process under strace (``inject``: strace's ``-e inject=``
    argument, or None to count). Returns how it ended ('ok', 'error', 'internal' or 'killed'), strace's
    output, and the steps it acknowledged."""
    reads, report = os.pipe()
    error_file = path.with_suffix(".error")
    child = os.fork()
    if child == 0:  # the writer: wait for strace, write, exit without running the test's cleanup
        os.close(reads)
        code = 0
        try:
            store = Store(f"sqlite:///{path}")  # opened (and its connection pooled) before strace counts
            store.user("ada")
            os.kill(os.getpid(), signal.SIGSTOP)
            _writes(store, report)
        except SpinesimError as error:
            error_file.write_text(str(error))
            code = 3
        except BaseException as error:  # noqa: BLE001 - anything else is an internal error: reported as such
            error_file.write_text(f"{type(error).__name__}: {error}")
            code = 4
        os._exit(code)
    os.close(report)
    os.waitpid(child, os.WUNTRACED)
    files = [str(path), f"{path}-wal", f"{path}-shm", f"{path}-journal"]
    command = [STRACE, "-f", "-p", str(child), "-e", f"trace={WRITE_CALLS}", *[f"-P{file}" for file in files]]
    if inject:
        command += ["-e", f"inject={inject}"]
    tracer = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert "attached" in tracer.stderr.readline()  # strace holds the writer before it runs on
    os.kill(child, signal.SIGCONT)
    _, status = os.waitpid(child, 0)
    trace = tracer.communicate(timeout=60)[1]
    acknowledged = os.read(reads, 16).decode()
    os.close(reads)
    steps = {name for letter, name in zip("afcs", STEPS) if letter in acknowledged}
    if os.WIFSIGNALED(status):
        return "killed", trace, steps
    code = os.WEXITSTATUS(status)
    return {0: "ok", 3: "error", 4: "internal"}.get(code, f"exit {code}"), trace, steps


def _check_store(path: Path, acknowledged: set[str], label: str) -> None:
    """The store opens, SQLite finds it intact, nothing acknowledged is missing, nothing is half there."""
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", label
    store = Store(f"sqlite:///{path}")
    try:
        actions = store.actions(1)
        assert [a["t"] for a in actions[:2]] == [0.0, 1.0], label  # the attempt's earlier actions are kept
        assert len(actions) in (2, 3), label
        if "action" in acknowledged:
            assert len(actions) == 3 and actions[2]["type"] == "fluoro_shot", label
        attempt = store.attempt(1)
        if "finished" in acknowledged:
            assert attempt.status == "finished" and attempt.report["grade"] == 90.0, label
        else:
            assert attempt.status in ("in_progress", "finished"), label
        comments = store.comments(1)
        assert len(comments) <= 1 and ("comment" not in acknowledged or comments[0].step == 3), label
        cases = {case.scenario_id: case.yaml_text for case in store.cases()}
        assert cases in ({}, {"faults-case": CASE_YAML}) and ("case" not in acknowledged or cases), label
    finally:
        store.engine.dispose()


def _fresh_copy(pristine: Path, folder: Path, name: str) -> Path:
    path = folder / f"{name}.db"
    for stale in [*folder.glob(f"{name}.db*"), folder / f"{name}.error"]:
        stale.unlink(missing_ok=True)
    shutil.copyfile(pristine, path)
    return path


@pytest.mark.parametrize("fault", ["error=ENOSPC", "signal=SIGKILL"])
def test_every_fault_while_writing_an_attempt_keeps_the_store_intact_and_nothing_acknowledged_lost(tmp_path, fault):
    pristine = _database(tmp_path)
    outcome, trace, acknowledged = _run_writer(_fresh_copy(pristine, tmp_path, "counted"), None)
    assert outcome == "ok" and acknowledged == set(STEPS), trace
    # strace counts each call apart: the k-th pwrite64, the k-th fdatasync...
    calls = [line.split("(")[0].split()[-1] for line in trace.splitlines() if "(" in line and not line.startswith("---")]
    steps = [(call, k) for call in dict.fromkeys(calls) for k in range(1, calls.count(call) + 1)]
    assert len(steps) >= 8, trace  # the log's frames and syncs of four commits, at the least
    outcomes = {}
    for call, k in steps:
        path = _fresh_copy(pristine, tmp_path, "faulty")
        outcome, trace, acknowledged = _run_writer(path, f"{call}:{fault}:when={k}")
        label = f"{fault} at {call} number {k} ({outcome}; acknowledged {sorted(acknowledged)})"
        assert "INJECTED" in trace or "+++ killed by SIGKILL" in trace, f"{label}: no fault made\n{trace}"
        error_file = path.with_suffix(".error")
        assert outcome in (("killed",) if "signal" in fault else ("ok", "error")), \
            f"{label}: {error_file.read_text() if error_file.exists() else trace}"
        if outcome == "error":  # the writer was told, naming the database and what to do
            message = error_file.read_text()
            assert str(path) in message and "disk" in message, message
        _check_store(path, acknowledged, label)
        outcomes[call, k] = outcome
    assert set(outcomes.values()) >= ({"killed"} if "signal" in fault else {"error"}), outcomes
