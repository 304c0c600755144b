"""The patients of one workstation: each attempt's anatomy and its tracer, loaded once and shared by
every attempt that has the same patient (a process keeps them for hours). An imported CT with vertebra
labels but no landmarks gets landmarks estimated from its labels
(:func:`anatomy_models.label_landmarks.with_label_landmarks`), as the patient pages do.

A case with a drawn patient gives each attempt the next patient of its pool
(:meth:`scenarios.schema.Scenario.patient_seeds`): :func:`next_patient_seed` picks it, and
:meth:`Patients.prepare` generates the one after it in the background (into the anatomy cache on
disk, and into memory with its tracer), so that starting the next attempt takes what the case's own
patient takes: generating a patient at 1 mm takes ~10 s on an idle machine, loading a cached one and
building its tracer a few seconds (benchmark: the report of issue 15).

The workstations of one server are processes of their own, and trainees at the same case have the same
patient: its CT and label map (read-only while anyone works) are kept once, in files every workstation
memory-maps read-only (:func:`shared_arrays`), so the operating system holds one copy of their pages for
all of them instead of one per workstation (measured: ``python -m benchmarks memory``).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from queue import SimpleQueue

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.home import spinesim_home
from anatomy_models.label_landmarks import with_label_landmarks
from anatomy_models.store import generated_anatomy, load_anatomy
from frontends.store import Store
from scenarios.schema import Scenario
from simulator.needle.trace import Tracer, tracer_for

# Patients held in memory at once: the attempt in progress, the next one (prepared), the one before
# (its report and replay) and a preview; older ones are loaded again from the disk cache when asked for.
PATIENTS_KEPT = 4
# Derived arrays at least this large are shared between workstations (shared_arrays); smaller ones are not worth
# a file of their own. 4 MB takes in the tracer's distance maps of the discs and the dural sac at 1 mm (10 and 5 MB;
# python -m benchmarks memory lists them).
SHARED_MIN_BYTES = 4 * 2**20
# The shared files kept on disk: each 1 mm patient takes ~220 MB, and a case with drawn patients has a pool of
# them, so the least recently used are deleted beyond this (a workstation that has one mapped keeps reading it:
# the pages stay until it lets go) [ED: ~18 patients at 1 mm].
SHARED_KEEP_BYTES = 4 * 2**30
# What a patient keeps of its per-pose images (the DRR and its water/bone paths per C-arm pose, a pose's frame
# facts, the ultrasound's recent scans: anatomy_models.derived's shelves), in all. Each shelf keeps its last few
# by count (32 poses' paths, 64 frames' facts), so together they grew with every pose a trainee tried, all day, to
# ~0.3 GB at 512 px (a pose's images: 6.4 MB at 512 px, python -m benchmarks memory). Past this the least recently
# used go, and a pose shot again is projected again [ED: 64 MB keeps ten poses at 512 px, four at 768].
SHELVED_BYTES = 64 * 2**20
# The key under which an anatomy keeps the arrays shared_arrays mapped (anatomy_models.derived).
_MAPPED = ("patients.mapped_arrays",)


class Patients:
    """Anatomies and their tracers, loaded once per patient and shared by every attempt."""

    def __init__(self, override: str | None) -> None:
        self.override = override
        self._loaded: OrderedDict[str, tuple[Anatomy, Tracer]] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: SimpleQueue[tuple[Scenario, bool]] = SimpleQueue()
        self._worker: threading.Thread | None = None

    def of(self, scenario: Scenario) -> tuple[Anatomy, Tracer]:
        """The patient of an attempt at ``scenario`` (:meth:`Scenario.for_attempt`): drawn from its
        patient seed, or the case's own."""
        key = self.override or _patient_key(scenario)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        anatomy = load_anatomy(self.override) if self.override else scenario.load_patient()
        anatomy = shared_arrays(compact_labels(with_label_landmarks(anatomy)), spinesim_home() / "shared")
        anatomy.derived.limit_shelves(SHELVED_BYTES)
        loaded = (anatomy, tracer_for(anatomy))
        with self._lock:
            self._loaded[key] = loaded
            while len(self._loaded) > PATIENTS_KEPT:
                self._loaded.popitem(last=False)
        return loaded

    def prepare(self, scenario: Scenario, *, hold: bool = False) -> None:
        """Generate the patient of ``scenario`` (:meth:`Scenario.for_attempt`) into the disk cache in the
        background, one at a time, unless it is an imported or overridden anatomy; ``hold``: also load
        it with its tracer into memory (the trainee's next attempt then starts at once)."""
        if self.override or scenario.anatomy.kind() not in ("builtin", "generator"):
            return
        self._queue.put((scenario, hold))
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._generate, name="patients", daemon=True)
                self._worker.start()

    def _generate(self) -> None:
        while True:
            scenario, hold = self._queue.get()
            if hold:
                self.of(scenario)
            else:
                generated_anatomy(scenario.anatomy.spine_parameters(seed=scenario.patient_seed))


def _patient_key(scenario: Scenario) -> str:
    return scenario.anatomy.model_dump_json() + f"#patient={scenario.patient_seed}"


def next_patient_seed(store: Store, user_id: int, scenario: Scenario) -> int:
    """The seed of the next attempt of ``user_id`` at ``scenario`` (:meth:`Scenario.for_attempt` gives
    its patient): the one of its pool after the one of their last attempt at it (the pool's first, the
    case's own patient, for a first attempt), so two attempts in a row never have the same patient
    (unless the case pins one)."""
    pool = scenario.patient_seeds()
    earlier = [a.seed for a in store.attempts(user_id=user_id, scenario_id=scenario.id)]
    last = pool.index(earlier[-1]) if earlier and earlier[-1] in pool else -1
    return pool[(last + 1) % len(pool)]


