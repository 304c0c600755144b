"""The import of an uploaded CT, in a process of its own (:mod:`frontends.web.upload` starts it).

The portal stays light (no numpy, no anatomy) and a crash here costs only this upload. The files the
browser sent are in a staging folder (``ct/`` and ``labels/``, each with the file as it was named);
a zip (a DICOM series, a folder of TotalSegmentator masks) is unpacked beside them, refusing entries
that would land outside the folder and archives that unpack beyond :data:`MAX_UNPACKED_BYTES`. The
import is the CLI's (:func:`anatomy_models.sources.import_anatomy`: landmarks, parts, canal
contents, radicular arteries from the vertebra labels); the anatomy is stored atomically
(:func:`anatomy_models.store.save_anatomy`), so a failed upload leaves no patient behind.

It reports on its standard output, one JSON object a line: ``{"state": "unpacking"|"importing"|
"saving", "fraction": 0..1, "text": ...}`` while it works, then ``{"state": "done", "name", "notes",
"warnings"}`` or ``{"state": "failed", "error"}``, the error naming the uploaded file (as the browser
named it, never the staging folder), the field or slice, and the fix.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from anatomy_models.errors import SpinesimError
from anatomy_models.volume import MAX_IMAGE_BYTES

# An unpacked archive is at most this big: the largest image spinesim reads (anatomy_models/volume.py),
# plus DICOM headers [ED].
MAX_UNPACKED_BYTES = MAX_IMAGE_BYTES + 512 * 1024 ** 2
# How many files an archive may hold: a thin-slice lumbar CT is ~1000 slices; a TotalSegmentator
# folder ~120 masks [ED].
MAX_ARCHIVE_FILES = 20_000
_CHUNK_BYTES = 1024 ** 2

Emit = Callable[[dict], None]


def unpack_zip(archive: Path, folder: Path, *, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Unpack ``archive`` into ``folder``; returns the folder to import (the archive's one top folder,
    if it has just one).

    Raises
    ------
    SpinesimError
        If the archive is damaged, names a file outside the folder (``..``, an absolute path), holds
        more than :data:`MAX_ARCHIVE_FILES` files or unpacks to more than ``max_bytes``.
    """
    try:
        with zipfile.ZipFile(archive) as opened:
            members = [info for info in opened.infolist() if not info.is_dir()]
            if len(members) > MAX_ARCHIVE_FILES:
                raise SpinesimError(f"the archive holds {len(members)} files, more than {MAX_ARCHIVE_FILES}",
                                    path=archive.name, hint="zip the one series (or label folder) to import")
            if not members:
                raise SpinesimError("the archive is empty", path=archive.name,
                                    hint="zip the folder that holds the CT's DICOM files")
            written = 0
            for info in members:
                relative = PurePosixPath(info.filename)
                if relative.is_absolute() or ".." in relative.parts or ":" in info.filename:
                    raise SpinesimError("an entry would be written outside the archive's folder", path=archive.name,
                                        where=f"entry {info.filename!r}", hint="zip the folder again without it")
                target = folder.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with opened.open(info) as source, open(target, "wb") as sink:
                    while chunk := source.read(_CHUNK_BYTES):
                        written += len(chunk)
                        if written > max_bytes:  # counted as read: a header's sizes can lie
                            raise SpinesimError(f"the archive unpacks to more than {max_bytes / 1024 ** 3:.1f} GiB",
                                                path=archive.name, hint="upload one series at a time")
                        sink.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as error:
        raise SpinesimError(f"not a readable zip archive ({error})", path=archive.name,
                            hint="zip the folder again (a plain .zip, no encryption) or upload a NIfTI file") from None
    tops = list(folder.iterdir())
    return tops[0] if len(tops) == 1 and tops[0].is_dir() else folder


def _source(uploaded: Path, unpacked: Path) -> Path:
    """The path to import for an uploaded file: itself, or the folder its zip unpacks to (named for the
    zip, so that an error in one of its files reads ``series.zip/IM0003: ...``)."""
    if uploaded.suffix.lower() != ".zip":
        return uploaded
    folder = unpacked / uploaded.name
    folder.mkdir(parents=True)
    return unpack_zip(uploaded, folder)


def _in_words(message: str, staging: Path) -> str:
    """``message`` with the staging folders taken out of its paths: the file as the browser named it."""
    for part in ("unpacked/ct", "unpacked/labels", "ct", "labels"):
        message = message.replace(f"{staging / part}/", "")
    return message.replace(str(staging), "the upload")


def import_upload(staging: Path, name: str, ct_file: str, labels_file: str | None, label_format: str | None,
                  emit: Emit) -> None:
    """Import ``staging/ct/<ct_file>`` (with ``staging/labels/<labels_file>``) and store it as ``name``."""
    from anatomy_models.sources import import_anatomy
    from anatomy_models.store import anatomy_folder, check_anatomy_name, save_anatomy

    check_anatomy_name(name)
    try:
        anatomy_folder(name)
    except SpinesimError:
        pass  # no patient of that name yet: the one expected
    else:
        raise SpinesimError(f"a patient called {name!r} is stored already", hint="choose another name")
    emit({"state": "unpacking", "fraction": 0.0, "text": "unpacking"})
    ct = _source(staging / "ct" / ct_file, staging / "unpacked" / "ct")
    labels = _source(staging / "labels" / labels_file, staging / "unpacked" / "labels") if labels_file else None

    def progress(done: float, total: float, text: str) -> None:
        emit({"state": "importing", "fraction": round(done / total, 3) if total else 0.0, "text": text})

    # Readers report their progress where they have steps (DICOM slices); the landmarks and the structures
    # drawn from the labels take a few seconds more.
    emit({"state": "importing", "fraction": 0.0, "text": "reading the CT and its labels, measuring the vertebrae"})
    anatomy = import_anatomy(ct, labels=labels, label_format=label_format or None, progress=progress)
    emit({"state": "saving", "fraction": 1.0, "text": "storing the patient"})
    save_anatomy(anatomy, name)
    emit({"state": "done", "name": name, "notes": anatomy.metadata.get("import_notes", []),
          "warnings": anatomy.metadata.get("import_warnings", []),
          "landmarks": len(anatomy.landmarks), "structures": len(anatomy.label_table)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m frontends.web.upload_worker")
    parser.add_argument("staging", type=Path)
    parser.add_argument("name")
    parser.add_argument("ct_file")
    parser.add_argument("--labels")
    parser.add_argument("--label-format")
    args = parser.parse_args(argv)

    def emit(message: dict) -> None:
        print(json.dumps(message), flush=True)

    try:
        import_upload(args.staging, args.name, args.ct_file, args.labels, args.label_format, emit)
    except SpinesimError as error:
        emit({"state": "failed", "error": _in_words(str(error), args.staging)})
        return 1
    except MemoryError:
        emit({"state": "failed", "error": "the CT is too large for this machine's memory: resample it to "
                                          "1 mm voxels or crop it to the lumbar spine and upload it again"})
        return 1
    finally:
        shutil.rmtree(args.staging / "unpacked", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
