"""Workstations of one server share their patient (issue 20): two workstations with the same patient map its
CT, label map, DRR projector table and the needle tracer's structure codes and distance maps from the same
read-only files instead of each holding a copy, and see exactly the values (and images) a private copy gives."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np

import frontends.web.patients as patients_module
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from simulator.imaging.carm import CArm
from simulator.imaging.drr import anatomy_basis_line_integrals
from simulator.imaging.fluoro import render_fluoro
from simulator.needle.trace import Tracer
from tests.frontends.web.conftest import ANATOMY


def _mapped_file(array: np.ndarray) -> str | None:
    """The file ``array`` is memory-mapped from, or None for memory of its own."""
    while array is not None and not isinstance(array, np.memmap):
        array = array.base if isinstance(array.base, np.ndarray) else None
    return None if array is None else str(array.filename)


def test_two_workstations_of_a_patient_map_its_arrays_from_the_same_files(patient, monkeypatch):
    # The 2 mm patient's arrays are under the 1 mm patient's threshold (its DRR table is 16 MB, its sac's distance
    # map 0.3 MB).
    monkeypatch.setattr(patients_module, "SHARED_MIN_BYTES", 2**16)
    scenario = library_scenarios()["ilesi-default"]
    (first, first_tracer), (second, second_tracer) = Patients(ANATOMY).of(scenario), Patients(ANATOMY).of(scenario)
    for name in ("ct", "labels"):
        ours, theirs = getattr(first, name).array, getattr(second, name).array
        assert _mapped_file(ours) is not None and _mapped_file(ours) == _mapped_file(theirs)
        assert not ours.flags.writeable and np.array_equal(ours, getattr(patient, name).array)
    carm = CArm(primary_deg=20.0, secondary_deg=-5.0, isocenter=patient.landmarks["L4-L5.interlaminar_window.center"])
    images = [render_fluoro(anatomy, carm, dose=None).pixels for anatomy in (first, second, patient)]
    assert np.array_equal(images[0], images[2]) and np.array_equal(images[1], images[2])
    tables = [anatomy.derived(("drr.basis_table", "joseph", 1), lambda: None) for anatomy in (first, second)]
    assert _mapped_file(tables[0].table) is not None and _mapped_file(tables[0].table) == _mapped_file(tables[1].table)
    private = Tracer(patient)
    assert _mapped_file(first_tracer.codes) is not None and _mapped_file(first_tracer.codes) == _mapped_file(
        second_tracer.codes) and np.array_equal(first_tracer.codes, private.codes)
    points = np.array([patient.landmarks["L4-L5.interlaminar_window.center"]]) + np.linspace(-20, 20, 9)[:, None]
    distances = [tracer.distance_to(("dural_sac",), points) for tracer in (first_tracer, second_tracer, private)]
    assert np.array_equal(distances[0], distances[2]) and np.array_equal(distances[1], distances[2])
    maps = [anatomy.derived(("trace.distance", ("dural_sac",)), lambda: None).distance_mm for anatomy in (first, second)]
    assert _mapped_file(maps[0]) is not None and _mapped_file(maps[0]) == _mapped_file(maps[1])


def test_the_shared_files_are_kept_to_their_budget_and_a_mapped_one_deleted_still_reads(tmp_path):
    """Drawn patients each add their files: beyond the budget the least recently used go (a workstation that
    maps one keeps reading it), the file just used stays."""
    arrays = [np.full((256, 256), value, np.float32) for value in range(3)]  # 256 KiB each
    first = patients_module._mapped(arrays[0], tmp_path, "ct", keep_bytes=600 * 2**10)
    patients_module._mapped(arrays[1], tmp_path, "ct", keep_bytes=600 * 2**10)
    patients_module._mapped(arrays[0], tmp_path, "ct", keep_bytes=600 * 2**10)  # the first used again
    patients_module._mapped(arrays[2], tmp_path, "ct", keep_bytes=600 * 2**10)
    kept = sorted(float(np.load(path)[0, 0]) for path in tmp_path.glob("*.npy"))
    assert kept == [0.0, 2.0]  # the second, least recently used, went
    assert np.array_equal(first, arrays[0])
    patients_module._mapped(np.full((512, 512), 9, np.float32), tmp_path, "ct", keep_bytes=600 * 2**10)  # 1 MiB
    assert [float(np.load(path)[0, 0]) for path in tmp_path.glob("*.npy")] == [9.0]
    assert np.array_equal(first, arrays[0])  # its file is gone, its pages are not

# How long writing a shared file takes in the race test: the other loader looks for the file meanwhile.
WRITING_S = 0.5


def _load_and_say_inode(array: np.ndarray, folder, start, inodes) -> None:
    """A workstation loading a patient: map ``array`` from ``folder`` once ``start`` lets every loader go, and
    put the inode of the file it mapped (``/proc/self/maps``: a replaced file still shows) on ``inodes``."""
    save = np.save

    def slow_save(*args, **kwargs) -> None:  # as long as a 1 mm patient's 220 MB take on a busy disk
        time.sleep(WRITING_S)
        save(*args, **kwargs)

    patients_module.np.save = slow_save  # this loader's process only (forked)
    start.wait()
    mapped = patients_module._mapped(array, folder, "ct")
    maps = Path("/proc/self/maps").read_text().splitlines()
    inodes.put((sorted({int(line.split()[4]) for line in maps if str(folder) in line}), float(mapped[-1, -1])))


def test_two_workstations_loading_a_new_patient_at_once_map_one_file(tmp_path):
    """Two loaders of the same new patient at the same moment (issue 20's race: each wrote and mapped a copy of
    its own) map the one file."""
    context = multiprocessing.get_context("fork")
    array = np.arange(2**20, dtype=np.float32).reshape(256, -1)
    start, inodes = context.Barrier(2), context.Queue()
    loaders = [context.Process(target=_load_and_say_inode, args=(array, tmp_path, start, inodes)) for _ in range(2)]
    for loader in loaders:
        loader.start()
    mapped = [inodes.get(timeout=120) for _ in loaders]
    for loader in loaders:
        loader.join(timeout=60)
    assert [loader.exitcode for loader in loaders] == [0, 0]
    assert mapped[0] == mapped[1] and len(mapped[0][0]) == 1 and mapped[0][1] == float(array[-1, -1])
    assert [path.stat().st_ino for path in tmp_path.glob("*.npy")] == mapped[0][0]


def test_a_workstations_patient_keeps_its_pose_images_within_the_budget_however_many_poses(patient, monkeypatch):
    """A workstation keeps its patient all day: what the patient keeps per C-arm pose (the DRR's water and bone
    paths, the display's frame facts) stays within patients.SHELVED_BYTES however many poses a trainee tries, the
    least recently used dropped; an image made again after it was dropped is the one first made."""
    # The 2 mm patient's 128 px paths (128 KB a pose) against a budget of five poses' of them.
    budget = 5 * 2 * 128 * 128 * 4
    monkeypatch.setattr(patients_module, "SHELVED_BYTES", budget)
    anatomy, _ = Patients(ANATOMY).of(library_scenarios()["ilesi-default"])
    isocentre = patient.landmarks["L4-L5.interlaminar_window.center"]
    poses = [CArm(primary_deg=angle, detector_pixels=128, isocenter=isocentre) for angle in range(-40, 45, 5)]
    first = anatomy_basis_line_integrals(anatomy, poses[0])
    for carm in poses[1:]:
        image = anatomy_basis_line_integrals(anatomy, carm)
        kept = anatomy.derived.count("drr.basis_frames")
        assert kept * image.nbytes <= budget and anatomy.derived.shelved_bytes() <= budget
    assert anatomy.derived.count("drr.basis_frames") == 5  # the budget held them, not the shelf's own count of 32
    assert anatomy_basis_line_integrals(anatomy, poses[-1]) is image  # the latest pose is still kept
    again = anatomy_basis_line_integrals(anatomy, poses[0])  # the first was dropped: projected again, the same
    assert again is not first and np.array_equal(again, first)


def _resident_kb(array: np.ndarray) -> int:
    """The kB of pages this process has in of the mapping that holds ``array``'s values (Linux /proc/self/smaps: the
    Rss of the mapping whose address range holds them; the same file mapped again, by another patient, is another)."""
    address, inside = array.ctypes.data, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split(" ", 1)[0]
        if "-" in first and ":" not in first:  # a mapping's header: its address range first
            start, end = (int(bound, 16) for bound in first.split("-"))
            inside = start <= address < end
        elif inside and line.startswith("Rss:"):
            return int(line.split()[1])
    raise AssertionError("no mapping holds the array")


def test_an_ended_attempt_lets_go_of_the_patients_mapped_pages_and_the_values_read_back(patient):
    """When an attempt (and its report) has ended, the workstation lets go of the pages of the patient's shared
    arrays it read (patients.release_mapped_pages): they are no longer counted in its memory, and read back the same."""
    anatomy, _ = Patients(ANATOMY).of(library_scenarios()["ilesi-default"])
    ct = anatomy.ct.array
    total = int(ct.sum(dtype=np.int64))  # every page read
    assert _mapped_file(ct) is not None and _resident_kb(ct) >= ct.nbytes / 1024
    patients_module.release_mapped_pages(anatomy)
    assert _resident_kb(ct) == 0
    assert int(ct.sum(dtype=np.int64)) == total and np.array_equal(ct, patient.ct.array)