def shared_arrays(anatomy: Anatomy, folder: Path) -> Anatomy:
    """``anatomy`` with its CT and label map memory-mapped read-only from files in ``folder``, named by a hash
    of their content (written once, atomically, by the first workstation that loads the patient): the other
    workstations of the server map the same pages. The arrays' values are unchanged; a write into them raises
    (nothing writes into a patient's CT or labels once loaded). The anatomy's large derived arrays (the DRR's
    tables, the needle tracer's codes and distance maps) are shared the same way as they are made
    (:meth:`anatomy_models.derived.Derived.share_arrays`).

    Examples
    --------
    >>> import tempfile
    >>> from anatomy_models.volume import Volume
    >>> folder = Path(tempfile.mkdtemp())
    >>> ct = Volume.from_spacing(np.arange(-1000, 1048, dtype=np.int16).reshape(16, 16, 8), (2.0, 2.0, 2.0))
    >>> patient = Anatomy(ct, labels=ct.with_array(np.ones(ct.shape, np.uint8)))
    >>> values = patient.ct.array.copy()
    >>> shared = shared_arrays(patient, folder)
    >>> bool((shared.ct.array == values).all()), shared.ct.array.flags.writeable, len(list(folder.iterdir()))
    (True, False, 2)
    """
    mapped = anatomy.derived(_MAPPED, list)  # for release_mapped_pages

    def place(array: np.ndarray, kind: str) -> np.ndarray:
        mapped.append(_mapped(array, folder, kind))
        return mapped[-1]

    anatomy.ct = anatomy.ct.with_array(place(anatomy.ct.array, "ct"))
    if anatomy.labels is not None:
        anatomy.labels = anatomy.labels.with_array(place(anatomy.labels.array, "labels"))
    # The large tables the imaging and the needle derive from them (the DRR's projector tables: 182 MB per principal
    # axis for the 1 mm patient; the tracer's structure codes and distance maps, simulator.needle.trace) are the same
    # in every workstation too.
    anatomy.derived.share_arrays(lambda array: place(array, "derived"), min_bytes=SHARED_MIN_BYTES)
    return anatomy


def release_mapped_pages(anatomy: Anatomy) -> None:
    """Let go of the pages of ``anatomy``'s memory-mapped arrays (:func:`shared_arrays`) this process has read, when
    an attempt has ended: they stay in the system's file cache (shared, reclaimable), no longer counted in this
    workstation's memory, and the next image reads back those it needs (a minor fault a page while they are cached:
    ``python -m benchmarks memory`` measures the next shot). An attempt's AP and lateral each read a projector table
    of 182 MB at 1 mm: kept mapped, a workstation idle between attempts held both."""
    for array in anatomy.derived(_MAPPED, list):
        if array._mmap is not None:  # numpy's memmap keeps its mmap object there (None for an empty array)
            array._mmap.madvise(mmap.MADV_DONTNEED)


def _mapped(array: np.ndarray, folder: Path, kind: str, keep_bytes: int = SHARED_KEEP_BYTES) -> np.ndarray:
    """``array``'s values, read-only, memory-mapped from ``folder/<kind>-<content hash>.npy``; the folder is
    kept to ``keep_bytes`` (:func:`_prune`)."""
    digest = hashlib.blake2b(np.ascontiguousarray(array).data, digest_size=16)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    path = folder / f"{kind}-{digest.hexdigest()}.npy"
    folder.mkdir(parents=True, exist_ok=True)
    # One writer at a time in the folder: two workstations loading a new patient at once would otherwise each
    # find no file, each write one and map its own (both stay in memory: 0.39 GB each on a first run instead
    # of 0.31, python -m benchmarks memory). The second waits for the first's file and maps it.
    with _folder_lock(folder):
        try:
            os.utime(path)  # used now: the last to be deleted
        except FileNotFoundError:
            # Written under a name of this process's own, then renamed: a reader never maps half a file.
            temporary = folder / f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npy"
            np.save(temporary, array)
            os.replace(temporary, path)
            _prune(folder, keep_bytes, path)
        return np.load(path, mmap_mode="r")


@contextmanager
def _folder_lock(folder: Path):
    """An exclusive lock on ``folder`` among processes and threads (``flock`` on the folder itself: no lock
    file to leave behind; the kernel releases it if its holder dies)."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _prune(folder: Path, keep_bytes: int, newest: Path) -> None:
    """Delete the least recently used shared files of ``folder`` until it holds at most ``keep_bytes``
    (``newest``, just written, stays). Deleting a mapped file is safe: whoever maps it keeps its pages."""
    files = []
    for path in folder.glob("*.npy"):
        try:
            files.append((path.stat().st_mtime, path.stat().st_size, path))
        except FileNotFoundError:  # another workstation deleted it meanwhile
            continue
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= keep_bytes:
            break
        if path != newest and not path.name.startswith("."):
            path.unlink(missing_ok=True)
            total -= size


def compact_labels(anatomy: Anatomy) -> Anatomy:
    """``anatomy`` with its label map held in one byte per voxel where every id fits (the built-in
    spine has under 200 structures): a workstation keeps its patients for hours, and this halves the
    label map's memory. The ids, and so every structure, are unchanged."""
    labels = anatomy.labels
    fits = max((label.id for label in anatomy.label_table), default=0) < 256
    if labels is not None and labels.array.dtype.itemsize > 1 and fits:
        anatomy.labels = labels.with_array(labels.array.astype(np.uint8))
    return anatomy
