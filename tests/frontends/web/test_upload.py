"""Bring your own patient (issue 22), the portal's upload routes without a browser: who may upload, the
size limit, refusals that name the file and field with the fix, an import error from the importer
itself, nothing stored or staged after a failure, a DICOM zip, and a zip that would write outside its
folder. The real CT with its labels is uploaded end to end in test_browser_upload.py."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from anatomy_models.errors import SpinesimError
from anatomy_models.home import spinesim_home
from anatomy_models.store import stored_anatomy_names
from frontends.web.upload import Uploads
from frontends.web.upload_worker import unpack_zip

REAL_CT = Path(__file__).parents[2] / "data" / "totalsegmentator_lumbar"


def _request(role: str | None, method: str, path: str, *, form: FormData | None = None,
             max_bytes: int = 10 * 1024 ** 2, wait_for_job: bool = False,
             chunked: bool = False) -> tuple[int, dict | str, dict | None]:
    """Status and body of one request to an app with only the upload routes, the user an instructor
    (id 1), a trainee (id 2) or nobody; with ``wait_for_job`` also the job's final state."""

    async def run():
        uploads = Uploads(lambda request: None if role is None else ({"instructor": 1, "trainee": 2}[role], role),
                          max_bytes=max_bytes)
        app = web.Application()
        uploads.add_routes(app)
        async with TestClient(TestServer(app)) as client:
            reply = await client.request(method, path, data=form, allow_redirects=False, chunked=chunked or None)
            body = await (reply.json() if reply.content_type == "application/json" else reply.text())
            final = None
            if wait_for_job and reply.status == 200:
                for _ in range(600):
                    final = await (await client.get(f"/upload/jobs/{body['job']}")).json()
                    if final["state"] in ("done", "failed"):
                        break
                    await asyncio.sleep(0.1)
                await asyncio.gather(*uploads.tasks)
            return reply.status, body, final

    return asyncio.run(run())


def _form(name: str, ct: tuple[str, bytes], labels: tuple[str, bytes] | None = None,
          label_format: str = "") -> FormData:
    form = FormData()
    form.add_field("name", name)
    form.add_field("ct", ct[1], filename=ct[0], content_type="application/octet-stream")
    if labels:
        form.add_field("labels", labels[1], filename=labels[0], content_type="application/octet-stream")
    form.add_field("label_format", label_format)
    return form


def _staged() -> list[Path]:
    folder = spinesim_home() / "uploads"
    return list(folder.iterdir()) if folder.is_dir() else []


def test_only_an_instructor_may_upload(spinesim_home):
    assert _request(None, "GET", "/upload")[0] == 302  # to the login page
    status, text, _ = _request("trainee", "GET", "/upload")
    assert status == 403 and "Only an instructor" in text
    status, text, _ = _request("instructor", "GET", "/upload")
    assert status == 200 and 'id="ct-file"' in text and "TotalSegmentator v2 ids" in text
    assert _request("trainee", "POST", "/upload", form=_form("x", ("ct.nii.gz", b"0")))[0] == 403


@pytest.mark.parametrize("chunked", [False, True], ids=["declared size", "counted while streamed"])
def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(spinesim_home, chunked):
    status, body, _ = _request("instructor", "POST", "/upload", form=_form("big", ("ct.nii.gz", b"0" * 5000)),
                               max_bytes=4000, chunked=chunked)
    assert status == 413 and "larger than 0.004 MB. Crop the CT" in body["error"], body
    assert body["error"].startswith("ct.nii.gz: ") == chunked  # streamed: the file that went over is named
    assert _staged() == [] and "big" not in stored_anatomy_names()


@pytest.mark.parametrize(("form", "words"), [
    (lambda: _form("p1", ("notes.txt", b"x")), "notes.txt: field 'ct': not a file this page imports. Upload a zip"),
    (lambda: _form("no name!", ("ct.nii.gz", b"x")), "invalid anatomy name 'no name!'"),
    (lambda: _form("n" * 300, ("ct.nii.gz", b"x")), "field 'name': the field is longer than 256 bytes"),
    (lambda: _form("p2", ("ct.nii.gz", b"x"), label_format="verse"), "field 'labels': a label format was chosen"),
    (lambda: _form("p3", ("ct.nii.gz", b"x"), ("labels.nii.gz", b"y"), "mystery"), "unknown label format 'mystery'"),
])
def test_a_bad_form_is_refused_naming_the_field_and_the_fix(spinesim_home, form, words):
    status, body, _ = _request("instructor", "POST", "/upload", form=form())
    assert status == 400 and words in body["error"], body
    assert _staged() == []


