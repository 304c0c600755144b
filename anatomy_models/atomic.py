"""Writes that land whole or not at all, and recovery from a write that a crash cut short.

A file is written to a hidden temporary beside it, flushed to disk and renamed over the old one in
one atomic step. A folder is written to a hidden staging folder and flushed; then the old folder is
renamed to a hidden backup, the new one renamed into place, and only then the backup deleted. An
error at any step undoes it (the old copy is put back); a crash can stop it anywhere, and the next
:func:`recover` of that path (every atomic write and the anatomy store call it first) puts the
backup back if the folder is missing and deletes what is left over. So the old or the new copy is
always there.

Two writers of the same folder at once (two imports saving the same name, two exports to one place)
commit one after the other: the renames that swap a copy in run under an exclusive lock on the folder
that holds it (:func:`fcntl.flock` on a lock file named for the folder in the user's temporary folder,
so that nothing is left in the user's own folders; the last writer's copy wins, whole). Writing into
the staging copy is not locked.

Leftovers are named ``.~<pid>-<random>.<tmp|old>.<name>``: the writer's process id lets recovery
leave alone what a live process is still writing, and the name ends with the target's name, so a
temporary file keeps its suffix (some writers choose the format from it: ``.nii.gz``, ``.nrrd``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from anatomy_models.errors import SpinesimError

_LEFTOVER = re.compile(r"^\.~(?P<pid>\d+)-[0-9a-f]{8}\.(?P<kind>tmp|old)\.(?P<name>.+)$")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    Raises
    ------
    SpinesimError
        If the file cannot be written (a missing or read-only folder, a full disk, an I/O error);
        ``path`` is then unchanged.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    with atomic_files([Path(path)]) as (temporary,):
        yield temporary


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it takes the place of ``path`` (old content removed).

    The old folder is kept as a hidden backup until the new one is in place, so an error or a crash
    at any step leaves the old or the new folder whole (after :func:`recover`, for a crash).

    Raises
    ------
    SpinesimError
        If the folder cannot be written; ``path`` then holds its old content.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "folder"
    >>> with atomic_directory(target) as staging:
    ...     _ = (staging / "a.txt").write_text("new")
    >>> sorted(p.name for p in target.iterdir())
    ['a.txt']
    """
    path = Path(path)
    recover(path)
    staging = _leftover_path(path, "tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        yield staging
        _fsync_tree(staging)
        with exclusive_lock(path.parent):
            _swap_in(staging, path)
    except OSError as error:
        raise _write_error(path, error) from None
    finally:
        _remove(staging)


@contextmanager
def atomic_files(paths: list[Path]) -> Iterator[list[Path]]:
    """Yield one temporary path per target; on success they all replace their targets, on an error none does.

    Each old file is hard-linked (or copied) to a hidden backup, then the new one renamed over it, so a
    target is never missing; an error while committing puts the old files back. A crash while
    committing can leave some targets new and some old, each whole.

    Raises
    ------
    SpinesimError
        If a file cannot be written; the targets then hold their old content.
    """
    paths = [Path(path) for path in paths]
    for path in paths:
        recover(path)
    temporaries = [_leftover_path(path, "tmp") for path in paths]
    backups = [_leftover_path(path, "old") for path in paths]
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
        yield temporaries
        for temporary in temporaries:
            _fsync(temporary)
        with exclusive_lock(paths[0].parent):
            _commit(list(zip(temporaries, paths, backups)))
    except OSError as error:
        raise _write_error(paths[0] if len(paths) == 1 else paths[0].parent, error) from None
    finally:
        for leftover in temporaries + backups:
            _remove(leftover)


def recover(path: str | Path) -> None:
    """Undo or finish an atomic write of ``path`` that a crashed process left half done.

    If ``path`` is missing and a dead writer left a backup of it, the newest backup is put back;
    every other leftover of a dead writer (staging folders, temporary files, stale backups) is
    deleted. Leftovers of live processes are left alone.

    Raises
    ------
    SpinesimError
        If the leftovers cannot be renamed or read.
    """
    path = Path(path)
    try:
        leftovers = [entry for entry in _dead_leftovers(path.parent)
                     if _LEFTOVER.match(entry.name)["name"] == path.name]
        backups = sorted((entry for entry in leftovers if _LEFTOVER.match(entry.name)["kind"] == "old"),
                         key=lambda entry: entry.lstat().st_mtime, reverse=True)
        if backups and not os.path.lexists(path):
            os.replace(backups[0], path)
            leftovers.remove(backups[0])
    except OSError as error:
        raise SpinesimError(f"an interrupted write could not be recovered ({error.strerror or error})", path=path,
                            hint="check the folder's permissions and the disk, then try again") from None
    for entry in leftovers:
        _remove(entry)


def recover_folder(folder: str | Path) -> None:
    """:func:`recover` every path in ``folder`` that a crashed writer left leftovers of."""
    for name in sorted({_LEFTOVER.match(entry.name)["name"] for entry in _dead_leftovers(Path(folder))}):
        recover(Path(folder) / name)


def _leftover_path(path: Path, kind: str) -> Path:
    return path.with_name(f".~{os.getpid()}-{uuid.uuid4().hex[:8]}.{kind}.{path.name}")


def _dead_leftovers(folder: Path) -> list[Path]:
    """Leftovers in ``folder`` whose writer is no longer running."""
    try:
        entries = list(folder.iterdir())
    except OSError:  # a missing or unreadable folder holds nothing to recover
        return []
    return [entry for entry in entries
            if (match := _LEFTOVER.match(entry.name)) and not process_alive(int(match["pid"]))]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (this process, and any on Windows, count as running: their
    leftovers are kept)."""
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill would end the process, so keep its leftovers
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


@contextmanager
def exclusive_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (blocking until another process or thread holding it lets
    go): the commits of writers into it, or the one generation of a cached patient. Where the system
    has no ``flock`` (Windows), nothing is serialised."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    locks = Path(tempfile.gettempdir()) / f"spinesim-locks-{os.getuid()}"
    locks.mkdir(mode=0o700, exist_ok=True)
    name = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    descriptor = os.open(locks / f"{name}.lock", os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _swap_in(staging: Path, path: Path) -> None:
    """Rename ``staging`` to ``path``, keeping the old ``path`` as a backup until the new one is in place."""
    backup = _leftover_path(path, "old")
    if os.path.lexists(path):
        os.replace(path, backup)
    try:
        os.replace(staging, path)
        _fsync(path.parent)
    except BaseException:
        if os.path.lexists(backup):  # put the old copy back (if this fails too, recover() does it next time)
            if not os.path.lexists(staging):
                os.replace(path, staging)  # the new copy made it in: out again, to be deleted
            os.replace(backup, path)
        raise
    _remove(backup)


def _commit(moves: list[tuple[Path, Path, Path]]) -> None:
    """Move each (temporary, target, backup)'s temporary over its target, keeping the old target in the
    backup until all are in place; on an error every target gets its old content back."""
    replaced: list[tuple[Path, Path | None]] = []  # (target, its backup; None if it did not exist before)
    try:
        for temporary, path, backup in moves:
            existed = os.path.lexists(path)
            if existed:
                _backup(path, backup)
            os.replace(temporary, path)
            replaced.append((path, backup if existed else None))
        for folder in {path.parent for _, path, _ in moves}:
            _fsync(folder)
    except BaseException:
        for path, backup in reversed(replaced):
            if backup is None:
                _remove(path)
            else:
                os.replace(backup, path)
        raise


def _backup(path: Path, backup: Path) -> None:
    """A second name for the old file (a hard link), or a copy where the file system has no links."""
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk, so that a rename never publishes data still in memory only."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            _fsync(Path(root) / name)
        _fsync(Path(root))


def _remove(path: Path) -> None:
    """Delete a leftover file or folder; one that cannot be deleted now is retried by the next recover()."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _write_error(path: Path, error: OSError) -> SpinesimError:
    return SpinesimError(f"cannot be written ({error.strerror or error})", path=path,
                         hint="check that its folder can be written and the disk has space; "
                              "the previous copy, if any, is kept")
