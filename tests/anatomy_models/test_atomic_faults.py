"""Fault injection at every write and rename step: replacing a stored anatomy, writing a DICOM series and
exporting NRRD/NIfTI, with an I/O error or a crash at the k-th step for every k. Afterwards (and after
the next start's recovery, for a crash) the old or the new copy is whole, and nothing is left over."""

import builtins
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import nrrd
import numpy as np
import pytest

import anatomy_models.atomic as atomic
from anatomy_models.anatomy import Anatomy
from anatomy_models.dicom import read_dicom_series, write_dicom_series
from anatomy_models.errors import SpinesimError
from anatomy_models.exports import export_anatomy
from anatomy_models.home import spinesim_home
from anatomy_models.store import anatomy_directory, load_anatomy, save_anatomy, stored_anatomy_names
from anatomy_models.volume import Volume
from tests.anatomy_models.test_anatomy import ball_anatomy


@pytest.fixture(autouse=True)
def no_flush(monkeypatch):
    """fsync stays a step that can fail, but flushes nothing: durability is not what these tests measure,
    and a real flush costs tens of milliseconds on a virtual disk."""
    monkeypatch.setattr(os, "fsync", lambda descriptor: None)


class Crash(BaseException):
    """The process dies here: nothing after this step runs, not even cleanup."""


# Every call that changes the file system; open() counts only when it opens for writing.
_STEPS = [(os, "replace"), (os, "rename"), (os, "link"), (os, "fsync"), (os, "mkdir"), (os, "unlink"), (os, "rmdir"),
          (shutil, "rmtree"), (shutil, "copy2"), (builtins, "open"), (io, "open")]


@contextmanager
def faults(at_step: int | None, kind: str):
    """Count the file-system steps; the ``at_step``-th raises EIO (``kind="eio"``) or crashes the
    process (``kind="crash"``: that step and every later one raise :class:`Crash`). Yields the count."""
    count = [0]
    crashed = [False]

    def wrap(function):
        def step(*args, **kwargs):
            mode = str(args[1] if len(args) > 1 else kwargs.get("mode", "r"))
            if function in (builtins.open, io.open) and not set(mode) & set("wax+"):
                return function(*args, **kwargs)
            if crashed[0]:
                raise Crash()
            count[0] += 1
            if count[0] == at_step:
                if kind == "crash":
                    crashed[0] = True
                    raise Crash()
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return function(*args, **kwargs)
        return step

    originals = [(module, name, getattr(module, name)) for module, name in _STEPS]
    for module, name, function in originals:
        setattr(module, name, wrap(function))
    try:
        yield count
    finally:
        for module, name, function in originals:
            setattr(module, name, function)


def count_steps(write) -> int:
    with faults(None, "eio") as count:
        write()
    return count[0]


def run_with_fault(write, step: int, kind: str) -> str:
    """Run ``write`` with a fault at ``step``: 'ok', 'error' (a SpinesimError) or 'crash'."""
    try:
        with faults(step, kind):
            write()
    except SpinesimError:
        return "error"
    except Crash:
        return "crash"
    return "ok"


@contextmanager
def next_start(monkeypatch):
    """A new process: the leftovers' writer (this test process) counts as dead."""
    with monkeypatch.context() as patch:
        patch.setattr(atomic, "process_alive", lambda pid: False)
        yield


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".~*"))


def anatomy_version(source: str) -> Anatomy:
    anatomy = ball_anatomy()
    anatomy.metadata["source"] = source
    anatomy.ct.array[0, 0, 0] = 1 if source == "old" else 2
    return anatomy


@pytest.mark.parametrize("kind", ["eio", "crash"])
def test_every_fault_while_replacing_a_stored_anatomy_keeps_the_old_or_the_new(monkeypatch, kind):
    name = f"faulty-{kind}"
    new = anatomy_version("new")
    save_anatomy(anatomy_version("old"), name)
    steps = count_steps(lambda: save_anatomy(new, name))
    assert steps >= 10  # folder, files, fsyncs, renames, the backup's removal
    outcomes = set()
    for step in range(1, steps + 1):
        save_anatomy(anatomy_version("old"), name)
        outcome = run_with_fault(lambda: save_anatomy(new, name), step, kind)
        outcomes.add(outcome)
        if outcome == "error":  # the user was told, and nothing changed
            assert load_anatomy(name).metadata["source"] == "old", f"step {step}"
        with next_start(monkeypatch):
            assert name in stored_anatomy_names()
            back = load_anatomy(name)
        assert back.metadata["source"] in ("old", "new"), f"step {step}"
        assert int(back.ct.array[0, 0, 0]) == (1 if back.metadata["source"] == "old" else 2)
        assert leftovers(spinesim_home() / "anatomies") == [], f"step {step}"
    assert outcomes == ({"ok", "error"} if kind == "eio" else {"crash"})


def test_a_crash_at_the_final_rename_restores_the_old_anatomy_on_the_next_start(monkeypatch):
    name = "final-rename"
    save_anatomy(anatomy_version("old"), name)
    real_replace = os.replace

    def die_at_the_final_rename(source, target):
        if Path(target) == anatomy_directory(name):
            raise Crash()
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", die_at_the_final_rename)
    monkeypatch.setattr(atomic, "_remove", lambda path: None)  # a dead process cleans nothing up
    with pytest.raises(Crash):
        save_anatomy(anatomy_version("new"), name)
    monkeypatch.undo()
    assert not anatomy_directory(name).exists()  # between the two renames: only the backup holds it
    with next_start(monkeypatch):
        assert load_anatomy(name).metadata["source"] == "old"
    assert leftovers(spinesim_home() / "anatomies") == []