def test_a_damaged_ct_fails_with_the_importers_error_naming_the_uploaded_file(spinesim_home):
    data = (REAL_CT / "ct_lumbar.nii.gz").read_bytes()[:5000]  # cut off: a gzip stream that ends early
    status, body, final = _request("instructor", "POST", "/upload", form=_form("cut", ("my_ct.nii.gz", data)),
                                   wait_for_job=True)
    assert status == 200, body
    assert final["state"] == "failed" and final["error"].startswith("my_ct.nii.gz: "), final
    assert "staging" not in final["error"] and str(spinesim_home) not in final["error"]
    assert _staged() == [] and "cut" not in stored_anatomy_names()


def test_a_zip_entry_outside_its_folder_is_refused(tmp_path):
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("series/IM0001.dcm", b"x")
        opened.writestr("../../escaped.dcm", b"x")
    with pytest.raises(SpinesimError, match=r"series.zip: entry '../../escaped.dcm': an entry would be written "
                                            r"outside the archive's folder"):
        unpack_zip(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.dcm").exists()
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as opened:
        opened.writestr("a.dcm", b"\0" * 100_000)
    assert io.BytesIO(bomb.read_bytes()).getbuffer().nbytes < 1000  # compressed far below what it unpacks to
    with pytest.raises(SpinesimError, match="unpacks to more than"):
        unpack_zip(bomb, tmp_path / "bomb", max_bytes=50_000)


def _dicom_zip(folder: Path, *, damaged_slice: int | None = None) -> bytes:
    """A zip of a 4-slice CT series in a folder ``series/`` (``damaged_slice`` without its ImagePositionPatient)."""
    import pydicom

    from tests.anatomy_models.dicom_series import axial_positions, stored_ramp, write_stack

    paths = write_stack(folder / "series", stored_ramp(4, rows=16, columns=16), axial_positions(4))
    if damaged_slice is not None:
        ds = pydicom.dcmread(paths[damaged_slice])
        del ds.ImagePositionPatient
        ds.save_as(paths[damaged_slice], enforce_file_format=True)
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as opened:
        for path in paths:
            opened.write(path, f"series/{path.name}")
    return data.getvalue()


def test_a_dicom_zip_is_imported_and_a_bad_slice_is_named_in_the_zip(spinesim_home, tmp_path):
    status, body, final = _request("instructor", "POST", "/upload", wait_for_job=True,
                                   form=_form("dicom-zip", ("series.zip", _dicom_zip(tmp_path / "good"))))
    assert status == 200 and final["state"] == "done", final
    status, patients, _ = _request("instructor", "GET", "/upload/patients")
    entry = next(p for p in patients if p["name"] == "dicom-zip")
    assert entry["source"] == "DICOM" and not entry["cases"]  # no vertebra labels: no case can be built on it
    # The same name again is refused (a stored patient is never replaced by an upload).
    status, body, _ = _request("instructor", "POST", "/upload", form=_form("dicom-zip", ("ct.nii.gz", b"x")))
    assert status == 400 and "field 'name': a patient called 'dicom-zip' is stored" in body["error"], body
    damaged = _dicom_zip(tmp_path / "bad", damaged_slice=2)
    status, body, final = _request("instructor", "POST", "/upload", wait_for_job=True,
                                   form=_form("dicom-bad", ("series.zip", damaged)))
    assert final["state"] == "failed" and final["error"].startswith("series.zip/series/slice002.dcm: "), final
    assert "ImagePositionPatient" in final["error"] and _staged() == []


def test_a_crashed_portals_staging_folder_is_removed_and_a_running_ones_kept(spinesim_home):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = spinesim_home / "uploads" / f"staging-{finished.stdout.strip()}-0123abcd"
    alive = spinesim_home / "uploads" / f"staging-{os.getpid()}-4567ef01"
    for folder in (dead, alive):
        (folder / "ct").mkdir(parents=True)
    Uploads.clear_leftovers()
    assert not dead.exists() and alive.exists()
    shutil.rmtree(alive)
