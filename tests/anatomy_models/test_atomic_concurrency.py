"""Two writers of one folder at once (two imports saving the same name): each commit runs whole, under
the folder's lock, and no writer fails for the other's sake. Before the lock, about one write in 300
failed with "cannot be written (No such file or directory)" while another writer's swap was half done."""

import multiprocessing
from pathlib import Path

from anatomy_models.atomic import atomic_directory

WRITERS, WRITES = 3, 200


def _writer(target: Path, ident: int, failures) -> None:
    for number in range(WRITES):
        try:
            with atomic_directory(target) as staging:
                (staging / "ct.txt").write_text(f"{ident}-{number}")
                (staging / "labels.txt").write_text(f"{ident}-{number}")
        except Exception as error:  # noqa: BLE001 - any failure is what this test counts
            failures.put(repr(error))


def test_concurrent_replacements_of_one_folder_all_succeed_and_leave_it_whole(tmp_path):
    target = tmp_path / "patient"
    context = multiprocessing.get_context("fork")
    failures = context.Queue()
    writers = [context.Process(target=_writer, args=(target, ident, failures)) for ident in range(WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [writer.exitcode for writer in writers] == [0] * WRITERS
    errors = []
    while not failures.empty():
        errors.append(failures.get())
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patient"]  # no leftovers, no lock file
    assert (target / "ct.txt").read_text() == (target / "labels.txt").read_text()
