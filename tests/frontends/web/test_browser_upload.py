"""Bring your own patient in a real browser (issue 22): an instructor opens the upload page from the
workstation, uploads the real CT and its TotalSegmentator labels (tests/data/totalsegmentator_lumbar,
Apache-2.0), follows the progress to the patient listed for cases, then sees a damaged upload's error
naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from anatomy_models.store import stored_anatomy_names
from tests.frontends.web import browser as b

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")
if not __import__("os").path.exists(b.CHROMIUM):
    pytest.skip("Chromium is not installed (./dev.sh installs it)", allow_module_level=True)

INSTRUCTOR, PASSWORD = "ivan", "a-long-password"
REAL_CT = Path(__file__).parents[2] / "data" / "totalsegmentator_lumbar"


def _upload(page, name: str, ct: Path, labels: Path | None = None, label_format: str = "") -> str:
    """Fill the form, upload, and wait for the import to end; returns its end state (done or failed)."""
    page.fill("#patient-name", name)
    page.set_input_files("#ct-file", str(ct))
    page.set_input_files("#labels-file", str(labels) if labels else [])
    page.select_option("#label-format", label_format)
    page.click("#upload")
    page.wait_for_selector("#upload-state[data-state=done], #upload-state[data-state=failed]", timeout=180_000)
    return page.get_attribute("#upload-state", "data-state")


def test_an_instructor_uploads_a_ct_and_sees_the_patient_or_the_error(new_page, tmp_path):
    database = b.database_with_users(tmp_path, {INSTRUCTOR: "instructor"}, PASSWORD)
    server = b.Server(database, "default", "--require-login", "--spare", "0", log=tmp_path / "serve.log")
    try:
        page = new_page(viewport={"width": 1280, "height": 900})
        # The portal serves the page: logged in without following the redirect to a workstation, none
        # starts (the link from the workstation's bar, #upload-open, is a plain href="/upload").
        page.request.post(server.url + "login", form={"name": INSTRUCTOR, "password": PASSWORD}, max_redirects=0)
        page.goto(server.url + "upload")
        page.wait_for_selector("#upload-form")
        page.evaluate("""() => {window.seenStates = []; new MutationObserver(() => window.seenStates.push(
            document.querySelector('#upload-state').dataset.state)).observe(
            document.querySelector('#upload-state'), {attributes: true, childList: true});}""")
        assert _upload(page, "browser-real-ct", REAL_CT / "ct_lumbar.nii.gz", REAL_CT / "totalseg_lumbar.nii.gz",
                       "totalsegmentator:v2") == "done", page.text_content("#upload-error")
        states = page.evaluate("() => window.seenStates")
        # The steps were shown on the way, in order (a step quicker than the page's poll may be passed over).
        shown = [s for i, s in enumerate(states) if not i or s != states[i - 1]]
        steps = ["receiving", "unpacking", "importing", "saving", "done"]
        assert {"receiving", "importing", "done"} <= set(shown) and shown == sorted(shown, key=steps.index), shown
        assert "it can now be chosen for a case (Cases tab, Patient)" in page.text_content("#upload-state")
        assert "the CT's table" in page.text_content("#upload-notes")
        page.wait_for_selector("#patients li[data-patient=browser-real-ct]")
        listed = page.text_content("#patients li[data-patient=browser-real-ct]")
        assert listed.startswith("browser-real-ct (NIfTI, ") and "cannot carry a case" not in listed, listed
        assert "browser-real-ct" in stored_anatomy_names()

        damaged = tmp_path / "scan.nii.gz"
        damaged.write_bytes((REAL_CT / "ct_lumbar.nii.gz").read_bytes()[:5000])
        assert _upload(page, "browser-damaged", damaged) == "failed"
        error = page.text_content("#upload-error")
        assert error.startswith("scan.nii.gz: ") and "staging" not in error, error
        assert error.endswith("Export the volume again as NIfTI (.nii or .nii.gz) and check that the copy is "
                              "complete."), error  # the fix
        assert "browser-damaged" not in stored_anatomy_names()
    finally:
        server.stop()
