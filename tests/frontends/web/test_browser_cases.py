"""The instructor's case editor in a real browser (issues 20, 22): an instructor makes a new case from a library
case on a patient whose CT was uploaded, is told next to the field what to fix when it does not validate,
previews it, saves it to the department's cases and assigns it, and cannot remove it once assigned; the trainee
logging in then finds it opened for them (before the server's --scenario), first in the picker, and starts it."""

from __future__ import annotations

import re

import pytest

from anatomy_models.store import save_anatomy
from frontends.store import Store
from tests.frontends.web import browser as b
from tests.frontends.web.conftest import ANATOMY

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")
if not __import__("os").path.exists(b.CHROMIUM):
    pytest.skip("Chromium is not installed (./dev.sh installs it)", allow_module_level=True)

INSTRUCTOR, TRAINEE, PASSWORD = "ivan", "ben", "a-long-password"
CASE, TITLE = "tfesi-l3l4-right-dept", "Right L3-L4 transforaminal, no hints"
# The uploaded patient: the web tests' 2 mm spine stored under a clinic's name, as an upload stores a CT.
UPLOADED = "clinic-ct-01"
BRIEF = "A 58-year-old with right L3 radicular pain. Place the needle in the right L3-L4 safe triangle."


def _wait_text(page, selector: str, words: str) -> None:
    page.wait_for_function("([s, w]) => (document.querySelector(s)?.textContent || '').includes(w)",
                           arg=[selector, words], timeout=120_000)


def test_an_instructor_authors_and_assigns_a_case_and_the_trainee_starts_it(new_page, patient, tmp_path):
    database = b.database_with_users(tmp_path, {INSTRUCTOR: "instructor", TRAINEE: "trainee"}, PASSWORD)
    save_anatomy(patient, UPLOADED)
    # One warm spare: the trainee's workstation warms up before the case exists, and must still offer it. The
    # server opens on mbb-default for whoever has nothing assigned.
    server = b.Server(database, ANATOMY, "--require-login", "--spare", "1", "--scenario", "mbb-default",
                      log=tmp_path / "serve.log")
    try:
        page = new_page(viewport={"width": 1500, "height": 1000})
        b.log_in(page, server.url, INSTRUCTOR, PASSWORD)
        page.click("#tab-cases")
        b.choose(page, "#editor-base", "tfesi-default · ", prefix=True)
        _wait_text(page, "#editor-procedure", "transforaminal epidural")
        page.fill("#editor-title", TITLE)
        page.fill("#editor-brief", BRIEF)
        b.choose(page, "#editor-level", "L3-L4", prefix=True)
        b.choose(page, "#editor-side", "right", prefix=True)
        page.fill("#editor-objectives", "Find the right L3-L4 safe triangle.\nInject under DSA.")
        page.uncheck("#editor-hints")
        b.choose(page, "#editor-patient", f"{UPLOADED} · ", prefix=True)
        page.wait_for_selector("#editor-bmi", state="detached")  # an uploaded CT has its own habitus
        # A case id the schema refuses: the message names the editor's field and the fix, next to the field.
        page.fill("#editor-id", "Right L3")
        page.click("#editor-save")
        _wait_text(page, "#error-text", "Case id (field 'id')")
        _wait_text(page, ".v-input:has(#editor-id) .v-messages", "Use lower-case letters")
        page.fill("#editor-id", CASE)
        page.click("#editor-preview")
        page.wait_for_function("() => (document.querySelector('#editor-preview-image')?.src || '')"
                               ".startsWith('data:image/jpeg')", timeout=120_000)
        _wait_text(page, "#editor-text", "L3")
        page.wait_for_selector("#editor-save:not([disabled])")
        page.click("#editor-save")
        _wait_text(page, "#editor-text", f"Saved {CASE}")
        b.choose(page, "#assign-case", CASE, prefix=True)
        b.choose(page, "#assign-trainee", TRAINEE, prefix=True)
        page.fill("#assign-due", "2031-05-04")
        page.wait_for_selector("#assign:not([disabled])")
        page.click("#assign")
        _wait_text(page, "#editor-text", f"Assigned {CASE} to {TRAINEE}, due 2031-05-04")
        # Assigned, it is part of the trainee's record: Remove (confirmed) is refused, saying why.
        page.click("#editor-remove")
        page.click("#editor-remove-confirmed")
        _wait_text(page, "#error-text", "has 1 assignment; a trainee's record of training keeps the case")

        trainee = new_page(viewport={"width": 1500, "height": 1000})
        b.log_in(trainee, server.url, TRAINEE, PASSWORD)
        # Their assigned case is open, not the server's --scenario.
        _wait_text(trainee, "#brief", BRIEF)
        # The picker lists the trainee's assignments first, the department's cases in a group of their own.
        trainee.wait_for_selector("#start:not([disabled])")
        trainee.locator(".v-select:has(#scenario) .v-field").click()
        trainee.wait_for_selector(".v-overlay--active .v-list-subheader")
        entries = trainee.locator(".v-overlay--active .v-list-subheader, .v-overlay--active .v-list-item-title")
        listed = [text.strip() for text in entries.all_text_contents()]
        assert listed[:2] == ["Assigned to you", f"{TITLE} · due 2031-05-04"] and "department" in listed
        trainee.keyboard.press("Escape")
        b.choose(trainee, "#scenario", f"{TITLE} · due 2031-05-04", prefix=True)
        _wait_text(trainee, "#brief", BRIEF)
        _wait_text(trainee, "#objectives", "Find the right L3-L4 safe triangle.")
        trainee.wait_for_selector("#start:not([disabled])")
        trainee.click("#start")
        b.wait_saved(trainee, 1)
    finally:
        server.stop()
    store = Store(database)
    [attempt] = store.attempts()
    assert (attempt.user_name, attempt.scenario_id) == (TRAINEE, CASE)
    [stored] = store.cases()
    assert stored.author == INSTRUCTOR and "side: right" in stored.yaml_text and "level: L3-L4" in stored.yaml_text
    assert f"stored: {UPLOADED}" in stored.yaml_text and "generator" not in stored.yaml_text
    assert re.search(r"^hints: \[\]$", stored.yaml_text, re.M)
