"""Bring your own patient: an instructor uploads a CT and its label map in the browser (issue 22).

The portal serves it (``/upload``), not a workstation: a CT is hundreds of megabytes, far beyond what
the portal forwards (``portal.MAX_BODY_BYTES``) or a WebSocket message holds. Only instructors upload.

1. ``GET /upload``: the page. A CT (a zip of a DICOM series, or a NIfTI / NRRD volume), optionally its
   label map (NIfTI / NRRD, a .seg.nrrd, or a zip of TotalSegmentator's masks) and how to read its
   ids, and the name the patient is stored under. The browser shows the bytes sent, then the
   import's steps, then the patient's notes, or the error.
2. ``POST /upload`` streams the form into a staging folder under the spinesim home, at most
   ``max_bytes`` in all (:data:`MAX_UPLOAD_BYTES`; a bigger request is refused before or while it is
   read, and its staging folder removed), and answers ``{"job": id}``.
3. The import runs in a process of its own (:mod:`frontends.web.upload_worker`): the portal holds no
   anatomy, and a crash costs only the upload. ``GET /upload/jobs/{id}`` gives its state; the
   error, when there is one, is the importers' own (the file as the browser named it, the field or
   slice, the fix). The patient is stored atomically or not at all, and the staging folder is
   removed either way.
4. ``GET /upload/patients``: the stored patients to build cases on (:func:`patients_to_build_on`):
   the case editor's patient picker lists the same.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import secrets
import shutil
import sys
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Callable

from aiohttp import web

from anatomy_models.atomic import process_alive
from anatomy_models.errors import SpinesimError
from anatomy_models.home import spinesim_home
from anatomy_models.store import check_anatomy_name, stored_anatomy_names

log = logging.getLogger("spinesim.upload")

# The largest upload (CT and label map together), bytes: a thin-slice lumbar CT of 1000 slices of
# 512 x 512 int16 is 0.5 GiB as DICOM; twice that leaves room for a whole-spine series [ED].
MAX_UPLOAD_BYTES = 1024 ** 3
# The form's text fields (the name, the label format) are short.
MAX_FIELD_BYTES = 256
# Uploads remembered for their page to read (the newest kept).
JOBS_KEPT = 32
CT_SUFFIXES = (".zip", ".nii", ".nii.gz", ".nrrd")
LABEL_SUFFIXES = (".zip", ".nii", ".nii.gz", ".nrrd")
# How to read a label map's ids: the importer's --label-format (anatomy_models.labelmaps.parse_label_format).
LABEL_FORMATS = {"": "as the file says (a .seg.nrrd, a NIfTI with its own table, TotalSegmentator's masks)",
                 "totalsegmentator:v2": "TotalSegmentator v2 ids",
                 "totalsegmentator:v1": "TotalSegmentator v1 ids",
                 "verse": "VerSe ids"}
_CHUNK_BYTES = 1024 ** 2

UserOf = Callable[[web.Request], "tuple[int, str] | None"]


class UploadTooLarge(SpinesimError):
    """An upload beyond the size limit (HTTP 413)."""


@dataclass(frozen=True)
class UploadState:
    """What the page shows of one upload: ``state`` is receiving, unpacking, importing, saving, done or
    failed; ``fraction`` (0-1) of the step; ``text`` the step in words; the rest once it has ended."""

    user_id: int
    name: str
    state: str = "receiving"
    fraction: float = 0.0
    text: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    landmarks: int = 0
    structures: int = 0

    def to_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "user_id"}


def uploaded_file_name(filename: str | None, field_name: str, suffixes: tuple[str, ...]) -> str:
    """The uploaded file's own name (no folders), checked against ``suffixes``.

    Examples
    --------
    >>> uploaded_file_name("C:\\\\scans\\\\ct_lumbar.nii.gz", "ct", CT_SUFFIXES)
    'ct_lumbar.nii.gz'
    >>> uploaded_file_name("notes.txt", "ct", CT_SUFFIXES)
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: notes.txt: field 'ct': not a file this page imports. Upload a zip of the \
DICOM series, or a .nii, .nii.gz or .nrrd volume.
    """
    name = PurePosixPath((filename or "").replace("\\", "/")).name.strip()
    if not name or name.startswith(".") or len(name) > 200:
        raise SpinesimError("the file has no usable name", where=f"field {field_name!r}",
                            hint="rename it (letters, digits, '-', '_', '.') and upload it again")
    if not name.lower().endswith(suffixes):
        hint = ("upload a zip of the DICOM series, or a .nii, .nii.gz or .nrrd volume" if field_name == "ct" else
                "upload the label map as .nii, .nii.gz, .nrrd or .seg.nrrd, or a zip of TotalSegmentator's masks")
        raise SpinesimError("not a file this page imports", path=name, where=f"field {field_name!r}", hint=hint)
    return name


class Uploads:
    """The upload routes of the portal (module docstring) and the uploads in progress.

    Parameters
    ----------
    user_of
        The logged-in user of a request as (id, role), or None.
    max_bytes
        The largest upload, bytes.
    """

    def __init__(self, user_of: UserOf, *, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.user_of = user_of
        self.max_bytes = max_bytes
        self.jobs: OrderedDict[str, UploadState] = OrderedDict()
        self.tasks: set[asyncio.Task] = set()
        self.processes: set[asyncio.subprocess.Process] = set()

    @staticmethod
    def clear_leftovers() -> None:
        """Remove the staging folders of portals that are no longer running (a crash mid-upload)."""
        folder = spinesim_home() / "uploads"
        for staging in folder.glob("staging-*-*") if folder.is_dir() else []:
            pid = staging.name.split("-")[1]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(staging, ignore_errors=True)

    def close(self) -> None:
        """Stop the imports still running (the portal is stopping): their patients are not stored."""
        for process in list(self.processes):
            if process.returncode is None:
                process.kill()

    def add_routes(self, app: web.Application) -> None:
        self.clear_leftovers()
        app.router.add_get("/upload", self.page)
        app.router.add_post("/upload", self.receive)
        app.router.add_get("/upload/jobs/{job}", self.job)
        app.router.add_get("/upload/patients", self.patients)

    def _instructor(self, request: web.Request) -> int:
        user = self.user_of(request)
        if user is None:
            raise web.HTTPFound("/login") if request.method == "GET" else web.HTTPUnauthorized()
        if user[1] != "instructor":
            raise web.HTTPForbidden(text="Only an instructor can bring a patient's CT. Log in as one.")
        return user[0]

    async def page(self, request: web.Request) -> web.Response:
        self._instructor(request)
        return web.Response(text=_page_html(self.max_bytes), content_type="text/html")

    async def patients(self, request: web.Request) -> web.Response:
        # Imported here: the casebook reads the scenario schema (numpy, scipy), which the portal must not load.
        from frontends.casebook import patients_to_build_on

        self._instructor(request)
        return web.json_response(await asyncio.get_running_loop().run_in_executor(None, patients_to_build_on))

    async def job(self, request: web.Request) -> web.Response:
        user_id = self._instructor(request)
        state = self.jobs.get(request.match_info["job"])
        if state is None or state.user_id != user_id:
            raise web.HTTPNotFound(text="no such upload")
        return web.json_response(state.to_json())

    async def receive(self, request: web.Request) -> web.Response:
        """Stream the form into a staging folder and start the import (module docstring, 2)."""
        user_id = self._instructor(request)
        if request.content_length is not None and request.content_length > self.max_bytes:
            return _refusal(str(_too_large(self.max_bytes)), status=413)
        staging = spinesim_home() / "uploads" / f"staging-{os.getpid()}-{secrets.token_hex(8)}"
        try:
            form = await self._stage(request, staging)
            job = secrets.token_urlsafe(12)
            self.jobs[job] = UploadState(user_id, form["name"], text="starting the import")
            while len(self.jobs) > JOBS_KEPT:
                self.jobs.popitem(last=False)
        except SpinesimError as error:
            shutil.rmtree(staging, ignore_errors=True)
            return _refusal(str(error), status=413 if isinstance(error, UploadTooLarge) else 400)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        task = asyncio.ensure_future(self._import(job, staging, form))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({"job": job})

    async def _stage(self, request: web.Request, staging: Path) -> dict[str, str]:
        """The form's fields, its files written to ``staging/ct`` and ``staging/labels``."""
        form: dict[str, str] = {}
        received = 0
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name in ("name", "label_format"):
                value = b""
                while chunk := await part.read_chunk(MAX_FIELD_BYTES + 1):  # a chunk may be shorter than asked
                    value += chunk
                    if len(value) > MAX_FIELD_BYTES:
                        raise SpinesimError(f"the field is longer than {MAX_FIELD_BYTES} bytes",
                                            where=f"field {part.name!r}", hint="give a shorter name")
                form[part.name] = value.decode("utf-8", "replace").strip()
            elif part.name in ("ct", "labels") and part.filename:
                suffixes = CT_SUFFIXES if part.name == "ct" else LABEL_SUFFIXES
                name = uploaded_file_name(part.filename, part.name, suffixes)
                folder = staging / part.name
                folder.mkdir(parents=True, exist_ok=True)
                form[part.name] = name
                with open(folder / name, "wb") as sink:
                    while chunk := await part.read_chunk(_CHUNK_BYTES):
                        received += len(chunk)
                        if received > self.max_bytes:
                            raise _too_large(self.max_bytes, name)
                        sink.write(chunk)
        if "ct" not in form:
            raise SpinesimError("no CT was uploaded", where="field 'ct'",
                                hint="choose the CT: a zip of its DICOM series, or a NIfTI file")
        name = check_anatomy_name(form.get("name", ""))
        if name in stored_anatomy_names() or any(s.name == name and s.state not in ("done", "failed")
                                                 for s in self.jobs.values()):
            raise SpinesimError(f"a patient called {name!r} is stored (or being stored) already",
                                where="field 'name'", hint="choose another name")
        if form.get("label_format", "") not in LABEL_FORMATS:
            raise SpinesimError(f"unknown label format {form['label_format']!r}", where="field 'label_format'",
                                hint=f"choose one of: {', '.join(f for f in LABEL_FORMATS if f)}, or leave it empty")
        if form.get("label_format") and "labels" not in form:
            raise SpinesimError("a label format was chosen but no label map uploaded", where="field 'labels'",
                                hint="add the label map, or leave the format empty")
        return form

    async def _import(self, job: str, staging: Path, form: dict[str, str]) -> None:
        """Run :mod:`frontends.web.upload_worker` and follow its report (module docstring, 3)."""
        command = [sys.executable, "-m", "frontends.web.upload_worker", str(staging), form["name"], form["ct"]]
        if form.get("labels"):
            command += ["--labels", form["labels"]]
        if form.get("label_format"):
            command += ["--label-format", form["label_format"]]
        logs = spinesim_home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            with open(logs / "uploads.log", "ab") as errors:
                process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                               stderr=errors)
                self.processes.add(process)
                try:
                    async for line in process.stdout:  # type: ignore[union-attr]
                        self._update(job, line)
                    status = await process.wait()
                finally:
                    self.processes.discard(process)
            if self.jobs.get(job) and self.jobs[job].state not in ("done", "failed"):
                self.jobs[job] = replace(self.jobs[job], state="failed",
                                         error=f"the import stopped (exit status {status}) before it ended; "
                                               f"the log is {logs / 'uploads.log'}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _update(self, job: str, line: bytes) -> None:
        try:
            report = json.loads(line)
        except ValueError:
            log.warning("upload %s: unreadable report %r", job, line[:200])
            return
        if job in self.jobs and isinstance(report, dict):
            known = {key: report[key] for key in ("state", "fraction", "text", "error", "notes", "warnings",
                                                  "landmarks", "structures") if key in report}
            self.jobs[job] = replace(self.jobs[job], **known)


def _too_large(max_bytes: int, name: str | None = None) -> UploadTooLarge:
    return UploadTooLarge(f"the upload is larger than {_megabytes(max_bytes)}", path=name,
                          hint="crop the CT to the lumbar spine (or zip only its one series) and upload it again")


def _megabytes(size_bytes: int) -> str:
    """
    >>> _megabytes(1024 ** 3), _megabytes(4000)
    ('1,024 MB', '0.004 MB')
    """
    megabytes = size_bytes / 1024 ** 2
    return f"{megabytes:,.0f} MB" if megabytes >= 10 else f"{megabytes:.3f} MB"


def _refusal(message: str, *, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


_STYLE = """
body { font-family: Roboto, system-ui, sans-serif; background: #eceff1; margin: 0; color: #263238; }
header { background: #263238; color: #fff; padding: 14px 24px; font-weight: 700; letter-spacing: .06em; }
main { max-width: 720px; margin: 24px auto; background: #fff; padding: 24px 32px; border-radius: 6px;
       box-shadow: 0 1px 3px rgba(0,0,0,.2); }
label { display: block; margin-top: 14px; font-size: 14px; font-weight: 500; }
input, select { width: 100%; margin-top: 4px; font-size: 15px; }
.hint { font-size: 12px; color: #607d8b; }
button { margin-top: 18px; background: #006064; color: #fff; border: 0; padding: 10px 18px; border-radius: 4px;
         font-size: 15px; cursor: pointer; }
button[disabled] { background: #90a4ae; cursor: default; }
progress { width: 100%; height: 14px; margin-top: 14px; }
#upload-error, .field-error { color: #c62828; white-space: pre-wrap; }
.field-error { font-size: 13px; margin-top: 2px; }
#upload-notes li, #patients li { font-size: 13px; }
"""


def _page_html(max_bytes: int) -> str:
    formats = "".join(f'<option value="{html.escape(value)}">{html.escape(words)}</option>'
                      for value, words in LABEL_FORMATS.items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>spinesim · bring a patient's CT</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>
<body><header>spinesim · bring a patient's CT</header><main>
<h2>Upload a CT</h2>
<p>A de-identified CT of the lumbar spine with its vertebrae labelled becomes a patient to build cases on:
landmarks, vertebra parts, discs, the canal's contents and the radicular arteries are drawn from the labels
(estimates of a few millimetres). At most {_megabytes(max_bytes)}.</p>
<form id="upload-form">
<label for="patient-name">Patient name</label>
<input id="patient-name" name="name" required maxlength="64" placeholder="e.g. clinic-lumbar-01">
<div class="hint">Letters, digits, '-', '_' or '.'; never the patient's real name.</div>
<div class="field-error" id="error-name"></div>
<label for="ct-file">CT</label>
<input id="ct-file" name="ct" type="file" required accept=".zip,.nii,.gz,.nrrd">
<div class="hint">A zip of the DICOM series, or a NIfTI (.nii, .nii.gz) or NRRD volume.</div>
<div class="field-error" id="error-ct"></div>
<label for="labels-file">Label map of the vertebrae</label>
<input id="labels-file" name="labels" type="file" accept=".zip,.nii,.gz,.nrrd">
<div class="hint">TotalSegmentator or VerSe, on the CT's grid: needed for levels, targets and cases.</div>
<div class="field-error" id="error-labels"></div>
<label for="label-format">How the label map numbers the vertebrae</label>
<select id="label-format" name="label_format">{formats}</select>
<div class="field-error" id="error-label_format"></div>
<button id="upload" type="submit">Upload and import</button>
</form>
<progress id="upload-progress" max="1" value="0" hidden></progress>
<div id="upload-state" data-state="idle"></div>
<div id="upload-error"></div>
<ul id="upload-notes"></ul>
<h3>Patients to build cases on</h3>
<ul id="patients"></ul>
<p class="hint" id="patients-next">To build a case on one, open the workstation's <b>Cases</b> tab and choose it as
the case's <b>Patient</b>. In a scenario file it is <code>anatomy: {{stored: NAME}}</code>.</p>
<p class="hint"><a href="/" id="back-to-workstation">Back to the workstation</a></p>
</main>
<script>
const STEPS = {{receiving: 'Receiving', unpacking: 'Unpacking the archive', importing: 'Importing',
               saving: 'Storing the patient', done: 'Ready', failed: 'Not imported'}};
const SOURCES = {{nifti: 'NIfTI', nrrd: 'NRRD', 'seg.nrrd': 'Slicer segmentation',
                 totalsegmentator: 'TotalSegmentator'}};
const $ = id => document.getElementById(id);
function show(state, fraction, text) {{
  $('upload-state').dataset.state = state;
  $('upload-state').textContent = (STEPS[state] || state) + (text ? ': ' + text : '');
  $('upload-progress').hidden = state === 'done' || state === 'failed';
  $('upload-progress').value = fraction;
}}
function failed(message) {{
  show('failed', 0, '');
  // A refusal about one field of the form is shown under that field; anything else under the button.
  const field = /field '(\\w+)'/.exec(message);
  const place = (field && $('error-' + field[1])) || $('upload-error');
  place.textContent = field && place !== $('upload-error') ? message.replace(/^field '\\w+': /, '') : message;
  $('upload').disabled = false;
}}
async function patients() {{
  const reply = await fetch('/upload/patients', {{cache: 'no-store'}});
  const list = $('patients');
  list.replaceChildren();
  const found = await reply.json();
  if (!found.length) {{
    const item = document.createElement('li');
    item.id = 'no-patients';
    item.textContent = 'None yet: upload a CT with its vertebra label map above.';
    list.appendChild(item);
  }}
  for (const p of found) {{
    const item = document.createElement('li');
    item.dataset.patient = p.name;
    item.textContent = p.name + ' (' + (SOURCES[p.source] || p.source) + ', ' + p.structures + ' structures, ' +
      p.landmarks + ' landmarks)' + (p.cases ? '' : ': no vertebra landmarks, cannot carry a case');
    list.appendChild(item);
  }}
}}
async function follow(job) {{
  const reply = await fetch('/upload/jobs/' + job, {{cache: 'no-store'}});
  const state = await reply.json();
  if (state.state === 'failed') {{ failed(state.error); return; }}
  show(state.state, state.fraction, state.state === 'done' ? state.name + ', ' + state.structures +
       ' structures, ' + state.landmarks + ' landmarks: it can now be chosen for a case (Cases tab, Patient)' :
       state.text);
  if (state.state === 'done') {{
    for (const line of [...state.warnings.map(w => 'warning: ' + w), ...state.notes]) {{
      const item = document.createElement('li'); item.textContent = line; $('upload-notes').appendChild(item);
    }}
    $('upload').disabled = false;
    patients();
    return;
  }}
  setTimeout(() => follow(job), 400);
}}
$('upload-form').addEventListener('submit', event => {{
  event.preventDefault();
  $('upload').disabled = true;
  for (const place of document.querySelectorAll('#upload-error, .field-error')) place.textContent = '';
  $('upload-notes').replaceChildren();
  const request = new XMLHttpRequest();
  request.open('POST', '/upload');
  request.upload.onprogress = e => {{ if (e.lengthComputable) show('receiving', e.loaded / e.total,
    Math.round(e.loaded / 1048576) + ' of ' + Math.round(e.total / 1048576) + ' MB'); }};
  request.onload = () => {{
    let reply = {{}};
    try {{ reply = JSON.parse(request.responseText); }} catch (e) {{}}
    if (request.status !== 200) {{
      failed(reply.error || request.responseText || ('refused: ' + request.status));
      return;
    }}
    follow(reply.job);
  }};
  request.onerror = () => failed('the upload was cut off: check the connection and upload it again');
  show('receiving', 0, '');
  request.send(new FormData($('upload-form')));
}});
patients();
</script></body></html>"""