@pytest.mark.parametrize("lasting", [False, True])
def test_an_error_at_the_final_rename_puts_the_old_anatomy_back(monkeypatch, lasting):
    name = f"final-rename-error-{lasting}"
    save_anatomy(anatomy_version("old"), name)
    real_replace = os.replace
    failures = []

    def fail_at_the_final_rename(source, target):
        if Path(target) == anatomy_directory(name) and (lasting or not failures):
            failures.append(target)
            raise OSError(errno.EIO, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", fail_at_the_final_rename)
    with pytest.raises(SpinesimError, match=f"{name}: cannot be written .Input/output error.*previous copy"):
        save_anatomy(anatomy_version("new"), name)
    monkeypatch.undo()
    if lasting:  # the backup could not be put back either: the next start does it
        assert not anatomy_directory(name).exists()
        with next_start(monkeypatch):
            assert load_anatomy(name).metadata["source"] == "old"
    assert load_anatomy(name).metadata["source"] == "old"
    assert leftovers(spinesim_home() / "anatomies") == []


def test_a_live_writers_leftovers_are_left_alone(tmp_path):
    target = tmp_path / "ball"
    staging = tmp_path / f".~{os.getpid()}-0123abcd.tmp.ball"
    staging.mkdir()
    atomic.recover(target)
    assert staging.is_dir()


@pytest.mark.parametrize("kind", ["eio", "crash"])
def test_every_fault_while_writing_a_dicom_series_keeps_the_old_or_the_new(tmp_path, monkeypatch, kind):
    volume = Volume.from_spacing(np.arange(24, dtype=np.int16).reshape(2, 3, 4), (0.5, 0.5, 2.0))
    folder = tmp_path / "series"
    steps = count_steps(lambda: write_dicom_series(volume, tmp_path / "counted"))
    for step in range(1, steps + 1):
        shutil.rmtree(folder, ignore_errors=True)
        run_with_fault(lambda: write_dicom_series(volume, folder), step, kind)
        with next_start(monkeypatch):
            atomic.recover(folder)
        if folder.exists():  # a series is all there or not at all
            np.testing.assert_array_equal(read_dicom_series(folder).volume.array, volume.array)
        assert leftovers(tmp_path) == [], f"step {step}"


def _export_version(folder: Path) -> tuple[str, str, str]:
    """Which export (old or new) each of the CT, the label map and the label table comes from."""
    ct = nrrd.read(str(folder / "ct.nrrd"))[0][0, 0, 0]
    segment = nrrd.read_header(str(folder / "labels.seg.nrrd"))["Segment0_Name"]
    table = json.loads((folder / "labels.json").read_text())[0]["name"]
    return ("old" if ct == 1 else "new", "old" if segment == "L3" else "new", "old" if table == "L3" else "new")


@pytest.mark.parametrize("kind", ["eio", "crash"])
def test_every_fault_while_replacing_an_export_keeps_the_old_or_the_new(tmp_path, monkeypatch, kind):
    old, new = anatomy_version("old"), anatomy_version("new")
    new.label_table = type(new.label_table).from_list([{"id": 1, "name": "L4", "tissue": "cortical_bone"}])
    folder = tmp_path / "export"
    steps = count_steps(lambda: export_anatomy(new, "nrrd", tmp_path / "counted"))
    for step in range(1, steps + 1):
        export_anatomy(old, "nrrd", folder)
        outcome = run_with_fault(lambda: export_anatomy(new, "nrrd", folder), step, kind)
        with next_start(monkeypatch):
            atomic.recover_folder(folder)
        versions = _export_version(folder)
        if outcome != "crash":  # an error leaves the whole old set, success the whole new set
            assert versions in (("old",) * 3, ("new",) * 3), f"step {step}: {versions}"
        assert leftovers(tmp_path) == [], f"step {step}"


SAVE_SCRIPT = """
import sys
import numpy as np
from anatomy_models.anatomy import Anatomy
from anatomy_models.store import save_anatomy
from anatomy_models.volume import Volume
save_anatomy(Anatomy(ct=Volume(np.zeros((4, 4, 4), np.int16), np.eye(4)), metadata={"source": sys.argv[1]}), "strace")
"""
# The system calls of that save (strace -e trace=...): 3 renames (ct.nrrd into the staging folder, the old
# folder to its backup, the staging folder into place), 6 fsyncs (the last after the swap), then the
# backup's files unlinked and its folder removed.
KILL_POINTS = [("rename", 2), ("rename", 3), ("fsync", 6), ("unlinkat", 1)]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_a_process_killed_at_every_rename_loses_nothing(tmp_path, monkeypatch):
    """The real thing: strace kills the saving process at a rename(2), fsync(2), unlink or rmdir."""
    monkeypatch.setenv("SPINESIM_HOME", str(tmp_path))
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "PYTHONDONTWRITEBYTECODE": "1"}
    script = [sys.executable, "-c", SAVE_SCRIPT]
    for syscall, when in KILL_POINTS:
        save_anatomy(Anatomy(ct=Volume(np.zeros((4, 4, 4), np.int16), np.eye(4)), metadata={"source": "old"}), "strace")
        killed = subprocess.run(["strace", "-f", "-qq", "-o", os.devnull,
                                 "-e", f"inject={syscall}:error=EIO:signal=KILL:when={when}", *script, "new"],
                                env=environment, capture_output=True, text=True, timeout=60)
        assert killed.returncode != 0, f"{syscall} {when} was not reached: {killed.stderr[-300:]}"
        assert load_anatomy("strace").metadata["source"] in ("old", "new"), f"{syscall} {when}"
        assert leftovers(tmp_path / "anatomies") == [], f"{syscall} {when}"
